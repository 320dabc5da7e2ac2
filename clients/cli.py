"""``musicldm-send``: drive a running musicldm daemon from the shell, over OSC.

Each subcommand is one request of the OSC contract. ``generate`` waits for its clip with a
progress bar on stderr (tqdm, imported only when the bar is shown) and prints each file's path on
stdout, so ``musicldm-send generate "dark techno" --bars 4`` fits in a shell pipeline.

Exit status: 0 done; 1 the daemon answered ``/musicldm/fail`` (``error: <code>: <message>`` on
stderr) or another client error; 2 no daemon answered (or bad command-line usage); 130
interrupted. Imports the standard library and :mod:`clients.client` only (no torch).
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

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


def _format_arg(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"  # OSC floats are 32-bit: don't print their binary tails
    return str(value)


def format_reply(reply: Reply) -> str:
    """One reply as a line: ``address arg arg…``."""
    return " ".join([reply.address, *(_format_arg(arg) for arg in reply.args)])


# -- the parser ------------------------------------------------------------------------------------


def _add_generate_options(parser: argparse.ArgumentParser, *, for_slot: bool = False) -> None:
    parser.add_argument("--bars", type=int, help="length in bars (1-64, default 1)")
    parser.add_argument("--beats", type=int, help="beats per bar (1-16, default 4)")
    parser.add_argument("--bpm", type=float, help="tempo (20-400; default: the daemon's tempo)")
    parser.add_argument("--seconds", type=float, help="exact length in seconds instead of bars")
    parser.add_argument("--seed", type=int, help="0-2147483647 (default: random, reported)")
    parser.add_argument("--steps", type=int, help="sampler steps (1-1000; default: preset's)")
    parser.add_argument("--guidance", type=float, help="guidance scale (0-30; default: preset's)")
    parser.add_argument("--negative", metavar="TEXT", help="negative prompt (default: preset's)")
    parser.add_argument("--scheduler", metavar="NAME", help="ddim, dpm++, unipc, euler, ...")
    parser.add_argument("--takes", type=int, help="candidates, ranked best-first (1-8)")
    parser.add_argument("--preset", metavar="NAME", help="settings bundle (live, studio, ...)")
    parser.add_argument(
        "--no-loop", action="store_true", help="exact length, plain cut with fades (no loop)"
    )
    parser.add_argument("--name", metavar="STEM", help="file name stem instead of the prompt")
    parser.add_argument("--priority", choices=("live", "normal", "batch"), help="default normal")
    if for_slot:
        parser.add_argument("--ahead", type=int, help="takes kept ready to trigger (1-8)")
    else:
        parser.add_argument("--slot", type=int, help="load the result into this slot (0-127)")
        parser.add_argument("--play", action="store_true", help="play it once it is ready")


def _generate_options(args: argparse.Namespace) -> dict[str, Any]:
    options = {
        key: getattr(args, key, None)
        for key in (
            "bars",
            "beats",
            "bpm",
            "seconds",
            "seed",
            "steps",
            "guidance",
            "negative",
            "scheduler",
            "takes",
            "preset",
            "name",
            "priority",
            "slot",
            "ahead",
        )
    }
    if args.no_loop:
        options["loop"] = 0
    if getattr(args, "play", False):
        options["play"] = 1
    return {key: value for key, value in options.items() if value is not None}


def _add_playback_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quantize", choices=("none", "beat", "bar"), help="default bar")
    parser.add_argument("--gain", type=float, help="linear gain, 0-2 (default 1)")
    parser.add_argument("--once", action="store_true", help="play once instead of looping")


def _playback_options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {"quantize": args.quantize, "gain": args.gain}
    if args.once:
        options["loop"] = 0
    return {key: value for key, value in options.items() if value is not None}


def build_parser() -> argparse.ArgumentParser:
    """The ``musicldm-send`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="musicldm-send",
        description="Send requests to a running musicldm daemon over OSC and print its answers.",
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help="daemon host (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="daemon UDP port (9000)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=f"seconds to wait for the daemon's first answer (default {DEFAULT_TIMEOUT:g})",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    generate = sub.add_parser("generate", help="render a clip, wait, print its path(s)")
    generate.add_argument("prompt", help='what to make, e.g. "dark techno, 909 drums"')
    _add_generate_options(generate)
    generate.add_argument("--id", type=parse_id, help="job id (default: a unique one)")
    generate.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    generate.set_defaults(run=_generate)

    status = sub.add_parser("status", help="print the daemon's status as key value lines")
    status.set_defaults(run=_status)

    cancel = sub.add_parser("cancel", help="cancel a job, or every job")
    cancel.add_argument("id", nargs="?", type=parse_id, help="job id (default: every job)")
    cancel.set_defaults(run=_cancel)

    slot = sub.add_parser("slot", help="define a clip slot")
    slot.add_argument("index", type=int, help="slot 0-127")
    slot.add_argument("prompt")
    _add_generate_options(slot, for_slot=True)
    slot.set_defaults(run=_slot)

    trigger = sub.add_parser("trigger", help="play a slot's next take")
    trigger.add_argument("index", type=int, help="slot 0-127")
    _add_playback_options(trigger)
    trigger.set_defaults(run=_trigger)

    play = sub.add_parser("play", help="play a finished clip by job id or path")
    play.add_argument("target", metavar="ID_OR_PATH", help="job id, or a path in the output folder")
    _add_playback_options(play)
    play.set_defaults(run=_play)

    stop = sub.add_parser("stop", help="stop a slot, or everything")
    stop.add_argument("index", nargs="?", type=int, help="slot 0-127 (default: everything)")
    stop.add_argument("--quantize", choices=("none", "beat", "bar"), help="default bar")
    stop.set_defaults(run=_stop)

    tempo = sub.add_parser("tempo", help="set the internal clock's tempo")
    tempo.add_argument("bpm", type=float, help="20-400")
    tempo.set_defaults(run=_tempo)

    transport = sub.add_parser("transport", help="start or stop the internal clock")
    transport.add_argument("state", choices=("start", "stop"))
    transport.set_defaults(run=_transport)

    set_ = sub.add_parser("set", help="change a default for later requests")
    set_.add_argument("key")
    set_.add_argument("value", type=parse_value, help="read as an int, else a float, else text")
    set_.set_defaults(run=_set)

    get = sub.add_parser("get", help="print the value a later request would use")
    get.add_argument("key")
    get.set_defaults(run=_get)

    ping = sub.add_parser("ping", help="check that the daemon answers, print the round trip")
    ping.set_defaults(run=_ping)

    watch = sub.add_parser("watch", help="print every event, one per line, until Ctrl-C")
    watch.add_argument("--count", type=int, help="stop after this many events")
    watch.add_argument("--for", dest="duration", type=float, metavar="SECONDS", help="stop after")
    watch.set_defaults(run=_watch)
    return parser


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
        _cancel_quietly(job)
        print(f"interrupted: cancelled job {job.id}", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        bar.close()
    for done in dones:
        print(done.path, flush=True)
    return EXIT_OK


def _cancel_quietly(job: Job) -> None:
    with contextlib.suppress(ClientError):
        job.cancel()


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
