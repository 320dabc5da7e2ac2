"""The Python client and ``musicldm-send`` against a fake daemon over real UDP on loopback.

The fake answers like the OSC contract (replies to the request's sender, to every address
registered with ``/musicldm/notify``, each once) from one socket served by one thread, so these
tests need neither torch nor a model. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket, ParseError

from clients import cli
from clients.client import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    FAIL_CODES,
    AsyncClient,
    AsyncJob,
    Client,
    ClientError,
    DaemonNotAnswering,
    Done,
    Event,
    Failed,
    Job,
    JobFailed,
    JobTimeout,
    Progress,
    Queued,
    RequestFailed,
    Started,
    decode_packet,
    encode_message,
    parse_reply,
)
from tests.support import receive

pytestmark = pytest.mark.timeout(60)

Address = tuple[str, int]

STATUS = {
    "queued": 0,
    "running": 0,
    "device": "cpu",
    "model": "fake",
    "bpm": 120.0,
    "voices": 0,
    "version": "0.0-fake",
}


def _message(address: str, args: list[Any]) -> OscMessageBuilder:
    builder = OscMessageBuilder(address=address)
    for arg in args:
        builder.add_arg(arg)  # python-osc infers i / f / s
    return builder


class FakeDaemon:
    """Answers OSC requests the way the contract says, from one UDP socket in one thread.

    Prompts steer it: ``"fail me"`` fails with ``model_error``; ``"no id please"`` is refused
    with the request's address in the id place; ``"slow"`` stays running until cancelled.
    Progress replies travel in one OSC bundle, to exercise bundle parsing.
    """

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port: int = self.sock.getsockname()[1]
        self.requests: list[tuple[str, list[Any], Address]] = []
        self.registered: list[Address] = []
        self.notified = threading.Event()
        self.settings: dict[str, Any] = {"bpm": 120.0, "bars": 1}
        self.running: dict[Any, Address] = {}
        self._next_id = 1
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="fake-daemon", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()

    # -- plumbing --

    def _serve(self) -> None:
        while not self._stop.is_set():
            received = receive(self.sock)
            if received is None:
                continue
            data, sender = received
            try:
                packet = OscPacket(data)
            except ParseError:
                continue
            for timed in packet.messages:
                message = timed.message
                self.requests.append((message.address, list(message.params), sender))
                self.handle(message.address, list(message.params), sender)

    def _recipients(self, sender: Address) -> list[Address]:
        return list(dict.fromkeys([sender, *self.registered]))

    def reply(self, address: str, args: list[Any], sender: Address) -> None:
        data = _message(address, args).build().dgram
        for recipient in self._recipients(sender):
            self.sock.sendto(data, recipient)

    def reply_bundle(self, messages: list[tuple[str, list[Any]]], sender: Address) -> None:
        bundle = OscBundleBuilder(IMMEDIATELY)
        for address, args in messages:
            bundle.add_content(_message(address, args).build())
        data = bundle.build().dgram
        for recipient in self._recipients(sender):
            self.sock.sendto(data, recipient)

    def fail(self, job_id: Any, code: str, message: str, sender: Address) -> None:
        self.reply("/musicldm/fail", [job_id, code, message], sender)

    # -- the requests --

    def handle(self, address: str, args: list[Any], sender: Address) -> None:
        name = address.removeprefix("/musicldm/")
        handler = getattr(self, "on_" + name, None)
        if handler is None:
            self.fail(address, "unknown_address", f"unknown address {address!r}", sender)
        else:
            handler(args, sender)

    def on_generate(self, args: list[Any], sender: Address) -> None:
        prompt = args[0]
        options = dict(zip(args[1::2], args[2::2], strict=False))
        if prompt == "no id please":
            self.fail("/musicldm/generate", "bad_request", "bars must be 1 to 64", sender)
            return
        job_id = options.get("id")
        if job_id is None:
            job_id, self._next_id = self._next_id, self._next_id + 1
        self.reply("/musicldm/queued", [job_id, 0], sender)
        self.reply("/musicldm/started", [job_id], sender)
        if prompt == "fail me":
            self.fail(job_id, "model_error", "the model fell over", sender)
            return
        if prompt == "slow":
            self.running[job_id] = sender
            return
        steps = int(options.get("steps", 3))
        self.reply_bundle(
            [("/musicldm/progress", [job_id, step, steps]) for step in range(1, steps + 1)], sender
        )
        bars = int(options.get("bars", self.settings["bars"]))
        bpm = float(options.get("bpm", self.settings["bpm"]))
        beats = int(options.get("beats", 4))
        stem = options.get("name", prompt.replace(" ", "-"))
        for take in range(int(options.get("takes", 1))):
            path = f"/music/MusicLDM/{stem}-{job_id}-{take}.wav"
            seed = int(options.get("seed", 1000)) + take
            seconds = bars * beats * 60 / bpm
            self.reply("/musicldm/done", [job_id, path, seconds, bpm, bars, seed], sender)

    def on_cancel(self, args: list[Any], sender: Address) -> None:
        targets = list(self.running) if not args else [args[0]]
        if args and args[0] not in self.running:
            self.fail("/musicldm/cancel", "not_found", f"no job has id {args[0]!r}", sender)
            return
        for job_id in targets:
            origin = self.running.pop(job_id)
            self.fail(job_id, "cancelled", "cancelled while running", origin)

    def on_ping(self, args: list[Any], sender: Address) -> None:
        self.reply("/musicldm/pong", args, sender)

    def on_status(self, args: list[Any], sender: Address) -> None:
        pairs: list[Any] = []
        for key, value in {**STATUS, "bpm": self.settings["bpm"]}.items():
            pairs += [key, value]
        self.reply("/musicldm/status.reply", pairs, sender)

    def on_get(self, args: list[Any], sender: Address) -> None:
        self.reply("/musicldm/value", [args[0], self.settings.get(args[0], "")], sender)

    def on_set(self, args: list[Any], sender: Address) -> None:
        key, value = args
        if key == "bpm" and not 20 <= value <= 400:
            self.fail("/musicldm/set", "bad_request", "bpm must be from 20 to 400", sender)
            return
        self.settings[key] = value
        self.reply("/musicldm/value", [key, value], sender)

    def on_tempo(self, args: list[Any], sender: Address) -> None:
        if not 20 <= args[0] <= 400:
            self.fail(
                "/musicldm/tempo", "bad_request", f"bpm must be 20-400, got {args[0]}", sender
            )
            return
        self.settings["bpm"] = float(args[0])

    def on_notify(self, args: list[Any], sender: Address) -> None:
        if args[0]:
            if sender not in self.registered:
                self.registered.append(sender)
        elif sender in self.registered:
            self.registered.remove(sender)
        self.reply("/musicldm/value", ["notify", int(args[0])], sender)
        if args[0]:
            self.notified.set()

    def on_play(self, args: list[Any], sender: Address) -> None:
        self.fail("/musicldm/play", "not_found", f"no clip has id {args[0]!r}", sender)

    def _accept(self, args: list[Any], sender: Address) -> None:
        pass

    on_trigger = on_stop = on_slot = on_transport = _accept


@pytest.fixture
def daemon() -> Iterator[FakeDaemon]:
    fake = FakeDaemon()
    try:
        yield fake
    finally:
        fake.close()


@pytest.fixture
def client(daemon: FakeDaemon) -> Iterator[Client]:
    with Client("127.0.0.1", daemon.port, timeout=5) as c:
        yield c


@pytest.fixture
def silent_port() -> int:
    """A UDP port on loopback where nothing listens."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _requests(daemon: FakeDaemon, address: str) -> list[list[Any]]:
    return [args for addr, args, _ in daemon.requests if addr == address]


