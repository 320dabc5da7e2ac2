"""``musicldm-send`` against a real daemon (the tiny model over UDP on loopback), as a user
runs it: generate, watch, cancel, status."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import soundfile as sf

from clients import cli
from clients.client import Client, JobFailed
from daemon.app.daemon import Daemon
from tests.support import daemon_config


@pytest.fixture
def real_daemon(tiny_engine, tmp_path) -> Iterator[Daemon]:
    d = Daemon(daemon_config(tmp_path), engine=tiny_engine)
    d.start()
    try:
        yield d
    finally:
        d.stop()


def send(daemon: Daemon, *args: str) -> int:
    return cli.main(["--port", str(daemon.address[1]), "--timeout", "10", *args])


def test_generate_prints_the_path_of_an_exact_file(real_daemon, capsys):
    code = send(
        real_daemon,
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
    assert path.parent == real_daemon.config.out and path.exists()
    assert sf.info(str(path)).frames == round(2 * 4 * 60 / 90 * 44100)


def test_status_shows_the_real_daemon(real_daemon, capsys):
    assert send(real_daemon, "status") == 0
    lines = dict(line.split(" ", 1) for line in capsys.readouterr().out.splitlines())
    assert lines["model"].startswith("tiny") and lines["device"] == "cpu"
    assert lines["audio"].startswith("off")


def test_cancel_stops_a_running_job(real_daemon, capsys):
    with Client(*real_daemon.address, timeout=30) as client:
        job = client.generate("long one", bars=8, steps=400, id="long")
        deadline = time.monotonic() + 20
        while not real_daemon.worker.running and time.monotonic() < deadline:
            time.sleep(0.02)
        assert send(real_daemon, "cancel", "long") == 0
        with pytest.raises(JobFailed) as failed:
            job.wait(timeout=30)
    assert failed.value.code == "cancelled"
    assert send(real_daemon, "cancel", "no-such-job") != 0
    assert "not_found" in capsys.readouterr().err


def test_watch_prints_another_clients_job(real_daemon, capsys):
    codes: list[int] = []
    watcher = threading.Thread(
        target=lambda: codes.append(send(real_daemon, "watch", "--count", "3", "--for", "30"))
    )
    watcher.start()
    time.sleep(0.5)  # let it register for events
    with Client(*real_daemon.address, timeout=30) as client:
        client.generate("watched", steps=3, id="w1").wait()
    watcher.join(40)
    assert codes == [0]
    out = capsys.readouterr().out
    assert "/musicldm/queued" in out and "w1" in out
