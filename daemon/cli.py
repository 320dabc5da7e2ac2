"""The ``musicldm-daemon`` command line: ``serve`` (default), ``render``, ``conform``, ``pack``,
``clips``, ``midi-ports``, ``audio-devices``.

Every argparse parser of the daemon lives here. ``render`` makes clips straight from the shell
without a daemon and ``conform`` puts an audio file the user has on the tempo grid, as a render
is (both in :mod:`daemon.offline`); ``pack`` renders a sample pack (:mod:`daemon.pack`);
``serve`` starts the daemon (:mod:`daemon.app.daemon`). Errors
end with ``error: <message>`` on stderr and a non-zero status: 2 for bad input, 3 for model
trouble, 4 for output trouble, 1 otherwise.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from daemon import __version__
from daemon.config import (
    LOG_LEVELS,
    DaemonConfig,
    default_state_dir,
    load_config,
    parse_host_port,
)
from daemon.offline import conform_main, from_args, grid_line, render_main
from musicldm_core.errors import BadRequest, ModelError, MusicLDMError, OutputError
from musicldm_core.spec import (
    DEFAULT_MAX_SECONDS,
    DEFAULT_PRESET,
    GRID_MODES,
    PRESETS,
    SAMPLE_FORMATS,
    SAMPLE_RATES,
    SCHEDULER_NAMES,
)

__all__ = ["main", "serve_parser"]

log = logging.getLogger("daemon")

EXIT_CODES = {BadRequest: 2, ModelError: 3, OutputError: 4}
COMMANDS = ("serve", "render", "conform", "pack", "clips", "midi-ports", "audio-devices")


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """``--model``, ``--device`` and ``--dtype``."""
    parser.add_argument(
        "--model",
        help="hub id (default ucsd-reach/musicldm), a local folder in the diffusers layout, "
        "or a built-in test model: tiny, full-random",
    )
    parser.add_argument("--device", help="cuda, cuda:N, mps or cpu (default: the best available)")
    parser.add_argument("--dtype", help="fp16, bf16 or fp32 (default: fp16 on CUDA, else fp32)")


def add_folder_options(parser: argparse.ArgumentParser, *, state_help: str) -> None:
    """``--out`` and ``--state``."""
    parser.add_argument("--out", type=Path, help="output folder (default: Music/MusicLDM)")
    parser.add_argument("--state", type=Path, help=state_help)


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
    render.add_argument(
        "--bars",
        type=int,
        help="length in bars (1-64, default 1; with --from, the input's own bars when its tempo "
        "tag says)",
    )
    render.add_argument("--beats", type=int, default=4, help="beats per bar (1-16, default 4)")
    render.add_argument("--bpm", type=float, default=120.0, help="tempo (20-400, default 120)")
    render.add_argument(
        "--seconds", type=float, help="exact length in seconds instead of bars (default: bars)"
    )
    render.add_argument("--seed", type=int, help="0-2147483647 (default: random, printed)")
    render.add_argument(
        "--preset",
        default=DEFAULT_PRESET,
        choices=sorted(PRESETS),
        help=f"settings bundle (default {DEFAULT_PRESET})",
    )
    render.add_argument("--steps", type=int, help="denoising steps (1-1000; default: preset's)")
    render.add_argument("--guidance", type=float, help="guidance scale (0-30; default: preset's)")
    render.add_argument("--negative", help="negative prompt (default: preset's)")
    render.add_argument("--scheduler", choices=SCHEDULER_NAMES, help="default: preset's")
    render.add_argument(
        "--takes",
        type=int,
        default=1,
        help="candidates, ranked best-first (1-8, default %(default)s)",
    )
    render.add_argument(
        "--no-loop", action="store_true", help="plain cut with fades (default: a seamless loop)"
    )
    render.add_argument(
        "--grid",
        default=GRID_MODES[0],
        choices=GRID_MODES,
        help="stretch the music onto the tempo grid from its first bar line, only check and "
        "report its tempo, or neither (default %(default)s)",
    )
    render.add_argument(
        "--key",
        help="transpose tonal music to this key (F#m, Bb, C major, A minor; at most 6 semitones; "
        "with --grid stretch; default: as rendered)",
    )
    render.add_argument(
        "--retake",
        type=int,
        default=0,
        help="render again with new seeds, up to this many times, when no take fits the grid "
        "(0-3, default %(default)s)",
    )
    render.add_argument(
        "--rate",
        type=int,
        default=44100,
        choices=SAMPLE_RATES,
        help="sample rate in Hz (default %(default)s)",
    )
    render.add_argument(
        "--format",
        default="pcm24",
        choices=SAMPLE_FORMATS,
        help="WAV sample format (default %(default)s)",
    )
    render.add_argument("--loudness", type=float, help="target loudness in LUFS (default: none)")
    render.add_argument(
        "--name", help="file name stem instead of the prompt (default: from the prompt)"
    )
    render.add_argument(
        "--max-seconds",
        type=float,
        default=DEFAULT_MAX_SECONDS,
        help="longest clip allowed, in seconds (default %(default)g)",
    )
    add_folder_options(
        render,
        state_help="library folder the clips are recorded in, as the daemon's --state "
        "(default: user data folder)",
    )
    render.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_audio_in_options(render)
    add_model_options(render)

    conform = sub.add_parser(
        "conform",
        help="put an audio file on the tempo grid: an exact, tagged, loop-ready WAV",
        description="Find the tempo and the first bar line of INPUT (any file soundfile reads: "
        "WAV, FLAC, AIFF, OGG, ...), stretch it onto the grid of --bpm and cut --bars bars from "
        "that bar line, as a render is. Prints the new file's path, and what was found.",
    )
    conform.add_argument("input", type=Path, help="the audio file to conform")
    conform.add_argument("--bpm", type=float, required=True, help="target tempo (20-400)")
    conform.add_argument("--bars", type=int, required=True, help="length in bars (1-64)")
    conform.add_argument("--beats", type=int, default=4, help="beats per bar (1-16, default 4)")
    conform.add_argument("--out", type=Path, help="output folder (default: Music/MusicLDM)")
    conform.add_argument(
        "--no-loop", action="store_true", help="plain cut with fades (default: a seamless loop)"
    )
    conform.add_argument(
        "--grid",
        default=GRID_MODES[0],
        choices=[m for m in GRID_MODES if m != "off"],
        help="stretch onto the grid, or only check and report the tempo (default %(default)s)",
    )
    conform.add_argument(
        "--key",
        help="transpose tonal music to this key (F#m, Bb, C major, A minor; at most 6 semitones; "
        "default: as it is)",
    )

    serve = sub.add_parser(
        "serve", help="run the daemon (the default command)", add_help=False
    )  # serve_main has its own parser, --help included
    serve.set_defaults(command="serve")

    clips = sub.add_parser("clips", help="list recent clips from the library")
    clips.add_argument(
        "-n", "--limit", type=_positive_int, default=20, help="how many (default %(default)s)"
    )
    clips.add_argument("--state", type=Path, help="state folder (default: user data folder)")
    clips.add_argument("--config", type=Path, help="config file (TOML)")

    sub.add_parser("midi-ports", help="list MIDI input ports")
    sub.add_parser("audio-devices", help="list audio output devices (for --audio-device)")
    add_pack_parser(sub)
    return parser


def _positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1 (argparse names the flag)."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}")
    return int(text)


def add_pack_parser(sub: Any) -> None:
    """``pack``: a sample pack from a pack file (docs/packs.md; :mod:`daemon.pack`)."""
    pack = sub.add_parser(
        "pack",
        help="render a sample pack from a pack file, resumably, here or on Ray",
        description="Render every clip of PACK (a TOML pack file, see docs/packs.md) into "
        "OUT/<pack name>/<bpm>bpm/<prompt>/ with manifest.csv and manifest.json. Run it again "
        "to finish a stopped run: only the missing clips are made.",
    )
    pack.add_argument("pack_file", type=Path, metavar="PACK", help="the pack file (TOML)")
    pack.add_argument("--out", type=Path, help="output folder (default: Music/MusicLDM)")
    pack.add_argument(
        "--ray",
        nargs="?",
        const="",
        metavar="ADDRESS",
        help="render on Ray: alone, a local Ray runtime; with ADDRESS (host:port or auto), "
        "join that cluster",
    )
    pack.add_argument(
        "--workers", type=int, help="Ray actors (default: one per GPU, or 2 without GPUs)"
    )
    pack.add_argument(
        "--shared-out",
        action="store_true",
        help="with --ray: every node sees --out at the same path, so workers write the files "
        "(default: files are streamed back to this machine)",
    )
    pack.add_argument("--dry-run", action="store_true", help="print the plan, render nothing")
    pack.add_argument(
        "--max-seconds",
        type=float,
        default=DEFAULT_MAX_SECONDS,
        help="longest clip allowed, in seconds (default %(default)g)",
    )
    pack.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_model_options(pack)


def add_audio_in_options(render: argparse.ArgumentParser) -> None:
    """``render``'s audio-in options (docs/clips.md, "Audio in")."""
    group = render.add_argument_group(
        "audio in",
        "start from sound: FILE is any audio file you name (WAV, FLAC, AIFF, OGG, ...) or a "
        "clip id from the library; with --input-dir, only files inside the output folder and "
        "those folders, as the daemon reads them",
    )
    group.add_argument("--from", dest="source", metavar="FILE", help="input audio")
    group.add_argument(
        "--strength", type=float, help="variation: 0-1, how far from the input (needs --from)"
    )
    group.add_argument(
        "--repaint", metavar="A-B", help="regenerate bars A to B of the input (1-based, inclusive)"
    )
    group.add_argument(
        "--extend", type=int, metavar="N", help="continue: write the N new bars after the input"
    )
    group.add_argument("--like", metavar="FILE", help="a reference clip to sound like")
    group.add_argument(
        "--like-weight", type=float, metavar="W", help="0-1: the share of --like (default 0.5)"
    )
    group.add_argument(
        "--blend",
        action="append",
        metavar="PROMPT:W",
        help="an extra prompt with its weight, 0-10 (repeatable, at most 8)",
    )
    group.add_argument("--morph-to", metavar="PROMPT", help="a second prompt to morph toward")
    group.add_argument(
        "--morph", type=float, metavar="X", help="0-1: from the prompt (0) to --morph-to (1)"
    )
    group.add_argument(
        "--morph-seed", type=int, metavar="S", help="seed morphed toward (default: seed + 1)"
    )
    group.add_argument(
        "--input-dir",
        action="append",
        type=Path,
        metavar="FOLDER",
        help="read --from/--like only inside the output folder and this folder (repeatable)",
    )


