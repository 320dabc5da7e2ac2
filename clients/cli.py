"""``musicldm-send``: drive a running musicldm daemon from the shell, over OSC.

Each subcommand is one request of the OSC contract. ``generate`` waits for its clip with a
progress bar on stderr (tqdm, imported only when the bar is shown) and prints each file's path on
stdout, so ``musicldm-send generate "dark techno" --bars 4`` fits in a shell pipeline.

Exit status: 0 done; 1 the daemon answered ``/musicldm/fail`` (``error: <code>: <message>`` on
stderr) or another client error; 2 no daemon answered (or bad command-line usage); 130
interrupted; 141 stdout was closed early (``musicldm-send status | head -1``), quietly, like a
Unix tool that SIGPIPE ends. Imports the standard library, :mod:`clients.client` and the wire
contract (for option ranges, choices and defaults in ``--help``) only: no torch.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from daemon.wire.contract import (
    GENERATE_OPTIONS,
    MORPH_BARS,
    PLAYBACK_OPTIONS,
    PRIORITIES,
    QUANTIZE_CHOICES,
    SLOT_OPTIONS,
    TRANSPORT_CHOICES,
    bar_span,
    blend_pair,
)
from musicldm_core.errors import BadRequest
from musicldm_core.spec import DEFAULT_MAX_SECONDS, LIMITS, MIN_SECONDS, Limit

from .client import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    DEFAULT_TIMEOUT,
    Client,
    ClientError,
    DaemonNotAnswering,
    Job,
    JobFailed,
    Progress,
    Queued,
    Reply,
    RequestFailed,
    Started,
)

__all__ = ["build_parser", "format_reply", "main", "parse_id", "parse_value"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_NO_DAEMON = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 128 + 13
"""What a Unix tool killed by SIGPIPE reports: stdout's reader went away (``| head``)."""

_INTEGER = re.compile(r"[+-]?\d+")


def parse_value(text: str) -> int | float | str:
    """A command-line value as the daemon should see it: an int, else a float, else text."""
    if _INTEGER.fullmatch(text.strip()):
        return int(text)
    try:
        return float(text)
    except ValueError:
        return text


def parse_id(text: str) -> int | str:
    """A job id from the command line: digits are an int id, anything else a text id."""
    return int(text) if _INTEGER.fullmatch(text.strip()) else text


def _port(text: str) -> int:
    """An argparse type: a UDP port, 1-65535."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"must be a UDP port from 1 to 65535, got {text!r}")
    return port


def _positive_seconds(text: str) -> float:
    """An argparse type: seconds above 0 (``inf``: no limit); nan and the like are refused."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not seconds > 0:  # also false for nan
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0, got {text!r}")
    return seconds


def _count(text: str) -> int:
    """An argparse type: a count from 1."""
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(f"must be an integer from 1, got {text!r}")
    return count


