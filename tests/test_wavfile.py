"""WAV files (musicldm_core.wavfile): formats, ACID/smpl/INFO chunks, names and atomic writes.

soundfile reads the files back as an independent check of the hand-written RIFF.
"""

from __future__ import annotations

import errno
import json
import os
import struct
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from musicldm_core.errors import OutputError
from musicldm_core.wavfile import (
    ClipTags,
    clip_stem,
    encode_wav,
    ensure_writable,
    read_clip_info,
    safe_stem,
    write_wav_atomic,
)

RATE = 44100


def _tags(**overrides: object) -> ClipTags:
    values: dict[str, object] = {
        "title": "warm lofi piano",
        "software": "musicldm-daemon 0.1.0",
        "comment": json.dumps({"seed": 3, "steps": 20, "prompt": "warm lofi piano"}),
        "created": "2026-11-25",
        "bpm": 90.0,
        "beats": 8,
    }
    values.update(overrides)
    return ClipTags(**values)  # type: ignore[arg-type]


def _audio(samples: int = 4411, seed: int = 0) -> np.ndarray:
    """Odd length on purpose: 24-bit mono data then needs a pad byte."""
    rng = np.random.default_rng(seed)
    return rng.uniform(-0.9, 0.9, samples).astype(np.float32)


def _write(tmp_path: Path, data: bytes, name: str = "clip.wav") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """Walk the RIFF strictly: every size and pad must add up to the file's length."""
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    assert struct.unpack_from("<I", data, 4)[0] == len(data) - 8
    chunks = []
    pos = 12
    while pos < len(data):
        chunk_id, size = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        chunks.append((chunk_id, data[pos + 8 : pos + 8 + size]))
        if size % 2:
            assert data[pos + 8 + size] == 0  # the pad byte
        pos += 8 + size + size % 2
    assert pos == len(data)
    return chunks


def _chunk(data: bytes, chunk_id: bytes) -> bytes:
    return dict(_chunks(data))[chunk_id]


# --- formats ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sample_format", "subtype"),
    [("pcm24", "PCM_24"), ("pcm16", "PCM_16"), ("float32", "FLOAT")],
)
@pytest.mark.parametrize("rate", [16000, 44100, 48000])
def test_soundfile_reads_every_format_with_the_exact_length(tmp_path, sample_format, subtype, rate):
    audio = _audio()
    path = _write(tmp_path, encode_wav(audio, rate, sample_format, _tags()))
    info = sf.info(str(path))
    assert info.subtype == subtype
    assert info.samplerate == rate and info.channels == 1
    assert info.frames == len(audio)


def test_pcm24_round_trips_within_one_lsb(tmp_path):
    audio = _audio()
    path = _write(tmp_path, encode_wav(audio, RATE, "pcm24", _tags()))
    back, _ = sf.read(str(path), dtype="float64")
    assert np.max(np.abs(back - audio)) <= 2.0**-23  # rounded to nearest: half an LSB, really


def test_pcm16_is_dithered_reproducibly_and_round_trips_within_two_lsb(tmp_path):
    audio = _audio()
    data = encode_wav(audio, RATE, "pcm16", _tags())
    assert data == encode_wav(audio, RATE, "pcm16", _tags())
    back, _ = sf.read(str(_write(tmp_path, data)), dtype="float64")
    error = back - audio
    assert np.max(np.abs(error)) <= 1.5 * 2.0**-15
    assert np.std(error) > 0.3 * 2.0**-15  # dither is there: plain rounding leaves ~0.29 LSB


def test_float32_is_exact_and_has_a_fact_chunk(tmp_path):
    audio = _audio()
    data = encode_wav(audio, RATE, "float32", _tags())
    back, _ = sf.read(str(_write(tmp_path, data)), dtype="float32")
    np.testing.assert_array_equal(back, audio)
    ids = [chunk_id for chunk_id, _ in _chunks(data)]
    assert ids == [b"fmt ", b"fact", b"acid", b"smpl", b"LIST", b"data"]
    assert struct.unpack("<I", _chunk(data, b"fact")) == (len(audio),)
    fmt = _chunk(data, b"fmt ")
    assert struct.unpack_from("<H", fmt)[0] == 3 and len(fmt) == 18


