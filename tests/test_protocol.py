"""Unit tests of daemon.wire.requests: OSC messages to typed requests, tables behind the docs.

Pure functions only: no sockets, no model. The option tests are generated from the protocol's own
tables, so a new option is tested (or the coverage test fails) without editing this file's cases.
"""

from __future__ import annotations

import dataclasses
import math
import random
import re
import struct
from pathlib import Path
from typing import Any

import pytest

from daemon import errors as daemon_errors
from daemon.errors import UnknownAddress
from daemon.wire import contract, requests
from daemon.wire.contract import (
    ADDRESSES,
    FAIL_CODES,
    GENERATE_OPTIONS,
    OPTION_WORDS,
    OPTIONS_OF,
    PLAYBACK_OPTIONS,
    REPLIES,
    SLOT_OPTIONS,
    Option,
)
from daemon.wire.requests import PARSERS, parse
from musicldm_core import errors as core_errors
from musicldm_core.errors import BadRequest, MusicLDMError
from musicldm_core.spec import DEFAULT_MAX_SECONDS, LIMITS, MAX_PROMPT_CHARS

GEN = "/musicldm/generate"
DOCS = Path(__file__).resolve().parents[1] / "docs" / "osc.md"


def bad(address: str, args: list[Any], **kwargs: Any) -> BadRequest:
    """Parse expecting a BadRequest; return it for inspection."""
    with pytest.raises(BadRequest) as info:
        parse(address, args, **kwargs)
    assert info.value.code == "bad_request"
    return info.value


# -- values derived from the option tables -----------------------------------------------------

# Options without a range or a list of choices: their good and bad values, by hand. The coverage
# test below fails when an option appears that neither these nor the table's metadata describe.
TEXT_CASES: dict[str, tuple[list[tuple[Any, Any]], list[Any]]] = {
    # key: ([(sent, parsed), ...], [bad, ...])
    "id": ([(7, 7), (7.0, 7), ("take-a", "take-a"), (-3, -3)], [1.5, "", "  ", True, math.nan]),
    "negative": ([("low quality", "low quality"), ("", ""), (808, "808")], [2.5, "x" * 1001]),
    "preset": ([("studio", "studio"), ("my_preset-2", "my_preset-2")], ["", "a b", "../x", 3]),
    "name": ([("kick", "kick"), (808, "808"), (808.0, "808")], ["", "   ", 2.5]),
    # key names as the reports write them (sharps, "m" for minor)
    "key": ([("F#m", "F#m"), ("Bb", "A#"), ("C major", "C"), ("a minor", "Am")], ["H", "X#", 3]),
    # audio in: paths and clip ids stay text here (the daemon's input sandbox resolves them)
    "from": ([(7, "7"), (7.0, "7"), ("loops/a.wav", "loops/a.wav")], ["", 2.5, True]),
    "like": ([(3, "3"), ("/abs/ref.flac", "/abs/ref.flac")], ["", 2.5]),
    "repaint": (
        [("2-3", (2, 3)), (" 1 - 4 ", (1, 4)), (2, (2, 2)), (2.0, (2, 2)), ("5", (5, 5))],
        ["3-2", "0-1", "1-65", "a-b", "", 2.5, "2-"],
    ),
    "blend": (
        [("warm pads:0.3", (("warm pads", 0.3),)), ("a:b:1", (("a:b", 1.0),))],
        ["warm pads", "pads:", ":0.5", "pads:x", "pads:11", "pads:-1", "pads:nan", 3],
    ),
    "morph_to": ([("dark drone", "dark drone"), (808, "808")], ["", "  ", 2.5]),
}


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def good_cases(option: Option) -> list[tuple[Any, Any]]:
    """(sent, parsed) pairs the option must accept, from its metadata."""
    if option.key in TEXT_CASES:
        return TEXT_CASES[option.key][0]
    if option.type_name == "0/1":
        return [(0, False), (1, True), (0.0, False), (1.0, True), (True, True), (False, False)]
    if option.choices:
        return [(c, c) for c in option.choices] + [(option.choices[0].upper(), option.choices[0])]
    limit = option.limit
    assert limit is not None, f"no test values for option {option.key!r}: add a TEXT_CASES entry"
    if limit.integer:
        lo, hi = int(limit.lo), int(limit.hi)
        return [(lo, lo), (hi, hi), (float(hi), hi)]
    middle = (limit.lo + limit.hi) / 2
    return [(limit.lo, float(limit.lo)), (limit.hi, float(limit.hi)), (middle, middle)]


def bad_cases(option: Option) -> list[Any]:
    """Values the option must refuse, from its metadata."""
    if option.key in TEXT_CASES:
        return TEXT_CASES[option.key][1]
    if option.type_name == "0/1":
        return [2, -1, 0.5, "yes", "1"]
    if option.choices:
        return ["nope", 1, ""]
    limit = option.limit
    assert limit is not None
    values = [limit.lo - 1, limit.hi + 1, "3", True, math.inf, math.nan]
    if limit.integer:
        values.append(limit.lo + 0.5)
    return values


