"""The example patches for Max (``clients/max``) and Pure Data (``clients/pd``).

Max cannot run here, so its patchers are checked as data: valid patcher JSON, only real Max
object classes with their true inlet and outlet counts (a hand-kept table, below), every patch
cord between ports that exist, the daemon's default ports, and every OSC message the patch can
send accepted by the daemon's own parser. The Pd patches get the same checks against a table of
Pd vanilla classes, and the main one also runs headless in a real ``pd`` against a real daemon
with the tiny model: a generate sent into the patch must come back as a file that ``soundfiler``
reads with the right number of frames, and its vary, extend and evolve controls must make a
variation and a continuation of the clip it just loaded and set the daemon's evolve.
"""

from __future__ import annotations

import itertools
import json
import queue
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import soundfile as sf
from pythonosc.osc_packet import OscPacket

from daemon.config import load_config
from daemon.wire.contract import ADDRESSES, GENERATE_OPTIONS, REPLIES
from daemon.wire.requests import parse
from tests.support import daemon_config, receive

CLIENTS = Path(__file__).resolve().parent.parent / "clients"
MAXPAT = CLIENTS / "max" / "musicldm.maxpat"
MAXHELP = CLIENTS / "max" / "musicldm.maxhelp"
PD_MAIN = CLIENTS / "pd" / "musicldm.pd"
PD_HELP = CLIENTS / "pd" / "musicldm-help.pd"

DEFAULTS = load_config(None, {})
DAEMON_HOST, DAEMON_PORT = DEFAULTS.host, DEFAULTS.port
REPLY_HOST, REPLY_PORT = DEFAULTS.reply_to[0]

Counts = Callable[[list[str]], tuple[int, int]]
"""(inlets, outlets) of an object class, given its creation arguments."""


def _fixed(inlets: int, outlets: int) -> Counts:
    return lambda args: (inlets, outlets)


# -- Max -------------------------------------------------------------------------------------------

MAX_OBJECTS: dict[str, Counts] = {
    # Max 8/9 object boxes (maxclass "newobj"), as Max itself saves their ports
    "udpsend": _fixed(1, 0),
    "udpreceive": _fixed(1, 1),
    "route": lambda args: (len(args) + 1, len(args) + 1),  # a right inlet per argument
    "prepend": _fixed(1, 1),
    "append": _fixed(1, 1),
    "tosymbol": _fixed(1, 1),
    "fromsymbol": _fixed(1, 1),
    "t": lambda args: (1, len(args)),
    "trigger": lambda args: (1, len(args)),
    "pack": lambda args: (max(2, len(args)), 1),
    "pak": lambda args: (max(2, len(args)), 1),
    "unpack": lambda args: (1, max(2, len(args))),
    "zl": _fixed(2, 2),
    "loadbang": _fixed(1, 1),
    "loadmess": _fixed(1, 1),
    "gate": lambda args: (2, int(args[0]) if args else 1),
    "random": _fixed(2, 1),
    "print": _fixed(1, 0),
    "int": _fixed(2, 1),
    "i": _fixed(2, 1),
    "float": _fixed(2, 1),
    "f": _fixed(2, 1),
    "+": _fixed(2, 1),
    "-": _fixed(2, 1),
    "*": _fixed(2, 1),
    "/": _fixed(2, 1),
    "metro": _fixed(2, 1),
    "delay": _fixed(2, 1),
    "del": _fixed(2, 1),
    "buffer~": _fixed(1, 2),
    "groove~": lambda args: (3, (int(args[1]) if len(args) > 1 else 1) + 1),  # + sync outlet
    "sig~": _fixed(1, 1),
    "*~": _fixed(2, 1),
    "line~": _fixed(2, 2),
    "dac~": lambda args: (max(1, len(args)) if args else 2, 0),
}

MAX_UI: dict[str, tuple[int, int]] = {
    # user-interface boxes: maxclass -> (inlets, outlets)
    "message": (2, 1),
    "comment": (1, 0),
    "number": (1, 2),
    "flonum": (1, 2),
    "toggle": (1, 1),
    "button": (1, 1),
    "slider": (1, 1),
    "textedit": (1, 4),
    "ezdac~": (2, 0),
    "panel": (1, 0),
}


def _max_boxes(path: Path) -> dict[str, dict[str, Any]]:
    patcher = json.loads(path.read_text(encoding="utf-8"))["patcher"]
    return {entry["box"]["id"]: entry["box"] for entry in patcher["boxes"]}


def _max_lines(path: Path) -> list[tuple[str, int, str, int]]:
    patcher = json.loads(path.read_text(encoding="utf-8"))["patcher"]
    lines = []
    for entry in patcher["lines"]:
        line = entry["patchline"]
        lines.append((line["source"][0], line["source"][1], *line["destination"]))
    return lines


def _max_atoms(text: str) -> list[Any]:
    """A Max message as Max sends it: "quoted text" is one symbol, 3 an int, 3. a float."""
    atoms: list[Any] = []
    for quoted, word in re.findall(r'"([^"]*)"|(\S+)', text):
        if quoted or not word:
            atoms.append(quoted)
        elif re.fullmatch(r"-?\d+", word):
            atoms.append(int(word))
        elif re.fullmatch(r"-?\d*\.\d*", word) and word not in (".", "-."):
            atoms.append(float(word))
        else:
            atoms.append(word)
    return atoms


