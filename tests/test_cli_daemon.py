"""``musicldm-send`` against a real daemon (the tiny model over UDP on loopback), as a user
runs it: generate, watch, cancel, status."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import soundfile as sf

from clients import cli
from clients.client import Client, JobFailed
from daemon.app.daemon import Daemon


def send(daemon: Daemon, *args: str) -> int:
    return cli.main(["--port", str(daemon.address[1]), "--timeout", "10", *args])


def test_generate_prints_the_path_of_an_exact_file(daemon, capsys):
    code = send(
        daemon,
        "generate",
        "warm lofi piano",
        "--bars",
        "2",
        "--bpm",
        "90",
        "--seed",
        "3",
        "--steps",
        "3",
        "-q",
    )
    out = capsys.readouterr().out.split()
    assert code == 0 and len(out) == 1
    path = Path(out[0])
    assert path.parent == daemon.config.out and path.exists()
    assert sf.info(str(path)).frames == round(2 * 4 * 60 / 90 * 44100)


def test_status_shows_the_daemon(daemon, capsys):
    assert send(daemon, "status") == 0
    lines = dict(line.split(" ", 1) for line in capsys.readouterr().out.splitlines())
    assert lines["model"].startswith("tiny") and lines["device"] == "cpu"
    assert lines["audio"].startswith("off")


def test_cancel_stops_a_running_job(daemon, capsys):
    with Client(*daemon.address, timeout=30) as client:
        job = client.generate("long one", bars=8, steps=400, id="long")
        deadline = time.monotonic() + 20
        while not daemon.worker.running and time.monotonic() < deadline:
            time.sleep(0.02)
        assert send(daemon, "cancel", "long") == 0
        with pytest.raises(JobFailed) as failed:
            job.wait(timeout=30)
    assert failed.value.code == "cancelled"
    assert send(daemon, "cancel", "no-such-job") != 0
    assert "not_found" in capsys.readouterr().err


def test_watch_prints_another_clients_job(daemon, capsys):
    codes: list[int] = []
    watcher = threading.Thread(
        target=lambda: codes.append(send(daemon, "watch", "--count", "3", "--for", "30"))
    )
    watcher.start()
    time.sleep(0.5)  # let it register for events
    with Client(*daemon.address, timeout=30) as client:
        client.generate("watched", steps=3, id="w1").wait()
    watcher.join(40)
    assert codes == [0]
    out = capsys.readouterr().out
    assert "/musicldm/queued" in out and "w1" in out


# -- serve from another folder, with a config file; render and clips ------------------------------


def test_relative_out_debug_level_and_audio_off_in_the_config(tmp_path):
    """``--out out`` as the README writes it: the paths in replies are absolute; ``[log] level
    = "debug"`` logs each request and job; ``[audio] enabled = false`` says it came from there."""
    import os
    import re
    import signal
    import subprocess
    import sys

    from tests.support import RawOsc

    (tmp_path / "daemon.toml").write_text('[log]\nlevel = "debug"\n[audio]\nenabled = false\n')
    root = Path(__file__).resolve().parents[1]
    log = tmp_path / "daemon.log"
    command = [sys.executable, "-m", "daemon.cli", "serve", "--config", "daemon.toml"]
    command += ["--model", "tiny", "--device", "cpu", "--port", "0", "--no-warmup"]
    command += ["--out", "out", "--state", "state", "--reply-to", "127.0.0.1:9"]
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(command, cwd=tmp_path, env=env, stderr=log.open("w"))
    try:
        deadline = time.monotonic() + 120
        while not (match := re.search(r"listening on udp [\d.]+:(\d+)", log.read_text())):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        raw = RawOsc(("127.0.0.1", int(match.group(1))))
        raw.send("/musicldm/generate", "from elsewhere", "id", "rel", "steps", 3)
        done = raw.wait_for("/musicldm/done", 60)
        raw.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    path = Path(done[1])
    assert path.is_absolute() and path.parent == tmp_path / "out" and path.is_file()
    text = log.read_text()
    assert f"clips into {tmp_path / 'out'}" in text
    assert "audio: off (audio disabled in the config: [audio] enabled = false)" in text
    debug = [line for line in text.splitlines() if " DEBUG " in line]
    assert any("request /musicldm/generate" in line for line in debug)
    for step in ("queued", "started", "done"):
        assert any(f"job 'rel': {step}" in line or f"job rel: {step}" in line for line in debug)


def test_render_records_its_clips_where_clips_lists_them(
    tmp_path, model_cache, capsys, monkeypatch
):
    from daemon.cli import main

    monkeypatch.setattr("musicldm_core.testmodels.default_cache_root", lambda: model_cache)
    monkeypatch.chdir(tmp_path)
    state = tmp_path / "state"
    args = ["render", "listed", "--model", "tiny", "--steps", "2", "--out", "o", "-q"]
    assert main([*args, "--state", str(state)]) == 0
    printed = Path(capsys.readouterr().out.strip())
    assert printed.is_absolute() and printed.parent == tmp_path / "o" and printed.is_file()
    assert main(["clips", "--state", str(state)]) == 0
    out = capsys.readouterr().out
    assert "'listed'" in out and str(printed) in out


def test_render_help_shows_every_default(capsys):
    from daemon.cli import main

    with pytest.raises(SystemExit):
        main(["render", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for flag, default in (
        ("--rate", "default 44100"),
        ("--format", "default pcm24"),
        ("--max-seconds", "default 30"),
        ("--takes", "default 1"),
        ("--bars", "default 1"),
        ("--preset", "default live"),
    ):
        after = text[text.index(f" {flag} ") :]  # its line in the options list
        assert default in after[: after.find(" --", 3)], flag
