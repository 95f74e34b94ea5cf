"""The step: (compiled journey, lead record, event or `now`) -> (new record, actions). Pure.

Stores and runners wrap these functions and never change their meaning. The
order inside one step (docs/engine.md):

1. timers due up to the event's time fire first, each at its own due time;
2. exit rules (the lead leaves, everything due is cancelled);
3. attributes update fit points; the event's score rules add points (caps per window);
4. the event counts as activity: idle clocks and holding loops restart;
5. transitions: goals in declaration order (a goal to the lead's own stage is
   passed over), else the stage's event triggers in declaration order (first
   match wins); then score thresholds in declaration order; entering a stage
   sends its on-entry content (conditional sends tested) and may cascade
   through thresholds (bounded).

Time only comes from events and from `now`: nothing here reads the clock.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from typing import Callable, cast

from mypy_extensions import mypyc_attr

from .compiled import ActPlan, CompiledJourney, DatedSend, EventRule, Hold, ScorePlan, Send, StagePlan, Transition
from .conditions import ATTRS, HAD, MISSING, lookup
from .events import Event, format_time
from .record import ATTRIBUTES_ONLY, DONE, EXITED, NOT_ENROLLED, WAITING, Action, Lead, LeadWide, shared
from .timers import (ACT, CROSSING, HOLD_END, HOLD_SEND, SEND, TIMEOUT, Timer, behaviour_at, lead_release,
                     lead_score_at, lead_zone, next_timer, release_time, score_at, window_due)
from .zones import local_text, parse_date, zone

__all__ = ["step_event", "advance", "step_lead", "advance_lead", "LeadStep", "TraceStep", "Callbacks", "EngineBug",
           "by_priority", "MAX_CASCADE", "MAX_TIMERS_PER_STEP"]

MAX_TIMERS_PER_STEP = 100_000


@mypyc_attr(native_class=False)  # compiled (mypyc), an exception stays a plain Python class
class EngineBug(RuntimeError):
    """An invariant broke (e.g. timers that never settle): a bug in Coltiva, not the user's fault."""


def by_priority(journeys) -> list:
    """Journeys in the order they act on one lead at one instant: higher `priority` first, then by name.

    The order depends on nothing else (not the order given or stored), so a run is the same however it is
    split. (Here, not in the compiler: a compiled module that imports inside a function pays the import,
    ~8,000 instructions, on every call, and the step calls this once per event.)
    """
    if len(journeys) == 1:  # most leads, every step: no sort
        return list(journeys)
    return sorted(journeys, key=lambda cj: (-cj.priority, cj.name))


def MAX_CASCADE(cj: CompiledJourney) -> int:
    return len(cj.stages) + 1


def _shown(score: float) -> float:
    """A score for people: two decimals, cut toward zero, so 9.999 never reads as a threshold of 10."""
    return int(score * 100) / 100


@dataclass(frozen=True, slots=True)
class TraceStep:
    """One step of a lead as `coltiva explain` shows it: the input, what the rules did, stage and score
    before and after, the actions. Built only when a trace is asked for."""

    time: int
    input: str
    notes: tuple[str, ...]
    stage: tuple[str, str]         # before, after
    score: tuple[float, float]     # before, after (as people read it: two decimals, cut toward zero)
    actions: tuple[Action, ...]

    def to_json(self) -> dict:
        """The step as `explain --format json` and the service write it (the time as the engine's integer)."""
        return {"time": self.time, "input": self.input, "notes": list(self.notes), "stage": list(self.stage),
                "score": list(self.score), "actions": [a.to_json() for a in self.actions]}

    def __getitem__(self, key: str):
        """The JSON form's field `key`: readers written against it (`step["notes"]`) keep working."""
        return self.to_json()[key]


class _Open:
    """A traced step still under way: what `TraceStep` will hold when the step ends."""

    __slots__ = ("time", "input", "notes", "stage", "score", "first_action")

    def __init__(self, time: int, input: str, stage: str, score: float, first_action: int):
        self.time, self.input, self.stage, self.score = time, input, stage, score
        self.notes: list[str] = []
        self.first_action = first_action