def _address_for(table: dict[str, Option]) -> tuple[str, list[Any]]:
    """An address taking ``table``'s options and the arguments before them."""
    if table is PLAYBACK_OPTIONS:
        return "/musicldm/trigger", [0]
    if table is SLOT_OPTIONS:
        return "/musicldm/slot", [0, "pads"]
    return GEN, ["dark techno"]


def _options_of(request: Any) -> dict[str, Any]:
    if isinstance(request, requests.Trigger):
        return request.playback.given()
    values = request.options.given()
    if isinstance(request, requests.Slot) and request.ahead is not None:
        values["ahead"] = request.ahead
    if isinstance(request, requests.Slot) and request.gate is not None:
        values["gate"] = request.gate
    if isinstance(request, requests.Slot) and request.evolve is not None:
        values["evolve"] = request.evolve
    return values


ALL_OPTIONS = [
    pytest.param(table, key, id=f"{name}-{key}")
    for name, table in (
        ("generate", GENERATE_OPTIONS),
        ("playback", PLAYBACK_OPTIONS),
        ("slot", SLOT_OPTIONS),
    )
    for key in table
]


@pytest.mark.parametrize(("table", "key"), ALL_OPTIONS)
def test_every_option_accepts_good_values(table: dict[str, Option], key: str) -> None:
    address, before = _address_for(table)
    for sent, parsed in good_cases(table[key]):
        request = parse(address, [*before, key, sent])
        got = _options_of(request)
        assert got == {key: parsed}, (key, sent)
        assert type(got[key]) is type(parsed), (key, sent)


@pytest.mark.parametrize(("table", "key"), ALL_OPTIONS)
def test_every_option_refuses_bad_values(table: dict[str, Option], key: str) -> None:
    address, before = _address_for(table)
    for value in bad_cases(table[key]):
        error = bad(address, [*before, key, value])
        assert key in error.message, (key, value, error.message)
        assert error.key == key


@pytest.mark.parametrize("key", [k for k, o in GENERATE_OPTIONS.items() if o.limit is not None])
def test_out_of_range_names_key_and_range(key: str) -> None:
    limit = LIMITS[key]
    error = bad(GEN, ["x", key, limit.hi + 1])
    assert error.message.startswith(f"{key} must be {limit.describe()}, got")


def test_integer_option_refuses_non_integral_float() -> None:
    error = bad(GEN, ["x", "bars", 2.5])
    assert error.message == "bars must be an integer from 1 to 64, got 2.5"


def test_seconds_bounded_by_configured_maximum() -> None:
    over = DEFAULT_MAX_SECONDS + 15
    bad(GEN, ["x", "seconds", over])
    request = parse(GEN, ["x", "seconds", over], max_seconds=60.0)
    assert request.options.seconds == over
    assert "from 0.04 to 60" in bad(GEN, ["x", "seconds", 61], max_seconds=60.0).message


def test_option_tables_use_the_shared_limits() -> None:
    for table in (GENERATE_OPTIONS, PLAYBACK_OPTIONS, SLOT_OPTIONS):
        for key, option in table.items():
            assert option.key == key
            if option.limit is not None:
                assert option.limit is LIMITS[key]


def test_generate_options_fields_match_the_table() -> None:
    names = {field: key for key, field in requests.OPTION_FIELDS.items()}  # from_ is `from`
    fields = [names.get(f.name, f.name) for f in dataclasses.fields(requests.GenerateOptions)]
    assert fields == list(GENERATE_OPTIONS)
    assert [f.name for f in dataclasses.fields(requests.PlaybackOptions)] == list(PLAYBACK_OPTIONS)


# -- prompt ------------------------------------------------------------------------------------


def test_prompt_as_one_string() -> None:
    assert parse(GEN, ["dark techno, 909 drums"]) == requests.Generate("dark techno, 909 drums")


def test_prompt_as_several_words() -> None:
    request = parse(GEN, ["dark", "techno", "bars", 2])
    assert request == requests.Generate("dark techno", requests.GenerateOptions(bars=2))


def test_prompt_whitespace_is_normalised() -> None:
    assert parse(GEN, ["  dark   techno ", "drums"]).prompt == "dark techno drums"


def test_options_default_to_none() -> None:
    request = parse(GEN, ["x"])
    assert request.options == requests.GenerateOptions()
    assert all(v is None for v in dataclasses.asdict(request.options).values())
    assert request.options.given() == {}


def test_pd_shaped_request_equals_max_shaped() -> None:
    max_args = ["dark techno", "bars", 4, "bpm", 128, "seed", 7, "id", 3, "loop", 1]
    max_args += ["negative", "low quality", "name", "808 groove", "play", 0, "slot", 2]
    pd_args = ["dark", "techno", "bars", 4.0, "bpm", 128.0, "seed", 7.0, "id", 3.0, "loop", 1.0]
    pd_args += ["negative", "low", "quality", "name", 808.0, "groove", "play", 0.0, "slot", 2.0]
    request = parse(GEN, max_args)
    assert parse(GEN, pd_args) == request
    assert request.options == requests.GenerateOptions(
        id=3,
        bars=4,
        beats=None,
        bpm=128.0,
        seed=7,
        negative="low quality",
        loop=True,
        name="808 groove",
        slot=2,
        play=False,
    )
    assert isinstance(request.options.id, int)
    assert isinstance(request.options.bars, int)


