"""The durable journal of jobs and the library of clips, in one SQLite file.

The journal is what makes "accepted" mean something: the OSC thread writes a job here, and the
write is committed to disk (WAL, ``synchronous=FULL``) before ``/musicldm/queued`` goes out, so a
job survives a shutdown, a crash or a power cut and is rendered on the next start
(:meth:`Journal.unfinished`). The worker thread marks it running, counts its takes and records
how it ended. The library is the list of delivered clips with their prompt, settings, seed, path
and timings, for ``musicldm-daemon clips`` and ``/musicldm/play <id>``.

Errors: every SQLite error (a full disk, a read-only folder, a damaged file) leaves a method as
:class:`JournalError`, an :class:`~musicldm_core.errors.OutputError` (``io_error``) naming the
file and the reason, never as a raw ``sqlite3`` exception. The end of a job that could not be
written (:meth:`Journal.end_job`) is kept in memory and written by the next write that
succeeds, so a job whose clients were told it ended is not rendered again after a restart unless
the disk stayed unwritable until the daemon stopped.

Threads: one connection, opened with ``check_same_thread=False`` and guarded by one lock, so the
OSC thread, the worker thread and the start-up thread may each call any method. Every call is
short (one indexed statement) and commits before it returns. Another process (``musicldm-daemon
clips`` while the daemon runs) may open the same file: WAL lets it read while the daemon writes.

Schema (version :data:`SCHEMA_VERSION`, kept in the ``meta`` table)::

    jobs   seq (unique key) · job_id + job_id_type · request (JSON) · priority · created ·
           state · takes_done · updated · code · message · reply_to (JSON [[host, port], …])
    clips  job_id + job_id_type · path · prompt · seconds · bpm · bars · beats_per_bar · seed ·
           take · rank · score · settings (JSON) · created · render_seconds · job_seq

``clips.job_seq`` is the ``jobs.seq`` of the job that made the clip (NULL for clips of the
``render`` command): which takes of a job were delivered, so a restart renders only the others
(:meth:`Journal.delivered_takes`). A clip row and its job's ``takes_done`` are written in one
transaction (:meth:`Journal.add_clip`).

``seq`` is the internal key: the ids clients send (``job_id``) may repeat between clients. An
id is stored as text with its type, so an int id comes back as an int and ``"7"`` stays a string.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from musicldm_core.errors import OutputError

if TYPE_CHECKING:
    from musicldm_core.render import Clip

__all__ = [
    "FINISHED_STATES",
    "JOB_STATES",
    "SCHEMA_VERSION",
    "ClipRecord",
    "Journal",
    "JournalError",
    "JournalJob",
]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
"""Bumped, with a migration in :meth:`Journal._migrate`, whenever the tables change."""

JOB_STATES = ("queued", "running", "done", "failed", "cancelled")
FINISHED_STATES = ("done", "failed", "cancelled")
_UNFINISHED = "('queued', 'running')"
_END_SQL = (
    "UPDATE jobs SET state = ?, code = ?, message = ?, updated = ?"
    f" WHERE seq = ? AND state IN {_UNFINISHED}"
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL,
    job_id_type TEXT NOT NULL CHECK (job_id_type IN ('int', 'str')),
    request TEXT NOT NULL,
    priority TEXT NOT NULL,
    created REAL NOT NULL,
    state TEXT NOT NULL
        CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    takes_done INTEGER NOT NULL DEFAULT 0,
    updated REAL NOT NULL,
    code TEXT,
    message TEXT,
    reply_to TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS jobs_unfinished ON jobs (seq) WHERE state IN ('queued', 'running');
CREATE INDEX IF NOT EXISTS jobs_updated ON jobs (updated);
CREATE TABLE IF NOT EXISTS clips (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL,
    job_id_type TEXT NOT NULL CHECK (job_id_type IN ('int', 'str')),
    path TEXT NOT NULL,
    prompt TEXT NOT NULL,
    seconds REAL NOT NULL,
    bpm REAL NOT NULL,
    bars INTEGER,
    beats_per_bar INTEGER NOT NULL,
    seed INTEGER NOT NULL,
    take INTEGER NOT NULL,
    rank INTEGER NOT NULL DEFAULT 0,
    score REAL,
    settings TEXT NOT NULL,
    created REAL NOT NULL,
    render_seconds REAL NOT NULL,
    job_seq INTEGER
);
CREATE INDEX IF NOT EXISTS clips_job ON clips (job_id, job_id_type, id);
CREATE INDEX IF NOT EXISTS clips_path ON clips (path, id);
CREATE INDEX IF NOT EXISTS clips_created ON clips (created, id);
"""

