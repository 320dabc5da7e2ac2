"""What a DAW watching the output folder sees: complete files only, tags it can read, names that
never collide, and a clear failure (nothing half-written) when the disk is full or read-only.

The files are parsed here with ``struct`` alone, not with :func:`musicldm_core.wavfile.
read_clip_info`, so a mistake shared by the writer and the project's reader cannot hide; the
strict readers (libsndfile through soundfile, Python's ``wave`` for 16-bit PCM) read them too.
The daemon tests talk to a real daemon over UDP with the tiny model.
"""

from __future__ import annotations

import errno
import json
import os
import struct
import wave
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from musicldm_core import wavfile
from musicldm_core.wavfile import ClipTags, encode_wav, write_wav_atomic
from tests.support import RawOsc, running_daemon

AUDIO_SUFFIXES = (".wav", ".wave", ".aif", ".aiff", ".flac", ".mp3", ".ogg")


def _riff(path: Path) -> dict[str, Any]:
    """The chunks of ``path``, checked strictly: the RIFF size is the file's size - 8, every
    chunk has its pad byte when odd, and the chunks end exactly at the end of the file."""
    raw = path.read_bytes()
    assert raw[:4] == b"RIFF" and raw[8:12] == b"WAVE"
    assert struct.unpack_from("<I", raw, 4)[0] == len(raw) - 8
    chunks: dict[bytes, bytes] = {}
    order = []
    pos = 12
    while pos < len(raw):
        chunk_id, size = raw[pos : pos + 4], struct.unpack_from("<I", raw, pos + 4)[0]
        assert pos + 8 + size <= len(raw), f"{chunk_id!r} runs past the end"
        chunks[chunk_id] = raw[pos + 8 : pos + 8 + size]
        order.append(chunk_id)
        if size % 2:
            assert raw[pos + 8 + size : pos + 9 + size] == b"\0", f"{chunk_id!r} lacks its pad"
        pos += 8 + size + size % 2
    assert pos == len(raw)
    tag, channels, rate, byte_rate, align, bits = struct.unpack_from("<HHIIHH", chunks[b"fmt "])
    assert align == channels * bits // 8 and byte_rate == rate * align
    samples = len(chunks[b"data"]) // align
    acid = struct.unpack("<IHHfIHHf", chunks[b"acid"])
    smpl = chunks[b"smpl"]
    header = struct.unpack_from("<9I", smpl)
    assert len(smpl) == 36 + 24 * header[7] + header[8]
    loops = [struct.unpack_from("<6I", smpl, 36 + 24 * i) for i in range(header[7])]
    listing = chunks[b"LIST"]
    assert listing[:4] == b"INFO"
    info, at = {}, 4
    while at < len(listing):
        field, size = listing[at : at + 4].decode(), struct.unpack_from("<I", listing, at + 4)[0]
        text = listing[at + 8 : at + 8 + size]
        assert text.endswith(b"\0"), f"INFO {field} is not NUL-terminated"
        info[field] = text[:-1].decode("utf-8")
        at += 8 + size + size % 2
    assert at == len(listing)
    return {
        "order": order,
        "format": (tag, bits),
        "rate": rate,
        "samples": samples,
        "acid": dict(
            zip(("flags", "root", "u1", "u2", "beats", "den", "num", "bpm"), acid, strict=True)
        ),
        "smpl_period": header[2],
        "loops": [(loop[1], loop[2], loop[3], loop[5]) for loop in loops],
        "info": info,
        "fact": chunks.get(b"fact"),
    }


def _expected_samples(bars: int, beats: int, bpm: str, rate: int) -> int:
    return round(Fraction(bars * beats * 60) / Fraction(bpm) * rate)


def _audible(folder: Path) -> list[Path]:
    """What a DAW watching ``folder`` would import: visible files with an audio suffix."""
    return sorted(
        p for p in folder.iterdir() if not p.name.startswith(".") and p.suffix in AUDIO_SUFFIXES
    )


# --- atomic writes -------------------------------------------------------------------------------


def test_a_watcher_never_sees_the_final_name_before_the_file_is_complete(tmp_path, monkeypatch):
    seen: list[list[str]] = []
    real_fsync = os.fsync

    def look_then_fsync(fd: int) -> None:
        seen.append(sorted(os.listdir(tmp_path)))  # the folder while the bytes are written
        real_fsync(fd)

    monkeypatch.setattr(wavfile.os, "fsync", look_then_fsync)
    data = b"RIFF" + bytes(1000)
    path = write_wav_atomic(tmp_path, "clip", data)
    assert seen, "the file was never fsynced"
    during = seen[0]
    assert len(during) == 1 and during[0].startswith(".") and during[0].endswith(".partial")
    assert not during[0].lower().endswith(AUDIO_SUFFIXES)  # no DAW imports it
    assert path.read_bytes() == data and os.listdir(tmp_path) == [path.name]


