"""What changed between two versions of a journey: a pure function over two models.

Reviewers approve changes, not files: `diff_journeys` says which stages,
triggers, content and global rules were added, removed or changed, each with
the old and the new model object, so the diagram can mark exactly those and
the terminal can list them. Things are matched by what they mean (a send by
its content, a threshold by its direction and target), so a changed threshold
is one "~" line, not a "-" and a "+".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from dsl.model import EventTrigger, HoldLoop, Journey, ScoreTrigger, Send, Stage, TimeTrigger

from . import text as t

__all__ = ["Change", "JourneyDiff", "diff_journeys", "stage_contents"]


@dataclass(frozen=True)
class Change:
    """One difference. `sign` is "+", "-" or "~"; `stage` is None for global rules."""

    sign: str
    kind: str  # stage, label, flag, send, trigger, hold, scoring, decay, fit, exit, enroll, cap, name
    stage: str | None
    text: str
    # the model elements compared (a Send, a Stage, a rule...), or None: what kind follows from `kind`
    old: Any = field(default=None, compare=False, repr=False)
    new: Any = field(default=None, compare=False, repr=False)
    contents: tuple[str, ...] = ()  # for an added or removed stage: what it holds, one line each

    def __str__(self) -> str:
        where = f"stage {self.stage}: " if self.stage is not None and self.kind != "stage" else ""
        return f"{self.sign} {where}{self.text}"


@dataclass(frozen=True)
class JourneyDiff:
    old: Journey = field(compare=False, repr=False)
    new: Journey = field(compare=False, repr=False)
    changes: tuple[Change, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.changes

    def lines(self) -> list[str]:
        return [str(c) for c in self.changes]

    @property
    def stages(self) -> tuple[str, ...]:
        """Every stage a change lands on, in the order of the changes."""
        return tuple(dict.fromkeys(c.stage for c in self.changes if c.stage is not None))


def _pair(old: Sequence, new: Sequence, keys) -> tuple[list, list, list]:
    """Match items: exactly equal first, then by each looser key in turn.

    Returns (pairs of (old, new) that differ, removed, added); equal items drop out.
    """
    old, new = list(old), list(new)
    for o in list(old):
        for n in new:
            if o == n:
                old.remove(o)
                new.remove(n)
                break
    pairs = []
    for key in keys:
        for o in list(old):
            for n in new:
                if key(o) == key(n):
                    pairs.append((o, n))
                    old.remove(o)
                    new.remove(n)
                    break
    return pairs, old, new


def _trigger_key(trig) -> tuple:
    if isinstance(trig, EventTrigger):
        return ("event", trig.events, trig.target)
    if isinstance(trig, ScoreTrigger):
        return ("lead score" if trig.lead else "score", trig.upward, trig.target)
    return ("time", trig.mode, trig.target)


def _trigger_loose(trig) -> tuple:
    if isinstance(trig, EventTrigger):
        return ("event", trig.events)
    if isinstance(trig, ScoreTrigger):
        return ("lead score" if trig.lead else "score", trig.upward, trig.op, trig.value)
    return ("time", trig.mode, trig.after.seconds)


def _trigger_word(trig) -> str:
    if isinstance(trig, ScoreTrigger):
        return "threshold"
    if isinstance(trig, TimeTrigger):
        return "timer"
    return "trigger"


def _full(trig) -> str:
    text = t.trigger_text(trig).replace("≥", ">=").replace("≤", "<=")
    return f"{text} -> {t.target_text(trig.target)}"


def _trigger_changes(sid: str, old: Stage, new: Stage) -> list[Change]:
    out = []
    pairs, removed, added = _pair(old.triggers, new.triggers, [_trigger_key, _trigger_loose])
    for o, n in pairs:
        if o.target == n.target:
            before = _full(o).rsplit(" -> ", 1)[0]
            after = _full(n).rsplit(" -> ", 1)[0]
            text = f"{_trigger_word(n)} {before} -> {after}"
        else:
            text = f"{_trigger_word(n)} {_full(o)} => {t.target_text(n.target)}"
        out.append(Change("~", "trigger", sid, text, o, n))
    out += [Change("-", "trigger", sid, f"{_trigger_word(o)} {_full(o)}", o, None) for o in removed]
    out += [Change("+", "trigger", sid, f"{_trigger_word(n)} {_full(n)}", None, n) for n in added]
    return out


def _send_when(s: Send) -> str:
    """When a send goes out: its offset, and its `if`/`unless` condition if any."""
    if s.condition is None:
        return t.offset_text(s)
    return f"{t.offset_text(s)} {'unless' if s.unless else 'if'} {t.condition_text(s.condition)}"


def _send_label(s: Send) -> str:
    return f'send {s.kind} "{s.content}" {_send_when(s)}'


def _send_changes(sid: str, old: Stage, new: Stage) -> list[Change]:
    pairs, removed, added = _pair(old.sends, new.sends, [lambda s: (s.kind, s.content)])
    out = [Change("~", "send", sid, f'send {n.kind} "{n.content}": {_send_when(o)} -> {_send_when(n)}', o, n)
           for o, n in pairs]
    out += [Change("-", "send", sid, _send_label(o), o, None) for o in removed]
    out += [Change("+", "send", sid, _send_label(n), None, n) for n in added]
    return out


def _action_label(a) -> str:
    return f"{t.action_text(a)} {t.action_offset_text(a)}"


def _action_changes(sid: str, old: Stage, new: Stage) -> list[Change]:
    """Internal actions, paired by what they do; a changed delay is a change."""
    pairs, removed, added = _pair(old.actions, new.actions, [lambda a: (a.kind, a.to, a.value)])
    out = [Change("~", "act", sid, f"{t.action_text(n)}: {t.action_offset_text(o)} -> {t.action_offset_text(n)}",
                  o, n) for o, n in pairs if o != n]
    out += [Change("-", "act", sid, _action_label(o), o, None) for o in removed]
    out += [Change("+", "act", sid, _action_label(n), None, n) for n in added]
    return out


def _hold_line(h: HoldLoop) -> str:
    return (f"hold after {h.stall_after} idle: every {h.every} {h.kind} \"{h.content}\" "
            f"×{h.times}, then -> {t.target_text(h.then)}")


def _hold_changes(sid: str, old: Stage, new: Stage) -> list[Change]:
    if old.hold == new.hold:
        return []
    if old.hold is None and new.hold is not None:
        return [Change("+", "hold", sid, _hold_line(new.hold), None, new.hold)]
    if new.hold is None and old.hold is not None:
        return [Change("-", "hold", sid, _hold_line(old.hold), old.hold, None)]
    assert old.hold is not None and new.hold is not None  # they differ: neither is missing now
    return [Change("~", "hold", sid, f"{_hold_line(old.hold)} -> {_hold_line(new.hold)}", old.hold, new.hold)]


def _stage_changes(old: Stage, new: Stage) -> list[Change]:
    sid = new.id
    out = []
    if old.title != new.title:
        out.append(Change("~", "label", sid, f'label "{old.title}" -> "{new.title}"', old, new))
    for flag, word in (("initial", "initial"), ("final", "final"), ("handoff", "handoff to sales")):
        was, now = getattr(old, flag), getattr(new, flag)
        if was != now:
            out.append(Change("+" if now else "-", "flag", sid, word, old, new))
    return (out + _send_changes(sid, old, new) + _action_changes(sid, old, new) + _trigger_changes(sid, old, new)
            + _hold_changes(sid, old, new))


def _rules(kind: str, old, new, text, loose) -> list[Change]:
    pairs, removed, added = _pair(old, new, [loose])
    out = [Change("~", kind, None, f"{kind}: {text(o)} -> {text(n)}", o, n) for o, n in pairs]
    out += [Change("-", kind, None, f"{kind}: {text(o)}", o, None) for o in removed]
    out += [Change("+", kind, None, f"{kind}: {text(n)}", None, n) for n in added]
    return out


def _global_changes(old: Journey, new: Journey) -> list[Change]:
    out = []
    if old.name != new.name:
        out.append(Change("~", "name", None, f'journey name "{old.name}" -> "{new.name}"'))
    out += _rules("scoring", old.scoring, new.scoring, t.score_rule_text, lambda r: (r.event, r.condition))
    if old.decay != new.decay:
        before = f"half-life {old.decay.half_life}" if old.decay else "none"
        after = f"half-life {new.decay.half_life}" if new.decay else "none"
        out.append(Change("~", "decay", None, f"decay: {before} -> {after}", old.decay, new.decay))
    out += _rules("fit", old.fit, new.fit, t.fit_rule_text, lambda r: r.condition)
    out += _rules("exit", old.exits, new.exits, t.exit_rule_text, lambda r: r.events)
    out += _rules("enroll", old.enrollments, new.enrollments, t.enroll_rule_text, lambda r: r.events)
    out += _rules("goal", old.goals, new.goals, t.goal_text, lambda g: (g.events, g.target))
    out += _rules("cap", old.caps, new.caps, t.cap_text, lambda c: c.window.seconds)
    out += _rules("zone", old.zones, new.zones, t.zone_text, lambda z: z.field)
    out += _rules("window", old.windows, new.windows, t.window_text, lambda w: w.kind)
    if old.reentry != new.reentry:
        before = t.reentry_text(old.reentry) if old.reentry else "re-enter once (the default)"
        after = t.reentry_text(new.reentry) if new.reentry else "re-enter once (the default)"
        out.append(Change("~", "reentry", None, f"re-entry: {before} -> {after}", old.reentry, new.reentry))
    return out


def stage_contents(stage: Stage) -> tuple[str, ...]:
    """What a stage holds, in the words of the diff: label, flags, sends, triggers in order, hold."""
    lines = [f'label "{stage.title}"'] if stage.title != stage.id else []
    lines += [word for flag, word in (("initial", "initial"), ("final", "final"), ("handoff", "handoff to sales"))
              if getattr(stage, flag)]
    lines += [_send_label(s) for s in stage.sends]
    lines += [_action_label(a) for a in stage.actions]
    lines += [f"{i}. {_trigger_word(trig)} {_full(trig)}" for i, trig in enumerate(stage.triggers, 1)]
    if stage.hold is not None:
        lines.append(_hold_line(stage.hold))
    return tuple(lines) or ("(empty)",)


def diff_journeys(old: Journey, new: Journey) -> JourneyDiff:
    """Every difference from `old` to `new`: global rules first, then stage by stage."""
    changes = _global_changes(old, new)
    old_ids = {s.id for s in old.stages}
    new_ids = {s.id for s in new.stages}
    for stage in new.stages:
        if stage.id not in old_ids:
            changes.append(Change("+", "stage", stage.id, f"stage {stage.id}", None, stage,
                                  contents=stage_contents(stage)))
        else:
            before = old.stage(stage.id)
            assert before is not None  # its id is among the old stages'
            changes.extend(_stage_changes(before, stage))
    for stage in old.stages:
        if stage.id not in new_ids:
            changes.append(Change("-", "stage", stage.id, f"stage {stage.id}", stage, None,
                                  contents=stage_contents(stage)))
    return JourneyDiff(old, new, tuple(changes))
