"""The journal of jobs and the clip library: lifecycle, durability, threads, lookups."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from daemon.jobs.journal import SCHEMA_VERSION, ClipRecord, Journal, JournalError
from musicldm_core.errors import OutputError

REQUEST = {
    "spec": {"prompt": "dark techno", "bars": 2, "bpm": 128.0, "seconds": None, "loop": True},
    "slot": None,
    "play": False,
}


@pytest.fixture
def journal(tmp_path: Path):
    with Journal(tmp_path / "state" / "journal.sqlite3") as j:
        yield j


def clip(job_id: int | str, path: str, *, take: int = 0, rank: int = 0, **kw) -> ClipRecord:
    fields = {
        "prompt": "warm lofi piano",
        "seconds": 4.0,
        "bpm": 120.0,
        "bars": 2,
        "beats_per_bar": 4,
        "seed": 7 + take,
        "take": take,
        "score": 0.5,
        "settings": {"steps": 20, "rank": rank, "loop": True},
        "render_seconds": 1.5,
    }
    fields.update(kw)
    return ClipRecord(job_id=job_id, path=path, **fields)  # type: ignore[arg-type]


# -- jobs ----------------------------------------------------------------------------------------


def test_creates_its_folder_and_records_the_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "state" / "journal.sqlite3"
    Journal(path).close()
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        version = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        assert version == (str(SCHEMA_VERSION),)
    finally:
        db.close()


def test_job_lifecycle(journal: Journal) -> None:
    seq = journal.add(1, REQUEST, "normal", reply_to=[("127.0.0.1", 50000)])
    [job] = journal.unfinished()
    assert (job.seq, job.job_id, job.request, job.priority) == (seq, 1, REQUEST, "normal")
    assert job.state == "queued" and job.takes_done == 0 and not job.finished
    assert job.reply_to == (("127.0.0.1", 50000),)
    assert job.code is None and job.message is None
    assert abs(job.created - time.time()) < 60

    assert journal.mark_running(seq)
    assert [j.state for j in journal.unfinished()] == ["running"]  # still to render on restart

    assert journal.mark_take_done(seq)
    assert journal.mark_finished(seq, "done")
    assert journal.unfinished() == []
    done = journal.job(seq)
    assert done is not None and done.state == "done" and done.takes_done == 1 and done.finished
    assert done.updated >= done.created


def test_a_job_ends_once_with_its_code_and_message(journal: Journal) -> None:
    seq = journal.add("a", REQUEST, "live")
    assert journal.mark_finished(seq, "failed", "out_of_memory", "the GPU ran out of memory")
    assert not journal.mark_finished(seq, "cancelled", "cancelled", "too late")
    assert not journal.mark_running(seq)
    job = journal.job(seq)
    assert job is not None
    assert (job.state, job.code, job.message) == (
        "failed",
        "out_of_memory",
        "the GPU ran out of memory",
    )


def test_unknown_seq_and_bad_state(journal: Journal) -> None:
    assert journal.job(12345) is None
    assert not journal.mark_running(12345)
    assert not journal.mark_take_done(12345)
    assert not journal.mark_finished(12345, "done")
    with pytest.raises(ValueError, match="state must be one of done, failed, cancelled"):
        journal.mark_finished(journal.add(1, {}, "normal"), "running")
    with pytest.raises(TypeError, match="job id"):
        journal.add(True, {}, "normal")  # type: ignore[arg-type]


def test_ids_may_repeat_between_clients(journal: Journal) -> None:
    first = journal.add(1, REQUEST, "normal", reply_to=[("127.0.0.1", 1000)])
    second = journal.add(1, REQUEST, "normal", reply_to=[("127.0.0.1", 2000)])
    assert first != second
    assert [j.reply_to[0][1] for j in journal.unfinished()] == [1000, 2000]


def test_accepted_jobs_survive_a_restart_in_order(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    ids: list[int | str] = [1, "1", "b2", 3, "007", 2**40]
    requests = [{**REQUEST, "n": n, "nested": {"list": [n, "x"]}} for n in range(len(ids))]
    with Journal(path) as journal:
        seqs = [
            journal.add(job_id, request, "batch", created=1000.0 + n, reply_to=[("::1", 9000 + n)])
            for n, (job_id, request) in enumerate(zip(ids, requests, strict=True))
        ]
        journal.mark_running(seqs[0])
        journal.mark_finished(seqs[2], "done")
    # closed without marking the others: they are what the next start must render
    with Journal(path) as journal:
        jobs = journal.unfinished()
    kept = [n for n in range(len(ids)) if n != 2]
    assert [j.seq for j in jobs] == [seqs[n] for n in kept]
    assert [j.job_id for j in jobs] == [ids[n] for n in kept]
    assert [type(j.job_id) for j in jobs] == [type(ids[n]) for n in kept]  # 1 vs "1", "007"
    assert [j.request for j in jobs] == [requests[n] for n in kept]
    assert [j.created for j in jobs] == [1000.0 + n for n in kept]
    assert [j.reply_to for j in jobs] == [(("::1", 9000 + n),) for n in kept]
    assert jobs[0].state == "running" and all(j.state == "queued" for j in jobs[1:])


def test_an_added_job_survives_a_crash(tmp_path: Path) -> None:
    """The process dies right after add() returns, with nothing closed or flushed by Python."""
    path = tmp_path / "journal.sqlite3"
    script = textwrap.dedent(
        f"""
        import os
        from pathlib import Path
        from daemon.jobs.journal import Journal
        journal = Journal(Path({str(path)!r}))
        journal.add(41, {{"prompt": "x"}}, "normal")
        journal.add("forty-two", {{"prompt": "y"}}, "live")
        os._exit(0)
        """
    )
    root = Path(__file__).resolve().parent.parent
    subprocess.run([sys.executable, "-c", script], check=True, cwd=root, timeout=60)
    with Journal(path) as journal:
        jobs = journal.unfinished()
    assert [(j.job_id, j.request, j.priority) for j in jobs] == [
        (41, {"prompt": "x"}, "normal"),
        ("forty-two", {"prompt": "y"}, "live"),
    ]


def test_concurrent_adds_from_four_threads(journal: Journal) -> None:
    per_thread = 50
    seqs: dict[int, list[int]] = {t: [] for t in range(4)}
    start = threading.Barrier(4)

    def add_many(thread: int) -> None:
        start.wait()
        for n in range(per_thread):
            seq = journal.add(f"t{thread}-{n}", {"thread": thread, "n": n}, "normal")
            seqs[thread].append(seq)
            if n % 10 == 0:
                journal.mark_running(seq)  # reads and writes interleave with the adds

    threads = [threading.Thread(target=add_many, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    every = [seq for thread_seqs in seqs.values() for seq in thread_seqs]
    assert len(every) == 200 and len(set(every)) == 200
    jobs = journal.unfinished()
    assert len(jobs) == 200
    for t in range(4):  # each thread's jobs come back in the order it added them
        mine = [j for j in jobs if j.request["thread"] == t]
        assert [j.request["n"] for j in mine] == list(range(per_thread))
        assert [j.seq for j in mine] == seqs[t]


def test_prune_deletes_only_old_finished_jobs(journal: Journal) -> None:
    done = journal.add(1, {}, "normal")
    waiting = journal.add(2, {}, "normal")
    journal.mark_finished(done, "done")
    assert journal.prune(3600) == 0  # finished just now: kept
    time.sleep(0.01)
    assert journal.prune(0.001) == 1
    assert journal.job(done) is None
    assert [j.seq for j in journal.unfinished()] == [waiting]


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    Journal(path).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION + 1,))
    db.commit()
    db.close()
    with pytest.raises(OutputError, match="newer musicldm-daemon"):
        Journal(path)


def test_a_file_that_is_not_a_database_is_an_output_error(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(OutputError, match="journal"):
        Journal(path)


# -- the library ---------------------------------------------------------------------------------


def test_clips_add_recent_and_find(journal: Journal) -> None:
    records = [
        clip(1, "/out/a.wav", created=100.0),
        clip("x", "/out/b.wav", created=200.0, bars=None, score=None),
        clip(3, "/out/c.wav", created=300.0),
    ]
    for record in records:
        journal.add_clip(record)
    assert journal.recent_clips() == records[::-1]  # newest first, every field back
    assert journal.recent_clips(limit=2) == [records[2], records[1]]
    assert journal.recent_clips(limit=0) == []
    found = journal.find_clip("x")
    assert found == records[1] and found.bars is None and found.score is None
    assert journal.find_clip(3) == records[2]
    assert journal.find_clip(99) is None
    assert journal.clip_by_path("/out/c.wav") == records[2]
    assert journal.clip_by_path(Path("/out/a.wav")) == records[0]
    assert journal.clip_by_path("/out/none.wav") is None


def test_find_clip_gives_the_best_take_of_the_newest_job(journal: Journal) -> None:
    journal.add_clip(clip(5, "/out/old.wav", created=1.0))
    # a later job with the same id and three takes, recorded best first
    for rank, take in enumerate((2, 0, 1)):
        journal.add_clip(clip(5, f"/out/new-take{take}.wav", take=take, rank=rank, created=2.0))
    found = journal.find_clip(5)
    assert found is not None and found.path == "/out/new-take2.wav"


def test_find_clip_prefers_the_same_id_type(journal: Journal) -> None:
    journal.add_clip(clip("7", "/out/text.wav"))
    found = journal.find_clip(7)  # no int 7: the text "7" will do
    assert found is not None and found.path == "/out/text.wav"
    journal.add_clip(clip(7, "/out/int.wav"))
    found = journal.find_clip(7)
    assert found is not None and found.path == "/out/int.wav" and found.job_id == 7
    found = journal.find_clip("7")
    assert found is not None and found.path == "/out/text.wav" and found.job_id == "7"


def test_library_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    record = clip(1, "/out/a.wav")
    with Journal(path) as journal:
        journal.add_clip(record)
    with Journal(path) as journal:
        assert journal.recent_clips() == [record]


def test_clip_lookups_from_another_thread_while_adding(journal: Journal) -> None:
    stop = threading.Event()
    errors: list[BaseException] = []

    def read() -> None:
        try:
            while not stop.is_set():
                journal.recent_clips(5)
                journal.find_clip(1)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for n in range(100):
            journal.add_clip(clip(1, f"/out/{n}.wav", created=float(n)))
    finally:
        stop.set()
        reader.join(timeout=30)
    assert errors == []
    found = journal.find_clip(1)
    assert found is not None and found.path == "/out/99.wav"


# -- faults: a full disk, a damaged file, an older schema ----------------------------------------


class _FullDisk:
    """A connection whose writes fail as on a full disk (reads and transactions still work)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def execute(self, sql: str, params=()):  # type: ignore[no-untyped-def]
        if sql.lstrip().startswith(("INSERT", "UPDATE", "DELETE")):
            raise sqlite3.OperationalError("database or disk is full")
        return self.db.execute(sql, params)

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.db, name)