def test_a_name_differing_only_in_case_is_taken(tmp_path):
    """On Linux ``Kick.wav`` and ``kick.wav`` can both exist; copied to macOS or Windows (or
    shared over SMB) one would replace the other, so the second clip gets ``-2``."""
    first = write_wav_atomic(tmp_path, "20261201-120000_Kick_120bpm_1bars_s1", b"first")
    second = write_wav_atomic(tmp_path, "20261201-120000_kick_120bpm_1bars_s1", b"second")
    third = write_wav_atomic(tmp_path, "20261201-120000_KICK_120bpm_1bars_s1", b"third")
    names = [p.name for p in (first, second, third)]
    assert names == [
        "20261201-120000_Kick_120bpm_1bars_s1.wav",
        "20261201-120000_kick_120bpm_1bars_s1-2.wav",
        "20261201-120000_KICK_120bpm_1bars_s1-3.wav",
    ]
    assert len({name.casefold() for name in os.listdir(tmp_path)}) == 3
    assert first.read_bytes() == b"first" and second.read_bytes() == b"second"


# --- the file a DAW reads ------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [16000, 44100, 48000])
@pytest.mark.parametrize("sample_format", ["pcm16", "pcm24", "float32"])
def test_every_rate_and_format_is_strict_riff_with_the_tempo_tags(tmp_path, rate, sample_format):
    samples = _expected_samples(2, 4, "92.3", rate)  # odd at 16 kHz: pads the 24-bit data
    tags = ClipTags(
        title="東京 🥁 café", software="t", comment="{}", created="2026-12-01", bpm=92.3, beats=8
    )
    audio = 0.5 * np.sin(np.arange(samples) * 2 * np.pi / samples)  # a whole period: seamless
    path = tmp_path / "clip.wav"
    path.write_bytes(encode_wav(audio, rate, sample_format, tags))
    riff = _riff(path)
    assert riff["rate"] == rate and riff["samples"] == samples
    acid = riff["acid"]
    assert (acid["beats"], acid["num"], acid["den"]) == (8, 4, 4)
    assert acid["bpm"] == pytest.approx(92.3, abs=1e-4)
    assert acid["beats"] * 60 / acid["bpm"] * rate == pytest.approx(samples, abs=0.5)
    assert not acid["flags"] & 1  # a loop, not a one-shot
    assert riff["loops"] == [(0, 0, samples - 1, 0)]  # forward, the whole clip, forever
    assert riff["smpl_period"] == round(1e9 / rate)
    assert riff["info"]["INAM"] == "東京 🥁 café"
    if sample_format == "float32":
        assert riff["format"] == (3, 32) and struct.unpack("<I", riff["fact"])[0] == samples
    read, read_rate = sf.read(str(path), always_2d=True)
    assert read_rate == rate and read.shape == (samples, 1)
    if sample_format == "pcm16":
        with wave.open(str(path)) as handle:
            assert (handle.getnframes(), handle.getframerate()) == (samples, rate)


def _generate(osc: RawOsc, prompt: str, *options: Any) -> list:
    osc.send("/musicldm/generate", prompt, "steps", 1, "grid", "off", *options)
    return osc.wait_for("/musicldm/done", 60)


def test_daemon_clips_are_exact_tagged_and_seamless(tiny_engine, tmp_path):
    with running_daemon(tiny_engine, tmp_path, sample_rate=48000, sample_format="pcm16") as d:
        out = Path(d.config.out)
        with RawOsc(d.address) as osc:
            bars_clip = Path(_generate(osc, "kick", "bars", 2, "bpm", 92.3, "seed", 1)[1])
            seconds_clip = Path(_generate(osc, "hat", "seconds", 3.0, "bpm", 124, "seed", 2)[1])
    riff = _riff(bars_clip)
    assert riff["samples"] == _expected_samples(2, 4, "92.3", 48000) == 249621
    assert (riff["acid"]["beats"], round(riff["acid"]["bpm"], 4)) == (8, 92.3)
    assert riff["loops"] == [(0, 0, 249620, 0)]
    settings = json.loads(riff["info"]["ICMT"])
    assert (settings["samples"], settings["seed"], riff["info"]["INAM"]) == (249621, 1, "kick")
    # 3 s at 124 BPM is 6.2 beats: tagged as 6 beats at the 120 BPM that last exactly 3 s
    riff = _riff(seconds_clip)
    assert riff["samples"] == 144000
    assert (riff["acid"]["beats"], riff["acid"]["bpm"]) == (6, 120.0)
    with wave.open(str(bars_clip)) as handle:
        frames = np.frombuffer(handle.readframes(handle.getnframes()), "<i2") / 32768.0
    steps = np.abs(np.diff(frames))
    assert abs(frames[-1] - frames[0]) <= np.percentile(steps, 99.9)  # the seam is no jump
    assert [p.name for p in _audible(out)] == sorted([bars_clip.name, seconds_clip.name])


