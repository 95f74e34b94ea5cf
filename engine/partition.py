"""Which writer owns a lead: a stable hash of the lead id, the same in every process and every runner.

Several PostgreSQL writers (and the Flink job's key groups) split the leads by
this function, so a lead's events, records and timers always meet in one place.
Python's `hash()` is salted per process: never use it for this.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from .events import Event, parse_event

__all__ = ["Partition", "lead_hash", "owner", "line_lead", "WHOLE"]


def lead_hash(lead: str) -> int:
    """A stable 63-bit hash of a lead id (BLAKE2b of its UTF-8 bytes): fits PostgreSQL's BIGINT."""
    return int.from_bytes(hashlib.blake2b(lead.encode("utf-8", "surrogatepass"), digest_size=8).digest(),
                          "big") >> 1


def owner(lead: str, count: int) -> int:
    """The partition (0 .. count-1) that owns `lead`."""
    return lead_hash(lead) % count


def line_lead(line: str | bytes) -> str | None:
    """The lead of an event line, or None when the line has none a runner would accept (it is quarantined)."""
    parsed = parse_event(line)  # the runner's own reading: a lead id may be a number, written as a string
    return parsed.lead if isinstance(parsed, Event) else None


@dataclass(frozen=True, slots=True)
class Partition:
    """Partition `index` of `count`: a writer owning it applies exactly the events and timers of its leads.

    Lines without a lead (malformed ones) belong to partition 0, so each is quarantined once.
    """

    index: int = 0
    count: int = 1

    def __post_init__(self):
        if not (self.count >= 1 and 0 <= self.index < self.count):
            raise ValueError(f"partition {self.index}/{self.count}: want 0 <= index < count")

    @classmethod
    def parse(cls, text: str) -> "Partition":
        """`K/N`, as `--partition` takes it."""
        k, sep, n = text.partition("/")
        if not sep or not k.strip().isdigit() or not n.strip().isdigit():
            raise ValueError(f"partition {text!r}: write K/N, e.g. 0/2")
        return cls(int(k), int(n))

    @property
    def whole(self) -> bool:
        return self.count == 1

    def owns(self, lead: str) -> bool:
        return self.count == 1 or owner(lead, self.count) == self.index

    def owns_line(self, line: str | bytes) -> bool:
        if self.count == 1:
            return True
        lead = line_lead(line)
        return self.index == 0 if lead is None else self.owns(lead)

    def lines(self, lines):
        """The lines this partition runs; others become blank lines, so line numbers stay those of the file."""
        for line in lines:
            yield line if self.owns_line(line) else ("" if isinstance(line, str) else b"")


WHOLE = Partition()
