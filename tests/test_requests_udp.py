"""How the daemon reads requests, driven over real UDP with the tiny model: ids an OSC int can
carry, ``queue_full`` naming its job, 32-bit float bounds, which words end a prompt, the typed
echo of ``/musicldm/ping`` and unsetting ``/musicldm/set`` defaults.

Datagrams are built and read here with their type tags (python-osc's reader drops them), so a
test can tell an ``i`` from an ``h`` and an ``f`` from a ``d``.
"""

from __future__ import annotations

import contextlib
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import soundfile as sf
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket
from pythonosc.parsing import osc_types

from daemon.app.daemon import Daemon, spec_to_dict
from daemon.jobs.journal import Journal
from daemon.wire.contract import ID_MAX, ID_MIN
from musicldm_core.spec import ClipSpec
from tests.support import OscSocket, receive, running_daemon

GEN = "/musicldm/generate"
FAST: tuple[Any, ...] = ("steps", 3)


def f32(value: float) -> float:
    """``value`` as an OSC float (``f``) carries it."""
    return struct.unpack("<f", struct.pack("<f", value))[0]


def _tags(message: OscMessage) -> str:
    _, index = osc_types.get_string(message.dgram, 0)
    if index >= len(message.dgram):
        return ""
    return osc_types.get_string(message.dgram, index)[0][1:]


class Wire(OscSocket):
    """A bare UDP socket speaking OSC with explicit type tags, in both directions."""

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address)
        self.backlog: list[tuple[str, str, list[Any]]] = []

    def send(self, address: str, *args: Any) -> None:
        """Send ``args``: a ``(value, tag)`` pair goes with that tag, anything else with the tag
        python-osc picks (str ``s``, int ``i``, float ``f``)."""
        builder = OscMessageBuilder(address=address)
        for arg in args:
            if isinstance(arg, tuple):
                builder.add_arg(*arg)
            else:
                builder.add_arg(arg)
        self.sock.sendto(builder.build().dgram, self.address)

    def wait_for(self, address: str, seconds: float = 60.0) -> tuple[str, list[Any]]:
        """The type tags and arguments of the first reply at ``address``; later replies stay
        in the backlog."""
        deadline = time.monotonic() + seconds
        while True:
            for i, (addr, tags, args) in enumerate(self.backlog):
                if addr == address:
                    del self.backlog[i]
                    return tags, args
            if time.monotonic() > deadline:
                raise AssertionError(f"no {address} within {seconds} s; got {self.backlog}")
            received = receive(self.sock)
            if received is None:
                continue
            for timed in OscPacket(received[0]).messages:
                message = timed.message
                self.backlog.append((message.address, _tags(message), list(message.params)))

    def args_of(self, address: str, seconds: float = 60.0) -> list[Any]:
        return self.wait_for(address, seconds)[1]


@contextlib.contextmanager
def running(engine: Any, tmp_path: Path, **config: Any) -> Iterator[tuple[Daemon, Wire]]:
    """A started daemon on ``tmp_path`` and a wire to it; stopped again afterwards."""
    with running_daemon(engine, tmp_path, **config) as daemon, Wire(daemon.address) as wire:
        yield daemon, wire


@pytest.fixture
def served(tiny_engine: Any, tmp_path: Path) -> Iterator[tuple[Daemon, Wire]]:
    with running(tiny_engine, tmp_path) as pair:
        yield pair


# -- ids an OSC int carries (issue 10.2) -----------------------------------------------------


def _assigned_id_is_answered(wire: Wire, prompt: str) -> int:
    """Generate without an id; the daemon's id comes back as an OSC int, and so does /done."""
    wire.send(GEN, prompt, *FAST)
    tags, queued = wire.wait_for("/musicldm/queued", 30)
    assert tags == "ii" and ID_MIN <= queued[0] <= ID_MAX
    tags, done = wire.wait_for("/musicldm/done", 60)
    assert done[0] == queued[0] and tags[0] == "i"
    return queued[0]


def test_an_int64_id_is_refused_and_later_jobs_are_still_answered(served):
    daemon, wire = served
    wire.send(GEN, "x", "id", (2**63 - 1, "h"), *FAST)
    fail = wire.args_of("/musicldm/fail", 10)
    assert fail[:2] == [GEN, "bad_request"]
    assert "id must be text or an integer from -2147483648 to 2147483647" in fail[2]
    _assigned_id_is_answered(wire, "after the int64 id")
    assert len(list(daemon.config.out.glob("*.wav"))) == 1  # the refused one made nothing


