"""Laws of runs where journeys share leads under lead-wide rules: any batch split, any order of the journeys,
replay equality, the cap across journeys never exceeded, nothing left due (deferred, never dropped)."""

from __future__ import annotations

import json
from collections import defaultdict

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.events import parse_time
from engine.explain import explain_lead
from engine.runner import Runner
from engine.stores import open_store as open_any

from .engine_helpers import DAY, HOUR, T0, iso
from .test_engine_properties import Scratch
from .test_lead_wide import compiled

FAST = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
                max_examples=25)

#: At most 2 messages a day to a lead, whatever the journey.
CAP, WINDOW = 2, DAY
SHARED = f"""at most {CAP} messages per 1 day across journeys

lead scoring
  email.clicked +10 at most 3 per 1 day
  page.visited where path starts with "/pricing" +15
  email.unsubscribed -40
  decay half-life 5 days
"""

ALPHA = compiled("alpha", """enroll on form.submitted
priority 2
stage a
  initial
  send email "a1" on entry
  send email "a2" after 2 hours
  when lead score >= 30 -> hot
  hold after 3 days idle: every 1 day send email "a-nudge", 2 times, then -> done
stage hot
  handoff to sales
  send email "a-hot" on entry
  on demo.requested -> done
  after 5 days idle -> done
stage done
  final
""", SHARED)

BETA = compiled("beta", """exit on email.unsubscribed
priority 2
at most 1 message per 2 days
stage b
  initial
  send email "b1" on entry
  send email "b2" after 1 hour
  after 2 days in stage -> later
  when lead score >= 40 -> later
stage later
  send email "b3" on entry
  when lead score < 5 -> cool
  on demo.requested -> cool
stage cool
  final
""", SHARED)

GAMMA = compiled("gamma", """enroll on webinar.attended
scoring
  email.clicked +5
stage g
  initial
  send email "g1" on entry
  send email "g2" after 30 minutes
  when score >= 10 -> g_done
  after 4 days idle -> g_done
stage g_done
  send email "g3" on entry
  final
""", SHARED)

JOURNEYS = [ALPHA, BETA, GAMMA]
_TYPES = ["form.submitted", "email.clicked", "email.clicked", "page.visited", "demo.requested", "webinar.attended",
          "email.unsubscribed", "lead.updated"]


@st.composite
def streams(draw) -> list[str]:
    """A few leads in all three journeys, mostly in time order, some late events, some at the same second."""
    t = T0
    lines = []
    for i in range(draw(st.integers(1, 25))):
        t += draw(st.sampled_from([-DAY, 0, 0, 1, HOUR, 5 * HOUR, DAY, 3 * DAY]))
        kind = draw(st.sampled_from(_TYPES))
        event = {"id": f"e{i}", "lead": draw(st.sampled_from(["p", "q"])), "type": kind, "time": iso(t)}
        if kind == "page.visited":
            event["data"] = {"path": draw(st.sampled_from(["/pricing", "/blog"]))}
        lines.append(json.dumps(event))
    return lines


def _last(lines) -> int:
    return max(parse_time(json.loads(x)["time"]) for x in lines)


def _open(path, journeys):
    store = open_any(path)
    for cj, sources in journeys:
        store.register(cj, sources)
    return store


def _run(path, lines, journeys=JOURNEYS, batch=5000, ticks=(), final=None) -> dict:
    """Lines in runs cut at `ticks` (position, time), each followed by that tick; then a final tick."""
    with _open(path, journeys) as store:
        runner = Runner(store, [cj for cj, _ in journeys], batch_size=batch)
        done = 0
        for position, at in ticks:
            runner.run_lines(lines[done:position], "events.jsonl")
            done = max(done, position)
            runner.tick(at)
        runner.run_lines(lines[done:], "events.jsonl")
        if final is not None:
            runner.tick(final)
        return store.dump()


def _sends(dumped: dict) -> dict[str, list[int]]:
    times = defaultdict(list)
    for row in dumped["outbox"]:
        action = json.loads(row[5])
        if action["kind"] == "send":
            times[action["lead"]].append(parse_time(action["time"]))
    return times


@FAST
@given(streams(), st.integers(1, 7), st.data())
def test_any_batch_split_and_any_order_of_journeys_give_the_same_store(stores, lines, batch, data):
    final = _last(lines) + 60 * DAY
    order = data.draw(st.permutations(JOURNEYS), label="journeys")
    with Scratch(stores) as s:
        reference = _run(s.db(), lines, final=final)
        other = _run(s.db(), lines, order, batch, final=final)
        # the inputs log lists the journeys each input reached in the order given: the same set
        assert [(*row[:5], set(json.loads(row[5]))) for row in other.pop("inputs")] == \
            [(*row[:5], set(json.loads(row[5]))) for row in reference["inputs"]]
        assert other == {k: v for k, v in reference.items() if k != "inputs"}
        # the law the docs promise: no lead gets more than CAP messages in any window, whatever the journey
        for lead, times in _sends(reference).items():
            times.sort()
            for i in range(len(times) - CAP):
                assert times[i + CAP] - times[i] >= WINDOW, (lead, [iso(t) for t in times])
        # deferred, never dropped: after a long time nothing is still due
        assert all(due is None or due > final for _, _, _, _, due, _ in reference["leads"])


@FAST
@given(streams(), st.lists(st.tuples(st.integers(0, 25), st.integers(0, 10 * DAY)), max_size=3))
def test_ticks_between_runs_replay_to_the_stored_records(stores, lines, ticks):
    """Events interleaved with ticks; explain's replay of every lead (all journeys at once) agrees with the store."""
    ticks = sorted((min(p, len(lines)), T0 + at) for p, at in ticks)
    with Scratch(stores) as s:
        db = s.db()
        _run(db, lines, ticks=ticks, final=_last(lines) + 9 * DAY)
        with open_any(db) as store:
            leads = {lead for _, lead, _, _, _, _ in store.dump()["leads"]}
            for lead in leads:
                for e in explain_lead(store, lead):
                    assert e.consistent, (lead, e.journey, e.stored, e.replayed)


@settings(deadline=None, max_examples=8, suppress_health_check=[HealthCheck.too_slow])
@given(streams(), st.integers(2, 3), st.integers(1, 6))
def test_workers_write_the_store_one_process_writes(tmp_path_factory, lines, workers, batch):
    """`--workers N` under lead-wide rules: each lead (all its journeys, its lead-wide record) in one worker."""
    from engine.workers import ParallelRunner

    base = tmp_path_factory.mktemp("workers")
    ticks = [T0 + 2 * DAY, _last(lines) + 30 * DAY]
    dumps = []
    for n in (1, workers):
        path = base / f"w{n}.db"
        with _open(path, JOURNEYS) as store:
            compiled_ = [cj for cj, _ in JOURNEYS]
            if n == 1:
                runner = Runner(store, compiled_, batch_size=batch)
                runner.run_lines(lines, "events.jsonl")
                for t in ticks:
                    runner.tick(t)
            else:
                with ParallelRunner(store, compiled_, n, batch_size=batch) as parallel:
                    parallel.run_lines(lines, "events.jsonl")
                    for t in ticks:
                        parallel.tick(t)
            dumps.append(store.dump())
    assert dumps[1] == dumps[0] and dumps[0]["lead_wide"]