def test_options_in_any_order() -> None:
    a = parse(GEN, ["x", "bars", 2, "bpm", 90, "seed", 1])
    b = parse(GEN, ["x", "seed", 1, "bars", 2, "bpm", 90.0])
    assert a == b


def test_missing_prompt() -> None:
    assert "prompt is missing" in bad(GEN, []).message


def test_prompt_starting_with_an_option_key_is_missing() -> None:
    error = bad(GEN, ["bars", 2])
    assert error.key == "prompt"
    assert "prompt is missing" in error.message


@pytest.mark.parametrize("empty", ["", "   "])
def test_empty_prompt(empty: str) -> None:
    error = bad(GEN, [empty, "bars", 2])
    assert error.key == "prompt"
    assert "empty" in error.message


@pytest.mark.parametrize("leading", [3, 3.0, True])
def test_non_string_prompt(leading: Any) -> None:
    error = bad(GEN, [leading, "drums"])
    assert error.key == "prompt"
    assert "must be text" in error.message


def test_over_long_prompt() -> None:
    error = bad(GEN, ["x" * (MAX_PROMPT_CHARS + 1)])
    assert str(MAX_PROMPT_CHARS) in error.message


def test_a_prompt_word_equal_to_a_key_ends_the_prompt() -> None:
    assert parse(GEN, ["dark", "play", 1]) == requests.Generate(
        "dark", requests.GenerateOptions(play=True)
    )
    error = bad(GEN, ["let", "it", "play", "loud"])  # "play" is a key: its value is "loud"
    assert error.key == "play"


def test_number_after_prompt_words_hints_at_quoting() -> None:
    error = bad(GEN, ["dark", "techno", 909, "drums"])
    assert error.message.startswith("unknown option 'techno' for /musicldm/generate; allowed:")
    assert "quote" in error.message
    error = bad(GEN, ["techno", 909])
    assert error.message.startswith("expected an option key at argument 2 of /musicldm/generate")


def test_option_words_are_the_keys_of_every_request_address() -> None:
    keys = {k for table in (GENERATE_OPTIONS, SLOT_OPTIONS, PLAYBACK_OPTIONS) for k in table}
    assert set(OPTION_WORDS) == keys
    assert {"quantize", "gain", "ahead", "gate", "slot"} <= set(OPTION_WORDS)
    assert set(OPTIONS_OF) <= set(ADDRESSES)
    assert set(PARSERS) >= set(OPTIONS_OF)


@pytest.mark.parametrize(
    "args",
    [
        ["dark techno", "quantize", "bar", "steps", 2],  # one argument, then a playback option
        ["dark", "techno", "quantize", "bar", "steps", 2],  # the same prompt in Pd's pieces
        ["dark", "techno", "gain", 1],
        ["dark", "techno", "ahead", 2, "bars", 1],
    ],
)
def test_an_option_word_of_another_address_ends_the_prompt_and_is_refused(args: list[Any]) -> None:
    error = bad(GEN, args)
    word = args[2] if args[0] == "dark" else args[1]
    assert error.key == word
    assert error.message.startswith(f"unknown option {word!r} for {GEN}; allowed: id, bars")
    assert "is an option of /musicldm/" in error.message
    assert "send the text as one argument" in error.message  # how to put it in a prompt


def test_an_option_word_inside_one_text_argument_is_a_prompt_word() -> None:
    assert parse(GEN, ["dark techno quantize bar", "steps", 2]) == requests.Generate(
        "dark techno quantize bar", requests.GenerateOptions(steps=2)
    )
    assert parse(GEN, ["Quantize", "bar"]).prompt == "Quantize bar"  # keys are lower case


def test_plain_words_stay_a_prompt() -> None:
    # What a Pd prompt looks like: no option word, so every word is the prompt's.
    assert parse(GEN, ["unknown", "colour", "red"]) == requests.Generate("unknown colour red")
    # ... but a key's place after the first option takes only keys of this address.
    error = bad(GEN, ["dark techno", "bars", 2, "colour", "red"])
    allowed = ", ".join(GENERATE_OPTIONS)
    assert error.message == f"unknown option 'colour' for {GEN}; allowed: {allowed}"


def test_option_words_end_a_slot_prompt_and_free_text_words() -> None:
    error = bad("/musicldm/slot", [1, "warm", "pads", "slot", 2])
    assert error.key == "slot" and "is an option of /musicldm/generate" in error.message
    error = bad(GEN, ["x", "negative", "harsh", "quantize", "bar"])
    assert error.key == "quantize"
    assert parse(
        GEN, ["x", "negative", "harsh", "noise", "bars", 2]
    ).options == requests.GenerateOptions(negative="harsh noise", bars=2)


