"""Request handlers: each typed request from :mod:`daemon.wire.requests` becomes a job or an
answer.

:meth:`Handlers.handle` is the OSC transport's handler: it parses, dispatches by request type
(:data:`Handlers.table`, one entry per request class) and turns any
:class:`~musicldm_core.errors.MusicLDMError` into ``/musicldm/fail`` through
:meth:`daemon.app.replies.Replies.request_failed`. Handlers run on the OSC transport's handler
thread and never wait on the model: a generate is journaled and queued, and the worker answers.

The handlers see the rest of the daemon only through :class:`App`, the narrow surface the
:class:`~daemon.app.daemon.Daemon` offers them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from daemon import __version__
from daemon.app.defaults import Defaults
from daemon.app.replies import Replies
from daemon.live.jobsystem import JobSystem
from daemon.wire import contract, requests
from daemon.wire.contract import JobId
from daemon.wire.requests import (
    Cancel,
    Generate,
    Get,
    Morph,
    Notify,
    Ping,
    Play,
    PlaybackOptions,
    Request,
    Set,
    Slot,
    Status,
    Stop,
    Tempo,
    Transport,
    Trigger,
)
from musicldm_core.errors import MusicLDMError, NotFound

__all__ = ["App", "Handlers"]

log = logging.getLogger("daemon")

Address = tuple[str, int]


class App(JobSystem, Protocol):
    """What the handlers need from the daemon (implemented by :class:`daemon.app.daemon.Daemon`):
    the job system as live playback sees it (submit, cancel, build a spec), plus the rest."""

    defaults: Defaults
    replies: Replies
    max_seconds: float

    def new_id(self) -> int: ...

    def set_default(self, key: str, value: Any) -> None: ...

    def live_or_refuse(self, what: str) -> Any: ...

    def live_missing(self) -> str | None: ...

    def clip_path(self, target: JobId) -> tuple[Path, JobId]: ...

    def path_inside_output(self, path: str) -> Path: ...

    @property
    def tempo(self) -> float: ...

    def set_tempo(self, bpm: float) -> bool: ...

    def set_transport(self, running: bool) -> None: ...

    def transport_running(self) -> bool: ...

    def status(self) -> dict[str, Any]: ...

    def register(self, target: Address, on: bool) -> None: ...


class Handlers:
    """Answers every request address of the contract."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.table: dict[type, Callable[[Any, Address], None]] = {
            Generate: self.generate,
            Cancel: self.cancel,
            Slot: self.slot,
            Morph: self.morph,
            Trigger: self.trigger,
            Play: self.play,
            Stop: self.stop,
            Tempo: self.tempo,
            Transport: self.transport,
            Set: self.set,
            Get: self.get,
            Status: self.status,
            Ping: self.ping,
            Notify: self.notify,
        }

    def handle(self, address: str, args: list[Any], sender: Address) -> None:
        """Answer one OSC message. Never raises."""
        replies = self.app.replies
        try:
            request: Request = requests.parse(address, args, max_seconds=self.app.max_seconds)
            self.table[type(request)](request, sender)
        except MusicLDMError as exc:
            replies.request_failed(exc, address, sender)
        except Exception:
            log.exception("error handling %r", address)  # %r: client text never forges lines
            replies.internal_error(address, sender)

    def _reply(self, message: contract.Message, sender: Address) -> None:
        self.app.replies.send(message, (sender,))

    # -- jobs --------------------------------------------------------------------------------------

    def generate(self, request: Generate, sender: Address) -> None:
        options = request.options
        job_id = options.id if options.id is not None else self.app.new_id()
        defaults = self.app.defaults
        try:
            spec = defaults.build_spec(request.prompt, options)
            slot = defaults.option(options, "slot")
            play = bool(defaults.option(options, "play"))
            missing = self.app.live_missing()
            if missing is not None and (slot is not None or play):
                asked = f"slot {slot}" if slot is not None else "play 1"
                raise NotFound(
                    f"{asked} needs audio output, which is {missing}; leave it out to only "
                    "render the file"
                )
            self.app.submit(
                job_id,
                spec,
                priority=defaults.resolve(options, "priority"),
                origin=(sender,),
                slot=slot,
                play=play,
            )
        except MusicLDMError as exc:
            exc.job_id = job_id  # type: ignore[attr-defined]  # the fail reply names the job
            raise

    def cancel(self, request: Cancel, sender: Address) -> None:
        target = request.job_id

        def matches(job: Any) -> bool:
            return target is None or job.job_id == target

        if not self.app.cancel_jobs(matches) and target is not None:
            raise NotFound(f"no queued or running job has id {target!r}")

    # -- live --------------------------------------------------------------------------------------

    def play(self, request: Play, sender: Address) -> None:
        if request.is_path:
            path, job_id = self.app.path_inside_output(str(request.target)), None
        else:
            path, job_id = self.app.clip_path(request.target)
        live = self.app.live_or_refuse(contract.PREFIX + "play")
        live.play_file(path, job_id, self._playback(request.playback), origin=(sender,))

    def slot(self, request: Slot, sender: Address) -> None:
        try:
            self.app.live_or_refuse(contract.PREFIX + "slot").define_slot(
                request.index,
                request.prompt,
                request.options,
                request.ahead,
                (sender,),
                gate=request.gate,
                evolve=request.evolve,
            )
        except MusicLDMError as exc:
            if request.options.id is not None:  # a refusal (queue_full, …) names the request
                exc.job_id = request.options.id  # type: ignore[attr-defined]
            raise

    def trigger(self, request: Trigger, sender: Address) -> None:
        live = self.app.live_or_refuse(contract.PREFIX + "trigger")
        live.trigger(request.index, self._playback(request.playback), origin=(sender,))

    def morph(self, request: Morph, sender: Address) -> None:
        live = self.app.live_or_refuse(contract.PREFIX + "morph")
        live.morph(
            request.source,
            request.target,
            request.bars,
            quantize=request.quantize or self.app.defaults.resolve(None, "quantize"),
            origin=(sender,),
        )

    def _playback(self, given: PlaybackOptions) -> PlaybackOptions:
        """The request's playback options, with the ``/musicldm/set`` and config defaults of
        quantize and gain filled in; what is still None keeps the slot's own (or, for a play
        voice, the contract's default)."""
        defaults = self.app.defaults
        return replace(
            given,
            quantize=defaults.option(given, "quantize"),
            gain=defaults.option(given, "gain"),
        )

    def stop(self, request: Stop, sender: Address) -> None:
        self.app.live_or_refuse(contract.PREFIX + "stop").stop(
            request.index,
            quantize=request.quantize or self.app.defaults.resolve(None, "quantize"),
            origin=(sender,),
        )

    def tempo(self, request: Tempo, sender: Address) -> None:
        if not self.app.set_tempo(request.bpm):
            log.info("ignored /musicldm/tempo %s: following an external clock", request.bpm)
        self._reply(contract.value("bpm", self.app.tempo), sender)

    def transport(self, request: Transport, sender: Address) -> None:
        self.app.live_or_refuse(contract.PREFIX + "transport")
        self.app.set_transport(request.running)

    # -- defaults and questions --------------------------------------------------------------------

    def set(self, request: Set, sender: Address) -> None:
        key, value = request.key, request.value
        if (key == "slot" and value is not None) or (key == "play" and value):
            missing = self.app.live_missing()
            if missing is not None:
                raise NotFound(f"set {key} needs audio output, which is {missing}")
        self.app.set_default(key, value)
        self._reply(contract.value(key, self.value_of(key)), sender)

    def get(self, request: Get, sender: Address) -> None:
        self._reply(contract.value(request.key, self.value_of(request.key)), sender)

    def value_of(self, key: str) -> Any:
        """The value a later request would use for ``key``, or a daemon value."""
        if key == "bpm":
            return self.app.tempo
        if key == "version":
            return __version__
        if key == "transport":
            return "start" if self.app.transport_running() else "stop"
        return self.app.defaults.value_of(key)

    def status(self, request: Status, sender: Address) -> None:
        self._reply(contract.status_reply(self.app.status()), sender)

    def ping(self, request: Ping, sender: Address) -> None:
        self._reply(contract.pong(request.args), sender)

    def notify(self, request: Notify, sender: Address) -> None:
        target = (sender[0], request.port or sender[1])
        self.app.register(target, request.on)
        self._reply(contract.value("notify", int(request.on)), sender)