class Context:
    """The state of one step, handed to the machine's callbacks."""

    __slots__ = ("cj", "rec", "lead", "time", "event", "view", "actions", "trace", "entry", "prev", "trigger",
                 "fired", "wide", "rules")

    def __init__(self, cj: CompiledJourney, rec: Lead, lead: str, time: int, trace, wide: LeadWide | None = None,
                 rules=None):
        self.cj = cj
        self.rec = rec
        self.lead = lead
        self.time = time
        self.wide = wide    # the lead-wide record (step_lead), shared by the journeys of one step
        self.rules = rules  # engine.compiler.LeadRules, with `wide`
        self.event: Event | None = None
        self.view: dict = {}  # what the conditions of this step read: the event's data (+ the lead, see _view)
        self.actions: list[Action] = []
        # explain's trace, or None (a run): the trace's texts are made only under `if ctx.trace is not None`,
        # as an f-string costs as much as a small step of its own
        self.trace: list[TraceStep] | None = trace
        self.entry: _Open | None = None
        self.prev: str | None = None
        self.trigger: str | None = None  # the rule that moves the lead, as the `stage` and `exit` actions name it
        self.fired: Transition | None = None  # the transition last fired

    def score_now(self) -> float:
        return score_at(self.cj, self.rec, self.time)

    def lead_score_now(self) -> float:
        return lead_score_at(self.rules, self.wide, self.time)

    def timer(self):
        return next_timer(self.cj, self.rec, self.wide, self.rules)

    def release(self) -> int | None:
        """When the caps (the journey's, and the lead-wide one) allow a send again; None if none is full."""
        own = release_time(self.cj, self.rec)
        held = lead_release(self.rules, self.wide) if self.wide is not None else None
        return held if own is None or (held is not None and held > own) else own

    def emit(self, kind: str, rule: str, data: dict) -> None:
        rec, cj = self.rec, self.cj
        rec.seq += 1
        key = f"{self.lead}|{cj.name}@{cj.version}|{rule}|{rec.seq}"
        self.actions.append(Action(kind, cj.name, cj.version, self.lead, self.time, key, data))

    # -- tracing for `coltiva explain` (None in normal runs: no cost) -----------
    def begin(self, label: str) -> None:
        if self.trace is None:
            return
        if self.entry is not None:  # a step left open: it ends where the next begins
            self.end()
        self.entry = _Open(self.time, label, self.rec.state, _shown(self.score_now()), len(self.actions))

    def note(self, text: str) -> None:
        if self.entry is not None:
            self.entry.notes.append(text)

    def end(self) -> None:
        entry = self.entry
        if entry is None or self.trace is None:
            return
        self.trace.append(TraceStep(entry.time, entry.input, tuple(entry.notes), (entry.stage, self.rec.state),
                                    (entry.score, _shown(self.score_now())),
                                    tuple(self.actions[entry.first_action:])))
        self.entry = None


class Callbacks:
    """Entry and exit callbacks of the journey's Machine; they receive the step Context."""

    def bind(self, cj: CompiledJourney) -> None:
        self.cj = cj

    def on_exit(self, ctx: Context) -> None:
        rec = ctx.rec
        ctx.prev = rec.state
        if ctx.trace is not None:
            plan: StagePlan = self.cj.stages[rec.state]
            pending = [s.content for s in plan.sends if not rec.sent & s.bit]
            pending += [d.content for d in plan.dated if not rec.sent & d.bit]
            if pending:
                ctx.note(f"cancelled (stage left before they were sent): {', '.join(pending)}")

    def on_enter(self, ctx: Context) -> None:
        rec = ctx.rec
        plan: StagePlan = self.cj.stages[rec.state]
        rec.entered = ctx.time
        rec.hold = 0
        rec.hold_at = None
        rec.passed = 0  # conditional sends are tested again on each visit
        rec.acted = 0
        ctx.emit("stage", f"stage:{plan.id}", {"from": ctx.prev, "to": plan.id, "rule": ctx.trigger})
        if ctx.trace is not None:
            ctx.note(f"entered {plan.id}")
        if plan.handoff:
            ctx.emit("handoff", f"handoff:{plan.id}", {"stage": plan.id, "score": round(ctx.score_now(), 2)})
        for act in plan.acts:
            if act.offset == 0:
                _act(ctx, act)
        for send in plan.sends:
            if send.offset == 0:
                _try_send(ctx, send)

    def on_exit_journey(self, ctx: Context) -> None:
        if ctx.cj.reentry.mode != "once" and (ctx.fired is None or ctx.fired.kind != "exit"):
            ctx.rec.left = "way"  # left by a way out the journey wrote, not an exit rule: it may come back
        ctx.emit("exit", "exit", {"from": ctx.prev, "rule": ctx.trigger})
        ctx.note("left the journey; everything still due is cancelled")


def _act(ctx: Context, act: ActPlan) -> None:
    """An internal action (notify, task, set_field, tag, add_to_list, webhook): never held by the frequency cap."""
    ctx.emit(act.kind, act.rule, {"stage": ctx.rec.state, **dict(act.data)})


def _held(ctx: Context) -> str | None:
    """Why a send cannot go out now (a frequency cap, the send window), or None if it can."""
    release = ctx.release()
    if release is not None and release > ctx.time:
        return "cap"
    if ctx.cj.windows and window_due(ctx.cj, ctx.rec, ctx.time) > ctx.time:
        return "the send window"
    return None


def _window_words(ctx: Context) -> str:
    """The journey's windows and the lead's zone, as explain says them."""
    lines = "; ".join(str(w) for w in ctx.cj.journey.windows)
    return f"{lines} (in {lead_zone(ctx.cj, ctx.rec).key})"


def _mark(ctx: Context, content: str) -> None:
    """Remember when watched content was sent: `after N since "content"` timers count from it."""
    cj, rec = ctx.cj, ctx.rec
    if content in cj.marks:
        marks: list[int | None] = list(rec.marks) if rec.marks is not None else [None] * len(cj.marks)
        marks[cj.marks.index(content)] = ctx.time
        rec.marks = tuple(marks)


def _note_held(ctx: Context, held: str, what: str) -> None:
    """Explain why a send waits: a cap (which one), or the send window (until when, in the lead's zone)."""
    if ctx.trace is None:
        return
    if held == "the send window":
        opens = window_due(ctx.cj, ctx.rec, ctx.time)
        ctx.note(f"deferred by the send window: {what} waits until "
                 f"{local_text(opens, lead_zone(ctx.cj, ctx.rec))} ({_window_words(ctx)})")
    elif ctx.trace is not None:
        ctx.note(f"deferred by {_held_by(ctx)}: {what} waits")


