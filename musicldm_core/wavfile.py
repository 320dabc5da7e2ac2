"""WAV files a DAW reads with their tempo and loop: encoding, naming and atomic writing.

Used by :mod:`musicldm_core.render` (``save_clip``) on the engine's thread, by the daemon's
``clips`` listing and by tests (:func:`read_clip_info`), and by the CLI to check the output folder
before the model loads (:func:`ensure_writable`).

The RIFF/WAVE file is written by hand, because no library writes the ``acid`` chunk that tells
Ableton Live, FL Studio, Reaper and Acid the clip's tempo and length in beats. Layout::

    RIFF <size> WAVE
      fmt    format, channels, rate, bits
      fact   frames (float32 only, as the spec asks of non-PCM data)
      acid   one-shot/loop, root note, beats, meter, tempo
      smpl   one forward loop over the whole clip, for samplers
      LIST   INFO: INAM title (the prompt), ISFT software, ICMT settings (JSON), ICRD date
      data   little-endian samples, interleaved

Every chunk is padded to an even length; its size field counts the unpadded bytes.
"""

from __future__ import annotations

import errno
import logging
import math
import os
import re
import secrets
import struct
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from .dsp import tpdf_dither
from .errors import OutputError

__all__ = [
    "ClipTags",
    "clip_stem",
    "encode_wav",
    "ensure_writable",
    "make_folder",
    "read_clip_info",
    "safe_stem",
    "tagged_bars",
    "write_wav_atomic",
]

log = logging.getLogger(__name__)

_FORMAT_PCM = 1
_FORMAT_FLOAT = 3
_FORMAT_EXTENSIBLE = 0xFFFE

_SAMPLE_FORMATS: dict[str, tuple[int, int]] = {
    # name: (WAVE format tag, bits per sample)
    "pcm16": (_FORMAT_PCM, 16),
    "pcm24": (_FORMAT_PCM, 24),
    "float32": (_FORMAT_FLOAT, 32),
}

_DITHER_SEED = 0x5EED
"""16-bit dither is seeded, so the same audio always makes the same file."""

_ACID_ONE_SHOT = 0x01
_ACID_ROOT_NOTE_SET = 0x02
_ACID_STRETCH = 0x04
_ACID = struct.Struct("<IHHfIHHf")
_SMPL_HEADER = struct.Struct("<9I")
_SMPL_LOOP = struct.Struct("<6I")

_INFO_FIELDS = {"INAM": "title", "ISFT": "software", "ICMT": "comment", "ICRD": "created"}

_MAX_SMALL_CHUNK = 1 << 20
"""Chunks other than ``data`` larger than this (bytes) are skipped, not read, when parsing."""


@dataclass(frozen=True)
class ClipTags:
    """What a clip's file says about it besides the samples.

    ``bpm`` and ``beats`` (the clip's length in beats) go to the ``acid`` chunk, so a DAW
    stretches the clip to the session tempo; ``loop`` False marks it one-shot there and gives the
    ``smpl`` chunk no loop. ``title`` (the prompt), ``software``, ``comment`` (every setting, as
    JSON) and ``created`` (an ISO date) go to LIST/INFO.
    """

    title: str
    software: str
    comment: str
    created: str
    bpm: float
    beats: int
    meter_numerator: int = 4
    meter_denominator: int = 4
    loop: bool = True
    root_note: int | None = None
    """The MIDI note of the music's key (60 = C4 … 71 = B4), or None when no key is clear:
    then the ``acid`` chunk's root-note flag is off, so a DAW does not transpose the loop to
    the project key (drums, noise), and the ``smpl`` unity note is 60."""


# --- encoding ----------------------------------------------------------------------------------


def _chunk(chunk_id: bytes, payload: bytes) -> bytes:
    """One RIFF chunk: id, unpadded size, payload and a pad byte when the size is odd."""
    pad = b"\0" if len(payload) % 2 else b""
    return chunk_id + struct.pack("<I", len(payload)) + payload + pad


