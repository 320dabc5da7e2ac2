"""The UDP transport (daemon.wire.osc, daemon.wire.addresses, daemon.logtext) on its own.

Real UDP on loopback with stub handlers, no model, except one test that drives the daemon's
``/musicldm/notify`` with the tiny model. A handler that waits on an event stands in for a
packet that is slow to handle (a CPU under load); a socket whose ``sendto`` waits on an event
stands in for a thread that is preempted in the middle of sending.
"""

from __future__ import annotations

import logging
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pythonosc.osc_message import OscMessage

from daemon.config import is_loopback as config_is_loopback
from daemon.config import load_config
from daemon.logtext import printable
from daemon.wire.addresses import AllowList, endpoint_key, is_loopback, parse_ip, parse_network
from daemon.wire.osc import (
    MAX_BUNDLE_DEPTH,
    NOTIFY_PER_HOST,
    NOTIFY_TOTAL,
    RECEIVE_BUFFER_BYTES,
    NotifyLimit,
    OscServer,
    Replier,
    build_message,
)

Address = tuple[str, int]


def _has_ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::", 0))
    except OSError:
        return False
    return True


class Listener:
    """A UDP socket on loopback that collects the OSC messages sent to it, in arrival order."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.address: Address = self.sock.getsockname()[:2]

    def send(self, to: Address, address: str, *args: Any) -> None:
        self.sock.sendto(build_message(address, args), to)

    def next(self, timeout: float = 5.0) -> tuple[str, list[Any]]:
        self.sock.settimeout(timeout)
        data, _ = self.sock.recvfrom(65536)
        message = OscMessage(data)
        return message.address, list(message.params)

    def collect(self, count: int, timeout: float = 5.0) -> list[tuple[str, list[Any]]]:
        """The next ``count`` messages, or fewer if ``timeout`` passes between two."""
        got: list[tuple[str, list[Any]]] = []
        while len(got) < count:
            try:
                got.append(self.next(timeout))
            except TimeoutError:
                break
        return got

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def listeners() -> Iterator[Callable[[], Listener]]:
    made: list[Listener] = []

    def make() -> Listener:
        made.append(Listener())
        return made[-1]

    yield make
    for listener in made:
        listener.close()


def serve(handler: Callable[[OscServer, str, list[Any], Address], None], **kwargs: Any):
    """An OscServer on a free loopback port whose handler also gets the server."""
    box: list[OscServer] = []
    server = OscServer("127.0.0.1", 0, lambda a, args, s: handler(box[0], a, args, s), **kwargs)
    box.append(server)
    server.start()
    return server


def fail_everything(server: OscServer, address: str, args: list[Any], sender: Address) -> None:
    """A stub for the daemon: every request fails, as an unknown address would."""
    server.replier.send(
        "/musicldm/fail", [address, "unknown_address", "no such address"], to=[sender]
    )


def pong_everything(server: OscServer, address: str, args: list[Any], sender: Address) -> None:
    """A stub for the daemon: every request is answered with a pong of its arguments."""
    server.replier.send("/musicldm/pong", args, to=[sender])


class Busy:
    """A handler that is stuck on ``/busy`` until ``release`` is set (a packet that is slow to
    handle: a loaded CPU) and hands every other request to ``then``."""

    def __init__(self, then: Callable[[OscServer, str, list[Any], Address], None]) -> None:
        self.then = then
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, server: OscServer, address: str, args: list[Any], sender: Address) -> None:
        if address == "/busy":
            self.entered.set()
            self.release.wait(10)
            return
        self.then(server, address, args, sender)


class GatedSocket(socket.socket):
    """A UDP socket whose first ``sendto`` waits for ``gate``: a sender preempted mid-way."""

    def __init__(self) -> None:
        super().__init__(socket.AF_INET, socket.SOCK_DGRAM)
        self.gate = threading.Event()
        self.entered = threading.Event()
        self._first = True

    def sendto(self, data: bytes, address: Any) -> int:  # type: ignore[override]
        if self._first:
            self._first = False
            self.entered.set()
            self.gate.wait(10)
        return super().sendto(data, address)


# -- 10.6: replies keep their order at every recipient ------------------------------------------


def test_replies_from_two_threads_arrive_in_one_order_at_every_recipient(listeners):
    """The OSC thread sends /queued to [sender, target] and is preempted after the first
    datagram; the worker sends /started meanwhile. Both recipients must see queued first."""
    sender, target = listeners(), listeners()
    sock = GatedSocket()
    replier = Replier(sock, [target.address])
    try:
        osc_thread = threading.Thread(
            target=replier.send, args=("/musicldm/queued", [1, 0]), kwargs={"to": [sender.address]}
        )
        osc_thread.start()
        assert sock.entered.wait(5)  # the first datagram of /queued is on its way
        replier.send("/musicldm/started", [1], to=[sender.address])  # the worker, meanwhile
        sock.gate.set()
        osc_thread.join(5)
        for listener in (sender, target):
            got = [address for address, _ in listener.collect(2)]
            assert got == ["/musicldm/queued", "/musicldm/started"], listener.address
    finally:
        replier.close()
        sock.close()


def test_ordered_block_announces_before_another_thread_can_reply(listeners):
    """The app makes a job visible to the worker, then says /queued: inside ``ordered()`` the
    worker's /started (sent as soon as it sees the job) waits for the /queued."""
    client = listeners()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    replier = Replier(sock)
    visible, worker_sent = threading.Event(), threading.Event()

    def worker() -> None:
        visible.wait(5)
        replier.send("/musicldm/started", [7], to=[client.address])
        worker_sent.set()

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        with replier.ordered():
            visible.set()  # queue.put(job): the worker may take it from here on
            worker_sent.wait(0.3)  # gives the worker its chance; it cannot send in here
            replier.send("/musicldm/queued", [7, 0], to=[client.address])
        thread.join(5)
        assert [a for a, _ in client.collect(2)] == ["/musicldm/queued", "/musicldm/started"]
    finally:
        replier.close()
        sock.close()