def test_integer_formats_clip_beyond_full_scale(tmp_path):
    audio = np.array([2.0, -2.0, 1.0, -1.0, 0.0], np.float32)
    for sample_format, top in (("pcm24", 1 - 2.0**-23), ("pcm16", 1 - 2.0**-15)):
        data = encode_wav(audio, RATE, sample_format, _tags())
        back, _ = sf.read(str(_write(tmp_path, data, f"{sample_format}.wav")), dtype="float64")
        assert back[0] == pytest.approx(top) and back[1] == -1.0


def test_stereo_frames_are_interleaved(tmp_path):
    audio = np.stack([_audio(seed=1), _audio(seed=2)], axis=1)
    path = _write(tmp_path, encode_wav(audio, RATE, "pcm24", _tags()))
    back, _ = sf.read(str(path), dtype="float64")
    assert back.shape == audio.shape
    assert np.max(np.abs(back - audio)) <= 2.0**-23
    assert read_clip_info(path)["channels"] == 2


def test_chunks_come_in_order_and_odd_text_is_padded():
    # Title "ab" + NUL is 3 bytes; 4411 samples of 3 bytes make an odd data chunk too.
    data = encode_wav(_audio(), RATE, "pcm24", _tags(title="ab", comment="{}", created="x"))
    chunks = _chunks(data)  # checks every size and pad against the file's length
    assert [chunk_id for chunk_id, _ in chunks] == [b"fmt ", b"acid", b"smpl", b"LIST", b"data"]
    assert len(_chunk(data, b"data")) == 3 * 4411
    info = _chunk(data, b"LIST")
    assert info[:4] == b"INFO"
    assert info[4:12] == b"INAM" + struct.pack("<I", 3)
    assert info[12:16] == b"ab\0\0"  # text, NUL, pad
    assert info[16:20] == b"ISFT"
    assert len(info) % 2 == 0


def test_acid_chunk_bytes(tmp_path):
    tags = _tags(bpm=92.5, beats=12, meter_numerator=3, meter_denominator=4, root_note=57)
    acid = _chunk(encode_wav(_audio(), RATE, "pcm24", tags), b"acid")
    assert len(acid) == 24
    flags, root, unknown, unknown2, beats, denominator, numerator, bpm = struct.unpack(
        "<IHHfIHHf", acid
    )
    assert flags == 0b110  # root note set, stretch; not one-shot
    assert (root, unknown, unknown2) == (57, 0x8000, 0.0)
    assert (beats, denominator, numerator, bpm) == (12, 4, 3, 92.5)

    one_shot = _chunk(encode_wav(_audio(), RATE, "pcm24", _tags(loop=False)), b"acid")
    assert struct.unpack_from("<I", one_shot)[0] == 0b101  # one-shot, stretch; no key: no root
    assert struct.unpack_from("<H", one_shot, 4)[0] == 60  # the field holds C4 regardless


def test_smpl_chunk_bytes():
    samples = 4411
    smpl = _chunk(encode_wav(_audio(samples), 48000, "pcm24", _tags()), b"smpl")
    header = struct.unpack_from("<9I", smpl)
    assert header == (0, 0, round(1e9 / 48000), 60, 0, 0, 0, 1, 0)
    assert struct.unpack_from("<6I", smpl, 36) == (0, 0, 0, samples - 1, 0, 0)
    assert len(smpl) == 36 + 24

    no_loop = _chunk(encode_wav(_audio(samples), 48000, "pcm24", _tags(loop=False)), b"smpl")
    assert len(no_loop) == 36 and struct.unpack_from("<9I", no_loop)[7] == 0


# --- reading back ------------------------------------------------------------------------------


