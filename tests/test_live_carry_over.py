"""Changing a live journey: one test per carry-over rule of docs/engine.md ("Changing a live journey")."""

from __future__ import annotations

import pytest

from dsl.errors import PlanError
from engine.migrate import carry_over, switch_lead
from engine.record import EXITED
from engine.step import advance
from engine.timers import behaviour_at, score_at

from .engine_helpers import DAY, HOUR, T0, Driver, journey

BASE = '''journey "live"
{top}
scoring
  email.opened +1 at most 2 per 7 days
  page.visited +5
  demo.requested +40
  decay half-life 10 days

fit
  company.size >= 200 +15
  country == "IT" +5

stage a
  initial
  send email "welcome" on entry
  send ebook "guide" after 3 days
  on go -> b
  when score >= 40 -> b
{hold}
stage b
  send email "b-hello" on entry
  on done -> c

stage c
  final
'''
HOLD = '  hold after 1 day idle: every 1 day send email "nudge", 3 times, then -> c\n'


def make(top: str = "", hold: str = HOLD, **edits):
    text = BASE.replace("{hold}", hold)
    for old, new in edits.get("replace", ()):  # on the body: the moves, given whole, stay as written
        assert old in text, old
        text = text.replace(old, new)
    return journey(text.replace("{top}", top))


V1 = make()


def lead_in_a(cj=V1, attributes=None):
    d = Driver(cj)
    d.send("form.submitted", T0, attributes=attributes)  # enrolls in `a`: "welcome" goes at once
    return d


def sent_ids(cj, rec) -> set[str]:
    return {cid for cid, bit in cj.content_bits.items() if rec.sent & bit}


# -- the stage -------------------------------------------------------------------------------

def test_a_lead_keeps_its_stage_by_id_and_its_entry_time():
    d = lead_in_a()
    v2 = make(replace=[("stage b\n", "stage b \"Bee\"\n")])
    new = carry_over(V1, v2, d.rec, T0 + HOUR)
    assert (new.state, new.entered, new.active) == ("a", T0, T0)


def test_a_removed_stage_without_a_move_is_refused_never_a_silent_exit():
    d = lead_in_a()
    d.send("go", T0 + HOUR)
    assert d.state == "b"
    v2 = make(replace=[("stage b\n", "stage bb\n"), ("-> b", "-> bb")])
    with pytest.raises(PlanError, match="stage `b` is not in version .* add `stage b -> STAGE`"):
        carry_over(V1, v2, d.rec, T0 + 2 * HOUR)


def test_a_renamed_stage_with_a_move_keeps_its_leads_and_their_entry_time():
    d = lead_in_a()
    d.send("go", T0 + HOUR)
    v2 = make(top="moves\n  stage b -> bb\n", replace=[("stage b\n", "stage bb\n"), ("-> b", "-> bb")])
    new = carry_over(V1, v2, d.rec, T0 + 2 * HOUR)
    assert (new.state, new.entered) == ("bb", T0 + HOUR)
    # "b-hello" was sent in `b`; `bb` sends the same id: not again
    after, actions = switch_lead(V1, v2, d.rec, "L1", T0 + 2 * HOUR)
    assert actions == [] and after.state == "bb"


def test_a_move_to_exit_takes_the_lead_out_with_an_exit_action():
    d = lead_in_a()
    d.send("go", T0 + HOUR)
    v2 = make(top="moves\n  stage b -> exit\n", replace=[("stage b\n  send email \"b-hello\" on entry\n  on done -> c\n",
                                                         ""), ("-> b", "-> c")])
    after, actions = switch_lead(V1, v2, d.rec, "L1", T0 + 2 * HOUR)
    assert after.state == EXITED and after.due is None
    assert [(a.kind, a.data["from"], a.time) for a in actions] == [("exit", "b", T0 + 2 * HOUR)]


def test_rolling_back_reads_the_moves_backwards():
    v2 = make(top="moves\n  stage b -> bb\n", replace=[("stage b\n", "stage bb\n"), ("-> b", "-> bb")])
    d = Driver(v2)
    d.send("form.submitted", T0)
    d.send("go", T0 + HOUR)
    assert d.state == "bb"
    back = carry_over(v2, V1, d.rec, T0 + 2 * HOUR)  # V1 has no moves: v2's, read backwards
    assert back.state == "b"


# -- content sent, content scheduled ------------------------------------------------------

