"""WAV files a DAW reads with their tempo and loop: RIFF written by hand, atomically.

No library writes ACID chunks, so the RIFF/WAVE container is written here: ``fmt `` (and
``fact`` for float), ``acid`` (tempo, beats, meter, loop flag), ``smpl`` (one forward loop over
the whole clip), ``LIST``/``INFO`` (prompt, software, date, settings as JSON), then ``data``.
:func:`write_wav_atomic` puts the bytes in place under a fresh name, never half-written and
never over another clip. Used by :mod:`musicldm_core.render` (worker thread) and, for reading
tags back, by the daemon's ``clips`` listing and the tests.
"""

from __future__ import annotations

import contextlib
import os
import re
import struct
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from .dsp import tpdf_dither
from .errors import OutputError

__all__ = [
    "ClipTags",
    "clip_stem",
    "encode_wav",
    "ensure_writable",
    "read_clip_info",
    "safe_stem",
    "write_wav_atomic",
]

_FORMATS = {"pcm16": (1, 16), "pcm24": (1, 24), "float32": (3, 32)}
_INFO_FIELDS = {"INAM": "title", "ISFT": "software", "ICMT": "comment", "ICRD": "created"}


@dataclass(frozen=True)
class ClipTags:
    """What a clip file says about itself."""

    title: str
    software: str
    comment: str
    created: str
    bpm: float
    beats: int
    meter_numerator: int = 4
    meter_denominator: int = 4
    loop: bool = True
    root_note: int = 60


def _chunk(tag: bytes, payload: bytes) -> bytes:
    pad = b"\x00" if len(payload) % 2 else b""
    return tag + struct.pack("<I", len(payload)) + payload + pad


def _pcm_bytes(audio: np.ndarray, sample_format: str) -> bytes:
    if sample_format == "float32":
        return np.ascontiguousarray(audio, dtype="<f4").tobytes()
    if sample_format == "pcm16":
        dithered = tpdf_dither(audio.reshape(-1), 16, np.random.default_rng(0)).reshape(audio.shape)
        ints = np.clip(np.round(dithered * 32767.0), -32768, 32767).astype("<i2")
        return ints.tobytes()
    ints = np.clip(np.round(audio.astype(np.float64) * 8388607.0), -8388608, 8388607)
    as32 = ints.astype("<i4").reshape(-1)
    return as32.view(np.uint8).reshape(-1, 4)[:, :3].tobytes()


