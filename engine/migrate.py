"""Moving a lead in flight from one version of a journey to another (docs/engine.md, "Changing a live journey").

`carry_over` is the rule, piece by piece of the record, as a pure function:
(old compiled journey, new compiled journey, record, switch instant) -> new record.
`switch_lead` is the whole switch of one lead: the old version first fires what
it had due up to the switch instant, the record is carried over, then the new
version fires at that instant what it finds due (content now in the past goes at
the switch) and moves the lead if a threshold of its stage already holds.
Nothing here reads a clock or the store: plans, `apply` and replays call it alike.
"""

from __future__ import annotations

from array import array
from collections import Counter
from dataclasses import dataclass

from dsl.errors import PlanError
from dsl.formatter import format_condition
from dsl.model import EXIT

from .compiler import CompiledJourney
from .record import EXITED, WAITING, Action, Lead
from .step import Context, _cascade, _fire_due, advance
from .timers import behaviour_at, next_timer

__all__ = ["Moves", "moves_between", "carry_over", "switch_lead", "unmapped_stage", "follows", "POLICIES"]

#: How leads in flight meet a new version: they move to it, or finish on the version they are on.
POLICIES = ("migrate", "drain")


def follows(policy: str, rec: Lead) -> bool:
    """Does this lead move to the new version? `migrate`: every lead. `drain`: only a lead waiting to
    enroll (it has started nothing yet); leads in a stage, or finished, stay on their version."""
    return policy != "drain" or rec.state == WAITING


@dataclass(frozen=True)
class Moves:
    """Where ids of the old version went in the new one, from the journeys' `moves` blocks."""

    stages: dict[str, str]                   # old stage id -> new stage id, or EXITED
    contents: tuple[tuple[str, str], ...]    # (old content id, new content id), applied in order


def moves_between(old: CompiledJourney, new: CompiledJourney) -> Moves:
    """The new version's moves, and the old version's read backwards (a rollback undoes a rename).

    A backward move is used only when it is unambiguous: exactly one move of the
    old version names that stage, and the stage it came from is back."""
    stages: dict[str, str] = {}
    contents: list[tuple[str, str]] = []
    named = Counter(m.new for m in old.journey.moves if m.kind == "stage")
    for m in old.journey.moves:
        if m.kind == "stage":
            if m.new != EXIT and named[m.new] == 1 and m.old in new.stages and m.new not in new.stages:
                stages[m.new] = m.old
        else:
            contents.append((m.new, m.old))
    for m in new.journey.moves:
        if m.kind == "stage":
            stages[m.old] = EXITED if m.new == EXIT else m.new
        else:
            contents.append((m.old, m.new))
    return Moves(stages, tuple(contents))


def unmapped_stage(old: CompiledJourney, new: CompiledJourney, state: str, moves: Moves | None = None) -> bool:
    """True for a lead in a stage the new version lacks with no move for it: the plan refuses it."""
    moves = moves or moves_between(old, new)
    return state in old.stages and state not in new.stages and state not in moves.stages


def _capped_rules(cj: CompiledJourney) -> list[tuple]:
    """A key per capped score rule, in slot order: the rule's event and condition (and which of equals)."""
    keys: list[tuple] = []
    seen: Counter = Counter()
    for r in cj.journey.scoring:
        if r.cap_count:
            key = (r.event, None if r.condition is None else format_condition(r.condition))
            keys.append((*key, seen[key]))
            seen[key] += 1
    return keys


def _remap(bits: int, old: dict[str, int], new: dict[str, int]) -> int:
    """A bit set keyed by name in `old` read with the bits of `new` (names `new` lacks are dropped)."""
    out = 0
    for name, bit in old.items():
        if bits & bit and name in new:
            out |= new[name]
    return out


