"""A pack file (``PACK.toml``) read, checked and expanded into the clips to make.

A pack names prompts and the tempi, lengths and takes each is made at (docs/packs.md). Every
generate option of the OSC contract (:data:`daemon.wire.contract.GENERATE_OPTIONS`) may be set
for the whole pack or per prompt, and is checked by the contract's own rules, then the clip by
:meth:`musicldm_core.spec.ClipSpec.validated` through the daemon's option resolution
(:meth:`daemon.app.defaults.Defaults.build_spec`), so a bad value gets the same message as over
OSC, prefixed with where in the file it is. Everything is checked before anything renders.

Each clip gets a stable id hashed from everything that makes its audio (the spec's settings and
the model): the file name carries it, so a re-run knows which clips exist already
(:mod:`daemon.pack.output`). Used by the ``pack`` command (:mod:`daemon.pack.run`); no torch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from daemon.config import DaemonConfig
from daemon.wire.contract import GENERATE_OPTIONS, Option
from daemon.wire.requests import OPTION_FIELDS, GenerateOptions
from musicldm_core.errors import BadRequest
from musicldm_core.spec import (
    DEFAULT_MAX_SECONDS,
    LIMITS,
    SAMPLE_FORMATS,
    SAMPLE_RATES,
    ClipSpec,
    check_int,
    check_prompt,
)
from musicldm_core.wavfile import safe_stem

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["ClipJob", "PackPlan", "load_pack", "parse_pack"]

NOT_IN_PACKS = {
    "id": "each clip's id is made from its settings",
    "slot": "packs write files; they do not load slots",
    "play": "packs write files; they do not play them",
    "priority": "a pack has no queue to order",
    "name": "the pack's `name` names its folder; a prompt's `name` its folder",
}
"""Generate options a pack refuses, and why (said in the error)."""

MULTI_KEYS = ("bpm", "bars", "seconds")
"""Options a pack gives as a list: every prompt is made at each value (or one value)."""

FILE_OPTIONS: dict[str, tuple[str, ...] | tuple[int, ...] | None] = {
    "rate": SAMPLE_RATES,
    "format": SAMPLE_FORMATS,
    "loudness": None,
}
"""The output settings a pack may set (the daemon's ``[output]`` config keys)."""

PACK_KEYS = ("name", "prompt", "tags")
PROMPT_KEYS = ("text", "tags", "name")

DEFAULT_SEED = 0
"""The first take's seed when the pack names none: a pack is always reproducible."""

ID_CHARS = 12
"""Hex digits of a clip's id kept in file names (48 bits: no clash in any real pack)."""


@dataclass(frozen=True)
class ClipJob:
    """One clip of a pack: its validated, seeded spec and where it goes."""

    clip_id: str
    spec: ClipSpec
    prompt_index: int
    """Which ``[[prompt]]`` it comes from (0-based, in file order)."""
    prompt_slug: str
    tags: tuple[str, ...]
    take: int
    """0-based; take k has the prompt's seed + k."""
    options: Mapping[str, Any]
    """The generate options the pack set for it (after checking), for the manifest."""

    @property
    def bpm_folder(self) -> str:
        return f"{self.spec.bpm:g}bpm"

    @property
    def relative_path(self) -> Path:
        """Where the clip's file goes inside the pack's folder (docs/packs.md, "Layout")."""
        spec = self.spec
        length = f"{spec.bars}bars" if spec.seconds is None else f"{spec.seconds:g}s"
        stem = f"{self.prompt_slug}_{length}_s{spec.seed}_{self.clip_id}"
        return Path(self.bpm_folder) / self.prompt_slug / f"{stem}.wav"


@dataclass(frozen=True)
class PackPlan:
    """A checked pack: its name, folder name and clips in file order."""

    name: str
    slug: str
    source: Path
    jobs: tuple[ClipJob, ...]
    model: str

    def counts(self) -> list[tuple[str, str, str, int]]:
        """(prompt, bpm, length, clips) per combination, in plan order (``--dry-run``)."""
        counter: Counter[tuple[str, str, str]] = Counter()
        for job in self.jobs:
            spec = job.spec
            length = f"{spec.bars} bars" if spec.seconds is None else f"{spec.seconds:g} s"
            counter[(spec.prompt, f"{spec.bpm:g}", length)] += 1
        return [(*key, count) for key, count in counter.items()]


def load_pack(path: Path, *, model: str, max_seconds: float = DEFAULT_MAX_SECONDS) -> PackPlan:
    """Read and check the pack file at ``path``; :class:`BadRequest` names what is wrong."""
    from daemon.app.inputs import file_problem  # here, as in _spec_defaults

    problem = file_problem(Path(path))  # before opening: reading a FIFO would block
    if problem is not None:
        raise BadRequest(f"cannot read the pack file: {problem}", key="pack")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadRequest(f"cannot read the pack file {path}: {exc}", key="pack") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BadRequest(f"{path} is not valid TOML: {exc}", key="pack") from None
    return parse_pack(data, source=Path(path), model=model, max_seconds=max_seconds)


def _where(source: Path, index: int | None, text: str | None = None) -> str:
    if index is None:
        return f"{source.name}"
    shown = f" ({text[:40]!r})" if text else ""
    return f"{source.name}, prompt {index + 1}{shown}"


def allowed_options() -> list[str]:
    """The generate options a pack takes, from the contract (plus its own and output keys)."""
    return [key for key in GENERATE_OPTIONS if key not in NOT_IN_PACKS]


def _check_value(key: str, option: Option, value: Any, max_seconds: float) -> Any:
    if isinstance(value, (list, dict)):
        raise BadRequest(f"{key} must be one value here, got {value!r}", key=key)
    return option.check(value, max_seconds=max_seconds)


def _check_list(key: str, value: Any, max_seconds: float) -> list[Any]:
    values = value if isinstance(value, list) else [value]
    if not values:
        raise BadRequest(f"{key} must list at least one value, got []", key=key)
    option = GENERATE_OPTIONS[key]
    checked = [_check_value(key, option, v, max_seconds) for v in values]
    return list(dict.fromkeys(checked))  # a value listed twice makes its clips once


def _check_tags(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(t, str) and t.strip() for t in value):
        raise BadRequest(f"tags must be a list of words, got {value!r}", key="tags")
    return tuple(" ".join(t.split()) for t in value)


def _check_file_option(key: str, value: Any) -> Any:
    choices = FILE_OPTIONS[key]
    if choices is None:
        return value  # loudness: ClipSpec.validated checks the number
    if key == "format" and isinstance(value, str) and value.lower() in choices:
        return value.lower()
    if value not in choices:
        raise BadRequest(
            f"{key} must be one of {', '.join(map(str, choices))}, got {value!r}", key=key
        )
    return int(value) if key == "rate" else value  # rate = 16000.0 is the rate 16000


def _options(
    table: Mapping[str, Any], own: Sequence[str], max_seconds: float
) -> tuple[dict[str, Any], dict[str, list[Any]], dict[str, Any]]:
    """(single options, list options, file options) of a pack's or prompt's table, checked."""
    single: dict[str, Any] = {}
    lists: dict[str, list[Any]] = {}
    files: dict[str, Any] = {}
    allowed = allowed_options()
    for key, value in table.items():
        if key in own:
            continue
        if key in FILE_OPTIONS:
            files[key] = _check_file_option(key, value)
        elif key in NOT_IN_PACKS and key not in own:
            raise BadRequest(f"{key} cannot be set in a pack: {NOT_IN_PACKS[key]}", key=key)
        elif key in MULTI_KEYS:
            lists[key] = _check_list(key, value, max_seconds)
        elif key in GENERATE_OPTIONS and GENERATE_OPTIONS[key].repeats:
            # blend: one "prompt:weight" or a list of them, held as the request holds it
            option = GENERATE_OPTIONS[key]
            values = value if isinstance(value, list) else [value]
            single[key] = tuple(_check_value(key, option, v, max_seconds) for v in values)
        elif key in GENERATE_OPTIONS:
            single[key] = _check_value(key, GENERATE_OPTIONS[key], value, max_seconds)
        else:
            keys = [*own, *allowed, *FILE_OPTIONS]
            raise BadRequest(
                f"unknown key {key!r} (= {value!r}); allowed: {', '.join(keys)}", key=key
            )
    if "bars" in lists and "seconds" in lists:
        raise BadRequest(
            "give bars or seconds, not both "
            f"(bars = {lists['bars']!r}, seconds = {lists['seconds']!r})",
            key="seconds",
        )
    return single, lists, files


def _spec_defaults(files: Mapping[str, Any], max_seconds: float, folder: Path) -> Any:
    """The daemon's option resolution with the pack's output settings as its config. Input
    audio (``from``, ``like``) may be any file the pack names, as on ``render``'s command
    line (the user wrote it); a relative path is relative to the pack file's ``folder``."""
    from daemon.app.defaults import Defaults
    from daemon.app.inputs import InputSandbox

    config = DaemonConfig(
        sample_rate=files.get("rate", 44100),
        sample_format=files.get("format", "pcm24"),
        loudness_lufs=files.get("loudness"),
        max_seconds=max_seconds,
    )
    inputs = InputSandbox(folder, anywhere=True, base=folder)
    return Defaults(config, tempo=lambda: config.tempo, inputs=inputs)


_OPTION_FIELDS = {f.name for f in dataclasses.fields(GenerateOptions)}


def clip_id(spec: ClipSpec, model: str) -> str:
    """The stable id of a clip: a hash of every setting that makes its audio, and the model."""
    settings = dataclasses.asdict(spec)
    settings.pop("name", None)  # the file's name, not its audio
    settings["model"] = model
    blob = json.dumps(settings, sort_keys=True, default=repr).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:ID_CHARS]