def test_many_replies_from_many_threads_keep_each_threads_order(listeners):
    client, target = listeners(), listeners()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    replier = Replier(sock, [target.address])
    threads = [
        threading.Thread(
            target=lambda n=n: [
                replier.send("/musicldm/progress", [n, step, 50], to=[client.address])
                for step in range(50)
            ]
        )
        for n in range(4)
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert replier.flush(5)
        for listener in (client, target):
            got = listener.collect(200)
            assert len(got) == 200
            for n in range(4):
                assert [args[1] for _, args in got if args[0] == n] == list(range(50))
        assert client.collect(1, 0.2) == []
    finally:
        replier.close()
        sock.close()


def test_close_sends_everything_queued_and_drops_later_sends(listeners):
    """A job's last /done queued just before the daemon stops still goes out."""
    client = listeners()
    server = serve(fail_everything)
    for n in range(200):
        server.replier.send(
            "/musicldm/done", [n, "/clip.wav", 1.0, 120.0, 1, n], to=[client.address]
        )
    server.close()
    got = client.collect(200)
    assert [args[0] for _, args in got] == list(range(200))
    server.replier.send("/musicldm/done", [200], to=[client.address])  # after close: dropped
    assert server.replier.overflowed == 1
    assert client.collect(1, 0.2) == []


def test_a_full_outbox_drops_and_counts_without_blocking_the_caller(listeners):
    client = listeners()
    sock = GatedSocket()
    replier = Replier(sock, capacity=10)
    try:
        replier.send("/musicldm/started", [0], to=[client.address])
        assert sock.entered.wait(5)  # the sender holds that one; the outbox is empty again
        for n in range(1, 8):
            replier.send("/musicldm/progress", [n, 1, 2], to=[client.address])
        assert replier.overflowed == 2  # progress may fill half the outbox only
        for n in range(8, 16):
            replier.send("/musicldm/done", [n], to=[client.address])
        assert replier.overflowed == 2 + 3  # 5 progress + 5 done fill it; 3 done are dropped
        sock.gate.set()
        got = client.collect(11)
        assert [args[0] for _, args in got] == [0, 1, 2, 3, 4, 5, 8, 9, 10, 11, 12]
    finally:
        replier.close()
        sock.close()


# -- 10.10: /musicldm/notify is bounded and lapses --------------------------------------------


def test_notify_registrations_are_bounded_per_host_and_in_all():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        replier = Replier(sock)
        for port in range(NOTIFY_PER_HOST):
            replier.register(("127.0.0.1", 20000 + port))
        replier.register(("127.0.0.1", 20000))  # a renewal is not a new registration
        with pytest.raises(NotifyLimit) as info:
            replier.register(("127.0.0.1", 30000))
        assert info.value.code == "bad_request"
        assert f"at most {NOTIFY_PER_HOST} per host" in info.value.message
        assert "127.0.0.1 has 8 ports registered already" in info.value.message
        # the same host through a dual-stack socket is the same host
        with pytest.raises(NotifyLimit):
            replier.register(("::ffff:127.0.0.1", 30001))
        hosts = NOTIFY_TOTAL // NOTIFY_PER_HOST
        for host in range(2, hosts + 1):
            for port in range(NOTIFY_PER_HOST):
                replier.register((f"127.0.0.{host}", 20000 + port))
        assert len(replier.registered) == NOTIFY_TOTAL
        with pytest.raises(NotifyLimit) as info:
            replier.register(("127.0.0.200", 20000))
        assert f"{NOTIFY_TOTAL} in all" in info.value.message
        replier.unregister(("127.0.0.200", 20000))  # not registered: nothing happens
        replier.unregister(("127.0.0.2", 20000))
        replier.register(("127.0.0.200", 20000))  # room again
        replier.close()


def test_notify_registrations_lapse_unless_renewed():
    now = [1000.0]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        replier = Replier(sock, notify_expiry_seconds=600, clock=lambda: now[0])
        replier.register(("127.0.0.1", 9100))
        replier.register(("127.0.0.1", 9200))
        now[0] += 400
        replier.register(("127.0.0.1", 9200))  # renewed: good for 600 s from here
        now[0] += 300
        assert replier.registered == (("127.0.0.1", 9200),)
        assert replier.recipients() == [("127.0.0.1", 9200)]
        now[0] += 300
        assert replier.registered == ()
        replier.close()


def test_any_datagram_from_the_host_keeps_its_registrations():
    """A patch that is in use (it sends triggers, pings) never goes deaf; one that went away
    frees its places after the expiry."""
    now = [1000.0]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        replier = Replier(sock, notify_expiry_seconds=600, clock=lambda: now[0])
        replier.register(("127.0.0.1", 9100))
        replier.register(("10.0.0.7", 9100))
        for _ in range(5):  # 50 minutes of a set, one message from the patch every 10 minutes
            now[0] += 590
            replier.heard_from("::ffff:127.0.0.1")  # a dual-stack socket's spelling
        assert replier.registered == (("127.0.0.1", 9100),)
        now[0] += 601
        assert replier.registered == ()
        replier.close()


def test_one_request_reaches_a_bounded_number_of_listeners(daemon):
    """The issue's attack: 300 ports registered from one host, then one ping."""
    attacker = Listener()
    try:
        for port in range(300):
            attacker.send(daemon.address, "/musicldm/notify", 1, 40000 + port)
        answers = attacker.collect(300, timeout=10)
        values = [args for address, args in answers if address == "/musicldm/value"]
        fails = [args for address, args in answers if address == "/musicldm/fail"]
        assert values == [["notify", 1]] * NOTIFY_PER_HOST
        assert len(fails) == 300 - NOTIFY_PER_HOST
        assert all(f[0] == "/musicldm/notify" and f[1] == "bad_request" for f in fails)
        assert f"at most {NOTIFY_PER_HOST} per host" in fails[0][2]
        replier = daemon.osc.replier
        assert replier.flush(5)
        before = replier.sent
        attacker.send(daemon.address, "/musicldm/ping", 1)
        assert attacker.next(10) == ("/musicldm/pong", [1])
        assert replier.flush(5)
        assert replier.sent - before == 1 + NOTIFY_PER_HOST  # the sender and its 8 ports
    finally:
        attacker.close()


# -- 10.11: a burst is read, queued and answered ------------------------------------------------


def _garbage(rng: random.Random, count: int) -> list[bytes]:
    """Datagrams that are not OSC: never starting with / or #, 1-200 bytes."""
    packets = []
    for _ in range(count):
        data = bytearray(rng.randbytes(rng.randrange(1, 201)))
        data[0] = rng.choice(b"abcxyz\x00\xff")
        packets.append(bytes(data))
    return packets


def test_a_burst_of_garbage_does_not_cost_the_requests_behind_it(listeners):
    """500 garbage datagrams then 10 bad requests, at once, while the handler is busy (a
    loaded CPU): every request is answered, and every garbage datagram is counted."""
    busy = Busy(fail_everything)
    server = serve(busy)
    client = listeners()
    try:
        client.send((server.host, server.port), "/busy")
        assert busy.entered.wait(5)
        for data in _garbage(random.Random(10), 500):
            client.sock.sendto(data, (server.host, server.port))
        for n in range(10):
            client.send((server.host, server.port), "/musicldm/generate", "id", n)
        busy.release.set()
        fails = client.collect(10, timeout=5)
        assert len(fails) == 10
        assert all(address == "/musicldm/fail" for address, _ in fails)
        assert server.malformed == 500  # handled in order: all garbage before the requests
        assert server.overflowed == 0
    finally:
        busy.release.set()
        server.close()


def test_the_daemon_answers_every_request_behind_a_burst_of_garbage(daemon):
    client = Listener()
    try:
        for data in _garbage(random.Random(11), 500):
            client.sock.sendto(data, daemon.address)
        for n in range(10):
            client.send(daemon.address, "/musicldm/generate", "x", "bars", 0, "id", n)
        fails = client.collect(10, timeout=10)
        assert sorted(args[0] for _, args in fails) == list(range(10))
        assert all(a == "/musicldm/fail" and args[1] == "bad_request" for a, args in fails)
        assert daemon.status()["malformed"] == 500
    finally:
        client.close()


def test_the_receive_buffer_is_enlarged():
    server = serve(fail_everything)
    try:
        granted = server.receive_buffer_bytes
        assert granted == server.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        rmem_max = Path("/proc/sys/net/core/rmem_max")
        if rmem_max.exists():  # Linux grants up to rmem_max (and reports twice what it set)
            assert granted >= min(RECEIVE_BUFFER_BYTES, int(rmem_max.read_text()))
    finally:
        server.close()


def test_a_full_inbox_drops_and_counts_and_never_blocks_the_reader(listeners):
    busy = Busy(pong_everything)
    server = serve(busy, inbox_datagrams=4)
    client = listeners()
    try:
        client.send((server.host, server.port), "/busy")
        assert busy.entered.wait(5)
        for n in range(10):
            client.send((server.host, server.port), "/musicldm/ping", n)
        deadline = time.monotonic() + 5
        while server.received < 11 and time.monotonic() < deadline:
            time.sleep(0.01)  # the reader's counter is the event; it is read, not guessed
        assert server.received == 11
        assert server.overflowed == 6
        busy.release.set()
        assert [args for _, args in client.collect(4)] == [[0], [1], [2], [3]]
        assert client.collect(1, 0.3) == []
    finally:
        busy.release.set()
        server.close()


# -- 10.12: log hygiene ------------------------------------------------------------------------


def _bundle(content: bytes) -> bytes:
    return b"#bundle\x00" + (1).to_bytes(8, "big") + len(content).to_bytes(4, "big") + content


def _nested(depth: int, message: bytes) -> bytes:
    for _ in range(depth):
        message = _bundle(message)
    return message


def test_a_deeply_nested_bundle_is_malformed_and_logged_at_most_once_a_second(listeners, caplog):
    client = listeners()
    server = serve(lambda s, a, args, sender: s.replier.send("/musicldm/pong", args, to=[sender]))
    server._malformed_log.interval = 3600  # "once a second" without a race against the clock
    ping = build_message("/musicldm/ping", [1])
    try:
        with caplog.at_level(logging.DEBUG, logger="daemon.wire.osc"):
            for _ in range(5):
                client.sock.sendto(_nested(500, ping), (server.host, server.port))
            client.sock.sendto(_nested(MAX_BUNDLE_DEPTH + 1, ping), (server.host, server.port))
            client.sock.sendto(_nested(MAX_BUNDLE_DEPTH, ping), (server.host, server.port))
            assert client.next() == ("/musicldm/pong", [1])  # 8 deep is still served
        assert server.malformed == 6
        records = [r for r in caplog.records if r.name == "daemon.wire.osc"]
        assert [r.levelno for r in records if r.levelno >= logging.WARNING] == [logging.WARNING]
        assert all(r.exc_info is None for r in records)
        assert "nested more than 8 deep" in records[0].getMessage()
    finally:
        server.close()


def test_bundles_are_unpacked_in_order(listeners):
    client = listeners()
    server = serve(lambda s, a, args, sender: s.replier.send("/musicldm/pong", args, to=[sender]))
    first, second, third = (build_message("/musicldm/ping", [n]) for n in (1, 2, 3))
    inner = b"#bundle\x00" + (1).to_bytes(8, "big")
    for message in (second, third):
        inner += len(message).to_bytes(4, "big") + message
    packet = (
        b"#bundle\x00"
        + (1).to_bytes(8, "big")
        + len(first).to_bytes(4, "big")
        + first
        + len(inner).to_bytes(4, "big")
        + inner
    )
    try:
        client.sock.sendto(packet, (server.host, server.port))
        assert [args for _, args in client.collect(3)] == [[1], [2], [3]]
    finally:
        server.close()


def _raw_message(address: str, tags: str, payload: bytes) -> bytes:
    """An OSC message written by hand, for type tags no client library writes."""

    def padded(text: str) -> bytes:
        data = text.encode() + b"\x00"
        return data + b"\x00" * (-len(data) % 4)

    return padded(address) + padded("," + tags) + payload


def test_a_type_tag_the_daemon_cannot_read_fails_clearly_instead_of_misreading(daemon):
    """liblo and SuperCollider can send a char (c), a symbol (S) or an impulse (I); python-osc
    skips such a tag but not its bytes, so ``,ci`` 'A' 7 used to echo as 65 and ``,Si`` as
    garbage. Each now fails naming the tag, and the bundle's next message is still served."""
    seven = (7).to_bytes(4, "big")
    client = Listener()
    try:
        for tags, payload in (
            ("ci", (65).to_bytes(4, "big") + seven),
            ("Si", b"sym\x00" + seven),
            ("Ii", seven),
        ):
            client.sock.sendto(_raw_message("/musicldm/ping", tags, payload), daemon.address)
            address, args = client.next(10)
            assert (address, args[:2]) == ("/musicldm/fail", ["/musicldm/ping", "bad_request"])
            assert f"argument 1 has the OSC type tag '{tags[0]}'" in args[2]
        unreadable = _raw_message(
            "/musicldm/generate", "ssc", b"dark\x00\x00\x00\x00bars\x00\x00\x00\x00" + seven
        )
        pong = build_message("/musicldm/ping", [3])
        bundle = b"#bundle\x00" + (1).to_bytes(8, "big")
        for message in (unreadable, pong):
            bundle += len(message).to_bytes(4, "big") + message
        client.sock.sendto(bundle, daemon.address)
        address, args = client.next(10)
        assert (address, args[1]) == ("/musicldm/fail", "bad_request")
        assert "argument 3 has the OSC type tag 'c'" in args[2]
        assert client.next(10) == ("/musicldm/pong", [3])
        assert daemon.status()["malformed"] == 0
    finally:
        client.close()


def test_client_text_cannot_forge_log_lines(listeners, caplog):
    """A type tag (or address) with a newline in it is logged escaped, on one line."""
    client = listeners()

    def handler(server: OscServer, address: str, args: list[Any], sender: Address) -> None:
        raise RuntimeError("a handler bug")

    server = serve(handler)
    forged = b"/x\x00\x00" + b"\n2024-01-01 INFO forged line\x00\x00\x00\x00"
    try:
        with caplog.at_level(logging.WARNING, logger="daemon.wire.osc"):
            client.sock.sendto(forged, (server.host, server.port))
            client.send((server.host, server.port), "/evil\nINFO forged too")
            deadline = time.monotonic() + 5
            while len(caplog.records) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
        messages = [r.getMessage() for r in caplog.records if r.name == "daemon.wire.osc"]
        assert len(messages) == 2
        assert all("\n" not in m for m in messages)
        assert "\\n2024-01-01 INFO forged line" in messages[0]
        assert "/evil\\nINFO forged too" in messages[1]
    finally:
        server.close()


@pytest.mark.parametrize(
    ("value", "logged"),
    [
        ("take-1", "take-1"),
        ("a\nb\rc", "a\\nb\\rc"),
        ("\x1b[31mred", "\\x1b[31mred"),
        ("line\u2028sep", "line\\u2028sep"),
        ("back\\slash", "back\\\\slash"),
        ('it\'s "quoted"', 'it\'s "quoted"'),
        ("é ünïcode", "é ünïcode"),
        (7, "7"),
        (["x\ny", 1], "['x\\ny', 1]"),
    ],
)
def test_printable_escapes_what_could_forge_a_log_line(value: Any, logged: str) -> None:
    assert printable(value) == logged


def test_printable_shortens_long_values() -> None:
    text = printable("x" * 1000)
    assert text.startswith("x" * 200) and text.endswith("…(+800 chars)")


# -- 10.16: one reading of an address, IPv4-mapped and scoped ones included -----------------


@pytest.mark.parametrize(
    ("host", "network", "allowed"),
    [
        ("192.168.1.5", "192.168.1.0/24", True),
        ("::ffff:192.168.1.5", "192.168.1.0/24", True),  # through a dual-stack socket
        ("::ffff:192.168.1.5", "::ffff:192.168.1.0/120", True),  # the same network, mapped
        ("192.168.1.5", "::ffff:192.168.1.0/120", True),
        ("::ffff:192.168.2.5", "192.168.1.0/24", False),
        ("fe80::1%eth0", "fe80::/64", True),  # a scope id names an interface, not a host
        ("fe80::1%eth0", "192.168.1.0/24", False),
        ("2001:db8::7", "2001:db8::/32", True),
        ("10.0.0.1", "192.168.1.0/24", False),
        ("not-an-ip", "0.0.0.0/0", False),
        ("127.0.0.1", "192.168.1.0/24", True),  # loopback always
        ("::ffff:127.0.0.1", "192.168.1.0/24", True),
        ("::1", "192.168.1.0/24", True),
    ],
)
def test_allow_list_reads_mapped_and_scoped_addresses(
    host: str, network: str, allowed: bool
) -> None:
    assert AllowList([network]).allows(host) is allowed


def test_the_servers_allow_check_is_the_helper():
    server = OscServer("127.0.0.1", 0, lambda *a: None, allow=["192.168.1.0/24"])
    try:
        assert server.allowed("::ffff:192.168.1.5")
        assert server.allowed("::ffff:127.0.0.1")
        assert not server.allowed("::ffff:10.1.1.1")
    finally:
        server.close()


def test_address_helpers() -> None:
    assert str(parse_ip("::ffff:10.0.0.5")) == "10.0.0.5"
    assert str(parse_ip("fe80::1%eth0")) == "fe80::1"
    assert str(parse_ip("[::1]")) == "::1"
    assert parse_ip("studio.local") is None
    assert str(parse_network("::ffff:192.168.1.0/120")) == "192.168.1.0/24"
    assert str(parse_network("192.168.1.7/24")) == "192.168.1.0/24"
    assert is_loopback("::ffff:127.0.0.1") and is_loopback("[::1]") and is_loopback("localhost")
    assert not is_loopback("::") and not is_loopback("0.0.0.0")
    assert config_is_loopback is is_loopback  # config's public name is the one helper
    assert endpoint_key(("::ffff:127.0.0.1", 9001)) == ("127.0.0.1", 9001)
    assert endpoint_key(["127.0.0.1", "9001"]) == ("127.0.0.1", 9001)  # as a journal holds it
    assert endpoint_key(("fe80::1%eth0", 9001)) == ("fe80::1%eth0", 9001)


def test_config_allow_list_normalises_mapped_networks(tmp_path: Path) -> None:
    config = load_config(
        None,
        {"host": "::", "allow": ("::ffff:192.168.1.0/120",), "state": tmp_path, "out": tmp_path},
    )
    assert config.allow == ("192.168.1.0/24",)


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="this machine has no IPv6 socket to bind")
def test_a_dual_stack_server_answers_ipv4_loopback_once(listeners):
    """Bound to ``::``, the server sees an IPv4 client as ``::ffff:127.0.0.1``: loopback, so
    served; and the client that is also a reply target hears each reply once."""
    client = listeners()
    server = OscServer(
        "::",
        0,
        lambda a, args, sender: server.replier.send("/musicldm/pong", args, to=[sender]),
        reply_targets=[client.address],
    )
    server.start()
    try:
        for n in (1, 2):
            client.send(("127.0.0.1", server.port), "/musicldm/ping", n)
        assert [args for _, args in client.collect(2)] == [[1], [2]]
        assert client.collect(1, 0.3) == []
        assert server.dropped == 0
    finally:
        server.close()


# -- 15.4: one reply reaches every origin, the registrants and the targets once -----------------


def test_recipients_merge_several_origins_once_each(listeners):
    definer, triggerer, listener, target = (listeners() for _ in range(4))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        replier = Replier(sock, [target.address, definer.address])
        replier.register(listener.address)
        replier.register(triggerer.address)
        mapped = ("::ffff:127.0.0.1", definer.address[1])
        to = [definer.address, triggerer.address, mapped, list(triggerer.address)]
        expected = [definer.address, triggerer.address, listener.address, target.address]
        assert replier.recipients(to) == expected
        replier.send("/musicldm/playing", [3, "/clip.wav"], to=to)
        assert replier.flush(5)
        for each in (definer, triggerer, listener, target):
            assert each.collect(2, 0.3) == [("/musicldm/playing", [3, "/clip.wav"])]
        replier.close()
