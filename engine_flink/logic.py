"""What the Flink job does for one lead, without Flink: so it can be read, and tested, on its own.

A lead's state is one JSON text: a change counter, the lead's record in each
journey (`Lead.to_list()`, never a pickle) and, under lead-wide rules, its
lead-wide record (`LeadWide.to_list()`). An event is stepped through every
journey of the run at once with `engine.step.step_lead`, exactly as
`engine.runner.Runner` does; a tick advances every journey to a time with
`advance_lead`, exactly as `Runner.tick`. The Flink functions
(engine_flink.job) only carry this state in keyed state and call these.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from dsl.errors import ColtivaError
from dsl.loader import load_sources
from engine.compiler import CompiledJourney, LeadRules, compile_journey, lead_rules
from engine.events import Event, Malformed, parse_event, parse_time
from engine.record import Action, Lead, LeadWide
from engine.runner import BUILTIN_TYPES
from engine.step import LeadStep, advance_lead, step_lead

__all__ = ["LeadState", "Stepped", "Tick", "Keyed", "Rejected", "classify", "apply_event", "apply_tick",
           "rebuild_journeys", "known_types", "action_line", "action_from_line", "record_line"]


@dataclass(frozen=True)
class Tick:
    """A tick line, `{"tick": TIME}`: time passes for every lead (it moves the watermark)."""
    time: int


@dataclass(frozen=True)
class Keyed:
    """A well-formed event line: its lead (the key), its time, and the line itself."""
    lead: str
    time: int
    line: str


@dataclass(frozen=True)
class Rejected:
    """A line kept aside (quarantine), with the reason, as `coltiva quarantine` shows it."""
    reason: str
    line: str

    def to_line(self) -> str:
        return json.dumps({"reason": self.reason, "line": self.line}, ensure_ascii=False)


@dataclass
class LeadState:
    """One lead's records in every journey, its seen event ids, and its timer: one JSON text in Flink.

    `changes` counts record changes (it orders the records changelog); `seen` maps each event id
    to its time, forgotten `ttl` seconds of the lead's event time later; `timer` is the one event-time
    timer registered for the lead (milliseconds), so it can be moved.
    """
    changes: int = 0
    records: dict[str, Lead] = field(default_factory=dict)
    seen: dict[str, int] = field(default_factory=dict)
    timer: int | None = None
    wide: LeadWide | None = None

    def to_text(self) -> str:
        data = {"changes": self.changes, "records": {name: rec.to_list() for name, rec in self.records.items()},
                "seen": self.seen, "timer": self.timer}
        if self.wide is not None:  # only under lead-wide rules: a state without them reads as before
            data["wide"] = self.wide.to_list()
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_text(cls, text: str | None) -> "LeadState":
        if not text:
            return cls()
        data = json.loads(text)
        wide = data.get("wide")
        return cls(data["changes"], {name: Lead.from_list(r) for name, r in data["records"].items()},
                   data["seen"], data["timer"], None if wide is None else LeadWide.from_list(wide))

    def due(self) -> int | None:
        """The earliest time something is due in any journey: where the lead's one timer goes."""
        times = [r.due for r in self.records.values() if r.due is not None]
        return min(times) if times else None

    def duplicate(self, event: Event, ttl: int) -> bool:
        """True if the event's id was seen; else remember it. Ids older than `ttl` seconds before the
        latest event time of the lead are forgotten first: a duplicate later than that is applied again."""
        if event.id in self.seen:
            return True
        horizon = max([event.time, *self.seen.values()]) - ttl
        if any(t < horizon for t in self.seen.values()):
            self.seen = {i: t for i, t in self.seen.items() if t >= horizon}
        self.seen[event.id] = event.time
        return False


@dataclass(frozen=True)
class Stepped:
    """What one input did to a lead: the journeys whose record changed, and the actions in order."""
    changed: tuple[str, ...]
    actions: tuple[Action, ...]


def rebuild_journeys(shipped: list[dict]) -> list[CompiledJourney]:
    """Compile journeys from their source texts (shipped to every worker as text, never pickled)."""
    compiled = []
    for item in shipped:
        loaded = load_sources(item["sources"])
        if not loaded.ok or loaded.journey is None:
            raise ColtivaError(f"journey {item['name']!r} no longer checks on this worker")
        cj = compile_journey(loaded.journey, loaded.diagnostics)
        if cj.version != item["version"]:
            raise ColtivaError(f"journey {item['name']!r} compiled to another version on this worker")
        compiled.append(cj)
    return compiled


def known_types(journeys: list[CompiledJourney]) -> frozenset[str]:
    return frozenset().union(*(j.event_types for j in journeys)) | BUILTIN_TYPES


def classify(line: str, known: frozenset[str]) -> Tick | Keyed | Rejected | None:
    """One input line: a tick, an event for a lead, a line kept aside, or None for a blank line."""
    if not line.strip():
        return None
    if line.lstrip().startswith('{"tick"'):
        try:
            data = json.loads(line)
            if isinstance(data, dict) and list(data) == ["tick"] and isinstance(data["tick"], str):
                return Tick(parse_time(data["tick"]))
        except ValueError as err:
            return Rejected(f"a tick line with a bad time: {err}", line)
    parsed = parse_event(line, known)
    if isinstance(parsed, Malformed):
        return Rejected(parsed.reason, line)
    return Keyed(parsed.lead, parsed.time, line)


_RULES: dict[tuple, LeadRules] = {}


def _rules(journeys: list[CompiledJourney]) -> LeadRules:
    """The lead-wide rules of the journeys (compiled once per set of versions)."""
    key = tuple((j.name, j.version) for j in journeys)
    if key not in _RULES:
        _RULES[key] = lead_rules(journeys)
    return _RULES[key]


def _keep(state: LeadState, step: LeadStep) -> Stepped:
    changed = []
    for name, new in step.records.items():
        if new is not state.records.get(name):
            state.records[name] = new
            changed.append(name)
    if step.wide is not state.wide:
        state.wide = step.wide
    if changed:
        state.changes += 1
    return Stepped(tuple(changed), tuple(step.actions))


def apply_event(journeys: list[CompiledJourney], state: LeadState, event: Event) -> Stepped:
    """Step an event through every journey at once, all or none (a step that raises leaves state as it was)."""
    return _keep(state, step_lead(journeys, _rules(journeys), state.records, state.wide, event.lead, event))


def apply_tick(journeys: list[CompiledJourney], state: LeadState, lead: str, now: int) -> Stepped:
    """Fire everything due up to `now` in every journey of the lead (what `coltiva tick` does to it)."""
    return _keep(state, advance_lead(journeys, _rules(journeys), state.records, state.wide, lead, now))


def action_line(action: Action) -> str:
    """An action as one JSON line (the outbox's form): `key` makes delivery idempotent downstream."""
    return json.dumps(action.to_json(), ensure_ascii=False, separators=(",", ":"))


_ACTION_COLUMNS = ("key", "kind", "journey", "version", "lead", "time")


def action_from_line(line: str) -> Action:
    """The Action an `action_line` holds (what a sink writes to the outbox)."""
    data = json.loads(line)
    return Action(data["kind"], data["journey"], data["version"], data["lead"], parse_time(data["time"]),
                  data["key"], {k: v for k, v in data.items() if k not in _ACTION_COLUMNS})


def record_line(lead: str, journey: str, state: LeadState) -> str:
    """One line of the records changelog: the lead's record in a journey after its `changes`-th change."""
    return json.dumps({"lead": lead, "journey": journey, "changes": state.changes,
                       "record": state.records[journey].to_list()}, ensure_ascii=False, separators=(",", ":"))