def test_a_prompt_that_is_an_option_word_is_missing_and_says_how_to_quote() -> None:
    error = bad(GEN, ["quantize", "bar"])
    assert error.key == "prompt" and "option word 'quantize'" in error.message
    assert "double quotes" in error.message


# -- option pairs ------------------------------------------------------------------------------


def test_unknown_key_lists_allowed_keys() -> None:
    allowed = ", ".join(GENERATE_OPTIONS)
    # After another option, and right after the prompt (where the word first joins the prompt).
    error = bad(GEN, ["x", "bars", 2, "foo", 1])
    assert error.message == f"unknown option 'foo' for {GEN}; allowed: {allowed}"
    assert error.key == "foo"
    for args in (["dark techno", "foo", 1], ["dark", "techno", "foo", 1.0]):
        error = bad(GEN, args)
        assert error.message.startswith(f"unknown option 'foo' for {GEN}; allowed: {allowed}")
        assert error.key == "foo"


@pytest.mark.parametrize("key", ["quantize", "gain", "ahead"])
def test_playback_and_slot_keys_are_not_generate_options(key: str) -> None:
    assert "unknown option" in bad(GEN, ["x", "bars", 1, key, 1]).message
    assert f"unknown option {key!r}" in bad(GEN, ["x", key, 1]).message


def test_dangling_key() -> None:
    error = bad(GEN, ["x", "bars", 2, "seed"])
    assert error.key == "seed"
    assert "no value" in error.message


def test_duplicate_key() -> None:
    error = bad(GEN, ["x", "bars", 2, "seed", 1, "bars", 3])
    assert error.key == "bars"
    assert "twice" in error.message


def test_non_string_key() -> None:
    error = bad(GEN, ["x", "bars", 2, 3, 4])
    assert "expected an option key at argument 4" in error.message
    assert "allowed: id, bars" in error.message


def test_text_option_words_stop_at_the_next_key() -> None:
    request = parse(GEN, ["x", "negative", "muddy", "low", "quality", "bars", 2])
    assert request.options.negative == "muddy low quality"
    assert request.options.bars == 2
    # The first value is taken whatever it says, even an option key's word.
    assert parse(GEN, ["x", "name", "play", "play", 1]).options == requests.GenerateOptions(
        name="play", play=True
    )


# -- the id a failed generate carries ---------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "job_id"),
    [
        (["x", "id", "a", "bars", 2.5], "a"),
        (["x", "bars", 2.5, "id", 4.0], 4),
        (["x", "negative", "low", "quality", "id", 9, "steps", 0], 9),
        (["x", "id", 5, "foo", 1], 5),
        (["x", "id", 5, "bars"], 5),
        (["", "id", "e"], "e"),
        (["id", 6], 6),  # no prompt, but the id is readable
    ],
)
def test_bad_generate_carries_its_id(args: list[Any], job_id: Any) -> None:
    error = bad(GEN, args)
    assert error.job_id == job_id  # type: ignore[attr-defined]
    assert type(error.job_id) is type(job_id)  # type: ignore[attr-defined]
    assert contract.fail_for(error, GEN).args == [job_id, "bad_request", error.message]


@pytest.mark.parametrize(
    "args", [["x", "bars", 2.5], ["x", "id", 1.5], ["x", "id", ""], ["x", 3, "id", 4]]
)
def test_bad_generate_without_a_readable_id_names_the_address(args: list[Any]) -> None:
    error = bad(GEN, args)
    assert getattr(error, "job_id", None) is None
    assert contract.fail_for(error, GEN).args[0] == GEN


def test_bad_slot_carries_its_id() -> None:
    error = bad("/musicldm/slot", [1, "pads", "id", "s1", "ahead", 99])
    assert error.job_id == "s1"  # type: ignore[attr-defined]


def test_unknown_address() -> None:
    with pytest.raises(UnknownAddress) as info:
        parse("/musicldm/nope", [])
    assert info.value.code == "unknown_address"
    assert "/musicldm/nope" in info.value.message
    assert contract.fail_for(info.value, "/musicldm/nope").args[:2] == [
        "/musicldm/nope",
        "unknown_address",
    ]
    with pytest.raises(UnknownAddress):
        parse("/other/generate", ["x"])


# -- ids -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"), [(3, 3), (3.0, 3), (-1.0, -1), ("3", "3"), ("take a", "take a")]
)
def test_normalize_id(value: Any, expected: Any) -> None:
    got = contract.normalize_id(value)
    assert got == expected
    assert type(got) is type(expected)


@pytest.mark.parametrize("value", [1.5, math.inf, math.nan, "", " ", True, None, b"x", 2**63])
def test_normalize_id_refuses(value: Any) -> None:
    with pytest.raises(BadRequest) as info:
        contract.normalize_id(value)
    assert info.value.key == "id"


