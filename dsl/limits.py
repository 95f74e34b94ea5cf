"""Every size limit of the journey language, in one place (docs/language.md, "Limits").

A journey file comes from a person, but also from a copy-paste, a generator or
an attacker; each limit keeps one promise: nothing blocks, nothing recurses
without bound, every diagram can be drawn. Each is generous for a real journey
(see docs/decisions.md for why each number).
"""

from __future__ import annotations

__all__ = ["MAX_FILE_BYTES", "MAX_NESTING", "MAX_NAME", "MAX_TEXT", "MAX_VALUE"]

#: The largest journey file read, main file or include: 1 MiB (C020, or "cannot read").
MAX_FILE_BYTES = 1024 * 1024
#: How deeply a condition may nest `not`, `and` and `or` inside each other (C062).
MAX_NESTING = 32
#: The longest name: stage id, event type, field, content kind, in characters (C063).
MAX_NAME = 100
#: The longest journey name, stage label, content id or content title, in characters (C063).
MAX_TEXT = 500
#: The longest text compared in a condition (each value of a list, a pattern) or include path (C063).
MAX_VALUE = 1000
