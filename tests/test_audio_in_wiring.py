"""Audio in, the daemon's side (issue 12): where ``from``/``like`` may read, over real UDP.

The input sandbox (:mod:`daemon.app.inputs`) lets a request read a library clip, a file inside
the output folder or a file inside an ``--input-dir`` folder, and nothing else; what it resolves
is journaled, so a restart renders from the file that was checked. The ``render`` CLI reads any
file the user names, unless given ``--input-dir``. Tiny model, few steps, short clips.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from daemon.jobs.journal import Journal
from musicldm_core.wavfile import read_clip_info
from tests.support import RawOsc, running_daemon

GEN = "/musicldm/generate"
FAST = ("steps", 2, "bpm", 240, "bars", 1)  # one bar at 240 BPM: one second


def write_wav(path: Path, seconds: float = 2.0, rate: int = 16000) -> Path:
    """A short sine WAV (input audio of known length)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    sf.write(path, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), rate)
    return path


def journaled_spec(journal: Journal, job_id: Any) -> dict[str, Any]:
    """The spec the journal holds for the (newest) job with ``job_id``."""
    seq, found = 1, None
    while (entry := journal.job(seq)) is not None:
        if entry.job_id == job_id:
            found = entry
        seq += 1
    assert found is not None, f"job {job_id!r} is not in the journal"
    return found.request["spec"]


def refused(raw: RawOsc, job_id: Any) -> str:
    """The message of the ``/fail id bad_request`` for ``job_id``; no ``/queued`` before it."""
    fail = raw.wait_for("/musicldm/fail", 10)
    before = [address for address, _ in raw.replies(0)]
    assert fail[:2] == [job_id, "bad_request"], fail
    assert "/musicldm/queued" not in before
    return fail[2]


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """An audio file outside every allowed folder."""
    return write_wav(tmp_path / "private" / "secret.wav")


@pytest.fixture
def served(tiny_engine: object, tmp_path: Path) -> Iterator[tuple[Any, RawOsc]]:
    with running_daemon(tiny_engine, tmp_path) as daemon, RawOsc(daemon.address) as raw:
        yield daemon, raw


def test_from_a_clip_id_and_files_in_the_output_folder_render(served, tmp_path):
    daemon, raw = served
    out = daemon.config.out
    raw.send(GEN, "first clip", "id", 5, *FAST)
    first = Path(raw.wait_for("/musicldm/done", 60)[1])
    loop = write_wav(out / "in" / "loop.wav")
    cases = [
        ("by-id", 5, first),  # a library clip, by its job id
        ("by-id-text", "5", first),  # the same id as text (Pd, a text field)
        ("absolute", str(loop), loop),
        ("relative", "in/loop.wav", loop),  # relative to the output folder
    ]
    for job_id, value, path in cases:
        raw.send(GEN, "a variation", "id", job_id, "from", value, "strength", 0.5, *FAST)
        done = raw.wait_for("/musicldm/done", 60)
        assert done[0] == job_id and Path(done[1]).is_file()
        # the journal holds the resolved absolute path, never the value as sent
        assert journaled_spec(daemon.journal, job_id)["source"] == str(path.resolve())
    raw.send(GEN, "sounds like it", "id", "like", "like", 5, "like_weight", 0.3, *FAST)
    assert raw.wait_for("/musicldm/done", 60)[0] == "like"
    spec = journaled_spec(daemon.journal, "like")
    assert spec["like"] == str(first.resolve()) and spec["like_weight"] == pytest.approx(0.3)


def test_inputs_outside_the_allowed_folders_are_refused_unread(served, tmp_path, outside):
    daemon, raw = served
    out = daemon.config.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "link.wav").symlink_to(outside)  # a link inside that points out
    (out / "notes.txt").write_text("not audio")
    outside.chmod(0)  # were it opened, the error would say "not an audio file", not "outside"
    try:
        cases = [
            ("abs", str(outside), "outside"),
            ("dots", "../private/secret.wav", "outside"),
            ("link", "link.wav", "outside"),
            ("text", "notes.txt", "not an audio file"),
            ("missing", "nothing-here.wav", "no such file"),
            ("no-clip", 999, "no clip in the library has id 999"),
        ]
        for job_id, value, problem in cases:
            raw.send(GEN, "x", "id", job_id, "from", value, "strength", 0.5, *FAST)
            message = refused(raw, job_id)
            assert f"from {str(value)!r}" in message and problem in message, message
            assert str(out.resolve()) in message and "--input-dir" in message, message
        raw.send(GEN, "x", "id", "like-out", "like", str(outside), *FAST)
        assert "like" in refused(raw, "like-out")
    finally:
        outside.chmod(0o644)
    assert sorted(path.name for path in out.iterdir()) == ["link.wav", "notes.txt"]  # no clip


