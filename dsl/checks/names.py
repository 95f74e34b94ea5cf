"""Checks on names and values: what is declared, what is referred to, what is well-formed."""

from __future__ import annotations

import difflib
from collections import Counter

from ..diagnostics import Diagnostic, Severity
from ..limits import MAX_NAME, MAX_REMEMBERED, MAX_TEXT, MAX_VALUE
from ..patterns import PatternError, compile_pattern
from ..model import (
    EXIT,
    ContentItem,
    EventTrigger,
    Journey,
    ScoreTrigger,
    Span,
    UNIT_SECONDS,
    TimeTrigger,
    compares,
    hads,
    lead_field,
)

__all__ = [
    "did_you_mean",
    "check_remembered",
    "check_has_stages",
    "check_duplicate_stages",
    "check_initial_stage",
    "check_unknown_targets",
    "check_self_targets",
    "check_durations",
    "check_counts",
    "check_numbers",
    "check_content_library",
    "check_event_typos",
    "check_regexes",
    "check_lead_conditions",
    "check_lengths",
]

E, W = Severity.ERROR, Severity.WARNING


def did_you_mean(name: str, candidates) -> str | None:
    match = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"did you mean `{match[0]}`?" if match else None


def check_has_stages(j: Journey):
    if not j.stages:
        yield Diagnostic("C052", E, "the journey has no stages", j.span,
                         "add at least `stage start` with `initial`, and a `final` stage")


def check_duplicate_stages(j: Journey):
    first: dict[str, Span] = {}
    for s in j.stages:
        if s.id in first:
            yield Diagnostic("C031", E, f"stage `{s.id}` is declared twice", s.id_span,
                             f"the first `{s.id}` is at {first[s.id]}; rename one of them")
        else:
            first[s.id] = s.id_span


def check_initial_stage(j: Journey):
    if not j.stages:
        return
    initials = [s for s in j.stages if s.initial]
    if not initials:
        yield Diagnostic("C032", E, "no stage is marked `initial`", j.stages[0].id_span,
                         f"add `initial` under the stage where new leads start, e.g. `{j.stages[0].id}`")
    for extra in initials[1:]:
        yield Diagnostic("C033", E, f"stage `{extra.id}` is a second initial stage", extra.id_span,
                         f"leads start in `{initials[0].id}`; keep `initial` on one stage only")


def check_unknown_targets(j: Journey):
    known = {s.id for s in j.stages}
    goals = [(g.target, g.target_span) for g in j.goals if g.target != EXIT]  # `-> exit`: C090
    for s in [None, *j.stages]:
        if s is None:
            targets = goals
        else:
            targets = [(t.target, t.target_span) for t in s.triggers]
            if s.hold is not None:
                targets.append((s.hold.then, s.hold.target_span))
        for target, span in targets:
            if target != EXIT and target not in known:
                yield Diagnostic("C030", E, f"unknown stage `{target}`", span,
                                 did_you_mean(target, known) or "declare it with `stage " + target + "`")


def check_self_targets(j: Journey):
    for s in j.stages:
        for t in s.triggers:
            if t.target == s.id:
                yield Diagnostic("C039", E, f"a trigger of `{s.id}` leads back to `{s.id}` itself", t.span,
                                 "a lead is already there; remove the trigger or point it at another stage")
        if s.hold is not None and s.hold.then == s.id:
            yield Diagnostic("C039", E, f"the holding loop of `{s.id}` ends in `{s.id}` itself", s.hold.span,
                             "a loop must end somewhere else, e.g. `then -> dormant` or `then exit`")


def _durations(j: Journey):
    for r in j.scoring + j.lead_scoring:
        if r.cap_window is not None:
            yield r.cap_window
    for decay in (j.decay, j.lead_decay):
        if decay is not None:
            yield decay.half_life
    for c in j.caps + j.lead_caps:
        yield c.window
    if j.reentry is not None and j.reentry.window is not None:
        yield j.reentry.window
    for s in j.stages:
        for send in s.sends:
            if send.after is not None:
                yield send.after
            if send.at is not None:
                yield send.at.offset
        for act in s.actions:
            if act.after is not None:
                yield act.after
        for t in s.triggers:
            if isinstance(t, TimeTrigger):
                yield t.after
        if s.hold is not None:
            yield s.hold.stall_after
            yield s.hold.every


#: The longest duration the language accepts: 100 years (the engine stores times as 64-bit seconds).
MAX_DURATION_DAYS = 36_500