def test_int_ids_are_what_an_osc_int_carries() -> None:
    assert contract.normalize_id(2**31 - 1) == contract.ID_MAX == 2**31 - 1
    assert contract.normalize_id(float(-(2**31))) == contract.ID_MIN == -(2**31)
    for value in (2**31, -(2**31) - 1, 2**63 - 1, float(2**31), contract.Int64(2**40)):
        with pytest.raises(BadRequest) as info:
            contract.normalize_id(value)
        assert "from -2147483648 to 2147483647" in info.value.message
    error = bad(GEN, ["x", "id", 2**63 - 1])
    assert getattr(error, "job_id", None) is None  # unreadable: the fail names the address


# -- the other addresses --------------------------------------------------------------------------


def test_cancel() -> None:
    assert parse("/musicldm/cancel", []) == requests.Cancel(None)
    assert parse("/musicldm/cancel", [5.0]) == requests.Cancel(5)
    assert parse("/musicldm/cancel", ["b1"]) == requests.Cancel("b1")
    bad("/musicldm/cancel", [1.5])
    bad("/musicldm/cancel", [1, 2])


def test_slot() -> None:
    request = parse("/musicldm/slot", [3.0, "warm", "pads", "ahead", 2.0, "bars", 4])
    assert request == requests.Slot(3, "warm pads", requests.GenerateOptions(bars=4), ahead=2)
    assert parse("/musicldm/slot", [0, "x"]) == requests.Slot(0, "x")
    assert bad("/musicldm/slot", []).key == "index"
    assert bad("/musicldm/slot", [128, "x"]).key == "index"
    assert bad("/musicldm/slot", ["pads"]).key == "index"
    assert bad("/musicldm/slot", [1]).key == "prompt"
    assert "unknown option 'slot'" in bad("/musicldm/slot", [1, "x", "slot", 2]).message


def test_trigger() -> None:
    request = parse("/musicldm/trigger", [2.0, "quantize", "beat", "gain", 0.5, "loop", 0])
    assert request == requests.Trigger(
        2, requests.PlaybackOptions(quantize="beat", loop=False, gain=0.5)
    )
    assert parse("/musicldm/trigger", [0]) == requests.Trigger(0)
    assert bad("/musicldm/trigger", []).key == "index"
    assert bad("/musicldm/trigger", [0, "bars", 2]).key == "bars"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("clips/kick.wav", ("clips/kick.wav", True)),
        ("/home/me/Music/MusicLDM/a", ("/home/me/Music/MusicLDM/a", True)),
        ("kick.WAV", ("kick.WAV", True)),
        (3, (3, False)),
        (3.0, (3, False)),
        ("b1", ("b1", False)),
    ],
)
def test_play_path_or_id(target: Any, expected: tuple[Any, bool]) -> None:
    request = parse("/musicldm/play", [target, "quantize", "none"])
    assert (request.target, request.is_path) == expected
    assert type(request.target) is type(expected[0])
    assert request.playback == requests.PlaybackOptions(quantize="none")


def test_play_refuses() -> None:
    bad("/musicldm/play", [])
    bad("/musicldm/play", [3.5])
    bad("/musicldm/play", [""])
    bad("/musicldm/play", [3, "gain", 3])


def test_stop() -> None:
    assert parse("/musicldm/stop", []) == requests.Stop(None, None)
    assert parse("/musicldm/stop", [3.0]) == requests.Stop(3, None)
    assert parse("/musicldm/stop", [3, "quantize", "beat"]) == requests.Stop(3, "beat")
    assert parse("/musicldm/stop", ["quantize", "none"]) == requests.Stop(None, "none")
    assert parse("/musicldm/stop", ["bar"]) == requests.Stop(None, "bar")  # the bare shorthand
    assert parse("/musicldm/stop", [1, "Beat"]) == requests.Stop(1, "beat")
    assert bad("/musicldm/stop", ["quantize", "soon"]).key == "quantize"
    assert bad("/musicldm/stop", [200]).key == "index"
    assert bad("/musicldm/stop", [1, "gain", 1]).key == "gain"


def test_tempo() -> None:
    assert parse("/musicldm/tempo", [128]) == requests.Tempo(128.0)
    assert parse("/musicldm/tempo", [92.5]).bpm == 92.5
    assert "from 20" in bad("/musicldm/tempo", [10]).message
    bad("/musicldm/tempo", [])
    bad("/musicldm/tempo", ["fast"])
    bad("/musicldm/tempo", [120, 130])


@pytest.mark.parametrize(
    ("arg", "running"),
    [("start", True), ("stop", False), ("STOP", False), (1, True), (0.0, False), (True, True)],
)
def test_transport(arg: Any, running: bool) -> None:
    assert parse("/musicldm/transport", [arg]) == requests.Transport(running)


@pytest.mark.parametrize("args", [[], ["go"], [2], [0.5], ["start", 1]])
def test_transport_refuses(args: list[Any]) -> None:
    bad("/musicldm/transport", args)


