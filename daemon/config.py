"""The daemon's settings: one frozen :class:`DaemonConfig`, built in exactly one place.

:func:`load_config` layers the built-in defaults, a TOML file (``docs/config.example.toml``
documents every key) and the command line's flags, validates every value once, and returns the
frozen result. Everything else receives that object and trusts it: no module reads a setting
from anywhere else, and nothing re-checks a value.

Every mistake is a :class:`~musicldm_core.errors.BadRequest` whose message names the file, the
section and the key (or the command-line flag) and says what is allowed, for example::

    /home/me/musicldm.toml: [server] port must be an integer from 0 to 65535, got 70000

Precedence, lowest first: built-in defaults ← the TOML file ← ``overrides`` (the CLI). The
mapping settings (``presets``, ``defaults``, ``midi_cc``) merge key by key; every other setting
is replaced whole.

Torch-free and fast to import. :func:`load_config` runs once, on the thread that starts the
daemon (or a CLI command); a :class:`DaemonConfig` is immutable and may be read from any thread.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from daemon.live.midi import CCMapping, parse_cc_map
from daemon.wire.addresses import is_loopback, parse_ip, parse_network
from daemon.wire.contract import (
    AUDIO_IN,
    GENERATE_OPTIONS,
    PLAYBACK_OPTIONS,
    SETTABLE,
    check_option,
)
from musicldm_core.errors import BadRequest
from musicldm_core.spec import (
    DEFAULT_MAX_SECONDS,
    DEFAULT_MODEL,
    DEFAULT_PRESET,
    LIMITS,
    MAX_PROMPT_CHARS,
    MIN_SECONDS,
    PRESETS,
    SAMPLE_FORMATS,
    SAMPLE_RATES,
    SCHEDULER_NAMES,
    Limit,
    Preset,
    check_choice,
    check_int,
    check_number,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_OPTION_KEYS",
    "DTYPES",
    "LOG_LEVELS",
    "SECTIONS",
    "Address",
    "DaemonConfig",
    "default_out_dir",
    "default_state_dir",
    "is_loopback",
    "load_config",
    "parse_host_port",
]

Address = tuple[str, int]
"""A UDP endpoint: (host, port)."""


DTYPES = ("fp16", "bf16", "fp32")
"""Model dtypes; leave ``dtype`` out (or say ``auto``) for fp16 on CUDA, fp32 elsewhere."""

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")

DEFAULT_OPTION_KEYS: tuple[str, ...] = tuple(
    k for k in GENERATE_OPTIONS if k != "id" and k not in AUDIO_IN
)
"""Generate options that ``[defaults]`` may set: all but ``id`` (one id for every job is no id)
and the audio-in options (per request only, :data:`daemon.wire.contract.AUDIO_IN`)."""

_CC_KEYS: dict[str, Limit] = {
    key: option.limit
    for key, option in {**GENERATE_OPTIONS, **PLAYBACK_OPTIONS, **SETTABLE}.items()
    if option.limit is not None and key != "id" and key not in AUDIO_IN
}
"""Numeric options a MIDI CC may drive (``evolve`` too: slots without their own), by range."""

_DEVICE = re.compile(r"cpu|mps|cuda(:\d+)?")
_PRESET_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")  # what an OSC `preset` option can name

_PORT = Limit(0, 65535, integer=True)  # 0: let the OS pick a free port (tests, scripts)
_REPLY_PORT = Limit(1, 65535, integer=True)
_MAX_SECONDS = Limit(MIN_SECONDS, 600.0)
_QUEUE_SIZE = Limit(1, 100_000, integer=True)
_MAX_BATCH = Limit(1, 64, integer=True)
_STALE_SECONDS = Limit(0, 7 * 24 * 3600)
_PROGRESS_RATE_HZ = Limit(0.1, 1000)
_AUDIO_RATE = Limit(8000, 384_000, integer=True)
_AUDIO_BUFFER = Limit(16, 16384, integer=True)
_MIDI_NOTE = Limit(0, 127, integer=True)
_MIDI_CHANNEL = Limit(1, 16, integer=True)


def default_out_dir() -> Path:
    """Where clips land by default: the user's music folder / ``MusicLDM``."""
    from platformdirs import user_music_dir

    return Path(user_music_dir()) / "MusicLDM"