def _newobj(boxes: dict[str, dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [b for b in boxes.values() if b["maxclass"] == "newobj" and b["text"].split()[0] == name]


@pytest.mark.parametrize("path", [MAXPAT, MAXHELP], ids=lambda p: p.name)
def test_max_files_are_patcher_json(path):
    document = json.loads(path.read_text(encoding="utf-8"))
    patcher = document["patcher"]
    assert patcher["fileversion"] == 1
    assert {"major", "minor", "revision"} <= set(patcher["appversion"])
    assert len(patcher["rect"]) == 4
    ids = [entry["box"]["id"] for entry in patcher["boxes"]]
    assert len(ids) == len(set(ids)), "box ids must be unique"
    for entry in patcher["boxes"]:
        box = entry["box"]
        assert re.fullmatch(r"obj-\d+", box["id"])
        assert len(box["patching_rect"]) == 4
        assert box["numoutlets"] == len(box.get("outlettype", [])), box
    assert all(set(entry) == {"patchline"} for entry in patcher["lines"])


@pytest.mark.parametrize("path", [MAXPAT, MAXHELP], ids=lambda p: p.name)
def test_max_boxes_are_real_objects_with_their_true_ports(path):
    for box in _max_boxes(path).values():
        if box["maxclass"] == "newobj":
            name, *args = box["text"].split()
            assert name in MAX_OBJECTS, f"{name!r} is not in the table of Max objects"
            expected = MAX_OBJECTS[name](args)
        else:
            assert box["maxclass"] in MAX_UI, f"unknown maxclass {box['maxclass']!r}"
            expected = MAX_UI[box["maxclass"]]
        assert (box["numinlets"], box["numoutlets"]) == expected, box


@pytest.mark.parametrize("path", [MAXPAT, MAXHELP], ids=lambda p: p.name)
def test_max_patch_cords_join_existing_ports(path):
    boxes = _max_boxes(path)
    lines = _max_lines(path)
    assert lines
    for source, outlet, destination, inlet in lines:
        assert source in boxes and destination in boxes
        assert 0 <= outlet < boxes[source]["numoutlets"], (source, outlet)
        assert 0 <= inlet < boxes[destination]["numinlets"], (destination, inlet)
    assert len(set(lines)) == len(lines), "a cord is drawn twice"


def test_max_patch_talks_to_the_daemons_default_ports():
    boxes = _max_boxes(MAXPAT)
    assert [b["text"] for b in _newobj(boxes, "udpsend")] == [
        f"udpsend {DAEMON_HOST} {DAEMON_PORT}"
    ]
    assert REPLY_HOST == "127.0.0.1"
    assert [b["text"] for b in _newobj(boxes, "udpreceive")] == [f"udpreceive {REPLY_PORT}"]
    help_boxes = _max_boxes(MAXHELP)
    assert {b["text"] for b in _newobj(help_boxes, "udpsend")} == {
        f"udpsend {DAEMON_HOST} {DAEMON_PORT}"
    }
    # the help patch listens on a port of its own, registered with /musicldm/notify
    (listener,) = _newobj(help_boxes, "udpreceive")
    help_port = int(listener["text"].split()[1])
    assert help_port != REPLY_PORT
    texts = {b["text"] for b in help_boxes.values() if b["maxclass"] == "message"}
    assert f"/musicldm/notify 1 {help_port}" in texts
    assert f"/musicldm/notify 0 {help_port}" in texts


def _reachable(lines: list[tuple[str, int, str, int]], start: str) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        here = todo.pop()
        for source, _, destination, _ in lines:
            if source == here and destination not in seen:
                seen.add(destination)
                todo.append(destination)
    return seen


def test_max_patch_is_wired_from_prompt_to_udpsend_and_from_udpreceive_to_the_speaker():
    boxes = _max_boxes(MAXPAT)
    lines = _max_lines(MAXPAT)
    (prompt,) = [b["id"] for b in boxes.values() if b["maxclass"] == "textedit"]
    (send,) = [b["id"] for b in _newobj(boxes, "udpsend")]
    (receive,) = [b["id"] for b in _newobj(boxes, "udpreceive")]
    (buffer,) = _newobj(boxes, "buffer~")
    (groove,) = _newobj(boxes, "groove~")
    (dac,) = [b["id"] for b in boxes.values() if b["maxclass"] in ("ezdac~", "dac~")]
    assert send in _reachable(lines, prompt)
    downstream = _reachable(lines, receive)
    assert buffer["id"] in downstream and groove["id"] in downstream
    assert dac in _reachable(lines, groove["id"])
    # groove~ plays the buffer that /musicldm/done loads
    assert buffer["text"].split()[1] == groove["text"].split()[1]
    slider = [b["id"] for b in boxes.values() if b["maxclass"] == "slider"]
    assert slider and slider[0] in downstream, "the progress bar is fed by the replies"


# what the number box feeding a message box's $1 sends (the tempo box, the evolve amount box)
_MAX_DOLLAR_SAMPLES = {"/musicldm/tempo $1": "120.", "/musicldm/set evolve $1": "0.3"}


def test_max_messages_are_requests_the_daemon_accepts():
    sent = 0
    for path in (MAXPAT, MAXHELP):
        for box in _max_boxes(path).values():
            if box["maxclass"] != "message" or not box["text"].startswith("/musicldm/"):
                continue
            text = box["text"]
            if "$1" in text:
                text = text.replace("$1", _MAX_DOLLAR_SAMPLES[text])
            address, *args = _max_atoms(text)
            assert address in ADDRESSES, address
            parse(address, args)  # raises on anything the daemon would refuse
            sent += 1
    assert sent >= 10


def test_max_generate_message_is_built_as_the_daemon_reads_it():
    boxes = _max_boxes(MAXPAT)
    (prompt,) = [b for b in boxes.values() if b["maxclass"] == "textedit"]
    (pak,) = _newobj(boxes, "pak")
    (prepend,) = [b for b in _newobj(boxes, "prepend") if "/musicldm/" in b["text"]]
    (options,) = [b for b in boxes.values() if b.get("text") == "bars $1 bpm $2 seed $3"]
    defaults = _max_atoms(" ".join(pak["text"].split()[1:]))
    filled = options["text"]
    for k, value in enumerate(defaults, start=1):
        filled = filled.replace(f"${k}", str(value))
    address = prepend["text"].split()[1]
    # the textedit's text goes out as one symbol (outputmode 1, then tosymbol)
    assert prompt["outputmode"] == 1
    args = [prompt["text"], *_max_atoms(filled)]
    request = parse(address, args)
    assert request.prompt == prompt["text"]
    assert (request.options.bars, request.options.bpm) == (1, 120.0)


def _max_cords_from(
    lines: list[tuple[str, int, str, int]], source: str, outlet: int
) -> set[tuple[str, int]]:
    return {(b, inlet) for a, o, b, inlet in lines if (a, o) == (source, outlet)}


def _max_cords_into(
    lines: list[tuple[str, int, str, int]], target: str, inlet: int
) -> set[tuple[str, int]]:
    return {(a, outlet) for a, outlet, b, i in lines if (b, i) == (target, inlet)}


def _only(cords: Collection[tuple[str, int]], inlet: int) -> str:
    """The one box a set of cords reaches, at that inlet (or comes from, at that outlet)."""
    assert len(cords) == 1, cords
    ((box, port),) = cords
    assert port == inlet, cords
    return str(box)


def _max_loadmess_value(boxes: dict[str, dict[str, Any]], lines: list, box_id: str) -> Any:
    (source,) = [
        a
        for a, _ in _max_cords_into(lines, box_id, 0)
        if boxes[a].get("text", "").startswith("loadmess")
    ]
    return _max_atoms(boxes[source]["text"].split(maxsplit=1)[1])[0]


def test_max_vary_and_extend_start_from_the_last_clip_loaded_with_the_last_prompt():
    """vary and extend fire a [t b b b b] right to left: the suffix's last part (strength from
    its box, or extend from the bars box), then the stored path of the last /musicldm/done
    (the one buffer~ loaded) behind `from`, then the seed as a generate draws it, then the
    stored prompt, which goes into the generate's own [zl join] with bars, bpm and seed."""
    boxes = _max_boxes(MAXPAT)
    lines = _max_lines(MAXPAT)
    (generate_prepend,) = [b["id"] for b in _newobj(boxes, "prepend") if "/musicldm/" in b["text"]]
    generate_join = _only(_max_cords_into(lines, generate_prepend, 0), 0)
    (path_reg,) = [b["id"] for b in _newobj(boxes, "prepend") if b["text"] == "prepend replace"]
    (done_path,) = _max_cords_into(lines, path_reg, 0)
    (tosymbol,) = [b["id"] for b in _newobj(boxes, "tosymbol")]
    (seed_gate,) = [
        b["id"]
        for b in _newobj(boxes, "gate")
        if any(boxes[d]["text"].startswith("random") for d, _ in _max_cords_from(lines, b["id"], 0))
    ]
    (options,) = [b for b in boxes.values() if b.get("text") == "bars $1 bpm $2 seed $3"]
    pak = _newobj(boxes, "pak")[0]
    filled = options["text"]
    for k, value in enumerate(_max_atoms(" ".join(pak["text"].split()[1:])), start=1):
        filled = filled.replace(f"${k}", str(value))
    (prompt,) = [b for b in boxes.values() if b["maxclass"] == "textedit"]
    triggers = [b["id"] for b in _newobj(boxes, "t") if b["text"] == "t b b b b"]
    assert len(triggers) == 2
    suffixes = {}
    for trigger in triggers:
        (button,) = _max_cords_into(lines, trigger, 0)
        assert boxes[button[0]]["maxclass"] == "button"
        first, path, seed, last = (
            _max_cords_from(lines, trigger, outlet) for outlet in (3, 2, 1, 0)
        )
        assert seed == {(seed_gate, 1)}  # a new seed while 'new seed each time' is on
        store = _only(path, 0)
        assert boxes[store]["text"] == "zl reg"
        assert _max_cords_into(lines, store, 1) == {done_path}  # the path buffer~ loaded
        from_ = _only(_max_cords_from(lines, store, 0), 0)
        assert boxes[from_]["text"] == "prepend from"
        suffix_join = _only(_max_cords_from(lines, from_, 0), 0)
        number = _only(first, 0)
        word = _only([c for c in _max_cords_from(lines, number, 0) if c[0] != pak["id"]], 0)
        assert (word, 0) in _max_cords_into(lines, suffix_join, 1)
        prompt_reg = _only(last, 0)
        assert _max_cords_into(lines, prompt_reg, 1) == {(tosymbol, 0)}
        head_join = _only(_max_cords_from(lines, prompt_reg, 0), 0)
        assert _max_cords_into(lines, head_join, 1) == {(suffix_join, 0)}
        assert _max_cords_from(lines, head_join, 0) == {(generate_join, 0)}
        value = _max_loadmess_value(boxes, lines, number)  # strength 0.5, or bars 1
        suffixes[boxes[word]["text"].split()[0]] = boxes[word]["text"].replace("$1", str(value))
    assert set(suffixes) == {"strength", "extend"}
    clip = "/home/me/Music/MusicLDM/20261125-091120_dark-techno-drums_120bpm_1bars_s7.wav"
    for mode, suffix in suffixes.items():
        args = [prompt["text"], "from", clip, *_max_atoms(suffix), *_max_atoms(filled)]
        request = parse("/musicldm/generate", args)
        assert request.prompt == prompt["text"]
        assert request.options.get("from") == clip
        if mode == "strength":
            assert request.options.get("strength") == 0.5  # the strength box's default
        else:
            assert request.options.get("extend") == 1  # the bars box
        assert (request.options.bars, request.options.bpm) == (1, 120.0)


def test_max_evolve_toggle_scales_the_amount_and_morphs_name_the_patch_slots():
    boxes = _max_boxes(MAXPAT)
    lines = _max_lines(MAXPAT)
    (send,) = [b["id"] for b in _newobj(boxes, "udpsend")]
    (evolve,) = [b for b in boxes.values() if b.get("text") == "/musicldm/set evolve $1"]
    assert (send, 0) in _max_cords_from(lines, evolve["id"], 0)
    (times,) = _max_cords_into(lines, evolve["id"], 0)
    assert boxes[times[0]]["text"] == "* 0."
    toggles = [b["id"] for b in boxes.values() if b["maxclass"] == "toggle"]
    (toggle,) = [t for t in toggles if times[0] in _reachable(lines, t)]
    # the amount reaches the multiplier's cold inlet, and its left only through the gate the
    # toggle opens: nothing is sent at load, when loadmess sets the amount
    (amount,) = [
        b["id"]
        for b in boxes.values()
        if b["maxclass"] == "flonum" and times[0] in _reachable(lines, b["id"])
    ]
    assert 0 < _max_loadmess_value(boxes, lines, amount) <= 1
    split = _only(_max_cords_from(lines, amount, 0), 0)
    assert (times[0], 1) in _max_cords_from(lines, split, 1)
    gate = _only(_max_cords_from(lines, split, 0), 1)
    assert boxes[gate]["text"] == "gate"
    toggle_split = _only(_max_cords_from(lines, toggle, 0), 0)
    assert _max_cords_from(lines, toggle_split, 1) == {(gate, 0)}
    assert _max_cords_from(lines, toggle_split, 0) == {(times[0], 0)}
    defined = {
        parse("/musicldm/slot", _max_atoms(b["text"])[1:]).index
        for b in boxes.values()
        if b["maxclass"] == "message" and b["text"].startswith("/musicldm/slot ")
    }
    morphs = [b for b in boxes.values() if b.get("text", "").startswith("/musicldm/morph ")]
    assert len(morphs) == 2
    for box in morphs:
        assert (send, 0) in _max_cords_from(lines, box["id"], 0)
        address, *args = _max_atoms(box["text"])
        request = parse(address, args)
        assert {request.source, request.target} <= defined


def test_max_routes_name_real_replies():
    for path in (MAXPAT, MAXHELP):
        for box in _newobj(_max_boxes(path), "route"):
            for word in box["text"].split()[1:]:
                if word.startswith("/"):
                    assert word in REPLIES, word


# -- Pure Data -------------------------------------------------------------------------------------


def _iemgui(send_index: int) -> Counts:
    """IEM GUIs hide their inlet when they have a receive name and their outlet when they have a
    send name; a cord to a hidden port would be invisible, so it counts as missing here."""

    def counts(args: list[str]) -> tuple[int, int]:
        send, receive = args[send_index], args[send_index + 1]
        return (0 if receive != "empty" else 1, 0 if send != "empty" else 1)

    return counts


def _list(args: list[str]) -> tuple[int, int]:
    kind = args[0] if args else "append"
    return {
        "append": (2, 1),
        "prepend": (2, 1),
        "trim": (1, 1),
        "split": (2, 3),
        "fromsymbol": (1, 1),
        "tosymbol": (1, 1),
        "length": (1, 1),
    }[kind]


PD_VANILLA: dict[str, Counts] = {
    # Pd vanilla 0.51+ classes (counts checked with pd 0.53 itself)
    "loadbang": _fixed(0, 1),
    "netsend": _fixed(1, 2),
    "netreceive": lambda args: (1, 1 if "-u" in args else 2),
    "oscformat": _fixed(1, 1),
    "oscparse": _fixed(1, 1),
    "list": _list,
    "route": lambda args: (2 if len(args) == 1 else 1, len(args) + 1),
    "select": lambda args: (2 if len(args) <= 1 else 1, max(1, len(args)) + 1),
    "sel": lambda args: (2 if len(args) <= 1 else 1, max(1, len(args)) + 1),
    "t": lambda args: (1, len(args)),
    "trigger": lambda args: (1, len(args)),
    "pack": lambda args: (max(2, len(args)), 1),
    "unpack": lambda args: (1, max(2, len(args))),
    "f": _fixed(2, 1),
    "float": _fixed(2, 1),
    "i": _fixed(2, 1),
    "int": _fixed(2, 1),
    "+": _fixed(2, 1),
    "-": _fixed(2, 1),
    "*": _fixed(2, 1),
    "/": _fixed(2, 1),
    "mod": _fixed(2, 1),
    "wrap": _fixed(1, 1),
    "moses": _fixed(2, 2),
    "spigot": _fixed(2, 1),
    "random": _fixed(2, 1),
    "realtime": _fixed(2, 1),
    "metro": _fixed(2, 1),
    "delay": _fixed(2, 1),
    "makefilename": _fixed(1, 1),
    "symbol": _fixed(2, 1),
    "print": _fixed(1, 0),
    "s": lambda args: (1 if args else 2, 0),
    "send": lambda args: (1 if args else 2, 0),
    "r": _fixed(0, 1),
    "receive": _fixed(0, 1),
    "array": _fixed(1, 1),  # array define NAME
    "soundfiler": _fixed(1, 2),
    "phasor~": _fixed(2, 1),
    "*~": _fixed(2, 1),
    "tabread4~": _fixed(2, 1),
    "tabread~": _fixed(1, 1),
    "tabplay~": _fixed(1, 2),
    "line~": _fixed(2, 1),
    "dac~": lambda args: (max(1, len(args)) if args else 2, 0),
    "hsl": _iemgui(6),
    "vsl": _iemgui(6),
    "tgl": _iemgui(2),
    "bng": _iemgui(4),
}


@dataclass
class PdBox:
    """One box of a Pd canvas: its kind (obj, msg, text, floatatom) and its words after x y."""

    kind: str
    words: list[str]
    subpatch: PdCanvas | None = None


@dataclass
class PdCanvas:
    boxes: list[PdBox] = field(default_factory=list)
    connections: list[tuple[int, int, int, int]] = field(default_factory=list)

    def walk(self) -> Iterator[PdCanvas]:
        yield self
        for box in self.boxes:
            if box.subpatch is not None:
                yield from box.subpatch.walk()


def _pd_records(text: str) -> list[list[str]]:
    """The file's records (ended by an unescaped ';'), as words; Pd may wrap long lines."""
    records = re.split(r"(?<!\\);[ \t]*\r?\n", text)
    return [record.split() for record in records if record.strip()]


def parse_pd(text: str) -> PdCanvas:
    """A Pd file as nested canvases; a box's width suffix (", f 60") is dropped."""
    stack: list[PdCanvas] = []
    root: PdCanvas | None = None
    for words in _pd_records(text):
        if words[:2] == ["#N", "canvas"]:
            canvas = PdCanvas()
            root = root or canvas
            stack.append(canvas)
        elif words[:2] == ["#X", "restore"]:
            sub = stack.pop()
            stack[-1].boxes.append(PdBox("obj", words[4:], sub))
        elif words[0] == "#X" and words[1] in ("obj", "msg", "text", "floatatom", "symbolatom"):
            body = re.sub(r"(?<!\\),\s*f\s+\d+$", "", " ".join(words[4:])).split()
            stack[-1].boxes.append(PdBox(words[1], body))
        elif words[:2] == ["#X", "connect"]:
            a, o, b, i = (int(w) for w in words[2:6])
            stack[-1].connections.append((a, o, b, i))
    assert root is not None and not stack[1:], "unbalanced canvases"
    return root


def _pd_counts(box: PdBox) -> tuple[int, int]:
    if box.kind == "text":
        return (0, 0)
    if box.kind == "msg":
        return (1, 1)
    if box.kind in ("floatatom", "symbolatom"):
        receive, send = box.words[5], box.words[6]  # hidden ports, as for IEM GUIs
        return (0 if receive != "-" else 1, 0 if send != "-" else 1)
    if box.subpatch is not None:
        names = [b.words[0] for b in box.subpatch.boxes if b.kind == "obj" and b.words]
        return (
            sum(n in ("inlet", "inlet~") for n in names),
            sum(n in ("outlet", "outlet~") for n in names),
        )
    name, *args = box.words
    assert name in PD_VANILLA, f"[{name}] is not in the table of Pd vanilla classes"
    return PD_VANILLA[name](args)


def _pd_float_or_symbol(word: str) -> Any:
    try:
        return float(word)  # Pd sends every number as a float
    except ValueError:
        return word


def _pd_sends(root: PdCanvas) -> dict[str, list[list[str]]]:
    """Every message each receive name can get from a box: [msg( -> [s name], and '; name ...'
    lines inside message boxes."""
    sent: dict[str, list[list[str]]] = {}
    for canvas in root.walk():
        for a, _, b, _ in canvas.connections:
            source, target = canvas.boxes[a], canvas.boxes[b]
            to_send = target.kind == "obj" and target.words[0] in ("s", "send")
            if to_send and source.kind == "msg" and source.words[:1] != ["\\;"]:
                sent.setdefault(target.words[1], []).append(source.words)
        for box in canvas.boxes:
            if box.kind == "msg" and box.words and box.words[0] == "\\;":
                for line in " ".join(box.words[1:]).split("\\;"):
                    name, *message = line.split()
                    sent.setdefault(name, []).append(message)
    return sent


@pytest.mark.parametrize("path", [PD_MAIN, PD_HELP], ids=lambda p: p.name)
def test_pd_objects_are_vanilla_and_cords_join_existing_ports(path):
    root = parse_pd(path.read_text(encoding="utf-8"))
    cords = 0
    for canvas in root.walk():
        counts = [_pd_counts(box) for box in canvas.boxes]
        for a, outlet, b, inlet in canvas.connections:
            assert 0 <= a < len(canvas.boxes) and 0 <= b < len(canvas.boxes)
            assert outlet < counts[a][1], (canvas.boxes[a].words, outlet)
            assert inlet < counts[b][0], (canvas.boxes[b].words, inlet)
            cords += 1
        assert len(set(canvas.connections)) == len(canvas.connections)
    assert cords > 10


def _objects(root: PdCanvas, name: str) -> list[PdBox]:
    return [
        box
        for canvas in root.walk()
        for box in canvas.boxes
        if box.kind == "obj" and box.words and box.words[0] == name
    ]


def test_pd_patch_talks_to_the_daemons_default_ports():
    text = PD_MAIN.read_text(encoding="utf-8")
    root = parse_pd(text)
    assert [b.words[1:] for b in _objects(root, "netreceive")] == [["-u", "-b", str(REPLY_PORT)]]
    assert [b.words[1:] for b in _objects(root, "netsend")] == [["-u", "-b"]]
    connects = [
        box.words
        for canvas in root.walk()
        for box in canvas.boxes
        if box.kind == "msg" and box.words[:1] == ["connect"]
    ]
    assert connects == [["connect", DAEMON_HOST, str(DAEMON_PORT)]]
    help_root = parse_pd(PD_HELP.read_text(encoding="utf-8"))
    (listener,) = _objects(help_root, "netreceive")
    assert listener.words[-1] != str(REPLY_PORT)  # the help patch registers its own port


_IEMGUI_SEND_AT = {"hsl": 6, "vsl": 6, "tgl": 2, "bng": 4}


def _pd_names(root: PdCanvas) -> tuple[set[str], set[str]]:
    """(names something sends to, names something receives) in a patch."""
    senders, receivers = set(_pd_sends(root)), set()
    for canvas in root.walk():
        for box in canvas.boxes:
            if box.kind == "floatatom":
                receivers.add(box.words[5])
                senders.add(box.words[6])
            elif box.kind == "obj" and box.words:
                name, args = box.words[0], box.words[1:]
                if name in ("r", "receive"):
                    receivers.add(args[0])
                elif name in ("s", "send"):
                    senders.add(args[0])
                elif name in _IEMGUI_SEND_AT:
                    senders.add(args[_IEMGUI_SEND_AT[name]])
                    receivers.add(args[_IEMGUI_SEND_AT[name] + 1])
    return senders - {"-", "empty", "pd"}, receivers - {"-", "empty"}


def test_pd_send_and_receive_names_pair_up():
    senders, receivers = _pd_names(parse_pd(PD_MAIN.read_text(encoding="utf-8")))
    assert senders == receivers, senders ^ receivers
    # the help patch drives musicldm.pd through its names, and listens to one of them
    help_senders, help_receivers = _pd_names(parse_pd(PD_HELP.read_text(encoding="utf-8")))
    assert help_senders and help_senders <= receivers, help_senders - receivers
    assert help_receivers <= senders, help_receivers - senders


def test_pd_messages_are_requests_the_daemon_accepts():
    root = parse_pd(PD_MAIN.read_text(encoding="utf-8"))
    sent = _pd_sends(root)
    requests = sent["musicldm-osc"]
    assert len(requests) >= 10
    # [set evolve $1( gets the evolve amount box's value (set at load)
    ((amount,),) = sent["musicldm-evolve-set"]
    for words in requests:
        address = "/musicldm/" + words[0]
        assert address in ADDRESSES, address
        parse(address, [_pd_float_or_symbol(amount if w == "\\$1" else w) for w in words[1:]])
    assert ["set", "evolve", "\\$1"] in requests
    assert {words[0] for words in requests} >= {"slot", "morph", "set"}
    # prompts: the patch appends bars, bpm and seed from its boxes (loadbang: 1, 120, 0)
    (generate,) = [b for c in root.walk() for b in c.boxes if b.words[:1] == ["bars"]]
    assert generate.words == ["bars", "\\$1", "bpm", "\\$2", "seed", "\\$3"]
    for words in sent["musicldm-generate"]:
        args = [_pd_float_or_symbol(w) for w in words] + ["bars", 1.0, "bpm", 120.0, "seed", 0.0]
        request = parse("/musicldm/generate", args)
        prompt = itertools.takewhile(lambda word: word not in GENERATE_OPTIONS, words)
        assert request.prompt == " ".join(prompt)
        assert (request.options.bars, request.options.bpm, request.options.seed) == (1, 120, 0)
    help_root = parse_pd(PD_HELP.read_text(encoding="utf-8"))
    help_sent = _pd_sends(help_root)
    for words in help_sent["musicldm-osc"]:
        parse("/musicldm/" + words[0], [_pd_float_or_symbol(w) for w in words[1:]])
    # the help's own OSC chain: [message( -> [oscformat musicldm <address>]
    for canvas in help_root.walk():
        for a, _, b, _ in canvas.connections:
            source, target = canvas.boxes[a], canvas.boxes[b]
            if target.words[:1] == ["oscformat"] and source.kind == "msg":
                address = "/" + "/".join(target.words[1:])
                args = source.words[1:] if source.words[0] == "list" else source.words
                parse(address, [_pd_float_or_symbol(w) for w in args])


def _pd_subpatch(root: PdCanvas, name: str) -> PdCanvas:
    (canvas,) = [b.subpatch for b in root.boxes if b.subpatch is not None and b.words[-1] == name]
    return canvas


def test_pd_vary_and_extend_messages_are_built_as_the_daemon_reads_them():
    """[pd generate] joins the stored prompt with `from <path> strength S` (or `extend B`) and
    sends it through the generate's own chain, which adds bars, bpm and seed."""
    root = parse_pd(PD_MAIN.read_text(encoding="utf-8"))
    generate = _pd_subpatch(root, "generate")
    texts = [" ".join(box.words) for box in generate.boxes]
    (loadbang,) = _pd_sends(root)["musicldm-strength-set"]
    strength = float(loadbang[0])
    assert strength == 0.5
    clip = "/home/me/Music/MusicLDM/20261125-091120_dark-techno-drums_120bpm_1bars_s7.wav"
    for suffix, value, key in (
        ("from \\$1 strength \\$2", strength, "strength"),
        ("from \\$1 extend \\$2", 1.0, "extend"),
    ):
        words = suffix.replace("\\$1", clip).replace("\\$2", str(value)).split()
        args = ["dark", "techno", *[_pd_float_or_symbol(w) for w in words]]
        args += ["bars", 1.0, "bpm", 120.0, "seed", 0.0]
        request = parse("/musicldm/generate", args)
        assert request.prompt == "dark techno"
        assert (request.options.get("from"), request.options.get(key)) == (clip, value)
        # the suffix goes into the right inlet of the [list append] behind the stored prompt,
        # whose output enters the generate's [t l b] (seed, then options)
        message = texts.index(suffix)
        (join,) = [b for a, _, b, i in generate.connections if a == message and i == 1]
        assert generate.boxes[join].words == ["list", "append"]
        (entry,) = [b for a, _, b, _ in generate.connections if a == join]
        assert generate.boxes[entry].words == ["t", "l", "b"]
    # the path both keep is the second element of /musicldm/done
    done = texts.index("r musicldm-done")
    (store,) = [b for a, _, b, _ in generate.connections if a == done]
    assert texts[store] == "symbol \\$2"
    kept = [b for a, _, b, i in generate.connections if a == store and i == 1]
    assert [texts[b] for b in kept] == ["symbol", "symbol"]


def test_pd_routes_name_real_replies():
    root = parse_pd(PD_MAIN.read_text(encoding="utf-8"))
    routes = [b.words[1:] for b in _objects(root, "route")]
    assert ["musicldm"] in routes
    for words in routes:
        for word in words:
            if word != "musicldm":
                assert "/musicldm/" + word in REPLIES, word


# -- Pure Data, headless against a real daemon -----------------------------------------------------


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _patch_for_ports(text: str, daemon_port: int, reply_port: int) -> str:
    """The shipped patch with its two hard-coded ports swapped for the test's."""
    connect = f"connect {DAEMON_HOST} {DAEMON_PORT}"
    listen = f"netreceive -u -b {REPLY_PORT}"
    assert text.count(connect) == 1 and text.count(listen) == 1
    text = text.replace(connect, f"connect {DAEMON_HOST} {daemon_port}")
    return text.replace(listen, f"netreceive -u -b {reply_port}")


class _Lines:
    """A process's stderr, read line by line in a thread, waited on by pattern."""

    def __init__(self, stream: Any) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))

    def wait_for(self, pattern: str, seconds: float) -> re.Match[str]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            self.lines.append(line)
            found = re.search(pattern, line)
            if found:
                return found
        raise AssertionError(f"pd never printed {pattern!r}; it printed: {self.lines}")


