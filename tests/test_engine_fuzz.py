"""The engine on journeys nobody wrote: generated models (checked or not) and random events never crash it.

Journeys come from the formatter's strategy (tests/strategies.py) and are compiled
without the checker, so dead ends, self-loops, threshold loops and unreachable
stages all reach the engine: its own bounds must hold. Only what the compiler's
contract relies on is assumed (stages exist, counts are positive, patterns compile). Invariants after every
step: no exception, unique action keys, content never sent twice (holding-loop
editions apart), a known state, the next due time strictly after the clock, and
thresholds as levels: no threshold of the lead's stage holds after a step, unless
the cascade bound stopped the lead (docs/engine.md, *Score and decay*). The journey's
lead-wide rules (lead score, cap across journeys) are in force: the lead is stepped as
the runner steps it (engine.step.step_lead), and `when lead score` thresholds are levels too.
"""

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from dsl.checks.timing import check_timer_cycles
from dsl.model import EventTrigger, TimeTrigger, compares
from engine.compiler import compile_journey, lead_rules
from engine.events import Event
from engine.record import DONE, WAITING
from engine.step import advance_lead, step_lead
from engine.timers import holds, lead_score_at, score_at

from .strategies import journeys, valid_pattern

T0 = 1_767_225_600



def _event_types(j):
    types = {r.event for r in j.scoring} | {r.event for r in j.exits} | {r.event for r in j.enrollments}
    for s in j.stages:
        types |= {t.event for t in s.triggers if isinstance(t, EventTrigger)}
    return sorted(types | {"lead.updated"})


def _fields(j):
    return sorted({c.field for cond in j.conditions() for c in compares(cond)})


@st.composite
def scenarios(draw):
    j = draw(journeys(max_stages=4))
    types, fields = _event_types(j), _fields(j) or ["x"]
    values = st.one_of(st.integers(-100, 300), st.sampled_from(["pro", "team", "/pricing", "director", ""]),
                       st.booleans())
    steps = draw(st.lists(st.tuples(
        st.sampled_from(["event", "event", "event", "tick"]),
        st.sampled_from(types),
        st.integers(-3600, 20 * 86400),  # a gap; negative: a late event
        st.dictionaries(st.sampled_from(fields), values, max_size=2),
        st.sampled_from(["L1", "L2"]),
    ), min_size=1, max_size=25))
    return j, steps


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_the_engine_never_crashes_and_keeps_its_invariants(scenario):
    journey, steps = scenario
    # what the compiler's contract relies on (the checker guarantees it: C052, C056); nothing else is checked
    assume(journey.stages)
    assume(all(c.count > 0 for c in journey.caps + journey.lead_caps))
    assume(all(r.cap_count is None or r.cap_count > 0 for r in journey.scoring + journey.lead_scoring))
    assume(all(s.hold is None or s.hold.times > 0 for s in journey.stages))
    # C039, C089: `in journey` / `since` timers never restart, so one to its own stage or round a cycle loops
    assume(not any(isinstance(t, TimeTrigger) and t.mode in ("in journey", "since") and t.target == s.id
                   for s in journey.stages for t in s.triggers))
    assume(not list(check_timer_cycles(journey)))
    assume(all(valid_pattern(c.value) for cond in journey.conditions() for c in compares(cond)
               if c.op == "matches"))  # C038
    cj = compile_journey(journey)  # deliberately unchecked: dead ends, loops, unreachable stages
    rules = lead_rules([cj])
    records, wides, keys, sent, stopped = {}, {}, set(), set(), {}
    again = {x.content for s in journey.stages for x in s.sends if x.every_visit}
    now = T0
    for n, (kind, etype, gap, data, lead) in enumerate(steps):
        now = max(T0, now + gap)
        rec = records.get(lead)
        trace: list = []
        mine = {} if rec is None else {cj.name: rec}
        if kind == "tick":
            if rec is None:
                continue
            result = advance_lead([cj], rules, mine, wides.get(lead), lead, now, {cj.name: trace})
        else:
            attributes = data if etype == "lead.updated" else None
            result = step_lead([cj], rules, mine, wides.get(lead), lead,
                               Event(f"e{n}", lead, etype, now, data, attributes), {cj.name: trace})
        new, actions = result.records.get(cj.name), result.actions
        wides[lead] = result.wide
        for a in actions:
            assert a.key not in keys, a.key
            keys.add(a.key)
            if a.kind == "stage" and a.data["rule"] == "re-entered":  # a new visit: `every visit` content again
                assert journey.reentry is not None and journey.reentry.mode != "once"
                sent -= {(a.lead, content) for content in again}
            if a.kind == "send" and "edition" not in a.data:
                assert (a.lead, a.data["content"]) not in sent, a.data
                sent.add((a.lead, a.data["content"]))
        if new is None:
            continue
        assert new.state in cj.stages or new.state in DONE or new.state == WAITING, new.state
        assert new.due is None or new.due > new.clock, (new.due, new.clock)
        if new is not rec:  # a tick with nothing due leaves the lead as its last step left it
            stopped[lead] = any("cascade stopped at its bound" in note for entry in trace for note in entry["notes"])
        if new.state in cj.stages and not stopped[lead]:
            for moment in {new.clock, max(new.clock, now if kind == "tick" else new.clock)}:
                score = score_at(cj, new, moment)
                for name, op, value, lead_wide in cj.stages[new.state].thresholds:
                    mine = lead_score_at(rules, wides[lead], moment) if lead_wide else score
                    assert not holds(op, mine, value), (name, op, value, mine, moment)
        records[lead] = new
