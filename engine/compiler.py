"""A checked journey becomes one `CompiledJourney`: a shared transitions Machine plus lookup tables.

One `Machine(model=None, auto_transitions=False)` per journey version, driven
with `machine.events[id].trigger(record, ctx)`: a per-lead Machine would cost ~34 KiB
and ~1.3 ms per lead. Stages are states (plus EXITED). The transition table
(`CompiledJourney.transitions`, engine.compiled.Transition rows) is built once
here: the Machine gets one transition per row, without conditions (the step
evaluates each condition once and fires the row it chose); entry and exit
callbacks send content, hand off to sales and note what is cancelled (see engine.step).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable
from dataclasses import dataclass, field

from transitions import Machine

from dsl.diagnostics import has_errors
from dsl.errors import JourneyError
from dsl.formatter import canonical_text, format_condition
from dsl.loader import gc_paused
from dsl.model import (EXIT, EventTrigger, HoldLoop, Journey, ScoreRule, ScoreTrigger, Stage, TimeTrigger, compares,
                       hads, lead_field)

from .compiled import (ActPlan, Anchor, Cap, CompiledJourney, DatedSend, EventRule, FitPlan, Hold, Reentry,
                       ScorePlan, Send, SendTest, SinceTimer, StagePlan, THRESHOLD_TESTS, Threshold, Timeout,
                       Transition, TransitionKind)
from .conditions import compile_condition
from .record import EXITED
from .zones import Window

__all__ = ["CompiledJourney", "EXIT_RULE", "GOAL_RULE", "LeadRules",
           "lead_rules", "NO_LEAD_RULES", "compile_journey", "journey_version", "version_of",
           "THRESHOLD_TESTS"]

#: How the rule of an `exit` action begins (then which rule, with its line): readers such as the counts
#: overlay tell an exit rule from a trigger to `exit` by it.
EXIT_RULE = "an exit rule matched"
#: How the rule of a move by a journey-level goal begins.
GOAL_RULE = "goal"



def _act_data(act) -> tuple:
    if act.kind == "notify":
        return (("to", "owner" if act.to is None else act.to), ("message", act.value))
    if act.kind == "set_field":
        return (("field", act.to), ("value", act.value))
    name = {"task": "title", "tag": "tag", "add_to_list": "list", "webhook": "webhook"}[act.kind]
    return ((name, act.value),)


def journey_version(journey: Journey) -> str:
    """A hash of the journey's canonical text: layout, comments, files and positions do not change it."""
    return version_of(canonical_text(journey))