def _wait_for_osc(sock: socket.socket, address: str, seconds: float) -> list[Any]:
    deadline = time.monotonic() + seconds
    sock.settimeout(0.2)
    while time.monotonic() < deadline:
        received = receive(sock)
        if received is None:
            continue
        for timed in OscPacket(received[0]).messages:
            if timed.message.address == address:
                return list(timed.message.params)
    raise AssertionError(f"no {address} within {seconds} s")


_NEEDS_PD = pytest.mark.skipif(
    shutil.which("pd") is None,
    reason="Pure Data is not installed (the `pd` binary; Debian: apt-get install puredata-core)",
)


def _pd_first_random(seed: int, top: int = 1_000_000) -> int:
    """What Pd's [random top] outputs first after ``seed <seed>`` (x_misc.c's generator)."""
    state = (seed * 472940017 + 832416023) % 2**32
    return int(top * state / 2**32)


def test_pd_seed_source_is_microseconds_since_load():
    (generate,) = [
        box.subpatch
        for box in parse_pd(PD_MAIN.read_text(encoding="utf-8")).boxes
        if box.subpatch is not None and box.words[-1] == "generate"
    ]
    words = [" ".join(box.words) for box in generate.boxes]
    chain = ["realtime", "/ 1e+06", "wrap", "* 1e+09", "seed \\$1", "random 1000000"]
    for a, b in itertools.pairwise(chain):
        assert (words.index(a), 0, words.index(b), 0) in generate.connections, (a, b)