def test_set() -> None:
    assert parse("/musicldm/set", ["bars", 2]) == requests.Set("bars", 2)
    assert parse("/musicldm/set", ["bars", 2.0]).value == 2
    assert parse("/musicldm/set", ["bpm", 128]) == requests.Set("bpm", 128.0)
    assert parse("/musicldm/set", ["loop", 0.0]) == requests.Set("loop", False)
    assert parse("/musicldm/set", ["quantize", "beat"]) == requests.Set("quantize", "beat")
    assert parse("/musicldm/set", ["gain", 1.5]) == requests.Set("gain", 1.5)
    assert parse("/musicldm/set", ["preset", "studio"]) == requests.Set("preset", "studio")
    assert parse("/musicldm/set", ["negative", "low", "quality"]).value == "low quality"
    assert parse("/musicldm/set", ["seconds", 45], max_seconds=60).value == 45.0


def test_set_without_a_value_forgets_the_default() -> None:
    assert parse("/musicldm/set", ["bars"]) == requests.Set("bars", None)
    assert parse("/musicldm/set", ["seed", ""]) == requests.Set("seed", None)
    assert parse("/musicldm/set", ["slot", ""]) == requests.Set("slot", None)
    assert "unknown option 'id'" in bad("/musicldm/set", ["id"]).message


def test_float32_values_at_every_float_bound_are_the_bound() -> None:
    """An OSC ``f`` cannot hold 0.04: a value that rounds to a bound's float32 is the bound."""

    def f32(value: float) -> float:
        return struct.unpack("<f", struct.pack("<f", value))[0]

    assert f32(0.04) < 0.04  # the case reported: seconds 0.04 arrived as 0.03999999910593033
    floats = [
        (address, before, option)
        for table in (GENERATE_OPTIONS, PLAYBACK_OPTIONS)
        for option in table.values()
        if option.limit is not None and not option.limit.integer
        for address, before in [_address_for(table)]
    ]
    assert {o.key for _, _, o in floats} == {
        *("bpm", "seconds", "guidance", "gain"),
        *("strength", "like_weight", "morph"),  # audio in
    }
    for address, before, option in floats:
        limit = option.limit
        assert limit is not None
        for bound in (limit.lo, limit.hi):
            got = _options_of(parse(address, [*before, option.key, f32(bound)]))
            assert got == {option.key: float(bound)}, (option.key, bound)
        for outside in (limit.lo - 0.01, limit.hi + 0.01):
            bad(address, [*before, option.key, f32(outside)])
    # the configured maximum too, where float32 rounds above it
    assert f32(12.3) > 12.3
    assert parse(GEN, ["x", "seconds", f32(12.3)], max_seconds=12.3).options.seconds == 12.3
    # integer options are exact in float32: no tolerance there
    bad(GEN, ["x", "bars", 64.00001])


def test_set_refuses() -> None:
    assert bad("/musicldm/set", ["bars", 100]).message.startswith("bars must be an integer")
    assert "unknown option 'foo'" in bad("/musicldm/set", ["foo", 1]).message
    assert "unknown option 'id'" in bad("/musicldm/set", ["id", 1]).message
    assert "unknown option 'ahead'" in bad("/musicldm/set", ["ahead", 1]).message
    bad("/musicldm/set", [])
    bad("/musicldm/set", [2, "bars"])
    assert "one option at a time" in bad("/musicldm/set", ["bars", 2, "beats", 3]).message


@pytest.mark.parametrize("key", [*GENERATE_OPTIONS, *PLAYBACK_OPTIONS, *contract.DAEMON_KEYS])
def test_get_accepts_every_option_and_daemon_key(key: str) -> None:
    assert parse("/musicldm/get", [key]) == requests.Get(key)


def test_get_refuses() -> None:
    error = bad("/musicldm/get", ["foo"])
    assert "unknown key 'foo'" in error.message
    assert "bpm" in error.message
    bad("/musicldm/get", [])
    bad("/musicldm/get", ["bars", "beats"])
    bad("/musicldm/get", [1])


def test_status_and_ping() -> None:
    assert parse("/musicldm/status", []) == requests.Status()
    bad("/musicldm/status", [1])
    assert parse("/musicldm/ping", []) == requests.Ping(())
    assert parse("/musicldm/ping", [1, 2.5, "x"]) == requests.Ping((1, 2.5, "x"))


def test_notify() -> None:
    assert parse("/musicldm/notify", [1]) == requests.Notify(True, None)
    assert parse("/musicldm/notify", [0.0]) == requests.Notify(False, None)
    assert parse("/musicldm/notify", [1, 9001]) == requests.Notify(True, 9001)
    assert parse("/musicldm/notify", [1.0, 9001.0]) == requests.Notify(True, 9001)
    assert "from 1 to 65535" in bad("/musicldm/notify", [1, 0]).message
    assert bad("/musicldm/notify", [1, 70000]).key == "port"
    bad("/musicldm/notify", [])
    bad("/musicldm/notify", [2])
    bad("/musicldm/notify", ["on"])
    bad("/musicldm/notify", [1, 9001, 3])


