"""The daemon under faults: a journal that cannot be written, a dead worker, kill -9 between
takes, two daemons on one state folder, broken start-up settings, leftovers of killed writes.

Over real UDP with the tiny model; the kill -9 and start-up cases run the real CLI in a
subprocess. Every test waits for events (a reply, a file, a process exit), never for time.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from daemon.app.daemon import Daemon, spec_to_dict
from daemon.jobs.journal import Journal
from musicldm_core.render import render_batch, save_clip
from musicldm_core.spec import PRESETS, ClipSpec
from tests.support import RawOsc, daemon_config

ROOT = Path(__file__).resolve().parents[1]
FULL = "database or disk is full"


class FailingDb:
    """A sqlite3 connection whose statements matching ``fails`` raise what a full disk raises."""

    def __init__(self, db: sqlite3.Connection, fails: Callable[[str], bool]) -> None:
        self.db = db
        self.fails = fails

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        if self.fails(sql.lstrip()):
            raise sqlite3.OperationalError(FULL)
        return self.db.execute(sql, params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db, name)


def updates(sql: str) -> bool:
    return sql.startswith("UPDATE")


def every_write(sql: str) -> bool:
    return sql.startswith(("UPDATE", "INSERT", "DELETE"))


@pytest.fixture
def started(tiny_engine, tmp_path) -> Iterator[Callable[..., Daemon]]:
    """Start daemons on ``tmp_path`` (state and output); all are stopped at the end."""
    daemons: list[Daemon] = []

    def start(**overrides: Any) -> Daemon:
        d = Daemon(daemon_config(tmp_path, **overrides), engine=tiny_engine)
        d.start()
        daemons.append(d)
        return d

    yield start
    for d in daemons:
        d.stop()


@pytest.fixture
def listener() -> Iterator[RawOsc]:
    """A socket that stands for the client of a job journaled by an earlier run."""
    r = RawOsc(("127.0.0.1", 9))
    yield r
    r.close()


def osc(d: Daemon) -> RawOsc:
    return RawOsc(d.address)


def wait_all(raw: RawOsc, address: str, count: int, seconds: float = 60.0) -> list[list]:
    """The first ``count`` replies at ``address`` (others stay in the backlog)."""
    got = [raw.wait_for(address, seconds) for _ in range(count)]
    return got


def journal_job(
    state: Path,
    reply_to: tuple[str, int],
    *,
    job_id: int | str = "old",
    takes: int = 1,
    seed: int = 100,
    priority: str = "normal",
    created: float | None = None,
    prompt: str = "left from the last run",
) -> tuple[ClipSpec, int]:
    """A job as a killed daemon left it in the journal."""
    spec = replace(
        ClipSpec(prompt=prompt, seed=seed, takes=takes).with_preset(PRESETS["live"]), steps=3
    ).validated()
    with Journal(state / "journal.sqlite3") as journal:
        seq = journal.add(
            job_id,
            {"spec": spec_to_dict(spec), "slot": None, "play": False},
            priority,
            created=created,
            reply_to=[reply_to],
        )
    return spec, seq


# -- 10.1: a journal that cannot be written -------------------------------------------------------


def test_a_full_journal_fails_the_job_with_io_error_and_the_worker_lives_on(started, tmp_path):
    d = started()
    raw = osc(d)
    real = d.journal._db
    d.journal._db = FailingDb(real, updates)  # accepting works; marking it running does not
    raw.send("/musicldm/generate", "doomed", "id", "a", "steps", 3)
    assert raw.wait_for("/musicldm/queued", 10)[0] == "a"
    fail = raw.wait_for("/musicldm/fail", 30)
    assert fail[:2] == ["a", "io_error"] and FULL in fail[2]
    assert d.worker.alive and d.status()["worker"] == "ok"

    d.journal._db = FailingDb(real, every_write)  # now nothing can be journaled
    raw.send("/musicldm/generate", "refused", "id", "b", "steps", 3)
    fail = raw.wait_for("/musicldm/fail", 10)
    assert fail[:2] == ["b", "io_error"] and "journal" in fail[2] and FULL in fail[2]
    assert d.status()["queued"] == 0  # never silently queued

    d.journal._db = real  # space again: the next write also records how "a" ended
    raw.send("/musicldm/generate", "fine again", "id", "c", "steps", 3)
    done = raw.wait_for("/musicldm/done", 60)
    assert done[0] == "c" and Path(done[1]).is_file()
    assert [j.job_id for j in d.journal.unfinished()] == []  # "a" is not rendered on restart
    raw.close()


def test_a_clip_the_library_cannot_record_is_failed_and_removed(started):
    d = started()
    raw = osc(d)
    d.journal._db = FailingDb(d.journal._db, lambda sql: sql.startswith("INSERT INTO clips"))
    raw.send("/musicldm/generate", "unrecorded", "id", 1, "steps", 3, "takes", 2)
    fails = wait_all(raw, "/musicldm/fail", 2, 60)
    assert [f[:2] for f in fails] == [[1, "io_error"], [1, "io_error"]]  # one per take
    assert not [a for a, _ in raw.replies(0.3) if a == "/musicldm/done"]
    assert not list(d.config.out.glob("*.wav"))  # no file the library does not know
    assert d.worker.alive
    raw.close()


def test_a_dead_worker_shows_in_status_and_refuses_generate(started):
    class Fatal(BaseException):
        """Something no handler of the worker catches."""

    d = started()
    raw = osc(d)

    def explode(batch: list) -> None:
        raise Fatal("boom")

    d.worker._render = explode
    raw.send("/musicldm/generate", "last one", "id", "x", "steps", 3)
    fail = raw.wait_for("/musicldm/fail", 30)
    assert fail[:2] == ["x", "model_error"] and "worker thread stopped" in fail[2]
    assert d.status()["worker"] == "dead (Fatal: boom)"
    raw.send("/musicldm/status")
    reply = raw.wait_for("/musicldm/status.reply", 10)
    assert reply[reply.index("worker") + 1] == "dead (Fatal: boom)"
    raw.send("/musicldm/generate", "never rendered", "id", "y", "steps", 3)
    fail = raw.wait_for("/musicldm/fail", 10)
    assert fail[:2] == ["y", "model_error"] and "nothing can be rendered" in fail[2]
    assert d.status()["queued"] == 0
    raw.close()


# -- 10.3 / 10.8: recovery -------------------------------------------------------------------------


def test_a_resumed_job_renders_only_its_missing_takes(started, tmp_path, listener):
    state = tmp_path / "state"
    spec, seq = journal_job(state, listener.sock.getsockname(), takes=4, seed=100)
    with Journal(state / "journal.sqlite3") as journal:
        for take in (0, 2):  # delivered before the kill
            journal.add_clip(_record(spec, take, f"/elsewhere/take{take}.wav"), job_seq=seq)
    d = started()
    dones = wait_all(listener, "/musicldm/done", 2, 60)
    assert sorted(done[5] for done in dones) == [101, 103]  # takes 1 and 3: seed + k
    assert len(list(d.config.out.glob("*.wav"))) == 2
    assert not [a for a, _ in listener.replies(0.3) if a in ("/musicldm/done", "/musicldm/fail")]
    job = d.journal.job(seq)
    assert job is not None and job.state == "done" and job.takes_done == 4
    assert d.journal.delivered_takes(seq) == {0, 1, 2, 3}


def test_a_clip_written_but_not_recorded_before_a_crash_is_adopted(
    started, tmp_path, listener, tiny_engine
):
    state, out = tmp_path / "state", tmp_path / "out"
    spec, _ = journal_job(
        state, listener.sock.getsockname(), takes=2, seed=200, created=time.time() - 5
    )
    take1 = next(c for c in render_batch(tiny_engine, [spec])[0] if c.take == 1)
    written = save_clip(take1, out)  # the file of take 1 is complete; its commit never happened
    d = started()
    dones = wait_all(listener, "/musicldm/done", 2, 60)
    assert sorted(done[5] for done in dones) == [200, 201]
    assert str(written) in [done[1] for done in dones]  # announced, not rendered again
    assert sorted(out.glob("*.wav")) == sorted({written, *(Path(x[1]) for x in dones)})
    assert len(list(out.glob("*.wav"))) == 2
    assert d.journal.clip_by_path(str(written)) is not None


def test_stale_live_jobs_get_one_fail_per_take_at_restart(started, tmp_path, listener):
    journal_job(
        tmp_path / "state",
        listener.sock.getsockname(),
        job_id="stale",
        takes=3,
        priority="live",
        created=time.time() - 3600,
    )
    d = started()
    fails = wait_all(listener, "/musicldm/fail", 3, 10)
    assert all(f[:2] == ["stale", "cancelled"] and "stale live job" in f[2] for f in fails)
    assert not [a for a, _ in listener.replies(0.3) if a in ("/musicldm/done", "/musicldm/fail")]
    assert d.journal.unfinished() == [] and not list(d.config.out.glob("*.wav"))


def _record(spec: ClipSpec, take: int, path: str) -> Any:
    from daemon.jobs.journal import ClipRecord

    return ClipRecord(
        job_id="old",
        path=path,
        prompt=spec.prompt,
        seconds=2.0,
        bpm=spec.bpm,
        bars=spec.bars,
        beats_per_bar=spec.beats_per_bar,
        seed=int(spec.seed or 0) + take,
        take=take,
        score=None,
        settings={"take": take, "rank": take},
    )


# -- ids -------------------------------------------------------------------------------------------


def test_an_id_an_unfinished_job_has_is_refused(started):
    d = started()
    raw = osc(d)
    raw.send("/musicldm/generate", "long", "id", 5, "bars", 4, "steps", 400)
    raw.wait_for("/musicldm/started", 30)
    raw.send("/musicldm/generate", "clash", "id", 5, "steps", 3)
    fail = raw.wait_for("/musicldm/fail", 10)
    assert fail[:2] == [5, "bad_request"] and "id 5 is taken" in fail[2]
    raw.send("/musicldm/cancel", 5)
    assert raw.wait_for("/musicldm/fail", 30)[:2] == [5, "cancelled"]
    raw.send("/musicldm/generate", "free again", "id", 5, "steps", 3)
    assert raw.wait_for("/musicldm/done", 60)[0] == 5
    raw.close()


# -- 10.14: leftovers of killed writes -------------------------------------------------------------


def test_stale_temporary_files_are_removed_at_start_and_nothing_else(started, tmp_path):
    out = tmp_path / "out"
    day = out / "2026-01-01"
    day.mkdir(parents=True)
    old = time.time() - 3600
    stale = [out / ".warm-piano_s1.0123abcd.partial", day / ".x_s2.deadbeef.partial"]
    kept = [
        out / ".fresh_s3.89abcdef.partial",  # maybe a write going on right now: kept
        out / "notes.partial",  # not our pattern
        out / ".hidden.txt",
        out / "clip.wav",
        out / ".no-hex.partial",
    ]
    for path in stale + kept:
        path.write_bytes(b"x")
    for path in stale + kept[1:]:
        os.utime(path, (old, old))
    folder = out / ".dir_s4.00000000.partial"  # a folder of that name is not ours either
    folder.mkdir()
    os.utime(folder, (old, old))
    started()
    assert [p for p in stale if p.exists()] == []
    assert all(p.exists() for p in kept) and folder.is_dir()


# -- 10.4 / 10.13: start-up refusals, through the real CLI -----------------------------------------


def serve(tmp_path: Path, *args: str, cwd: Path | None = None, timeout: float = 120) -> Any:
    command = [sys.executable, "-m", "daemon.cli", "serve", "--model", "tiny", "--device", "cpu"]
    command += ["--no-warmup", "--no-audio", *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd or tmp_path,  # relative folders land in the test's folder
        env=env,
        check=False,
    )


def one_error_line(result: Any) -> str:
    assert result.returncode not in (0, None), result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def test_a_second_daemon_on_one_state_folder_refuses_to_start(started, tmp_path):
    started()
    result = serve(tmp_path, "--port", "0", "--state", str(tmp_path / "state"), "--out", "o")
    line = one_error_line(result)
    assert result.returncode == 4
    assert "in use by another musicldm-daemon" in line and f"process {os.getpid()}" in line


def test_a_port_in_use_is_one_clear_line(tmp_path):
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.1", 0))
    try:
        port = taken.getsockname()[1]
        result = serve(tmp_path, "--port", str(port), "--state", str(tmp_path / "s"), "--out", "o")
    finally:
        taken.close()
    line = one_error_line(result)
    assert f"127.0.0.1:{port}" in line and "in use" in line and "--port" in line
    assert "cannot join thread" not in result.stderr


def test_a_corrupt_journal_is_one_line_saying_how_to_move_it_aside(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    journal = state / "journal.sqlite3"
    journal.write_bytes(b"this is no database " * 300)
    result = serve(tmp_path, "--port", "0", "--state", str(state), "--out", str(tmp_path / "o"))
    line = one_error_line(result)
    assert result.returncode == 4
    assert f"journal at {journal} is not a SQLite database" in line
    assert f"mv {journal} {journal}.bad" in line


def test_an_output_folder_that_is_a_file_is_refused(tmp_path):
    blocker = tmp_path / "out.wav"
    blocker.write_bytes(b"RIFF")
    result = serve(tmp_path, "--port", "0", "--state", str(tmp_path / "s"), "--out", str(blocker))
    line = one_error_line(result)
    assert result.returncode == 4 and f"{blocker} is a file, not a folder" in line


# -- 10.3: kill -9 between takes, the real process -------------------------------------------------

KILL_AFTER_SECOND_FILE = """
import os, runpy, signal, sys
import daemon.wire.osc as osc
import musicldm_core.render as render
repliers = []
real_init = osc.Replier.__init__
def remember(self, *args, **kwargs):
    real_init(self, *args, **kwargs)
    repliers.append(self)
