"""Hostile input to the audio-in options, ``conform`` and ``pack``: each gets one clear line.

The acceptance probes of the audio-in session that found a defect, kept as tests: a value the
contract allows in one form refused with a message about another (``repaint 1.5`` "must be
text"), a value a Python quirk let through (``repaint "1_0"`` read as bar 10), an error that
dumped its whole input (nine ``blend`` pairs), a folder or FIFO reported as "no such file",
``conform`` failing on every stereo file with a message about its length, ``conform`` and
``pack`` hanging on a FIFO, a name too long or a symlink loop failing as an internal
``model_error`` without the job's id, and ``blend`` unusable in a pack file. After the hostile
messages the daemon still answers ``/musicldm/status`` and renders a plain clip.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from daemon.pack.plan import load_pack, parse_pack
from musicldm_core.dsp import protect_peak
from musicldm_core.errors import BadRequest
from tests.support import RawOsc, running_daemon

GEN = "/musicldm/generate"
FAST = ("steps", 2, "bpm", 240, "bars", 1)  # one bar at 240 BPM: one second


def tone(seconds: float, rate: int = 44100, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    wave = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    return wave if channels == 1 else np.stack([wave] * channels, axis=1)


@pytest.fixture
def served(tiny_engine: object, tmp_path: Path) -> Iterator[tuple[Any, RawOsc, Path]]:
    inputs = tmp_path / "in"
    inputs.mkdir()
    with (
        running_daemon(tiny_engine, tmp_path, input_dirs=(inputs,)) as daemon,
        RawOsc(daemon.address) as raw,
    ):
        yield daemon, raw, inputs


def refusal(raw: RawOsc, job_id: str) -> str:
    fail = raw.wait_for("/musicldm/fail", 10)
    assert fail[:2] == [job_id, "bad_request"], fail
    assert "\n" not in fail[2]
    return fail[2]


def test_hostile_audio_in_values_get_one_clear_line_and_the_daemon_goes_on(served):
    daemon, raw, inputs = served
    sf.write(inputs / "loop.wav", tone(2.5), 44100)
    (inputs / "folder.wav").mkdir()
    os.mkfifo(inputs / "pipe.wav")
    (inputs / "loop1.wav").symlink_to(inputs / "loop2.wav")
    (inputs / "loop2.wav").symlink_to(inputs / "loop1.wav")
    loop = str(inputs / "loop.wav")
    nine_blends = tuple(x for i in range(9) for x in ("blend", f"p{i}:0.1"))
    cases = [
        # repaint takes one bar as a number; one that is no bar gets the bars message
        (("from", loop, "repaint", 1.5), 'repaint must be bars A-B (1-based, inclusive, e.g. "2'),
        # int("1_0") is 10: only plain digits are bars
        (("from", loop, "repaint", "1_0", "bars", 1), "repaint must be bars A-B"),
        # the span and the clip's bars, not "an integer from 1 to 1"
        (("from", loop, "repaint", "2-2"), "repaint 2-2 lies outside the clip's bars: bars are 1"),
        (nine_blends, "at most 8 prompt:weight pairs, got 9"),  # the count, not the nine pairs
        # what the path is, without opening it (a FIFO would block the reader)
        (("from", str(inputs / "folder.wav"), "strength", 0.5), "folder.wav is a folder; input"),
        (("from", str(inputs / "pipe.wav"), "strength", 0.5), "is not a regular file (a FIFO"),
        (("like", str(inputs / "pipe.wav")), "is not a regular file (a FIFO"),
        # the system refuses these names (OSError, RuntimeError): the request's fault, named
        (("from", "a" * 300 + ".wav", "strength", 0.5), "is no readable path (File name too"),
        (("like", str(inputs / "loop1.wav")), "is no readable path (Symlink loop"),
    ]
    for n, (options, problem) in enumerate(cases):
        raw.send(GEN, "hostile", "id", f"h{n}", *options, *FAST)
        message = refusal(raw, f"h{n}")
        assert problem in message, (options, message)
        assert "('p0', 0.1)" not in message, message  # the pairs are not echoed back
    raw.send("/musicldm/status")
    raw.wait_for("/musicldm/status.reply", 10)
    raw.send(GEN, "still fine", "id", "plain", *FAST)
    done = raw.wait_for("/musicldm/done", 60)
    assert done[0] == "plain" and Path(done[1]).is_relative_to(daemon.config.out)


def test_conform_keeps_a_stereo_file_stereo(tmp_path: Path, capsys: Any) -> None:
    from daemon.cli import main

    source = tmp_path / "stereo.wav"
    sf.write(source, tone(4.5, channels=2), 44100)
    out = str(tmp_path / "o")
    assert main(["conform", str(source), "--bpm", "120", "--bars", "1", "--out", out]) == 0
    path = Path(capsys.readouterr().out.strip())
    info = sf.info(path)
    assert info.channels == 2 and info.frames == 88200  # one bar at 120 BPM, 44.1 kHz


def test_protect_peak_takes_channels() -> None:
    loud = tone(0.1, channels=2) * 10
    quiet, gain_db = protect_peak(loud, -1.0)
    assert quiet.shape == loud.shape and gain_db < 0
    assert np.max(np.abs(quiet)) == pytest.approx(10 ** (-1 / 20), rel=1e-4)


def _finishes(call: Any) -> Any:
    """``call()``'s result or exception, asserting it returns at all (a FIFO read blocks)."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:  # handed back to the test
            outcome.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(30)
    assert outcome, "blocked: it opened the FIFO"
    return outcome[0]