# -- the wire --------------------------------------------------------------------------------------


def test_messages_encode_python_types_as_osc_types():
    data = encode_message("/x", [1, 2.5, "a", True, 2**40])
    [reply] = decode_packet(data)
    assert reply == Event("/x", (1, 2.5, "a", 1, 2**40))
    with pytest.raises(TypeError):
        encode_message("/x", [None])


def test_replies_are_typed_and_misfits_stay_generic():
    assert parse_reply("/musicldm/queued", ["a-1", 0]) == Queued("a-1", 0)
    assert parse_reply("/musicldm/progress", [3, 1, 4]) == Progress(3, 1, 4)
    # a daemon from before the grid fit sends six arguments: the rest keep their defaults
    done = parse_reply("/musicldm/done", ["a", "/x.wav", 2.0, 120.0, 1, 7])
    assert done == Done("a", "/x.wav", 2.0, 120.0, 1, 7)
    assert done.args == ("a", "/x.wav", 2.0, 120.0, 1, 7, 0.0, 0.0, 1.0, -1.0, "")
    fit = ["a", "/x.wav", 2.0, 120.0, 1, 7, 103.7, 0.91, 1.157, 1.5, "Am"]
    done = parse_reply("/musicldm/done", fit)
    assert done == Done("a", "/x.wav", 2.0, 120.0, 1, 7, 103.7, 0.91, 1.157, 1.5, "Am")
    assert (done.detected_bpm, done.ratio, done.key) == (103.7, 1.157, "Am")
    assert parse_reply("/musicldm/fail", ["/musicldm/set", "bad_request", "no"]).is_request_failure
    assert parse_reply("/musicldm/done", ["a", "/x.wav"]) == Event(
        "/musicldm/done", ("a", "/x.wav")
    )
    assert parse_reply("/musicldm/playing", [0, "/x.wav"]) == Event(
        "/musicldm/playing", (0, "/x.wav")
    )
    assert decode_packet(b"not osc at all") == []