# --- names ---------------------------------------------------------------------------------------


def test_daemon_names_stay_plain_inside_the_folder_and_never_collide(tiny_engine, tmp_path):
    prompts: list[tuple[str, tuple[Any, ...]]] = [
        ("🥁🔥", ()),
        ("東京の夜 ローファイ", ()),
        ("موسيقى هادئة", ()),  # right to left
        ("cafe\u0301 Z\u0335\u0321algo", ()),  # combining marks
        ("!!!???...", ()),
        ("CON", ()),
        ("p", ("name", "NUL")),
        ("p", ("name", "../../etc/passwd")),
        ("p", ("name", "a/b\\c")),
        ("p", ("name", "Kick")),
        ("p", ("name", "kick")),
        ("p", ("name", "KICK")),
        ("same", ()),
        ("same", ()),
        ("w" * 1000, ()),  # the longest prompt allowed
    ]
    with running_daemon(tiny_engine, tmp_path) as d:
        out = Path(d.config.out)
        with RawOsc(d.address) as osc:
            for prompt, options in prompts:
                osc.send(
                    "/musicldm/generate",
                    prompt,
                    "seed",
                    7,
                    "steps",
                    1,
                    "grid",
                    "off",
                    "bars",
                    1,
                    "bpm",
                    240,
                    *options,
                )
            done = [osc.wait_for("/musicldm/done", 60) for _ in prompts]
    paths = [Path(args[1]) for args in done]
    assert all(p.parent == out and p.is_file() for p in paths)
    names = [p.name for p in paths]
    assert len({name.casefold() for name in names}) == len(prompts)  # none overwrote another
    for name in names:
        assert name.isascii() and name.endswith(".wav") and not name.startswith(".")
        assert len(name.encode()) < 150 and "/" not in name and "\\" not in name
        assert name.split(".")[0].upper() not in {"CON", "NUL", "PRN", "AUX"}
    titles = {_riff(p)["info"]["INAM"] for p in paths}
    assert {"🥁🔥", "موسيقى هادئة", "cafe\u0301 Z\u0335\u0321algo"} <= titles  # kept whole
    assert sorted(os.listdir(out)) == sorted(names)  # no temporary file left


# --- a disk that is full or read-only ------------------------------------------------------------


@pytest.mark.parametrize("trouble", ["full", "read-only"])
def test_a_failed_write_is_a_clear_fail_leaves_nothing_and_the_daemon_goes_on(
    tiny_engine, tmp_path, monkeypatch, trouble
):
    real_open = wavfile._open_temporary
    opened: list[Path] = []

    def troubled(folder: Path, stem: str) -> tuple[Path, int]:
        if trouble == "read-only":
            raise OSError(errno.EROFS, "Read-only file system")
        path, fd = real_open(folder, stem)  # the temporary file exists, then the disk is full
        opened.append(path)
        os.close(fd)
        return path, os.open("/dev/full", os.O_WRONLY)  # every write: ENOSPC, from the kernel

    if trouble == "full" and not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full (Linux)")
    with running_daemon(tiny_engine, tmp_path) as d:
        out = Path(d.config.out)
        with RawOsc(d.address) as osc:
            monkeypatch.setattr(wavfile, "_open_temporary", troubled)
            osc.send("/musicldm/generate", "kick", "id", "a", "steps", 1, "grid", "off")
            fail = osc.wait_for("/musicldm/fail", 60)
            assert fail[:2] == ["a", "io_error"]
            reason = "No space left on device" if trouble == "full" else "Read-only file system"
            assert reason in fail[2] and str(out) in fail[2]
            assert os.listdir(out) == []  # neither a clip nor its temporary file
            assert opened or trouble == "read-only"
            monkeypatch.setattr(wavfile, "_open_temporary", real_open)
            done = _generate(osc, "kick", "id", "b")
    assert done[0] == "b" and os.listdir(out) == [Path(done[1]).name]