def _check_range(name: str, value: int, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
        raise ValueError(f"{name} must be a whole number from {lo} to {hi}, got {value!r}")


def _check_tags(tags: ClipTags) -> None:
    if not (math.isfinite(tags.bpm) and tags.bpm > 0):
        raise ValueError(f"bpm must be a positive number, got {tags.bpm!r}")
    _check_range("beats", tags.beats, 0, 2**32 - 1)
    _check_range("meter_numerator", tags.meter_numerator, 1, 2**16 - 1)
    _check_range("meter_denominator", tags.meter_denominator, 1, 2**16 - 1)
    if tags.root_note is not None:
        _check_range("root_note", tags.root_note, 0, 127)


def _frames(audio: np.ndarray) -> np.ndarray:
    """``audio`` as a 2-D (samples, channels) float32 array, refusing what can't be written."""
    array = np.asarray(audio, dtype=np.float32)
    if array.ndim == 1:
        array = array[:, np.newaxis]
    if array.ndim != 2 or array.shape[1] < 1:
        raise ValueError(f"audio must be 1-D or (samples, channels), got shape {array.shape}")
    if array.shape[0] < 1:
        raise ValueError("audio has no samples")
    if not np.all(np.isfinite(array)):
        raise ValueError("audio contains NaN or infinite samples")
    return array


def _pcm(array: np.ndarray, bits: int) -> np.ndarray:
    """Interleaved float samples rounded to ``bits``-bit integers, clipped to the format's range
    (full scale 1.0 = 2 ** (bits - 1), as soundfile and every DAW read it back)."""
    scale = float(2 ** (bits - 1))
    ints = np.rint(array.astype(np.float64).reshape(-1) * scale)
    return np.clip(ints, -scale, scale - 1).astype(np.int32)


def _sample_bytes(array: np.ndarray, sample_format: str) -> bytes:
    if sample_format == "float32":
        return array.reshape(-1).astype("<f4").tobytes()
    if sample_format == "pcm16":
        dithered = tpdf_dither(array, 16, np.random.default_rng(_DITHER_SEED))
        return _pcm(dithered, 16).astype("<i2").tobytes()
    # pcm24: the low three bytes of each little-endian int32.
    return _pcm(array, 24).astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3].tobytes()


def _info_list(tags: ClipTags) -> bytes:
    fields = (
        (b"INAM", tags.title),
        (b"ISFT", tags.software),
        (b"ICMT", tags.comment),
        (b"ICRD", tags.created),
    )
    body = b"".join(_chunk(fid, text.encode("utf-8") + b"\0") for fid, text in fields if text)
    return _chunk(b"LIST", b"INFO" + body)


def encode_wav(audio: np.ndarray, sample_rate: int, sample_format: str, tags: ClipTags) -> bytes:
    """The complete WAV file for ``audio`` (float, full scale ±1.0) at ``sample_rate`` Hz.

    ``audio`` is mono 1-D or (samples, channels). ``sample_format`` is ``"pcm24"`` (rounded to
    nearest), ``"pcm16"`` (TPDF-dithered with a fixed seed, so the bytes are reproducible) or
    ``"float32"`` (IEEE float, with a ``fact`` chunk). Integer formats clip samples beyond full
    scale. The file carries ``acid``, ``smpl`` and LIST/INFO chunks from ``tags``; see the
    module docstring for the layout. Raises :class:`ValueError` for bad arguments.
    """
    if sample_format not in _SAMPLE_FORMATS:
        raise ValueError(
            f"sample_format must be one of {', '.join(_SAMPLE_FORMATS)}, got {sample_format!r}"
        )
    _check_range("sample_rate", sample_rate, 1, 2**32 - 1)
    _check_tags(tags)
    array = _frames(audio)
    samples, channels = array.shape
    format_tag, bits = _SAMPLE_FORMATS[sample_format]
    block_align = channels * bits // 8

    fmt = struct.pack(
        "<HHIIHH", format_tag, channels, sample_rate, sample_rate * block_align, block_align, bits
    )
    if format_tag != _FORMAT_PCM:
        fmt += struct.pack("<H", 0)  # cbSize: non-PCM formats carry it, even when empty
    chunks = [_chunk(b"fmt ", fmt)]
    if format_tag != _FORMAT_PCM:
        chunks.append(_chunk(b"fact", struct.pack("<I", samples)))

    flags = _ACID_STRETCH | (0 if tags.loop else _ACID_ONE_SHOT)
    if tags.root_note is not None:
        flags |= _ACID_ROOT_NOTE_SET
    root = 60 if tags.root_note is None else tags.root_note
    chunks.append(
        _chunk(
            b"acid",
            _ACID.pack(
                flags,
                root,
                0x8000,
                0.0,
                tags.beats,
                tags.meter_denominator,
                tags.meter_numerator,
                tags.bpm,
            ),
        )
    )

    loops = 1 if tags.loop else 0
    smpl = _SMPL_HEADER.pack(0, 0, round(1e9 / sample_rate), root, 0, 0, 0, loops, 0)
    if tags.loop:
        # cue id 0, forward, whole clip; the end is inclusive per the spec; play forever.
        smpl += _SMPL_LOOP.pack(0, 0, 0, samples - 1, 0, 0)
    chunks.append(_chunk(b"smpl", smpl))
    chunks.append(_info_list(tags))

    data = _sample_bytes(array, sample_format)
    chunks.append(_chunk(b"data", data))
    body = b"WAVE" + b"".join(chunks)
    if len(body) > 2**32 - 1:
        raise ValueError(f"a WAV file holds at most 4 GiB; this clip needs {len(body)} bytes")
    return b"RIFF" + struct.pack("<I", len(body)) + body