def test_read_clip_info_returns_what_was_written(tmp_path):
    audio = _audio()
    tags = _tags(meter_numerator=3, title="café ☕ 日本 ambient")
    path = _write(tmp_path, encode_wav(audio, 48000, "pcm24", tags))
    info = read_clip_info(path)
    assert info["sample_rate"] == 48000 and info["channels"] == 1
    assert info["bits"] == 24 and info["format"] == "pcm24"
    assert info["samples"] == len(audio)
    assert info["seconds"] == pytest.approx(len(audio) / 48000)
    assert info["acid"] == {
        "bpm": 90.0,
        "beats": 8,
        "numerator": 3,
        "denominator": 4,
        "one_shot": False,
        "root_note": None,  # no key given: the root-note flag is off
    }
    assert info["loops"] == [(0, len(audio) - 1)]
    assert info["info"] == {
        "title": "café ☕ 日本 ambient",
        "software": "musicldm-daemon 0.1.0",
        "comment": tags.comment,
        "created": "2026-11-25",
    }
    assert json.loads(info["info"]["comment"])["seed"] == 3


def test_read_clip_info_of_a_one_shot_float_file(tmp_path):
    path = _write(tmp_path, encode_wav(_audio(100), RATE, "float32", _tags(loop=False)))
    info = read_clip_info(path)
    assert info["format"] == "float32" and info["bits"] == 32 and info["samples"] == 100
    assert info["acid"]["one_shot"] is True
    assert info["loops"] == []


def test_read_clip_info_tolerates_files_from_other_software(tmp_path):
    path = tmp_path / "other.wav"
    sf.write(str(path), np.zeros((1000, 2), np.float32), 22050, subtype="PCM_16")
    info = read_clip_info(path)
    assert (info["sample_rate"], info["channels"], info["format"]) == (22050, 2, "pcm16")
    assert info["samples"] == 1000
    assert info["acid"] is None and info["loops"] == [] and info["info"] == {}


def test_read_clip_info_tolerates_a_truncated_data_chunk(tmp_path):
    data = encode_wav(_audio(1000), RATE, "pcm16", _tags())
    path = _write(tmp_path, data[:-200])  # 100 frames of 16 bits lost
    assert read_clip_info(path)["samples"] == 900


def test_read_clip_info_refuses_what_is_not_a_wav(tmp_path):
    with pytest.raises(ValueError, match="RIFF/WAVE"):
        read_clip_info(_write(tmp_path, b"ID3\x03 not a wave file at all"))
    with pytest.raises(ValueError, match="fmt"):
        read_clip_info(_write(tmp_path, b"RIFF\x04\x00\x00\x00WAVE", "empty.wav"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sample_format": "mp3"}, "sample_format"),
        ({"audio": np.zeros(0, np.float32)}, "no samples"),
        ({"audio": np.array([0.0, np.nan], np.float32)}, "NaN"),
        ({"audio": np.zeros((2, 2, 2), np.float32)}, "shape"),
        ({"sample_rate": 0}, "sample_rate"),
        ({"tags": _tags(root_note=128)}, "root_note"),
        ({"tags": _tags(beats=-1)}, "beats"),
        ({"tags": _tags(bpm=0.0)}, "bpm"),
    ],
)
def test_encode_wav_refuses_bad_arguments(kwargs, message):
    arguments = {
        "audio": _audio(10),
        "sample_rate": RATE,
        "sample_format": "pcm24",
        "tags": _tags(),
    }
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        encode_wav(**arguments)


# --- names -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "stem"),
    [
        ("../../etc/passwd", "etc-passwd"),
        ("/abs/path", "abs-path"),
        ("a/b\\c", "a-b-c"),
        ("café ☕ au lait", "cafe-au-lait"),
        ("日本", "clip"),
        ("", "clip"),
        ("...", "clip"),
        ("..", "clip"),
        (".hidden", "hidden"),
        ("a..b", "a.b"),
        ("my  beat -- v2!", "my-beat-v2"),
        ("Kick_01.final", "Kick_01.final"),
        ("con", "con_"),
        ("NUL.txt", "NUL_.txt"),
        ("com1", "com1_"),
    ],
)
def test_safe_stem(text, stem):
    assert safe_stem(text) == stem


@pytest.mark.parametrize("text", ["../../etc/passwd", "/x/../y", "a\\..\\..\\b", "..\0/.."])
def test_safe_stem_can_never_leave_the_folder(text, tmp_path):
    stem = safe_stem(text)
    assert "/" not in stem and "\\" not in stem and ".." not in stem and not stem.startswith(".")
    assert (tmp_path / f"{stem}.wav").resolve().parent == tmp_path.resolve()