def test_content_sent_is_remapped_by_id_when_the_bits_move():
    d = lead_in_a()
    # a new content first in the file: every bit of the new version moves by one
    v2 = make(replace=[('  send email "welcome" on entry\n', '  send email "intro" on entry\n  send email "welcome" on entry\n')])
    assert v2.content_bits["welcome"] != V1.content_bits["welcome"]
    new = carry_over(V1, v2, d.rec, T0 + HOUR)
    assert sent_ids(v2, new) == {"welcome"}
    after, actions = switch_lead(V1, v2, d.rec, "L1", T0 + HOUR)
    # "intro" is new to a lead that entered `a` an hour ago: it goes at the switch; "welcome" never again
    assert [(a.data["content"], a.time) for a in actions] == [("intro", T0 + HOUR)]


def test_a_renamed_content_without_a_move_counts_as_new_and_with_a_move_is_not_resent():
    d = lead_in_a()
    renamed = [('"welcome"', '"welcome-2026"')]
    bare = make(replace=renamed)
    _, actions = switch_lead(V1, bare, d.rec, "L1", T0 + HOUR)
    assert [a.data["content"] for a in actions] == ["welcome-2026"]
    moved = make(top='moves\n  content "welcome" -> "welcome-2026"\n', replace=renamed)
    after, actions = switch_lead(V1, moved, d.rec, "L1", T0 + HOUR)
    assert actions == [] and sent_ids(moved, after) == {"welcome-2026"}


def test_content_a_version_drops_is_remembered_and_never_resent_after_a_rollback():
    d = lead_in_a()
    v2 = make(replace=[('  send email "welcome" on entry\n', "")])
    on_v2 = carry_over(V1, v2, d.rec, T0 + HOUR)
    assert "welcome" not in v2.content_bits and on_v2.gone == ("welcome",)
    back, actions = switch_lead(v2, V1, on_v2, "L1", T0 + 2 * HOUR)
    assert sent_ids(V1, back) == {"welcome"} and back.gone is None
    assert actions == []


def test_scheduled_content_counts_from_the_original_entry_and_what_is_past_goes_at_the_switch():
    base = make(hold="")
    d = lead_in_a(base)
    switch = T0 + 2 * DAY
    sooner = make(hold="", replace=[('"guide" after 3 days', '"guide" after 1 day')])
    _, actions = switch_lead(base, sooner, d.rec, "L1", switch)
    assert [(a.data["content"], a.time) for a in actions] == [("guide", switch)]  # its time passed: now
    later = make(hold="", replace=[('"guide" after 3 days', '"guide" after 5 days')])
    after, actions = switch_lead(base, later, d.rec, "L1", switch)
    assert actions == [] and after.due == T0 + 5 * DAY
    _, actions = advance(later, after, "L1", T0 + 6 * DAY)
    assert [(a.data["content"], a.time) for a in actions] == [("guide", T0 + 5 * DAY)]


def test_what_the_old_version_had_due_by_the_switch_fires_first_on_the_old_version():
    base = make(hold="")
    d = lead_in_a(base)
    switch = T0 + 4 * DAY  # "guide" was due at T0+3d under the old version
    v2 = make(hold="", replace=[('"guide" after 3 days', '"guide-2" after 3 days')])
    after, actions = switch_lead(base, v2, d.rec, "L1", switch)
    assert [(a.version, a.data["content"], a.time) for a in actions] == [
        (base.version, "guide", T0 + 3 * DAY), (v2.version, "guide-2", switch)]


# -- holding loops, timers ------------------------------------------------------------------

def test_holding_loop_progress_is_kept_while_the_stage_has_a_loop():
    d = lead_in_a()
    d.tick(T0 + 2 * DAY + HOUR)  # stalled a day: editions at T0+1d and T0+2d
    assert d.rec.hold == 2
    longer = make(hold=HOLD.replace("3 times", "4 times"))
    kept = carry_over(V1, longer, d.rec, T0 + 2 * DAY + 2 * HOUR)
    assert (kept.hold, kept.hold_at) == (2, d.rec.hold_at)
    gone = carry_over(V1, make(hold=""), d.rec, T0 + 2 * DAY + 2 * HOUR)
    assert (gone.hold, gone.hold_at) == (0, None)


def test_the_next_due_time_is_derived_again_from_the_new_definition():
    d = lead_in_a()
    v2 = make(hold="", replace=[("  on go -> b\n", "  on go -> b\n  after 10 days in stage -> c\n")])
    new = carry_over(V1, v2, d.rec, T0 + HOUR)
    assert new.due == T0 + 3 * DAY  # "guide"; the loop is gone
    new.sent |= v2.content_bits["guide"]
    assert carry_over(v2, v2, new, T0 + HOUR).due == T0 + 10 * DAY