def _format_arg(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"  # OSC floats are 32-bit: don't print their binary tails
    return str(value)


def format_reply(reply: Reply) -> str:
    """One reply as a line: ``address arg arg…``."""
    return " ".join([reply.address, *(_format_arg(arg) for arg in reply.args)])


# -- the parser ------------------------------------------------------------------------------------

_OPTIONS = {**GENERATE_OPTIONS, **SLOT_OPTIONS, **PLAYBACK_OPTIONS}


def _range(limit: Limit) -> str:
    if limit.integer:
        return f"{int(limit.lo)}-{int(limit.hi)}"
    return f"{limit.lo:g}-{limit.hi:g}"


def _help(key: str, what: str, *, default: str | None = None, span: str | None = None) -> str:
    """``what``, then the contract's range and built-in default for option ``key``."""
    option = _OPTIONS[key]
    parts = []
    if span is not None:
        parts.append(span)
    elif option.limit is not None and option.type_name != "0/1":
        parts.append(_range(option.limit))
    built_in = option.default if default is None else default
    if built_in == "preset's":
        built_in = "the preset's"
    parts.append(f"default: {built_in}")
    return f"{what} ({'; '.join(parts)})"


def _add_generate_options(parser: argparse.ArgumentParser, *, for_slot: bool = False) -> None:
    add = parser.add_argument
    add("--bars", type=int, metavar="N", help=_help("bars", "length in bars"))
    add("--beats", type=int, metavar="N", help=_help("beats", "beats per bar"))
    add("--bpm", type=float, help=_help("bpm", "tempo", default="the daemon's current tempo"))
    add(
        "--seconds",
        type=float,
        help=_help(
            "seconds",
            "exact length in seconds instead of bars",
            span=f"{MIN_SECONDS:g} up to the daemon's --max-seconds, {DEFAULT_MAX_SECONDS:g} "
            "unless configured",
            default="the length in bars",
        ),
    )
    add("--seed", type=int, help=_help("seed", "random seed", default="random, then reported"))
    add("--steps", type=int, metavar="N", help=_help("steps", "sampler steps"))
    add("--guidance", type=float, metavar="SCALE", help=_help("guidance", "guidance scale"))
    add("--negative", metavar="TEXT", help=_help("negative", "what to steer away from"))
    add(
        "--scheduler",
        choices=GENERATE_OPTIONS["scheduler"].choices,
        help=_help("scheduler", "sampler"),
    )
    add("--takes", type=int, metavar="N", help=_help("takes", "candidates, ranked best-first"))
    add("--preset", metavar="NAME", help=_help("preset", "named settings bundle, e.g. studio"))
    add(
        "--no-loop",
        action="store_true",
        help="a plain cut with short fades instead of a seamless loop (default: a loop)",
    )
    add(
        "--grid",
        choices=GENERATE_OPTIONS["grid"].choices,
        help=_help("grid", "put the music on the tempo grid, only check and report, or neither"),
    )
    add(
        "--key",
        metavar="KEY",
        help=_help(
            "key",
            "transpose tonal music to this key, e.g. F#m, Bb, C major, A minor; needs grid stretch",
            default="as rendered",
        ),
    )
    add(
        "--retake",
        type=int,
        metavar="N",
        help=_help("retake", "render again with new seeds, up to N times, when no take fits"),
    )
    add("--name", metavar="STEM", help=_help("name", "file name stem", default="the prompt"))
    add("--priority", choices=PRIORITIES, help=_help("priority", "queue priority"))
    if for_slot:
        add("--ahead", type=int, metavar="N", help=_help("ahead", "takes kept rendered ahead"))
        add(
            "--gate",
            action="store_true",
            help="a MIDI note plays the slot only while held (default: it plays until stopped)",
        )
        add(
            "--evolve",
            type=float,
            metavar="S",
            help=_help(
                "evolve", "each new take is a variation of this strength of the one before; 0: off"
            ),
        )
    else:
        add(
            "--slot",
            type=int,
            metavar="INDEX",
            help=_help("slot", "load the result into this slot", default="none"),
        )
        add(
            "--play",
            action="store_true",
            help="play it at the next quantize point once it is ready (default: don't)",
        )
    _add_audio_in_options(parser)


def _checked_by(check: Callable[[str], object]) -> Callable[[str], str]:
    """An argparse type: the text as given, once ``check`` (a contract parser) accepts it, so
    that a malformed value is a usage error before anything is sent."""

    def read(text: str) -> str:
        try:
            check(text)
        except BadRequest as exc:
            raise argparse.ArgumentTypeError(exc.message) from None
        return text

    return read


def _add_audio_in_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "audio in",
        "Start from audio instead of noise (docs/clips.md, Audio in). A CLIP is a library "
        "clip's job id or a file path as the daemon reads it: relative paths are inside its "
        "output folder.",
    )
    add = group.add_argument
    none = "none"
    add("--from", dest="from_", metavar="CLIP", help=_help("from", "input audio", default=none))
    add(
        "--strength",
        type=float,
        metavar="S",
        help=_help("strength", "variation of --from: how far from it", default=none),
    )
    add(
        "--repaint",
        type=_checked_by(bar_span),
        metavar="A-B",
        help=_help(
            "repaint",
            "regenerate bars A to B of --from, 1-based and inclusive, or the one bar A",
            default=none,
        ),
    )
    add(
        "--extend",
        type=int,
        metavar="N",
        help=_help("extend", "continue --from with N new bars", default=none),
    )
    add(
        "--like", metavar="CLIP", help=_help("like", "a reference clip to sound like", default=none)
    )
    add(
        "--like-weight",
        type=float,
        metavar="W",
        help=_help("like_weight", "the share of --like in the conditioning"),
    )
    add(
        "--blend",
        action="append",
        type=_checked_by(blend_pair),
        metavar="PROMPT:W",
        help=_help(
            "blend",
            "an extra prompt with its weight, repeatable",
            span=f"weight {_range(LIMITS['blend_weight'])}",
            default=none,
        ),
    )
    add(
        "--morph-to",
        metavar="PROMPT",
        help=_help("morph_to", "a second prompt to morph toward", default=none),
    )
    add(
        "--morph",
        type=float,
        metavar="X",
        help=_help("morph", "position from the prompt (0) to --morph-to (1)"),
    )
    add(
        "--morph-seed",
        type=int,
        metavar="SEED",
        help=_help("morph_seed", "seed of the noise morphed toward"),
    )