def _record_send(ctx: Context) -> None:
    cj, rec, t, wide = ctx.cj, ctx.rec, ctx.time, ctx.wide
    if cj.caps:
        horizon = t - max(cap.seconds for cap in cj.caps)
        kept = array("q", [x for x in rec.sends if x > horizon]) if rec.sends else array("q")
        kept.append(t)
        rec.sends = kept
    if wide is not None and ctx.rules.caps:  # every journey's send counts in the lead-wide cap
        horizon = t - max(cap.seconds for cap in ctx.rules.caps)
        old = wide.sends or ()
        first = next((i for i, x in enumerate(old) if x > horizon), len(old))
        wide.sends = array("q", old[first:])
        wide.sends.append(t)
        wide.senders = wide.senders[first:] + (cj.name,)


def _held_by(ctx: Context) -> str:
    """Which cap holds a send now, for explain: the journey's own, or the lead-wide one (and who used it)."""
    held = lead_release(ctx.rules, ctx.wide) if ctx.wide is not None else None
    wide = ctx.wide
    if held is None or held <= ctx.time or wide is None or wide.sends is None:
        return "the frequency cap"
    recent = ", ".join(f"{name} at {format_time(t)}" for t, name in zip(wide.sends, wide.senders))
    return f"the lead-wide cap ({ctx.rules.caps_text}; sent: {recent}) until {format_time(held)}"


def _span_of(seconds: int) -> str:
    """A duration for people: the two largest units (e.g. "3 d 4 h")."""
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if seconds >= size or (unit == "s" and not parts):
            parts.append(f"{seconds // size} {unit}")
            seconds %= size
    return " ".join(parts[:2])


def _deferral(ctx: Context, meant: int | None) -> dict:
    """A send later than it was meant says since when, and what held it (a cap, the window, or both).

    `held_by` appears only when a send window held it: a journey without windows
    writes the same actions as before windows existed."""
    if meant is None or ctx.time <= meant:
        return {}
    cj, rec = ctx.cj, ctx.rec
    release = ctx.release()
    base = release if release is not None and release > meant else meant
    by = ["a frequency cap"] if base > meant else []
    if cj.windows and window_due(cj, rec, base) > base:
        by.append("the send window")
    if not by:  # the lead's clock was already past the moment (a late event, or a date already past)
        if ctx.trace is not None:
            ctx.note(f"sent late: it was meant for {format_time(meant)}")
        return {"deferred_from": format_time(meant)}
    if ctx.trace is not None:
        ctx.note(f"sent late: {' and '.join(by)} held it since {format_time(meant)}")
    out = {"deferred_from": format_time(meant)}
    if "the send window" in by:
        out["held_by"] = "frequency cap and send window" if len(by) > 1 else "send window"
    return out


def _attributes(cj: CompiledJourney, rec: Lead | None, attributes: dict | None) -> dict:
    """The lead's attributes as `lead.` conditions read them: those kept, overlaid with `attributes`."""
    kept = rec.attrs if rec is not None and rec.attrs is not None else (None,) * len(cj.fit_fields)
    out = {}
    for name, value in zip(cj.fit_fields, kept):
        if attributes:
            new = lookup(attributes, name)
            if new is not MISSING:
                value = new
        if value is not None:
            out[name] = value
    return out


def _had(cj: CompiledJourney, rec: Lead) -> frozenset:
    return frozenset(event for event, bit in cj.had_bits.items() if rec.had & bit) if rec.had else frozenset()


def _view(cj: CompiledJourney, rec: Lead | None, event: Event | None) -> dict:
    """What conditions read: the event's data, and when the journey has conditions on the lead, its
    attributes (this event's included) and the event types it has had (this event included)."""
    data = event.data if event is not None else {}
    if not cj.reads_lead:
        return data
    view = dict(data)
    view[ATTRS] = _attributes(cj, rec, event.attributes if event is not None else None)
    view[HAD] = _had(cj, rec) if rec is not None else frozenset()
    return view


def _remember(cj: CompiledJourney, rec: Lead, event: Event) -> None:
    """An event of a type some `had` condition names is remembered (one bit per type, nothing more)."""
    bit = cj.had_bits.get(event.type)
    if bit is not None:
        rec.had |= bit


def _try_send(ctx: Context, send: Send | DatedSend, meant: int | None = None) -> None:
    rec = ctx.rec
    bit, kind, content = send.bit, send.kind, send.content
    if rec.sent & bit:
        if ctx.trace is not None:
            ctx.note(f"not sent again: {kind} {content!r} was already sent")
        return
    plan: StagePlan = ctx.cj.stages[rec.state]
    test = plan.tests.get(bit)
    if test is not None and test.predicate(_view(ctx.cj, rec, None)) == test.unless:
        rec.passed |= bit
        if ctx.trace is not None:
            ctx.note(f"not sent: {kind} {content!r} ({test.text} says no; passed over for this visit)")
        return
    held = _held(ctx)
    if held is not None:
        _note_held(ctx, held, f"{ctx.cj.name}'s {kind} {content!r}")
        return
    late = _deferral(ctx, meant)  # before this send counts against the caps
    rec.sent |= bit
    _record_send(ctx)
    _mark(ctx, content)
    ctx.emit("send", f"send:{content}", {"stage": rec.state, "content_kind": kind, "content": content, **late})