# -- requests and replies --------------------------------------------------------------------------


def test_ping_round_trip_from_the_listening_socket(client, daemon):
    seconds = client.ping()
    assert 0 < seconds < 5
    [(args, sender)] = [(a, s) for addr, a, s in daemon.requests if addr == "/musicldm/ping"]
    assert sender == client.local_address  # the daemon answers the sender: same socket
    assert isinstance(args[0], str)


def test_status_is_a_dict(client):
    assert client.status() == STATUS


def test_get_set_and_a_refused_set(client, daemon):
    client.set("bars", 2)
    assert client.get("bars") == 2
    with pytest.raises(RequestFailed) as info:
        client.set("bpm", 999)
    assert info.value.code == "bad_request" and info.value.address == "/musicldm/set"
    assert client.get("bpm") == 120.0


def test_commands_are_confirmed_and_refusals_raise(client, daemon):
    client.tempo(128)
    assert _requests(daemon, "/musicldm/tempo") == [[128.0]]
    with pytest.raises(RequestFailed) as info:
        client.tempo(999)
    assert info.value.code == "bad_request" and "999" in info.value.message
    client.tempo(999, confirm=False)  # fire-and-forget: nothing waits, nothing raises
    client.trigger(3, quantize="beat", gain=0.5, loop=False)
    client.stop(3, "bar")
    client.stop()
    client.transport(True)
    client.slot(2, "dark techno", bars=4, ahead=2)
    client.ping()  # every request above has been handled once this returns
    assert _requests(daemon, "/musicldm/trigger") == [
        [3, "quantize", "beat", "gain", 0.5, "loop", 0]
    ]
    assert _requests(daemon, "/musicldm/stop") == [[3, "quantize", "bar"], []]
    assert _requests(daemon, "/musicldm/transport") == [["start"]]
    assert _requests(daemon, "/musicldm/slot") == [[2, "dark techno", "bars", 4, "ahead", 2]]
    with pytest.raises(RequestFailed) as info:
        client.play(42)
    assert info.value.code == "not_found"


# -- jobs ------------------------------------------------------------------------------------------


def test_generate_reports_progress_then_done(client, daemon):
    job = client.generate("warm lofi piano", bars=2, bpm=90.0, seed=7, steps=4)
    seen = list(job.progress(timeout=10))
    assert [type(r) for r in seen] == [Queued, Started, Progress, Progress, Progress, Progress]
    assert [r.step for r in seen if isinstance(r, Progress)] == [1, 2, 3, 4]
    done = job.wait(timeout=10)
    assert done.job_id == job.id and isinstance(job.id, str)
    assert done.path == f"/music/MusicLDM/warm-lofi-piano-{job.id}-0.wav"
    assert done.seconds == pytest.approx(2 * 4 * 60 / 90, rel=1e-6)
    assert (done.bpm, done.bars, done.seed) == (90.0, 2, 7)
    assert job.finished and job.position == 0
    [args] = _requests(daemon, "/musicldm/generate")
    assert args == ["warm lofi piano", "id", job.id, "bars", 2, "bpm", 90.0, "seed", 7, "steps", 4]


def test_ids_are_unique_and_a_given_id_is_used(client):
    first, second = client.generate("a"), client.generate("b")
    assert first.id != second.id
    numbered = client.generate("c", id=7)
    assert numbered.wait(timeout=10).job_id == 7
    assert first.wait(timeout=10).path != second.wait(timeout=10).path


def test_takes_end_in_one_done_each(client):
    dones = client.generate("three of them", takes=3).wait_all(timeout=10)
    assert [d.seed for d in dones] == [1000, 1001, 1002]


def test_a_failed_job_raises_with_its_code(client):
    job = client.generate("fail me")
    with pytest.raises(JobFailed) as info:
        job.wait(timeout=10)
    assert info.value.code == "model_error"
    assert info.value.job_id == job.id
    assert info.value.message == "the model fell over"
    with pytest.raises(JobFailed):
        list(job.progress(timeout=10))


