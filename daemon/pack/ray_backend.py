"""A pack's clips spread over Ray actors, each keeping one engine loaded (``--ray``).

Ray (``pip install "musicldm-daemon[ray]"``) runs a runtime of its own on this machine
(``--ray``) or joins a running cluster (``--ray ADDRESS``, ``--ray auto``: :func:`join_cluster`,
which fails in bounded time where nothing answers). Each actor loads the engine once, on one
GPU where the cluster has GPUs (``num_gpus=1``), else on one CPU (no more actors than the
cluster has of those); the driver schedules the batch groups
(:func:`daemon.pack.local.group_jobs`) as tasks on the actors, at most :data:`DEPTH` in flight
per actor so that none waits for work.

Faults: a task that raises is retried (up to :data:`MAX_ATTEMPTS` tries per group, on any
actor) before its clips are reported failed; an actor that dies (killed, its node lost, out of
memory) is replaced by a new one and the groups it held go back to the front of the queue. Ray's
own restarts and retries are off (``max_restarts=0``) so that one place decides what is redone.

Results, two ways (docs/packs.md, "Local or Ray"):

- streamed back (the default, safe everywhere): the actor returns each clip's WAV bytes and the
  driver writes them, so the output folder only needs to exist on the driver's machine;
- written in place (``shared_folder``, when every node mounts the output folder at the same
  path): the actor writes the file atomically itself and returns only its settings, so the
  audio does not travel through the driver.

Either way the driver adds the manifest row only when the file is there, and a clip redone after
a fault lands on the same name (its id), so nothing is lost and nothing is doubled.
"""

from __future__ import annotations

import logging
import os
import socket
from collections import deque
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from daemon.pack.local import Rendered, batch_size_for, render_group
from daemon.pack.output import write_atomic
from daemon.pack.plan import ClipJob
from daemon.pack.run import Deliver, Fail
from musicldm_core.errors import BadRequest, ModelError, MusicLDMError

__all__ = ["MAX_ATTEMPTS", "ClusterUnreachable", "RayBackend", "import_ray", "join_cluster"]

log = logging.getLogger(__name__)

DEPTH = 2
"""Groups in flight per actor: one rendering, one waiting, so an actor never idles on the
round trip to the driver."""

MAX_ATTEMPTS = 3
"""Tries per group (a task error or its actor's death) before its clips are reported failed."""

CONNECT_TIMEOUT_S = 10.0
"""How long ``--ray ADDRESS`` waits for the head's port to answer before giving up."""

MAX_REPLACEMENTS_PER_WORKER = 3
"""Dead actors replaced per worker slot before the run gives up (an actor that cannot even
load the engine would otherwise be replaced for ever)."""


class ClusterUnreachable(MusicLDMError):
    """``--ray ADDRESS`` names no running cluster (exit status 1, one line)."""


def import_ray() -> Any:
    """The ``ray`` module, or a :class:`BadRequest` saying how to install it."""
    try:
        import ray
    except ImportError:
        raise BadRequest(
            'Ray is not installed: pip install "musicldm-daemon[ray]" (or leave out --ray to '
            "render on this machine)",
            key="ray",
        ) from None
    return ray


def _host_port(address: str) -> tuple[str, int]:
    """``host:port`` (or ``ray://host:port``, ``[v6]:port``) split, or a :class:`BadRequest`."""
    rest = address.removeprefix("ray://")
    host, sep, port = rest.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise BadRequest(
            f"--ray ADDRESS must be host:port (the head's address, as `ray start --head` "
            f"prints it) or auto, got {address!r}",
            key="ray",
        )
    return host, int(port)


def _auto_address() -> str | None:
    """Where ``--ray auto`` would connect (Ray's own lookup), or None when it finds none."""
    try:  # a private helper: if it moves, ray.init still finds the cluster, unchecked
        from ray._private.services import canonicalize_bootstrap_address

        found = canonicalize_bootstrap_address("auto")
    except Exception:
        return None
    return str(found) if found else None