_DESTS = {"from": "from_"}
"""Option keys whose argparse ``dest`` differs (``from`` is a Python keyword)."""


def _generate_options(args: argparse.Namespace) -> dict[str, Any]:
    keys = [key for key in SLOT_OPTIONS if key not in ("loop", "play", "gate", "id")] + ["slot"]
    options = {key: getattr(args, _DESTS.get(key, key), None) for key in keys}
    if args.no_loop:
        options["loop"] = 0
    for switch in ("play", "gate"):
        if getattr(args, switch, False):
            options[switch] = 1
    return {key: value for key, value in options.items() if value is not None}


def _add_quantize(parser: argparse.ArgumentParser, when: str) -> None:
    parser.add_argument("--quantize", choices=QUANTIZE_CHOICES, help=_help("quantize", when))


def _add_playback_options(parser: argparse.ArgumentParser) -> None:
    _add_quantize(parser, "when to start: at once, on the next beat or on the next bar")
    parser.add_argument("--gain", type=float, help=_help("gain", "linear gain"))
    parser.add_argument(
        "--once", action="store_true", help="play once instead of looping (default: loop)"
    )


def _playback_options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {"quantize": args.quantize, "gain": args.gain}
    if args.once:
        options["loop"] = 0
    return {key: value for key, value in options.items() if value is not None}


