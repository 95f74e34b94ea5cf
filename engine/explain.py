"""Why a lead is where it is: replay its logged inputs through the pure step, with tracing on.

Nothing extra is stored per step: the input log and the step function are
enough to rebuild every step exactly. The replayed record is compared with the
stored one, so `explain` also proves the store agrees with the journey.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from .compiler import CompiledJourney, lead_rules
from .events import Event, parse_event
from .migrate import follows, switch_lead
from .record import Lead
from .step import TraceStep, advance, advance_lead, step_event, step_lead
from .store import Store

__all__ = ["Explanation", "explain_lead", "replay_lead"]


@dataclass
class Explanation:
    journey: str
    version: str
    trace: list[TraceStep]       # the lead's steps in this journey, as the step traced them
    stored: Lead
    replayed: Lead | None
    replayed_version: str | None = None

    @property
    def steps(self) -> list[dict]:
        """The steps in their JSON form (TraceStep.to_json): what `--format json` and the service write."""
        return [step.to_json() for step in self.trace]

    @property
    def consistent(self) -> bool:
        return self.replayed == self.stored and self.replayed_version == self.version


def replay_lead(store: Store, cj: CompiledJourney, lead: str, inputs: list, trace: list | None = None):
    """(record, version) of `lead` in journey `cj.name` (`cj`: the version that runs now) rebuilt from the
    input log through the pure step.

    Switches of version are inputs too: a lead follows one (engine.migrate.follows)
    with the same `switch_lead` that `coltiva apply` ran, at the same instant."""
    name = cj.name
    versions: dict[str, CompiledJourney] = {cj.version: cj}

    def compiled(version: str) -> CompiledJourney:
        if version not in versions:
            versions[version] = store.compiled(name, version)
        return versions[version]

    mine = [(kind, time, payload) for kind, time, payload, reached in inputs if name in reached]
    switches = [json.loads(payload) for kind, _, payload in mine if kind == "switch"]
    current = switches[0]["from"] if switches else cj.version
    rec: Lead | None = None
    on: str | None = None
    for kind, time, payload in mine:
        if kind == "switch":
            switch = json.loads(payload)
            if rec is not None and on is not None and on != switch["to"] and follows(switch["policy"], rec):
                rec, _ = switch_lead(compiled(on), compiled(switch["to"]), rec, lead, time, trace=trace)
                on = switch["to"]
            current = switch["to"]
        elif kind == "tick":
            if rec is not None and on is not None:
                rec, _ = advance(compiled(on), rec, lead, time, trace)
        else:
            event = parse_event(payload)  # the logged line was valid when it was applied
            assert isinstance(event, Event)
            version = on if rec is not None and on is not None else current
            rec, _ = step_event(compiled(version), rec, lead, event, trace)
            on = version if rec is not None else None
    return rec, on


def replay_together(store: Store, journeys: list[CompiledJourney], lead: str, inputs: list,
                    traces: dict[str, list]) -> dict[str, tuple[Lead | None, str | None]]:
    """(record, version) of `lead` in each journey, replayed in all journeys at once (under lead-wide rules).

    Under lead-wide rules journeys act on each other (one cap, one lead score), so a
    lead is replayed as the runner steps it: `step_lead` and `advance_lead` over the
    journeys each input reached, with the lead-wide rules in force at that input: those of the versions
    that ran then (a switch may add, change or drop them; the runner stepped with the rules of its day)."""
    current = {cj.name: cj.version for cj in journeys}
    known: dict[tuple[str, str], CompiledJourney] = {(cj.name, cj.version): cj for cj in journeys}

    def compiled(name: str, version: str) -> CompiledJourney:
        if (name, version) not in known:
            known[(name, version)] = store.compiled(name, version)
        return known[(name, version)]

    first: set[str] = set()
    for kind, _, payload, _ in inputs:  # the version that ran at the start: the first switch's `from`
        if kind == "switch" and json.loads(payload)["journey"] in current.keys() - first:
            switch = json.loads(payload)
            current[switch["journey"]] = switch["from"]
            first.add(switch["journey"])
    def rules_of(versions: dict[str, str]):
        return lead_rules([compiled(name, version) for name, version in versions.items()])

    rules = rules_of(current)
    records: dict[str, Lead] = {}
    on: dict[str, str] = {}
    wide = None
    for kind, time, payload, reached in inputs:
        if kind == "switch":
            switch = json.loads(payload)
            name = switch["journey"]
            if name not in current:
                continue
            rules = rules_of({**current, name: switch["to"]})  # the switch itself runs under the new rules
            rec = records.get(name)
            if rec is not None and on[name] != switch["to"] and follows(switch["policy"], rec):
                records[name], _ = switch_lead(compiled(name, on[name]), compiled(name, switch["to"]), rec, lead,
                                               time, trace=traces.get(name), wide=wide, rules=rules)
                on[name] = switch["to"]
            current[name] = switch["to"]
            continue
        names = [name for name in current if name in reached]
        here = [compiled(name, on.get(name, current[name])) for name in names]
        mine = {name: records[name] for name in names if name in records}
        if kind == "tick":
            result = advance_lead(here, rules, mine, wide, lead, time, traces)
        else:
            event = parse_event(payload)  # the logged line was valid when it was applied
            assert isinstance(event, Event)
            result = step_lead(here, rules, mine, wide, lead, event, traces)
        wide = result.wide
        for name, rec in result.records.items():
            records[name] = rec
            on.setdefault(name, current[name])
    return {name: (records.get(name), on.get(name)) for name in current}


def explain_lead(store: Store, lead: str) -> list[Explanation]:
    records = store.lead_versions(lead)
    inputs = store.lead_inputs(lead)
    out = []
    journeys = store.journeys()
    together = None
    if lead_rules(journeys).active or store.load_wides([lead]):  # rules now, or rules an earlier version had
        traces: dict[str, list[TraceStep]] = {cj.name: [] for cj in journeys}
        together = replay_together(store, journeys, lead, inputs, traces)
    for cj in journeys:
        if cj.name not in records:
            continue
        trace: list[TraceStep] = []
        if together is not None:
            trace = traces[cj.name]
            rec, on = together[cj.name]
        else:
            rec, on = replay_lead(store, cj, lead, inputs, trace)
        stored = records[cj.name]
        if store.format < 2:
            on = stored.version  # a format 1 store read as it is: its versions hashed the pickle, not the text
        out.append(Explanation(cj.name, stored.version, trace, stored.record, rec, on))
    return out
