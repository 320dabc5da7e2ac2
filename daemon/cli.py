"""The ``musicldm-daemon`` command line: ``serve`` (default), ``render``, ``clips``, ``midi-ports``,
``audio-devices``.

``render`` makes clips straight from the shell without a daemon; ``serve`` starts the daemon
(:mod:`daemon.app.daemon`). Errors end with ``error: <message>`` on stderr and a non-zero status:
2 for bad input, 3 for model trouble, 4 for output trouble, 1 otherwise.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from daemon import __version__
from daemon.cli_options import add_model_options
from musicldm_core.errors import BadRequest, ModelError, MusicLDMError, OutputError
from musicldm_core.spec import (
    DEFAULT_MAX_SECONDS,
    PRESETS,
    SAMPLE_FORMATS,
    SAMPLE_RATES,
    SCHEDULER_NAMES,
    ClipSpec,
)

__all__ = ["main"]

EXIT_CODES = {BadRequest: 2, ModelError: 3, OutputError: 4}
COMMANDS = ("serve", "render", "clips", "midi-ports", "audio-devices")


def default_out_dir() -> Path:
    """The user's music folder / MusicLDM."""
    from platformdirs import user_music_path

    return user_music_path() / "MusicLDM"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="musicldm-daemon",
        description="Play MusicLDM like an instrument: render exact-length, loop-ready clips "
        "from the shell, or serve them over OSC and MIDI.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    render = sub.add_parser("render", help="render clips to WAV files and print their paths")
    render.add_argument("prompt", help='what to make, e.g. "warm lofi piano"')
    render.add_argument("--bars", type=int, default=1, help="length in bars (1-64, default 1)")
    render.add_argument("--beats", type=int, default=4, help="beats per bar (1-16, default 4)")
    render.add_argument("--bpm", type=float, default=120.0, help="tempo (20-400, default 120)")
    render.add_argument("--seconds", type=float, help="exact length in seconds instead of bars")
    render.add_argument("--seed", type=int, help="0-2147483647 (default: random, printed)")
    render.add_argument("--preset", default="live", choices=sorted(PRESETS), help="default live")
    render.add_argument("--steps", type=int, help="denoising steps (1-1000; default: preset's)")
    render.add_argument("--guidance", type=float, help="guidance scale (0-30; default: preset's)")
    render.add_argument("--negative", help="negative prompt (default: preset's)")
    render.add_argument("--scheduler", choices=SCHEDULER_NAMES, help="default: preset's")
    render.add_argument("--takes", type=int, default=1, help="candidates, ranked best-first (1-8)")
    render.add_argument("--no-loop", action="store_true", help="plain cut with fades, no loop")
    render.add_argument("--rate", type=int, default=44100, choices=SAMPLE_RATES, help="Hz")
    render.add_argument("--format", default="pcm24", choices=SAMPLE_FORMATS, help="WAV samples")
    render.add_argument("--loudness", type=float, help="target loudness in LUFS (default: none)")
    render.add_argument("--name", help="file name stem instead of the prompt")
    render.add_argument("--max-seconds", type=float, default=DEFAULT_MAX_SECONDS)
    render.add_argument("--out", type=Path, help="output folder (default: Music/MusicLDM)")
    render.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_model_options(render)

    serve = sub.add_parser(
        "serve", help="run the daemon (the default command)", add_help=False
    )  # serve_main has its own parser, --help included
    serve.set_defaults(command="serve")

    clips = sub.add_parser("clips", help="list recent clips from the library")
    clips.add_argument("-n", "--limit", type=int, default=20)
    clips.add_argument("--state", type=Path, help="state folder (default: user data folder)")
    clips.add_argument("--config", type=Path, help="config file (TOML)")

    sub.add_parser("midi-ports", help="list MIDI input ports")
    sub.add_parser("audio-devices", help="list audio output devices (for --audio-device)")
    return parser


def _render(args: argparse.Namespace) -> int:
    from musicldm_core.render import plan_clip, render_batch, resolve_seed, save_clip
    from musicldm_core.wavfile import ensure_writable

    preset = PRESETS[args.preset]
    spec = ClipSpec(
        prompt=args.prompt,
        bars=args.bars,
        beats_per_bar=args.beats,
        bpm=args.bpm,
        seconds=args.seconds,
        seed=args.seed,
        takes=args.takes,
        loop=not args.no_loop,
        sample_rate=args.rate,
        sample_format=args.format,
        loudness_lufs=args.loudness,
        name=args.name,
    ).with_preset(preset)
    overrides: dict[str, Any] = {
        "steps": args.steps,
        "guidance": args.guidance,
        "negative_prompt": args.negative,
        "scheduler": args.scheduler,
    }
    from dataclasses import replace

    spec = replace(spec, **{k: v for k, v in overrides.items() if v is not None})
    spec = resolve_seed(spec.validated(max_seconds=args.max_seconds))
    out_dir = args.out if args.out is not None else default_out_dir()
    ensure_writable(out_dir)  # fail before the model loads, not after the render

    from musicldm_core.engine import Engine

    if not args.quiet:
        print(f"loading {args.model or 'ucsd-reach/musicldm'} ...", file=sys.stderr)
    engine = Engine.load(args.model or "ucsd-reach/musicldm", device=args.device, dtype=args.dtype)
    plan = plan_clip(spec, model_rate=engine.model_rate, hop=engine.hop)
    bar = _progress_bar(args.quiet, spec)

    def on_step(step: int, total: int) -> None:
        if bar is not None:
            bar.total = total
            bar.n = step
            bar.refresh()

    try:
        clips = render_batch(engine, [spec], on_step=on_step)[0]
    finally:
        if bar is not None:
            bar.close()
    for clip in clips:
        path = save_clip(clip, out_dir)
        print(path)
        if not args.quiet:
            score = "" if clip.score is None else f", score {clip.score:.3f}"
            print(
                f"  {plan.out_samples} samples at {plan.out_rate} Hz ({clip.seconds:.3f} s), "
                f"seed {clip.seed}{score}",
                file=sys.stderr,
            )
    return 0


def _progress_bar(quiet: bool, spec: ClipSpec) -> Any:
    if quiet:
        return None
    from tqdm import tqdm

    return tqdm(total=spec.steps, desc="rendering", unit="step", file=sys.stderr, leave=False)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``musicldm-daemon``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help", "--version")):
        argv.insert(0, "serve")  # `musicldm-daemon --port 9000` means `serve --port 9000`
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command != "serve" and extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        if args.command == "render":
            logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
            from musicldm_core.loading import quiet_libraries

            quiet_libraries()
            return _render(args)
        if args.command == "serve":
            from daemon.app.daemon import serve_main

            return serve_main(extra)
        if args.command == "clips":
            from daemon.app.daemon import clips_main

            return clips_main(args)
        if args.command == "midi-ports":
            from daemon.app.daemon import midi_ports_main

            return midi_ports_main()
        if args.command == "audio-devices":
            from daemon.app.daemon import audio_devices_main

            return audio_devices_main()
    except MusicLDMError as exc:
        print(f"error: {exc}", file=sys.stderr)
        for cls, code in EXIT_CODES.items():
            if isinstance(exc, cls):
                return code
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    parser.print_help()
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