def test_safe_stem_truncates_without_a_trailing_separator():
    assert safe_stem("abc def ghi", max_chars=4) == "abc"
    assert len(safe_stem("x" * 500)) == 60


WHEN = datetime(2026, 11, 25, 7, 1, 2)


def test_clip_stem_format():
    stem = clip_stem("Warm lofi piano", bpm=90.0, bars=2, seed=3, when=WHEN)
    assert stem == "20261125-070102_warm-lofi-piano_90bpm_2bars_s3"
    assert clip_stem("x", bpm=92.5, bars=1, seed=0, when=WHEN).endswith("_92.5bpm_1bars_s0")
    assert "_120.333bpm_" in clip_stem("x", bpm=120 + 1 / 3, bars=1, seed=0, when=WHEN)


def test_clip_stem_for_a_length_in_seconds_and_a_user_name():
    stem = clip_stem("pad", bpm=120.0, bars=None, seconds=2.5, seed=7, when=WHEN)
    assert stem == "20261125-070102_pad_120bpm_2.5s_s7"
    named = clip_stem("pad", bpm=120.0, bars=4, seed=7, when=WHEN, name="../../My Intro")
    assert named == "20261125-070102_My-Intro_120bpm_4bars_s7"


def test_clip_stem_keeps_long_prompts_short():
    stem = clip_stem("a very long prompt " * 20, bpm=120.0, bars=4, seed=1, when=WHEN)
    slug = stem.split("_")[1]
    assert 0 < len(slug) <= 40 and not slug.endswith("-")


# --- atomic writing ----------------------------------------------------------------------------


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_write_wav_atomic_never_overwrites(tmp_path):
    folder = tmp_path / "new" / "out"  # created with its parents
    first = write_wav_atomic(folder, "clip", b"first")
    second = write_wav_atomic(folder, "clip", b"second")
    third = write_wav_atomic(folder, "clip", b"third")
    assert [first.name, second.name, third.name] == ["clip.wav", "clip-2.wav", "clip-3.wav"]
    assert first.read_bytes() == b"first" and second.read_bytes() == b"second"
    assert _leftovers(folder) == []


def test_write_wav_atomic_makes_files_others_can_read(tmp_path):
    path = write_wav_atomic(tmp_path, "clip", b"data")
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_write_wav_atomic_without_hard_links_still_never_overwrites(tmp_path, monkeypatch):
    def no_links(*args, **kwargs):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    (tmp_path / "clip.wav").write_bytes(b"keep me")
    path = write_wav_atomic(tmp_path, "clip", b"new")
    assert path.name == "clip-2.wav" and path.read_bytes() == b"new"
    assert (tmp_path / "clip.wav").read_bytes() == b"keep me"
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("broken", ["fsync", "link"])
def test_write_wav_atomic_failure_raises_output_error_and_leaves_nothing(
    tmp_path, monkeypatch, broken
):
    def fail(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, broken, fail)
    with pytest.raises(OutputError) as caught:
        write_wav_atomic(tmp_path, "clip", b"data")
    assert caught.value.code == "io_error"
    assert str(tmp_path) in caught.value.message
    assert "No space left on device" in caught.value.message
    assert list(tmp_path.iterdir()) == []


def test_write_wav_atomic_when_the_folder_cannot_exist(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(OutputError, match="output folder"):
        write_wav_atomic(blocker / "out", "clip", b"data")
    with pytest.raises(OutputError, match="output folder"):
        ensure_writable(blocker / "out")


@pytest.mark.parametrize("stem", ["", ".hidden", "a/b", "..\\x"])
def test_write_wav_atomic_refuses_stems_that_are_not_plain_names(tmp_path, stem):
    with pytest.raises(ValueError, match="stem"):
        write_wav_atomic(tmp_path, stem, b"data")


def test_ensure_writable_creates_the_folder_and_leaves_nothing(tmp_path):
    folder = tmp_path / "a" / "b"
    ensure_writable(folder)
    assert folder.is_dir() and list(folder.iterdir()) == []