def test_a_refusal_before_any_job_reaches_the_job_that_sent_it(client):
    with pytest.raises(JobFailed) as info:
        client.generate("no id please").wait(timeout=10)
    assert info.value.code == "bad_request"


def test_cancel_ends_the_job_with_cancelled(client):
    job = client.generate("slow")
    assert isinstance(next(iter(job.progress(timeout=10))), Queued)
    job.cancel()
    with pytest.raises(JobFailed) as info:
        job.wait(timeout=10)
    assert info.value.code == "cancelled"
    job.cancel()  # already over: not an error
    with pytest.raises(RequestFailed) as not_found:
        client.cancel("nobody")
    assert not_found.value.code == "not_found"


def test_a_job_that_does_not_finish_in_time_times_out(client):
    job = client.generate("slow")
    started = time.monotonic()
    with pytest.raises(JobTimeout):
        job.wait(timeout=0.3)
    assert time.monotonic() - started < 3
    job.cancel()


def test_closing_the_client_wakes_a_waiting_job(daemon):
    c = Client("127.0.0.1", daemon.port, timeout=5)
    job = c.generate("slow")
    job.progress(timeout=10).__next__()
    errors: list[BaseException] = []

    def wait() -> None:
        try:
            job.wait(timeout=30)
        except BaseException as exc:
            errors.append(exc)

    waiter = threading.Thread(target=wait)
    waiter.start()
    c.close()
    waiter.join(timeout=5)
    assert not waiter.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], ClientError)
    c.close()  # twice is fine


# -- no daemon -------------------------------------------------------------------------------------


def test_no_daemon_raises_within_the_timeout(silent_port):
    with Client("127.0.0.1", silent_port, timeout=0.5) as c:
        started = time.monotonic()
        with pytest.raises(DaemonNotAnswering) as info:
            c.ping()
        assert 0.4 < time.monotonic() - started < 2.5
        assert f"127.0.0.1:{silent_port}" in str(info.value)
        assert "musicldm-daemon" in str(info.value)
        job = c.generate("anyone?")
        started = time.monotonic()
        with pytest.raises(DaemonNotAnswering):
            job.wait()
        assert time.monotonic() - started < 2.5
        with pytest.raises(DaemonNotAnswering):
            c.tempo(120)


# -- events ----------------------------------------------------------------------------------------


def test_events_see_other_clients_jobs_after_notify(client, daemon):
    with client.events(duration=10) as stream:
        client.notify(True)
        with Client("127.0.0.1", daemon.port, timeout=5) as other:
            done = other.generate("someone else's", steps=1).wait(timeout=10)
        seen: list[Any] = []
        for reply in stream:
            seen.append(reply)
            if isinstance(reply, Done):
                break
    assert Event("/musicldm/value", ("notify", 1)) in seen
    assert seen[-1] == done
    assert not any(r.address == "/musicldm/pong" for r in seen)  # our own pings stay out


def test_an_event_stream_ends_after_its_duration(client):
    started = time.monotonic()
    assert list(client.events(duration=0.2)) == []
    assert time.monotonic() - started < 2


# -- asyncio ---------------------------------------------------------------------------------------


def test_async_client_generate_progress_and_status(daemon):
    async def scenario() -> tuple[list[Any], Done, dict[str, Any], float]:
        async with AsyncClient("127.0.0.1", daemon.port, timeout=5) as c:
            seconds = await c.ping()
            status = await c.status()
            job = await c.generate("dark techno", bars=4, bpm=128.0, seed=3)
            seen = [reply async for reply in job.progress(timeout=10)]
            done = await job.wait(timeout=10)
            with pytest.raises(JobFailed) as info:
                await (await c.generate("fail me")).wait(timeout=10)
            assert info.value.code == "model_error"
            assert await c.get("bars") == 1
            return seen, done, status, seconds

    seen, done, status, seconds = asyncio.run(asyncio.wait_for(scenario(), 20))
    assert [type(r) for r in seen][:2] == [Queued, Started]
    assert sum(isinstance(r, Progress) for r in seen) == 3
    assert (done.bars, done.bpm, done.seed) == (4, 128.0, 3)
    assert status == STATUS
    assert 0 < seconds < 5


