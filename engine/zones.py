"""Local time for the step: the lead's zone, send windows, and dates read from events. Pure.

Every conversion goes through `zoneinfo`, so a window "09:00-17:00" opens at
09:00 on the lead's wall clock on the days the clocks change too. A local time
the clocks skip (02:30 on a spring-forward night) is the first instant after
the gap; a local time that happens twice (an autumn night) is its first
occurrence (docs/engine.md, Time zones and send windows).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["Window", "zone", "next_open", "parse_date", "local_text", "UTC", "SEARCH_DAYS"]

UTC = ZoneInfo("UTC")
#: How far ahead `next_open` looks for an open instant: two weeks cover any weekly pattern and its DST shifts.
SEARCH_DAYS = 15
_ZONE_NAME = re.compile(r"[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*")


@dataclass(frozen=True, slots=True)
class Window:
    """A compiled `send only` (open) or `quiet hours` (closed) line: days 0-6 (Monday first), minutes."""

    open: bool
    days: frozenset[int]
    start: int | None  # minute of the local day; None: the whole day
    end: int | None    # <= start: the window ends the next day


def zone(name: object) -> ZoneInfo | None:
    """The IANA zone of that name, or None for anything that is not one (never an exception).

    Only a text reaches the cache: an attribute's value may be a list or an object, which
    cannot be hashed (it raised TypeError before this test came first)."""
    return _zone(name) if isinstance(name, str) else None


@functools.lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo | None:
    if not 0 < len(name) <= 64 or not _ZONE_NAME.fullmatch(name):
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def _instant(day: date, minute: int, tz: ZoneInfo) -> int:
    """The epoch second of a local day's minute (`fold=0`: skipped times land after the gap)."""
    if minute >= 1440:
        day, minute = day + timedelta(days=minute // 1440), minute % 1440
    local = datetime.combine(day, time(minute // 60, minute % 60), tzinfo=tz)
    return int(local.timestamp())


def _intervals(windows, tz: ZoneInfo, first: date, days: int):
    """[start, end) in epoch seconds of each window on each local day from `first` on."""
    for n in range(days):
        day = first + timedelta(days=n)
        weekday = day.weekday()
        for w in windows:
            if weekday not in w.days:
                continue
            if w.start is None:
                yield _instant(day, 0, tz), _instant(day + timedelta(days=1), 0, tz)
            else:
                end = w.end if w.end > w.start else w.end + 1440
                yield _instant(day, w.start, tz), _instant(day, end, tz)


def next_open(windows: tuple[Window, ...], tz: ZoneInfo, t: int) -> int:
    """The first second at or after `t` that some `send only` window holds and no quiet hours do.

    With no `send only` line every instant is open but for quiet hours. The
    answer is `t` itself or where an open window starts or quiet hours end. A
    journey whose windows leave no instant open is refused by the checker
    (C082); should two weeks still hold none (a window inside a DST gap), the
    send goes at `t` rather than never.
    """
    if not windows:
        return t
    first = datetime.fromtimestamp(t, tz).date() - timedelta(days=1)
    opens = [iv for iv in _intervals([w for w in windows if w.open], tz, first, SEARCH_DAYS) if iv[1] > t]
    closed = [iv for iv in _intervals([w for w in windows if not w.open], tz, first, SEARCH_DAYS) if iv[1] > t]
    if not any(w.open for w in windows):
        opens = [(t, t + SEARCH_DAYS * 86400)]
    candidates = sorted({t} | {s for s, _ in opens if s > t} | {e for _, e in closed})
    for c in candidates:
        if any(s <= c < e for s, e in opens) and not any(s <= c < e for s, e in closed):
            return c
    return t


def parse_date(value: object, tz: ZoneInfo) -> int | None:
    """A date field of an event or attribute to epoch seconds, or None if it is not a date.

    ISO 8601: a date with a zone (`2026-03-10T15:00:00Z`, `...+01:00`) is that
    instant; a date and time without one is the lead's local time; a bare date
    (`2026-03-10`) is local midnight. Years 1970 to 2199, like event times.
    """
    if not isinstance(value, str) or not 10 <= len(value) <= 40:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        return None
    if not 1970 <= parsed.year <= 2199:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    try:
        return int(parsed.timestamp())
    except (OverflowError, ValueError):
        return None


def local_text(t: int, tz: ZoneInfo) -> str:
    """An instant on the lead's wall clock, for explain: `Mon 2026-03-30 09:00 Europe/Rome`."""
    local = datetime.fromtimestamp(t, timezone.utc).astimezone(tz)
    return f"{local:%a %Y-%m-%d %H:%M} {tz.key}"
