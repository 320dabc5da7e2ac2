"""The client's and ``musicldm-send``'s newer options and ``morph``: what goes on the wire.

Against the fake daemon of :mod:`tests.test_client` (real UDP on loopback, no model) for the
messages built, and once end to end against the real daemon with the tiny model: a variation
``--from`` a library clip comes back as a file, and a ``morph`` of two defined slots is
accepted.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clients import cli
from clients.client import Client, ClientError
from clients.commands import Commands, flow_method
from clients.messages import REPEATING, option_args
from daemon.wire.contract import GENERATE_OPTIONS, SLOT_OPTIONS
from tests.support import running_daemon
from tests.test_client import Address, FakeDaemon

pytestmark = pytest.mark.timeout(120)


class MorphingFake(FakeDaemon):
    """The fake daemon, also taking ``/musicldm/morph`` (accepted silently, as the daemon
    does: a morph has no answer of its own)."""

    def on_morph(self, args: list[Any], sender: Address) -> None:
        pass


@pytest.fixture
def fake() -> Iterator[MorphingFake]:
    daemon = MorphingFake()
    try:
        yield daemon
    finally:
        daemon.close()


@pytest.fixture
def client(fake: MorphingFake) -> Iterator[Client]:
    with Client("127.0.0.1", fake.port, timeout=5) as c:
        yield c


def _sent(fake: FakeDaemon, address: str) -> list[list[Any]]:
    return [args for addr, args, _ in fake.requests if addr == address]


def _cli(port: int, *args: str) -> int:
    return cli.main(["--port", str(port), "--timeout", "10", *args])


def _pairs(args: list[Any], start: int) -> list[tuple[Any, Any]]:
    """The ``key value`` pairs of a request's arguments from ``start`` on, in order."""
    rest = args[start:]
    return list(zip(rest[::2], rest[1::2], strict=True))


# -- option_args -----------------------------------------------------------------------------------


def test_a_list_of_a_repeating_option_goes_out_as_repeated_pairs():
    assert {k for k, o in GENERATE_OPTIONS.items() if o.repeats} == REPEATING == {"blend"}
    sent = option_args({"blend": ["warm pads:0.3", ("vinyl hiss", 0.25)], "from_": 5, "bars": 2})
    assert sent == ["blend", "warm pads:0.3", "blend", "vinyl hiss:0.25", "from", 5, "bars", 2]
    assert option_args({"blend": ("warm pads", 0.3)}) == ["blend", "warm pads:0.3"]  # one pair
    assert option_args({"blend": "warm pads:0.3", "morph": None}) == ["blend", "warm pads:0.3"]


def test_a_list_for_an_option_that_does_not_repeat_is_refused_before_sending(client, fake):
    with pytest.raises(ClientError, match=r"bars takes one value, got \[1, 2\].*blend"):
        option_args({"bars": [1, 2]})
    with pytest.raises(ClientError, match="seed takes one value"):
        client.generate("x", seed=[1, 2])
    with pytest.raises(ClientError, match="strength takes one value"):
        client.slot(0, "x", strength=(0.2, 0.3))
    client.ping()
    assert _sent(fake, "/musicldm/generate") == [] and _sent(fake, "/musicldm/slot") == []


# -- musicldm-send ---------------------------------------------------------------------------------


def test_every_generate_and_slot_option_of_the_contract_has_a_flag():
    parser = cli.build_parser()
    flag_dest = {"from": "from_", "loop": "no_loop"}  # a keyword; a switch that turns it off
    generate = vars(parser.parse_args(["generate", "x"]))
    for key in GENERATE_OPTIONS:
        assert flag_dest.get(key, key) in generate, key
    slot = vars(parser.parse_args(["slot", "0", "x"]))
    for key in SLOT_OPTIONS:
        if key not in ("id", "play"):  # a slot's takes have their own ids, and play on trigger
            assert flag_dest.get(key, key) in slot, key


def test_cli_generate_sends_the_grid_and_audio_in_options(fake, capsys):
    code = _cli(
        fake.port,
        *("generate", "a variation", "--id", "v1", "-q", "--grid", "check", "--key", "F#m"),
        *("--retake", "2", "--from", "5", "--strength", "0.5", "--repaint", "2-3"),
        *("--extend", "2", "--like", "in/ref.wav", "--like-weight", "0.25"),
        *("--blend", "warm pads:0.5", "--blend", "vinyl hiss:0.25"),
        *("--morph-to", "glassy arpeggio", "--morph", "0.75", "--morph-seed", "22"),
    )
    assert code == 0 and capsys.readouterr().out.strip().endswith(".wav")
    [args] = _sent(fake, "/musicldm/generate")
    assert args[:3] == ["a variation", "id", "v1"]
    assert _pairs(args, 3) == [
        ("grid", "check"),
        ("key", "F#m"),
        ("retake", 2),
        ("from", "5"),  # a clip id or a path: the daemon reads both from text
        ("strength", 0.5),
        ("repaint", "2-3"),
        ("extend", 2),
        ("like", "in/ref.wav"),
        ("like_weight", 0.25),
        ("blend", "warm pads:0.5"),
        ("blend", "vinyl hiss:0.25"),
        ("morph_to", "glassy arpeggio"),
        ("morph", 0.75),
        ("morph_seed", 22),
    ]


