"""Properties of runs over the example journeys: batch sizes, restarts, replays, duplicates, the machine."""

from __future__ import annotations

import json
from collections import defaultdict

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coltiva.sample import generate
from engine.record import EXITED, NOT_ENROLLED, WAITING
from engine.runner import Runner
from engine.stores import open_store as open_any

from .engine_helpers import DAY, DEMAND, HOUR, JOURNEYS as EXAMPLES, SAAS, T0, example, fresh_machine, iso

# the win-back re-enters and repeats `every visit` content; the lifecycle program takes internal actions
JOURNEYS = [example(DEMAND), example(SAAS), example(EXAMPLES / "win_back.journey"),
            example(EXAMPLES / "hubspot_lifecycle.journey")]
COMPILED = [cj for cj, _ in JOURNEYS]
BY_NAME = {cj.name: cj for cj in COMPILED}
KNOWN = frozenset().union(*(cj.event_types for cj in COMPILED)) | {"lead.updated"}

FAST = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- streams ------------------------------------------------------------------------------------

_SAAS_TYPES = ["trial.started", "trial.started", "app.logged_in", "app.logged_in", "app.feature_used",
               "app.invited_teammate", "page.visited", "subscription.started", "sales.rejected",
               "trial.extended", "email.unsubscribed", "lead.updated", "form.submitted", "demo.requested",
               "webinar.attended", "email.opened", "subscription.lapsed", "subscription.lapsed",
               "subscription.renewed", "email.clicked", "deal.created", "deal.won", "sales.accepted"]
_DATA = {
    "app.feature_used": st.sampled_from([{"feature": "reports"}, {"feature": "automation"}, {"feature": "chat"}]),
    "page.visited": st.sampled_from([{"path": "/pricing"}, {"path": "/blog"}, {"path": "/pricing/team"}]),
    "form.submitted": st.sampled_from([{"form": "newsletter"}, {"form": "contact"}]),
}
_ATTRS = st.sampled_from([None, {"company": {"size": 80}, "plan": "team"}, {"company.size": 10},
                          {"job": {"title": "VP Marketing"}, "country": "IT"}])


#: Lapses, renewals and activity: leads leave the win-back and come back (re-entry, `every visit`).
_LAPSE_TYPES = ["subscription.lapsed", "subscription.lapsed", "subscription.renewed", "email.clicked",
                "app.logged_in", "email.unsubscribed", "lead.updated"]


@st.composite
def handmade(draw, types=_SAAS_TYPES) -> list[str]:
    """A small stream over the journeys: a few leads, mostly in time order, some late events."""
    n = draw(st.integers(1, 30))
    t = T0
    lines = []
    for i in range(n):
        t += draw(st.sampled_from([-DAY, 0, 1, HOUR, DAY, 2 * DAY, 3 * DAY, 9 * DAY, 20 * DAY]))
        kind = draw(st.sampled_from(types))
        event = {"id": f"h{i}", "lead": draw(st.sampled_from(["p", "q", "r"])), "type": kind, "time": iso(t)}
        if kind in _DATA:
            event["data"] = draw(_DATA[kind])
        attributes = draw(_ATTRS)
        if attributes:
            event["attributes"] = attributes
        lines.append(json.dumps(event))
    return lines


@st.composite
def sampled(draw) -> list[str]:
    return generate(draw(st.integers(1, 6)), draw(st.sampled_from([30, 60, 120])), draw(st.integers(0, 10**6)))


streams = st.one_of(handmade(), sampled(), handmade(_LAPSE_TYPES))


def _last_time(lines) -> int:
    from engine.events import Event, parse_event

    times = [e.time for e in map(parse_event, lines) if isinstance(e, Event)]
    return max(times, default=T0)


# -- running ------------------------------------------------------------------------------------

class Scratch:
    """Fresh stores of the test's backend (SQLite files or PostgreSQL schemas), removed at the end:
    hypothesis examples cannot share pytest's tmp_path."""

    def __init__(self, stores):
        self.stores = stores
        self.made = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for target in self.made:
            self.stores.drop(target)

    def db(self):
        self.made.append(self.stores("p"))
        return self.made[-1]