def parse_pack(
    data: Mapping[str, Any],
    *,
    source: Path,
    model: str,
    max_seconds: float = DEFAULT_MAX_SECONDS,
) -> PackPlan:
    """A :class:`PackPlan` from a pack file's parsed TOML; :class:`BadRequest` (the first bad
    key, its value and what is allowed, and where) otherwise."""
    try:
        return _parse(data, source, model, max_seconds)
    except BadRequest as exc:
        if str(exc).startswith(source.name):
            raise
        raise BadRequest(f"{source.name}: {exc}", key=exc.key) from None


def _parse(data: Mapping[str, Any], source: Path, model: str, max_seconds: float) -> PackPlan:
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise BadRequest(
            f"name must be the pack's name (text), got {name!r}: it names the pack's folder",
            key="name",
        )
    slug = safe_stem(name.strip().lower(), max_chars=60)
    pack_tags = _check_tags(data["tags"]) if "tags" in data else ()
    single, lists, files = _options(data, PACK_KEYS, max_seconds)
    prompts = data.get("prompt")
    if not (isinstance(prompts, list) and prompts and all(isinstance(p, dict) for p in prompts)):
        raise BadRequest(
            'prompt must be one or more [[prompt]] tables, each with text = "..."', key="prompt"
        )
    jobs: list[ClipJob] = []
    seen: dict[str, int] = {}
    for index, table in enumerate(prompts):
        text = table.get("text")
        try:
            jobs += _prompt_jobs(
                index,
                table,
                single,
                lists,
                files,
                pack_tags,
                model,
                max_seconds,
                seen,
                folder=source.parent,
            )
        except BadRequest as exc:
            shown = text if isinstance(text, str) else None
            raise BadRequest(f"{_where(source, index, shown)}: {exc}", key=exc.key) from None
    return PackPlan(name=name.strip(), slug=slug, source=source, jobs=tuple(jobs), model=model)


