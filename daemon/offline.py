"""The commands that work without a daemon: ``render`` (clips straight from the shell) and
``conform`` (an audio file the user has, put on the tempo grid as a render is,
:mod:`musicldm_core.conform`), and what ``clips`` prints of a clip's grid fit.

:mod:`daemon.cli` parses their arguments (every parser lives there) and calls
:func:`render_main` / :func:`conform_main`; errors are raised as
:class:`~musicldm_core.errors.MusicLDMError` for the CLI to turn into an exit status.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from daemon.config import default_out_dir, default_state_dir
from musicldm_core.errors import BadRequest, MusicLDMError
from musicldm_core.spec import DEFAULT_MODEL, PRESETS, SAMPLE_RATES, ClipSpec

__all__ = ["RENDER_JOB_ID", "conform_main", "from_args", "grid_line", "render_main"]


_SPEC_ARGS = {
    "prompt": "prompt",
    "bars": "bars",
    "beats_per_bar": "beats",
    "bpm": "bpm",
    "seconds": "seconds",
    "seed": "seed",
    "takes": "takes",
    "sample_rate": "rate",
    "sample_format": "format",
    "loudness_lufs": "loudness",
    "name": "name",
    "grid": "grid",
    "key": "key",
    "retake": "retake",
}
"""``render``'s :class:`ClipSpec` fields and the arguments they come from."""


_PRESET_ARGS = {
    "steps": "steps",
    "guidance": "guidance",
    "negative_prompt": "negative",
    "scheduler": "scheduler",
}
"""The fields ``render``'s arguments set over the preset's, when given."""


def _audio_in_spec(args: argparse.Namespace) -> dict[str, Any]:
    """``render``'s audio-in :class:`ClipSpec` fields, as given (``from``/``like`` unresolved)."""
    from daemon.app.defaults import audio_in_fields
    from daemon.wire.contract import bar_span, blend_pair

    given = {
        "from": args.source,
        "repaint": None if args.repaint is None else bar_span(args.repaint, key="--repaint"),
        "blend": tuple(blend_pair(text, key="--blend") for text in args.blend or ()) or None,
    }
    return audio_in_fields(lambda key: given[key] if key in given else getattr(args, key))


def _resolve_inputs(spec: ClipSpec, args: argparse.Namespace, out_dir: Path, library: Any) -> Any:
    """``spec`` with ``--from``/``--like`` as absolute paths of audio files: any file the user
    named, or with ``--input-dir`` only files in the output folder and those folders."""
    if spec.source is None and spec.like is None:
        return spec
    from daemon.app.inputs import InputSandbox

    folders = tuple(Path(os.path.abspath(d.expanduser())) for d in args.input_dir or ())
    for folder in folders:
        if not folder.is_dir():
            raise BadRequest(f"--input-dir {folder} is not an existing folder", key="input_dir")
    sandbox = InputSandbox(
        out_dir,
        folders,
        library.find_clip if library is not None else None,
        anywhere=not folders,
    )
    return replace(
        spec,
        source=None if spec.source is None else sandbox.resolve("--from", spec.source),
        like=None if spec.like is None else sandbox.resolve("--like", spec.like),
    )


def from_args(args: argparse.Namespace, names: dict[str, str]) -> dict[str, Any]:
    """``{field: args.<argument>}`` for each ``field: argument`` of ``names``."""
    return {name: getattr(args, arg) for name, arg in names.items()}