def _fire(ctx: Context, transition: Transition) -> None:
    """Move the lead by a transition the step chose: the shared Machine changes its stage and runs the
    exit and entry callbacks. Its condition was evaluated once, by the step; the Machine has none."""
    ctx.trigger = transition.rule
    ctx.fired = transition
    if ctx.trace is not None:
        ctx.note(f"rule fired: {transition.rule}")
    ctx.cj.machine.events[transition.id].trigger(ctx.rec, ctx)


def _thresholds(ctx: Context) -> bool:
    rec = ctx.rec
    if rec.state == EXITED:
        return False
    plan: StagePlan = ctx.cj.stages[rec.state]
    thresholds = plan.thresholds
    if not thresholds:
        return False
    score = ctx.score_now()
    for threshold in thresholds:
        if threshold.test(ctx.lead_score_now() if threshold.lead else score, threshold.value):
            _fire(ctx, threshold.transition)
            return True
    return False


def _cascade(ctx: Context) -> None:
    """After a move, thresholds of the new stage may move the lead again (bounded)."""
    for _ in range(MAX_CASCADE(ctx.cj)):
        if not _thresholds(ctx):
            return
    ctx.note("cascade stopped at its bound")


def _fire_due(ctx: Context, until: int) -> Timer | None:
    """Fire every timer due up to `until`; returns the lead's next timer then (the one not due yet)."""
    rec = ctx.rec
    for _ in range(MAX_TIMERS_PER_STEP):
        if rec.state == EXITED:
            return None
        timer = ctx.timer()
        if timer is None or timer.due > until:
            return timer
        _fire_timer(ctx, timer)
    raise EngineBug("timers did not settle within one step")


def _fire_timer(ctx: Context, timer: Timer) -> None:
    """Fire one timer of the context's journey, at its due time (or the clock if later)."""
    cj, rec, wide = ctx.cj, ctx.rec, ctx.wide
    due, order, what = timer.due, timer.order, timer.what
    ctx.time = rec.clock = due if due > rec.clock else rec.clock
    if wide is not None:  # the lead has one clock: nothing of it happens before what already happened
        if wide.clock > ctx.time:
            ctx.time = rec.clock = wide.clock
        wide.clock = ctx.time
    if order == SEND:
        assert isinstance(what, (Send, DatedSend))
        if ctx.trace is not None:
            ctx.begin(f"timer: send {what.kind} {what.content!r}")
        _try_send(ctx, what, timer.meant)
        if not rec.sent & what.bit and not rec.passed & what.bit and _held(ctx) is None:
            raise EngineBug(f"send of {what.content!r} neither sent nor deferred")
    elif order == ACT:
        assert isinstance(what, ActPlan)
        if ctx.trace is not None:
            ctx.begin(f"timer: {what.kind} of {rec.state}")
        rec.acted |= what.bit
        _act(ctx, what)
    elif order == HOLD_SEND:
        assert isinstance(what, Hold)
        if ctx.trace is not None:
            ctx.begin(f"timer: holding loop of {rec.state} ({rec.hold + 1}/{what.times})")
        held = _held(ctx)
        if held is None:
            late = _deferral(ctx, timer.meant)
            rec.hold += 1
            rec.hold_at = ctx.time
            rec.sent |= what.bit  # a loop repeats its content, but a later `send` line of it is skipped
            _record_send(ctx)
            _mark(ctx, what.content)
            ctx.emit("send", f"hold:{rec.state}:{what.content}",
                     {"stage": rec.state, "content_kind": what.kind, "content": what.content, "edition": rec.hold,
                      **late})
        else:
            _note_held(ctx, held, f"{cj.name}'s holding-loop {what.kind} {what.content!r}")
    elif order == HOLD_END:
        assert isinstance(what, Transition)
        if ctx.trace is not None:
            ctx.begin(f"timer: holding loop of {rec.state} ran out")
        _fire(ctx, what)
        _cascade(ctx)
    elif order == TIMEOUT:
        assert isinstance(what, Transition)
        if ctx.trace is not None:
            ctx.begin(f"timer: {what.rule}")
        _fire(ctx, what)
        _cascade(ctx)
    elif order == CROSSING:
        ctx.begin("timer: score decay crossed a threshold")
        _cascade(ctx)
    if order in (SEND, ACT, HOLD_SEND):
        # thresholds are levels: one that decay makes true at this very second (its crossing ordered after
        # this timer) is tested now, at the clock, not searched for strictly after it and lost
        _cascade(ctx)
    ctx.end()


def _update_fit(cj: CompiledJourney, rec: Lead, attributes: dict | None) -> bool:
    """Keep the attribute values fit rules read (a tuple by field); True if fit points changed."""
    if not attributes or not cj.fit_fields:
        return False
    incoming = [lookup(attributes, name) for name in cj.fit_fields]
    if all(value is MISSING for value in incoming):
        return False
    old = rec.attrs or (None,) * len(cj.fit_fields)
    attrs = tuple(kept if new is MISSING else shared(new) for kept, new in zip(old, incoming))
    rec.attrs = attrs
    view = {name: value for name, value in zip(cj.fit_fields, attrs) if value is not None}
    fit = sum(f.points for f in cj.fit_rules if f.predicate(view))
    changed = fit != rec.fit
    rec.fit = fit
    return changed


