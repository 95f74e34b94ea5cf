"""Time passing: the rules a tick obeys, and a preview of what a tick would fire.

The engine never reads a clock: whoever ticks passes `now`. These checks keep that
`now` honest: never before the last tick (time does not go backwards), and not far
beyond both the wall clock and the latest event unless forced (a typo would fire
every drip, loop and timeout at once, and could not be undone).
"""

from __future__ import annotations

import json
import time
from collections import Counter

from engine.events import format_time
from engine.record import Lead
from engine.runner import Summary
from engine.step import advance
from engine.store import Store

from .errors import ClockError

__all__ = ["check_tick", "preview_tick", "DAY", "MAX_AHEAD_DAYS"]

DAY = 86_400
#: Days a tick may go beyond both the wall clock and the latest event without being forced.
MAX_AHEAD_DAYS = 90


_UNKNOWN = object()


def check_tick(store: Store, now: int, *, force: bool = False, max_ahead_days: int = MAX_AHEAD_DAYS,
               wall: float | None = None, last_tick=_UNKNOWN) -> None:
    """Refuse a tick before the last one; refuse one far ahead unless forced.

    `last_tick`: the caller's knowledge of it (the service keeps it), else read from the store.
    """
    if last_tick is _UNKNOWN:
        last_tick = store.last_tick()
    if last_tick is not None and now < last_tick:
        raise ClockError(f"time never goes backwards: the last tick was at {format_time(last_tick)}, "
                         f"{format_time(now)} is before it")
    if force:
        return
    wall = time.time() if wall is None else wall
    last_event = store.last_event_time() or 0
    horizon = max(wall, last_event, last_tick or 0) + max_ahead_days * DAY
    if now > horizon:
        raise ClockError(f"{format_time(now)} is more than {max_ahead_days} days beyond the wall clock "
                         f"({format_time(wall)}) and the latest event ({format_time(last_event or None)}): "
                         "a typo would fire every drip at once. Check the date, or force it "
                         "(--force; force=true over HTTP; `coltiva tick --dry-run` shows what would fire)")


def preview_tick(store: Store, journeys, now: int) -> Summary:
    """What `Runner.tick(now)` would do, stepped in memory with the pure `advance`; nothing is written."""
    out = Summary(actions=Counter())
    by_version = {(j.name, j.version): j for j in journeys}
    for journey, lead, version, stored in store.due_leads(now):
        if not any(name == journey for name, _ in by_version):
            continue
        if (journey, version) not in by_version:  # a lead draining on an older version: its own timers
            by_version[(journey, version)] = store.compiled(journey, version)
        j = by_version[(journey, version)]
        rec = Lead.from_list(json.loads(stored))
        new, acts = advance(j, rec, lead, now)
        if new is not rec:
            out.ticked_leads += 1
        for a in acts:
            out.actions[a.kind] += 1
    return out