def open_store(path):
    store = open_any(path)
    for cj, sources in JOURNEYS:
        store.register(cj, sources)
    return store


def run(path, lines, batch=5000, tick=None):
    with open_store(path) as store:
        runner = Runner(store, COMPILED, batch_size=batch)
        runner.run_lines(lines, "events.jsonl")
        if tick is not None:
            runner.tick(tick)


def dump(path) -> dict:
    with open_any(path) as store:
        return store.dump()


def without_line_numbers(d: dict) -> dict:
    return {**d, "quarantine": [(source, reason, raw) for source, _, reason, raw in d["quarantine"]]}


def outbox(d: dict) -> list[dict]:
    return [json.loads(row[5]) for row in d["outbox"]]


# -- checks on a finished store -----------------------------------------------------------------

def assert_no_content_twice(d: dict) -> None:
    """Each content once per lead, but `every visit` content once per visit (docs/engine.md, Re-entry)."""
    seen = set()
    editions = defaultdict(list)
    visits: dict[tuple, int] = defaultdict(int)
    keys = [row[0] for row in d["outbox"]]
    assert len(keys) == len(set(keys)), "duplicate outbox keys"
    for a in outbox(d):
        if a["kind"] == "stage" and a["rule"] == "re-entered":
            visits[(a["journey"], a["lead"])] += 1
        if a["kind"] != "send":
            continue
        if "edition" in a:  # holding-loop editions: distinct within one stall of one stage
            editions[(a["journey"], a["lead"], a["stage"], a["content"])].append(a)
            continue
        again = BY_NAME[a["journey"]].again_bits & BY_NAME[a["journey"]].content_bits[a["content"]]
        ident = (a["journey"], a["lead"], a["content"], visits[(a["journey"], a["lead"])] if again else None)
        assert ident not in seen, f"sent twice: {ident}"
        seen.add(ident)
    for ident, sends in editions.items():
        numbers = [a["edition"] for a in sends]
        assert numbers[0] == 1, (ident, numbers)
        for prev, cur in zip(numbers, numbers[1:]):  # 1, 2, ..., then 1 again only after a reset
            assert cur == prev + 1 or cur == 1, (ident, numbers)
        keys = [(a["edition"], a["time"]) for a in sends]
        assert len(keys) == len(set(keys)), (ident, keys)


def _rule_names(cj) -> dict[str, str]:
    names = {}
    for name, text in cj.rules.items():
        if name.startswith("score#"):
            continue
        assert text not in names, f"two transitions describe themselves alike: {text}"
        names[text] = name
    return names


def assert_stages_follow_a_fresh_machine(d: dict) -> None:
    stored = {(j, lead): state for j, lead, _, state, _, _ in d["leads"]}
    moves = defaultdict(list)
    for a in outbox(d):
        if a["kind"] in ("stage", "exit"):
            moves[(a["journey"], a["lead"])].append(a)
    assert set(moves) <= set(stored)
    for key, state in stored.items():  # a first event that is an exit event: never enrolled, no action
        assert key in moves or state in (NOT_ENROLLED, WAITING), key
    for (journey, lead), acts in moves.items():
        cj = BY_NAME[journey]
        names = _rule_names(cj)
        model = cj.journey
        first = acts[0]
        assert first["kind"] == "stage" and first["from"] is None and first["rule"] == "enrolled"
        assert first["to"] == model.initial.id
        machine, obj = fresh_machine(model)
        for prev, a in zip(acts, acts[1:]):
            to = a["to"] if a["kind"] == "stage" else EXITED
            assert a["from"] == (prev["to"] if prev["kind"] == "stage" else EXITED), (lead, prev, a)
            if a["rule"] == "re-entered":  # a finished lead's new visit starts at the initial stage
                assert cj.reentry[0] != "once" and to == model.initial.id
                assert a["from"] == EXITED or model.stage(a["from"]).final, (lead, a)
                machine, obj = fresh_machine(model)
                continue
            name = names[a["rule"]]
            stage = next(s for s in model.stages if s.id == a["from"])
            # the rule is a declared way out of `from` that leads to `to`
            if name == "exit" or name.startswith("exit#"):  # the one `exit` transition serves every exit rule
                assert to == EXITED and model.exits and int(name.partition("#")[2] or 0) < len(model.exits)
                name = "exit"
            elif name.startswith("goal#"):  # a goal: from any stage but a final one and its own target
                goal = model.goals[int(name.partition("#")[2])]
                assert goal.target == to and not stage.final and stage.id != goal.target
            elif name.endswith("#hold"):
                assert name == f"{stage.id}#hold" and stage.hold is not None
            else:
                owner, index = name.split("#")
                assert owner == stage.id and int(index) < len(stage.triggers)
            obj.trigger(name)
            assert obj.state == to, (lead, name, obj.state, to)
        assert obj.state == stored[(journey, lead)], (lead, obj.state, stored[(journey, lead)])


