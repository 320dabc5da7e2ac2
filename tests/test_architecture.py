"""The shape of the house, checked from the source (``ast``; nothing is imported).

The rules (README.md, "Architecture"):

- No import cycle between the project's modules (``daemon``, ``musicldm_core``, ``clients``),
  counting the imports that run when a module is imported: those at module level, including
  inside module-level ``if``/``try``/``with`` blocks and class bodies. Imports inside functions
  run later and do not count for cycles. Imports under ``if TYPE_CHECKING:`` never run; a cycle
  that closes only through them is reported as a warning, not a failure.
- Nothing under ``daemon/`` imports ``clients`` (at any level, in functions too).
- ``musicldm_core`` imports neither ``daemon`` nor ``clients``.
- ``clients`` imports nothing of ``daemon`` but the contract as data: ``daemon.wire.contract``
  and ``daemon.wire.addresses``; and what that pulls in when imported (``daemon/__init__.py``,
  ``daemon/wire/__init__.py``, the contract's own imports) stays free of torch, numpy and the
  other heavy libraries, so a client starts in milliseconds.
- No module is longer than 800 lines unless its docstring says why, in a paragraph that starts
  with ``Why this module is long:`` (the convention: one explicit, greppable line, followed by
  the reason, e.g. "Why this module is long: the player is one real-time object; splitting it
  would spread the audio callback's state over modules").
"""

from __future__ import annotations

import ast
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("daemon", "musicldm_core", "clients")
MAX_LINES = 800
LONG_REASON = "Why this module is long:"
CONTRACT_FOR_CLIENTS = {"daemon.wire.contract", "daemon.wire.addresses"}
HEAVY = {
    "torch",
    "numpy",
    "scipy",
    "diffusers",
    "transformers",
    "soundfile",
    "sounddevice",
    "soxr",
    "mido",
    "rtmidi",
    "tqdm",
}


@dataclass(frozen=True)
class Import:
    source: str
    target: str
    line: int
    when: str
    """"runtime" (module level), "lazy" (inside a function) or "typing" (TYPE_CHECKING)."""


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the project's packages."""
    modules: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


MODULES = module_files()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(body: list[ast.stmt], when: str) -> Iterator[tuple[ast.stmt, str]]:
    """Every import statement under ``body``, with when it runs."""
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node, when
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield from _walk(node.body, "lazy" if when == "runtime" else when)
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _walk(node.body, "typing")
            yield from _walk(node.orelse, when)
        else:
            for field in ("body", "orelse", "finalbody", "handlers", "cases"):
                children = getattr(node, field, None)
                if isinstance(children, list):
                    nested = [c for c in children if isinstance(c, ast.stmt)]
                    for handler in children:
                        if isinstance(handler, (ast.ExceptHandler, ast.match_case)):
                            nested += handler.body
                    yield from _walk(nested, when)


def _package_of(module: str) -> str:
    return module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]


