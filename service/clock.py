"""Time passing: the rules a tick obeys, and a preview of what a tick would fire.

The engine never reads a clock: whoever ticks passes `now`. These checks keep that
`now` honest: never before the last tick (time does not go backwards), and not far
beyond both the wall clock and the latest event unless forced (a typo would fire
every drip, loop and timeout at once, and could not be undone).
"""

from __future__ import annotations

import time

from engine.events import format_time
from engine.runner import GatheredWrites, Runner, Summary
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
    """What `Runner.tick(now)` would do, stepped in memory by the runner itself; nothing is written.

    The runner's own tick (all of a lead's journeys at once, the lead-wide cap) over a store that
    only gathers the writes: the preview cannot disagree with the tick."""
    return Runner(GatheredWrites(store), list(journeys)).tick(now)