def version_of(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def _plan_stage(stage: Stage, rows: list[tuple[Transition, object]], bits: dict[str, int],
                anchors: tuple[Anchor, ...], marks: tuple[str, ...]) -> StagePlan:
    """The stage's plan; `rows`: its transitions (from `_transition_table`) with what each was written as."""
    sends: list[Send] = []
    dated: list[DatedSend] = []
    tests: dict[int, SendTest] = {}
    for send in stage.sends:
        if send.condition is not None:
            text = f"{'unless' if send.unless else 'if'} {format_condition(send.condition)}"
            tests[bits[send.content]] = SendTest(compile_condition(send.condition), send.unless, text)
        if send.at is not None:
            dated.append(DatedSend(anchors.index(_anchor_key(send.at)), send.at.seconds, send.at.past,
                                   bits[send.content], send.kind, send.content))
            continue
        offset = 0 if send.after is None else send.after.seconds
        sends.append(Send(offset, bits[send.content], send.kind, send.content))
    events: dict[str, list[EventRule]] = {}
    thresholds: list[Threshold] = []
    timeouts: list[Timeout] = []
    since: list[SinceTimer] = []
    hold: Hold | None = None
    for row, t in rows:
        if isinstance(t, EventTrigger):
            rule = EventRule(compile_condition(t.condition), row)
            for event in t.events:
                events.setdefault(event, []).append(rule)
        elif isinstance(t, ScoreTrigger):
            thresholds.append(Threshold(row, t.op, float(t.value), t.lead))
        elif isinstance(t, TimeTrigger) and t.mode == "since":
            assert t.content is not None, "a checked `since` timer names its content"
            since.append(SinceTimer(row, marks.index(t.content), t.after.seconds))
        elif isinstance(t, TimeTrigger):
            timeouts.append(Timeout(row, t.mode, t.after.seconds))
        elif isinstance(t, HoldLoop):
            hold = Hold(t.stall_after.seconds, t.every.seconds, t.times, t.kind, t.content, bits[t.content], row)
    acts: list[ActPlan] = []
    delayed = 0
    for i, act in enumerate(stage.actions):
        offset = 0 if act.after is None else act.after.seconds
        bit = 0 if offset == 0 else 1 << delayed
        delayed += offset != 0
        acts.append(ActPlan(offset, bit, act.kind, f"{act.kind}:{stage.id}#{i}", _act_data(act)))
    return StagePlan(stage.id, stage.final, stage.handoff, tuple(sends),
                     {event: tuple(rules) for event, rules in events.items()}, tuple(thresholds), tuple(timeouts),
                     hold, tuple(dated), tuple(since), tests, tuple(acts))


def _anchor_key(anchor) -> Anchor:
    return Anchor(anchor.event, anchor.field)


def _window(w) -> Window:
    return Window(w.kind == "only", frozenset(w.days), w.start, w.end)


def _target_state(target: str) -> str:
    return EXITED if target == EXIT else target


def _where(journey: Journey, span) -> str:
    """Where a rule is written: `line N`, or `FILE:N` for a rule from an included file."""
    if span.file not in (journey.path, "<string>") and span.file:
        return f"{Path(span.file).name}:{span.line}"
    return f"line {span.line}"


def _on(rule) -> str:
    return " or ".join(rule.events) + ("" if rule.condition is None else " where ...")


def _trigger_kind(t) -> TransitionKind:
    if isinstance(t, EventTrigger):
        return "event"
    if isinstance(t, ScoreTrigger):
        return "threshold"
    return "since" if t.mode == "since" else "timeout"


def _trigger_text(t) -> str:
    if isinstance(t, EventTrigger):
        return f"on {_on(t)}"
    if isinstance(t, ScoreTrigger):
        return f"when {'lead ' if t.lead else ''}score {t.op} {t.value:g}"
    return f"after {t.after} {t.clock}"


def _transition_table(journey: Journey) -> list[tuple[Transition, object]]:
    """Every transition of the journey, each once, with the model element it was written as.

    The only place transition ids are made: `STAGE#i` for the i-th trigger of a
    stage, `STAGE#hold` for the end of its holding loop, `goal#i`, `exit#i`."""
    rows: list[tuple[Transition, object]] = []
    for s in journey.stages:
        for i, t in enumerate(s.triggers):
            rows.append((Transition(f"{s.id}#{i}", _trigger_kind(t), (s.id,), _target_state(t.target),
                                    f"{s.id}: {_trigger_text(t)} -> {t.target} (line {t.span.line})", t.span.line),
                         t))
        if s.hold is not None:
            h = s.hold
            rows.append((Transition(f"{s.id}#hold", "hold", (s.id,), _target_state(h.then),
                                    f"{s.id}: holding loop ended -> {h.then} (line {h.span.line})", h.span.line), h))
    # exit rules remove a lead from any stage but a final one: a finished lead stays where it ended
    not_final = tuple(s.id for s in journey.stages if not s.final)
    for i, r in enumerate(journey.exits):
        rows.append((Transition(f"exit#{i}", "exit", not_final, EXITED,
                                f"{EXIT_RULE}: exit on {_on(r)} ({_where(journey, r.span)})", r.span.line), r))
    # a goal moves a lead from any stage but a final one and its own target (docs/engine.md, Goals)
    for i, g in enumerate(journey.goals):
        sources = tuple(s.id for s in journey.stages if not s.final and s.id != g.target)
        rows.append((Transition(f"goal#{i}", "goal", sources, _target_state(g.target),
                                f"{GOAL_RULE}: on {_on(g)} -> {g.target} ({_where(journey, g.span)})", g.span.line),
                     g))
    return rows


def _build_machine(journey: Journey, table: tuple[Transition, ...], callbacks) -> Machine:
    """The journey's one Machine: its stages as states, one transition per row of the table, no conditions."""
    states = []
    for s in journey.stages:
        states.append({"name": s.id, "on_enter": [callbacks.on_enter], "on_exit": [callbacks.on_exit]})
    states.append({"name": EXITED, "on_enter": [callbacks.on_exit_journey]})
    assert journey.initial is not None, "a checked journey has a first stage"
    machine = Machine(
        model=None,
        states=states,
        initial=journey.initial.id,
        auto_transitions=False,
        send_event=False,
        ignore_invalid_triggers=False,
    )
    for row in table:
        if row.sources:  # a goal every other stage of which is final has nowhere to move a lead from
            machine.add_transition(row.id, list(row.sources), row.target)
    return machine


def _rules_by_type(rules, build) -> dict[str, tuple]:
    """Compiled rules by the event types they take (`on a or b`: under both), in declaration order."""
    table: dict[str, list] = {}
    for i, rule in enumerate(rules):
        for event in getattr(rule, "events", (rule.event,)):
            table.setdefault(event, []).append(build(i, rule))
    return {event: tuple(built) for event, built in table.items()}


def _score_rules(rules, cap_slots: dict[int, int],
                 text: Callable[[ScoreRule], str]) -> dict[str, tuple[ScorePlan, ...]]:
    """Score rules by event type; `text(rule)`: how explain names the rule."""
    return _rules_by_type(
        rules,
        lambda i, r: ScorePlan(compile_condition(r.condition) if r.condition else None, r.points, r.cap_count,
                               r.cap_window.seconds if r.cap_window else None, cap_slots.get(i), text(r)),
    )


def _cap_slots(rules) -> dict[int, int]:
    """Each capped score rule gets a slot in a record's `caps` tuple."""
    return {i: slot for slot, i in enumerate(i for i, r in enumerate(rules) if r.cap_count)}


@dataclass(frozen=True)
class LeadRules:
    """The lead-wide rules of a run: one lead score and one cap per lead, whatever the journey.

    Compiled from the journeys that run now (they must agree, C113); a lead on an
    older version of a journey obeys these too.
    """

    score_rules: dict[str, tuple[ScorePlan, ...]] = field(default_factory=dict)  # as CompiledJourney.score_rules
    cap_slots: int = 0
    half_life: int | None = None
    caps: tuple[Cap, ...] = ()
    caps_text: str = ""                              # the cap lines, for explain

    @property
    def active(self) -> bool:
        """Whether leads need a lead-wide record at all: without these rules journeys never interact."""
        return bool(self.score_rules or self.caps or self.half_life)


NO_LEAD_RULES = LeadRules()


def lead_rules(journeys) -> LeadRules:
    """The one set of lead-wide rules of the compiled journeys; JourneyError (C113) if they disagree."""
    from dsl.checks.lead import check_lead_agreement

    models = [cj.journey for cj in journeys]
    conflicts = check_lead_agreement(models)
    if conflicts:
        raise JourneyError(conflicts[0].message, conflicts)
    j = next((m for m in models if m.lead_scoring or m.lead_decay or m.lead_caps), None)
    if j is None:
        return NO_LEAD_RULES
    slots = _cap_slots(j.lead_scoring)
    return LeadRules(
        score_rules=_score_rules(j.lead_scoring, slots,
                                 lambda r: f"lead score: {r.event} {r.points:+d} (line {r.span.line})"),
        cap_slots=len(slots),
        half_life=j.lead_decay.half_life.seconds if j.lead_decay else None,
        caps=tuple(Cap(c.count, c.window.seconds) for c in j.lead_caps),
        caps_text="; ".join(f"at most {c.count} message{'' if c.count == 1 else 's'} per {c.window} across journeys"
                            for c in j.lead_caps),
    )


@dataclass(frozen=True)
class _Walked:
    """What the compiler reads from every condition of the journey, walked once (a walk of 1,000 stages' ~3 ms)."""

    compares: tuple  # every comparison, in the order of journey.conditions()
    hads: tuple      # every `had`, likewise

    @staticmethod
    def of(journey: Journey) -> _Walked:
        found_compares: list = []
        found_hads: list = []
        for c in journey.conditions():
            found_compares += compares(c)
            found_hads += hads(c)
        return _Walked(tuple(found_compares), tuple(found_hads))


def _had_bits(walked: _Walked) -> dict[str, int]:
    """A bit per event type that a `had` condition names, in order of first mention."""
    types = dict.fromkeys(h.event for h in walked.hads)
    return {event: 1 << n for n, event in enumerate(types)}


def compile_journey(journey: Journey | None, diagnostics=()) -> CompiledJourney:
    """Compile a journey that checked without errors; refuse one that did not (or that did not build).

    The garbage collector is paused meanwhile, as while loading (`dsl.loader.gc_paused`): compiling
    allocates tens of thousands of closures, rows and plans and frees almost none, so each collection
    walked the whole loaded journey again for nothing (~45 % of compiling 1,000 stages).
    """
    with gc_paused():
        return _compile_journey(journey, diagnostics)


def _compile_journey(journey: Journey | None, diagnostics) -> CompiledJourney:
    if journey is None:  # a load that failed: `Loaded.journey` is None
        raise JourneyError("the journey has errors; run `coltiva check` on it", diagnostics)
    if has_errors(diagnostics) or journey.initial is None:
        raise JourneyError(f"journey {journey.name!r} has errors; run `coltiva check` on it", diagnostics)
    from .step import Callbacks

    bits: dict[str, int] = {}
    # send lines first, then holding-loop content (a later `send` line skips what a loop sent): bits
    # of send lines keep the positions records stored before loops had bits
    contents = [send.content for s in journey.stages for send in s.sends]
    contents += [s.hold.content for s in journey.stages if s.hold is not None]
    for content in contents:
        if content not in bits:
            bits[content] = 1 << len(bits)
    # each capped score rule gets a slot in a lead's `caps` tuple
    cap_slots = _cap_slots(journey.scoring)
    callbacks = Callbacks()
    text = canonical_text(journey)
    anchors = tuple(dict.fromkeys(_anchor_key(a) for a in journey.anchors()))
    timers = [t for s in journey.stages for t in s.triggers if isinstance(t, TimeTrigger)]
    marks = tuple(dict.fromkeys(t.content for t in timers if t.mode == "since" and t.content is not None))
    rows = _transition_table(journey)

    def score_text(r: ScoreRule) -> str:
        return f"{r.event} {r.points:+d} ({_where(journey, r.span)})"

    table = tuple(row for row, _ in rows)
    walked = _Walked.of(journey)
    had_bits = _had_bits(walked)
    own: dict[str, list[tuple[Transition, object]]] = {s.id: [] for s in journey.stages}
    for row, written in rows:
        if row.kind not in ("exit", "goal"):
            own[row.sources[0]].append((row, written))
    exits = [row for row in table if row.kind == "exit"]    # in the order the exit rules are written
    goals = [row for row in table if row.kind == "goal"]    # likewise the goals
    cj = CompiledJourney(
        name=journey.name or journey.path,
        version=version_of(text),
        journey=journey,
        text=text,
        machine=_build_machine(journey, table, callbacks),
        transitions=table,
        initial=journey.initial.id,
        stages={s.id: _plan_stage(s, own[s.id], bits, anchors, marks) for s in journey.stages},
        content_bits=bits,
        score_rules=_score_rules(journey.scoring, cap_slots, score_text),
        cap_slots=len(cap_slots),
        exit_rules=_rules_by_type(journey.exits, lambda i, r: EventRule(compile_condition(r.condition), exits[i])),
        enroll_rules=_rules_by_type(journey.enrollments, lambda i, r: EventRule(compile_condition(r.condition)))
        if journey.enrollments else None,
        goals=_rules_by_type(journey.goals, lambda i, g: EventRule(compile_condition(g.condition), goals[i])),
        had_bits=had_bits,
        # a `had` anywhere reads the lead's history: it has a bit (one walk of the conditions fewer)
        reads_lead=any(lead_field(c.field) is not None for c in walked.compares) or bool(had_bits),
        fit_rules=tuple(FitPlan(compile_condition(f.condition), f.points) for f in journey.fit),
        fit_fields=tuple(dict.fromkeys(_fit_fields(journey, walked))),
        # a missing field meets `!=` and `not in` (docs/language.md, Conditions): a lead with no
        # profile yet still gets the fit lines its empty profile meets
        fit_empty=sum(f.points for f in journey.fit if compile_condition(f.condition)({})),
        half_life=journey.decay.half_life.seconds if journey.decay else None,
        caps=tuple(Cap(c.count, c.window.seconds) for c in journey.caps),
        event_types=frozenset(journey.event_types()),
        zone_default=journey.time_zone.zone,
        zone_field=journey.time_zone.field,
        windows=tuple(_window(w) for w in journey.windows),
        anchors=anchors,
        marks=marks,
        uses_enrolled=any(t.mode == "in journey" for t in timers),
        priority=journey.priority.value if journey.priority is not None else 0,
    )
    if journey.reentry is not None and journey.reentry.mode != "once":
        cj.reentry = Reentry(journey.reentry.mode, journey.reentry.window.seconds if journey.reentry.window else None)
    for s in journey.stages:
        for send in s.sends:
            if send.every_visit:
                cj.again_bits |= bits[send.content]
    cj.rules = {row.id: row.rule for row in table}
    cj.rules.update((f"score#{i}", score_text(r)) for i, r in enumerate(journey.scoring))
    callbacks.bind(cj)
    cj.callbacks = callbacks
    return cj


def _fit_fields(journey: Journey, walked: _Walked):
    """The attribute fields fit rules and `lead.` conditions read: only these are kept on a lead.

    Fit fields come first, so a journey without `lead.` conditions keeps its records as before."""
    for f in journey.fit:
        for c in compares(f.condition):
            yield c.field
    for c in walked.compares:
        attribute = lead_field(c.field)
        if attribute is not None:
            yield attribute