def test_cli_refuses_a_malformed_repaint_or_blend_before_sending(fake, capsys):
    for flag, value, says in (
        ("--repaint", "3-2", "repaint must be bars A-B with A <= B"),
        ("--blend", "no weight", 'blend must be "prompt:weight"'),
    ):
        with pytest.raises(SystemExit) as exit_info:
            _cli(fake.port, "generate", "x", flag, value)
        assert exit_info.value.code == cli.EXIT_NO_DAEMON  # argparse's usage error: 2
        assert says in capsys.readouterr().err
    assert _sent(fake, "/musicldm/generate") == []


def test_slot_evolve_travels_from_the_cli_and_the_client(client, fake):
    assert _cli(fake.port, "slot", "3", "dusty breakbeat", "--evolve", "0.25", "--bars", "2") == 0
    client.slot(4, "glassy arpeggio", evolve=0.3, blend=["warm pads:0.5"])
    first, second = _sent(fake, "/musicldm/slot")
    assert first[:2] == [3, "dusty breakbeat"]
    assert _pairs(first, 2) == [("bars", 2), ("evolve", 0.25)]
    assert second[:2] == [4, "glassy arpeggio"]
    assert _pairs(second, 2) == [("evolve", pytest.approx(0.3)), ("blend", "warm pads:0.5")]


def test_morph_from_the_client_and_the_cli(client, fake):
    command = Commands.__dict__["morph"]
    assert isinstance(command, flow_method)  # defined once, for both faces
    assert Client.morph is command and "morph" not in Client.__dict__
    client.morph(1, 2, 4)
    client.morph(1, 2, 8, quantize="beat")
    assert _cli(fake.port, "morph", "2", "1", "3", "--quantize", "none") == 0
    assert _sent(fake, "/musicldm/morph") == [
        [1, 2, 4],
        [1, 2, 8, "quantize", "beat"],
        [2, 1, 3, "quantize", "none"],
    ]
    # confirmed like the other commands without an answer: a ping right after each
    kinds = [address for address, _, _ in fake.requests]
    assert kinds.count("/musicldm/ping") >= 3


def test_cli_help_of_the_new_options_comes_from_the_contract(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")  # argparse wraps at the terminal's width
    with pytest.raises(SystemExit):
        cli.main(["generate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--grid {stretch,check,off}" in text and "(0-3; default: 0)" in text  # retake
    assert "(weight 0-10; default: none)" in text  # blend
    with pytest.raises(SystemExit):
        cli.main(["slot", "--help"])
    help_lines = capsys.readouterr().out.split("\n  --")  # one option's help per part
    evolve = " ".join(next(p for p in help_lines if p.startswith("evolve S ")).split()[2:])
    assert evolve.startswith("each new take is a variation") and "(0-1; default: 0)" in evolve


# -- end to end, the real daemon with the tiny model -----------------------------------------------


FAST = ("--steps", "2", "--bpm", "240", "--bars", "1")  # one bar at 240 BPM: one second


def test_a_variation_from_a_clip_id_and_a_morph_over_real_udp(tiny_engine, tmp_path, capsys):
    with running_daemon(
        tiny_engine, tmp_path, audio=True, audio_file=tmp_path / "heard.wav"
    ) as daemon:
        port = daemon.address[1]
        assert _cli(port, "generate", "first clip", "--id", "5", "-q", *FAST) == 0
        first = Path(capsys.readouterr().out.strip())
        assert first.is_file()
        code = _cli(port, "generate", "a variation", "--from", "5", "--strength", "0.5", *FAST)
        assert code == 0, capsys.readouterr().err
        [line] = capsys.readouterr().out.splitlines()
        variation = Path(line)
        assert variation.is_file() and variation != first
        assert variation.resolve().is_relative_to(daemon.config.out.resolve())
        for index, prompt in ((1, "dusty breakbeat"), (2, "glassy arpeggio")):
            assert _cli(port, "slot", str(index), prompt, "--steps", "2", "--bars", "1") == 0
        assert _cli(port, "morph", "1", "2", "2", "--quantize", "none") == 0
        assert capsys.readouterr().err == ""  # no /musicldm/fail came back