def render_main(args: argparse.Namespace) -> int:
    from musicldm_core.render import plan_clip, render_batch, resolve_seed, save_clip
    from musicldm_core.wavfile import ensure_writable, tagged_bars

    fields = from_args(args, _SPEC_ARGS)
    if fields["bars"] is None:  # not given: 1, or the source's own length (below)
        fields["bars"] = 1 if args.extend is None else args.extend
    spec = ClipSpec(**fields, loop=not args.no_loop, **_audio_in_spec(args))
    spec = spec.with_preset(PRESETS[args.preset])
    overrides = {k: v for k, v in from_args(args, _PRESET_ARGS).items() if v is not None}
    spec = replace(spec, **overrides)
    spec = resolve_seed(spec.validated(max_seconds=args.max_seconds))
    # absolute, so the printed paths and the library's work from any folder
    out_dir = Path(os.path.abspath((args.out or default_out_dir()).expanduser()))
    ensure_writable(out_dir)  # fail before the model loads, not after the render
    library = _open_library(args.state)
    spec = _resolve_inputs(spec, args, out_dir, library)
    keeps_length = spec.audio_mode in ("variation", "repaint") and spec.seconds is None
    if args.bars is None and keeps_length and spec.source is not None:
        # a variation or repaint that names no length keeps its source's (its ACID tag)
        bars = tagged_bars(spec.source, spec.beats_per_bar)
        if bars is not None:
            spec = replace(spec, bars=bars).validated(max_seconds=args.max_seconds)

    from musicldm_core.engine import Engine

    if not args.quiet:
        print(f"loading {args.model or DEFAULT_MODEL} ...", file=sys.stderr)
    engine = Engine.load(args.model or DEFAULT_MODEL, device=args.device, dtype=args.dtype)
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
        if library is not None:
            _record_render(library, clip)
        if not args.quiet:
            score = "" if clip.score is None else f", score {clip.score:.3f}"
            if spec.retake:
                score += f", retakes used {clip.retakes} of {spec.retake}"
            print(
                f"  {plan.out_samples} samples at {plan.out_rate} Hz ({clip.seconds:.3f} s), "
                f"seed {clip.seed}{score}",
                file=sys.stderr,
            )
            if clip.grid is not None:
                print(f"  {clip.grid.describe()}", file=sys.stderr)
    if library is not None:
        library.close()
    return 0


CONFORM_RATE = 44100
"""``conform`` writes at the input's rate when a clip may have it, else at this rate."""


def conform_main(args: argparse.Namespace) -> int:
    """``musicldm-daemon conform``: an audio file onto the tempo grid, as a render's take."""
    import json

    import numpy as np
    import soundfile as sf

    from daemon.app.inputs import file_problem
    from musicldm_core.render import SOFTWARE, finish, plan_clip
    from musicldm_core.wavfile import (
        ClipTags,
        encode_wav,
        ensure_writable,
        safe_stem,
        write_wav_atomic,
    )

    source = Path(os.path.abspath(args.input.expanduser()))
    problem = file_problem(source)  # before opening: reading a FIFO or a device would block
    if problem is not None:
        raise BadRequest(f"{problem}; conform needs an audio file", key="input")
    try:
        audio, rate = sf.read(str(source), dtype="float32", always_2d=True)
    except (OSError, RuntimeError, sf.SoundFileError) as exc:  # missing, or not audio
        raise BadRequest(f"cannot read {source} as audio: {exc}", key="input") from None
    if audio.shape[0] == 0:
        raise BadRequest(f"{source} holds no audio", key="input")
    if not np.isfinite(audio).all():
        raise BadRequest(f"{source} holds non-finite samples (NaN or infinity)", key="input")
    if audio.shape[1] > 2:  # the stretcher takes mono or stereo; a surround file is mixed down
        print(f"note: {audio.shape[1]} channels mixed down to mono", file=sys.stderr)
        audio = audio.mean(axis=1, keepdims=True)
    wave = audio[:, 0] if audio.shape[1] == 1 else audio
    spec = ClipSpec(
        prompt=source.stem or "conformed",
        bars=args.bars,
        beats_per_bar=args.beats,
        bpm=args.bpm,
        loop=not args.no_loop,
        sample_rate=rate if rate in SAMPLE_RATES else CONFORM_RATE,
        grid=args.grid,
        key=args.key,
    ).validated()
    plan = plan_clip(spec)
    out_dir = Path(os.path.abspath((args.out or default_out_dir()).expanduser()))
    ensure_writable(out_dir)
    try:
        done = finish(wave, plan, spec, model_rate=int(rate))
    except ValueError as exc:  # too short for the clip even cut from its start
        raise BadRequest(
            f"{source} lasts {len(wave) / rate:.3f} s; {spec.bars} bars of {spec.beats_per_bar} "
            f"beats at {spec.bpm:g} BPM need at least {plan.needed_samples / plan.out_rate:.3f} s "
            f"({exc})",
            key="input",
        ) from None
    report = done.grid
    settings = {
        "source": str(source),
        "bars": spec.bars,
        "beats_per_bar": spec.beats_per_bar,
        "bpm": spec.bpm,
        "seconds": round(plan.out_samples / plan.out_rate, 6),
        "samples": plan.out_samples,
        "sample_rate": plan.out_rate,
        "format": spec.sample_format,
        "loop": spec.loop,
        "crossfade_samples": plan.crossfade_samples,
        "gain_db": round(done.gain_db, 3),
        "grid": None if report is None else report.as_dict(),
        "software": SOFTWARE,
    }
    when = datetime.now()
    tags = ClipTags(
        title=source.stem,
        software=SOFTWARE,
        comment=json.dumps(settings, sort_keys=True),
        created=when.strftime("%Y-%m-%d"),
        bpm=spec.bpm,
        beats=spec.bars * spec.beats_per_bar,
        meter_numerator=spec.beats_per_bar,
        meter_denominator=4,
        loop=spec.loop,
        root_note=None if report is None else report.root_note,
    )
    stem = "_".join(
        [
            when.strftime("%Y%m%d-%H%M%S"),
            safe_stem(_without_tempo(source.stem), max_chars=40) or "conformed",
            f"{spec.bpm:g}bpm",
            f"{spec.bars}bars",
            "conformed",
        ]
    )
    data = encode_wav(done.audio, plan.out_rate, spec.sample_format, tags)
    path = write_wav_atomic(out_dir, stem, data)
    print(path)
    if report is not None:
        print(report.describe(), file=sys.stderr)
        if not report.stretched and report.grid_error_ms is None and spec.grid == "stretch":
            print(
                f"an exact {spec.bars}-bar clip, cut from the start of {source.name} unstretched",
                file=sys.stderr,
            )
    return 0


