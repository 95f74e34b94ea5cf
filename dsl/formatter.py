"""One canonical layout for a journey file, comments kept, so diffs show meaning, not style.

`format_journey` prints a parsed file model (see `dsl.loader.parse_journey`):
header, includes, top-level rules (enroll, exit, frequency caps, time zone,
send windows and quiet hours), `scoring`
(rules, decay last), `fit`, `content`, then the stages in order; inside a stage
its flags, sends, triggers (in their order: it is semantic) and the holding
loop. The printed text parses back to an equal model.

Comments are placed by line: a comment on the line of a statement stays at the
end of that statement's line; a comment on its own line goes before the
statement that follows it in the source; comments after the last statement stay
at the end of the file. Every source line with code is a statement whose line
the model records (block headers and stage flags included), so this needs no
source text.
"""

from __future__ import annotations

import bisect
from decimal import Decimal
from typing import Any

from . import model as m
from .builder import encode_string
from .diagnostics import has_errors
from .errors import JourneyError

__all__ = ["format_journey", "format_text", "canonical_text", "format_condition", "format_value", "format_action",
           "INDENT"]

INDENT = "  "

# Binding strength: `not` binds tighter than `and`, which binds tighter than `or`.
_OR, _AND, _NOT, _ATOM = 1, 2, 3, 4


# ---- words -------------------------------------------------------------------
def _points(points: int) -> str:
    return f"{points:+d}"


def _number(value: int | float) -> str:
    """A number as the grammar reads it: digits with an optional fraction, never an exponent."""
    if isinstance(value, int):
        return str(value)
    text = repr(value)
    if "e" in text or "E" in text:
        text = format(Decimal(text), "f")
        if "." not in text:
            text += ".0"
    return text


