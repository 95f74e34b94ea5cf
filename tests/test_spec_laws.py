"""Laws the docs state for every lead, checked on generated event streams through the real pure step:

* "Thresholds are levels. After any step (event or tick), no threshold of the lead's stage holds at the lead's
  clock, unless the lead left the journey or the cascade bound stopped it" (docs/engine.md, *Score and decay*);
* "No lead receives more than N messages (sends and holding-loop sends together) in any window of that length"
  (docs/language.md, *Frequency cap*);
* "`send only DAYS HH:MM-HH:MM` lets sends go out only inside the window, on the lead's wall clock; quiet hours
  win" (docs/language.md, *Send windows and quiet hours*);
* "Content is never sent twice to one lead" by `send` lines (docs/language.md, *Sending content*).

The journey mixes what can interact: decay both ways, capped and negative points, fit, a goal, an exit rule, a
holding loop, a frequency cap, windows and quiet hours in a zone with daylight saving time.
"""

from __future__ import annotations

import operator
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from engine.timers import score_at

from .engine_helpers import DAY, HOUR, Driver, journey

LAWS = journey('''journey "laws"
time zone "Europe/Rome"
at most 1 message per 1 day
send only weekdays 09:00-17:00
quiet hours 12:30-14:00
scoring
  a +7
  b -5
  c +20 at most 2 per 1 day
  decay half-life 2 days
fit
  size >= 100 +10
exit on quit
on demo -> hot

stage cold
  initial
  send email "welcome" on entry
  when score >= 15 -> warm
  on go -> warm

stage warm
  send email "guide" on entry
  send email "case" after 2 days
  when score >= 40 -> hot
  when score < 5 -> cold
  hold after 3 days idle: every 1 day send email "news", 2 times, then -> cold

stage hot
  send email "call" on entry
  handoff to sales
  when score < 20 -> warm
  after 10 days in stage -> done

stage done
  final
''')

ROME = ZoneInfo("Europe/Rome")
START = 1_774_645_200  # 2026-03-27T21:00:00Z, a Friday evening, two days before Rome's clocks change
OPS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}

steps = st.lists(st.tuples(
    st.sampled_from(["a", "a", "b", "c", "c", "go", "demo", "x", "lead.updated", "tick", "tick", "quit"]),
    st.sampled_from([0, 1, 59, HOUR, 5 * HOUR, DAY, 2 * DAY + 7 * HOUR, 9 * DAY, -HOUR]),
    st.sampled_from([None, 50, 150])), min_size=1, max_size=25)


def _levels_hold(d: Driver, now: int) -> None:
    """No threshold of the stage holds at the lead's clock, nor at the instant a tick advanced it to."""
    rec = d.rec
    plan = LAWS.stages.get(rec.state)
    if plan is None or plan.final:
        return
    score = score_at(LAWS, rec, max(now, rec.clock))
    for threshold in plan.thresholds:
        assert not OPS[threshold.op](score, threshold.value), (rec.state, threshold.op, threshold.value, score)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps)
@example([("c", 0, None), ("c", 1, None), ("tick", 9 * DAY, None)])  # hot at 40: only decay moves it, at ~1d
@example([("go", 0, None), ("b", 1, None), ("b", 2, None), ("tick", 2 * DAY + 7 * HOUR, None)])  # back up to 0
def test_laws_of_levels_caps_windows_and_once_only(script):
    d = Driver(LAWS)
    t = START
    for kind, dt, size in script:
        t += dt
        now = t
        if kind == "tick":
            if d.rec is not None:
                now = max(t, d.rec.clock)
                d.tick(now)
        else:
            d.send(kind, t, attributes=None if size is None else {"size": size})
        if d.rec is not None:
            _levels_hold(d, now if kind == "tick" else d.rec.clock)
    if d.rec is not None:
        now = max(t, d.rec.clock) + 30 * DAY
        d.tick(now)
        _levels_hold(d, now)
    sends = d.of("send")
    times = [a.time for a in sends]
    for i, when in enumerate(times):  # at most 1 message in any window of 1 day: (when - 1 day, when]
        assert sum(1 for other in times[:i + 1] if when - DAY < other <= when) == 1, [a.to_json() for a in sends]
        local = datetime.fromtimestamp(when, timezone.utc).astimezone(ROME)
        minute = local.hour * 60 + local.minute
        assert local.weekday() < 5 and 9 * 60 <= minute < 17 * 60 and not 12 * 60 + 30 <= minute < 14 * 60, local
    lines = [a.data["content"] for a in sends if "edition" not in a.data]
    assert len(lines) == len(set(lines))