def join_cluster(ray: Any, address: str) -> None:
    """``ray.init`` on the cluster at ``address`` (host:port or auto), failing in bounded time.

    Ray itself retries an address with nothing behind it for many minutes; a plain TCP connect
    to the head's port first turns a wrong address or a stopped cluster into one
    :class:`ClusterUnreachable` within :data:`CONNECT_TIMEOUT_S`.
    """
    target = _auto_address() if address == "auto" else address
    if target is not None:
        host, port = _host_port(target)
        try:
            socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
        except OSError as error:
            reason = error.strerror or str(error) or type(error).__name__
            raise ClusterUnreachable(
                f"cannot reach the Ray cluster at {address}"
                f"{'' if target == address else f' ({target})'}: {reason}; start one with "
                "`ray start --head` or check the address"
            ) from None
    try:
        ray.init(
            address=address,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.WARNING,
        )
    except (ConnectionError, RuntimeError, ValueError) as error:
        if address == "auto" and target is None:  # Ray's words name its own flags, not ours
            raise ClusterUnreachable(
                "--ray auto found no running Ray cluster on this machine; start one with "
                "`ray start --head`, or give its address: --ray HEAD_IP:PORT"
            ) from None
        hint = ""
        if address != "auto" and not os.environ.get("RAY_AUTH_MODE"):
            # Ray sends its token only to a cluster it found itself (auto), never to an address
            hint = (
                "; a cluster with token authentication (`ray start`'s default) needs "
                "RAY_AUTH_MODE=token here and the head's token (~/.ray/auth_token, or "
                "RAY_AUTH_TOKEN)"
            )
        raise ClusterUnreachable(
            f"cannot join the Ray cluster at {address}: {error}{hint}"
        ) from None


class PackWorker:
    """What each actor is: one engine, loaded when the actor starts."""

    def __init__(self, model: str, device: str | None, dtype: str | None) -> None:
        from musicldm_core.engine import Engine
        from musicldm_core.loading import quiet_libraries

        quiet_libraries()
        self.engine = Engine.load(model, device=device, dtype=dtype)

    def render(self, jobs: Sequence[ClipJob], when: datetime, folder: str | None) -> list[Rendered]:
        rendered = render_group(self.engine, jobs, when=when)
        if folder is None:
            return rendered  # streamed back: the driver writes
        paths = {job.clip_id: job.relative_path for job in jobs}
        out = []
        for result in rendered:
            assert result.data is not None
            write_atomic(Path(folder) / paths[result.clip_id], result.data)
            out.append(Rendered(result.clip_id, None, result.settings))
        return out

    def pid(self) -> int:
        return os.getpid()