def format_value(value: m.Value) -> str:
    """A condition value: quoted text, number, true/false or a `[list]`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return _number(value)
    if isinstance(value, str):
        return encode_string(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    raise TypeError(f"not a condition value: {value!r}")


def _strength(cond: m.Condition) -> int:
    if isinstance(cond, m.AnyOf):
        return _OR
    if isinstance(cond, m.AllOf):
        return _AND
    if isinstance(cond, m.Not):
        return _NOT
    return _ATOM


def _part(cond: m.Condition, above: int) -> str:
    """A sub-condition, in parentheses when it binds no tighter than its parent.

    Equal strength needs them too: `(a or b) or c` is a nested AnyOf in the model,
    `a or b or c` a flat one, and the formatted text must read back to the same model.
    """
    text = format_condition(cond)
    return f"({text})" if _strength(cond) <= above and _strength(cond) != _ATOM else text


def format_condition(cond: m.Condition) -> str:
    """A condition with the fewest parentheses that keep its structure."""
    if isinstance(cond, m.AnyOf):
        return " or ".join(_part(p, _OR) for p in cond.parts)
    if isinstance(cond, m.AllOf):
        return " and ".join(_part(p, _AND) for p in cond.parts)
    if isinstance(cond, m.Not):
        inner = cond.part
        text = format_condition(inner)
        return f"not {text}" if isinstance(inner, (m.Compare, m.Not, m.Had)) else f"not ({text})"
    if isinstance(cond, m.Had):
        return f"had {cond.event}"
    if isinstance(cond, m.Compare):
        if cond.op == "is set":
            return f"{cond.field} is set"
        assert cond.value is not None  # every comparison but `is set` has a value
        return f"{cond.field} {cond.op} {format_value(cond.value)}"
    raise TypeError(f"not a condition: {cond!r}")


def _where(cond: m.Condition | None) -> str:
    return "" if cond is None else f" where {format_condition(cond)}"


def _events(rule) -> str:
    """`a` or `a or b`: the event types of a trigger, goal, exit or enroll rule."""
    return " or ".join(rule.events)


def _target(target: str) -> str:
    return "exit" if target == m.EXIT else f"-> {target}"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


# ---- statements ----------------------------------------------------------------
def _score_rule(rule: m.ScoreRule) -> str:
    text = f"{rule.event}{_where(rule.condition)} {_points(rule.points)}"
    if rule.cap_count is not None and rule.cap_window is not None:
        text += f" at most {rule.cap_count} per {rule.cap_window}"
    return text


def _content_item(item: m.ContentItem) -> str:
    text = f"{item.kind} {encode_string(item.id)}"
    return text if item.title is None else f"{text} {encode_string(item.title)}"


def _send(send: m.Send) -> str:
    when = str(send.at) if send.at is not None else "on entry" if send.after is None else f"after {send.after}"
    test = "" if send.condition is None else f" {'unless' if send.unless else 'if'} {format_condition(send.condition)}"
    return (f"send {send.kind} {encode_string(send.content)} {when}" + (" every visit" if send.every_visit else "")
            + test)


def format_action(act: m.InternalAction) -> str:
    """An internal action as written in a stage (`notify owner "..."`, `set lifecycle to "mql"`, ...)."""
    value = format_value(act.value)
    if act.kind == "notify":
        text = f"notify owner {value}" if act.to is None else f"notify user {encode_string(act.to)} {value}"
    elif act.kind == "set_field":
        text = f"set {act.to} to {value}"
    else:
        text = {"task": "create task", "tag": "tag", "add_to_list": "add to list",
                "webhook": "call webhook"}[act.kind] + f" {value}"
    return text if act.after is None else f"{text} after {act.after}"


def _trigger(trigger: m.Trigger) -> str:
    if isinstance(trigger, m.EventTrigger):
        return f"on {_events(trigger)}{_where(trigger.condition)} -> {trigger.target}"
    if isinstance(trigger, m.ScoreTrigger):
        lead = "lead " if trigger.lead else ""
        return f"when {lead}score {trigger.op} {_number(trigger.value)} -> {trigger.target}"
    if isinstance(trigger, m.TimeTrigger):
        return f"after {trigger.after} {trigger.clock} -> {trigger.target}"
    raise TypeError(f"not a trigger: {trigger!r}")


def _hold(hold: m.HoldLoop) -> str:
    return (
        f"hold after {hold.stall_after} idle: every {hold.every} send {hold.kind} "
        f"{encode_string(hold.content)}, {_plural(hold.times, 'time')}, then {_target(hold.then)}"
    )


def _move(move: m.Move) -> str:
    if move.kind == "stage":
        return f"stage {move.old} -> {move.new}"  # `-> exit` reads as written
    return f"content {encode_string(move.old)} -> {encode_string(move.new)}"


def _reentry(reentry: m.Reentry) -> str:
    if reentry.mode == "per":
        return f"re-enter once per {reentry.window}"
    return "re-enter every time" if reentry.mode == "always" else "re-enter once"


def _cap(cap: m.FrequencyCap) -> str:
    return f"at most {_plural(cap.count, 'message')} per {cap.window}"


def _zone(zone: m.TimeZone) -> str:
    if zone.field is None:
        return f"time zone {encode_string(zone.zone)}"
    default = "" if zone.default is None else f" default {encode_string(zone.default)}"
    return f"time zone from {zone.field}{default}"


# ---- layout ----------------------------------------------------------------------
class _Line:
    """One output statement: its indentation, its code, and the key comments attach to."""

    __slots__ = ("depth", "code", "key")

    def __init__(self, depth: int, code: str, key: tuple):
        self.depth, self.code, self.key = depth, code, key


def _blocks(journey: m.Journey) -> list[list[_Line]]:
    """The canonical statements, grouped in blocks that a blank line separates."""
    blocks: list[list[_Line]] = []
    if journey.name is not None:
        blocks.append([_Line(0, f"journey {encode_string(journey.name)}", ("header",))])
    if journey.includes:
        blocks.append([_Line(0, f"include {encode_string(inc.path)}", ("include", i))
                       for i, inc in enumerate(journey.includes)])
    rules = [_Line(0, f"enroll on {_events(r)}{_where(r.condition)}", ("enroll", i))
             for i, r in enumerate(journey.enrollments)]
    rules += [_Line(0, f"exit on {_events(r)}{_where(r.condition)}", ("exit", i))
              for i, r in enumerate(journey.exits)]
    rules += [_Line(0, _cap(c), ("cap", i)) for i, c in enumerate(journey.caps)]
    rules += [_Line(0, _zone(z), ("zone", i)) for i, z in enumerate(journey.zones)]
    rules += [_Line(0, str(w), ("window", i)) for i, w in enumerate(journey.windows)]
    rules += [_Line(0, f"{_cap(c)} across journeys", ("lead cap", i)) for i, c in enumerate(journey.lead_caps)]
    if journey.priority is not None:
        rules.append(_Line(0, f"priority {journey.priority.value}", ("priority",)))
    rules += [_Line(0, _trigger(g), ("goal", i)) for i, g in enumerate(journey.goals)]
    if journey.reentry is not None:
        rules.append(_Line(0, _reentry(journey.reentry), ("reentry",)))
    if journey.catalogue is not None:
        rules.append(_Line(0, f"catalogue {encode_string(journey.catalogue.path)}", ("catalogue",)))
    if rules:
        blocks.append(rules)
    for head, rules_, decay, decay_key in (("lead scoring", journey.lead_scoring, journey.lead_decay, "lead decay"),
                                           ("scoring", journey.scoring, journey.decay, "decay")):
        if rules_ or decay is not None:
            block = [_Line(0, head, ("block", head))]
            block += [_Line(1, _score_rule(r), (head, i)) for i, r in enumerate(rules_)]
            if decay is not None:
                block.append(_Line(1, f"decay half-life {decay.half_life}", (decay_key,)))
            blocks.append(block)
    if journey.fit:
        block = [_Line(0, "fit", ("block", "fit"))]
        block += [_Line(1, f"{format_condition(r.condition)} {_points(r.points)}", ("fit", i))
                  for i, r in enumerate(journey.fit)]
        blocks.append(block)
    if journey.contents:
        block = [_Line(0, "content", ("block", "content"))]
        block += [_Line(1, _content_item(c), ("content", i)) for i, c in enumerate(journey.contents)]
        blocks.append(block)
    if journey.moves:
        block = [_Line(0, "moves", ("block", "moves"))]
        block += [_Line(1, _move(mv), ("moves", i)) for i, mv in enumerate(journey.moves)]
        blocks.append(block)
    for si, stage in enumerate(journey.stages):
        head = f"stage {stage.id}" + ("" if stage.label is None else f" {encode_string(stage.label)}")
        block = [_Line(0, head, ("stage", si))]
        for flag, word in (("initial", "initial"), ("final", "final"), ("handoff", "handoff to sales")):
            if getattr(stage, flag):
                block.append(_Line(1, word, ("flag", si, flag)))
        block += [_Line(1, format_action(a), ("act", si, i)) for i, a in enumerate(stage.actions)]
        block += [_Line(1, _send(s), ("send", si, i)) for i, s in enumerate(stage.sends)]
        block += [_Line(1, _trigger(t), ("trigger", si, i)) for i, t in enumerate(stage.triggers)]
        if stage.hold is not None:
            block.append(_Line(1, _hold(stage.hold), ("hold", si)))
        blocks.append(block)
    return blocks


def _anchors(journey: m.Journey) -> list[tuple[int, tuple, bool]]:
    """(source line, output key, primary) for every statement written in the source.

    A statement that is not primary (a second `scoring` header, a repeated flag)
    has no output line of its own: its comments go with the next statement.
    """
    out: list[tuple[int, tuple, bool]] = []

    def add(span: m.Span, key: tuple, primary: bool = True) -> None:
        if span.line >= 1:
            out.append((span.line, key, primary))

    if journey.name is not None:
        add(journey.span, ("header",))
    for i, inc in enumerate(journey.includes):
        add(inc.span, ("include", i))
    item: Any  # a rule of any of these kinds: each has a span
    for kind, items in (("enroll", journey.enrollments), ("exit", journey.exits), ("cap", journey.caps),
                        ("zone", journey.zones), ("window", journey.windows),
                        ("lead cap", journey.lead_caps), ("lead scoring", journey.lead_scoring),
                        ("scoring", journey.scoring), ("fit", journey.fit), ("content", journey.contents),
                        ("moves", journey.moves), ("goal", journey.goals)):
        for i, item in enumerate(items):
            add(item.span, (kind, i))
    if journey.decay is not None:
        add(journey.decay.span, ("decay",))
    if journey.lead_decay is not None:
        add(journey.lead_decay.span, ("lead decay",))
    if journey.priority is not None:
        add(journey.priority.span, ("priority",))
    if journey.reentry is not None:
        add(journey.reentry.span, ("reentry",))
    if journey.catalogue is not None:
        add(journey.catalogue.span, ("catalogue",))
    seen_blocks: set[str] = set()
    for kind, span in sorted(journey.block_spans, key=lambda ks: ks[1].line):
        add(span, ("block", kind), kind not in seen_blocks)
        seen_blocks.add(kind)
    for si, stage in enumerate(journey.stages):
        add(stage.span, ("stage", si))
        seen_flags: set[str] = set()
        for flag, span in stage.flag_spans:
            add(span, ("flag", si, flag), flag not in seen_flags)
            seen_flags.add(flag)
        for i, act in enumerate(stage.actions):
            add(act.span, ("act", si, i))
        for i, send in enumerate(stage.sends):
            add(send.span, ("send", si, i))
        for i, trigger in enumerate(stage.triggers):
            add(trigger.span, ("trigger", si, i))
        if stage.hold is not None:
            add(stage.hold.span, ("hold", si))
    out.sort(key=lambda a: a[0])
    return out


def _attach(journey: m.Journey, keys: set[tuple]) -> tuple[dict, dict, list[m.Comment]]:
    """Comments to (leading by key, trailing by key, comments after the last statement)."""
    anchors = _anchors(journey)
    by_line = {line: (key, primary) for line, key, primary in reversed(anchors)}
    primaries = [(line, key) for line, key, primary in anchors if primary and key in keys]
    lines = [line for line, _ in primaries]
    leading: dict[tuple, list[m.Comment]] = {}
    trailing: dict[tuple, m.Comment] = {}
    tail: list[m.Comment] = []
    for comment in sorted(journey.comments, key=lambda c: (c.line, c.column)):
        key, primary = by_line.get(comment.line, (None, False))
        if primary and key in keys and key not in trailing:
            trailing[key] = comment
            continue
        # on its own line (or on a statement without an output line): before the next statement
        at = bisect.bisect_right(lines, comment.line)
        if at < len(primaries):
            leading.setdefault(primaries[at][1], []).append(comment)
        else:
            tail.append(comment)
    return leading, trailing, tail


def format_journey(journey: m.Journey) -> str:
    """The canonical text of one file's model (as `parse_journey` gives it), comments kept."""
    blocks = _blocks(journey)
    leading: dict[tuple, list[m.Comment]] = {}
    trailing: dict[tuple, m.Comment] = {}
    tail: list[m.Comment] = []
    if journey.comments:  # none in a canonical text: nothing to attach (a fifth of making one)
        leading, trailing, tail = _attach(journey, {line.key for block in blocks for line in block})
    out: list[str] = []
    for block in blocks:
        if out:
            out.append("")
        for line in block:
            pad = INDENT * line.depth
            out.extend(pad + c.text for c in leading.get(line.key, ()))
            comment = trailing.get(line.key)
            out.append(f"{pad}{line.code}  {comment.text}" if comment else pad + line.code)
    # After the last statement: indented comments stay in the last block, the others follow it.
    inside = bool(blocks) and len(blocks[-1]) > 1
    for comment in tail:
        if inside and comment.column > 1:
            out.append(INDENT + comment.text)
            continue
        if inside or (out and not out[-1].startswith("#")):
            out.append("")
        inside = False
        out.append(comment.text)
    return "\n".join(out) + "\n" if out else ""