# -- the properties -----------------------------------------------------------------------------

@FAST
@given(streams, st.integers(1, 40))
def test_any_batch_size_gives_the_same_store(stores, lines, batch):
    tick = _last_time(lines) + 400 * DAY
    with Scratch(stores) as s:
        one, other = s.db(), s.db()
        run(one, lines, 5000, tick)
        run(other, lines, batch, tick)
        reference = dump(one)
        assert dump(other) == reference
        assert_no_content_twice(reference)
        assert_stages_follow_a_fresh_machine(reference)


@FAST
@given(streams, st.data())
def test_any_split_into_runs_gives_the_same_store(stores, lines, data):
    tick = _last_time(lines) + 400 * DAY
    cuts = sorted(data.draw(st.lists(st.integers(0, len(lines)), max_size=5)))
    with Scratch(stores) as s:
        one, other = s.db(), s.db()
        run(one, lines, 5000, tick)
        bounds = [0, *cuts, len(lines)]
        store = open_store(other)
        runner = Runner(store, COMPILED)
        for lo, hi in zip(bounds, bounds[1:]):
            if data.draw(st.booleans(), label="new runner"):
                store.close()
                store = open_store(other)
                runner = Runner(store, COMPILED)
            runner.batch_size = data.draw(st.integers(1, 10), label="batch")
            runner.run_lines(lines[lo:hi], "events.jsonl")
        runner.tick(tick)
        store.close()
        # line numbers count from each call's first line; everything else is identical
        assert without_line_numbers(dump(other)) == without_line_numbers(dump(one))


@FAST
@given(streams, st.data())
def test_interrupted_and_resumed_equals_uninterrupted(stores, lines, data):
    k = data.draw(st.integers(0, len(lines)), label="k")
    batch = data.draw(st.integers(1, 20), label="batch")
    tick = _last_time(lines) + 400 * DAY
    with Scratch(stores) as s:
        one, other = s.db(), s.db()
        run(one, lines, batch, tick)
        run(other, lines[:k], batch)  # the first process stops after k lines
        run(other, lines, batch, tick)  # a new one runs the whole file again
        assert dump(other) == dump(one)


@FAST
@given(streams, st.lists(st.tuples(st.integers(0, 40), st.integers(0, 200 * DAY)), max_size=4))
def test_replaying_the_inputs_log_gives_the_same_leads_and_outbox(stores, lines, ticks):
    """Events interleaved with ticks; the inputs log, replayed in order into a fresh store, agrees."""
    with Scratch(stores) as s:
        one, other = s.db(), s.db()
        with open_store(one) as store:
            runner = Runner(store, COMPILED, batch_size=7)
            done = 0
            for position, offset in sorted(ticks):
                position = min(position, len(lines))
                runner.run_lines(lines[done:position], "events.jsonl")
                done = max(done, position)
                runner.tick(T0 + offset)
            runner.run_lines(lines[done:], "events.jsonl")
            runner.tick(_last_time(lines) + 400 * DAY)
            log = [(kind, time, event) for kind, _, _, time, event, _ in store.dump()["inputs"]]
        with open_store(other) as store:
            runner = Runner(store, COMPILED, batch_size=3)
            for kind, time, event in log:
                if kind == "tick":
                    runner.tick(time)
                else:
                    runner.run_lines([event], "replay")
        a, b = dump(one), dump(other)
        assert b["leads"] == a["leads"]
        assert b["outbox"] == a["outbox"]
        assert b["transitions"] == a["transitions"]
        assert b["inputs"] == a["inputs"]


