"""What a client sent, made safe to put in a log line.

Anything a client controls (an OSC address, a job id, a prompt, a whole argument list) may hold a
newline, a carriage return or a terminal escape that would forge or garble log lines, and may be
kilobytes long. :func:`printable` escapes it the way ``repr`` does and shortens it. Every log
call that includes client data passes it through here. Pure; any thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["printable"]

MAX_CHARS = 200
"""Longer values are cut to this many characters, and the cut is said."""


def printable(value: Any, limit: int = MAX_CHARS) -> str:
    """``value`` as one line of printable text, at most about ``limit`` characters.

    Text is escaped like ``repr`` escapes it (``\\n``, ``\\x1b``, ``\\u2028``; backslashes
    doubled) but without the surrounding quotes, so ``"take-1"`` logs as ``take-1``. Anything
    else logs as its ``repr`` (lists of OSC arguments, bytes), escaped again where a custom
    ``repr`` left a control character in.
    """
    keep: Callable[[str], bool]
    if isinstance(value, str):
        text, keep = value, _keep_in_text
    else:
        try:
            text = repr(value)  # its backslashes are escapes already: keep them single
        except Exception:  # a client cannot make this happen; an odd object can
            text = f"<unprintable {type(value).__name__}>"
        keep = str.isprintable
    more = len(text) - limit
    text = "".join(c if keep(c) else repr(c)[1:-1] for c in text[:limit])
    return f"{text}…(+{more} chars)" if more > 0 else text


def _keep_in_text(char: str) -> bool:
    """Written as it is: printable, and not a backslash (which would make escapes ambiguous)."""
    return char.isprintable() and char != "\\"