def test_conform_and_pack_refuse_a_fifo_or_folder_without_opening_it(tmp_path, capsys):
    from daemon.cli import main

    os.mkfifo(tmp_path / "pipe.wav")
    os.mkfifo(tmp_path / "pipe.toml")
    (tmp_path / "folder.wav").mkdir()
    for name, problem in (("pipe.wav", "is not a regular file"), ("folder.wav", "is a folder")):
        args = ["conform", str(tmp_path / name), "--bpm", "120", "--bars", "1"]
        args += ["--out", str(tmp_path / "o")]
        assert _finishes(lambda a=args: main(a)) == 2
        assert problem in capsys.readouterr().err
    error = _finishes(lambda: load_pack(tmp_path / "pipe.toml", model="tiny"))
    assert isinstance(error, BadRequest) and "is not a regular file" in str(error)


def test_a_pack_takes_blend_as_one_pair_or_a_list(tmp_path: Path) -> None:
    def blend_of(value: Any) -> Any:
        data = {"name": "b", "rate": 16000.0, "prompt": [{"text": "p", "blend": value}]}
        (job,) = parse_pack(data, source=tmp_path / "PACK.toml", model="tiny").jobs
        assert job.spec.sample_rate == 16000 and isinstance(job.spec.sample_rate, int)
        return job.spec.blend

    assert blend_of("acid 303:0.5") == (("acid 303", 0.5),)
    assert blend_of(["acid:0.5", "dub:0.25"]) == (("acid", 0.5), ("dub", 0.25))
    with pytest.raises(BadRequest, match=r'prompt 1.*blend must be "prompt:weight"'):
        blend_of(["acid:0.5", "nocolon"])


def test_an_input_swapped_for_a_link_after_its_check_is_not_followed(tmp_path: Path) -> None:
    from musicldm_core.audio_in import read_audio

    private = tmp_path / "private.wav"  # audio outside every allowed folder
    sf.write(private, tone(1.0), 44100)
    checked = tmp_path / "in" / "loop.wav"  # the path the daemon resolved and journaled
    checked.parent.mkdir()
    checked.symlink_to(private)  # swapped for a link before the render reads it
    with pytest.raises(BadRequest, match="has become a link since it was checked"):
        read_audio(checked, key="from")
