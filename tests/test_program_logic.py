"""Internal actions, re-entry with `every visit` sends, and the event catalogue: one test per rule of the docs.

docs/language.md (*Internal actions*, *Re-entry*, *Event catalogue*) and
docs/engine.md (*Re-entry*, *Actions and the outbox*) are the spec; each test
names the rule it holds the engine to.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from dsl import load_text
from dsl.formatter import format_text
from engine.record import Lead
from engine.step import step_event

from .engine_helpers import DAY, HOUR, Driver, T0, ev, journey, line, outbox, run_store

LIFECYCLE = '''
journey "Lifecycle"
at most 1 message per 1 day

stage lead
  initial
  on qualified -> mql

stage mql
  handoff to sales
  set lifecycle_stage to "marketingqualifiedlead"
  notify owner "New MQL"
  notify user "sdr@acme.example" "An MQL is waiting"
  create task "Call the lead" after 1 day
  tag "mql"
  add to list "MQL nurture"
  call webhook "crm-sync"
  set score_band to 3
  set vip to true
  send email "book-a-call" on entry
  send email "case-study" on entry
  on rejected -> lead
  on won -> customer

stage customer
  final
'''


def _kinds(actions):
    return [a.kind for a in actions]


# -- internal actions --------------------------------------------------------------------------------

def test_entering_a_stage_emits_stage_handoff_actions_then_sends_in_the_order_written():
    d = Driver(journey(LIFECYCLE))
    d.send("x", T0)
    acts = d.send("qualified", T0 + HOUR)
    assert _kinds(acts) == ["stage", "handoff", "set_field", "notify", "notify", "tag", "add_to_list", "webhook",
                            "set_field", "set_field", "send"]
    data = [{k: v for k, v in a.data.items()} for a in acts[2:10]]
    assert data[0] == {"stage": "mql", "field": "lifecycle_stage", "value": "marketingqualifiedlead"}
    assert data[1] == {"stage": "mql", "to": "owner", "message": "New MQL"}
    assert data[2] == {"stage": "mql", "to": "sdr@acme.example", "message": "An MQL is waiting"}
    assert data[3] == {"stage": "mql", "tag": "mql"}
    assert data[4] == {"stage": "mql", "list": "MQL nurture"}
    assert data[5] == {"stage": "mql", "webhook": "crm-sync"}
    assert data[6]["value"] == 3 and data[7]["value"] is True


def test_internal_actions_are_not_counted_nor_held_by_the_frequency_cap():
    d = Driver(journey(LIFECYCLE))
    d.send("x", T0)
    d.send("qualified", T0 + HOUR)
    d.tick(T0 + 3 * DAY)
    # one message per day: the second send waits a day; the eight actions did not count
    assert d.sends() == [("book-a-call", T0 + HOUR), ("case-study", T0 + HOUR + DAY)]
    task = d.of("task")
    assert [(a.data["title"], a.time) for a in task] == [("Call the lead", T0 + HOUR + DAY)]


def test_a_delayed_action_at_the_same_instant_as_a_send_comes_after_it():
    d = Driver(journey(LIFECYCLE))
    d.send("x", T0)
    d.send("qualified", T0 + HOUR)
    d.tick(T0 + 3 * DAY)
    late = [a for a in d.actions if a.time == T0 + HOUR + DAY]
    assert _kinds(late) == ["send", "task"]


def test_a_delayed_action_is_cancelled_when_the_lead_leaves_the_stage_first():
    d = Driver(journey(LIFECYCLE))
    d.send("x", T0)
    d.send("qualified", T0 + HOUR)
    d.send("won", T0 + 2 * HOUR)
    d.tick(T0 + 5 * DAY)
    assert d.of("task") == [] and d.state == "customer"


def test_each_arrival_takes_the_actions_again_with_keys_of_its_own():
    d = Driver(journey(LIFECYCLE))
    d.send("x", T0)
    d.send("qualified", T0 + HOUR)
    d.send("rejected", T0 + 2 * HOUR)
    d.send("qualified", T0 + 3 * HOUR)
    d.tick(T0 + 5 * DAY)
    notes = [a for a in d.of("notify") if a.data["to"] == "owner"]
    assert len(notes) == 2
    tasks = d.of("task")
    assert [a.time for a in tasks] == [T0 + 3 * HOUR + DAY]  # the first stay's task was cancelled by leaving
    keys = [a.key for a in d.actions]
    assert len(keys) == len(set(keys))
    assert notes[0].key.split("|")[2] == notes[1].key.split("|")[2] == "notify:mql#1"


def test_action_keys_are_the_same_on_every_replay():
    def keys():
        d = Driver(journey(LIFECYCLE))
        d.send("x", T0)
        d.send("qualified", T0 + HOUR)
        d.tick(T0 + 3 * DAY)
        return [a.key for a in d.actions]

    first = keys()
    assert first == keys()
    assert re.fullmatch(r"L1\|Lifecycle@[0-9a-f]{12}\|task:mql#3\|\d+", next(k for k in first if "task:" in k))


def test_the_formatter_gives_internal_actions_back_as_written():
    text = format_text(LIFECYCLE)
    assert '  create task "Call the lead" after 1 day\n' in text
    assert '  notify user "sdr@acme.example" "An MQL is waiting"\n' in text
    assert "  set vip to true\n" in text and "  set score_band to 3\n" in text
    assert format_text(text) == text


# -- re-entry ----------------------------------------------------------------------------------------

WINBACK = '''
journey "Win-back"
{reentry}
enroll on lapsed
exit on unsubscribed

scoring
  clicked +5

stage lapsed
  initial
  tag "lapsed"
  send email "we-miss-you" on entry every visit
  send email "one-time-offer" after 3 days
  create task "Call" after 2 days
  on renewed -> won_back
  after 10 days in stage -> exit

stage won_back
  final
'''


def winback(reentry="re-enter every time"):
    return journey(WINBACK.format(reentry=reentry))


def test_by_default_a_finished_lead_never_re_enters():
    for reentry in ("", "re-enter once"):
        d = Driver(winback(reentry))
        d.send("lapsed", T0)
        d.send("renewed", T0 + DAY)
        assert d.send("lapsed", T0 + 30 * DAY) == [] and d.state == "won_back"


def test_every_time_a_finished_lead_starts_a_new_visit_and_every_visit_content_goes_again():
    d = Driver(winback())
    d.send("lapsed", T0)
    d.tick(T0 + 5 * DAY)
    d.send("renewed", T0 + 6 * DAY)
    acts = d.send("lapsed", T0 + 30 * DAY)
    assert d.state == "lapsed"
    assert [(a.kind, a.data.get("from"), a.data.get("rule")) for a in acts[:1]] == [
        ("stage", "won_back", "re-entered")]
    assert _kinds(acts) == ["stage", "tag", "send"]
    d.tick(T0 + 35 * DAY)
    contents = [c for c, _ in d.sends()]
    # `every visit` content twice (once a visit), the other only on the first visit
    assert contents == ["we-miss-you", "one-time-offer", "we-miss-you"]
    assert [a.time for a in d.of("task")] == [T0 + 2 * DAY, T0 + 32 * DAY]


def test_a_lead_that_left_by_a_way_out_re_enters_one_that_met_an_exit_rule_never_does():
    d = Driver(winback())
    d.send("lapsed", T0)
    d.tick(T0 + 11 * DAY)
    assert d.state == "exit" and d.rec.left == "way"
    d.send("lapsed", T0 + 20 * DAY)
    assert d.state == "lapsed"
    d.send("unsubscribed", T0 + 21 * DAY)
    assert d.state == "exit" and d.rec.left is None
    assert d.send("lapsed", T0 + 40 * DAY) == [] and d.state == "exit"


def test_an_exit_rule_met_while_finished_bars_re_entry():
    d = Driver(winback())
    d.send("lapsed", T0)
    d.send("renewed", T0 + DAY)
    d.send("unsubscribed", T0 + 2 * DAY)
    assert d.state == "won_back" and d.rec.left == "rule"
    assert d.send("lapsed", T0 + 30 * DAY) == []
    left = Driver(winback())
    left.send("lapsed", T0)
    left.tick(T0 + 11 * DAY)
    left.send("unsubscribed", T0 + 12 * DAY)  # out by a way, then unsubscribed: stays out
    assert left.rec.left == "rule" and left.send("lapsed", T0 + 30 * DAY) == []


def test_only_an_enrolling_event_brings_a_lead_back_and_never_a_profile_update():
    d = Driver(winback())
    d.send("lapsed", T0)
    d.send("renewed", T0 + DAY)
    d.send("clicked", T0 + 2 * DAY)
    d.send("lead.updated", T0 + 3 * DAY, attributes={"x": 1})
    assert d.state == "won_back"


def test_once_per_duration_counts_from_the_last_entry():
    d = Driver(winback("re-enter once per 30 days"))
    d.send("lapsed", T0)
    d.send("renewed", T0 + DAY)
    assert d.send("lapsed", T0 + 29 * DAY) == [] and d.state == "won_back"
    d.send("lapsed", T0 + 30 * DAY)
    assert d.state == "lapsed" and d.rec.enrolled == T0 + 30 * DAY
    d.send("renewed", T0 + 31 * DAY)
    assert d.send("lapsed", T0 + 45 * DAY) == []


def test_re_entry_keeps_score_seq_and_frequency_history_and_keys_stay_unique():
    d = Driver(winback())
    d.send("lapsed", T0)
    d.send("clicked", T0 + HOUR)
    d.send("renewed", T0 + DAY)
    seq = d.rec.seq
    d.send("lapsed", T0 + 30 * DAY)
    assert d.score(T0 + 30 * DAY) == 5
    assert d.rec.seq > seq
    keys = [a.key for a in d.actions]
    assert len(keys) == len(set(keys))


def test_due_timers_fire_before_the_re_entry():
    cj = journey('''
journey "t"
re-enter every time
enroll on go

stage a
  initial
  on done -> b

stage b
  notify owner "a day in b" after 1 day
  final
''')
    d = Driver(cj)
    d.send("go", T0)
    d.send("done", T0 + HOUR)
    acts = d.send("go", T0 + HOUR + DAY)  # the delayed action is due at this very instant: it goes first
    assert _kinds(acts) == ["notify", "stage"]


def test_a_late_enrolling_event_re_enters_at_the_lead_clock():
    d = Driver(winback())
    d.send("lapsed", T0)
    d.send("renewed", T0 + 5 * DAY)
    acts = d.send("lapsed", T0 + 2 * DAY)
    assert acts[0].time == T0 + 5 * DAY and d.state == "lapsed"


# -- the record ----------------------------------------------------------------------------------------

def test_a_record_without_the_new_fields_reads_as_before_and_the_tail_round_trips():
    old = ["a", 1, 2, 0.5, 1, 0, None, 3, 0, None, None, None, 4, None, 2]
    rec = Lead.from_list(old)
    assert (rec.acted, rec.enrolled, rec.left, rec.gone) == (0, None, None, None)
    assert rec.to_list() == old
    rec.left = "way"
    assert rec.to_list() == old + [None, 0, None, "way"]
    assert Lead.from_list(json.loads(json.dumps(rec.to_list()))) == rec
    rec.left, rec.acted = None, 2
    assert rec.to_list() == old + [None, 2]


# -- checks --------------------------------------------------------------------------------------------

def _codes(text, **kw):
    return [(d.code, d.span.line) for d in load_text(text, **kw).diagnostics]


def test_c048_warns_round_the_re_entry_cycle_only_for_lines_without_every_visit():
    found = [d for d in load_text(WINBACK.format(reentry="re-enter every time")).diagnostics]
    assert [(d.code, d.span.line) for d in found] == [("C048", 14)]
    assert "first visit only" in found[0].message and "every visit" in found[0].hint
    assert _codes(WINBACK.format(reentry="re-enter once")) == [("C105", 13)]


def test_c106_re_entry_without_enroll_on_and_c107_declared_twice():
    text = 'journey "t"\nre-enter every time\nre-enter once\nstage a\n  initial\n  on x -> b\nstage b\n  final\n'
    assert ("C107", 3) in _codes(text)
    text = 'journey "t"\nre-enter every time\nstage a\n  initial\n  on x -> b\nstage b\n  final\n'
    assert _codes(text) == [("C106", 2)]


def test_c108_a_delayed_action_after_the_in_stage_limit():
    text = ('journey "t"\nstage a\n  initial\n  tag "x" after 3 days\n  after 2 days in stage -> b\n'
            'stage b\n  final\n')
    assert _codes(text) == [("C108", 4)]


# -- the event catalogue ---------------------------------------------------------------------------------

CATALOGUE = """
# test catalogue
form.submitted   form page.path
email.unsubscribed
trial.started    plan utm
"""


def test_check_against_a_catalogue_finds_unknown_types_and_fields_with_a_hint(tmp_path):
    (tmp_path / "events.catalogue").write_text(CATALOGUE)
    text = '''journey "t"
catalogue "events.catalogue"
exit on unsubscribe
enroll on form.submitted where from == "x" or page.path starts with "/p" or page is set

stage a
  initial
  on trial.started where utm.source == "ads" -> b
  on trial.starts -> b

stage b
  final
'''
    found = [d for d in load_text(text, "t.journey", tmp_path).diagnostics if d.code != "C037"]
    assert [(d.code, d.span.line) for d in found] == [("C100", 3), ("C101", 4), ("C100", 9)]
    assert found[0].hint == "did you mean `email.unsubscribed`?"
    assert found[1].hint == "did you mean `form`?"
    assert found[2].hint == "did you mean `trial.started`?"


def test_an_explicit_catalogue_wins_and_its_own_mistakes_are_reported(tmp_path):
    (tmp_path / "bad.catalogue").write_text("form.submitted form\nform.submitted x\nnot/a type\nok 1field\n")
    # the journey's own line names a file that does not exist: `--catalogue` wins, so no C104
    text = ('journey "t"\ncatalogue "nope.catalogue"\nenroll on form.submitted\nstage a\n  initial\n'
            '  on form.submitted -> b\nstage b\n  final\n')
    found = load_text(text, "t.journey", tmp_path, catalogue=tmp_path / "bad.catalogue").diagnostics
    assert [(d.code, d.span.line) for d in found if d.code.startswith("C10")] == [("C103", 2), ("C102", 3),
                                                                                 ("C102", 4)]
    missing = load_text('journey "t"\ncatalogue "nope.catalogue"\nstage a\n  initial\n  on x -> b\nstage b\n  final\n',
                        "t.journey",
                        tmp_path).diagnostics
    assert [(d.code, d.span.line) for d in missing] == [("C104", 2)]


def test_run_keeps_aside_events_that_break_the_catalogue_and_goes_on(tmp_path):
    from coltiva.commands._common import compile_files

    (tmp_path / "events.catalogue").write_text(CATALOGUE)
    path = tmp_path / "t.journey"
    path.write_text('journey "t"\ncatalogue "events.catalogue"\nenroll on trial.started\n'
                    'exit on email.unsubscribed\nstage a\n  initial\n  on form.submitted -> b\nstage b\n  final\n')
    compiled = compile_files([str(path)])
    assert compiled[0][0].catalogue is not None
    lines = [line(1, "trial.started", T0, {"plan": "pro", "utm": {"source": "ads"}}),
             line(2, "trial.started", T0 + 1, {"plna": "pro"}),
             line(3, "form.submitted", T0 + 2, {"page": {"path": "/x", "query": "q"}}),
             line(4, "form.submitted", T0 + 3, {"page": {"path": "/pricing"}, "form": "demo"}),
             line(5, "lead.updated", T0 + 4, attributes={"plan": "team"})]  # needs no catalogue line
    summary = run_store(str(tmp_path / "s.db"), compiled, lines)
    assert (summary.applied, summary.quarantined) == (3, 2)
    from engine.stores import open_store

    with open_store(str(tmp_path / "s.db")) as store:
        reasons = [row[2] for row in store.dump()["quarantine"]]
    assert reasons[0] == ("data field 'plna' of trial.started is not in the event catalogue "
                          f"{tmp_path / 'events.catalogue'} (did you mean plan?)")
    assert "data field 'page.query' of form.submitted" in reasons[1]
    assert [a["kind"] for a in outbox(str(tmp_path / "s.db"))] == ["stage", "stage"]


# -- the examples in docs/language.md run ----------------------------------------------------------------

def _doc_example(heading: str) -> str:
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "language.md").read_text(encoding="utf-8")
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return next(m.group(1) for m in re.finditer(r"```coltiva\n(.*?)```", section, re.S))


def test_the_win_back_example_of_the_docs_repeats_on_every_lapse():
    d = Driver(journey(_doc_example("Re-entry")))
    d.send("subscription.lapsed", T0)
    d.tick(T0 + 40 * DAY)  # no renewal: out after 30 days
    d.send("subscription.lapsed", T0 + 60 * DAY)
    d.send("subscription.renewed", T0 + 62 * DAY)
    d.send("subscription.lapsed", T0 + 90 * DAY)
    d.tick(T0 + 100 * DAY)
    assert [c for c, _ in d.sends()] == ["we-miss-you", "what-is-new", "we-miss-you", "we-miss-you", "what-is-new"]
    assert [(a.data["to"], a.time) for a in d.of("notify")] == [("owner", T0 + 62 * DAY)]


# -- through the store and the command line ---------------------------------------------------------------

def test_a_stored_re_entering_lead_keeps_its_tail_and_explain_shows_the_visits_and_actions(tmp_path):
    import subprocess
    import sys

    from engine.stores import open_store

    root = Path(__file__).resolve().parent.parent
    events = tmp_path / "e.jsonl"
    events.write_text("".join(line(i, t, T0 + days * DAY, lead="ann") + "\n" for i, (t, days) in enumerate([
        ("subscription.lapsed", 0), ("subscription.renewed", 2), ("subscription.lapsed", 33)])))
    db = str(tmp_path / "s.db")

    def coltiva(*args):
        return subprocess.run([sys.executable, "-m", "coltiva.cli", *args], capture_output=True, text=True,
                              check=True, cwd=root).stdout

    coltiva("run", "journeys/win_back.journey", "--events", str(events), "--db", db)
    coltiva("tick", "--now", "2026-03-20T00:00:00Z", "--db", db)  # 21 days without renewal: sunset (final)
    later = tmp_path / "later.jsonl"
    later.write_text(line(9, "email.unsubscribed", T0 + 80 * DAY, lead="ann") + "\n")
    coltiva("run", "journeys/win_back.journey", "--events", str(later), "--db", db)
    with open_store(db) as store:
        rec = store.load_leads("Win-back", ["ann"])["ann"].record
    assert rec.state == "sunset" and rec.left == "rule"  # finished, then unsubscribed: stored, never back
    text = coltiva("explain", "ann", "--db", db)
    assert "(the lead re-enters)" in text and "re-enters the journey" in text
    assert "=> set_field field='lifecycle_stage', value='former_customer'" in text
    assert "=> webhook webhook='crm-sync'" in text
    assert "replay of the log matches the stored record" in text


def test_a_lead_out_of_the_journey_whose_way_out_is_unknown_stays_out():
    """Left before the journey declared re-entry (or by a `moves` line): `left` is empty, so it stays out."""
    cj = winback()
    rec = Lead("exit", T0)
    rec.clock = T0
    assert step_event(cj, rec, "L1", ev("a", "lapsed", T0 + 30 * DAY)) == (rec, [])


def test_a_version_switch_keeps_delayed_actions_done_by_what_they_do_not_by_position():
    from engine.migrate import switch_lead

    old = journey(LIFECYCLE)
    d = Driver(old)
    d.send("x", T0)
    d.send("qualified", T0 + HOUR)
    d.tick(T0 + 2 * DAY)  # the task is done
    # the new version adds a delayed tag before the task: the task stays done, the tag (past due) goes now
    new = journey(LIFECYCLE.replace('  create task "Call the lead" after 1 day\n',
                                    '  tag "warm" after 1 day\n  create task "Call the lead" after 1 day\n'))
    rec, acts = switch_lead(old, new, d.rec, "L1", T0 + 3 * DAY)
    assert [(a.kind, a.data.get("tag"), a.time) for a in acts if a.kind in ("tag", "task")] == [
        ("tag", "warm", T0 + 3 * DAY)]
    assert rec.acted == 0b11


def test_the_catalogue_checks_goals_every_type_of_an_or_and_had_but_not_lead_fields(tmp_path):
    (tmp_path / "events.catalogue").write_text("a.x n\nb.y\nc.z\n")
    text = '''journey "t"
catalogue "events.catalogue"
on a.x or b.y where n > 1 and lead.plan == "pro" -> b
on a.x or b.yy -> b

stage a
  initial
  send email "w" on entry unless had c.zz
  on c.z -> b

stage b
  final
'''
    found = [(d.code, d.span.line, d.hint) for d in load_text(text, "t.journey", tmp_path).diagnostics
             if d.code.startswith("C10")]
    assert found == [("C100", 4, "did you mean `b.y`?"), ("C100", 8, "did you mean `c.z`?")]