# -- score, decay, fit, caps, frequency caps, seq -----------------------------------------------

def test_a_changed_half_life_rebases_the_score_at_the_switch_instant():
    d = lead_in_a()
    d.send("page.visited", T0 + HOUR)
    switch = T0 + 5 * DAY
    slower = make(replace=[("half-life 10 days", "half-life 20 days")])
    new = carry_over(V1, slower, d.rec, switch)
    assert new.score_at == switch
    assert new.score == pytest.approx(behaviour_at(V1, d.rec, switch))
    assert score_at(slower, new, switch + 20 * DAY) == pytest.approx(behaviour_at(V1, d.rec, switch) / 2)
    same = carry_over(V1, make(), d.rec, switch)
    assert (same.score, same.score_at) == (d.rec.score, d.rec.score_at)  # unchanged decay: untouched


def test_fit_points_are_recomputed_from_the_attributes_by_field_name():
    d = lead_in_a(attributes={"company": {"size": 500}, "country": "IT"})
    assert d.rec.fit == 20 and V1.fit_fields == ("company.size", "country")
    v2 = make(replace=[('fit\n  company.size >= 200 +15\n  country == "IT" +5\n',
                        'fit\n  country == "IT" +7\n  industry == "saas" +3\n  company.size >= 1000 +9\n')])
    new = carry_over(V1, v2, d.rec, T0 + HOUR)
    assert v2.fit_fields == ("country", "industry", "company.size")
    assert new.attrs == ("IT", None, 500) and new.fit == 7


def test_caps_of_score_rules_follow_their_rule_not_their_slot():
    d = lead_in_a()
    d.send("email.opened", T0 + HOUR)
    d.send("email.opened", T0 + 2 * HOUR)  # the cap (2 per 7 days) is full
    v2 = make(replace=[("  email.opened +1 at most 2 per 7 days\n",
                        "  form.submitted +1 at most 5 per 7 days\n  email.opened +1 at most 2 per 7 days\n")])
    new = carry_over(V1, v2, d.rec, T0 + 3 * HOUR)
    assert new.caps[0] is None and list(new.caps[1]) == [T0 + HOUR, T0 + 2 * HOUR]
    d2 = Driver(v2)
    d2.rec = new
    d2.send("email.opened", T0 + 4 * HOUR)  # still capped under the new version: nothing counted
    assert (d2.rec.score, d2.rec.score_at) == (new.score, new.score_at)
    d2.send("form.submitted", T0 + 5 * HOUR)  # the other rule's slot was empty: it counts
    assert d2.rec.score_at == T0 + 5 * HOUR


def test_frequency_cap_history_and_the_action_counter_are_kept():
    capped = make(top="at most 1 message per 7 days\n")
    d = lead_in_a(capped)
    assert list(d.rec.sends) == [T0]
    v2 = make(top="at most 2 messages per 7 days\n")
    new = carry_over(capped, v2, d.rec, T0 + HOUR)
    assert list(new.sends) == [T0] and new.seq == d.rec.seq


def test_a_lowered_threshold_the_lead_already_meets_moves_it_at_the_switch():
    d = lead_in_a()
    d.send("page.visited", T0 + HOUR)
    d.send("page.visited", T0 + 2 * HOUR)  # 10 points, below 40
    lower = make(replace=[("when score >= 40 -> b", "when score >= 8 -> b")])
    switch = T0 + 3 * HOUR
    after, actions = switch_lead(V1, lower, d.rec, "L1", switch)
    assert after.state == "b" and after.entered == switch
    assert [(a.kind, a.time) for a in actions] == [("stage", switch), ("send", switch)]


def test_the_carry_over_is_pure_it_never_changes_the_record_it_reads():
    d = lead_in_a(attributes={"company": {"size": 500}})
    before = d.rec.to_list()
    v2 = make(replace=[("half-life 10 days", "half-life 3 days"), ('"welcome"', '"w2"')])
    first = switch_lead(V1, v2, d.rec, "L1", T0 + DAY)
    again = switch_lead(V1, v2, d.rec, "L1", T0 + DAY)
    assert d.rec.to_list() == before
    assert first[0] == again[0] and first[1] == again[1]


def test_a_lead_with_no_attribute_known_has_no_fit_points_whatever_the_new_rules():
    d = lead_in_a()
    assert d.rec.attrs is None
    negative = make(replace=[('  country == "IT" +5\n', '  not country == "IT" +5\n')])
    assert carry_over(V1, negative, d.rec, T0 + HOUR).fit == 0