def _without_tempo(stem: str) -> str:
    """``stem`` without its tempo and length words ("…_92.3bpm_1bars_s5" → "…_s5"): a conformed
    file's name carries its new ones, and tools that read a tempo from a name take the first."""
    parts = stem.split("_")
    kept = [p for p in parts if not re.fullmatch(r"\d+(?:\.\d+)?bpm|\d+bars?", p, re.I)]
    return "_".join(kept)


RENDER_JOB_ID = "render"
"""The job id of ``render``'s clips in the library: ``/musicldm/play render`` plays the newest."""


def _open_library(state: Path | None) -> Any:
    """The journal ``render`` records its clips in, so ``clips`` lists them; None (with a
    warning: the files are made anyway) when it cannot be opened."""
    from daemon.jobs.journal import Journal

    folder = Path(os.path.abspath((state or default_state_dir()).expanduser()))
    try:
        return Journal(folder / "journal.sqlite3")
    except MusicLDMError as exc:
        print(f"warning: the clips will not be in the library: {exc}", file=sys.stderr)
        return None


def _record_render(library: Any, clip: Any) -> None:
    from daemon.jobs.journal import ClipRecord

    try:
        library.add_clip(ClipRecord.of(clip, RENDER_JOB_ID, sum(clip.timings.values())))
    except MusicLDMError as exc:
        print(f"warning: {clip.path} is not in the library: {exc}", file=sys.stderr)


def _progress_bar(quiet: bool, spec: ClipSpec) -> Any:
    if quiet:
        return None
    from tqdm import tqdm

    return tqdm(total=spec.steps, desc="rendering", unit="step", file=sys.stderr, leave=False)


def grid_line(grid: Any) -> str:
    """What ``clips`` says of a clip's grid fit, from its settings' ``grid`` (a conform report's
    ``as_dict()``); "" for a clip made before the grid was reported."""
    if not isinstance(grid, dict):
        return ""
    mode = grid.get("grid")
    if mode == "off":
        return "grid off"
    found = grid.get("detected")
    detected: dict[str, Any] = found if isinstance(found, dict) else {}
    parts = [f"grid {mode}"]
    if detected.get("tempo_bpm") is not None:
        parts.append(
            f"detected {detected['tempo_bpm']:g} BPM (confidence {detected.get('confidence', 0):g})"
        )
    else:
        parts.append("no beat found")
    if grid.get("stretched"):
        parts.append(f"stretched ×{grid.get('ratio', 1.0):g}")
    if grid.get("grid_error_ms") is not None:
        parts.append(f"grid error {grid['grid_error_ms']:g} ms")
    elif mode == "stretch":
        parts.append("not on the grid")
    if detected.get("key"):
        parts.append(f"key {detected['key']}")
    return ", ".join(parts)
