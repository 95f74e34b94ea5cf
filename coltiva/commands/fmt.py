"""`coltiva fmt FILE...`: rewrite journey files in the one canonical layout, comments kept.

`--check` and `--diff` write nothing. Exit 0: done (or nothing to do); 1: `--check`
found files to rewrite, or a file has syntax errors; 2: a file cannot be read or written.
"""

from __future__ import annotations

import difflib
import sys
from pathlib import Path

import click

from dsl.errors import JourneyError, SourceError
from dsl.formatter import format_text
from dsl.source import read_journey_file

from ..output import console, err_console, print_diagnostic

__all__ = ["command"]




@click.command("fmt")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--check", is_flag=True, help="Write nothing; list the files that would change and exit 1 if any.")
@click.option("--diff", "show_diff", is_flag=True, help="Write nothing; print what would change as a unified diff.")
def command(files, check, show_diff):
    """Rewrite journey files in place in the canonical layout (comments are kept)."""
    out, err = console(), err_console()
    unreadable = broken = False
    changed: list[str] = []
    for path in files:
        try:  # as stored (no newline translation), so a CRLF file counts as changed
            text = read_journey_file(path, keep_newlines=True)
        except SourceError as exc:
            click.echo(f"coltiva: {exc}", err=True)
            unreadable = True
            continue
        try:
            formatted = format_text(text, path)
        except JourneyError as exc:
            broken = True
            for d in exc.diagnostics:
                print_diagnostic(err, d, {path: text})
            click.echo(f"coltiva: {path}: not formatted: fix the error(s) above first", err=True)
            continue
        if formatted == text:
            continue
        changed.append(path)
        if show_diff:
            lines = difflib.unified_diff(
                text.splitlines(keepends=True), formatted.splitlines(keepends=True),
                fromfile=f"{path} (before)", tofile=f"{path} (formatted)",
            )
            sys.stdout.write("".join(line if line.endswith("\n") else line + "\n" for line in lines))
        if check:
            out.print(f"would reformat {path}", markup=False)
        if check or show_diff:
            continue
        try:
            Path(path).write_text(formatted, encoding="utf-8", newline="")
        except OSError as exc:
            click.echo(f"coltiva: {path}: cannot write: {exc.strerror or exc}", err=True)
            unreadable = True
            continue
        out.print(f"reformatted {path}", markup=False)
    if unreadable:
        sys.exit(2)
    if broken or (check and changed):
        sys.exit(1)
    sys.exit(0)