def test_requests_are_frozen() -> None:
    request = parse(GEN, ["x", "bars", 2])
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.prompt = "y"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.options.bars = 3  # type: ignore[misc]


# -- the tables ----------------------------------------------------------------------------------

# One valid message per address: a new address fails the test below until it gets one here.
EXAMPLES: dict[str, tuple[list[Any], type]] = {
    "/musicldm/generate": (["x"], requests.Generate),
    "/musicldm/cancel": ([], requests.Cancel),
    "/musicldm/slot": ([0, "x"], requests.Slot),
    "/musicldm/trigger": ([0], requests.Trigger),
    "/musicldm/play": ([1], requests.Play),
    "/musicldm/stop": ([], requests.Stop),
    "/musicldm/morph": ([0, 1, 4], requests.Morph),
    "/musicldm/tempo": ([120], requests.Tempo),
    "/musicldm/transport": (["start"], requests.Transport),
    "/musicldm/set": (["bars", 1], requests.Set),
    "/musicldm/get": (["bars"], requests.Get),
    "/musicldm/status": ([], requests.Status),
    "/musicldm/ping": ([], requests.Ping),
    "/musicldm/notify": ([1], requests.Notify),
}


def test_every_address_parses_to_its_request_type() -> None:
    assert set(EXAMPLES) == set(ADDRESSES) == set(PARSERS)
    for address, (args, kind) in EXAMPLES.items():
        request = parse(address, args)
        assert type(request) is kind
        assert address.rsplit("/", 1)[1] == kind.__name__.lower()
        assert ADDRESSES[address].description


def test_every_request_type_has_a_handler() -> None:
    from daemon.app.handlers import Handlers

    handlers = Handlers(None)  # type: ignore[arg-type]  # the table only, no app needed
    assert set(handlers.table) == {kind for _, kind in EXAMPLES.values()}


def test_reply_table() -> None:
    assert set(REPLIES) == {
        f"/musicldm/{name}"
        for name in [
            *("queued", "started", "progress", "done", "fail", "playing", "stopped", "late"),
            *("value", "status.reply", "pong"),
        ]
    }
    # the first six are what patches read; the grid fit was added after them, never before
    assert REPLIES["/musicldm/done"].arguments == (
        *("id", "path", "seconds", "bpm", "bars", "seed"),
        *("detected_bpm", "confidence", "ratio", "grid_error_ms", "key"),
    )
    assert REPLIES["/musicldm/fail"].arguments == ("id", "code", "message")


def test_fail_codes_cover_the_error_tree() -> None:
    classes = [
        getattr(module, name)
        for module in (core_errors, daemon_errors)
        for name in module.__all__
        if name != "MusicLDMError"
    ]
    codes = {cls.code for cls in classes if issubclass(cls, MusicLDMError)}
    assert codes <= set(FAIL_CODES)
    assert len(set(FAIL_CODES)) == len(FAIL_CODES) == 9


def test_reply_helpers() -> None:
    assert contract.fail(3, "queue_full", "full").args == [3, "queue_full", "full"]
    assert contract.queued("a", 0).args == ["a", 0]
    assert contract.progress(1, 5, 20).args == [1, 5, 20]
    done = contract.done(1, Path("/o/a.wav"), seconds=2, bpm=120, bars=1, seed=7)
    assert done.address == "/musicldm/done"
    assert done.args == [1, "/o/a.wav", 2.0, 120.0, 1, 7, 0.0, 0.0, 1.0, -1.0, ""]
    assert [type(v) for v in done.args] == [int, str, float, float, int, int] + [float] * 4 + [str]
    grid = {
        "grid": "stretch",
        "ratio": 1.157,
        "grid_error_ms": 1.5,
        "detected": {"tempo_bpm": 103.7, "confidence": 0.91, "key": "Am"},
    }
    fit = contract.done(1, "/o/a.wav", seconds=2, bpm=120, bars=1, seed=7, grid=grid).args[6:]
    assert fit == [103.7, 0.91, 1.157, 1.5, "Am"]
    # a file's settings from an older daemon, or a report without a beat
    unfit = {"grid": "stretch", "ratio": 1.0, "grid_error_ms": None, "detected": {"key": None}}
    for settings in (unfit, "junk", {"detected": "junk"}):
        args = contract.done(1, "/a.wav", seconds=2, bpm=120, bars=1, seed=7, grid=settings).args
        assert args[6:] == [0.0, 0.0, 1.0, contract.NO_GRID_ERROR_MS, ""]


def test_pong_keeps_every_argument_type() -> None:
    args = [1, 2.5, contract.Double(0.1), "s", True, False, None, b"ab", contract.Int64(5)]
    args += [2**40, contract.Rgba(0xFF0000FF), (0, 144, 60, 100), [1, [contract.Double(1.0)]]]
    tags = [arg.tag for arg in contract.pong(args).args]
    assert tags == ["i", "f", "d", "s", "T", "F", "N", "b", "h", "h", "r", "m", ["i", ["d"]]]
    assert [arg.value for arg in contract.pong(["x", 3]).args] == ["x", 3]
    assert contract.pong([object()]).args[0].tag == "s"  # what OSC cannot write: as text