# --- reading -----------------------------------------------------------------------------------


def _format_name(format_tag: int, bits: int) -> str:
    if format_tag == _FORMAT_PCM:
        return f"pcm{bits}"
    if format_tag == _FORMAT_FLOAT:
        return f"float{bits}"
    return f"format-0x{format_tag:04x}"


def _parse_fmt(payload: bytes, info: dict[str, Any]) -> None:
    if len(payload) < 16:
        raise ValueError(f"fmt chunk is {len(payload)} bytes, at least 16 expected")
    format_tag, channels, rate, _byte_rate, block_align, bits = struct.unpack_from(
        "<HHIIHH", payload
    )
    if format_tag == _FORMAT_EXTENSIBLE and len(payload) >= 26:
        # The real format is the first two bytes of the SubFormat GUID.
        (format_tag,) = struct.unpack_from("<H", payload, 24)
    info.update(
        sample_rate=rate,
        channels=channels,
        bits=bits,
        format=_format_name(format_tag, bits),
        block_align=block_align,
    )


def _parse_acid(payload: bytes) -> dict[str, Any] | None:
    if len(payload) < _ACID.size:
        return None
    flags, root, _unknown, _unknown2, beats, denominator, numerator, bpm = _ACID.unpack_from(
        payload
    )
    return {
        "bpm": float(bpm),
        "beats": beats,
        "numerator": numerator,
        "denominator": denominator,
        "one_shot": bool(flags & _ACID_ONE_SHOT),
        "root_note": root if flags & _ACID_ROOT_NOTE_SET else None,
    }


def _parse_smpl(payload: bytes) -> list[tuple[int, int]]:
    if len(payload) < _SMPL_HEADER.size:
        return []
    count = _SMPL_HEADER.unpack_from(payload)[7]
    loops = []
    for index in range(count):
        offset = _SMPL_HEADER.size + index * _SMPL_LOOP.size
        if offset + _SMPL_LOOP.size > len(payload):
            break
        _cue, _kind, start, end, _fraction, _plays = _SMPL_LOOP.unpack_from(payload, offset)
        loops.append((start, end))
    return loops


def _parse_info(payload: bytes) -> dict[str, str]:
    fields: dict[str, str] = {}
    if payload[:4] != b"INFO":
        return fields
    pos = 4
    while pos + 8 <= len(payload):
        field_id = payload[pos : pos + 4].decode("latin-1")
        (size,) = struct.unpack_from("<I", payload, pos + 4)
        text = payload[pos + 8 : pos + 8 + size].split(b"\0", 1)[0]
        fields[_INFO_FIELDS.get(field_id, field_id)] = text.decode("utf-8", errors="replace")
        pos += 8 + size + size % 2
    return fields


def _walk(handle: BinaryIO, file_size: int, info: dict[str, Any]) -> int | None:
    """Read the chunks after ``WAVE`` into ``info``; returns the data chunk's byte count."""
    data_bytes = None
    pos = 12
    while pos + 8 <= file_size:
        handle.seek(pos)
        header = handle.read(8)
        chunk_id = header[:4]
        (size,) = struct.unpack("<I", header[4:])
        available = min(size, file_size - pos - 8)  # a truncated last chunk is tolerated
        if chunk_id == b"data":
            data_bytes = available
        elif available <= _MAX_SMALL_CHUNK:
            payload = handle.read(available)
            if chunk_id == b"fmt ":
                _parse_fmt(payload, info)
            elif chunk_id == b"acid":
                info["acid"] = _parse_acid(payload)
            elif chunk_id == b"smpl":
                info["loops"] = _parse_smpl(payload)
            elif chunk_id == b"LIST":
                info["info"].update(_parse_info(payload))
        pos += 8 + size + size % 2
    return data_bytes


