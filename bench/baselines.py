"""Baselines on the same events as Coltiva: a Machine per lead, a shared Machine with add_model,
a bare dict loop (the floor), and Coltiva's own step on that subset, so ratios compare like with like.

The baselines move leads between stages on event triggers only: no scoring,
caps, decay, timers, fit, sends or actions.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from typing import Callable

from engine.record import EXITED
from engine.step import step_event

__all__ = [
    "step_all",
    "event_table",
    "machine_spec",
    "baseline_per_lead_machine",
    "per_lead_machine_bytes",
    "baseline_shared_add_model",
    "baseline_dict_loop",
    "baseline_coltiva",
]


def step_all(cj, evs, recs) -> int:
    """The timed loop: step every event, keep records in a dict. Returns the number of actions."""
    get = recs.get
    n = 0
    for e in evs:
        rec, acts = step_event(cj, get(e.lead), e.lead, e)
        if rec is not None:
            recs[e.lead] = rec
        n += len(acts)
    return n


def event_table(cj):
    """The journey's event transitions without scoring or timers: {(state, type): [(name, pred, dst)]}."""
    table: dict[tuple[str, str], list] = {}
    for plan in cj.stages.values():
        for etype, rules in plan.events.items():
            for rule in rules:
                t = rule.transition
                table.setdefault((plan.id, etype), []).append((t.id, rule.predicate, t.target))
    exits = set(cj.exit_rules)
    return table, exits


def machine_spec(cj):
    from engine.record import EXITED as X

    states = [s.id for s in cj.journey.stages] + [X]
    table, _ = event_table(cj)
    transitions = []
    for (src, _etype), rules in table.items():
        for name, _pred, dst in rules:
            transitions.append({"trigger": name, "source": src, "dest": dst})
    transitions.append({"trigger": "exit", "source": [s.id for s in cj.journey.stages], "dest": X})
    return states, transitions


def baseline_per_lead_machine(cj, evs) -> float:
    """A transitions.Machine per lead (built when the lead first appears), same event transitions."""
    from transitions import Machine

    states, transitions = machine_spec(cj)
    table, exits = event_table(cj)
    initial = cj.initial

    class Model:
        state: str  # set by the Machine, as is trigger()
        trigger: Callable[[str], bool]

    models: dict[str, Model] = {}
    gc.collect()
    start = time.perf_counter()
    for e in evs:
        m = models.get(e.lead)
        if m is None:
            m = models[e.lead] = Model()
            Machine(model=m, states=states, transitions=transitions, initial=initial, auto_transitions=False)
        if m.state == EXITED:
            continue
        if e.type in exits:
            m.trigger("exit")
            continue
        for name, pred, _dst in table.get((m.state, e.type), ()):
            if pred(e.data):
                m.trigger(name)
                break
    return time.perf_counter() - start


def per_lead_machine_bytes(cj, leads: int = 500) -> float:
    """tracemalloc over `leads` models that each own a transitions.Machine."""
    from transitions import Machine

    states, transitions = machine_spec(cj)

    class Model:
        state: str  # set by the Machine, as is trigger()
        trigger: Callable[[str], bool]

    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    keep = []
    for _ in range(leads):
        m = Model()
        Machine(model=m, states=states, transitions=transitions, initial=cj.initial, auto_transitions=False)
        keep.append(m)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (after - before) / leads


def baseline_shared_add_model(cj, evs) -> float:
    """One shared Machine, one model per lead added with add_model (O(n) per add: O(n²) in all)."""
    from transitions import Machine

    states, transitions = machine_spec(cj)
    table, exits = event_table(cj)
    machine = Machine(model=None, states=states, transitions=transitions, initial=cj.initial,
                      auto_transitions=False)

    class Model:
        state: str  # set by the Machine, as is trigger()
        trigger: Callable[[str], bool]

    models: dict[str, Model] = {}
    gc.collect()
    start = time.perf_counter()
    for e in evs:
        m = models.get(e.lead)
        if m is None:
            m = models[e.lead] = Model()
            machine.add_model(m)
        if m.state == EXITED:
            continue
        if e.type in exits:
            m.trigger("exit")
            continue
        for name, pred, _dst in table.get((m.state, e.type), ()):
            if pred(e.data):
                m.trigger(name)
                break
    return time.perf_counter() - start


def baseline_dict_loop(cj, evs) -> float:
    """The floor: a dict of states and a dict lookup per event, same event transitions."""
    table, exits = event_table(cj)
    initial = cj.initial
    states: dict[str, str] = {}
    gc.collect()
    start = time.perf_counter()
    for e in evs:
        state = states.get(e.lead, initial)
        if state == EXITED:
            continue
        if e.type in exits:
            states[e.lead] = EXITED
            continue
        for _name, pred, dst in table.get((state, e.type), ()):
            if pred(e.data):
                state = dst
                break
        states[e.lead] = state
    return time.perf_counter() - start


def baseline_coltiva(cj, evs) -> float:
    recs: dict = {}
    gc.collect()
    start = time.perf_counter()
    step_all(cj, evs, recs)
    return time.perf_counter() - start


# -- profile ----------------------------------------------------------------------------------
