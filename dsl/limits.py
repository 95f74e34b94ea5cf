"""Every size limit of the journey language, in one place (docs/language.md, "Limits").

A journey file comes from a person, but also from a copy-paste, a generator or
an attacker; each limit keeps one promise: nothing blocks, nothing recurses
without bound, every diagram can be drawn. Each is generous for a real journey
(see docs/decisions.md for why each number).
"""

from __future__ import annotations

__all__ = ["MAX_FILE_BYTES", "MAX_NESTING", "MAX_NAME", "MAX_TEXT", "MAX_VALUE", "MAX_REMEMBERED"]

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
#: The most things of one kind a lead's record remembers one bit each for (C064): the contents a journey sends
#: (sent, never twice), a stage's delayed internal actions, the event types `had` conditions name. A bit set is
#: stored as a JSON number, and Python reads and writes numbers of at most 4,300 digits (~14,000 bits).
MAX_REMEMBERED = 10_000