@FAST
@given(streams, st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 10)), min_size=1, max_size=10))
def test_duplicates_anywhere_after_the_original_change_nothing(stores, lines, copies):
    from engine.events import Event, parse_event

    valid = [i for i, text in enumerate(lines) if isinstance(parse_event(text, KNOWN), Event)]
    noisy = list(lines)
    if valid:
        for pick, delay in copies:
            i = valid[pick % len(valid)]
            position = noisy.index(lines[i]) + 1 + delay  # somewhere after the first copy
            noisy.insert(min(position, len(noisy)), lines[i])
    tick = _last_time(lines) + 400 * DAY
    with Scratch(stores) as s:
        one, other = s.db(), s.db()
        run(one, lines, 4, tick)
        run(other, noisy, 4, tick)
        assert without_line_numbers(dump(other)) == without_line_numbers(dump(one))


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10**6))
def test_no_content_twice_and_stages_follow_the_machine_on_a_bigger_sample(stores, seed):
    lines = generate(25, 150, seed)
    with Scratch(stores) as s:
        db = s.db()
        with open_store(db) as store:
            runner = Runner(store, COMPILED, batch_size=64)
            runner.run_lines(lines, "sample")
            for days in (30, 90, 200, 400, 800):
                runner.tick(T0 + days * DAY)
        d = dump(db)
    assert_no_content_twice(d)
    assert_stages_follow_a_fresh_machine(d)


@FAST
@given(streams)
def test_same_input_twice_gives_identical_outputs(stores, lines):
    tick = _last_time(lines) + 60 * DAY
    with Scratch(stores) as s:
        one, other = s.db(), s.db()
        run(one, lines, 9, tick)
        run(other, lines, 9, tick)
        assert dump(one) == dump(other)


@FAST
@given(sampled(), st.lists(st.integers(0, 10**6), max_size=6))
def test_ticks_between_time_ordered_events_change_nothing(stores, lines, picks):
    """Time comes from events and `now` alone: ticking at instants no later than the next event
    fires each timer at its own due time, exactly as the next event (or the final tick) would."""
    from engine.events import Event, parse_event

    ordered = sorted((e for e in map(lambda t: parse_event(t, KNOWN), lines) if isinstance(e, Event)),
                     key=lambda e: (e.time, e.id))
    ordered = list({e.id: e for e in ordered}.values())  # without the sample's duplicates
    if not ordered:
        return
    texts = [json.dumps(e.to_json()) for e in ordered]
    end = ordered[-1].time + 400 * DAY
    with Scratch(stores) as s:
        one, other = s.db(), s.db()
        run(one, texts, 5000, end)
        cuts = sorted({p % len(ordered) for p in picks})
        with open_store(other) as store:
            runner = Runner(store, COMPILED, batch_size=5)
            done = 0
            for cut in cuts:
                runner.run_lines(texts[done:cut], "events.jsonl")
                done = cut
                runner.tick(ordered[cut].time)  # up to the next event's own time
            runner.run_lines(texts[done:], "events.jsonl")
            runner.tick(end)
        a, b = dump(one), dump(other)
        assert b["leads"] == a["leads"]
        assert sorted(b["outbox"]) == sorted(a["outbox"])
        assert sorted(b["transitions"], key=repr) == sorted(a["transitions"], key=repr)