def read_clip_info(path: Path | str) -> dict[str, Any]:
    """What a WAV file says about itself, without reading its samples.

    Returns a dict with ``sample_rate`` (Hz), ``channels``, ``bits``, ``format`` (``"pcm16"``,
    ``"pcm24"``, ``"float32"``, … as in :func:`encode_wav`), ``samples`` (frames per channel),
    ``seconds``, ``acid`` (``bpm``, ``beats``, ``numerator``, ``denominator``, ``one_shot``,
    ``root_note``; None without an ``acid`` chunk), ``loops`` (the ``smpl`` loops as inclusive
    (start, end) sample pairs) and ``info`` (``title``, ``software``, ``comment``, ``created``
    and any other INFO field under its four-letter id; only those present). Files from other
    software are read too. Raises :class:`ValueError` if the file is not a RIFF/WAVE file with a
    ``fmt`` chunk, and :class:`OSError` if it can't be read.
    """
    path = Path(path)
    info: dict[str, Any] = {"acid": None, "loops": [], "info": {}}
    with path.open("rb") as handle:
        file_size = os.fstat(handle.fileno()).st_size
        head = handle.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            raise ValueError(f"{path} is not a RIFF/WAVE file")
        data_bytes = _walk(handle, file_size, info)
    if "sample_rate" not in info:
        raise ValueError(f"{path} has no fmt chunk")
    block_align = info.pop("block_align") or 1
    info["samples"] = (data_bytes or 0) // block_align
    info["seconds"] = info["samples"] / info["sample_rate"] if info["sample_rate"] else 0.0
    return info


def tagged_bars(path: Path | str, beats_per_bar: int) -> int | None:
    """How many bars of ``beats_per_bar`` beats the WAV at ``path`` says it holds (its ACID
    chunk's beat count, as this project and most DAWs write it), or None when it does not say
    (no ACID chunk, a one-shot, not a WAV, unreadable). Audio in uses it so a variation or a
    repaint of a clip keeps the clip's length unless the request names one."""
    try:
        acid = read_clip_info(path)["acid"]
    except (OSError, ValueError):
        return None
    if not acid or acid.get("one_shot") or not acid.get("beats") or beats_per_bar <= 0:
        return None
    return max(1, round(int(acid["beats"]) / beats_per_bar))


# --- names -------------------------------------------------------------------------------------

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_DASHES = re.compile(r"-{2,}")
_DOTS = re.compile(r"\.{2,}")
_EDGES = "-._"
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {
    f"{kind}{n}" for kind in ("COM", "LPT") for n in range(1, 10)
}


def safe_stem(text: str, *, max_chars: int = 60) -> str:
    """``text`` made into a file name stem that is safe on every system, at most ``max_chars``.

    Accents are dropped (``café`` → ``cafe``); anything but ``A-Z a-z 0-9 . _ -`` becomes ``-``;
    runs of ``-`` and of ``.`` collapse to one; ``-``, ``.`` and ``_`` are stripped from both
    ends. The result never holds a path separator or ``..`` and never starts with a dot, so a
    name like ``../../etc/passwd`` stays inside the output folder (``etc-passwd``). Returns
    ``"clip"`` when nothing is left.
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be at least 1, got {max_chars}")
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    stem = _DOTS.sub(".", _DASHES.sub("-", _UNSAFE.sub("-", plain))).strip(_EDGES)
    stem = stem[:max_chars].strip(_EDGES)
    if not stem:
        return "clip"
    base, dot, rest = stem.partition(".")
    if base.upper() in _WINDOWS_RESERVED:  # CON, NUL.txt, COM1: devices, not files, on Windows
        stem = f"{base[: max_chars - 1]}_{dot}{rest}"[:max_chars].rstrip("-.")
    return stem


def _number(value: float) -> str:
    """``90``, ``92.5``, ``120.333``: no needless decimals, at most three."""
    return f"{round(value, 3):g}"


def clip_stem(
    prompt: str,
    *,
    bpm: float,
    bars: int | None,
    seed: int,
    when: datetime,
    name: str | None = None,
    seconds: float | None = None,
) -> str:
    """The file name stem of a clip, e.g. ``20261125-070102_warm-lofi-piano_90bpm_2bars_s3``.

    Local time ``when``, the prompt's slug (lower case, at most 40 characters) or, when ``name``
    is given, ``safe_stem(name)`` as the user wrote it, the tempo, the length (``2bars``; for a
    clip given in seconds, ``bars`` None and e.g. ``2.5s`` from ``seconds``), and the seed.
    """
    slug = safe_stem(name) if name else safe_stem(prompt.lower(), max_chars=40)
    parts = [when.strftime("%Y%m%d-%H%M%S"), slug, f"{_number(bpm)}bpm"]
    if bars is not None:
        parts.append(f"{bars}bars")
    elif seconds is not None:
        parts.append(f"{_number(seconds)}s")
    parts.append(f"s{seed}")
    return "_".join(parts)


# --- writing -----------------------------------------------------------------------------------

_NO_HARD_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS}
"""What ``link`` says on file systems without hard links (FAT, exFAT, some network shares)."""

_MAX_NAME_TRIES = 10_000


def _os_message(error: OSError) -> str:
    return error.strerror or str(error)


def make_folder(folder: Path, what: str = "output folder") -> None:
    """Create ``folder`` with its parents if needed; :class:`OutputError` naming it as ``what``
    and giving the system's reason when that fails."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"cannot create the {what} {folder}: {_os_message(error)}") from error


