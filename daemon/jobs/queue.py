"""Jobs and the bounded priority queue between the OSC front-end and the worker.

The OSC thread puts validated :class:`Job` objects in; the worker thread takes the most urgent one
and, with :meth:`JobQueue.take_compatible`, other queued jobs it can render in the same UNet batch.
Order: ``live`` before ``normal`` before ``batch``, first come first served within a priority.
The bound (default 256 jobs) makes a flood answer ``queue_full`` at once instead of growing
without limit.

Every job ends exactly once (:meth:`Job.finish`), whoever gets there first — the worker
finishing it, a cancel, or a shutdown — so no client ever gets two endings for one take.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from daemon.errors import QueueFull, ShuttingDown
from daemon.wire.contract import PRIORITIES  # most urgent first
from musicldm_core.spec import ClipSpec

__all__ = ["Job", "JobQueue"]

Address = tuple[str, int]


@dataclass(eq=False)
class Job:
    """One accepted generate request (all its takes).

    ``seq`` is the journal's unique key; ``job_id`` is what the client sees. ``spec`` is
    validated and seeded. ``done_takes``: take numbers delivered before a restart (take ``k``
    has seed ``spec.seed + k``); only the others are rendered, and :attr:`takes` counts them.
    """

    seq: int
    job_id: int | str
    spec: ClipSpec
    priority: str = "normal"
    created: float = field(default_factory=time.time)
    origin: tuple[Address, ...] = ()
    slot: int | None = None
    play: bool = False
    done_takes: frozenset[int] = frozenset()
    cancel_requested: threading.Event = field(default_factory=threading.Event)
    _finished: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def finish(self) -> bool:
        """Mark the job ended; True only for the first caller (who then sends the replies)."""
        with self._lock:
            if self._finished:
                return False
            self._finished = True
            return True

    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def takes(self) -> int:
        """The takes still to deliver (all of them, unless resumed after a restart)."""
        return self.spec.takes - len(self.done_takes)

    @property
    def remaining_takes(self) -> tuple[int, ...]:
        """The take numbers still to deliver, in order."""
        return tuple(k for k in range(self.spec.takes) if k not in self.done_takes)


class JobQueue:
    """A bounded priority queue of jobs; thread-safe."""

    def __init__(self, maxsize: int = 256) -> None:
        self.maxsize = maxsize
        self._heap: list[tuple[int, int, Job]] = []
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._closed = False

    def __len__(self) -> int:
        with self._cond:
            return len(self._heap)

    def put(self, job: Job, *, force: bool = False) -> int:
        """Queue ``job``; returns its position (0 = next). ``force`` ignores the bound (restart)."""
        with self._cond:
            if self._closed:
                raise ShuttingDown("the daemon is shutting down and takes no new jobs")
            if not force and len(self._heap) >= self.maxsize:
                raise QueueFull(
                    f"the queue holds {self.maxsize} jobs already; wait for some to finish "
                    "or cancel them"
                )
            rank = PRIORITIES.index(job.priority)
            entry = (rank, next(self._order), job)
            heapq.heappush(self._heap, entry)
            position = sum(1 for e in self._heap if e[:2] < entry[:2])
            self._cond.notify()
            return position

    def get(self, timeout: float | None = None) -> Job | None:
        """The most urgent job, waiting up to ``timeout`` seconds; None on timeout or close."""
        with self._cond:
            deadline = None if timeout is None else time.monotonic() + timeout
            while not self._heap:
                if self._closed:
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)
            return heapq.heappop(self._heap)[2]

    def take_compatible(
        self, key: Callable[[Job], Hashable], wanted: Hashable, *, priority: str, max_takes: int
    ) -> list[Job]:
        """Remove and return queued jobs of ``priority`` whose ``key`` equals ``wanted``, oldest
        first, while their takes add up to at most ``max_takes``."""
        taken: list[Job] = []
        budget = max_takes
        with self._cond:
            for entry in sorted(self._heap):
                job = entry[2]
                if job.priority != priority or job.takes > budget:
                    continue
                if key(job) == wanted:
                    taken.append(job)
                    budget -= job.takes
                    if budget <= 0:
                        break
            if taken:
                ids = {id(j) for j in taken}
                self._heap = [e for e in self._heap if id(e[2]) not in ids]
                heapq.heapify(self._heap)
        return taken

    def remove(self, predicate: Callable[[Job], bool]) -> list[Job]:
        """Remove and return every queued job for which ``predicate`` is true."""
        with self._cond:
            removed = [e[2] for e in self._heap if predicate(e[2])]
            if removed:
                self._heap = [e for e in self._heap if not predicate(e[2])]
                heapq.heapify(self._heap)
            return removed

    def snapshot(self) -> list[Job]:
        """The queued jobs in the order they will run."""
        with self._cond:
            return [e[2] for e in sorted(self._heap)]

    def close(self) -> None:
        """Refuse new jobs and wake waiters; queued jobs stay (they are in the journal)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