def _update_time(ctx: Context, event: Event) -> None:
    """The lead's zone (from its attribute) and the dates its sends count from (from the event or attributes)."""
    cj, rec = ctx.cj, ctx.rec
    attributes = event.attributes
    if cj.zone_field is not None and attributes:
        value = lookup(attributes, cj.zone_field)
        if value is not MISSING and value != rec.zone:
            if zone(value) is not None:
                rec.zone = shared(value)
                if ctx.trace is not None:
                    ctx.note(f"time zone: {value}")
            else:
                ctx.note(f"time zone {str(value)[:80]!r} is not an IANA zone name: kept "
                         f"{rec.zone or cj.zone_default}")
    if not cj.anchors:
        return
    dates: list[tuple[int, int] | None] = list(rec.dates) if rec.dates is not None else [None] * len(cj.anchors)
    changed = False
    for slot, anchor in enumerate(cj.anchors):
        etype, name = anchor.event, anchor.field
        source = attributes if etype is None else (event.data if etype == event.type else None)
        if not source:
            continue
        value = lookup(source, name)
        if value is MISSING:
            continue
        when = parse_date(value, lead_zone(cj, rec))
        where = f"{name} of {etype or 'lead'}"
        if when is None:
            if ctx.trace is not None:
                ctx.note(f"{where} {str(value)[:80]!r} is not a date (ISO 8601): ignored")
            continue
        known = dates[slot]
        if known is None or known[0] != when:
            dates[slot] = (when, ctx.time)
            changed = True
            if ctx.trace is not None:
                ctx.note(f"{where} is {format_time(when)}")
    if changed:
        rec.dates = tuple(dates)


def _apply_score(ctx: Context, event: Event) -> bool:
    """Add the points of every matching rule whose cap allows it; True if the score changed."""
    return _score_event(ctx.cj, ctx.rec, ctx.time, event.type, ctx.view,
                        None if ctx.trace is None else ctx.note, ctx.rec.fit)


def _score_event(rules, rec, t: int, event_type: str, view: dict, note: Callable[[str], None] | None,
                 fit: int = 0) -> bool:
    """The points of an event on a score (a journey's, on its record; or the lead's, on its LeadWide).

    `view`: what the rules' conditions read (the event's data; for a journey, the lead too); `note`: where
    the trace's notes go (None: no trace, no text made)."""
    table: tuple[ScorePlan, ...] | None = rules.score_rules.get(event_type)
    if not table:
        return False
    scored = False
    for rule in table:
        if rule.predicate is not None and not rule.predicate(view):
            continue
        if rule.cap_count is not None:
            assert rule.slot is not None and rule.cap_seconds is not None
            old: array | None = rec.caps[rule.slot] if rec.caps else None
            horizon = t - rule.cap_seconds
            if old:  # the hits still inside the window: a suffix, as hits are appended at the lead's clock
                first, n = 0, len(old)
                while first < n and old[first] <= horizon:
                    first += 1
                hits = old[first:]  # a new array: the record being replaced is never changed
            else:
                hits = array("q")
            if len(hits) >= rule.cap_count:
                if note is not None:
                    note(f"capped: {rule.rule}")
                continue
            hits.append(t)
            caps: list[array | None] = list(rec.caps) if rec.caps else [None] * rules.cap_slots
            caps[rule.slot] = hits
            rec.caps = tuple(caps)
        # (fit + behaviour) - fit, not behaviour alone: the very float the stores have always kept
        rec.score = (fit + behaviour_at(rules, rec, t)) - fit + rule.points
        rec.score_at = t
        scored = True
        if note is not None:
            note(f"scored: {rule.rule}")
    return scored


def _first_match(rules: dict[str, tuple[EventRule, ...]], event: Event, view: dict) -> EventRule | None:
    """The first rule (exit or enroll) of the event's type whose condition holds."""
    for rule in rules.get(event.type, ()):
        if rule.predicate(view):
            return rule
    return None


def _transitions(ctx: Context, event: Event) -> None:
    """Goals first (a goal to the lead's own stage is passed over), else the stage's triggers; then thresholds."""
    cj, rec = ctx.cj, ctx.rec
    fired = False
    plan: StagePlan = cj.stages[rec.state]
    if not plan.final:
        goals: tuple[EventRule, ...] = cj.goals.get(event.type, ())
        for goal in goals:
            transition = goal.transition
            assert transition is not None
            if transition.target != rec.state and goal.predicate(ctx.view):
                _fire(ctx, transition)
                fired = True
                break
    if not fired:
        for trigger in plan.events.get(event.type, ()):
            if trigger.predicate(ctx.view):
                assert trigger.transition is not None
                _fire(ctx, trigger.transition)
                break
    # thresholds are levels: tested after every event, whether or not it changed the score
    _cascade(ctx)


def _react(ctx: Context, event: Event) -> None:
    """Exit rules, scoring, activity, then transitions: the event's own part of a step."""
    cj, rec = ctx.cj, ctx.rec
    ctx.event = event
    _remember(cj, rec, event)
    ctx.view = _view(cj, rec, event)
    plan: StagePlan = cj.stages[rec.state]
    rule = _first_match(cj.exit_rules, event, ctx.view)
    if rule is not None:
        if not plan.final:
            assert rule.transition is not None
            _fire(ctx, rule.transition)
            return
        # a lead in a final stage has finished: it stays where it ended, but never re-enters
        if cj.reentry.mode != "once" and rec.left != "rule":
            rec.left = "rule"
            ctx.note("an exit rule matched: the lead will not re-enter the journey")
    _update_fit(cj, rec, event.attributes)
    _update_time(ctx, event)
    _apply_score(ctx, event)
    if event.type != ATTRIBUTES_ONLY:  # a profile update is not an interaction
        rec.active = ctx.time
        if rec.hold:
            ctx.note("activity: the holding loop restarts from zero")
            rec.hold = 0
    _transitions(ctx, event)


