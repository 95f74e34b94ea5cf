"""Terminal output shared by the commands: colour on a terminal, plain text when piped."""

from __future__ import annotations


from rich.console import Console
from rich.markup import escape

from dsl.diagnostics import Diagnostic, render_plain

__all__ = ["console", "err_console", "print_diagnostic"]


def console() -> Console:
    return Console(highlight=False, soft_wrap=True)


def err_console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def print_diagnostic(out: Console, d: Diagnostic, sources: dict[str, str]) -> None:
    text = render_plain(d, sources)
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
