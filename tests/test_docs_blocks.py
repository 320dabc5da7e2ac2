"""Run the code blocks of README.md and the docs pages in :data:`PAGES` as a newcomer would, and
check them.

What runs
    Every fenced block whose language is ``sh``, ``bash``, ``shell``, ``console`` or ``python``
    runs, in page order, in one temporary folder per page, with the virtual environment's ``bin``
    first on PATH and HOME in that folder (so ``~/Music/MusicLDM`` and the daemon's default
    state folder are private to the run). Blocks in other languages (TOML, text) are data, not
    commands. A block is skipped only when the line right before its fence reads
    ``<!-- not run in tests: REASON -->``: skipping is a decision visible in the page, and a new
    block runs by default.

Example files
    A data block (a pack file, a config) whose fence follows ``<!-- file: NAME -->`` is written
    to NAME in the page's folder when the run reaches it, so the commands after it use the very
    file the page shows (a newcomer saves it under that name).

Shell blocks
    One command per line (``\\`` continues a line); in ``console`` blocks commands start with
    ``$``. Commands that run until stopped go to the background: a daemon (``musicldm-daemon``
    with no subcommand, or ``serve``), ``oscdump`` and ``musicldm-send watch``. The test waits
    until a daemon logs where it listens, ``oscdump``'s port is taken and ``watch`` printed its
    first line, and stops them with SIGINT (Ctrl-C) when the page is done; ``musicldm-send`` and
    a daemon must then exit 0. The other lines of a block run as one ``bash -e`` script, which
    must exit 0 and print no Python traceback (a pipeline's status is its last command's, as in
    a user's shell: ``musicldm-send … | head -1`` may end the sender early, and that is fine).
    Python blocks run as scripts and must exit 0.

Shown output
    What a page shows a block printing: in ``sh`` blocks the ``# …`` lines right after a
    command, in ``console`` blocks the lines without ``$``, and an indented block that follows
    the fenced block with one paragraph ending in ``:`` between them. It is compared by shape:
    a number matches any number, ``…`` (or ``...``) any text, ``…/`` any folder prefix or none,
    a liblo time tag any time tag, ``/home/me`` the run's HOME; the rest is literal. Each shown
    line must match a different line of what the block printed or of what the background
    commands printed so far; the test waits for them. Output shown for a block that only starts
    background commands is checked when the page is done.

The substitutions, all of them (otherwise a page runs exactly as written)
    - Ports: a daemon gets ``--port 0`` (a free port, read back from its log) and
      ``--reply-to 127.0.0.1:R`` for a free port R. In later commands 9000 becomes the daemon's
      port and 9001 becomes R, ``musicldm-send`` gets ``--port``, ``Client(`` and
      ``AsyncClient(`` get ``port=``.
    - No sound card here: a daemon without ``--no-audio`` gets ``--audio-file heard.wav``,
      which writes what would have been heard (docs/live.md).
    - ``oscdump`` writes to a file here, so it gets ``-L`` (line buffering), as docs/clients.md
      advises.
    - The real model: only the commands listed in :data:`TINY_MODEL`, each with its reason, get
      ``--model tiny``. The README's first-clip commands name the tiny model themselves.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = ("README.md", "docs/clients.md", "docs/packs.md")
RUNNABLE = {"sh": "shell", "bash": "shell", "shell": "shell", "console": "shell"}
RUNNABLE["python"] = "python"
SKIP_MARK = re.compile(r"^<!--\s*not run in tests:\s*(?P<reason>.*?)\s*-->$")
FILE_MARK = re.compile(r"^<!--\s*file:\s*(?P<name>[\w.-]+)\s*-->$")
FENCE = re.compile(r"^```(?P<lang>[\w+-]*)\s*$")

TINY_MODEL: dict[tuple[str, str], str] = {
    ("docs/clients.md", "musicldm-daemon serve --out ~/Music/MusicLDM"): (
        "the daemon the whole page talks to; the page says to add --model tiny to try it"
    ),
}
"""(page, start of a command) -> why that command runs with ``--model tiny`` here."""

DAEMON_SUBCOMMANDS = {
    "render",
    "conform",
    "pack",
    "clips",
    "midi-ports",
    "audio-devices",
    "-h",
    "--help",
    "--version",
}
LISTENING = re.compile(r"listening on udp (?P<host>\S+):(?P<port>\d+)")
WAIT_S = 90.0  # generous: two cores shared with other work, and a daemon loads torch first


# -- reading the pages -----------------------------------------------------------------------------


@dataclass
class Block:
    page: str
    line: int
    lang: str
    body: list[str]
    skip: str | None
    file: str | None = None
    """The name the page saves this block under (``<!-- file: NAME -->``), if any."""
    shown_after: list[str] = field(default_factory=list)
    """The indented block the page shows after this one (what it printed)."""

    @property
    def kind(self) -> str | None:
        return RUNNABLE.get(self.lang)

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def read_blocks(page: str) -> list[Block]:
    """The fenced blocks of ``page`` (relative to the repository root), in order."""
    lines = (ROOT / page).read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if fence is None:
            i += 1
            continue
        end = i + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        mark = SKIP_MARK.match(lines[i - 1].strip()) if i else None
        file_mark = FILE_MARK.match(lines[i - 1].strip()) if i else None
        blocks.append(
            Block(
                page=page,
                line=i + 1,
                lang=fence["lang"],
                body=lines[i + 1 : end],
                skip=mark["reason"] if mark else None,
                file=file_mark["name"] if file_mark else None,
                shown_after=_indented_output(lines, end + 1),
            )
        )
        i = end + 1
    return blocks


def _indented_output(lines: list[str], start: int) -> list[str]:
    """An indented block after one paragraph ending in ':' from ``start``, else []."""
    i = start
    while i < len(lines) and not lines[i].strip():
        i += 1
    paragraph: list[str] = []
    while i < len(lines) and lines[i].strip() and not lines[i].startswith("    "):
        if FENCE.match(lines[i]):
            return []
        paragraph.append(lines[i])
        i += 1
    if not paragraph or not paragraph[-1].rstrip().endswith(":"):
        return []
    while i < len(lines) and not lines[i].strip():
        i += 1
    shown: list[str] = []
    while i < len(lines) and (lines[i].startswith("    ") or not lines[i].strip()):
        shown.append(lines[i][4:])
        i += 1
    return [line for line in shown if line.strip()]


def split_shell(block: Block) -> list[tuple[str, list[str]]]:
    """(command, the output shown for it) for each command of a shell block."""
    commands: list[tuple[str, list[str]]] = []
    pending = ""
    for raw in block.body:
        line = raw.rstrip()
        if block.lang == "console":
            if line.startswith("$ "):
                commands.append((line[2:], []))
            elif line.strip() and commands:
                commands[-1][1].append(line)
            continue
        if pending:
            line = pending + " " + line.lstrip()
            pending = ""
        if line.endswith("\\"):
            pending = line[:-1].rstrip()
            continue
        if line.lstrip().startswith("#"):
            if commands:
                commands[-1][1].append(line.lstrip()[1:].strip())
            continue
        if line.strip():
            commands.append((line.strip(), []))
    return commands


# -- shapes ----------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"(?P<tag>\b[0-9a-f]{8}\.[0-9a-f]{8}\b)|(?P<folder>…/)|(?P<any>…|\.\.\.)"
    r"|(?P<number>-?\d+(?:\.\d+)?(?:e[-+]?\d+)?)|(?P<space>\s+)|(?P<home>/home/me\b)"
)
NUMBER = r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?"


def shape(shown: str, home: Path) -> re.Pattern[str]:
    """The pattern a real output line must match for the shown line ``shown``."""
    parts: list[str] = []
    pos = 0
    text = shown.strip()
    end = r"\s*$"
    for tail in (" …", " ..."):
        if text.endswith(tail):  # "and so on": the line may go on, or not
            text, end = text[: -len(tail)], r"(?:\s.*)?$"
    for token in _TOKEN.finditer(text):
        parts.append(re.escape(text[pos : token.start()]))
        pos = token.end()
        kind = token.lastgroup
        parts.append(
            {
                "tag": r"[0-9a-f]{8}\.[0-9a-f]{8}",
                "folder": r"(?:.*/)?",
                "any": r".*?",
                "number": NUMBER,
                "space": r"\s+",
                "home": re.escape(str(home)),
            }[kind or "any"]
        )
    parts.append(re.escape(text[pos:]))
    return re.compile(r"(?:^|\s)" + "".join(parts) + end)


def unmatched(shown: list[str], real: list[str], home: Path) -> list[str]:
    """The shown lines that match no real line (each real line used once), in order."""
    used: set[int] = set()
    missing: list[str] = []
    for line in shown:
        if line.strip() in ("…", "..."):
            continue
        pattern = shape(line, home)
        for index, candidate in enumerate(real):
            if index not in used and pattern.search(candidate.rstrip()):
                used.add(index)
                break
        else:
            missing.append(line)
    return missing


def test_shapes_match_what_they_should() -> None:
    home = Path("/tmp/h")
    done = '/musicldm/done isffii 1 "…/out/…_dark-techno_128bpm_2bars_s7.wav" 3.75 128.0 2 7'
    real = (
        'eeb124cf.eb9f01b7 /musicldm/done isffii 3 "/tmp/x/out/20261201-101010_'
        'dark-techno_128bpm_2bars_s7.wav" 3.750000 128.000000 2 7'
    )
    assert shape(done, home).search(real)
    assert shape(done, home).search(real.replace("/tmp/x/out", "out"))
    assert not shape(done, home).search(real.replace("dark-techno", "dark-house"))
    assert shape("/home/me/a_s3.wav 5.3 90.0", home).search("/tmp/h/a_s3.wav 5.333 90.0")
    assert unmatched(["step 1/20", "…", "step 20/20"], ["step 1/20"], home) == ["step 20/20"]
    assert shape("/musicldm/progress iii 1 1 20 ...", home).search("/musicldm/progress iii 1 1 20")


# -- running a page --------------------------------------------------------------------------------


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def udp_port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False


def wait_until(condition: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


@dataclass
class Background:
    command: str
    where: str
    process: subprocess.Popen[bytes]
    log: Path
    is_daemon: bool

    def output(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines() if self.log.exists() else []


class PageRun:
    """One page's blocks, run in order in ``work`` (see the module docstring)."""

    def __init__(self, page: str, work: Path) -> None:
        self.page = page
        self.work = work
        self.home = work / "home"
        self.home.mkdir()
        self.reply_port = free_udp_port()
        self.daemon_port: int | None = None
        self.background: list[Background] = []
        self.deferred: list[tuple[str, list[str]]] = []
        self.tiny_used: set[tuple[str, str]] = set()
        self.ran = 0
        self.timings: list[tuple[str, float]] = []
        """(block, seconds it took), printed by the test (``pytest -s``) to keep it fast."""
        venv_bin = Path(sys.executable).parent
        env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_")}
        env.update(
            HOME=str(self.home),
            PATH=f"{venv_bin}{os.pathsep}{env.get('PATH', '')}",
            PYTHONUNBUFFERED="1",
            # the tiny model is built once per test session, not once per page
            XDG_CACHE_HOME=str(work.parent / "cache"),
        )
        env.pop("PYTHONPATH", None)
        self.env = env

    # substitutions

    def _port(self, where: str) -> int:
        assert self.daemon_port is not None, f"{where}: talks to a daemon before one is started"
        return self.daemon_port

    def _ports(self, text: str, where: str) -> str:
        if re.search(r"(?<![\d.])9000(?!\d)", text):
            text = re.sub(r"(?<![\d.])9000(?!\d)", str(self._port(where)), text)
        return re.sub(r"(?<![\d.])9001(?!\d)", str(self.reply_port), text)

    def _words(self, command: str) -> list[str]:
        words = shlex.split(command, comments=True)
        return [str(self.home) + word[1:] if word.startswith("~/") else word for word in words]

    def _daemon_words(self, command: str) -> list[str]:
        words = self._words(command)
        for key in TINY_MODEL:
            if key[0] == self.page and command.startswith(key[1]):
                self.tiny_used.add(key)
                words += ["--model", "tiny"]
        if "--port" in words:
            del words[words.index("--port") : words.index("--port") + 2]
        words += ["--port", "0", "--reply-to", f"127.0.0.1:{self.reply_port}"]
        if "--no-audio" not in words and "--audio-file" not in words:
            words += ["--audio-file", "heard.wav"]
        return words

    def shell_line(self, command: str, where: str) -> str:
        for key in TINY_MODEL:
            if key[0] == self.page and command.startswith(key[1]):
                self.tiny_used.add(key)
                command = key[1] + " --model tiny" + command[len(key[1]) :]
        if re.search(r"\bmusicldm-send\b", command):
            port = self._port(where)
            command = re.sub(r"\bmusicldm-send\b", f"musicldm-send --port {port}", command)
        return self._ports(command, where)

    def python_code(self, code: str, where: str) -> str:
        if re.search(r"\b(?:Async)?Client\(", code):
            code = re.sub(r"\b((?:Async)?Client)\(", rf"\1(port={self._port(where)}, ", code)
        return code

    # running

    def run_blocks(self, blocks: list[Block]) -> None:
        for block in blocks:
            if block.file is not None:
                (self.work / block.file).write_text("\n".join(block.body) + "\n", encoding="utf-8")
                continue
            if block.skip is not None or block.kind is None:
                continue
            self.ran += 1
            started = time.monotonic()
            if block.kind == "python":
                self._python(block)
            else:
                self._shell(block)
            self.timings.append((block.where, time.monotonic() - started))
        for where, shown in self.deferred:
            self._expect(shown, [], where)

    def _run(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` to its end in the work folder, its output captured as text."""
        return subprocess.run(
            argv,
            check=False,
            cwd=self.work,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=WAIT_S,
        )

    def _python(self, block: Block) -> None:
        script = self.work / f"block_{block.line}.py"
        script.write_text(self.python_code("\n".join(block.body) + "\n", block.where))
        done = self._run([sys.executable, script.name])
        assert done.returncode == 0, self._failure(block.where, "python", done)
        self._expect(block.shown_after, done.stdout.splitlines(), block.where)

    def _shell(self, block: Block) -> None:
        script: list[str] = []
        shown: list[str] = []
        printed: list[str] = []
        started_only = True
        for command, output in split_shell(block):
            shown += output
            words = shlex.split(command, comments=True)
            if words and words[-1] == "&":  # the test puts it in the background itself
                words.pop()
            if self._runs_until_stopped(words):
                printed += self._run_script(script, block.where)
                script = []
                self._start(command, words, block.where)
            else:
                started_only = False
                script.append(self.shell_line(command, block.where))
        printed += self._run_script(script, block.where)
        shown += block.shown_after
        if started_only:
            self.deferred.append((block.where, shown))
        else:
            self._expect(shown, printed, block.where)

    @staticmethod
    def _runs_until_stopped(words: list[str]) -> bool:
        if not words:
            return False
        if words[0] == "musicldm-daemon":
            return len(words) == 1 or words[1] not in DAEMON_SUBCOMMANDS
        return words[0] == "oscdump" or words[:2] == ["musicldm-send", "watch"]

    def _run_script(self, lines: list[str], where: str) -> list[str]:
        if not lines:
            return []
        done = self._run(["bash", "-e", "-c", "\n".join(lines)])
        assert done.returncode == 0, self._failure(where, "\n".join(lines), done)
        assert "Traceback" not in done.stderr, self._failure(where, "\n".join(lines), done)
        return done.stdout.splitlines() + done.stderr.splitlines()

    def _start(self, command: str, words: list[str], where: str) -> None:
        if words[0] == "musicldm-daemon":
            argv, is_daemon = self._daemon_words(command), True
        elif words[0] == "oscdump":
            ports = self._ports(shlex.join(words[1:]), where).split()
            argv, is_daemon = ["oscdump", "-L", *ports], False
        else:
            argv = ["musicldm-send", "--port", str(self._port(where)), *words[1:]]
            is_daemon = False
        log = self.work / f"background_{len(self.background)}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                argv, cwd=self.work, env=self.env, stdout=sink, stderr=subprocess.STDOUT
            )
        started = Background(shlex.join(argv), where, process, log, is_daemon)
        self.background.append(started)

        def ready() -> bool:
            if process.poll() is not None:
                raise AssertionError(
                    f"{where}: {started.command} exited with {process.returncode}:\n"
                    + "\n".join(started.output())
                )
            if is_daemon:
                found = LISTENING.search(log.read_text(errors="replace"))
                if found:
                    self.daemon_port = int(found["port"])
                return found is not None
            if argv[0] == "oscdump":
                return udp_port_taken(self.reply_port)
            return bool(started.output())  # watch prints the daemon's answer to notify first

        wait_until(ready, f"{where}: {started.command} to be ready")

    def _expect(self, shown: list[str], printed: list[str], where: str) -> None:
        if not shown:
            return

        def real() -> list[str]:
            lines = list(printed)
            for started in self.background:
                lines += started.output()
            return lines

        try:
            wait_until(lambda: not unmatched(shown, real(), self.home), f"{where}'s shown output")
        except AssertionError:
            missing = unmatched(shown, real(), self.home)
            raise AssertionError(
                f"{where}: the page shows lines that nothing printed:\n  "
                + "\n  ".join(missing)
                + "\nwhat was printed:\n  "
                + "\n  ".join(real()[-60:])
            ) from None

    @staticmethod
    def _failure(where: str, what: str, done: subprocess.CompletedProcess[str]) -> str:
        return (
            f"{where}: exit status {done.returncode} from\n{what}\n"
            f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"
        )

    def stop(self) -> None:
        """Ctrl-C each background command, listeners first, and check how they ended."""
        problems: list[str] = []
        for started in sorted(self.background, key=lambda b: b.is_daemon):
            process = started.process
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=WAIT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                problems.append(f"{started.where}: {started.command} ignored Ctrl-C")
                continue
            ours = started.command.startswith("musicldm-")
            if ours and process.returncode != 0:
                problems.append(
                    f"{started.where}: {started.command} exited {process.returncode} on Ctrl-C:\n"
                    + "\n".join(started.output()[-30:])
                )
        assert not problems, "\n".join(problems)


@contextlib.contextmanager
def page_run(page: str, work: Path) -> Iterator[PageRun]:
    run = PageRun(page, work)
    try:
        yield run
    finally:
        for started in run.background:  # only on failure: stop() has ended them otherwise
            if started.process.poll() is None:
                started.process.kill()
                started.process.wait()


# -- the tests -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("docs-blocks")


@pytest.mark.parametrize("page", PAGES)
def test_every_block_of_the_page_runs_as_written(page: str, workspace: Path) -> None:
    work = workspace / page.replace("/", "_")
    work.mkdir()
    blocks = read_blocks(page)
    with page_run(page, work) as run:
        run.run_blocks(blocks)
        run.stop()
    print("\n".join(f"{where}: {seconds:.1f} s" for where, seconds in run.timings))
    assert run.ran >= 3
    unused = {key for key in TINY_MODEL if key[0] == page} - run.tiny_used
    assert not unused, f"TINY_MODEL names commands the page no longer has: {unused}"


@pytest.mark.parametrize("page", PAGES)
def test_a_skipped_block_says_why_right_before_its_fence(page: str) -> None:
    lines = (ROOT / page).read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        if "not run in tests" in line:
            mark = SKIP_MARK.match(line.strip())
            assert mark and mark["reason"], f"{page}:{number}: write <!-- not run in tests: WHY -->"
            following = lines[number] if number < len(lines) else ""
            fence = FENCE.match(following)
            assert fence, f"{page}:{number}: the mark must be right before a fence"
            assert fence["lang"] in RUNNABLE, f"{page}:{number}: a {fence['lang']!r} never runs"
        if "<!-- file:" in line:
            assert FILE_MARK.match(line.strip()), f"{page}:{number}: write <!-- file: NAME -->"
            following = lines[number] if number < len(lines) else ""
            assert FENCE.match(following), f"{page}:{number}: the mark must be right before a fence"
    for block in read_blocks(page):
        assert block.lang, f"{block.where}: name the block's language (sh, python, toml, text)"


# -- every command line in the docs exists ---------------------------------------------------------

_INLINE = re.compile(r"`(?:\$ )?(musicldm-(?:daemon|send)\b[^`]*)`")
_PLACEHOLDER = re.compile(r"^[A-Z][A-Z0-9_:]*$|[\[\]|…<>]|\.\.\.")


def doc_command_lines() -> list[tuple[str, str]]:
    """(where, command) for each ``musicldm-daemon``/``musicldm-send`` command written out in
    README.md and docs/*.md: in code blocks, indented blocks and inline code. Syntax summaries
    (``PROMPT``, ``[options]``, ``none|beat|bar``, ``…``) are not commands and are left out."""
    found: list[tuple[str, str]] = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        page = str(path.relative_to(ROOT))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            stripped = line.strip().removeprefix("$ ")
            candidates = [m[1] for m in _INLINE.finditer(line)]
            if re.match(r"musicldm-(daemon|send)\b", stripped) and "`" not in stripped:
                candidates.append(stripped)
            for candidate in candidates:
                command = candidate.split(" | ")[0]  # the pipeline after it is the shell's
                try:
                    words = shlex.split(command, comments=True)
                except ValueError:
                    continue  # a fragment, not a whole command
                if any(_PLACEHOLDER.search(word) for word in words):
                    continue
                found.append((f"{page}:{number}", command))
    return found


def _parse_daemon(words: list[str]) -> None:
    from daemon.cli import COMMANDS, build_parser, serve_parser

    argv = words[1:]
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help", "--version")):
        argv.insert(0, "serve")
    args, extra = build_parser().parse_known_args(argv)
    if args.command == "serve":
        serve_parser().parse_args(extra)
    elif extra:
        raise SystemExit(f"unrecognized arguments: {extra}")


def _parse_send(words: list[str]) -> None:
    from clients.cli import build_parser

    build_parser().parse_args(words[1:])


def test_every_command_line_in_the_docs_parses() -> None:
    wrong: list[str] = []
    lines = doc_command_lines()
    for where, command in lines:
        words = [w.replace("~", "/home/me") for w in shlex.split(command, comments=True)]
        if {"-h", "--help", "--version"} & set(words):
            continue
        parse = _parse_daemon if words[0] == "musicldm-daemon" else _parse_send
        stderr = io.StringIO()
        try:
            with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
                parse(words)
        except SystemExit as stop:
            message = stderr.getvalue().strip().splitlines()[-1:] or [str(stop.code)]
            if len(words) <= 2 and "arguments are required" in message[0]:
                continue  # the name of a command (`musicldm-send`, `musicldm-daemon render`)
            wrong.append(f"{where}: {command}\n    {message[0]}")
    assert len(lines) >= 20
    assert not wrong, "commands in the docs that the software refuses:\n" + "\n".join(wrong)


# -- the exit status table -------------------------------------------------------------------------


def exit_status_table() -> dict[str, dict[int, str]]:
    """README's "Exit status" table: command -> {status: when}."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Exit status\n", 1)[1].split("\n## ", 1)[0]
    table: dict[str, dict[int, str]] = {}
    command = ""
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        if len(cells) != 3 or not cells[1].isdigit():
            continue
        if cells[0]:
            command = re.sub(r"`([^`]*)`.*", r"\1", cells[0])
        table.setdefault(command, {})[int(cells[1])] = cells[2]
    return table


def test_the_exit_status_table_has_every_command_and_every_code() -> None:
    import clients.cli as send
    from daemon.cli import COMMANDS, EXIT_CODES

    table = exit_status_table()
    assert set(table) == {f"musicldm-daemon {c}" for c in COMMANDS} | {"musicldm-send"}
    for command, codes in table.items():
        assert {0, 1, 2} <= set(codes), command  # done, an error, bad command line (argparse)
    for command in ("musicldm-daemon render", "musicldm-daemon serve"):
        assert set(EXIT_CODES.values()) <= set(table[command]), command
    assert 130 in table["musicldm-daemon render"]  # main() turns Ctrl-C into 130
    send_codes = {v for k, v in vars(send).items() if k.startswith("EXIT_")}
    assert set(table["musicldm-send"]) == send_codes


def test_real_runs_exit_as_the_table_says(tmp_path: Path) -> None:
    import clients.cli as send
    from daemon.cli import main

    def status(run: Callable[[list[str]], int], argv: list[str]) -> int:
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            try:
                return run(argv)
            except SystemExit as stop:  # argparse
                return int(stop.code or 0)

    a_file = tmp_path / "a-file"
    a_file.write_text("")
    table = exit_status_table()
    missing_model = ["--model", str(tmp_path / "none"), "-q", "--out", str(tmp_path)]
    runs = {
        ("musicldm-daemon render", 2): ["render", "x", "--bars", "99", "--out", str(tmp_path)],
        ("musicldm-daemon render", 4): ["render", "x", "--out", str(a_file / "sub")],
        ("musicldm-daemon render", 3): ["render", "x", *missing_model],
        ("musicldm-daemon serve", 2): ["--port", "70000"],
        ("musicldm-daemon clips", 0): ["clips", "--state", str(tmp_path / "state")],
        ("musicldm-daemon clips", 2): ["clips", "--limit", "many"],
    }
    for (command, expected), argv in runs.items():
        assert status(main, argv) == expected, (command, argv)
        assert expected in table[command]
    for command in ("midi-ports", "audio-devices"):  # 0 or 1, depending on the machine
        assert status(main, [command]) in table[f"musicldm-daemon {command}"]
    nobody = ["--port", str(free_udp_port()), "--timeout", "0.2", "ping"]
    assert status(send.main, nobody) == 2 == send.EXIT_NO_DAEMON
    assert status(send.main, ["generate"]) == 2  # no prompt: argparse's usage error