def test_from_needs_a_mode_and_modes_exclude_each_other(served, tmp_path):
    daemon, raw = served
    loop = write_wav(daemon.config.out / "loop.wav")
    raw.send(GEN, "x", "id", "bare", "from", str(loop), *FAST)
    assert "strength" in refused(raw, "bare")
    raw.send(GEN, "x", "id", "both", "from", str(loop), "strength", 0.5, "extend", 2, *FAST)
    assert "cannot be combined" in refused(raw, "both")
    raw.send(GEN, "x", "id", "nosrc", "strength", 0.5, *FAST)
    assert "from" in refused(raw, "nosrc")
    raw.send(GEN, "x", "id", "span", "from", str(loop), "repaint", "2-3", *FAST)  # 1-bar clip
    assert "repaint" in refused(raw, "span")


def test_audio_in_options_are_per_request_not_defaults(served):
    _, raw = served
    raw.send("/musicldm/set", "from", "loop.wav")
    fail = raw.wait_for("/musicldm/fail", 10)
    assert fail[:2] == ["/musicldm/set", "bad_request"] and "unknown option 'from'" in fail[2]


def test_an_input_dir_allows_its_files(tiny_engine, tmp_path, outside):
    samples = tmp_path / "samples"
    loop = write_wav(samples / "kits" / "loop.wav")
    with (
        running_daemon(tiny_engine, tmp_path, input_dirs=(samples,)) as daemon,
        RawOsc(daemon.address) as raw,
    ):
        for job_id, value in (("abs", str(loop)), ("rel", "kits/loop.wav")):
            raw.send(GEN, "from samples", "id", job_id, "from", value, "strength", 0.3, *FAST)
            assert raw.wait_for("/musicldm/done", 60)[0] == job_id
            assert journaled_spec(daemon.journal, job_id)["source"] == str(loop.resolve())
        raw.send(GEN, "x", "id", "sibling", "from", str(outside), "strength", 0.3, *FAST)
        message = refused(raw, "sibling")
        assert "outside" in message and str(samples.resolve()) in message


def test_the_resolved_path_is_journaled_and_renders_after_a_restart(tiny_engine, tmp_path):
    """A job accepted from an input folder renders after a restart even where that folder is
    no longer allowed: the journal holds the path checked when the job was accepted."""
    samples = tmp_path / "samples"
    loop = write_wav(samples / "loop.wav")
    first = tmp_path / "first"
    with (
        running_daemon(tiny_engine, first, input_dirs=(samples,)) as daemon,
        RawOsc(daemon.address) as raw,
    ):
        raw.send(GEN, "keep it", "id", "kept", "from", "loop.wav", "repaint", 1, *FAST)
        raw.wait_for("/musicldm/done", 60)
        request = None
        seq = 1
        while (entry := daemon.journal.job(seq)) is not None:
            request, priority = entry.request, entry.priority
            seq += 1
    assert request is not None and request["spec"]["source"] == str(loop.resolve())
    assert request["spec"]["repaint"] == [1, 1]  # JSON: the tuple comes back as a list
    # The same request, unfinished in the journal of a daemon that allows no input folder,
    # as a crash between /queued and the render leaves it.
    second = tmp_path / "second"
    with RawOsc(("127.0.0.1", 9)) as listener:
        with Journal(second / "state" / "journal.sqlite3") as journal:
            journal.add("kept", request, priority, reply_to=[listener.sock.getsockname()])
        with running_daemon(tiny_engine, second):
            done = listener.wait_for("/musicldm/done", 60)
    assert done[0] == "kept" and Path(done[1]).is_file()


# -- the render CLI ----------------------------------------------------------------------------