def _longest(unit: str) -> str:
    """The bound in days, and in the unit the marketer wrote: `36500 days (5214 weeks)`."""
    days = f"{MAX_DURATION_DAYS} days"
    if unit == "day":
        return days
    return f"{days} ({MAX_DURATION_DAYS * UNIT_SECONDS['day'] // UNIT_SECONDS[unit]} {unit}s)"


def check_durations(j: Journey):
    at_dates = {id(a.offset) for a in j.anchors()}  # `0 minutes before X` is the date itself
    for d in _durations(j):
        if d.amount < 0 or (d.amount == 0 and id(d) not in at_dates):
            yield Diagnostic("C049", E, f"a duration must be positive, not `{d}`", d.span,
                             "for something immediate use `on entry`; otherwise write e.g. `1 day`")
        elif d.seconds > MAX_DURATION_DAYS * UNIT_SECONDS["day"]:
            yield Diagnostic("C060", E, f"`{d}` is longer than 100 years, the longest duration allowed",
                             d.span,
                             f"write a shorter one: at most {_longest(d.unit)}")


#: The largest number (threshold, points, count, compared value) the language accepts: a million billion.
MAX_NUMBER = 10**15


def _numbers(j: Journey):
    """(number, where it is written, whether it is compared in a condition) for every number but durations."""
    for r in j.scoring + j.lead_scoring:
        yield r.points, r.span, False
        if r.cap_count is not None:
            yield r.cap_count, r.span, False
    for f in j.fit:
        yield f.points, f.span, False
    for c in j.caps + j.lead_caps:
        yield c.count, c.span, False
    for s in j.stages:
        for t in s.triggers:
            if isinstance(t, ScoreTrigger):
                yield t.value, t.span, False
        if s.hold is not None:
            yield s.hold.times, s.hold.span, False
        for act in s.actions:  # `set FIELD to NUMBER`
            yield act.value, act.span, False
    conditions = [r.condition for r in j.scoring + j.lead_scoring] + [f.condition for f in j.fit]
    conditions += [r.condition for r in j.exits + j.enrollments + j.goals]
    conditions += [t.condition for s in j.stages for t in s.triggers if isinstance(t, EventTrigger)]
    conditions += [x.condition for s in j.stages for x in s.sends]
    for c in (c for condition in conditions for c in compares(condition)):
        for v in c.value if isinstance(c.value, tuple) else (c.value,):
            yield v, c.span, True


def check_numbers(j: Journey):
    for value, span, compared in _numbers(j):
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not abs(value) <= MAX_NUMBER:
            shown = str(value) if len(str(value)) <= 24 else str(value)[:20] + "..."
            hint = "numbers go up to 10^15 (1000000000000000) either way"
            if compared:
                hint += "; an identifier made of digits is compared as a text: write it in double quotes"
            yield Diagnostic("C061", E, f"the number `{shown}` is too large", span, hint)


def check_counts(j: Journey):
    for r in j.scoring + j.lead_scoring:
        if r.cap_count is not None and r.cap_count <= 0:
            yield Diagnostic("C056", E, "`at most 0` makes this rule count never", r.span,
                             "remove the rule, or allow at least 1")
    for c in j.caps + j.lead_caps:
        if c.count <= 0:
            yield Diagnostic("C056", E, "`at most 0 messages` would block every message", c.span,
                             "allow at least 1 message per window")
    for s in j.stages:
        if s.hold is not None and s.hold.times <= 0:
            yield Diagnostic("C056", E, "a holding loop must send at least once", s.hold.span,
                             "write e.g. `3 times`")


def _a(word: str) -> str:
    """`an ebook`, `a case_study`: the article a marketer would write."""
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"


def check_content_library(j: Journey):
    if not j.contents:
        return
    library: dict[str, ContentItem] = {}
    item: ContentItem | None
    for item in j.contents:
        if item.id in library:
            yield Diagnostic("C035", E, f"content `{item.id}` is declared twice", item.span,
                             f"the first is at {library[item.id].span}")
        else:
            library[item.id] = item
    for s in j.stages:
        sends = [(x.kind, x.content, x.span) for x in s.sends]
        if s.hold is not None:
            sends.append((s.hold.kind, s.hold.content, s.hold.span))
        for kind, cid, span in sends:
            item = library.get(cid)
            if item is None:
                yield Diagnostic("C034", E, f"unknown content `{cid}`", span,
                                 did_you_mean(cid, library) or "declare it in the `content` block")
            elif item.kind != kind:
                yield Diagnostic("C036", E, f"`{cid}` is {_a(item.kind)}, not {_a(kind)}", span,
                                 f"write `send {item.kind} \"{cid}\"`, or declare it as {_a(kind)} "
                                 f"in the `content` block")