JobId = int | str
Address = tuple[str, int]
_Row = TypeVar("_Row")


_INDEXES_V2 = "CREATE INDEX IF NOT EXISTS clips_job_seq ON clips (job_seq, take)"
"""Made after the migrations: a version 1 file has no ``job_seq`` column until migrated."""


class JournalError(OutputError):
    """The journal could not be read or written (``io_error``): the message names the file and
    the reason, and for a damaged file how to move it aside."""


def _aside_hint(path: Path) -> str:
    return f"move it aside (mv {path} {path}.bad) to start with an empty library"


def _journal_error(path: Path, doing: str, exc: sqlite3.Error) -> JournalError:
    """A :class:`JournalError` for ``exc``; a damaged or foreign file says how to set it aside."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, sqlite3.DatabaseError) and not isinstance(
        exc, sqlite3.OperationalError | sqlite3.IntegrityError | sqlite3.ProgrammingError
    ):  # "file is not a database", "database disk image is malformed"
        what = "not a SQLite database" if "not a database" in text else "damaged"
        return JournalError(f"journal at {path} is {what} ({text}); {_aside_hint(path)}")
    return JournalError(f"cannot {doing} the journal {path}: {text}")


def _id_in(job_id: JobId) -> tuple[str, str]:
    """An id as (text, type) for storage; bools and other types are refused."""
    if isinstance(job_id, bool) or not isinstance(job_id, int | str):
        raise TypeError(f"a job id must be an int or a str, got {job_id!r}")
    return str(job_id), "int" if isinstance(job_id, int) else "str"


def _id_out(text: str, kind: str) -> JobId:
    return int(text) if kind == "int" else text


@dataclass(frozen=True)
class JournalJob:
    """One job as the journal holds it: every column of the ``jobs`` table.

    ``request`` is the JSON-decoded request dict given to :meth:`Journal.add`; ``created`` and
    ``updated`` are Unix times (seconds); ``reply_to`` the addresses the job's replies also go to.
    """

    seq: int
    job_id: JobId
    request: dict[str, Any]
    priority: str
    created: float
    state: str
    takes_done: int
    updated: float
    code: str | None
    message: str | None
    reply_to: tuple[Address, ...]

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES


@dataclass(frozen=True)
class ClipRecord:
    """One delivered clip in the library.

    ``seconds`` is its exact length, ``bpm`` its tempo, ``bars`` None for a clip made with
    ``seconds``; ``take`` which candidate it was (0-based); ``score`` its match to the prompt when
    takes were ranked; ``settings`` everything that made it (``Clip.settings()``, including its
    ``rank``, 0 = best); ``created`` a Unix time; ``render_seconds`` the wall time of its render.
    """

    job_id: JobId
    path: str
    prompt: str
    seconds: float
    bpm: float
    bars: int | None
    beats_per_bar: int
    seed: int
    take: int
    score: float | None
    settings: dict[str, Any] = field(default_factory=dict)
    created: float = field(default_factory=time.time)
    render_seconds: float = 0.0

    @classmethod
    def of(cls, clip: Clip, job_id: JobId, render_seconds: float) -> ClipRecord:
        """The record of ``clip``, just rendered for ``job_id`` (the worker's jobs, ``render``)."""
        spec = clip.spec
        return cls(
            job_id=job_id,
            path=str(clip.path),
            prompt=spec.prompt,
            seconds=clip.seconds,
            bpm=spec.bpm,
            bars=spec.grid_bars,
            beats_per_bar=spec.beats_per_bar,
            seed=clip.seed,
            take=clip.take,
            score=clip.score,
            settings=clip.settings(),
            render_seconds=render_seconds,
        )


def _columns(cls: type) -> str:
    """The columns a row of ``cls`` is read from, in field order: ``job_id`` is two (its text
    and its type)."""
    names = [f.name for f in fields(cls)]
    return ", ".join("job_id, job_id_type" if name == "job_id" else name for name in names)


def _from_row(cls: type[_Row], row: Sequence[Any], **decode: Callable[[Any], Any]) -> _Row:
    """A ``cls`` from a row of :func:`_columns` ``(cls)``; ``decode`` maps a field to the
    function that turns its stored value back (JSON text, say)."""
    values = iter(row)
    kwargs: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        value = next(values)
        if f.name == "job_id":
            value = _id_out(value, next(values))
        kwargs[f.name] = decode[f.name](value) if f.name in decode else value
    return cls(**kwargs)


def _addresses(text: str) -> tuple[Address, ...]:
    return tuple((str(host), int(port)) for host, port in json.loads(text))


_JOB_COLUMNS = _columns(JournalJob)
_CLIP_COLUMNS = _columns(ClipRecord)


def _job(row: Sequence[Any]) -> JournalJob:
    return _from_row(JournalJob, row, request=json.loads, reply_to=_addresses)


def _clip(row: Sequence[Any]) -> ClipRecord:
    return _from_row(ClipRecord, row, settings=json.loads)


class Journal:
    """The SQLite journal of jobs and library of clips at ``path`` (created if missing).

    Safe to call from any thread; every write is committed (durably) before the call returns.
    Use as a context manager, or call :meth:`close`. Raises
    :class:`~musicldm_core.errors.OutputError` when the file cannot be opened or was written by
    a newer version of the daemon.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: no implicit transactions; each write below is its own
            # BEGIN IMMEDIATE ... COMMIT, so nothing is ever left uncommitted between calls.
            self._db = sqlite3.connect(
                str(self.path), timeout=10.0, isolation_level=None, check_same_thread=False
            )
        except OSError as exc:
            raise JournalError(f"cannot open the journal {self.path}: {exc}") from exc
        except sqlite3.Error as exc:
            raise _journal_error(self.path, "open", exc) from exc
        self._unrecorded: dict[int, tuple[str, str | None, str | None]] = {}
        try:
            self._setup()
        except sqlite3.Error as exc:
            self._db.close()
            raise _journal_error(self.path, "use", exc) from exc
        except BaseException:
            self._db.close()
            raise

    def _setup(self) -> None:
        mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            log.warning("journal %s: WAL is unavailable here (mode %s)", self.path, mode)
        # FULL: a commit is on disk, not just in the OS's cache, when it returns. A job the
        # client was told is queued must survive a power cut.
        self._db.execute("PRAGMA synchronous=FULL")
        with self._transaction():
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            row = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is None:
                self._db.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
            else:
                self._migrate(int(row[0]))
            self._db.execute(_INDEXES_V2)

    def _migrate(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise OutputError(
                f"the journal {self.path} was written by a newer musicldm-daemon (schema "
                f"{version}; this one reads {SCHEMA_VERSION}); upgrade, or use another --state"
            )
        if version < 2:  # clips learn which job made them (resuming a job's missing takes)
            self._db.execute("ALTER TABLE clips ADD COLUMN job_seq INTEGER")
        if version < SCHEMA_VERSION:
            self._db.execute(
                "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),)
            )

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; the caller holds ``_lock`` (or is the constructor)."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")  # take the write lock now, not halfway through
        try:
            yield db
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the database; later calls raise. Closing twice is harmless. Any thread.

        Job ends that could not be written (:meth:`end_job`) get one last try first.
        """
        with self._lock:
            if self._unrecorded:
                try:
                    self._write_unrecorded()
                except sqlite3.Error as exc:
                    log.error(
                        "journal %s: could not record the end of jobs %s (%s); they will be "
                        "rendered again on the next start",
                        self.path,
                        ", ".join(map(str, sorted(self._unrecorded))),
                        exc,
                    )
            self._db.close()

    @property
    def unrecorded(self) -> tuple[int, ...]:
        """The ``seq`` of jobs whose end :meth:`end_job` could not write yet."""
        with self._lock:
            return tuple(self._unrecorded)

    def _write_unrecorded(self) -> None:
        """Write the job ends kept by :meth:`end_job`; the caller holds ``_lock``."""
        for seq, (state, code, message) in list(self._unrecorded.items()):
            with self._transaction() as db:
                db.execute(_END_SQL, (state, code, message, time.time(), seq))
            del self._unrecorded[seq]

    def _write(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self._write_many([(sql, params)])

    def _write_many(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> sqlite3.Cursor:
        """Run ``statements`` in one transaction; the first statement's cursor comes back."""
        with self._lock:
            try:
                if self._unrecorded:
                    self._write_unrecorded()
                with self._transaction() as db:
                    cursors = [db.execute(sql, params) for sql, params in statements]
                return cursors[0]
            except sqlite3.Error as exc:
                raise _journal_error(self.path, "write", exc) from exc

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise _journal_error(self.path, "read", exc) from exc

    # -- jobs --------------------------------------------------------------------------------

    def add(
        self,
        job_id: JobId,
        request: dict[str, Any],
        priority: str,
        *,
        created: float | None = None,
        reply_to: Iterable[Address] = (),
    ) -> int:
        """Journal an accepted job as ``queued`` and return its ``seq`` (unique, increasing).

        ``request`` must be JSON-serialisable (it comes back from :meth:`unfinished` as a dict
        equal to it, tuples as lists); ``created`` is a Unix time, now by default; ``reply_to``
        the addresses its replies also go to (the sender). Committed to disk before returning.
        Called from the OSC thread.
        """
        text, kind = _id_in(job_id)
        now = time.time()
        cursor = self._write(
            "INSERT INTO jobs (job_id, job_id_type, request, priority, created, state, updated,"
            " reply_to) VALUES (?, ?, ?, ?, ?, 'queued', ?, ?)",
            (
                text,
                kind,
                json.dumps(request, allow_nan=False),
                priority,
                now if created is None else float(created),
                now,
                json.dumps([[str(host), int(port)] for host, port in reply_to]),
            ),
        )
        seq = cursor.lastrowid
        assert seq is not None  # an INSERT into a rowid table always has one
        return seq

    def mark_running(self, seq: int) -> bool:
        """Mark a queued job ``running``; False if it is not queued or running. Worker thread."""
        cursor = self._write(
            "UPDATE jobs SET state = 'running', updated = ?"
            f" WHERE seq = ? AND state IN {_UNFINISHED}",
            (time.time(), seq),
        )
        return cursor.rowcount > 0

    def mark_take_done(self, seq: int) -> bool:
        """Count one more delivered take of a job; False if there is no such job. Worker thread."""
        cursor = self._write(
            "UPDATE jobs SET takes_done = takes_done + 1, updated = ? WHERE seq = ?",
            (time.time(), seq),
        )
        return cursor.rowcount > 0

    def mark_finished(
        self, seq: int, state: str, code: str | None = None, message: str | None = None
    ) -> bool:
        """End a job as ``done``, ``failed`` or ``cancelled``, with the failure's code and message.

        Only an unfinished job changes (a job ends once); returns whether this one did. Called
        from the worker thread, and from the OSC thread for a cancel.
        """
        if state not in FINISHED_STATES:
            raise ValueError(f"state must be one of {', '.join(FINISHED_STATES)}, got {state!r}")
        cursor = self._write(_END_SQL, (state, code, message, time.time(), seq))
        return cursor.rowcount > 0

    def end_job(
        self, seq: int, state: str, code: str | None = None, message: str | None = None
    ) -> bool:
        """:meth:`mark_finished` that never raises :class:`JournalError`: when the write fails
        (a full disk) the end is kept and written by the next write that succeeds, or at
        :meth:`close`. Returns whether it was written now. For the worker and cancels, which
        must still tell the client the job ended."""
        try:
            return self.mark_finished(seq, state, code, message)
        except JournalError as exc:
            with self._lock:
                self._unrecorded[seq] = (state, code, message)
            log.error("journal: the end of job seq %d is not recorded yet: %s", seq, exc)
            return False

    def job(self, seq: int) -> JournalJob | None:
        """The job with this ``seq``, in whatever state, or None. Any thread."""
        rows = self._read(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE seq = ?", (seq,))
        return _job(rows[0]) if rows else None

    def largest_int_id(self, *, at_most: int | None = None) -> int:
        """The largest integer job id ever journaled (0 if none): the daemon numbers its own
        jobs above it, so an id names one job across restarts. ``at_most``: larger ids are
        ignored (an older version accepted ids that no OSC int carries)."""
        sql = "SELECT MAX(CAST(job_id AS INTEGER)) FROM jobs WHERE job_id_type = 'int'"
        params: tuple[int, ...] = ()
        if at_most is not None:
            sql += " AND CAST(job_id AS INTEGER) <= ?"
            params = (at_most,)
        rows = self._read(sql, params)
        return int(rows[0][0] or 0) if rows else 0

    def unfinished(self) -> list[JournalJob]:
        """Jobs still ``queued`` or ``running``, in the order they were accepted (by ``seq``).

        What a restart must render (or end, when stale). Called on the start-up thread.
        """
        rows = self._read(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE state IN {_UNFINISHED} ORDER BY seq"
        )
        return [_job(row) for row in rows]

    def prune(self, older_than_seconds: float) -> int:
        """Delete finished jobs last updated more than ``older_than_seconds`` ago.

        Unfinished jobs and the clip library are never touched. Returns how many rows went.
        """
        cursor = self._write(
            f"DELETE FROM jobs WHERE state NOT IN {_UNFINISHED} AND updated < ?",
            (time.time() - older_than_seconds,),
        )
        return cursor.rowcount

    # -- the library -------------------------------------------------------------------------

    def add_clip(self, record: ClipRecord, *, job_seq: int | None = None) -> None:
        """Record a delivered clip (its file is complete on disk). Worker thread.

        ``job_seq``: the job that made it; its ``takes_done`` goes up in the same transaction,
        so the library and the job's count never disagree after a crash.
        """
        text, kind = _id_in(record.job_id)
        rank = record.settings.get("rank", record.take)
        statements: list[tuple[str, Sequence[Any]]] = [
            (
                f"INSERT INTO clips ({_CLIP_COLUMNS}, rank, job_seq)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*self._clip_values(text, kind, record, rank), job_seq),
            )
        ]
        if job_seq is not None:
            statements.append(
                (
                    "UPDATE jobs SET takes_done = takes_done + 1, updated = ? WHERE seq = ?",
                    (time.time(), job_seq),
                )
            )
        self._write_many(statements)

    @staticmethod
    def _clip_values(text: str, kind: str, record: ClipRecord, rank: Any) -> tuple[Any, ...]:
        return (
            text,
            kind,
            str(record.path),
            record.prompt,
            float(record.seconds),
            float(record.bpm),
            record.bars,
            record.beats_per_bar,
            record.seed,
            record.take,
            record.score,
            json.dumps(record.settings, allow_nan=False, default=str),
            float(record.created),
            float(record.render_seconds),
            int(rank) if isinstance(rank, int | float) else 0,
        )

    def delivered_takes(self, seq: int) -> frozenset[int]:
        """The take numbers of job ``seq`` already in the library (delivered). Any thread."""
        rows = self._read("SELECT take FROM clips WHERE job_seq = ?", (seq,))
        return frozenset(int(row[0]) for row in rows)

    def recent_clips(self, limit: int = 20) -> list[ClipRecord]:
        """Up to ``limit`` clips, newest first. Any thread."""
        rows = self._read(
            f"SELECT {_CLIP_COLUMNS} FROM clips ORDER BY created DESC, id DESC LIMIT ?",
            (max(int(limit), 0),),
        )
        return [_clip(row) for row in rows]

    def find_clip(self, job_id: JobId) -> ClipRecord | None:
        """The newest clip of a job id (``/musicldm/play <id>``), or None.

        Of the takes of one job, the best-ranked: a job's takes are recorded best first, so the
        newest clip of rank 0 is the best take of the newest job with this id. An id of the
        other type with the same text (``7`` for ``"7"``) is taken only when none of this type
        exists. Any thread.
        """
        text, kind = _id_in(job_id)
        rows = self._read(
            f"SELECT {_CLIP_COLUMNS} FROM clips WHERE job_id = ?"
            " ORDER BY job_id_type = ? DESC, rank = 0 DESC, id DESC LIMIT 1",
            (text, kind),
        )
        return _clip(rows[0]) if rows else None

    def clip_by_path(self, path: str | Path) -> ClipRecord | None:
        """The newest clip recorded at ``path`` (compared as given, not resolved), or None."""
        rows = self._read(
            f"SELECT {_CLIP_COLUMNS} FROM clips WHERE path = ? ORDER BY id DESC LIMIT 1",
            (str(path),),
        )
        return _clip(rows[0]) if rows else None