@pytest.fixture
def render(model_cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    from daemon.cli import main

    monkeypatch.setattr("musicldm_core.testmodels.default_cache_root", lambda: model_cache)
    monkeypatch.chdir(tmp_path)

    def run(*args: Any) -> int:
        base = ["render", "cli", "--model", "tiny", "--steps", "2", "--out", "o", "-q"]
        return main([*base, "--state", str(tmp_path / "state"), *map(str, args)])

    return run


@pytest.mark.parametrize(
    ("mode", "bars"),
    [(("--strength", 0.4), 2), (("--repaint", "2-2"), 2), (("--extend", 1), 1)],
    ids=["variation", "repaint", "continue"],
)
def test_render_from_a_file_writes_an_exact_length_wav(render, capsys, tmp_path, mode, bars):
    # any file the user names: here one outside the output folder, relative to the shell's
    source = write_wav(tmp_path / "mine" / "groove.wav", seconds=4.5, rate=44100)  # 2 bars+
    args = ["--from", os.path.relpath(source, tmp_path), *mode, "--bars", 2, "--bpm", 120]
    assert render(*args, "--rate", 16000) == 0
    path = Path(capsys.readouterr().out.strip())
    info = sf.info(path)
    assert info.samplerate == 16000
    assert info.frames == round(bars * 4 * 60 / 120 * 16000)  # --extend N: the N new bars


def test_render_audio_in_arguments_are_checked(render, capsys, tmp_path):
    source = write_wav(tmp_path / "mine" / "groove.wav")
    (tmp_path / "notes.txt").write_text("not audio")
    cases = [
        (["--from", source, "--repaint", "3-2", "--bars", 4], "--repaint must be bars A-B"),
        (["--from", source, "--strength", 1.5], "strength must be a number from 0 to 1"),
        (["--from", "notes.txt", "--strength", 0.5], "not an audio file"),
        (["--from", "gone.wav", "--strength", 0.5], "no such file"),
        (["--blend", "pads"], '--blend must be "prompt:weight"'),
        (["--morph", 0.5], "morph needs morph_to"),
        # with --input-dir, render is sandboxed as the daemon is
        (["--from", source, "--strength", 0.5, "--input-dir", "o"], "lies outside"),
    ]
    (tmp_path / "o").mkdir()
    for args, problem in cases:
        assert render(*args) == 2, args
        assert problem in capsys.readouterr().err, args


def test_input_too_short_for_the_clip_fails_the_job_naming_it(served):
    daemon, raw = served
    short = write_wav(daemon.config.out / "short.wav", seconds=0.25)
    raw.send(GEN, "x", "id", "short", "from", "short.wav", "strength", 0.5, *FAST)
    raw.wait_for("/musicldm/queued", 10)  # accepted: the file is allowed and is audio
    fail = raw.wait_for("/musicldm/fail", 60)
    assert fail[:2] == ["short", "bad_request"] and short.name in fail[2], fail


def test_clips_lists_the_ids_from_names(render, capsys, tmp_path):
    from daemon.cli import main

    assert render() == 0
    capsys.readouterr()
    assert main(["clips", "--state", str(tmp_path / "state")]) == 0
    assert "id render" in capsys.readouterr().out


def test_a_variation_without_bars_keeps_its_clips_length(render, capsys, served):
    # the CLI: a 2-bar clip of ours carries ACID beats 8, so its variation is 2 bars too
    assert render("--bars", 2, "--bpm", 120, "--rate", 16000) == 0
    clip = Path(capsys.readouterr().out.strip())
    assert render("--from", clip, "--strength", 0.5, "--bpm", 120, "--rate", 16000) == 0
    varied = Path(capsys.readouterr().out.strip())
    assert sf.info(varied).frames == sf.info(clip).frames == 2 * 4 * 8000
    # the file says what it was made from
    settings = json.loads(read_clip_info(varied)["info"]["comment"])
    assert settings["audio_in"]["mode"] == "variation"
    assert (settings["audio_in"]["source"], settings["audio_in"]["strength"]) == (str(clip), 0.5)
    # OSC: the same, with the daemon's default of 1 bar left unasked
    daemon, raw = served
    source = daemon.config.out / "two.wav"
    source.write_bytes(clip.read_bytes())
    raw.send(GEN, "x", "id", "keep", "from", "two.wav", "strength", 0.5, "steps", 2, "bpm", 120)
    done = raw.wait_for("/musicldm/done", 60)
    assert done[0] == "keep" and done[4] == 2, done