def _event_uses(j: Journey):
    for r in j.scoring:
        yield r.event, r.span
    for x in j.exits + j.enrollments + j.goals:
        for event in x.events:
            yield event, x.span
    for s in j.stages:
        for t in s.triggers:
            if isinstance(t, EventTrigger):
                for event in t.events:
                    yield event, t.span
    for c in j.conditions():
        for h in hads(c):
            yield h.event, h.span


#: C037 compares an event type with this many of the best-used ones at most (see docs/decisions.md).
TYPO_CANDIDATES = 32


class _Word:
    """An event type with what the cheap similarity bounds need, computed once."""

    __slots__ = ("name", "rank", "letters", "mask")

    def __init__(self, name: str, rank: int, alphabet: dict[str, int]):
        self.name, self.rank = name, rank
        self.letters = Counter(name)
        self.mask = 0
        for ch in self.letters:
            self.mask |= 1 << alphabet.setdefault(ch, len(alphabet))


def _similar(a: _Word, b: _Word) -> bool:
    """difflib's ratio >= 0.85, after cheap upper bounds of it (see difflib's quick ratios).

    A letter of one word that the other lacks costs at least one match, so the letters
    each word lacks bound the matches before they are counted.
    """
    la, lb = len(a.name), len(b.name)
    need = 0.85 * (la + lb)
    if 2 * min(la, lb) < need:
        return False
    if 2 * min(la - (a.mask & ~b.mask).bit_count(), lb - (b.mask & ~a.mask).bit_count()) < need:
        return False
    if 2 * sum(min(n, b.letters[ch]) for ch, n in a.letters.items()) < need:
        return False
    return difflib.SequenceMatcher(None, b.name, a.name).ratio() >= 0.85


def _typo_of(word: _Word, candidates: list[_Word]) -> str | None:
    """The better-used event type that `word` is most likely a misspelling of.

    `candidates` are the TYPO_CANDIDATES best-used types, in order of first use; one
    counts if it ranks above `word` (used more often, or as often and first used earlier).
    """
    for other in candidates:
        if other.rank < word.rank and _similar(word, other):
            return other.name
    return None


def check_event_typos(j: Journey):
    """An event type that looks like one used more often: most likely a typo.

    Only the TYPO_CANDIDATES best-used types are looked at as what was meant, so the
    check stays linear in the number of event types (a typo is of a type used often).
    """
    uses = list(_event_uses(j))
    counts = Counter(name for name, _ in uses)
    order: dict[str, int] = {}
    for i, (name, _) in enumerate(uses):
        order.setdefault(name, i)
    alphabet: dict[str, int] = {}
    ranked = sorted(counts, key=lambda name: (-counts[name], order[name]))
    words = {name: _Word(name, rank, alphabet) for rank, name in enumerate(ranked)}
    candidates = sorted((words[name] for name in ranked[:TYPO_CANDIDATES]), key=lambda w: order[w.name])
    typos = {name: _typo_of(word, candidates) for name, word in words.items()}
    for name, span in uses:
        other = typos[name]
        if other is not None:
            yield Diagnostic("C037", W, f"event type `{name}` looks like a typo", span,
                             f"did you mean `{other}`? (used {counts[other]} time(s) elsewhere)")


def check_lead_conditions(j: Journey):
    """`lead.FIELD` and `had EVENT` read the lead: fine in `where` and in a send's `if`/`unless`, not in fit;
    a send's condition has no event, so it reads nothing else."""
    for f in j.fit:
        for c in compares(f.condition):
            attribute = lead_field(c.field)
            if attribute is not None:
                yield Diagnostic("C098", E, f"a fit line reads the lead's attributes already: `{c.field}` is "
                                 f"`{attribute}` here", c.span, f"write `{attribute}` without `lead.`")
        for h in hads(f.condition):
            yield Diagnostic("C098", E, "a fit line reads the lead's profile only, not the events it had",
                             h.span, "test `had EVENT` in a `where` condition or a send's `if`/`unless` instead")
    for s in j.stages:
        for x in s.sends:
            for c in compares(x.condition):
                if lead_field(c.field) is None:
                    yield Diagnostic(
                        "C099", E, f"a send's condition reads the lead, not an event: `{c.field}` is no "
                        "attribute of the lead", c.span,
                        f"write `lead.{c.field}` for the lead's attribute, or `had EVENT` for an event it had")


def check_regexes(j: Journey):
    """Patterns compile with the engine's own RE2 (dsl.patterns): what checks clean runs, in linear time."""
    for cond in j.conditions():
        for c in compares(cond):
            if c.op == "matches":
                try:
                    compile_pattern(str(c.value))
                except PatternError as err:
                    yield Diagnostic("C038", E, f"`{c.value}` is not a valid pattern: {err}", c.span,
                                     'patterns are regular expressions in RE2 syntax (like Python\'s, without '
                                     'backreferences or lookaround), e.g. "director|vp" or "^/pricing"')


