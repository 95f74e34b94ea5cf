"""Terminal output shared by the commands: colour on a terminal, plain text when piped.

Text from users (event lines, lead ids, labels, journey lines) may hold control
characters; a terminal would obey them (an escape sequence can recolour, move
the cursor, rewrite the title). `shown` draws each as a visible symbol of the
same width, so carets under a line still line up; `json_text` escapes the ones
JSON leaves raw. Rich's emoji codes (`:x:`) and markup never apply to user text.
"""

from __future__ import annotations

import json
import re

from rich.console import Console
from rich.markup import escape
from rich.text import Text

from dsl.diagnostics import Diagnostic, render_plain

__all__ = ["console", "err_console", "print_diagnostic", "shown", "json_text", "cell"]

#: C0 and C1 controls, DEL, and the bidirectional overrides and isolates (text that reads one way, runs another).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _symbol(match: re.Match) -> str:
    code = ord(match.group())
    if code < 0x20:
        return chr(0x2400 + code)  # the Unicode "control pictures": ␀ ␛ ␉ ...
    if code == 0x7F:
        return "\u2421"  # ␡
    return "\ufffd"


def shown(text: object) -> str:
    """User text safe for a terminal: each control character becomes one visible symbol."""
    value = str(text)
    return _UNSAFE.sub(_symbol, value) if _UNSAFE.search(value) else value


#: What `json.dumps(ensure_ascii=False)` leaves raw inside strings (it escapes C0 controls itself;
#: a raw newline in its output is layout, between values).
_UNSAFE_IN_JSON = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape_json(match: re.Match) -> str:
    return f"\\u{ord(match.group()):04x}"


def json_text(value, **options) -> str:
    """JSON for a terminal or a pipe: non-ASCII kept readable, every control character escaped."""
    return _UNSAFE_IN_JSON.sub(_escape_json, json.dumps(value, ensure_ascii=False, **options))


def cell(text: object, style: str = "") -> Text:
    """User text for a rich table or title: shown safely, never read as markup (`[red]`, `[/]`)."""
    return Text(shown(text), style=style)


def console() -> Console:
    return Console(highlight=False, soft_wrap=True, emoji=False)


def err_console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)


def print_diagnostic(out: Console, d: Diagnostic, sources: dict[str, str]) -> None:
    text = "\n".join(shown(line) for line in render_plain(d, sources).split("\n"))
    if not out.is_terminal:
        out.print(text, markup=False)
        return
    colour = "red" if d.is_error else "yellow"
    head, *rest = text.split("\n")
    position, _, message = head.partition(": ")
    out.print(f"[bold]{escape(position)}:[/bold] [bold {colour}]{escape(message)}[/]")
    for line in rest:
        if line.lstrip().startswith("= help"):
            out.print(f"[cyan]{escape(line)}[/cyan]")
        elif "^" in line and set(line.split("|", 1)[-1].strip()) <= {"^"}:
            out.print(f"[{colour}]{escape(line)}[/]")
        else:
            out.print(escape(line))