def _enroll(cj: CompiledJourney, lead: str, event: Event, trace, waiting: Lead | None = None,
            wide: LeadWide | None = None, rules=None):
    """A lead not in the journey yet: enroll it, remember an exit, or keep its attributes waiting.

    With a lead-wide record, the lead's clock is its time: a late event enrolls it at that clock."""
    at = event.time if wide is None or wide.clock <= event.time else wide.clock
    # an exit event before enrollment is remembered, so no later event can enroll the lead;
    # conditions on the lead read the attributes kept while waiting and those this event carries
    view = _view(cj, waiting, event)
    exiting = _first_match(cj.exit_rules, event, view) is not None
    enrolls = event.type != ATTRIBUTES_ONLY and (
        cj.enroll_rules is None or _first_match(cj.enroll_rules, event, view) is not None)
    if not exiting and not enrolls:
        # not (yet) enrolled: keep what fit rules, `lead.` conditions, the zone and dates of attributes will need
        profile_time = cj.zone_field is not None or any(anchor.event is None for anchor in cj.anchors)
        if not (cj.fit_fields or profile_time) or not event.attributes:
            return waiting, []
        rec = waiting.copy() if waiting is not None else Lead(WAITING, at)
        rec.clock = rec.entered = rec.active = rec.score_at = at
        _update_fit(cj, rec, event.attributes)
        if profile_time:
            _update_time(Context(cj, rec, lead, at, None), event)
        kept = rec.attrs is not None or rec.zone is not None or rec.dates is not None
        return (rec if kept else waiting), []
    rec = Lead(NOT_ENROLLED if exiting else cj.initial, at)
    if (cj.reentry.mode == "per" or cj.uses_enrolled) and not exiting:
        rec.enrolled = at
    rec.fit = cj.fit_empty  # no attribute known yet: the fit lines an empty profile meets
    if waiting is not None:
        rec.attrs, rec.fit = waiting.attrs, waiting.fit
        rec.zone, rec.dates = waiting.zone, waiting.dates
    ctx = Context(cj, rec, lead, at, trace, wide, rules)
    if exiting:
        if ctx.trace is not None:
            ctx.begin(f"event {event.id}: {event.type}")
        ctx.note("an exit event before enrollment: the lead is never enrolled")
        ctx.end()
        return rec, []
    if ctx.trace is not None:
        ctx.begin(f"event {event.id}: {event.type} (enrolls the lead)")
    if at > event.time and ctx.trace is not None:
        ctx.note(f"late by {_span_of(at - event.time)}: applied at the lead's clock ({format_time(at)})")
    if waiting is not None and ctx.trace is not None:
        ctx.note(f"attributes received before enrollment give {rec.fit:g} fit points")
    _start_visit(ctx, event, "enrolled")
    ctx.end()
    timer = _fire_now(ctx)
    rec.due = None if timer is None else timer.due
    return rec, ctx.actions


def _finished(cj: CompiledJourney, rec: Lead) -> bool:
    """In a final stage, or out by a way the journey wrote (`-> exit`), and no exit rule met since."""
    if rec.left == "rule":
        return False
    if rec.state == EXITED:
        return rec.left == "way"
    plan = cj.stages.get(rec.state)
    return plan is not None and plan.final


def _returns(cj: CompiledJourney, rec: Lead, event: Event) -> bool:
    """Whether this event brings a finished lead back into the journey (docs/engine.md, Re-entry)."""
    mode, window = cj.reentry.mode, cj.reentry.seconds
    if mode == "once" or not _finished(cj, rec) or event.type == ATTRIBUTES_ONLY:
        return False
    view = _view(cj, rec, event)
    if _first_match(cj.exit_rules, event, view) is not None:
        return False
    if cj.enroll_rules is not None and _first_match(cj.enroll_rules, event, view) is None:
        return False
    t = event.time if event.time > rec.clock else rec.clock
    return mode != "per" or rec.enrolled is None or window is None or t - rec.enrolled >= window


def _reenter(ctx: Context, event: Event) -> None:
    """A new visit: the initial stage again, `every visit` content forgotten; score, caps and seq kept."""
    cj, rec = ctx.cj, ctx.rec
    ctx.note("re-enters the journey" + (": `every visit` content may be sent again" if cj.again_bits else ""))
    ctx.prev = rec.state
    rec.state = cj.initial
    rec.sent &= ~cj.again_bits
    rec.left = None
    rec.active = ctx.time
    if cj.reentry.mode == "per" or cj.uses_enrolled:
        rec.enrolled = ctx.time
    _start_visit(ctx, event, "re-entered")


def _start_visit(ctx: Context, event: Event, trigger: str) -> None:
    """Enrollment and re-entry alike: the event is remembered and scored, the initial stage entered,
    then the event's own transitions tried there (docs/engine.md, Enrollment and Re-entry)."""
    cj, rec = ctx.cj, ctx.rec
    ctx.event = event
    _remember(cj, rec, event)
    ctx.view = _view(cj, rec, event)
    _update_fit(cj, rec, event.attributes)
    _update_time(ctx, event)
    _apply_score(ctx, event)
    ctx.trigger = trigger
    cast(Callbacks, cj.callbacks).on_enter(ctx)  # compiled.py cannot name the class; typed here, a native call
    _transitions(ctx, event)