#: kind of text -> (the longest allowed, how to fix a longer one)
_LIMITS = {
    "name": (MAX_NAME, "a name is a short word like `email.opened`; shorten it"),
    "text": (MAX_TEXT, "shorten it: people read it in messages and diagrams; a longer note goes in a `#` comment"),
    "value": (MAX_VALUE, "compare with a shorter text, e.g. `starts with` its beginning, or a pattern"),
}


def _lengths(j: Journey):
    """(what, text, where, kind of text) for every name and text of the journey."""
    if j.name is not None:
        yield "a journey name", j.name, j.span, "text"
    for r in j.scoring:
        yield "an event type", r.event, r.span, "name"
    for x in j.exits + j.enrollments + j.goals:
        for event in x.events:
            yield "an event type", event, x.span, "name"
    for item in j.contents:
        yield "a content kind", item.kind, item.span, "name"
        yield "a content id", item.id, item.span, "text"
        if item.title is not None:
            yield "a content title", item.title, item.span, "text"
    for s in j.stages:
        yield "a stage id", s.id, s.id_span, "name"
        if s.label is not None:
            yield "a stage label", s.label, s.span, "text"
        sends = [(x.kind, x.content, x.span) for x in s.sends]
        if s.hold is not None:
            sends.append((s.hold.kind, s.hold.content, s.hold.span))
        for kind, content, span in sends:
            yield "a content kind", kind, span, "name"
            yield "a content id", content, span, "text"
        for t in s.triggers:
            if isinstance(t, EventTrigger):
                for event in t.events:
                    yield "an event type", event, t.span, "name"
        for act in s.actions:
            if act.kind == "set_field":
                yield "a field name", act.to, act.span, "name"
            elif act.to is not None:
                yield "a user notified", act.to, act.span, "text"
            if isinstance(act.value, str):
                yield "an action's text", act.value, act.span, "value"
    if j.catalogue is not None:
        yield "a catalogue path", j.catalogue.path, j.catalogue.span, "value"
    for cond in j.conditions():
        for h in hads(cond):
            yield "an event type", h.event, h.span, "name"
        for c in compares(cond):
            yield "a field name", c.field, c.span, "name"
            for v in c.value if isinstance(c.value, tuple) else (c.value,):
                if isinstance(v, str):
                    yield ("a pattern" if c.op == "matches" else "a compared text"), v, c.span, "value"


def check_lengths(j: Journey):
    """Every name and text has a length limit, so messages, diagrams and the store stay usable."""
    for what, text, span, kind in _lengths(j):
        limit, hint = _LIMITS[kind]
        if len(text) > limit:
            yield Diagnostic("C063", E, f"{what} is at most {limit:,} characters long; this one has {len(text):,}",
                             span, hint)


def check_remembered(j: Journey):
    """A lead's record keeps a bit per content sent, per delayed internal action of its stage and per event
    type `had` names: past MAX_REMEMBERED of one kind, the record could not be stored (C064)."""
    contents: dict[str, object] = {}
    for s in j.stages:
        for send in s.sends:
            contents.setdefault(send.content, send.span)
        if s.hold is not None:
            contents.setdefault(s.hold.content, s.hold.span)
        delayed = [act for act in s.actions if act.after is not None]
        if len(delayed) > MAX_REMEMBERED:
            yield Diagnostic("C064", E, f"stage `{s.id}` has {len(delayed):,} delayed internal actions; "
                             f"a stage may have at most {MAX_REMEMBERED:,}", delayed[MAX_REMEMBERED].span,
                             "split the stage, or take the actions on entry")
    if len(contents) > MAX_REMEMBERED:
        span = list(contents.values())[MAX_REMEMBERED]
        yield Diagnostic("C064", E, f"the journey sends {len(contents):,} different contents; a journey may send "
                         f"at most {MAX_REMEMBERED:,}", span,  # type: ignore[arg-type]
                         "split it into several journeys (each lead remembers what each journey sent)")
    had: dict[str, Span] = {}
    for c in j.conditions():
        for h in hads(c):
            had.setdefault(h.event, h.span)
    if len(had) > MAX_REMEMBERED:
        yield Diagnostic("C064", E, f"`had` conditions name {len(had):,} event types; at most {MAX_REMEMBERED:,} "
                         "may be named", list(had.values())[MAX_REMEMBERED], "name fewer event types in `had` "
                         "conditions")