def test_a_client_taking_the_top_id_keeps_daemon_ids_within_an_osc_int(served):
    _, wire = served
    wire.send(GEN, "top", "id", ID_MAX, *FAST)
    assert wire.wait_for("/musicldm/queued", 10) == ("ii", [ID_MAX, 0])
    assert wire.args_of("/musicldm/done")[0] == ID_MAX
    _assigned_id_is_answered(wire, "after the top id")


def test_a_huge_id_journaled_by_an_older_run_is_ignored_at_restart(tiny_engine, tmp_path):
    state = tmp_path / "state"
    journal = Journal(state / "journal.sqlite3")  # as an older version left it
    spec = {"spec": spec_to_dict(ClipSpec(prompt="old", seed=1)), "slot": None, "play": False}
    seq = journal.add(2**63 - 1, spec, "normal")
    journal.mark_finished(seq, "done")
    journal.mark_finished(journal.add(41, spec, "normal"), "done")
    journal.close()
    with running(tiny_engine, tmp_path) as (_, wire):
        assert _assigned_id_is_answered(wire, "after a restart") > 41


# -- queue_full names the refused job (issue 10.7) -------------------------------------------


class HeldEngine:
    """The tiny engine, held inside its first render until ``release`` is set."""

    def __init__(self, engine: Any) -> None:
        self._engine = engine
        self.entered = threading.Event()
        self.release = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        self.entered.set()
        if not self.release.wait(60):
            raise TimeoutError("the test never released the engine")
        return self._engine.generate(*args, **kwargs)


def _wait_for_done(wire: Wire, *job_ids: Any) -> None:
    done: set[Any] = set()
    while not set(job_ids) <= done:
        done.add(wire.args_of("/musicldm/done")[0])


def test_queue_full_names_the_refused_job(tiny_engine, tmp_path):
    engine = HeldEngine(tiny_engine)
    try:
        with running(engine, tmp_path, queue_size=1) as (_, wire):
            wire.send(GEN, "rendering", "id", "a", *FAST)
            assert wire.args_of("/musicldm/queued", 10) == ["a", 0]
            assert engine.entered.wait(30)  # the worker holds job a: the queue is empty
            wire.send(GEN, "waiting", "id", "b", *FAST)
            assert wire.args_of("/musicldm/queued", 10) == ["b", 0]  # the queue is full now
            wire.send(GEN, "refused", "id", "c", *FAST)
            fail = wire.args_of("/musicldm/fail", 10)
            assert fail[:2] == ["c", "queue_full"]
            wire.send(GEN, "refused too", *FAST)  # no id: the fail names the one assigned
            tags, fail = wire.wait_for("/musicldm/fail", 10)
            assert tags[:2] == "is" and fail[1] == "queue_full"
            engine.release.set()
            _wait_for_done(wire, "a", "b")
    finally:
        engine.release.set()


def test_queue_full_for_a_slot_names_the_slot_request(tiny_engine, tmp_path):
    engine = HeldEngine(tiny_engine)
    audio = {"audio": True, "audio_file": tmp_path / "heard.wav", "audio_rate": 44100}
    try:
        with running(engine, tmp_path, queue_size=1, **audio) as (_, wire):
            wire.send(GEN, "rendering", "id", "a", *FAST)
            assert engine.entered.wait(30)
            wire.send(GEN, "waiting", "id", "b", *FAST)
            assert wire.args_of("/musicldm/queued", 10) == ["a", 0]
            assert wire.args_of("/musicldm/queued", 10) == ["b", 0]
            wire.send("/musicldm/slot", 0, "pads", "id", "s0", *FAST)
            assert wire.args_of("/musicldm/fail", 10)[:2] == ["s0", "queue_full"]
            wire.send("/musicldm/slot", 1, "bass", *FAST)  # no id: the address
            assert wire.args_of("/musicldm/fail", 10)[:2] == ["/musicldm/slot", "queue_full"]
            engine.release.set()
            _wait_for_done(wire, "a", "b")
    finally:
        engine.release.set()


# -- 32-bit floats at the bounds (issue 10.9) ------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("bpm", 20.0),
        ("bpm", 400.0),
        ("guidance", 0.0),
        ("guidance", 30.0),
        ("gain", 0.0),
        ("gain", 2.0),
        ("seconds", 0.04),
        ("seconds", 12.3),  # the configured maximum below
    ],
)
def test_every_float_bound_sent_as_an_osc_float_is_accepted(tiny_engine, tmp_path, key, value):
    with running(tiny_engine, tmp_path, max_seconds=12.3) as (_, wire):
        wire.send("/musicldm/set", key, (value, "f"))
        tags, answer = wire.wait_for("/musicldm/value", 10)
        assert answer[0] == key and tags == "sf"
        assert answer[1] == f32(value)  # the bound itself, sent back as a float