def _bar_return(cj: CompiledJourney, rec: Lead, event: Event) -> Lead:
    """A lead that left by a way out and now meets an exit rule (an unsubscribe) never comes back."""
    if rec.state == EXITED and rec.left == "way" and _first_match(cj.exit_rules, event,
                                                                   _view(cj, rec, event)) is not None:
        rec = rec.copy()
        rec.left = "rule"
    return rec


def _on_event(ctx: Context, event: Event, notes=()) -> Timer | None:
    """The event's own part of a step, at `ctx.time` (the lead's clock when the event is late): a re-entry or
    the reaction (exit rules, scores, activity, transitions); `notes` go to its trace first. Returns the
    lead's next timer after it."""
    rec, t = ctx.rec, event.time
    returning = _returns(ctx.cj, rec, event)
    if ctx.trace is not None:
        ctx.begin(f"event {event.id}: {event.type}" + (" (the lead re-enters)" if returning else ""))
    if t < ctx.time and ctx.trace is not None:
        ctx.note(f"late by {_span_of(ctx.time - t)}: applied at the lead's clock ({format_time(ctx.time)})")
    for note in notes:
        ctx.note(note)
    rec.clock = ctx.time
    if returning:
        _reenter(ctx, event)
    else:
        _react(ctx, event)
    ctx.end()
    return _fire_now(ctx)


def _fire_now(ctx: Context) -> Timer | None:
    """What the event made due at once (a date already past, `if past send now`) fires in the same step.
    Returns the lead's next timer after it: the record's `due` comes from it, computed once per step."""
    timer = ctx.timer()
    if timer is not None and timer.due <= ctx.time and ctx.rec.state not in DONE:
        return _fire_due(ctx, ctx.time)
    return timer


def step_event(cj: CompiledJourney, rec: Lead | None, lead: str, event: Event, trace: list | None = None):
    """Apply one event to one lead: returns (new record or None if not enrolled, actions)."""
    if rec is None or rec.state == WAITING:
        return _enroll(cj, lead, event, trace, rec)
    if rec.state in DONE and not _returns(cj, rec, event):
        # left, or never enrolled: nothing more happens, and nothing is copied
        return _bar_return(cj, rec, event), []
    rec = rec.copy()
    ctx = Context(cj, rec, lead, rec.clock, trace)
    t = event.time
    if rec.due is not None and rec.due <= t:
        _fire_due(ctx, t)
        if rec.state in DONE and not _returns(cj, rec, event):  # a timer took the lead out: its clock stays
            rec.due = None
            return _bar_return(cj, rec, event), ctx.actions
    ctx.time = t if t > rec.clock else rec.clock
    timer = _on_event(ctx, event)  # the next timer of the record as the step leaves it
    rec.due = None if timer is None else timer.due
    return rec, ctx.actions


def advance(cj: CompiledJourney, rec: Lead, lead: str, now: int, trace: list | None = None):
    """Fire everything due up to `now` (a tick). A lead with nothing due is returned unchanged."""
    if rec.due is None or rec.due > now:
        return rec, []
    rec = rec.copy()
    ctx = Context(cj, rec, lead, rec.clock, trace)
    timer = _fire_due(ctx, now)
    rec.due = None if timer is None else timer.due
    return rec, ctx.actions


# -- a lead in every journey at once (the runner's step) ------------------------------------------

class LeadStep:
    """What one input did to a lead: its record in each journey, its lead-wide record, the actions in order."""

    __slots__ = ("records", "wide", "actions")

    def __init__(self, records: dict[str, Lead], wide: LeadWide | None, actions: list[Action]):
        self.records = records
        self.wide = wide
        self.actions = actions


def _wide_for(rules, wide: LeadWide | None, records: dict[str, Lead], t: int) -> LeadWide | None:
    """A copy of the lead-wide record to step, a new one (at the lead's latest time), or None without rules."""
    if not rules.active:
        return None
    if wide is not None:
        return wide.copy()
    # the lead's first input under lead-wide rules (or its first input after an upgrade)
    return LeadWide(max([t, *(r.clock for r in records.values())]))


def _live(order, records: dict[str, Lead], lead: str, traces, wide, rules) -> list[Context]:
    """A context on a copy of each record that is in a stage, in priority order; the copies replace them."""
    live = []
    for cj in order:
        rec = records.get(cj.name)
        if rec is None or rec.state in DONE or rec.state == WAITING:
            continue
        rec = records[cj.name] = rec.copy()
        live.append(Context(cj, rec, lead, rec.clock, None if traces is None else traces.get(cj.name), wide, rules))
    return live


def _fire_all(live: list[Context], until: int, actions: list, settled: dict[str, Timer | None] | None = None,
              fired: set[str] | None = None) -> None:
    """Every timer due by `until` in every journey, earliest first; at one instant, in priority order.

    Only journeys with something due by `until` at the start can fire: a send of one
    journey only delays the others (the lead-wide cap), and the lead score does not
    change between events. With `settled`, the next timer of each journey that could
    fire, as found once nothing more was due (what `_settle` would derive again), by
    journey name; with `fired`, the names of the journeys that fired a timer."""
    pending = [ctx for ctx in live if ctx.rec.due is not None and ctx.rec.due <= until]
    for _ in range(MAX_TIMERS_PER_STEP):
        best = best_at = None
        best_timer: Timer | None = None
        found: dict[str, Timer | None] | None = None if settled is None else {}
        for ctx in pending:
            if ctx.rec.state == EXITED:
                continue
            timer = ctx.timer()
            if found is not None:
                found[ctx.cj.name] = timer
            if timer is None or timer.due > until:
                continue
            at = timer.due if timer.due > ctx.rec.clock else ctx.rec.clock
            if best is None or best_at is None or at < best_at:
                best, best_at, best_timer = ctx, at, timer
        if best is None or best_timer is None:
            if settled is not None and found is not None:
                settled.update(found)
            return
        mark = len(best.actions)
        _fire_timer(best, best_timer)
        if fired is not None:
            fired.add(best.cj.name)
        actions.extend(best.actions[mark:])
    raise EngineBug("timers did not settle within one step")


