"""Diagnostics: what the checker says, where, and how to fix it.

A diagnostic is data (code, severity, message, span, hint); rendering is separate
so the same finding prints for a terminal, a pipe or an editor (JSON).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .model import Span

__all__ = ["Severity", "Diagnostic", "render_plain", "to_json", "has_errors", "sort_key"]


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    code: str
    severity: Severity
    message: str
    span: Span
    hint: str | None = None

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR


def has_errors(diagnostics) -> bool:
    return any(d.is_error for d in diagnostics)


def sort_key(d: Diagnostic):
    return (d.span.file, d.span.line, d.span.column, d.code)


def _caret_line(source_line: str, span: Span) -> str:
    """Underline the span on its first line; tabs are kept so the caret lines up."""
    start = max(span.column, 1)
    if span.end_line == span.line and span.end_column > span.column:
        width = span.end_column - span.column
    else:
        width = max(len(source_line.rstrip()) - start + 1, 1)
    prefix = "".join(ch if ch == "\t" else " " for ch in source_line[: start - 1])
    return prefix + "^" * width


def render_plain(d: Diagnostic, sources: dict[str, str]) -> str:
    """The compiler-style block: position, message, the line, a caret, the hint."""
    head = f"{d.span}: {d.severity.value} {d.code}: {d.message}"
    lines = [head]
    text = sources.get(d.span.file)
    if text is not None and d.span.line >= 1:
        src_lines = text.splitlines()
        if d.span.line <= len(src_lines):
            src = src_lines[d.span.line - 1]
            gutter = str(d.span.line)
            pad = " " * len(gutter)
            lines.append(f" {gutter} | {src}")
            lines.append(f" {pad} | {_caret_line(src, d.span)}")
    if d.hint:
        lines.append(f"  = help: {d.hint}")
    return "\n".join(lines)


def to_json(d: Diagnostic) -> dict:
    return {
        "code": d.code,
        "severity": d.severity.value,
        "message": d.message,
        "file": d.span.file,
        "line": d.span.line,
        "column": d.span.column,
        "end_line": d.span.end_line,
        "end_column": d.span.end_column,
        "hint": d.hint,
    }