def _add_switch(parser: argparse.ArgumentParser, flag: str, help_text: str) -> None:
    """An on-switch that is None when not given, so the config file decides."""
    parser.add_argument(flag, action="store_true", default=None, help=help_text)


def serve_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="musicldm-daemon serve", description="Run the daemon.")
    parser.add_argument(
        "--config", type=Path, help="TOML config file (every setting: docs/config.example.toml)"
    )
    add_model_options(parser)
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="UDP port (default 9000; 0 picks a free one)")
    parser.add_argument(
        "--reply-to",
        action="append",
        metavar="HOST:PORT",
        help="also send every reply here (repeatable; default 127.0.0.1:9001)",
    )
    parser.add_argument(
        "--allow",
        action="append",
        metavar="CIDR",
        help="accept packets from this network (repeatable; needed to bind a non-loopback host)",
    )
    add_folder_options(
        parser,
        state_help="journal, library and lock folder (default: the user data folder, "
        f"{default_state_dir()})",
    )
    parser.add_argument(
        "--input-dir",
        action="append",
        type=Path,
        metavar="FOLDER",
        help="also let from/like read audio files inside this folder (repeatable; the output "
        "folder and library clips always)",
    )
    parser.add_argument("--tempo", type=float, help="initial tempo in BPM (default 120)")
    _add_switch(parser, "--day-folders", "one subfolder per day in the output folder")
    parser.add_argument("--max-batch", type=int, help="takes rendered together (default: auto)")
    parser.add_argument("--no-audio", action="store_true", help="run without playback")
    parser.add_argument(
        "--audio-file",
        type=Path,
        metavar="PATH",
        help="no sound card: write what would be heard to this WAV, in real time "
        "(32-bit float stereo, about 21 MB a minute at 44.1 kHz)",
    )
    parser.add_argument("--audio-device", help="output device (name substring or index)")
    parser.add_argument(
        "--audio-rate",
        type=int,
        help="output sample rate (default: the device's; with --audio-file, the clips' rate)",
    )
    parser.add_argument("--buffer", type=int, help="audio buffer in frames (default 512)")
    parser.add_argument("--midi-port", help="MIDI input port (name substring)")
    _add_switch(
        parser,
        "--midi-virtual",
        "open a virtual MIDI input named musicldm (where the system allows)",
    )
    _add_switch(parser, "--link", "follow an Ableton Link session's tempo (needs the [link] extra)")
    _add_switch(
        parser,
        "--compile",
        "torch.compile the UNet at start (slow start, faster renders; CUDA graphs on a GPU)",
    )
    parser.add_argument(
        "--compile-batches",
        metavar="N,N,...",
        help="with --compile: take counts per batch to compile at start, guided and not "
        "(default 1,2,4,8 on CUDA, 1,2 elsewhere)",
    )
    parser.add_argument("--no-warmup", action="store_true", help="skip the warm-up render")
    parser.add_argument(
        "--log-level", help=f"{', '.join(LOG_LEVELS)} (default info)", metavar="LEVEL"
    )
    return parser