def test_check_option_outside_a_message() -> None:
    assert contract.check_option("bars", 4.0) == 4
    assert contract.check_option("quantize", "BAR") == "bar"
    with pytest.raises(BadRequest):
        contract.check_option("bars", 0)
    with pytest.raises(BadRequest):
        contract.check_option("nope", 1)


def test_junk_never_escapes_as_another_exception() -> None:
    """Whatever a client sends, parse returns a request or raises a coded error."""
    rng = random.Random(1234)
    atoms: list[Any] = [0, 1, -1, 2.5, 1e30, math.nan, math.inf, True, False, None, b"\x00"]
    atoms += ["", " ", "x", "bars", "id", "negative", "name", "quantize", "start", "a/b.wav"]
    for _ in range(3000):
        address = rng.choice([*ADDRESSES, "/musicldm/x"])
        args = [rng.choice(atoms) for _ in range(rng.randrange(6))]
        try:
            parse(address, args)
        except MusicLDMError as exc:
            assert exc.code in FAIL_CODES
            assert exc.message


# -- docs/osc.md against the tables ------------------------------------------------------------


def _doc_row(text: str, cell: str) -> str:
    """The first table row of docs/osc.md whose first cell is ``cell``."""
    match = re.search(rf"^\| {re.escape(cell)} \|.*$", text, flags=re.M)
    assert match is not None, f"docs/osc.md has no table row for {cell}"
    return match.group(0)


def test_docs_name_every_address_reply_option_and_code() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for address in ADDRESSES:
        _doc_row(text, f"`{address}`")
    for address, reply in REPLIES.items():
        row = _doc_row(text, f"`{address}`")
        if not reply.repeats:
            assert f"`{' '.join(reply.arguments)}`" in row, address
    for table in (GENERATE_OPTIONS, PLAYBACK_OPTIONS, SLOT_OPTIONS):
        for key, option in table.items():
            row = _doc_row(text, f"`{key}`")
            if option.type_name == "0/1":
                assert "0/1" in row, (key, row)
            elif option.limit is not None:
                lo, hi = _number_text(option.limit.lo), _number_text(option.limit.hi)
                assert f"{lo}–{hi}" in row, (key, row)
            for choice in option.choices:
                assert f"`{choice}`" in row, (key, choice)
    for code in FAIL_CODES:
        assert f"`{code}`" in text, code


def _doc_option_tables(text: str) -> list[dict[str, list[str]]]:
    """Every option table of docs/osc.md (header ``| key | type | default | …``), in order:
    key → its cells."""
    tables: list[dict[str, list[str]]] = []
    rows: dict[str, list[str]] | None = None
    for line in text.splitlines():
        if line.startswith("| key | type | default |"):
            rows = {}
            tables.append(rows)
        elif rows is not None and line.startswith("| `"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            rows[cells[0].strip("`")] = cells
        elif rows is not None and not line.startswith("| ---"):
            rows = None
    return tables


def _default_text(value: Any) -> str:
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def test_docs_option_tables_match_types_and_built_in_defaults() -> None:
    """Each option table of docs/osc.md has this contract's keys, types and defaults."""
    tables = _doc_option_tables(DOCS.read_text(encoding="utf-8"))
    expected = [
        GENERATE_OPTIONS,
        {k: o for k, o in SLOT_OPTIONS.items() if k not in GENERATE_OPTIONS},
        PLAYBACK_OPTIONS,
    ]
    assert [list(t) for t in tables] == [list(t) for t in expected]
    checked = 0
    for doc, table in zip(tables, expected, strict=True):
        for key, option in table.items():
            _, type_cell, default_cell, _ = doc[key]
            assert option.type_name in type_cell, (key, type_cell)
            if option.value is not None:
                assert default_cell.strip("`") == _default_text(option.value), (key, default_cell)
                checked += 1
    assert checked >= 8


def test_docs_list_the_option_words() -> None:
    text = DOCS.read_text(encoding="utf-8")
    match = re.search(r"^  `((?:[a-z_]+ )+[a-z_]+)`$", text, flags=re.M)  # like_weight
    assert match is not None, "docs/osc.md lists no option words"
    assert match.group(1).split() == list(OPTION_WORDS)


def test_docs_name_the_play_voices() -> None:
    from daemon.live.slots import PLAY_SLOTS, SLOTS

    text = DOCS.read_text(encoding="utf-8")
    assert f"play voice `index` ({SLOTS}–{SLOTS + PLAY_SLOTS - 1})" in text
    assert f"{PLAY_SLOTS} play voices, numbered {SLOTS}–{SLOTS + PLAY_SLOTS - 1}" in text
    assert f"slot `index` (0–{SLOTS - 1})" in text