def test_async_client_playback_commands(daemon):
    async def scenario() -> str:
        async with AsyncClient("127.0.0.1", daemon.port, timeout=5) as c:
            await c.slot(2, "dark techno", bars=4, ahead=2)
            await c.trigger(2, quantize="beat")
            await c.tempo(128)
            await c.transport(False)
            await c.stop(2, "bar")
            with pytest.raises(RequestFailed) as info:
                await c.tempo(999)
            with pytest.raises(RequestFailed):
                await c.play(42)
            return info.value.code

    assert asyncio.run(asyncio.wait_for(scenario(), 20)) == "bad_request"
    assert _requests(daemon, "/musicldm/slot") == [[2, "dark techno", "bars", 4, "ahead", 2]]
    assert _requests(daemon, "/musicldm/trigger") == [[2, "quantize", "beat"]]
    assert _requests(daemon, "/musicldm/transport") == [["stop"]]
    assert _requests(daemon, "/musicldm/stop") == [[2, "quantize", "bar"]]


def test_async_client_without_daemon_raises(silent_port):
    async def scenario() -> None:
        async with AsyncClient("127.0.0.1", silent_port, timeout=0.5) as c:
            with pytest.raises(DaemonNotAnswering):
                await c.ping()
            job = await c.generate("anyone?")
            with pytest.raises(DaemonNotAnswering):
                await job.wait()

    started = time.monotonic()
    asyncio.run(asyncio.wait_for(scenario(), 10))
    assert time.monotonic() - started < 4


# -- the command line ------------------------------------------------------------------------------


def _cli(daemon: FakeDaemon, *args: str) -> int:
    return cli.main(["--port", str(daemon.port), "--timeout", "5", *args])


def test_cli_generate_prints_the_path(daemon, capsys):
    assert _cli(daemon, "generate", "warm lofi piano", "--bars", "2", "--seed", "3") == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].startswith("/music/MusicLDM/warm-lofi-piano-")
    [args] = _requests(daemon, "/musicldm/generate")
    assert args[args.index("bars") + 1] == 2 and args[args.index("seed") + 1] == 3


def test_cli_generate_with_takes_and_switches(daemon, capsys):
    code = _cli(
        daemon, "generate", "x", "--takes", "2", "--no-loop", "--play", "--id", "9", "--quiet"
    )
    assert code == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    [args] = _requests(daemon, "/musicldm/generate")
    assert args[:3] == ["x", "id", 9]
    assert args[args.index("loop") : args.index("loop") + 2] == ["loop", 0]
    assert args[args.index("play") : args.index("play") + 2] == ["play", 1]


def test_cli_generate_shows_a_bar_on_a_terminal(daemon, capsys, monkeypatch):
    monkeypatch.setattr(cli, "_stderr_is_tty", lambda: True)
    assert _cli(daemon, "generate", "x", "--steps", "5") == 0
    assert "step" in capsys.readouterr().err


def test_cli_failed_job_exits_1_with_the_code(daemon, capsys):
    assert _cli(daemon, "generate", "fail me") == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip() == "error: model_error: the model fell over"


def test_cli_without_daemon_exits_2(silent_port, capsys):
    code = cli.main(["--port", str(silent_port), "--timeout", "0.5", "generate", "x"])
    assert code == 2
    err = capsys.readouterr().err
    assert f"127.0.0.1:{silent_port}" in err and "musicldm-daemon" in err


def test_cli_small_commands(daemon, capsys):
    assert _cli(daemon, "status") == 0
    assert "device cpu" in capsys.readouterr().out.splitlines()
    assert _cli(daemon, "set", "bars", "4") == 0
    assert _cli(daemon, "set", "preset", "studio") == 0
    assert _cli(daemon, "get", "bars") == 0
    assert capsys.readouterr().out.strip() == "4"
    assert daemon.settings["preset"] == "studio"
    assert _cli(daemon, "tempo", "128") == 0
    assert _cli(daemon, "tempo", "999") == 1
    assert capsys.readouterr().err.startswith("error: bad_request: ")
    assert _cli(daemon, "ping") == 0
    assert "pong from 127.0.0.1" in capsys.readouterr().out
    assert _cli(daemon, "trigger", "1", "--quantize", "beat") == 0
    assert _cli(daemon, "transport", "start") == 0
    assert _cli(daemon, "stop") == 0
    assert _cli(daemon, "cancel", "12") == 1  # no such job: not_found
    assert _requests(daemon, "/musicldm/cancel") == [[12]]
    assert cli.parse_value("3") == 3 and cli.parse_value("0.5") == 0.5
    assert cli.parse_value("bar") == "bar"


