"""Helpers shared by the tests that run a real daemon or talk OSC over real UDP."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket

if TYPE_CHECKING:
    from typing import Self

    from daemon.app.daemon import Daemon
    from daemon.config import DaemonConfig

Address = tuple[str, int]


LIVE_BPM = 240.0
"""The live tests' clock: one 4/4 bar = 1 s = 44100 samples at 44.1 kHz, so they are short."""


def daemon_config(tmp_path: Path, **overrides: Any) -> DaemonConfig:
    """A daemon config for tests: a free UDP port, replies only to senders, output and state
    in ``tmp_path``, no warm-up and no audio, unless ``overrides`` say otherwise."""
    from daemon.config import load_config  # here: the client's tests use this module too

    values: dict[str, Any] = {
        "port": 0,
        "reply_to": (),
        "out": tmp_path / "out",
        "state": tmp_path / "state",
        "warmup": False,
        "audio": False,
    }
    values.update(overrides)
    return load_config(None, values)


@contextlib.contextmanager
def running_daemon(engine: Any, tmp_path: Path, **overrides: Any) -> Iterator[Daemon]:
    """A started daemon on ``daemon_config(tmp_path, **overrides)``; stopped again afterwards,
    even when the test fails (stopping twice is fine, so a test may stop it itself)."""
    from daemon.app.daemon import Daemon  # here: tests that start no daemon don't load it

    daemon = Daemon(daemon_config(tmp_path, **overrides), engine=engine)
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()


def receive(sock: socket.socket) -> tuple[bytes, Address] | None:
    """One datagram and its sender from ``sock`` (which has a timeout), or None when none came
    in time."""
    try:
        return sock.recvfrom(65536)
    except TimeoutError:
        return None


class OscSocket:
    """A bare UDP socket on loopback that talks to ``address``, waiting 0.2 s at most for each
    datagram; a context manager that closes it."""

    def __init__(self, address: Address) -> None:
        self.address = address
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class RawOsc(OscSocket):
    """A bare UDP socket speaking OSC, to send what no client library would."""

    def __init__(self, address: Address) -> None:
        super().__init__(address)
        self.backlog: list[tuple[str, list]] = []

    def send_raw(self, data: bytes) -> None:
        self.sock.sendto(data, self.address)

    def send(self, address: str, *args) -> None:
        builder = OscMessageBuilder(address=address)
        for arg in args:
            builder.add_arg(arg)
        self.send_raw(builder.build().dgram)

    def replies(self, seconds: float) -> list[tuple[str, list]]:
        """Everything received so far and within ``seconds`` more (the backlog first)."""
        out, self.backlog = self.backlog, []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            received = receive(self.sock)
            if received is None:
                continue
            for timed in OscPacket(received[0]).messages:
                out.append((timed.message.address, list(timed.message.params)))
        return out

    def wait_for(self, address: str, seconds: float = 30.0) -> list:
        """The first reply at ``address``; replies after it stay in the backlog."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            got = self.replies(0.2)
            for i, (addr, args) in enumerate(got):
                if addr == address:
                    self.backlog = got[i + 1 :] + self.backlog
                    return args
        raise AssertionError(f"no {address} within {seconds} s")