class RayBackend:
    """Renders a pack's groups on ``workers`` Ray actors (see the module docstring)."""

    def __init__(
        self,
        model: str,
        *,
        address: str | None = None,
        workers: int | None = None,
        device: str | None = None,
        dtype: str | None = None,
        shared_folder: Path | None = None,
    ) -> None:
        self.ray = import_ray()
        self.model = model
        self.device = device
        self.dtype = dtype
        self.shared_folder = shared_folder
        ray = self.ray
        if not ray.is_initialized():
            if address:
                join_cluster(ray, address)
            else:
                # "local": a runtime of its own, as documented, even where `ray start` runs a
                # cluster on this machine (Ray would join that one and refuse num_cpus)
                cpus = max(os.cpu_count() or 1, workers or 1)
                ray.init(
                    address="local",
                    num_cpus=cpus,
                    include_dashboard=False,
                    log_to_driver=False,
                    logging_level=logging.WARNING,
                )
        resources = ray.cluster_resources()
        self.gpus = int(resources.get("GPU", 0))
        self.workers = workers or self.gpus or 2
        # an actor the cluster has no room for never starts, and the groups handed to it would
        # wait for ever: no more actors than the cluster has GPUs (or CPUs), one each
        kind = "GPU" if self.gpus else "CPU"
        room = max(1, int(resources.get(kind, 0)))
        if self.workers > room:
            log.warning(
                "--workers %d: the Ray cluster has %d %ss (one per worker); using %d workers",
                self.workers,
                room,
                kind,
                room,
            )
            self.workers = room
        self.max_batch = batch_size_for(gpu=self.gpus > 0)
        self.actors: list[Any] = []
        self.replaced = 0

    def _new_actor(self) -> Any:
        ray = self.ray
        if self.gpus:
            options: dict[str, Any] = {"num_gpus": 1}
        else:
            options = {"num_cpus": 1}
        cls = ray.remote(max_restarts=0, max_task_retries=0, **options)(PackWorker)
        device = self.device if self.device or not self.gpus else "cuda"
        return cls.remote(self.model, device, self.dtype)

    def start(self) -> None:
        """Start the actors (each loads the engine); :meth:`run` calls it when needed."""
        while len(self.actors) < self.workers:
            self.actors.append(self._new_actor())

    def stop(self) -> None:
        for actor in self.actors:
            try:
                self.ray.kill(actor)
            except Exception:  # already dead: nothing to stop
                log.debug("actor already gone", exc_info=True)
        self.actors = []

    def run(
        self, groups: Sequence[Sequence[ClipJob]], deliver: Deliver, fail: Fail, when: datetime
    ) -> None:
        ray = self.ray
        from ray.exceptions import ActorUnavailableError, RayActorError, RayTaskError

        self.start()
        folder = None if self.shared_folder is None else str(self.shared_folder)
        queue: deque[int] = deque(range(len(groups)))
        attempts = [0] * len(groups)
        generation = [0] * len(self.actors)
        load = [0] * len(self.actors)
        in_flight: dict[Any, tuple[int, int, int]] = {}  # ref -> (slot, generation, group)
        deaths = [0] * len(self.actors)
        try:
            while queue or in_flight:
                for slot, actor in enumerate(self.actors):
                    while queue and load[slot] < DEPTH:
                        index = queue.popleft()
                        attempts[index] += 1
                        ref = actor.render.remote(list(groups[index]), when, folder)
                        in_flight[ref] = (slot, generation[slot], index)
                        load[slot] += 1
                ready, _ = ray.wait(list(in_flight), num_returns=1)
                ref = ready[0]
                slot, gen, index = in_flight.pop(ref)
                if gen == generation[slot]:
                    load[slot] -= 1
                try:
                    results = ray.get(ref)
                except (RayActorError, ActorUnavailableError) as exc:
                    if gen == generation[slot]:
                        deaths[slot] += 1
                        if deaths[slot] > MAX_REPLACEMENTS_PER_WORKER:
                            raise ModelError(
                                f"Ray worker {slot} died {deaths[slot]} times; last: {exc}"
                            ) from None
                        log.warning("Ray worker %d died (%s); replacing it", slot, exc)
                        try:
                            ray.kill(self.actors[slot])
                        except Exception:  # already dead
                            log.debug("dead actor could not be killed", exc_info=True)
                        self.actors[slot] = self._new_actor()
                        generation[slot] += 1
                        load[slot] = 0
                        self.replaced += 1
                    self._retry(index, groups, attempts, queue, fail, f"its worker died: {exc}")
                    continue
                except RayTaskError as exc:
                    cause = exc.cause if getattr(exc, "cause", None) is not None else exc
                    self._retry(index, groups, attempts, queue, fail, str(cause))
                    continue
                by_id = {job.clip_id: job for job in groups[index]}
                for result in results:
                    deliver(by_id[result.clip_id], result)
        finally:
            self.stop()

    @staticmethod
    def _retry(  # noqa: PLR0917 - the loop's state, passed from its one call site
        index: int,
        groups: Sequence[Sequence[ClipJob]],
        attempts: list[int],
        queue: deque[int],
        fail: Fail,
        message: str,
    ) -> None:
        if attempts[index] < MAX_ATTEMPTS:
            log.warning(
                "retrying %d clips (try %d failed: %s)",
                len(groups[index]),
                attempts[index],
                message,
            )
            queue.appendleft(index)
            return
        for job in groups[index]:
            fail(job, f"failed {attempts[index]} times; last: {message}")
