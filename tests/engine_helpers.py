"""Helpers shared by the engine tests: inline journeys, events, a driver for the pure step, stores."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from transitions import Machine

from dsl.loader import load_journey, load_text
from dsl.model import EXIT
from engine.compiler import compile_journey
from engine.events import Event, format_time, parse_time
from engine.record import EXITED
from engine.runner import Runner
from engine.step import advance, step_event
from engine.stores import open_store
from engine.timers import score_at

ROOT = Path(__file__).resolve().parent.parent
JOURNEYS = ROOT / "journeys"
DEMAND = JOURNEYS / "demand_generation.journey"
SAAS = JOURNEYS / "saas_trial.journey"
PYTHON = ROOT / ".venv" / "bin" / "python"
COLTIVA = ROOT / ".venv" / "bin" / "coltiva"

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
MINUTE, HOUR, DAY = 60, 3600, 86400


def journey(text: str):
    """Load, check and compile an inline journey; fail loudly on errors."""
    loaded = load_text(text)
    assert loaded.ok, [str(d) for d in loaded.diagnostics]
    return compile_journey(loaded.journey, loaded.diagnostics)


@lru_cache(maxsize=None)
def example(path: Path):
    loaded = load_journey(path)
    assert loaded.ok, [str(d) for d in loaded.diagnostics]
    return compile_journey(loaded.journey, loaded.diagnostics), loaded.sources


def at(t) -> int:
    return parse_time(t) if isinstance(t, str) else int(t)


def ev(id, type, t, data=None, attributes=None, lead="L1") -> Event:
    return Event(str(id), lead, type, at(t), data, attributes)


def line(id, type, t, data=None, attributes=None, lead="L1") -> str:
    return json.dumps(ev(id, type, t, data, attributes, lead).to_json())


class Driver:
    """Drives one lead of one journey through the pure step, keeping every action."""

    def __init__(self, cj, lead: str = "L1"):
        self.cj = cj
        self.lead = lead
        self.rec = None
        self.actions = []
        self.last = []

    def send(self, type, t, data=None, attributes=None, id=None):
        id = id if id is not None else f"e{len(self.actions)}-{type}-{at(t)}"
        self.rec, self.last = step_event(self.cj, self.rec, self.lead, ev(id, type, t, data, attributes, self.lead))
        self.actions.extend(self.last)
        return self.last

    def tick(self, now):
        self.rec, self.last = advance(self.cj, self.rec, self.lead, at(now))
        self.actions.extend(self.last)
        return self.last

    @property
    def state(self):
        return self.rec.state if self.rec is not None else None

    def score(self, t):
        return score_at(self.cj, self.rec, at(t))

    def of(self, kind, actions=None):
        return [a for a in (self.actions if actions is None else actions) if a.kind == kind]

    def sends(self, actions=None):
        return [(a.data["content"], a.time) for a in self.of("send", actions)]

    def stages(self, actions=None):
        return [(a.data["from"], a.data["to"], a.time) for a in self.of("stage", actions)]


def run_store(path, cjs, lines, batch=5000, source="events.jsonl"):
    """Run lines into the store at `path` (a file or a postgresql:// URL) with a fresh Runner; return the summary."""
    with open_store(path) as store:
        for cj, sources in cjs:
            store.register(cj, sources)
        return Runner(store, [cj for cj, _ in cjs], batch_size=batch).run_lines(lines, source)


def tick_store(path, now, batch=5000):
    with open_store(path) as store:
        return Runner(store, store.journeys(), batch_size=batch).tick(at(now))


def dump(path) -> dict:
    with open_store(path) as store:
        return store.dump()


def outbox(path) -> list[dict]:
    with open_store(path) as store:
        return [action for _, action in store.actions()]


def fresh_machine(model_journey) -> tuple[Machine, object]:
    """A new transitions Machine built straight from the journey model (no conditions, no callbacks)."""

    class Model:
        pass

    model = Model()
    states = [s.id for s in model_journey.stages] + [EXITED]
    machine = Machine(model=model, states=states, initial=model_journey.initial.id, auto_transitions=False)

    def target(t):
        return EXITED if t == EXIT else t

    for s in model_journey.stages:
        for i, t in enumerate(s.triggers):
            machine.add_transition(f"{s.id}#{i}", s.id, target(t.target))
        if s.hold is not None:
            machine.add_transition(f"{s.id}#hold", s.id, target(s.hold.then))
    if model_journey.exits:
        machine.add_transition("exit", [s.id for s in model_journey.stages], EXITED)
    for i, g in enumerate(model_journey.goals):  # a goal: from every stage but a final one and its target
        machine.add_transition(f"goal#{i}", [s.id for s in model_journey.stages
                                             if not s.final and s.id != g.target], target(g.target))
    return machine, model


def iso(t: int) -> str:
    return format_time(t)