def test_seconds_004_as_an_osc_float_renders_the_shortest_clip(served):
    _, wire = served
    assert f32(0.04) < 0.04
    wire.send(GEN, "tick", "seconds", (0.04, "f"), "id", "short", *FAST)
    done = wire.args_of("/musicldm/done")
    assert done[0] == "short"
    assert sf.info(done[1]).frames == round(0.04 * 44100)
    wire.send(GEN, "tick", "seconds", (0.0399, "f"), "id", "shorter", *FAST)
    fail = wire.args_of("/musicldm/fail", 10)
    assert fail[:2] == ["shorter", "bad_request"] and "seconds must be" in fail[2]


# -- which words end a prompt (issue 15.3) ---------------------------------------------------


def test_a_playback_option_after_a_prompt_is_refused_not_rendered(served):
    daemon, wire = served
    wire.send(GEN, "dark techno", "quantize", "bar", "steps", 2, "id", "q")
    fail = wire.args_of("/musicldm/fail", 10)
    assert fail[:2] == ["q", "bad_request"]
    assert fail[2].startswith("unknown option 'quantize' for /musicldm/generate")
    assert "send the text as one argument" in fail[2]
    wire.send(GEN, "dark", "techno", "gain", 1, "id", "g")  # the same in Pd's pieces
    assert wire.args_of("/musicldm/fail", 10)[:2] == ["g", "bad_request"]
    wire.send(GEN, "dark techno", "bars", 1, "colour", "red", "id", "c")
    assert "unknown option 'colour'" in wire.args_of("/musicldm/fail", 10)[2]
    # plain words are a (Pd) prompt, as documented
    wire.send(GEN, "unknown", "colour", "red", "id", "p", *FAST)
    done = wire.args_of("/musicldm/done")
    assert done[0] == "p" and "unknown-colour-red" in Path(done[1]).name
    assert len(list(daemon.config.out.glob("*.wav"))) == 1  # only the plain-word prompt's


# -- /musicldm/ping echoes type for type (issue 15.5) ----------------------------------------


def test_ping_echoes_every_argument_with_its_type_tag(served):
    _, wire = served
    sent = [
        (7, "i"),
        (0.1, "f"),
        (0.1, "d"),
        ("text", "s"),
        (True, "T"),
        (False, "F"),
        (None, "N"),
        (b"\x00\x01blob", "b"),
        (5, "h"),
        (2**40, "h"),
    ]
    wire.send("/musicldm/ping", *sent)
    tags, args = wire.wait_for("/musicldm/pong", 10)
    assert tags == "ifdsTFNbhh"
    assert args == [7, f32(0.1), 0.1, "text", True, False, None, b"\x00\x01blob", 5, 2**40]
    wire.send("/musicldm/ping")
    assert wire.wait_for("/musicldm/pong", 10) == ("", [])


# -- /musicldm/set defaults can be forgotten; what needs audio is refused without it ---------


def test_set_with_no_value_or_empty_text_forgets_the_default(served):
    _, wire = served
    wire.send("/musicldm/set", "bars", 2)
    assert wire.args_of("/musicldm/value", 10) == ["bars", 2]
    wire.send(GEN, "two bars", "id", "two", *FAST)
    done = wire.args_of("/musicldm/done")
    assert done[0] == "two" and done[4] == 2
    wire.send("/musicldm/set", "bars")
    assert wire.args_of("/musicldm/value", 10) == ["bars", 1]  # the built-in default again
    wire.send("/musicldm/set", "seed", 5)
    assert wire.args_of("/musicldm/value", 10) == ["seed", 5]
    wire.send("/musicldm/set", "seed", "")
    assert wire.args_of("/musicldm/value", 10) == ["seed", ""]  # random again
    wire.send(GEN, "one bar", "id", "one", *FAST)
    done = wire.args_of("/musicldm/done")
    assert done[0] == "one" and done[4] == 1


def test_set_slot_or_play_without_audio_is_refused_and_generates_still_work(served):
    daemon, wire = served
    for key in ("slot", "play"):
        wire.send("/musicldm/set", key, 1)
        fail = wire.args_of("/musicldm/fail", 10)
        assert fail[:2] == ["/musicldm/set", "not_found"] and "audio output" in fail[2]
    wire.send("/musicldm/set", "play", 0)
    assert wire.args_of("/musicldm/value", 10) == ["play", 0]
    wire.send("/musicldm/get", "slot")
    assert wire.args_of("/musicldm/value", 10) == ["slot", ""]
    wire.send("/musicldm/tempo", 100)  # answered, as the docs say
    assert wire.args_of("/musicldm/value", 10) == ["bpm", 100.0]
    wire.send(GEN, "still works", "id", "w", *FAST)
    assert wire.args_of("/musicldm/done")[0] == "w"
    assert daemon.defaults.given() == {"play": False}