osc.Replier.__init__ = remember
written = []
real = render.write_wav_atomic
def write_then_die(*args, **kwargs):
    path = real(*args, **kwargs)
    written.append(path)
    if len(written) == 2:  # the file is in place; its library row is not committed yet
        for replier in repliers:  # the first take's /done has left (it is sent by a thread)
            replier.flush(10)
        os.kill(os.getpid(), signal.SIGKILL)
    return path
render.write_wav_atomic = write_then_die
sys.argv = ["musicldm-daemon", *sys.argv[1:]]
runpy.run_module("daemon.cli", run_name="__main__")
"""


def _start(tmp_path: Path, n: int, args: list[str], *, preamble: str | None = None) -> Any:
    log = tmp_path / f"daemon{n}.log"
    code = ["-c", preamble] if preamble else ["-m", "daemon.cli"]
    command = [sys.executable, *code, "serve", "--model", "tiny", "--device", "cpu", *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        command, stderr=log.open("w"), stdout=subprocess.DEVNULL, env=env, cwd=tmp_path
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        text = log.read_text()
        match = re.search(r"listening on udp [\d.]+:(\d+)", text)
        if match:
            return proc, int(match.group(1)), log
        if proc.poll() is not None:
            raise AssertionError(f"daemon exited early:\n{text}")
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"daemon did not start:\n{log.read_text()}")


def test_kill_9_between_takes_delivers_every_take_once(tmp_path, listener):
    reply = f"127.0.0.1:{listener.sock.getsockname()[1]}"
    # relative folders, as the README writes them: replies must still carry absolute paths
    args = ["--port", "0", "--out", "out", "--state", "state", "--no-warmup", "--no-audio"]
    args += ["--reply-to", reply]
    proc, port, _ = _start(tmp_path, 1, args, preamble=KILL_AFTER_SECOND_FILE)
    try:
        sender = RawOsc(("127.0.0.1", port))
        sender.send("/musicldm/generate", "four takes", "id", "k", "takes", 4, "seed", 500,
                    "steps", 3)  # fmt: skip
        assert proc.wait(timeout=120) == -signal.SIGKILL
        sender.close()
        first = [a for addr, a in listener.replies(0.5) if addr == "/musicldm/done"]
        assert len(first) == 1  # take two's file was written, then the process died
        assert len(list((tmp_path / "out").glob("*.wav"))) == 2

        proc, _, log = _start(tmp_path, 2, args)
        later = wait_all(listener, "/musicldm/done", 3, 120)
        assert "adopted" in log.read_text()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    dones = first + later
    assert not [a for a, _ in listener.replies(0.3) if a in ("/musicldm/done", "/musicldm/fail")]
    assert sorted(d[5] for d in dones) == [500, 501, 502, 503]  # each take once, by its seed
    files = sorted((tmp_path / "out").glob("*.wav"))
    assert len(files) == 4 and sorted(Path(d[1]) for d in dones) == files
    assert all(Path(d[1]).is_absolute() for d in dones)
