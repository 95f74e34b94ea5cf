"""Patterns (`f matches "re"`) run on RE2: matching is linear in the text, whatever the pattern.

Python's `re` backtracks: `"(a+)+$"` against 35 bytes of an event can take
minutes, so a journey line could hang every run. RE2 guarantees linear time; the
price is that backreferences and lookaround are not part of the language (the
checker says so, C038). The checker and the engine compile patterns here, so
what checks clean is exactly what runs.
"""

from __future__ import annotations

import re2

__all__ = ["Pattern", "PatternError", "compile_pattern"]


class PatternError(ValueError):
    """A pattern RE2 cannot run; the message says why, in RE2's words."""


def _options() -> "re2.Options":
    options = re2.Options()
    options.log_errors = False  # errors are ours to report, not RE2's to print on stderr
    options.never_capture = True  # `matches` only asks whether the pattern is found
    return options


_OPTIONS = _options()
_UNANCHORED = re2._Anchor.UNANCHORED
_NO_MATCH = re2._NULL_SPAN


class Pattern:
    """A compiled pattern: `found(text)` is True when it matches anywhere in the text."""

    __slots__ = ("text", "_re")

    def __init__(self, text: str):
        self.text = text
        # the low-level object: the package's Python `search` builds match objects we never read (10x slower)
        self._re = re2._re2.RE2(text.encode("utf-8", "surrogatepass"), _OPTIONS)
        if not self._re.ok():
            raise PatternError(_reason(self._re.error()))

    def found(self, value: str) -> bool:
        data = value.encode("utf-8", "surrogatepass")
        return self._re.Match(_UNANCHORED, data, 0, len(data))[0] != _NO_MATCH


def _reason(error) -> str:
    text = error.decode("utf-8", "replace") if isinstance(error, bytes) else str(error)
    if "invalid perl operator: (?=" in text or "invalid perl operator: (?!" in text or "(?<" in text:
        return f"{text} (lookaround is not supported: patterns run in linear time)"
    if "invalid escape sequence: \\" in text and text.rstrip()[-1:].isdigit():
        return f"{text} (backreferences are not supported: patterns run in linear time)"
    return text


def compile_pattern(text: str) -> Pattern:
    return Pattern(text)