def _open_temporary(folder: Path, stem: str) -> tuple[Path, int]:
    """A new hidden ``.partial`` file in ``folder``, opened for writing.

    Created with O_EXCL and mode 0o666 (so the user's umask applies, as for any saved file;
    ``tempfile`` would make it private to the daemon's user).
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        path = folder / f".{stem}.{secrets.token_hex(4)}.partial"
        try:
            return path, os.open(path, flags, 0o666)
        except FileExistsError:
            continue


def _fsync_folder(folder: Path) -> None:
    """Make the new name durable too (POSIX); not possible, nor needed, everywhere."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _claim_name(temporary: Path, target: Path) -> bool:
    """Give ``temporary``'s file the name ``target`` too, unless that is taken; True if given.

    After a hard link both names remain (the caller removes the temporary one); after the
    fallback rename only ``target`` does.
    """
    try:
        os.link(temporary, target)  # fails if target exists: no race between two writers
    except FileExistsError:
        return False
    except OSError as error:
        if error.errno not in _NO_HARD_LINKS:
            raise
        # No hard links here: check, then rename (a writer racing within the gap could lose).
        if os.path.lexists(target):
            return False
        os.replace(temporary, target)
    return True


def _names_in(folder: Path) -> set[str]:
    """The names in ``folder``, case-folded; empty when it cannot be listed (the hard link
    still refuses an exact name that is taken)."""
    try:
        return {name.casefold() for name in os.listdir(folder)}
    except OSError:
        return set()


def write_wav_atomic(folder: Path, stem: str, data: bytes) -> Path:
    """Write ``data`` to ``folder/stem.wav`` so that it appears complete or not at all.

    The bytes go to a hidden ``.partial`` file in ``folder`` first (flushed and fsynced), which is
    then given its final name without ever replacing an existing file: when ``stem.wav`` is
    taken, ``stem-2.wav``, ``stem-3.wav``, … are tried. A name is taken also when it differs
    from an existing one only in case (``Kick.wav`` vs ``kick.wav``): on a case-sensitive disk
    both could exist, but a folder copied or shared to macOS or Windows would then hold one clip
    where there were two. ``folder`` is created with its parents if missing. Returns the final
    path. On any failure the temporary file is removed and :class:`OutputError` names the folder
    and the system's reason.
    """
    if not stem or stem.startswith(".") or any(c in stem for c in "/\\\0"):
        raise ValueError(f"stem must be a plain file name without a leading dot, got {stem!r}")
    folder = Path(folder)
    make_folder(folder)
    temporary: Path | None = None
    try:
        temporary, fd = _open_temporary(folder, stem)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        taken = _names_in(folder)
        for number in range(1, _MAX_NAME_TRIES + 1):
            target = folder / (f"{stem}.wav" if number == 1 else f"{stem}-{number}.wav")
            if target.name.casefold() in taken:
                continue
            if _claim_name(temporary, target):
                _fsync_folder(folder)
                return target
        raise OutputError(
            f"cannot write {stem}.wav into {folder}: {_MAX_NAME_TRIES} files of that name exist"
        )
    except OSError as error:
        raise OutputError(f"cannot write {stem}.wav into {folder}: {_os_message(error)}") from error
    finally:
        if temporary is not None:
            try:
                temporary.unlink(missing_ok=True)
            except OSError as error:
                log.warning("could not remove the temporary file %s: %s", temporary, error)


def ensure_writable(folder: Path) -> None:
    """Create ``folder`` (with parents) if needed and check a file can be written in it.

    Called before the model loads, so a wrong ``--out`` fails in a second, not after a render.
    Raises :class:`OutputError` naming the folder and the system's reason.
    """
    folder = Path(folder)
    make_folder(folder)
    try:
        probe, fd = _open_temporary(folder, "write-check")
        os.close(fd)
        probe.unlink()
    except OSError as error:
        raise OutputError(
            f"cannot write into the output folder {folder}: {_os_message(error)}"
        ) from error