_CONFIG_ARGS = {
    "model": "model",
    "device": "device",
    "dtype": "dtype",
    "host": "host",
    "port": "port",
    "out": "out",
    "state": "state",
    "input_dirs": "input_dir",
    "tempo": "tempo",
    "day_folders": "day_folders",
    "max_batch": "max_batch",
    "log_level": "log_level",
    "reply_to": "reply_to",
    "allow": "allow",
    "audio_file": "audio_file",
    "audio_device": "audio_device",
    "audio_rate": "audio_rate",
    "audio_buffer": "buffer",
    "midi_port": "midi_port",
    "midi_virtual": "midi_virtual",
    "link": "link",
    "compile": "compile",
    "compile_batches": "compile_batches",
}
"""The :class:`DaemonConfig` fields ``serve``'s arguments set, and those arguments (None when
not given: :func:`load_config` then keeps the file's or the default)."""


def configfrom_args(args: argparse.Namespace) -> DaemonConfig:
    overrides = from_args(args, _CONFIG_ARGS)
    if args.reply_to:
        overrides["reply_to"] = tuple(
            parse_host_port(t, name="--reply-to", key="reply_to") for t in args.reply_to
        )
    if args.allow:
        overrides["allow"] = tuple(args.allow)
    if args.no_audio:
        overrides["audio"] = False
    if args.no_warmup:
        overrides["warmup"] = False
    try:
        return load_config(args.config, overrides)
    except BadRequest as exc:
        # load_config names a flag after its setting (--audio-buffer); name the real flag
        arg, named = _CONFIG_ARGS.get(exc.key or ""), "--" + (exc.key or "").replace("_", "-")
        if arg is None or not str(exc).startswith(named + " "):
            raise
        flag = "--" + arg.replace("_", "-")
        raise BadRequest(flag + str(exc).removeprefix(named), key=exc.key) from None