def encode_wav(audio: np.ndarray, sample_rate: int, sample_format: str, tags: ClipTags) -> bytes:
    """The complete WAV file for ``audio`` (float, mono 1-D or (samples, channels))."""
    if sample_format not in _FORMATS:
        raise ValueError(
            f"sample_format must be one of {', '.join(_FORMATS)}, got {sample_format!r}"
        )
    samples = np.asarray(audio, dtype=np.float32)
    if samples.ndim == 1:
        samples = samples[:, None]
    frames, channels = samples.shape
    format_tag, bits = _FORMATS[sample_format]
    block_align = channels * bits // 8
    fmt = struct.pack(
        "<HHIIHH", format_tag, channels, sample_rate, sample_rate * block_align, block_align, bits
    )
    if format_tag == 3:
        fmt += struct.pack("<H", 0)
    chunks = [_chunk(b"fmt ", fmt)]
    if format_tag == 3:
        chunks.append(_chunk(b"fact", struct.pack("<I", frames)))
    flags = 0x02 | 0x04 | (0x00 if tags.loop else 0x01)  # root note set, stretch, one-shot
    chunks.append(
        _chunk(
            b"acid",
            struct.pack(
                "<IHHfIHHf",
                flags,
                tags.root_note,
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
    smpl = struct.pack("<9I", 0, 0, round(1e9 / sample_rate), tags.root_note, 0, 0, 0, loops, 0)
    if loops:
        smpl += struct.pack("<6I", 0, 0, 0, max(frames - 1, 0), 0, 0)
    chunks.append(_chunk(b"smpl", smpl))
    info = b"INFO"
    for tag, field in _INFO_FIELDS.items():
        text = getattr(tags, field)
        if text:
            info += _chunk(tag.encode("ascii"), text.encode("utf-8") + b"\x00")
    chunks.append(_chunk(b"LIST", info))
    chunks.append(_chunk(b"data", _pcm_bytes(samples, sample_format)))
    body = b"WAVE" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def read_clip_info(path: Path | str) -> dict[str, Any]:
    """Parse a WAV's format, ``acid``, ``smpl`` and ``LIST``/``INFO`` chunks."""
    data = Path(path).read_bytes()
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError(f"{path} is not a RIFF/WAVE file")
    result: dict[str, Any] = {"acid": None, "loops": [], "info": {}}
    offset = 12
    while offset + 8 <= len(data):
        tag = data[offset : offset + 4]
        size = struct.unpack_from("<I", data, offset + 4)[0]
        payload = data[offset + 8 : offset + 8 + size]
        if tag == b"fmt ":
            fmt_tag, channels, rate, _, align, bits = struct.unpack_from("<HHIIHH", payload)
            result.update(
                format={1: "pcm", 3: "float"}.get(fmt_tag, str(fmt_tag)),
                channels=channels,
                sample_rate=rate,
                bits=bits,
                block_align=align,
            )
        elif tag == b"data":
            result["samples"] = size // max(result.get("block_align", 1), 1)
        elif tag == b"acid" and len(payload) >= 24:
            flags, root, _, _, beats, denominator, numerator, bpm = struct.unpack_from(
                "<IHHfIHHf", payload
            )
            result["acid"] = {
                "one_shot": bool(flags & 1),
                "root_note": root,
                "beats": beats,
                "numerator": numerator,
                "denominator": denominator,
                "bpm": bpm,
            }
        elif tag == b"smpl" and len(payload) >= 36:
            count = struct.unpack_from("<I", payload, 28)[0]
            for i in range(count):
                _, _, start, end, _, _ = struct.unpack_from("<6I", payload, 36 + 24 * i)
                result["loops"].append((start, end))
        elif tag == b"LIST" and payload[:4] == b"INFO":
            sub = 4
            while sub + 8 <= len(payload):
                sub_tag = payload[sub : sub + 4].decode("ascii", "replace")
                sub_size = struct.unpack_from("<I", payload, sub + 4)[0]
                text = payload[sub + 8 : sub + 8 + sub_size].split(b"\x00", 1)[0]
                result["info"][_INFO_FIELDS.get(sub_tag, sub_tag)] = text.decode("utf-8", "replace")
                sub += 8 + sub_size + (sub_size % 2)
        offset += 8 + size + (size % 2)
    return result


def safe_stem(text: str, *, max_chars: int = 60) -> str:
    """``text`` reduced to ``[A-Za-z0-9._-]``, never a path: no separators, no leading dot."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", text)
    stem = re.sub(r"\.{2,}", ".", stem)
    stem = re.sub(r"-{2,}", "-", stem).strip("-._")[:max_chars].strip("-._")
    return stem or "clip"


def _number(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")


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
    """``20261125-070102_warm-lofi-piano_90bpm_2bars_s3``: when, what, tempo, length, seed."""
    middle = safe_stem(name) if name else safe_stem(prompt.lower(), max_chars=40)
    length = f"{bars}bars" if bars is not None else f"{_number(seconds or 0.0)}s"
    return f"{when:%Y%m%d-%H%M%S}_{middle}_{_number(bpm)}bpm_{length}_s{seed}"


def ensure_writable(folder: Path) -> None:
    """Create ``folder`` if needed and check a file can be written there (OutputError if not)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder, prefix=".probe-"):
            pass
    except OSError as exc:
        raise OutputError(f"cannot write into the output folder {folder}: {exc}") from exc


def write_wav_atomic(folder: Path, stem: str, data: bytes) -> Path:
    """Write ``data`` to ``folder/stem.wav`` (or ``stem-2.wav``, … if taken), never partially.

    The bytes go to a hidden temporary file, are flushed to disk, and are then linked into place
    under a name nobody has; on any failure the temporary file is removed and
    :class:`OutputError` names the folder and the cause.
    """
    folder = Path(folder)
    temp: str | None = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=folder, prefix=f".{stem}.", suffix=".partial")
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), 0o644)  # mkstemp makes it private; a clip is for the DAW too
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        for n in range(1, 10_000):
            target = folder / (f"{stem}.wav" if n == 1 else f"{stem}-{n}.wav")
            try:
                os.link(temp, target)  # fails if the name is taken: no overwrite, no race
            except FileExistsError:
                continue
            except OSError:
                if target.exists():
                    continue
                os.replace(temp, target)  # no hard links here; the name was checked free
                temp = None
                return target
            return target
        raise OutputError(f"no free file name for {stem} in {folder}")
    except OSError as exc:
        raise OutputError(f"cannot write a clip into {folder}: {exc}") from exc
    finally:
        if temp is not None:
            with contextlib.suppress(OSError):
                os.unlink(temp)