def test_cli_watch_prints_events_until_count(daemon, capsys):
    codes: list[int] = []
    watcher = threading.Thread(
        target=lambda: codes.append(_cli(daemon, "watch", "--count", "4", "--for", "20"))
    )
    watcher.start()
    try:
        assert daemon.notified.wait(10)
        with Client("127.0.0.1", daemon.port, timeout=5) as other:
            job = other.generate("techno", id="w1", steps=2)
            job.wait(timeout=10)
    finally:
        watcher.join(timeout=20)
    assert not watcher.is_alive() and codes == [0]
    assert capsys.readouterr().out.splitlines() == [
        "/musicldm/value notify 1",
        "/musicldm/queued w1 0",
        "/musicldm/started w1",
        "/musicldm/progress w1 1 2",
    ]


# -- staying light ---------------------------------------------------------------------------------


def test_importing_the_client_loads_no_heavy_modules():
    code = (
        "import sys, threading, clients.client, clients.cli; "
        "print(sorted(m for m in ('torch', 'numpy', 'tqdm', 'asyncio') if m in sys.modules)); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('daemon', 'musicldm_core'))); "
        "print(threading.active_count())"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    heavy, project, threads = result.stdout.splitlines()
    assert heavy == "[]"
    # of the daemon's side only the wire contract (pure data) and what it stands on
    assert project == str(
        sorted(
            [
                "daemon",
                "daemon.wire",
                "daemon.wire.addresses",
                "daemon.wire.contract",
                "musicldm_core",
                "musicldm_core.errors",
                "musicldm_core.spec",
            ]
        )
    )
    assert threads == "1"  # no thread until a Client is made


def test_importing_the_client_does_not_import_torch():
    code = "import clients.client, sys; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], timeout=30, check=True)


# -- one core, two faces ---------------------------------------------------------------------------


COMMANDS = (
    "ping",
    "status",
    "get",
    "set",
    "cancel",
    "notify",
    "slot",
    "trigger",
    "play",
    "stop",
    "morph",
    "tempo",
    "transport",
)


def test_each_command_is_defined_once_for_both_faces(client):
    from clients.aio import AsyncClient as AioClient
    from clients.commands import Commands, flow_method

    assert AioClient is AsyncClient  # the re-export is the class itself
    for name in COMMANDS:
        command = Commands.__dict__[name]
        assert isinstance(command, flow_method), name
        assert getattr(Client, name) is command and getattr(AsyncClient, name) is command
        assert name not in Client.__dict__ and name not in AsyncClient.__dict__
    for name in ("wait", "wait_all", "cancel"):
        assert getattr(Job, name) is getattr(AsyncJob, name)
    # bound to a face, a command keeps its own arguments and docs
    assert list(inspect.signature(client.tempo).parameters) == ["bpm", "confirm"]
    # the bound methods keep the command's own signature and docs
    assert list(inspect.signature(Client.tempo).parameters) == ["self", "bpm", "confirm"]
    assert "tempo" in (Client.tempo.__doc__ or "")


def test_the_client_reads_the_wire_contract():
    from daemon.wire import contract

    assert FAIL_CODES is contract.FAIL_CODES
    assert (DEFAULT_HOST, DEFAULT_PORT) == (contract.DEFAULT_HOST, contract.DEFAULT_PORT)
    for kind in (Queued, Started, Progress, Done, Failed):
        names = tuple("id" if f.name == "job_id" else f.name for f in dataclasses.fields(kind))
        assert names == contract.REPLIES[kind.address].arguments, kind.__name__
    # ids are expected back as the contract normalises them (Pd sends 7.0, the daemon echoes 7)
    assert parse_reply("/musicldm/done", [7.0, "/x.wav", 1.0, 120.0, 1, 3]).job_id == 7


def test_an_id_the_contract_refuses_is_refused_before_sending(client, daemon):
    with pytest.raises(RequestFailed) as info:
        client.generate("x", id=2.5)
    assert info.value.code == "bad_request" and "id" in info.value.message
    client.ping()
    assert _requests(daemon, "/musicldm/generate") == []


def test_a_float_id_is_matched_as_the_daemon_echoes_it(client):
    assert client.generate("seven", id=7.0).wait(timeout=10).job_id == 7


def test_an_async_wait_that_is_cancelled_leaves_no_route_behind(silent_port):
    async def scenario() -> int:
        async with AsyncClient("127.0.0.1", silent_port, timeout=30) as c:
            task = asyncio.ensure_future(c.tempo(120))
            await asyncio.sleep(0)  # let it send and start waiting
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return len(c._session.router._routes)

    assert asyncio.run(asyncio.wait_for(scenario(), 10)) == 0


# -- the command line in a pipeline ----------------------------------------------------------------


def _send(daemon: FakeDaemon, *args: str, timeout: float = 5) -> list[str]:
    port, seconds = str(daemon.port), str(timeout)
    return [sys.executable, "-m", "clients", "--port", port, "--timeout", seconds, *args]


@pytest.mark.parametrize(
    "args", [("status",), ("watch", "--count", "3", "--for", "10")], ids=lambda a: a[0]
)
def test_cli_exits_quietly_when_stdout_is_a_closed_pipe(daemon, args):
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before anything is written, as after `| head`
    try:
        cli_run = subprocess.Popen(_send(daemon, *args), stdout=write_end, stderr=subprocess.PIPE)
    finally:
        os.close(write_end)
    if args[0] == "watch":
        assert daemon.notified.wait(10)
        with Client("127.0.0.1", daemon.port, timeout=5) as other:
            other.generate("techno", steps=1).wait(timeout=10)
    _, err = cli_run.communicate(timeout=30)
    assert cli_run.returncode == cli.EXIT_BROKEN_PIPE
    assert err.decode() == ""  # no traceback, no "Exception ignored"


def test_cli_status_piped_into_head(daemon):
    command = " ".join(shlex.quote(word) for word in _send(daemon, "status"))
    result = subprocess.run(
        f"{command} | head -1; echo rc=${{PIPESTATUS[0]}}",
        shell=True,
        executable="/bin/bash",
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    )
    lines = result.stdout.splitlines()
    assert lines[0] == "queued 0" and len(lines) == 2
    assert lines[1] in ("rc=0", f"rc={cli.EXIT_BROKEN_PIPE}")  # 0 when head read it all in time
    assert result.stderr == ""


def test_cli_help_texts_show_their_defaults(capsys):
    for command in ("generate", "slot", "trigger", "stop", "morph", "watch", "cancel"):
        with pytest.raises(SystemExit):
            cli.main([command, "--help"])
        text = capsys.readouterr().out
        options = text.split("options:", 1)[1]
        # every option of the command says what it does and what happens without it
        entries = re.split(r"\n  (?=-)", options)[2:]  # after "-h, --help"
        for entry in entries:
            assert "default" in entry, (command, entry)
    with pytest.raises(SystemExit):
        cli.main(["watch", "--help"])
    assert "stop after watching this many seconds (default: no limit)" in " ".join(
        capsys.readouterr().out.split()
    )


# -- a daemon that dies, copies its replies, or refuses one of two requests ----------------------


class WatchedFake(FakeDaemon):
    """A fake that says when a generate request reached it."""

    def __init__(self) -> None:
        self.generated = threading.Event()
        super().__init__()

    def on_generate(self, args: list[Any], sender: Address) -> None:
        super().on_generate(args, sender)
        self.generated.set()


class CopyingFake(FakeDaemon):
    """A fake whose every datagram arrives twice, as UDP may deliver it."""

    def reply(self, address: str, args: list[Any], sender: Address) -> None:
        super().reply(address, args, sender)
        super().reply(address, args, sender)

    def reply_bundle(self, messages: list[tuple[str, list[Any]]], sender: Address) -> None:
        super().reply_bundle(messages, sender)
        super().reply_bundle(messages, sender)


def test_a_job_wait_ends_when_the_daemon_dies_mid_job():
    fake = FakeDaemon()
    try:
        with Client("127.0.0.1", fake.port, timeout=0.5) as c:
            job = c.generate("slow")
            assert isinstance(next(iter(job.progress())), Queued)
            fake.close()  # the daemon is gone: nothing about the job will ever come
            with pytest.raises(DaemonNotAnswering) as info:
                job.wait()  # no limit of its own: it must not wait forever
            assert info.value.job_id == job.id
            assert f"stopped answering while job {job.id!r}" in str(info.value)
            with pytest.raises(DaemonNotAnswering):
                list(job.progress())
    finally:
        fake.close()


def test_a_silent_job_of_a_live_daemon_is_waited_for(daemon):
    with Client("127.0.0.1", daemon.port, timeout=0.2) as c:
        job = c.generate("slow")  # queued and started, then silent until cancelled
        with pytest.raises(JobTimeout):
            job.wait(timeout=1.0)  # pings find the daemon there: the wait goes on
        assert _requests(daemon, "/musicldm/ping")
        job.cancel()
        with pytest.raises(JobFailed):
            job.wait(timeout=5)


def test_copied_replies_count_once():
    fake = CopyingFake()
    try:
        with Client("127.0.0.1", fake.port, timeout=5) as c, c.events(duration=10) as stream:
            job = c.generate("techno", takes=2, steps=3)
            steps = [p.step for p in job.progress(timeout=10) if isinstance(p, Progress)]
            dones = job.wait_all(timeout=10)
            assert steps == [1, 2, 3]
            assert [d.path for d in dones] == [
                f"/music/MusicLDM/techno-{job.id}-0.wav",
                f"/music/MusicLDM/techno-{job.id}-1.wav",
            ]
            c.ping()  # both copies of its pong stay out of the stream
            c.generate("marker", id="end").wait(timeout=10)
            seen = []
            for reply in stream:
                seen.append(reply.address)
                if isinstance(reply, Done) and reply.job_id == "end":
                    break
            assert "/musicldm/pong" not in seen
    finally:
        fake.close()


@pytest.mark.parametrize("refused_first", [True, False], ids=["refused-first", "refused-second"])
def test_a_refusal_reaches_the_request_it_is_about(daemon, refused_first):
    async def scenario() -> list[Any]:
        async with AsyncClient("127.0.0.1", daemon.port, timeout=5) as c:
            bpms = [1000, 120] if refused_first else [120, 1000]
            return await asyncio.gather(*(c.tempo(bpm) for bpm in bpms), return_exceptions=True)

    results = asyncio.run(asyncio.wait_for(scenario(), 20))
    refused, accepted = results if refused_first else results[::-1]
    assert isinstance(refused, RequestFailed) and "got 1000" in refused.message
    assert accepted is None


def test_a_refusal_reaches_its_thread(daemon):
    # Several threads of one client: each refusal goes to the request it is about.
    with Client("127.0.0.1", daemon.port, timeout=5) as c:
        outcomes: dict[int, str] = {}

        def send(bpm: int) -> None:
            try:
                c.tempo(bpm)
                outcomes[bpm] = "ok"
            except RequestFailed as exc:
                outcomes[bpm] = exc.message

        threads = [threading.Thread(target=send, args=(bpm,)) for bpm in (100, 999, 110, 998)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=20)
    assert outcomes == {
        100: "ok",
        110: "ok",
        999: "bpm must be 20-400, got 999.0",
        998: "bpm must be 20-400, got 998.0",
    }


def test_cli_generate_fails_clearly_when_the_daemon_dies_mid_job():
    fake = WatchedFake()
    try:
        cli_run = subprocess.Popen(
            _send(fake, "generate", "slow", "-q", timeout=0.5),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert fake.generated.wait(20)
        fake.close()
        _, err = cli_run.communicate(timeout=30)
    finally:
        fake.close()
    assert cli_run.returncode == cli.EXIT_NO_DAEMON
    assert "stopped answering while job" in err and "Traceback" not in err


def test_cli_ctrl_c_ends_generate_at_once_when_the_daemon_is_gone():
    fake = WatchedFake()
    try:
        cli_run = subprocess.Popen(
            _send(fake, "generate", "slow", "-q", timeout=60),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert fake.generated.wait(20)
        fake.close()  # a cancel confirmed by a ping would now wait the whole --timeout
        cli_run.send_signal(signal.SIGINT)
        _, err = cli_run.communicate(timeout=30)
    finally:
        fake.close()
    assert cli_run.returncode == cli.EXIT_INTERRUPTED
    assert err.startswith("interrupted: ") and "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--port", "70000", "ping"], "--port: must be a UDP port from 1 to 65535, got '70000'"),
        (["--port", "-1", "ping"], "--port: must be a UDP port"),
        (["--timeout", "nan", "ping"], "--timeout: must be a number of seconds above 0, got 'nan'"),
        (["--timeout", "0", "ping"], "--timeout: must be a number of seconds above 0"),
        (["watch", "--count", "0"], "--count: must be an integer from 1, got '0'"),
        (["watch", "--for", "-1"], "--for: must be a number of seconds above 0"),
    ],
)
def test_cli_refuses_a_bad_port_timeout_or_count_as_usage(args, says, capsys):
    # before: --timeout nan waited forever, a port out of range waited --timeout or blamed the
    # host, and watch --count 0 printed one event
    with pytest.raises(SystemExit) as info:
        cli.main(args)
    assert info.value.code == cli.EXIT_NO_DAEMON  # 2: bad usage
    assert says in capsys.readouterr().err


@pytest.mark.parametrize("timeout", [float("nan"), 0, -1.0, "5"])
def test_a_client_refuses_a_timeout_that_is_not_above_0(timeout):
    with pytest.raises(ClientError, match="timeout must be a number of seconds above 0"):
        Client(timeout=timeout)