def serve_main(argv: Sequence[str]) -> int:
    """``musicldm-daemon serve``: run until SIGINT or SIGTERM."""
    args = serve_parser().parse_args(list(argv))
    config = configfrom_args(args)
    setup_logging(config.log_level)
    from daemon.app.daemon import Daemon

    audio_off = (
        "--no-audio" if args.no_audio else "audio disabled in the config: [audio] enabled = false"
    )
    daemon = Daemon(config, audio_off=None if config.audio else audio_off)
    stop_requested = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("received %s: stopping", signal.Signals(signum).name)
        stop_requested.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    # A failed start has stopped what it started; main() prints its error as one line.
    daemon.start()
    try:
        while not stop_requested.wait(0.5):
            pass
    finally:
        daemon.stop()
        log.info("musicldm-daemon stopped")
    return 0


def setup_logging(level_name: str) -> None:
    """Log to stderr at ``level_name`` (debug, info, warning, error).

    ``debug`` applies to the daemon's own loggers (``daemon.*``, ``musicldm_core.*``); other
    libraries stay at info, so their internals do not drown the daemon's lines.
    """
    level = getattr(logging, level_name.upper(), logging.INFO)
    logging.basicConfig(
        level=max(level, logging.INFO),
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    for name in ("daemon", "musicldm_core"):
        logging.getLogger(name).setLevel(level)


def clips_main(args: argparse.Namespace) -> int:
    """``musicldm-daemon clips``: the most recent clips in the library."""
    overrides = {"state": args.state}
    config = load_config(args.config, overrides)
    path = config.state / "journal.sqlite3"
    if not path.exists():
        print(f"no library yet at {path}", file=sys.stderr)
        return 0
    from daemon.jobs.journal import Journal

    with Journal(path) as journal:
        for record in journal.recent_clips(args.limit):
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.created))
            bars = f"{record.bars} bars" if record.bars else f"{record.seconds:.2f} s"
            # the id is what `from`/`like` (audio in) and /musicldm/play name a clip by
            print(
                f"{when}  id {record.job_id}  {record.bpm:g} BPM  {bars}  seed {record.seed}  "
                f"{record.prompt!r}"
            )
            print(f"    {record.path}")
            fit = grid_line(record.settings.get("grid"))
            if fit:
                print(f"    {fit}")
    return 0


def midi_ports_main() -> int:
    """``musicldm-daemon midi-ports``: list MIDI input ports, or say why there are none."""
    from daemon.live.midi import list_inputs, probe

    reason = probe()
    if reason:
        print(f"MIDI is not available here: {reason}", file=sys.stderr)
        return 1
    names = list_inputs()
    if not names:
        print("no MIDI input ports found", file=sys.stderr)
    for name in names:
        print(name)
    return 0


def audio_devices_main() -> int:
    """``musicldm-daemon audio-devices``: list audio outputs, or say why there are none."""
    from daemon.live.audio_out import list_devices, probe

    reason = probe()
    if reason:
        print(f"audio output is not available here: {reason}", file=sys.stderr)
    for line in list_devices():
        print(line)
    return 0 if reason is None else 1


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
            return render_main(args)
        if args.command == "pack":
            logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
            from daemon.pack.command import pack_main

            return pack_main(args)
        if args.command == "conform":
            logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
            return conform_main(args)
        if args.command == "serve":
            return serve_main(extra)
        if args.command == "clips":
            return clips_main(args)
        if args.command == "midi-ports":
            return midi_ports_main()
        if args.command == "audio-devices":
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