_EPILOG = f"""\
Options a request leaves out take the daemon's defaults: the built-in ones shown in each
command's --help, unless changed with `musicldm-send set` (see them with `get KEY`).

exit status:
  {EXIT_OK}    done
  {EXIT_FAILED}    the daemon answered /musicldm/fail, or another client error
  {EXIT_NO_DAEMON}    no daemon answered (or it stopped answering), or bad command-line usage
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C); a running generate asks the daemon to cancel it
  {EXIT_BROKEN_PIPE}  stdout was closed early (e.g. `| head -1`); nothing is printed about it
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``musicldm-send`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="musicldm-send",
        description="Send requests to a running musicldm daemon over OSC and print its answers.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help=f"daemon host (default: {DEFAULT_HOST})"
    )
    parser.add_argument(
        "--port",
        type=_port,
        default=DEFAULT_PORT,
        help=f"daemon UDP port (default: {DEFAULT_PORT})",
    )
    parser.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"how long to wait for the daemon's first answer (default: {DEFAULT_TIMEOUT:g})",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    generate = sub.add_parser(
        "generate",
        help="render a clip, wait for it, print its path (one line per take)",
        description="Render a clip, show its progress on stderr and print each take's path.",
    )
    generate.add_argument("prompt", help='what to make, e.g. "dark techno, 909 drums"')
    _add_generate_options(generate)
    generate.add_argument(
        "--id", type=parse_id, help="job id: digits are an int, else text (default: a unique one)"
    )
    generate.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bar (default: a bar on a terminal)"
    )
    generate.set_defaults(run=_generate)

    status = sub.add_parser("status", help="print the daemon's status, one 'key value' per line")
    status.set_defaults(run=_status)

    cancel = sub.add_parser("cancel", help="cancel a queued or running job, or every job")
    cancel.add_argument("id", nargs="?", type=parse_id, help="job id (default: every job)")
    cancel.set_defaults(run=_cancel)

    slot = sub.add_parser("slot", help="define a clip slot (the daemon renders takes ahead)")
    slot.add_argument("index", type=int, help=f"slot number, {_limit_text('index')}")
    slot.add_argument("prompt", help='what the slot plays, e.g. "dark techno drums"')
    _add_generate_options(slot, for_slot=True)
    slot.set_defaults(run=_slot)

    trigger = sub.add_parser("trigger", help="play a slot's next take at the quantize point")
    trigger.add_argument("index", type=int, help=f"slot number, {_limit_text('index')}")
    _add_playback_options(trigger)
    trigger.set_defaults(run=_trigger)

    play = sub.add_parser("play", help="play a finished clip by job id or path")
    play.add_argument("target", metavar="ID_OR_PATH", help="job id, or a path in the output folder")
    _add_playback_options(play)
    play.set_defaults(run=_play)

    stop = sub.add_parser("stop", help="stop a slot, or everything, at the quantize point")
    stop.add_argument(
        "index", nargs="?", type=int, help=f"slot number, {_limit_text('index')} (default: all)"
    )
    _add_quantize(stop, "when to stop: at once, on the next beat or on the next bar")
    stop.set_defaults(run=_stop)

    morph = sub.add_parser(
        "morph",
        help="morph one slot into another over some bars, one rendered step a bar",
        description="Morph slot FROM into slot TO over BARS bars: one rendered step a bar, "
        "played in slot TO, which keeps the last one. Both slots must be defined.",
    )
    morph.add_argument(
        "source", metavar="FROM", type=int, help=f"slot number, {_limit_text('index')}"
    )
    morph.add_argument(
        "target", metavar="TO", type=int, help=f"slot number, {_limit_text('index')}"
    )
    morph.add_argument(
        "bars", metavar="BARS", type=int, help=f"bars it takes, {_range(MORPH_BARS)}"
    )
    _add_quantize(morph, "when the first step starts: at once, on the next beat or bar")
    morph.set_defaults(run=_morph)

    tempo = sub.add_parser("tempo", help="set the internal clock's tempo")
    tempo.add_argument("bpm", type=float, help=f"beats per minute, {_limit_text('bpm')}")
    tempo.set_defaults(run=_tempo)

    transport = sub.add_parser("transport", help="start or stop the internal clock")
    transport.add_argument("state", choices=TRANSPORT_CHOICES, help="start or stop")
    transport.set_defaults(run=_transport)

    set_ = sub.add_parser("set", help="change a default used by later requests")
    set_.add_argument("key", help="an option name: bars, bpm, seed, preset, quantize, ...")
    set_.add_argument("value", type=parse_value, help="read as an int, else a float, else text")
    set_.set_defaults(run=_set)

    get = sub.add_parser("get", help="print the value a later request would use")
    get.add_argument("key", help="an option name, or bpm, transport, version")
    get.set_defaults(run=_get)

    ping = sub.add_parser("ping", help="check that the daemon answers, print the round trip")
    ping.set_defaults(run=_ping)

    watch = sub.add_parser("watch", help="print every event, one per line, until Ctrl-C")
    watch.add_argument(
        "--count", type=_count, metavar="N", help="stop after N events (default: no limit)"
    )
    watch.add_argument(
        "--for",
        dest="duration",
        type=_positive_seconds,
        metavar="SECONDS",
        help="stop after watching this many seconds (default: no limit)",
    )
    watch.set_defaults(run=_watch)
    return parser


def _limit_text(key: str) -> str:
    return _range(LIMITS[key])


# -- the commands ----------------------------------------------------------------------------------


class _ProgressBar:
    """A tqdm bar on stderr following one job (tqdm imported only when shown)."""

    def __init__(self, enabled: bool, stream: TextIO) -> None:
        self._bar: Any = None
        self._offset = 0
        self._last_step = 0
        self._last_total = 0
        if enabled:
            from tqdm import tqdm

            self._bar = tqdm(total=None, unit="step", file=stream, desc="sending", leave=False)

    def update(self, reply: Queued | Started | Progress) -> None:
        bar = self._bar
        if bar is None:
            return
        if isinstance(reply, Queued):
            bar.set_description("queued" if reply.position == 0 else f"queued #{reply.position}")
        elif isinstance(reply, Started):
            bar.set_description("rendering")
        else:
            if reply.step < self._last_step:  # the next take (rendered one after another)
                self._offset += self._last_total
            self._last_step, self._last_total = reply.step, reply.total
            bar.total = self._offset + reply.total
            bar.n = self._offset + reply.step
        bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _stderr_is_tty() -> bool:
    return sys.stderr.isatty()


def _generate(client: Client, args: argparse.Namespace) -> int:
    job = client.generate(args.prompt, id=args.id, **_generate_options(args))
    bar = _ProgressBar(not args.quiet and _stderr_is_tty(), sys.stderr)
    try:
        for reply in job.progress():
            bar.update(reply)
        dones = job.wait_all()
    except KeyboardInterrupt:
        bar.close()
        _cancel_quietly(client, job)
        print(f"interrupted: asked the daemon to cancel job {job.id}", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        bar.close()
    for done in dones:
        print(done.path, flush=True)
    return EXIT_OK


def _cancel_quietly(client: Client, job: Job) -> None:
    # Not confirmed: Ctrl-C must end the command at once, also when the daemon is gone (a
    # confirming ping would wait --timeout for it). The daemon handles the cancel in order.
    with contextlib.suppress(ClientError):
        client.cancel(job.id, confirm=False)


def _status(client: Client, args: argparse.Namespace) -> int:
    for key, value in client.status().items():
        print(key, _format_arg(value))
    return EXIT_OK


def _cancel(client: Client, args: argparse.Namespace) -> int:
    client.cancel(args.id)
    return EXIT_OK


def _slot(client: Client, args: argparse.Namespace) -> int:
    client.slot(args.index, args.prompt, **_generate_options(args))
    return EXIT_OK


def _trigger(client: Client, args: argparse.Namespace) -> int:
    client.trigger(args.index, **_playback_options(args))
    return EXIT_OK


def _play(client: Client, args: argparse.Namespace) -> int:
    client.play(parse_id(args.target), **_playback_options(args))
    return EXIT_OK


def _stop(client: Client, args: argparse.Namespace) -> int:
    client.stop(args.index, args.quantize)
    return EXIT_OK


def _morph(client: Client, args: argparse.Namespace) -> int:
    client.morph(args.source, args.target, args.bars, args.quantize)
    return EXIT_OK


def _tempo(client: Client, args: argparse.Namespace) -> int:
    client.tempo(args.bpm)
    return EXIT_OK


def _transport(client: Client, args: argparse.Namespace) -> int:
    client.transport(args.state == "start")
    return EXIT_OK


def _set(client: Client, args: argparse.Namespace) -> int:
    client.set(args.key, args.value)
    return EXIT_OK


def _get(client: Client, args: argparse.Namespace) -> int:
    print(_format_arg(client.get(args.key)))
    return EXIT_OK


def _ping(client: Client, args: argparse.Namespace) -> int:
    seconds = client.ping()
    print(f"pong from {client.host}:{client.port} in {seconds * 1000:.1f} ms")
    return EXIT_OK


def _watch(client: Client, args: argparse.Namespace) -> int:
    # The stream opens before registering, so nothing sent in between is missed.
    with client.events(args.duration) as stream:
        client.notify(True)
        try:
            for count, reply in enumerate(stream, start=1):
                print(format_reply(reply), flush=True)
                if args.count is not None and count >= args.count:
                    break
        except KeyboardInterrupt:
            pass
        finally:
            with contextlib.suppress(ClientError):
                client.notify(False, confirm=False)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``musicldm-send`` with ``argv`` (default: the process's arguments); return the exit
    status."""
    args = build_parser().parse_args(argv)
    try:
        code = _main(args)
        sys.stdout.flush()  # a closed pipe shows here, not as a traceback at exit
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    return code


def _main(args: argparse.Namespace) -> int:
    run: Callable[[Client, argparse.Namespace], int] = args.run
    try:
        with Client(args.host, args.port, timeout=args.timeout) as client:
            return run(client, args)
    except DaemonNotAnswering as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_NO_DAEMON
    except (JobFailed, RequestFailed) as exc:
        print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
        return EXIT_FAILED
    except ClientError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _silence_stdout() -> None:
    """Point stdout at the null device, so that the interpreter's last flush at exit does not
    fail on the closed pipe again (Python's own advice for SIGPIPE)."""
    with contextlib.suppress(OSError, ValueError):  # ValueError: stdout is not a real file
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
