"""A send held back by a frequency cap says so in the outbox: `deferred_from` is when it was meant."""

from engine.events import format_time

from .engine_helpers import DAY, HOUR, T0, Driver, journey

CAPPED = """journey "capped"
at most 1 message per 1 day

stage a
  initial
  send email "first" on entry
  send email "second" on entry
  hold after 3 days idle: every 1 day send newsletter "digest", 2 times, then exit
  on go -> b

stage b
  final
"""


def _sends(actions):
    return [a for a in actions if a.kind == "send"]


def test_a_deferred_send_says_when_it_was_meant():
    d = Driver(journey(CAPPED))
    first = _sends(d.send("hello", T0))
    assert [a.data["content"] for a in first] == ["first"]
    assert "deferred_from" not in first[0].data  # on time: nothing to say
    d.tick(T0 + DAY)
    (second,) = _sends(d.last)
    assert second.data["content"] == "second"
    assert second.time == T0 + DAY
    assert second.data["deferred_from"] == format_time(T0)


def test_a_holding_loop_send_on_time_carries_no_deferral():
    d = Driver(journey(CAPPED))
    d.send("hello", T0)
    d.tick(T0 + 3 * DAY + HOUR)
    loop = [a for a in _sends(d.actions) if a.data["content"] == "digest"]
    assert [a.data["edition"] for a in loop] == [1]
    assert loop[0].time == T0 + 3 * DAY and "deferred_from" not in loop[0].data


def test_a_deferred_holding_loop_send_says_so():
    text = CAPPED.replace("hold after 3 days idle", "hold after 12 hours idle")
    d = Driver(journey(text))
    d.send("hello", T0)  # "first" at T0; "second" is held to T0+1d; the loop is meant for T0+12h
    d.tick(T0 + 3 * DAY)
    sends = _sends(d.actions)
    loop = [a for a in sends if a.data["content"] == "digest"]
    assert loop, [a.data for a in sends]
    assert loop[0].data["deferred_from"] == format_time(T0 + 12 * HOUR)
    times = sorted(a.time for a in sends)
    assert all(b - a >= DAY for a, b in zip(times, times[1:])), "the cap holds: one message a day"