def canonical_text(journey: m.Journey) -> str:
    """The meaning of a merged journey as one self-contained text: includes merged, no comments.

    This is what the store keeps and what a version hashes: layout, comments and
    the way a journey is split into files do not change it, and parsing it gives
    back an equal model (nothing is unpickled, a new field never breaks a store).
    """
    import dataclasses

    return format_journey(dataclasses.replace(journey, includes=(), comments=(), block_spans=()))


def format_text(text: str, path: str = "<string>") -> str:
    """Parse one file and give its canonical text; JourneyError if it cannot be read as a journey.

    Odd spaces (a non-breaking space outside quotes) are read as plain spaces first: that is a fix
    `fmt` makes, not a meaning it guesses.

    A file with errors found while building the model (a second hold in a stage, a
    second name, a second decay) is refused too: its model lost a line, and the
    formatter must never drop what the user wrote.
    """
    from .loader import parse_journey
    from .parser import replace_odd_spaces

    # non-breaking and other odd spaces pasted from a word processor become plain spaces (C091)
    journey, diagnostics = parse_journey(replace_odd_spaces(text), path)
    if journey is None or has_errors(diagnostics):
        errors = [d for d in diagnostics if d.is_error]
        raise JourneyError(f"{path}: cannot format: {len(errors)} error(s)", errors)
    return format_journey(journey)