def _settle(order, records: dict[str, Lead], wide, rules, settled: dict[str, Timer | None] | None = None) -> None:
    """Each record's cached due time, derived again: a send in one journey may move another's (the lead cap).

    `settled`: timers already derived from the records as they are now (by `_fire_all`), by journey name."""
    for cj in order:
        rec = records.get(cj.name)
        if rec is None or rec.state not in cj.stages:
            if rec is not None and rec.state in DONE and rec.due is not None:
                rec.due = None  # a copy a timer just took out (a stored record that left is due nothing)
            continue
        if settled is not None and cj.name in settled:
            timer = settled[cj.name]
        else:
            timer = next_timer(cj, rec, wide, rules)
        rec.due = None if timer is None else timer.due


def step_lead(journeys, rules, records: dict[str, Lead], wide: LeadWide | None, lead: str, event: Event,
              traces: dict[str, list] | None = None) -> LeadStep:
    """Apply one event to one lead in every journey: pure, and the same whatever order `journeys` come in.

    `journeys`: the compiled version each record is on (a journey the lead is not in yet: the
    current one); `rules`: the run's engine.compiler.LeadRules. Order (docs/engine.md, "One lead
    across journeys"): the timers due by the event in every journey, earliest first, at one
    instant higher priority first; then the lead score takes the event's points; then each
    journey reacts to the event, higher priority first (by_priority). Records in `records` are
    never changed: changed ones are new objects in the result."""
    order = by_priority(journeys)
    out = dict(records)
    wide = _wide_for(rules, wide, records, event.time)
    actions: list[Action] = []
    live = {ctx.cj.name: ctx for ctx in _live(order, out, lead, traces, wide, rules)}
    _fire_all(list(live.values()), event.time, actions)
    t = event.time
    # the timer each journey's reaction ends with is its record's next one, unless a later journey's send
    # moves it (the lead-wide cap): without lead-wide rules, journeys meet in no timer, and _settle keeps them
    settled: dict[str, Timer | None] | None = {} if wide is None else None
    lead_notes: list[str] = []
    if wide is not None:
        if t > wide.clock:
            wide.clock = t
        tracing = traces is not None
        if _score_event(rules, wide, wide.clock, event.type, event.data, lead_notes.append if tracing else None) \
                and tracing:
            lead_notes.append(f"lead score now {_shown(behaviour_at(rules, wide, wide.clock))}")
    for cj in order:
        rec = out.get(cj.name)
        trace = None if traces is None else traces.get(cj.name)
        if rec is None or rec.state == WAITING:
            new, acts = _enroll(cj, lead, event, trace, rec, wide, rules)
            if new is not None:
                out[cj.name] = new
            actions.extend(acts)
            continue
        if rec.state in DONE and not _returns(cj, rec, event):
            out[cj.name] = _bar_return(cj, rec, event)  # left or never enrolled (maybe by a timer just now)
            continue
        ctx = live.get(cj.name)
        if ctx is None:  # a finished lead coming back (re-entry): step a copy
            rec = out[cj.name] = rec.copy()
            ctx = Context(cj, rec, lead, rec.clock, trace, wide, rules)
        ctx.time = t if t > rec.clock else rec.clock
        if wide is not None and wide.clock > ctx.time:
            ctx.time = wide.clock
        mark = len(ctx.actions)
        timer = _on_event(ctx, event, lead_notes)
        if settled is not None:
            settled[cj.name] = timer
        actions.extend(ctx.actions[mark:])
    _settle(order, out, wide, rules, settled)
    return LeadStep(out, wide, actions)


def advance_lead(journeys, rules, records: dict[str, Lead], wide: LeadWide | None, lead: str, now: int,
                 traces: dict[str, list] | None = None) -> LeadStep:
    """Fire everything due up to `now` in every journey of the lead (a tick), in the order `step_lead` fires timers.

    A lead with nothing due is returned as it was (the same objects); so is each record nothing changed."""
    if not any(r.due is not None and r.due <= now for r in records.values()):
        return LeadStep(records, wide, [])
    order = by_priority(journeys)
    out = dict(records)
    wide = _wide_for(rules, wide, records, now if not records else min(r.clock for r in records.values()))
    actions: list[Action] = []
    settled: dict[str, Timer | None] = {}
    fired: set[str] = set()
    _fire_all(_live(order, out, lead, traces, wide, rules), now, actions, settled, fired)
    _settle(order, out, wide, rules, settled)
    for name, rec in out.items():  # unchanged records stay the objects they were: nothing to write
        if name not in fired and rec is not records[name] and rec == records[name]:
            out[name] = records[name]  # (a record that fired a timer changed: else the timer would fire forever)
    return LeadStep(out, wide, actions)