def default_state_dir() -> Path:
    """Where the journal and the clip library live by default: the user's data folder."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("musicldm-daemon"))


@dataclass(frozen=True)
class DaemonConfig:
    """Every setting of the daemon, validated. Built by :func:`load_config`; read-only.

    Units are in the names: ``seconds``, ``sample_rate`` (Hz), ``audio_buffer`` (frames),
    ``tempo`` (BPM), ``progress_rate_hz``. ``None`` means "pick automatically" (``device``,
    ``dtype``, ``max_batch``, ``audio_device``, ``audio_rate``) or "off" (``loudness_lufs``,
    ``audio_file``, ``midi_port``, ``midi_channel``: every channel).
    """

    # [model]
    model: str = DEFAULT_MODEL
    device: str | None = None
    dtype: str | None = None
    max_batch: int | None = None
    """Takes rendered together in one UNet batch; None: 8 on a GPU, 4 on the CPU."""
    # [server]
    host: str = "127.0.0.1"
    port: int = 9000
    reply_to: tuple[Address, ...] = (("127.0.0.1", 9001),)
    allow: tuple[str, ...] = ()
    """Client networks (CIDR) accepted besides loopback; needed to bind a non-loopback host."""
    # [output] (and [server] state)
    out: Path = field(default_factory=default_out_dir)
    state: Path = field(default_factory=default_state_dir)
    day_folders: bool = False
    sample_rate: int = 44100
    sample_format: str = "pcm24"
    loudness_lufs: float | None = None
    max_seconds: float = DEFAULT_MAX_SECONDS
    # [input]
    input_dirs: tuple[Path, ...] = ()
    """Folders besides the output folder whose audio files ``from``/``like`` may read
    (:mod:`daemon.app.inputs`)."""
    # [queue]
    queue_size: int = 256
    stale_live_seconds: float = 120.0
    """Journaled ``live`` jobs older than this are not rendered on restart (they are ended)."""
    # [clock]
    tempo: float = 120.0
    beats_per_bar: int = 4
    # [presets.NAME] and [defaults]
    presets: Mapping[str, Preset] = field(default_factory=lambda: MappingProxyType(dict(PRESETS)))
    defaults: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    """Generate-option defaults from the config, already validated (``loop`` as a bool).
    Empty unless configured: the server's built-in fallbacks (bars 1, ``beats_per_bar``, preset
    ``live``, …) apply to what is not here, so ``[clock] beats_per_bar`` is never shadowed."""
    # [audio]
    audio: bool = True
    audio_device: str | int | None = None
    audio_rate: int | None = None
    audio_buffer: int = 512
    audio_file: Path | None = None
    # [midi], [midi.cc.N], [link]
    midi_port: str | None = None
    midi_virtual: bool = False
    midi_base_note: int = 36
    midi_channel: int | None = None
    midi_clock: bool = True
    midi_cc: Mapping[int, CCMapping] = field(default_factory=lambda: MappingProxyType({}))
    link: bool = False
    # [model] warmup, [log], [server] progress_rate_hz
    warmup: bool = True
    compile: bool = False
    compile_batches: tuple[int, ...] | None = None  # takes/batch compiled; None: by device
    log_level: str = "info"
    progress_rate_hz: float = 20.0


_FIELD_NAMES = tuple(f.name for f in fields(DaemonConfig))
_MAPPING_FIELDS = ("presets", "defaults", "midi_cc")

SECTIONS: dict[str, dict[str, str]] = {
    "server": {
        "host": "host",
        "port": "port",
        "reply_to": "reply_to",
        "allow": "allow",
        "state": "state",
        "progress_rate_hz": "progress_rate_hz",
    },
    "model": {
        "source": "model",
        "device": "device",
        "dtype": "dtype",
        "warmup": "warmup",
        "compile": "compile",
        "compile_batches": "compile_batches",
        "max_batch": "max_batch",
    },
    "output": {
        "folder": "out",
        "day_folders": "day_folders",
        "rate": "sample_rate",
        "format": "sample_format",
        "loudness_lufs": "loudness_lufs",
        "max_seconds": "max_seconds",
    },
    "input": {"folders": "input_dirs"},
    "queue": {"size": "queue_size", "stale_live_seconds": "stale_live_seconds"},
    "clock": {"tempo": "tempo", "beats_per_bar": "beats_per_bar"},
    "defaults": {},  # any key of DEFAULT_OPTION_KEYS
    "presets": {},  # [presets.NAME] tables of _PRESET_KEYS
    "audio": {
        "enabled": "audio",
        "device": "audio_device",
        "rate": "audio_rate",
        "buffer": "audio_buffer",
        "file": "audio_file",
    },
    "midi": {
        "port": "midi_port",
        "virtual": "midi_virtual",
        "base_note": "midi_base_note",
        "channel": "midi_channel",
        "clock": "midi_clock",
        # and [midi.cc.N] tables
    },
    "link": {"enabled": "link"},
    "log": {"level": "log_level"},
}
"""The TOML layout: section → {key in the file: :class:`DaemonConfig` field}."""

_PRESET_KEYS = ("steps", "guidance", "scheduler", "negative")


# -- where a value came from, for messages -----------------------------------------------------


@dataclass(frozen=True)
class _Where:
    """Names a setting in an error message (``label``) and in ``BadRequest.key`` (``key``).

    ``base`` is the folder relative paths are taken from: the config file's folder, or None
    (the current directory) for the command line.
    """

    label: str
    key: str
    base: Path | None = None

    def fail(self, problem: str) -> BadRequest:
        return BadRequest(f"{self.label} {problem}", key=self.key)

    def check(self, checker: Callable[..., Any], value: Any, *args: Any) -> Any:
        """Run one of ``musicldm_core.spec``'s checks, naming this setting in its message."""
        try:
            return checker(self.label, value, *args)
        except BadRequest as exc:
            raise BadRequest(exc.message, key=self.key) from None