@_NEEDS_PD
def test_pd_first_seed_is_not_the_same_in_every_session(tmp_path):
    """Before, [random] was seeded with the whole milliseconds since load, 0 for a prompt sent
    at start-up, so every scripted session began with the seed 193811."""
    always_before = _pd_first_random(0)
    seeds = []
    for session in range(2):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
            listener.bind(("127.0.0.1", 0))
            patch = tmp_path / f"session{session}.pd"
            patch.write_text(
                _patch_for_ports(
                    PD_MAIN.read_text(encoding="utf-8"),
                    listener.getsockname()[1],
                    _free_udp_port(),
                ),
                encoding="utf-8",
            )
            command = ["pd", "-nogui", "-noaudio", "-nomidi", "-stderr", "-open", str(patch)]
            pd = subprocess.Popen(
                [*command, "-send", "musicldm-generate first take"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                args = _wait_for_osc(listener, "/musicldm/generate", 30)
            finally:
                pd.kill()
                pd.wait(timeout=10)
        seeds.append(args[args.index("seed") + 1])
    assert always_before == 193811
    assert all(seed != always_before and 0 <= seed < 1_000_000 for seed in seeds), seeds


@_NEEDS_PD
def test_pd_patch_renders_a_clip_and_loads_it_headless(tiny_engine, tmp_path, monkeypatch):
    """The README's way: a daemon started with a relative ``--out``; Pd runs in another folder,
    so it can load the clip only if the daemon sends an absolute path."""
    from daemon.app.daemon import Daemon
    from musicldm_core.wavfile import read_clip_info

    pd_port = _free_udp_port()
    watcher = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    watcher.bind(("127.0.0.1", 0))
    monkeypatch.chdir(tmp_path)
    config = daemon_config(
        tmp_path,
        reply_to=(("127.0.0.1", pd_port), watcher.getsockname()),
        out=Path("out"),
        state=Path("state"),
    )
    daemon = Daemon(config, engine=tiny_engine)
    daemon.start()
    elsewhere = tmp_path / "pd"
    elsewhere.mkdir()
    patch = elsewhere / "musicldm.pd"
    patch.write_text(
        _patch_for_ports(PD_MAIN.read_text(encoding="utf-8"), daemon.address[1], pd_port),
        encoding="utf-8",
    )
    command = ["pd", "-nogui", "-noaudio", "-nomidi", "-stderr", "-open", str(patch)]
    command += ["-send", "musicldm-generate headless test steps 3"]
    pd = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=elsewhere
    )
    try:
        stderr = _Lines(pd.stderr)
        done = _wait_for_osc(watcher, "/musicldm/done", 60)
        loaded = stderr.wait_for(r"musicldm: loaded (\d+)", 30)
        path = Path(done[1])
        assert path.is_absolute() and path.parent == tmp_path / "out"
        frames = sf.info(str(path)).frames
        assert int(loaded.group(1)) == frames == round(1 * 4 * 60 / 120 * 44100)
        assert read_clip_info(path)["info"]["title"] == "headless test"
        assert done[4] == 1 and done[3] == pytest.approx(120)  # bars and bpm from the patch
        assert 0 <= done[5] < 1_000_000  # the patch's own seed, exact in a Pd float
        assert any(line.startswith("musicldm: done ") for line in stderr.lines)
    finally:
        pd.kill()
        pd.wait(timeout=10)
        daemon.stop()
        watcher.close()


_PD_DRIVER = """#N canvas 0 0 400 300 12;
#X obj 10 10 r musicldm-done;
#X obj 10 40 t b;
#X obj 10 70 delay 0;
#X obj 10 100 f;
#X obj 60 100 + 1;
#X obj 10 130 sel 1 2;
#X obj 10 160 s musicldm-vary;
#X obj 150 160 s musicldm-extend;
#X connect 0 0 1 0;
#X connect 1 0 2 0;
#X connect 2 0 3 0;
#X connect 3 0 4 0;
#X connect 4 0 3 1;
#X connect 4 0 5 0;
#X connect 5 0 6 0;
#X connect 5 1 7 0;
"""
"""Clicks vary after the first clip is loaded and extend after the second, as a person would:
[delay 0] lets every [r musicldm-done] of the patch (the player, the stored path) see the clip
first."""


def _collect_osc(
    sock: socket.socket, enough: Callable[[list[tuple[str, list[Any]]]], bool], seconds: float
) -> list[tuple[str, list[Any]]]:
    """Every OSC message ``sock`` receives, until ``enough`` of them have come."""
    got: list[tuple[str, list[Any]]] = []
    deadline = time.monotonic() + seconds
    sock.settimeout(0.2)
    while time.monotonic() < deadline:
        received = receive(sock)
        if received is None:
            continue
        for timed in OscPacket(received[0]).messages:
            got.append((timed.message.address, list(timed.message.params)))
        if enough(got):
            return got
    raise AssertionError(f"not enough OSC within {seconds} s: {got}")


@_NEEDS_PD
def test_pd_patch_varies_and_extends_the_clip_it_loaded_and_sets_evolve(
    tiny_engine, tmp_path, monkeypatch
):
    """The vary and extend controls start from the clip the patch last received (its path in
    /musicldm/done) with the last prompt, and the evolve toggle sends its amount."""
    import json as json_

    from daemon.app.daemon import Daemon
    from musicldm_core.wavfile import read_clip_info

    pd_port = _free_udp_port()
    watcher = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    watcher.bind(("127.0.0.1", 0))
    monkeypatch.chdir(tmp_path)
    config = daemon_config(tmp_path, reply_to=(("127.0.0.1", pd_port), watcher.getsockname()))
    daemon = Daemon(config, engine=tiny_engine)
    daemon.start()
    patch, driver = tmp_path / "musicldm.pd", tmp_path / "driver.pd"
    patch.write_text(
        _patch_for_ports(PD_MAIN.read_text(encoding="utf-8"), daemon.address[1], pd_port),
        encoding="utf-8",
    )
    driver.write_text(_PD_DRIVER, encoding="utf-8")
    command = ["pd", "-nogui", "-noaudio", "-nomidi", "-stderr"]
    command += ["-open", str(patch), "-open", str(driver)]
    command += ["-send", "musicldm-generate headless take steps 3", "-send", "musicldm-evolve-on 1"]
    pd = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:

        def finished(got: list[tuple[str, list[Any]]]) -> bool:
            addresses = [address for address, _ in got]
            return addresses.count("/musicldm/done") == 3 and "/musicldm/value" in addresses

        got = _collect_osc(watcher, finished, 60)
    finally:
        pd.kill()
        pd.wait(timeout=10)
        daemon.stop()
        watcher.close()
    assert not [args for address, args in got if address == "/musicldm/fail"]
    (evolve,) = [args for address, args in got if address == "/musicldm/value"]
    assert evolve[0] == "evolve" and evolve[1] == pytest.approx(0.3)  # the amount box at load
    first, varied, extended = [
        Path(args[1]) for address, args in got if address == "/musicldm/done"
    ]
    settings = [
        json_.loads(read_clip_info(p)["info"]["comment"]) for p in (first, varied, extended)
    ]
    assert settings[0].get("audio_in") is None
    assert all(s["prompt"] == "headless take" and s["steps"] == 3 for s in settings)
    assert settings[1]["audio_in"]["mode"] == "variation"
    assert Path(settings[1]["audio_in"]["source"]) == first.resolve()
    assert settings[1]["audio_in"]["strength"] == 0.5  # the strength box's default
    assert settings[2]["audio_in"]["mode"] == "continue"
    assert Path(settings[2]["audio_in"]["source"]) == varied.resolve()
    assert settings[2]["audio_in"]["extend"] == 1 and settings[2]["bars"] == 1  # the bars box
    assert len({s["seed"] for s in settings}) == 3  # 'new seed for each clip' is on