def imports_of(module: str) -> list[Import]:
    """What ``module`` imports: project modules by name, other libraries by top-level name."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    found: list[Import] = []
    for node, when in _walk(tree.body, "runtime"):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = _package_of(module).split(".")
                package = package[: len(package) - (node.level - 1)]
                base = ".".join([*package, base] if base else package)
            for alias in node.names:
                child = f"{base}.{alias.name}"
                names.append(child if child in MODULES else base)
        for name in names:
            target = name if name in MODULES else _closest_module(name)
            found.append(Import(module, target, node.lineno, when))
    return found


def _closest_module(name: str) -> str:
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in MODULES:
            return candidate
        parts.pop()
    return name.split(".", maxsplit=1)[0]  # another library: its top-level name


ALL_IMPORTS = [imp for module in MODULES for imp in imports_of(module)]


def _top(name: str) -> str:
    return name.split(".", maxsplit=1)[0]


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected parts with more than one module (or a module importing itself)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            part: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                part.append(member)
                if member == node:
                    break
            if len(part) > 1 or node in edges.get(node, ()):
                found.append(sorted(part))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def _graph(kinds: set[str]) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for imp in ALL_IMPORTS:
        if imp.when in kinds and imp.target in MODULES and imp.target != imp.source:
            edges.setdefault(imp.source, set()).add(imp.target)
    return edges


def _describe(part: list[str], kinds: set[str]) -> str:
    members = set(part)
    lines = [
        f"  {imp.source} -> {imp.target} (line {imp.line}, {imp.when})"
        for imp in ALL_IMPORTS
        if imp.source in members and imp.target in members and imp.when in kinds
    ]
    return "cycle among " + ", ".join(part) + ":\n" + "\n".join(sorted(set(lines)))


def test_the_project_has_modules_to_check() -> None:
    assert {"daemon.wire.contract", "daemon.cli", "clients.cli", "musicldm_core.engine"} <= set(
        MODULES
    )


def test_no_import_cycle_between_modules() -> None:
    runtime = _cycles(_graph({"runtime"}))
    assert not runtime, "\n".join(_describe(part, {"runtime"}) for part in runtime)
    with_typing = [p for p in _cycles(_graph({"runtime", "typing"})) if p not in runtime]
    for part in with_typing:
        warnings.warn(
            "an import cycle closes through TYPE_CHECKING imports only: "
            + _describe(part, {"runtime", "typing"}),
            stacklevel=1,
        )


def _offending(source_top: str, forbidden: set[str]) -> list[str]:
    return [
        f"{imp.source}:{imp.line} imports {imp.target} ({imp.when})"
        for imp in ALL_IMPORTS
        if _top(imp.source) == source_top and _top(imp.target) in forbidden
    ]


def test_the_daemon_never_imports_the_clients() -> None:
    assert not _offending("daemon", {"clients"})


def test_the_core_imports_neither_the_daemon_nor_the_clients() -> None:
    assert not _offending("musicldm_core", {"daemon", "clients"})


def test_the_clients_import_only_the_contract_of_the_daemon() -> None:
    wrong = [
        f"{imp.source}:{imp.line} imports {imp.target} ({imp.when})"
        for imp in ALL_IMPORTS
        if _top(imp.source) == "clients"
        and _top(imp.target) == "daemon"
        and imp.target not in CONTRACT_FOR_CLIENTS
    ]
    assert not wrong, "clients may import only " + ", ".join(sorted(CONTRACT_FOR_CLIENTS))


def _runtime_closure(start: set[str]) -> set[str]:
    """Every project module and library imported when ``start`` is, counting the packages
    above each project module (their ``__init__`` runs first)."""
    seen: set[str] = set()
    todo = list(start)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name not in MODULES:
            continue
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
        todo += [imp.target for imp in imports_of(name) if imp.when == "runtime"]
    return seen


def test_what_the_clients_import_needs_no_heavy_library() -> None:
    clients = {name for name in MODULES if _top(name) == "clients"}
    closure = _runtime_closure(clients)
    heavy = sorted(closure & HEAVY)
    daemon_side = sorted(n for n in closure if _top(n) == "daemon")
    assert not heavy, f"importing the clients imports {heavy} (via {daemon_side})"
    allowed = CONTRACT_FOR_CLIENTS | {"daemon", "daemon.wire"}
    assert set(daemon_side) <= allowed, f"the clients pull in {daemon_side}"


def _lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def test_a_long_module_says_why() -> None:
    unexplained: list[str] = []
    for path in MODULES.values():
        lines = _lines(path)
        if lines <= MAX_LINES:
            continue
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        reasons = [line.strip() for line in doc.splitlines()]
        reasons = [line for line in reasons if line.startswith(LONG_REASON)]
        if not reasons or reasons[0] == LONG_REASON:
            unexplained.append(f"{path.relative_to(ROOT)}: {lines} lines")
    assert not unexplained, (
        f"over {MAX_LINES} lines, with no paragraph starting {LONG_REASON!r} in the docstring "
        "(split the module, or say why it stays whole):\n  " + "\n  ".join(unexplained)
    )
