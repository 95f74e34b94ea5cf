"""Edge cases found by review: release order under a cap, attributes before enrollment, final stages,
profile updates, and what the checker says about ties."""

from dsl.loader import load_text
from engine.events import format_time
from engine.record import WAITING

from .engine_helpers import DAY, HOUR, T0, Driver, journey

CAPPED = """journey "order"
scoring
  ping +1
at most 1 message per 1 day
stage a
  initial
  send email "later" after 1 hour
  send email "first" on entry
  send email "second" on entry
  on go -> b
stage b
  final
"""


def _sent(d):
    return [(a.data["content"], a.time, a.data.get("deferred_from")) for a in d.of("send")]


def test_sends_held_by_the_cap_leave_in_the_order_they_were_due():
    d = Driver(journey(CAPPED))
    d.send("ping", T0)
    d.tick(T0 + 9 * DAY)
    assert _sent(d) == [
        ("first", T0, None),
        ("second", T0 + DAY, format_time(T0)),  # due at T0, before "later" (T0 + 1 h)
        ("later", T0 + 2 * DAY, format_time(T0 + HOUR)),
    ]


def test_a_held_loop_send_meant_earlier_leaves_before_a_later_content_send():
    text = CAPPED.replace('  send email "later" after 1 hour\n  send email "first" on entry\n  send email "second" on entry\n',
                          '  send email "first" on entry\n  send email "d" after 12 hours\n'
                          '  hold after 2 hours idle: every 1 day send newsletter "n", 1 time, then -> b\n')
    d = Driver(journey(text))
    d.send("ping", T0)
    d.tick(T0 + 9 * DAY)
    order = [content for content, _, _ in _sent(d)]
    assert order == ["first", "n", "d"]


FIT_FIRST = """journey "fit first"
scoring
  form.submitted +5
fit
  size >= 100 +30
enroll on form.submitted
stage a
  initial
  when score >= 30 -> b
stage b
  handoff to sales
  on won -> c
stage c
  final
"""


def test_attributes_sent_before_enrollment_count_when_the_lead_enrolls():
    d = Driver(journey(FIT_FIRST))
    assert d.send("lead.updated", T0, attributes={"size": 500}) == []
    assert d.rec.state == WAITING and d.rec.fit == 30
    d.send("form.submitted", T0 + DAY)
    assert d.rec.state == "b"
    assert [a.kind for a in d.of("handoff")] == ["handoff"]


def test_a_profile_update_never_enrolls_nor_counts_as_activity():
    cj = journey("""journey "profile"
scoring
  click +1
stage a
  initial
  after 5 days idle -> b
stage b
  final
""")
    d = Driver(cj)
    assert d.send("lead.updated", T0, attributes={"size": 5}) == [] and d.rec is None  # no fit rules: nothing kept
    d.send("click", T0)
    d.send("lead.updated", T0 + 4 * DAY, attributes={"size": 9})  # not an interaction: the idle clock runs on
    d.tick(T0 + 5 * DAY)
    assert d.rec.state == "b"


def test_an_exit_rule_does_not_take_a_lead_out_of_a_final_stage():
    d = Driver(journey("""journey "final"
exit on email.unsubscribed
stage a
  initial
  on deal.won -> customer
stage customer
  final
"""))
    d.send("deal.won", T0)
    assert d.send("email.unsubscribed", T0 + DAY) == []
    assert d.rec.state == "customer"


def test_a_lead_taken_out_by_a_timer_keeps_the_timer_as_its_clock():
    cj = journey("""journey "timer exit"
scoring
  ping +1
stage a
  initial
  after 1 day idle -> exit
""")
    by_event, by_tick = Driver(cj), Driver(cj)
    for d in (by_event, by_tick):
        d.send("ping", T0)
    by_tick.tick(T0 + 2 * DAY)
    by_event.send("ping", T0 + 3 * DAY)
    assert by_event.rec.state == by_tick.rec.state == "exit"
    assert by_event.rec.to_list() == by_tick.rec.to_list()


def _codes(text):
    return [d.code for d in load_text(text, "t.journey").diagnostics]


def test_equal_durations_are_not_never():
    base = 'journey "ties"\nscoring\n  ping +1\nstage a\n  initial\n{body}stage b\n  final\n'
    send_at_limit = '  send email "d" after 3 days\n  after 3 days in stage -> b\n'
    loop_at_limit = '  hold after 1 day idle: every 1 day send newsletter "n", 3 times, then -> b\n  after 1 day idle -> b\n'
    assert "C050" not in _codes(base.format(body=send_at_limit))
    assert "C051" not in _codes(base.format(body=loop_at_limit))
    assert "C050" in _codes(base.format(body=send_at_limit.replace("after 3 days\n", "after 4 days\n")))