def _prompt_jobs(  # noqa: PLR0917 - one call site; the pack's settings it inherits
    index: int,
    table: Mapping[str, Any],
    pack_single: Mapping[str, Any],
    pack_lists: Mapping[str, list[Any]],
    pack_files: Mapping[str, Any],
    pack_tags: tuple[str, ...],
    model: str,
    max_seconds: float,
    seen: dict[str, int],
    *,
    folder: Path,
) -> list[ClipJob]:
    if "text" not in table:
        raise BadRequest('text is missing: each [[prompt]] needs text = "..."', key="text")
    text = check_prompt(table["text"], key="text")
    tags = (*pack_tags, *_check_tags(table["tags"])) if "tags" in table else pack_tags
    single, lists, files = _options(table, PROMPT_KEYS, max_seconds)
    single = {**pack_single, **single}
    merged = dict(pack_lists)
    if "bars" in lists:
        merged.pop("seconds", None)  # a prompt's bars replace the pack's seconds, and back
    if "seconds" in lists:
        merged.pop("bars", None)
    merged.update(lists)
    files = {**pack_files, **files}
    prompt_name = table.get("name", text)
    if not isinstance(prompt_name, str) or not prompt_name.strip():
        raise BadRequest(f"name must be text (a folder), got {prompt_name!r}", key="name")
    prompt_slug = safe_stem(prompt_name.lower(), max_chars=40)
    if prompt_slug == "clip" and prompt_name.strip().lower() != "clip":
        # nothing of the name is plain letters (CJK, emoji): one stable folder per prompt, not
        # one "clip" folder that every such prompt would share
        prompt_slug = f"prompt-{hashlib.sha1(prompt_name.strip().encode()).hexdigest()[:8]}"
    takes = check_int("takes", single.pop("takes", 1), LIMITS["takes"])
    seed = single.pop("seed", DEFAULT_SEED)
    defaults = _spec_defaults(files, max_seconds, folder)
    bpms = merged.get("bpm", [defaults.resolve(None, "bpm")])
    lengths: list[tuple[str, Any]] = [("seconds", s) for s in merged.get("seconds", [])] or [
        ("bars", b) for b in merged.get("bars", [defaults.resolve(None, "bars")])
    ]
    jobs = []
    for bpm in bpms:
        for length_key, length in lengths:
            for take in range(takes):
                given = {**single, "bpm": bpm, length_key: length, "seed": seed + take}
                given["seed"] = check_int("seed", given["seed"], LIMITS["seed"])
                options = GenerateOptions(
                    **{
                        OPTION_FIELDS.get(k, k): v  # `from` is the field from_
                        for k, v in given.items()
                        if OPTION_FIELDS.get(k, k) in _OPTION_FIELDS
                    }
                )
                spec = defaults.build_spec(text, options)
                spec = replace(spec, sample_rate=files.get("rate", spec.sample_rate))
                job_id = clip_id(spec, model)
                if job_id in seen:
                    raise BadRequest(
                        f"makes the same clip as prompt {seen[job_id] + 1} "
                        f"(bpm {bpm:g}, {length_key} {length:g}, seed {spec.seed}): "
                        "change its text or settings, or remove one",
                        key="text",
                    )
                seen[job_id] = index
                jobs.append(
                    ClipJob(
                        clip_id=job_id,
                        spec=spec,
                        prompt_index=index,
                        prompt_slug=prompt_slug,
                        tags=tags,
                        take=take,
                        options=given,
                    )
                )
    return jobs