def _in_file(path: Path, section: str, key: str) -> _Where:
    return _Where(f"{path}: [{section}] {key}", f"{section}.{key}", path.parent)


def _on_command_line(name: str) -> _Where:
    return _Where("--" + name.replace("_", "-"), name)


# -- value checks: (where, raw value) → normalised value ---------------------------------------


def _bool(where: _Where, value: Any) -> bool:
    if not isinstance(value, bool):
        raise where.fail(f"must be true or false, got {value!r}")
    return value


def _text(where: _Where, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise where.fail(f"must be non-empty text, got {value!r}")
    return value.strip()


def _auto(check: Callable[[_Where, Any], Any]) -> Callable[[_Where, Any], Any]:
    """Let ``"auto"`` (any case) stand for None, "pick automatically"."""

    def checked(where: _Where, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() == "auto":
            return None
        return check(where, value)

    return checked


def _int_in(limit: Limit) -> Callable[[_Where, Any], int]:
    return lambda where, value: where.check(check_int, value, limit)


def _number_in(limit: Limit) -> Callable[[_Where, Any], float]:
    return lambda where, value: where.check(check_number, value, limit)


def _path(where: _Where, value: Any) -> Path:
    if isinstance(value, Path):
        path = value
    elif isinstance(value, str) and value.strip():
        path = Path(value.strip())
    else:
        raise where.fail(f"must be a folder or file path, got {value!r}")
    path = path.expanduser()
    if where.base is not None and not path.is_absolute():
        path = where.base / path  # relative to the config file, not to wherever we started
    # Absolute (from the current folder) from here on: the paths the daemon sends in replies
    # and logs must work for a client started in another folder.
    return Path(os.path.abspath(path))


def _folders(where: _Where, value: Any) -> tuple[Path, ...]:
    """A list of existing folders (absolute; each once)."""
    if isinstance(value, str | Path | Mapping) or not isinstance(value, Iterable):
        raise where.fail(f'must be a list of folders such as ["~/Samples"], got {value!r}')
    folders: list[Path] = []
    for item in value:
        folder = _path(where, item)
        if not folder.is_dir():
            raise where.fail(f"names {folder}, which is not an existing folder")
        if folder not in folders:
            folders.append(folder)
    return tuple(folders)


def _model(where: _Where, value: Any) -> str:
    text = _text(where, value if not isinstance(value, Path) else str(value))
    return str(Path(text).expanduser()) if text.startswith("~") else text


def _device(where: _Where, value: Any) -> str:
    if not isinstance(value, str) or not _DEVICE.fullmatch(value.strip().lower()):
        raise where.fail(f"must be auto, cpu, cuda, cuda:N or mps, got {value!r}")
    return value.strip().lower()


def _dtype(where: _Where, value: Any) -> str:
    aliases = {"float16": "fp16", "half": "fp16", "bfloat16": "bf16", "float32": "fp32"}
    name = value.strip().lower() if isinstance(value, str) else ""  # a list: no dtype, no crash
    name = aliases.get(name, name)
    if name not in DTYPES:
        raise where.fail(f"must be auto, {', '.join(DTYPES)}, got {value!r}")
    return name


def _host(where: _Where, value: Any) -> str:
    host = _text(where, value)
    if any(c.isspace() for c in host) or (":" in host and not _is_ip(host)):
        raise where.fail(f"must be an IP address or a host name, got {value!r}")
    return host


def _reply_to(where: _Where, value: Any) -> tuple[Address, ...]:
    if isinstance(value, str | Mapping) or not isinstance(value, Iterable):
        raise where.fail(f'must be a list of "HOST:PORT" texts, got {value!r}')
    targets: list[Address] = []
    for item in value:
        if isinstance(item, str):
            target = parse_host_port(item, name=where.label, key=where.key)
        elif isinstance(item, tuple | list) and len(item) == 2:
            host = _host(where, item[0])
            target = (host, where.check(check_int, item[1], _REPLY_PORT))
        else:
            raise where.fail(f'entries must be "HOST:PORT" texts, got {item!r}')
        if target not in targets:  # the same address never gets a reply twice
            targets.append(target)
    return tuple(targets)


def _allow(where: _Where, value: Any) -> tuple[str, ...]:
    if isinstance(value, str | Mapping) or not isinstance(value, Iterable):
        raise where.fail(f'must be a list of networks such as "192.168.1.0/24", got {value!r}')
    networks: list[str] = []
    for item in value:
        try:
            network = str(parse_network(item))
        except (AttributeError, TypeError, ValueError):
            raise where.fail(
                f'entries must be networks (CIDR) such as "192.168.1.0/24" or "10.0.0.5", '
                f"got {item!r}"
            ) from None
        if network not in networks:
            networks.append(network)
    return tuple(networks)


def _sample_rate(where: _Where, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value not in SAMPLE_RATES:
        raise where.fail(f"must be one of {', '.join(map(str, SAMPLE_RATES))} Hz, got {value!r}")
    return value


def _choice(choices: tuple[str, ...]) -> Callable[[_Where, Any], str]:
    return lambda where, value: where.check(check_choice, value, choices)


def _audio_device(where: _Where, value: Any) -> str | int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value  # a device index, as `python -m sounddevice` lists them
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise where.fail(f"must be a device name (or part of one) or an index, got {value!r}")


def _batch_sizes(where: _Where, value: Any) -> tuple[int, ...]:
    """Take counts: ``[1, 2, 4]``, or ``"1,2,4"`` from the command line."""
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
        value = [int(v) if v.isdigit() else v for v in value]  # check_int names a bad one
    if not isinstance(value, (list, tuple)) or not value:
        raise where.fail(f"must be a list of take counts like [1, 2, 4], got {value!r}")
    return tuple(sorted({where.check(check_int, v, _MAX_BATCH) for v in value}))


def _midi_port(where: _Where, value: Any) -> str:
    return _text(where, value)


_FIELD_CHECKS: dict[str, Callable[[_Where, Any], Any]] = {
    "model": _model,
    "device": _auto(_device),
    "dtype": _auto(_dtype),
    "max_batch": _auto(_int_in(_MAX_BATCH)),
    "host": _host,
    "port": _int_in(_PORT),
    "reply_to": _reply_to,
    "allow": _allow,
    "out": _path,
    "state": _path,
    "day_folders": _bool,
    "sample_rate": _sample_rate,
    "sample_format": _choice(SAMPLE_FORMATS),
    "loudness_lufs": _number_in(LIMITS["loudness"]),
    "max_seconds": _number_in(_MAX_SECONDS),
    "input_dirs": _folders,
    "queue_size": _int_in(_QUEUE_SIZE),
    "stale_live_seconds": _number_in(_STALE_SECONDS),
    "tempo": _number_in(LIMITS["bpm"]),
    "beats_per_bar": _int_in(LIMITS["beats"]),
    "audio": _bool,
    "audio_device": _auto(_audio_device),
    "audio_rate": _auto(_int_in(_AUDIO_RATE)),
    "audio_buffer": _int_in(_AUDIO_BUFFER),
    "audio_file": _path,
    "midi_port": _midi_port,
    "midi_virtual": _bool,
    "midi_base_note": _int_in(_MIDI_NOTE),
    "midi_channel": _int_in(_MIDI_CHANNEL),
    "midi_clock": _bool,
    "link": _bool,
    "warmup": _bool,
    "compile": _bool,
    "compile_batches": _auto(_batch_sizes),
    "log_level": _choice(LOG_LEVELS),
    "progress_rate_hz": _number_in(_PROGRESS_RATE_HZ),
}


# -- public helpers ----------------------------------------------------------------------------


def _is_ip(host: str) -> bool:
    return parse_ip(host) is not None and not host.strip().startswith("[")


def parse_host_port(text: str, *, name: str = "reply_to", key: str = "reply_to") -> Address:
    """``"HOST:PORT"`` (IPv6 in brackets: ``"[::1]:9001"``) as ``(host, port)``.

    The port must be 1–65535. Raises :class:`BadRequest` naming ``name`` (how the setting is
    shown to the user) otherwise; ``key`` becomes the error's ``key``. Pure; any thread.
    """
    where = _Where(name, key)
    example = "(e.g. 127.0.0.1:9001 or [::1]:9001)"
    if not isinstance(text, str):
        raise where.fail(f"must be HOST:PORT {example}, got {text!r}")
    host, sep, port_text = text.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if not _is_ip(host):
            raise where.fail(f"must be HOST:PORT {example}, got {text!r}")
    elif ":" in host:
        raise where.fail(f"must be HOST:PORT with an IPv6 host in brackets {example}, got {text!r}")
    if not sep or not host or any(c.isspace() for c in host) or not port_text.isdigit():
        raise where.fail(f"must be HOST:PORT {example}, got {text!r}")
    port = int(port_text)
    if not _REPLY_PORT.lo <= port <= _REPLY_PORT.hi:
        raise where.fail(f"port must be from 1 to 65535, got {text!r}")
    return host, port


# -- the mapping settings -----------------------------------------------------------------------


def _negative(where: _Where, value: Any) -> str:
    if not isinstance(value, str) or len(value) > MAX_PROMPT_CHARS:
        raise where.fail(f"must be text of at most {MAX_PROMPT_CHARS} characters, got {value!r}")
    return " ".join(value.split())


def _preset(where: _Where, name: str, table: Any, base: Preset) -> Preset:
    """``base`` with the fields of one ``[presets.NAME]`` table (or a Preset) applied."""
    if isinstance(table, Preset):
        table = {
            "steps": table.steps,
            "guidance": table.guidance,
            "scheduler": table.scheduler,
            "negative": table.negative_prompt,
        }
    if not isinstance(table, Mapping):
        raise where.fail(f"must be a table with {', '.join(_PRESET_KEYS)}, got {table!r}")
    unknown = sorted(set(map(str, table)) - set(_PRESET_KEYS))
    if unknown:
        raise where.fail(
            f"has unknown key(s) {', '.join(unknown)}; allowed: {', '.join(_PRESET_KEYS)}"
        )

    def at(key: str) -> _Where:
        return replace(where, label=f"{where.label} {key}", key=f"{where.key}.{key}")

    preset = replace(base, name=name)
    if "steps" in table:
        preset = replace(
            preset, steps=at("steps").check(check_int, table["steps"], LIMITS["steps"])
        )
    if "guidance" in table:
        guidance = at("guidance").check(check_number, table["guidance"], LIMITS["guidance"])
        preset = replace(preset, guidance=guidance)
    if "scheduler" in table:
        scheduler = at("scheduler").check(check_choice, table["scheduler"], SCHEDULER_NAMES)
        preset = replace(preset, scheduler=scheduler)
    if "negative" in table:
        preset = replace(preset, negative_prompt=_negative(at("negative"), table["negative"]))
    return preset


def _merge_presets(
    presets: dict[str, Preset], tables: Any, where: Callable[[str], _Where], whole: _Where
) -> None:
    """Apply ``{NAME: table}`` to ``presets``: a known name is changed field by field, a new one
    starts from ``live``'s settings."""
    if not isinstance(tables, Mapping):
        raise whole.fail(f"must be tables of preset settings, got {tables!r}")
    for name, table in tables.items():
        if not isinstance(name, str) or not _PRESET_NAME.fullmatch(name):
            raise whole.fail(
                f"names must be 1-64 letters, digits, _ or - (an OSC preset name), got {name!r}"
            )
        base = presets.get(name, presets.get(DEFAULT_PRESET, PRESETS[DEFAULT_PRESET]))
        presets[name] = _preset(where(name), name, table, base)


def _collect_defaults(
    defaults: dict[str, tuple[Any, _Where]],
    table: Any,
    where: Callable[[str], _Where],
    whole: _Where,
) -> None:
    """Record ``[defaults]`` values; they are checked once ``max_seconds`` is known."""
    if not isinstance(table, Mapping):
        raise whole.fail(f"must be a table of generate options, got {table!r}")
    for key, value in table.items():
        if key not in DEFAULT_OPTION_KEYS:
            raise where(str(key)).fail(
                f"is not an option [defaults] can set; allowed: {', '.join(DEFAULT_OPTION_KEYS)}"
            )
        defaults[key] = (value, where(key))


def _checked_default(key: str, value: Any, where: _Where, max_seconds: float) -> Any:
    """One ``[defaults]`` value, checked by the same rules as the request option ``key``."""
    try:
        return check_option(key, value, max_seconds=max_seconds)
    except BadRequest as exc:
        # the protocol's messages start with the option's name; name the setting instead
        problem = exc.message.removeprefix(key).lstrip()
        raise where.fail(problem) from None


def _collect_cc(
    cc_map: dict[int, tuple[CCMapping, _Where]],
    table: Any,
    where: Callable[[int], _Where],
    whole: _Where,
) -> None:
    """Record ``[midi.cc.N]`` mappings; their ranges are checked once ``max_seconds`` is known."""
    if not isinstance(table, Mapping):
        raise whole.fail(f"must be tables of CC mappings ([midi.cc.N]), got {table!r}")
    tables = {n: entry for n, entry in table.items() if not isinstance(entry, CCMapping)}
    try:
        mappings = parse_cc_map(tables)
    except ValueError as exc:
        raise whole.fail(str(exc)) from None
    for number, entry in table.items():
        if isinstance(entry, CCMapping):  # from code rather than TOML: already a mapping
            if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number <= 127:
                raise whole.fail(f"controller must be in range 0..127, got {number!r}")
            mappings[number] = entry
    for number, mapping in mappings.items():
        cc_map[number] = (mapping, where(number))


def _checked_cc(mapping: CCMapping, where: _Where, max_seconds: float) -> CCMapping:
    limit = _CC_KEYS.get(mapping.key)
    if limit is None:
        raise where.fail(
            f"key must be a numeric option, one of {', '.join(_CC_KEYS)}, got {mapping.key!r}"
        )
    if mapping.key == "seconds":
        limit = replace(limit, hi=max_seconds)
    number_limit = replace(limit, integer=False)  # CC values are rounded for integer options
    for bound, value in (("min", mapping.lo), ("max", mapping.hi)):
        replace(where, label=f"{where.label} {bound}").check(check_number, value, number_limit)
    return mapping


# -- building -----------------------------------------------------------------------------------


def _read_toml(path: Path) -> dict[str, Any]:
    where = _Where(f"config file {path}", "config")
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except FileNotFoundError:
        raise where.fail("does not exist; leave out --config to use the defaults") from None
    except IsADirectoryError:
        raise where.fail("is a folder, not a TOML file") from None
    except OSError as exc:
        raise where.fail(f"cannot be read: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:  # binary: not UTF-8 at all
        raise where.fail(f"is not valid TOML: {exc}") from None


class _Builder:
    """Collects settings from the file and the overrides, then checks what spans settings."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.origin: dict[str, _Where] = {}
        self.presets: dict[str, Preset] = dict(PRESETS)
        self.defaults: dict[str, tuple[Any, _Where]] = {}
        self.cc_map: dict[int, tuple[CCMapping, _Where]] = {}

    def set(self, name: str, value: Any, where: _Where) -> None:
        self.values[name] = _FIELD_CHECKS[name](where, value)
        self.origin[name] = where

    def read_file(self, path: Path) -> None:
        data = _read_toml(path)
        allowed = ", ".join(SECTIONS)
        for section, table in data.items():
            if section not in SECTIONS:
                raise BadRequest(
                    f"{path}: unknown section [{section}]; allowed: {allowed}", key=section
                )
            if not isinstance(table, dict):
                raise BadRequest(
                    f"{path}: {section} must be a section ([{section}]), got {table!r}",
                    key=section,
                )
            whole = _Where(f"{path}: [{section}]", section, path.parent)
            if section == "presets":
                _merge_presets(
                    self.presets,
                    table,
                    lambda name: _Where(f"{path}: [presets.{name}]", f"presets.{name}"),
                    whole,
                )
            elif section == "defaults":
                _collect_defaults(
                    self.defaults, table, lambda key: _in_file(path, "defaults", key), whole
                )
            else:
                self._read_section(path, section, table)

    def _read_section(self, path: Path, section: str, table: dict[str, Any]) -> None:
        keys = SECTIONS[section]
        extra = ("cc",) if section == "midi" else ()
        for key, value in table.items():
            if section == "midi" and key == "cc":
                _collect_cc(
                    self.cc_map,
                    value,
                    lambda n: _Where(f"{path}: [midi.cc.{n}]", f"midi.cc.{n}"),
                    _Where(f"{path}:", "midi.cc"),
                )
            elif key in keys:
                self.set(keys[key], value, _in_file(path, section, key))
            else:
                raise BadRequest(
                    f"{path}: [{section}] has no key {key!r}; allowed: "
                    f"{', '.join([*keys, *extra])}",
                    key=f"{section}.{key}",
                )

    def apply(self, overrides: Mapping[str, Any]) -> None:
        for name, value in overrides.items():
            if value is None:
                continue  # a flag that was not given
            where = _on_command_line(name)
            if name == "presets":
                _merge_presets(
                    self.presets, value, lambda n: _Where(f"--presets {n}", f"presets.{n}"), where
                )
            elif name == "defaults":
                _collect_defaults(
                    self.defaults, value, lambda k: _Where(f"--{k}", f"defaults.{k}"), where
                )
            elif name == "midi_cc":
                _collect_cc(
                    self.cc_map, value, lambda n: _Where(f"--midi-cc {n}", f"midi.cc.{n}"), where
                )
            elif name in _FIELD_CHECKS:
                self.set(name, value, where)
            else:
                raise BadRequest(
                    f"unknown setting {name!r}; allowed: {', '.join(_FIELD_NAMES)}", key=name
                )

    def build(self) -> DaemonConfig:
        values = dict(self.values)
        max_seconds = values.get("max_seconds", DEFAULT_MAX_SECONDS)
        defaults = {
            key: _checked_default(key, value, where, max_seconds)
            for key, (value, where) in self.defaults.items()
        }
        preset = defaults.get("preset")
        if preset is not None and preset not in self.presets:
            raise self.defaults["preset"][1].fail(
                f"names no preset; the presets are {', '.join(sorted(self.presets))}, "
                f"got {preset!r}"
            )
        cc_map = {
            number: _checked_cc(mapping, where, max_seconds)
            for number, (mapping, where) in sorted(self.cc_map.items())
        }
        config = DaemonConfig(
            **values,
            presets=MappingProxyType(self.presets),
            defaults=MappingProxyType(defaults),
            midi_cc=MappingProxyType(cc_map),
        )
        if not is_loopback(config.host) and not config.allow:
            where = self.origin.get("host", _Where("host", "host"))
            raise BadRequest(
                f"{where.label} is {config.host!r}, not a loopback address: binding another "
                "address needs an allow-list of client networks ([server] allow = "
                '["192.168.1.0/24"], or --allow CIDR); packets from elsewhere are dropped',
                key="allow",
            )
        return config


def load_config(path: Path | None, overrides: Mapping[str, Any] | None = None) -> DaemonConfig:
    """Build the daemon's one config: built-in defaults ← the TOML file at ``path`` ← overrides.

    ``overrides`` are the command line's settings, keyed by :class:`DaemonConfig` field name;
    None values (flags not given) are skipped. ``presets``, ``defaults`` and ``midi_cc`` merge key
    by key; other values replace the file's. Relative paths in the file are taken from the file's
    folder; ``~`` is expanded everywhere.

    Raises :class:`BadRequest` naming the file, section and key (or the flag) and what is allowed:
    for an unknown section or key, a wrong type, a value out of range, or a missing file. Call it
    once, at start-up, on the starting thread.
    """
    builder = _Builder()
    if path is not None:
        builder.read_file(Path(path).expanduser())
    if overrides:
        builder.apply(overrides)
    return builder.build()