def carry_over(old: CompiledJourney, new: CompiledJourney, rec: Lead, at: int, moves: Moves | None = None,
               notes: list[str] | None = None) -> Lead:
    """The record as the new version reads it at the switch instant `at`. Pure: no clock, no store.

    Raises PlanError for a lead in a removed stage with no move for it: a lead never
    leaves a journey silently."""
    moves = moves or moves_between(old, new)
    say = notes.append if notes is not None else (lambda _: None)
    out = rec.copy()
    # the stage: same id, or where a move sends it
    if rec.state in old.stages and rec.state not in new.stages:
        if rec.state not in moves.stages:
            raise PlanError(f"stage `{rec.state}` is not in version {new.version} of {new.name!r} and no move "
                            f"says where its leads go: add `stage {rec.state} -> STAGE` (or `-> exit`) to the "
                            "journey's `moves` block")
        out.state = moves.stages[rec.state]
        say(f"stage {rec.state} is now {out.state}" if out.state != EXITED else
            f"stage {rec.state} was removed: the lead leaves the journey")
    # content received, by id: never sent again; ids this version does not send are remembered in `gone`
    received = {cid for cid, bit in old.content_bits.items() if rec.sent & bit} | set(rec.gone or ())
    for was, now in moves.contents:
        if was in received:
            received.add(now)
    out.sent = 0
    for cid, bit in new.content_bits.items():
        if cid in received:
            out.sent |= bit
    out.gone = tuple(sorted(received - new.content_bits.keys())) or None
    # events had, by type; conditional sends passed over in this visit, by content id
    out.had = _remap(rec.had, old.had_bits, new.had_bits)
    out.passed = _remap(rec.passed, old.content_bits, new.content_bits)
    # holding loop: its progress is kept while the stage still has a loop
    plan = new.stages.get(out.state)
    if plan is not None and plan.hold is None and (out.hold or out.hold_at is not None):
        out.hold, out.hold_at = 0, None
    # delayed internal actions done in this stay: found by what they do and their delay, not by position
    out.acted = _acted(old, new, rec, out.state) if rec.acted else 0
    # score: a changed half-life rebases the behavioural score at the switch instant
    if old.half_life != new.half_life and rec.score != 0.0:
        out.score = behaviour_at(old, rec, at)
        out.score_at = at
        say(f"decay changed: the score is rebased at the switch ({out.score:.2f} behavioural points)")
    # fit: the attribute values by field name, the points from the new rules
    known = dict(zip(old.fit_fields, rec.attrs)) if rec.attrs is not None else {}
    attrs = tuple(known.get(name) for name in new.fit_fields)
    out.attrs = attrs if new.fit_fields and any(v is not None for v in attrs) else None
    if out.attrs is None:
        out.fit = 0
    else:
        view = {name: value for name, value in zip(new.fit_fields, out.attrs) if value is not None}
        out.fit = sum(f.points for f in new.fit_rules if f.predicate(view))
    if out.fit != rec.fit:
        say(f"fit points {rec.fit:+d} -> {out.fit:+d} under the new fit rules")
    # caps of score rules: each capped rule keeps its recent counts, found by event and condition
    if rec.caps is not None:
        old_slots = {key: slot for slot, key in enumerate(_capped_rules(old))}
        caps: list[array | None] = [None] * new.cap_slots
        for slot, key in enumerate(_capped_rules(new)):
            if key in old_slots and old_slots[key] < len(rec.caps):
                caps[slot] = rec.caps[old_slots[key]]
        out.caps = tuple(caps) if any(c is not None for c in caps) else None
    # dates and send marks: kept by what they are (anchor field, content id), not by their slot
    out.dates = _by_key(old.anchors, rec.dates, new.anchors)
    renamed = dict(moves.contents)
    out.marks = _by_key(tuple(renamed.get(c, c) for c in old.marks), rec.marks, new.marks)
    # kept as they are: entered, active (timers count from them), sends (frequency caps), seq, clock,
    # the lead's zone and its enrollment
    timer = next_timer(new, out)
    out.due = None if timer is None else timer.due
    return out


def _by_key(old_keys: tuple, values: tuple | None, new_keys: tuple) -> tuple | None:
    """Values stored by slot under one version, re-slotted by key for another (None when none is left)."""
    if values is None:
        return None
    known = dict(zip(old_keys, values))
    out = tuple(known.get(key) for key in new_keys)
    return out if any(v is not None for v in out) else None


def _acted(old: CompiledJourney, new: CompiledJourney, rec: Lead, state: str) -> int:
    """The new stage's delayed actions that the old stage had, the same, and had taken (else still due)."""
    before, after = old.stages.get(rec.state), new.stages.get(state)
    if before is None or after is None:
        return 0
    done = {(a.kind, a.data, a.offset) for a in before.acts if a.bit and rec.acted & a.bit}
    return sum(a.bit for a in after.acts if a.bit and (a.kind, a.data, a.offset) in done)


def switch_lead(old: CompiledJourney, new: CompiledJourney, rec: Lead, lead: str, at: int,
                moves: Moves | None = None, trace: list | None = None, wide=None,
                rules=None) -> tuple[Lead, list[Action]]:
    """The switch of one lead at `at`: the old version up to `at`, the carry-over, the new version at `at`.

    `wide`, `rules`: the lead's lead-wide record and the run's lead-wide rules, read (never changed):
    the new version's `when lead score` thresholds and the lead-wide cap see them at the switch."""
    rec, actions = advance(old, rec, lead, at, trace)
    was = rec.state
    notes: list[str] = []
    rec = carry_over(old, new, rec, at, moves, notes)
    ctx = Context(new, rec, lead, at if at > rec.clock else rec.clock, trace,
                  None if wide is None else wide.copy(), rules)
    ctx.begin(f"switch to version {new.version}")
    for note in notes:
        ctx.note(note)
    if rec.state == EXITED and was in old.stages:
        ctx.prev, ctx.trigger = was, f"moves: stage {was} -> exit"
        ctx.emit("exit", "exit", {"from": was, "rule": ctx.trigger})
        rec.clock = ctx.time
    ctx.end()
    if rec.state in new.stages:
        if rec.due is not None and rec.due <= at:  # what the new version has due by now goes at the switch
            rec.clock = ctx.time
            _fire_due(ctx, at)
            ctx.time = rec.clock
        before, traced = len(ctx.actions), len(trace) if trace is not None else 0
        ctx.begin("switch: thresholds of the new version")
        _cascade(ctx)  # a threshold the lead already meets moves it now
        ctx.end()
        if len(ctx.actions) > before:
            rec.clock = ctx.time
        elif trace is not None:
            del trace[traced:]  # nothing held: no step to show
    timer = ctx.timer()
    rec.due = None if timer is None else timer.due
    return rec, actions + ctx.actions