def test_sqlite_errors_leave_as_io_errors_naming_the_journal(journal: Journal) -> None:
    seq = journal.add(1, REQUEST, "normal")
    real = journal._db
    journal._db = _FullDisk(real)  # type: ignore[assignment]
    with pytest.raises(JournalError, match="database or disk is full") as info:
        journal.add(2, REQUEST, "normal")
    assert isinstance(info.value, OutputError) and info.value.code == "io_error"
    assert str(journal.path) in str(info.value)
    with pytest.raises(JournalError):
        journal.mark_running(seq)
    assert journal.unfinished()[0].state == "queued"  # reads still work, nothing half-written


def test_an_end_that_cannot_be_written_is_written_by_the_next_write(journal: Journal) -> None:
    seq = journal.add(1, REQUEST, "normal")
    real = journal._db
    journal._db = _FullDisk(real)  # type: ignore[assignment]
    assert journal.end_job(seq, "failed", "io_error", "disk full") is False  # never raises
    assert journal.unrecorded == (seq,)
    journal._db = real
    journal.add(2, REQUEST, "normal")
    assert journal.unrecorded == ()
    job = journal.job(seq)
    assert job is not None and (job.state, job.code) == ("failed", "io_error")


def test_an_end_still_unwritten_gets_a_last_try_at_close(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    journal = Journal(path)
    seq = journal.add(1, REQUEST, "normal")
    real = journal._db
    journal._db = _FullDisk(real)  # type: ignore[assignment]
    journal.end_job(seq, "cancelled", "cancelled", "cancelled")
    journal._db = real
    journal.close()
    with Journal(path) as again:
        assert again.unfinished() == []


def test_a_damaged_journal_says_how_to_move_it_aside(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(JournalError) as info:
        Journal(path)
    message = str(info.value)
    assert f"journal at {path} is not a SQLite database" in message
    assert f"mv {path} {path}.bad" in message


def test_a_clip_and_its_take_count_are_one_write(journal: Journal) -> None:
    seq = journal.add(1, REQUEST, "normal")
    journal.add_clip(clip(1, "/out/t0.wav", take=0), job_seq=seq)
    journal.add_clip(clip(1, "/out/t2.wav", take=2, rank=1), job_seq=seq)
    journal.add_clip(clip(1, "/out/other.wav", take=1))  # a clip of no job (render)
    assert journal.delivered_takes(seq) == {0, 2}
    job = journal.job(seq)
    assert job is not None and job.takes_done == 2
    real = journal._db
    journal._db = _FullDisk(real)  # type: ignore[assignment]
    with pytest.raises(JournalError):
        journal.add_clip(clip(1, "/out/t1.wav", take=1), job_seq=seq)
    journal._db = real
    job = journal.job(seq)
    assert journal.delivered_takes(seq) == {0, 2} and job is not None and job.takes_done == 2


def test_a_version_1_journal_is_migrated(tmp_path: Path) -> None:
    from daemon.jobs import journal as module

    path = tmp_path / "journal.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(module._SCHEMA.replace(",\n    job_seq INTEGER", ""))
    db.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    db.execute(
        "INSERT INTO clips (job_id, job_id_type, path, prompt, seconds, bpm, bars, beats_per_bar,"
        " seed, take, settings, created, render_seconds)"
        " VALUES ('7', 'int', '/out/old.wav', 'p', 2.0, 120.0, 1, 4, 3, 0, '{}', 1.0, 0.5)"
    )
    db.commit()
    db.close()
    with Journal(path) as journal:
        found = journal.find_clip(7)
        assert found is not None and found.path == "/out/old.wav"
        seq = journal.add(8, REQUEST, "normal")
        journal.add_clip(clip(8, "/out/new.wav"), job_seq=seq)
        assert journal.delivered_takes(seq) == {0}
    db = sqlite3.connect(path)
    try:
        assert db.execute("SELECT value FROM meta").fetchone() == (str(SCHEMA_VERSION),)
    finally:
        db.close()
