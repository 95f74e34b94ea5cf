"""Hypothesis strategies for journey models that the language can express.

They build `dsl.model` objects directly (not text), so the formatter is tested
against models it did not produce: every generated journey is one a file can
state, with names that are not keywords, strings with quotes, backslashes and
non-ASCII letters, and conditions nested in every way the grammar allows.
"""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import strategies as st

from dsl import model as m
from dsl.patterns import PatternError, compile_pattern

__all__ = [
    "valid_pattern",
    "KEYWORDS",
    "identifiers",
    "event_names",
    "field_names",
    "texts",
    "durations",
    "conditions",
    "fit_conditions",
    "lead_conditions",
    "score_rules",
    "fit_rules",
    "content_items",
    "stages",
    "internal_actions",
    "journeys",
    "comment_texts",
    "send_windows",
    "time_zones",
    "date_anchors",
]

_GRAMMAR = (Path(__file__).resolve().parent.parent / "dsl" / "journey.lark").read_text(encoding="utf-8")

#: Every word of the grammar, plus the unit words: a name must not be one of them.
KEYWORDS = frozenset(re.findall(r'"([a-z][a-z-]*)"', _GRAMMAR)) | {
    f"{unit}{s}" for unit in m.UNIT_SECONDS for s in ("", "s")
} | {"before", "after", "lead", "weekdays", "weekends", *m.WEEKDAYS}

# Line breaks for str.splitlines (the parser splits lines with it): never inside a line.
LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"

_first = st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_rest = st.text("abcdefghijklmnopqrstuvwxyz0123456789_", max_size=8)

#: A word like a stage id or a content kind: `[A-Za-z_][A-Za-z0-9_]*`, not a keyword.
identifiers = st.builds(lambda a, b: a + b, _first, _rest).filter(lambda w: w not in KEYWORDS)

_segment = st.text("abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=6)

#: `email.opened`, `app.feature-used`: a first word, then dotted segments (may contain `-`).
event_names = st.builds(
    lambda head, tail: ".".join([head, *tail]),
    identifiers,
    st.lists(st.text("abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=6), max_size=2),
)

#: `company.size`, `path`: like events but without `-`.
field_names = st.builds(lambda head, tail: ".".join([head, *tail]), identifiers, st.lists(_segment, max_size=2))
#: `lead.lifecycle`: a field of the lead's attributes (conditions on the lead).
lead_field_names = field_names.map(lambda name: "lead." + name)
#: One event type, or several after `or` (`on a or b`): the extra ones, as the model keeps them.
more_events = st.lists(event_names, max_size=2).map(tuple)

_awkward = st.sampled_from([
    "Problema riconosciuto", "Alla ricerca di soluzioni", "Généré à Zürich", "漏斗", "Ü", "",
    'say "hi"', "back\\slash", "ends with \\", '\\"', "\\\\", "(?i)director|vp", "# not a comment", "\t",
])

#: Any one-line text: the quoted literals must carry quotes, backslashes and every script.
texts = st.one_of(
    _awkward,
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters=LINE_BREAKS), max_size=12),
    st.lists(st.sampled_from(['"', "\\", "a", " ", "#", "à"]), max_size=8).map("".join),
)

#: Durations of the fixed-length units (months and years are refused: C081).
durations = st.builds(m.Duration, st.integers(1, 400), st.sampled_from(["minute", "hour", "day", "week"]))

_numbers = st.one_of(st.integers(-10**6, 10**6), st.integers(-10**6, 10**6).map(lambda n: n / 100))
_scalars = st.one_of(texts, _numbers, st.booleans())


def _compares(fields=field_names) -> st.SearchStrategy[m.Compare]:
    return st.one_of(
        st.builds(m.Compare, fields, st.sampled_from(["==", "!=", ">", ">=", "<", "<="]), _scalars),
        st.builds(m.Compare, fields, st.sampled_from(["starts with", "ends with", "contains", "matches"]),
                  texts),
        st.builds(m.Compare, fields, st.sampled_from(["in", "not in"]),
                  st.lists(_scalars, min_size=1, max_size=4).map(tuple)),
        st.builds(m.Compare, fields, st.just("is set"), st.none()),
    )


#: What reads the lead: a comparison of one of its attributes, or `had EVENT`.
_on_lead = st.one_of(_compares(lead_field_names), st.builds(m.Had, event_names))


def _combine(children: st.SearchStrategy) -> st.SearchStrategy:
    parts = st.lists(children, min_size=2, max_size=3).map(tuple)
    return st.one_of(st.builds(m.AllOf, parts), st.builds(m.AnyOf, parts), st.builds(m.Not, children))


#: Comparisons combined with and/or/not, nested (the formatter must parenthesise right). Conditions of
#: fit lines read attributes only (`fit_conditions`); the others may read the lead too (`lead.x`, `had e`).
fit_conditions = st.recursive(_compares(), _combine, max_leaves=5)
conditions = st.recursive(st.one_of(_compares(), _on_lead), _combine, max_leaves=5)
#: A send's `if`/`unless`: it reads the lead only.
lead_conditions = st.recursive(_on_lead, _combine, max_leaves=4)

_points = st.integers(-100, 100)


@st.composite
def score_rules(draw) -> m.ScoreRule:
    capped = draw(st.booleans())
    return m.ScoreRule(
        event=draw(event_names),
        points=draw(_points),
        condition=draw(st.none() | conditions),
        cap_count=draw(st.integers(0, 50)) if capped else None,
        cap_window=draw(durations) if capped else None,
    )


fit_rules = st.builds(m.FitRule, fit_conditions, _points)
content_items = st.builds(m.ContentItem, identifiers, texts, st.none() | texts)
_event_rule = {"event": event_names, "condition": st.none() | conditions, "more": more_events}


#: A send, unconditional or with `if`/`unless` (`unless` means nothing without a condition).
_sends = st.builds(
    lambda send, test: send if test is None else m.Send(send.kind, send.content, send.after, condition=test[0],
                                                        unless=test[1], every_visit=send.every_visit),
    st.builds(m.Send, identifiers, texts, st.none() | durations, every_visit=st.booleans()),
    st.none() | st.tuples(lead_conditions, st.booleans()),
)


def _triggers(targets: list[str]) -> st.SearchStrategy[m.Trigger]:
    target = st.sampled_from(targets)
    return st.one_of(
        st.builds(m.EventTrigger, event=event_names, target=target, condition=st.none() | conditions,
                  more=more_events),
        st.builds(m.ScoreTrigger, op=st.sampled_from([">=", ">", "<=", "<"]), value=_numbers, target=target,
                  lead=st.booleans()),
        st.builds(m.TimeTrigger, after=durations, mode=st.sampled_from(["idle", "in stage", "in journey"]),
                  target=target),
        st.builds(m.TimeTrigger, after=durations, mode=st.just("since"), target=target, content=texts),
    )


_zone_names = st.sampled_from(["UTC", "Europe/Rome", "America/New_York", "Asia/Tokyo", "Australia/Sydney",
                               "Asia/Kolkata", "America/Sao_Paulo"])

#: `time zone "..."` or `time zone from FIELD [default "..."]`.
time_zones = st.one_of(st.builds(m.TimeZone, _zone_names, st.none()),
                       st.builds(m.TimeZone, st.none() | _zone_names, field_names))

_minutes = st.integers(0, 24 * 60)
_days = st.sets(st.integers(0, 6), min_size=1).map(lambda days: tuple(sorted(days)))


@st.composite
def send_windows(draw) -> m.SendWindow:
    """`send only DAYS [HH:MM-HH:MM]` or `quiet hours [DAYS] [HH:MM-HH:MM]`, hours possibly crossing midnight."""
    kind = draw(st.sampled_from(["only", "quiet"]))
    if draw(st.booleans()):
        return m.SendWindow(kind, draw(_days))
    start = draw(_minutes)
    end = draw(_minutes.filter(lambda e: e != start))
    return m.SendWindow(kind, draw(_days), start, end)


#: `N UNIT before|after FIELD of EVENT` (or `of lead`), skipping or sending a past moment.
date_anchors = st.builds(m.DateAnchor, offset=st.builds(m.Duration, st.integers(0, 400),
                                                        st.sampled_from(["minute", "hour", "day", "week"])),
                         direction=st.sampled_from(["before", "after"]), field=field_names,
                         event=st.none() | event_names, past=st.sampled_from(["skip", "send"]))

_sends = st.one_of(st.builds(m.Send, identifiers, texts, st.none() | durations, every_visit=st.booleans()),
                   st.builds(m.Send, identifiers, texts, st.none(), at=date_anchors, every_visit=st.booleans()))
_action_values = st.one_of(texts, _numbers, st.booleans())


@st.composite
def internal_actions(draw) -> m.InternalAction:
    """notify (owner or a user), task, set_field (any value), tag, add_to_list, webhook; on entry or delayed."""
    kind = draw(st.sampled_from(m.ACTION_KINDS))
    if kind == "set_field":
        value, to = draw(_action_values), draw(field_names)
    else:
        value, to = draw(texts), draw(st.none() | texts) if kind == "notify" else None
    return m.InternalAction(kind, value, to, draw(st.none() | durations))


@st.composite
def stages(draw, sid: str, targets: list[str], initial: bool) -> m.Stage:
    """One stage whose triggers and holding loop lead to `targets` (stage ids or EXIT)."""
    hold = draw(st.none() | st.builds(
        m.HoldLoop, stall_after=durations, every=durations, kind=identifiers, content=texts,
        times=st.integers(0, 12), then=st.sampled_from(targets),
    ))
    return m.Stage(
        id=sid,
        label=draw(st.none() | texts),
        initial=initial,
        final=draw(st.booleans()),
        handoff=draw(st.booleans()),
        sends=tuple(draw(st.lists(_sends, max_size=3))),
        triggers=tuple(draw(st.lists(_triggers(targets), max_size=3))),
        hold=hold,
        actions=tuple(draw(st.lists(internal_actions(), max_size=3))),
    )


@st.composite
def journeys(draw, max_stages: int = 3) -> m.Journey:
    """A journey file's model: every part of the language, each one optional."""
    ids = draw(st.lists(identifiers, min_size=0, max_size=max_stages, unique=True))
    targets = ids + [m.EXIT]
    return m.Journey(
        name=draw(st.none() | texts),
        stages=tuple(draw(stages(sid, targets, i == 0)) for i, sid in enumerate(ids)),
        scoring=tuple(draw(st.lists(score_rules(), max_size=3))),
        decay=draw(st.none() | st.builds(m.Decay, durations)),
        fit=tuple(draw(st.lists(fit_rules, max_size=3))),
        exits=tuple(draw(st.lists(st.builds(m.ExitRule, **_event_rule), max_size=2))),
        enrollments=tuple(draw(st.lists(st.builds(m.EnrollRule, **_event_rule), max_size=2))),
        caps=tuple(draw(st.lists(st.builds(m.FrequencyCap, st.integers(0, 20), durations), max_size=2))),
        zones=tuple(draw(st.lists(time_zones, max_size=1))),
        windows=tuple(draw(st.lists(send_windows(), max_size=3))),
        contents=tuple(draw(st.lists(content_items, max_size=3))),
        includes=tuple(draw(st.lists(st.builds(m.Include, texts), max_size=2))),
        lead_scoring=tuple(draw(st.lists(score_rules(), max_size=2))),
        lead_decay=draw(st.none() | st.builds(m.Decay, durations)),
        lead_caps=tuple(draw(st.lists(st.builds(m.FrequencyCap, st.integers(0, 20), durations), max_size=2))),
        priority=draw(st.none() | st.builds(m.Priority, st.integers(0, 10**6))),
        goals=tuple(draw(st.lists(st.builds(m.EventTrigger, event=event_names, target=st.sampled_from(targets),
                                            condition=st.none() | conditions, more=more_events), max_size=2))),
        reentry=draw(st.none() | st.builds(m.Reentry, st.sampled_from(["once", "always"]))
                     | st.builds(m.Reentry, st.just("per"), durations)),
        catalogue=draw(st.none() | st.builds(m.Catalogue, texts)),
    )


#: What follows `#` in a comment: anything on one line (the loader keeps it right-stripped).
comment_texts = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters=LINE_BREAKS),
                        max_size=15).map(lambda body: ("#" + body).rstrip())


def valid_pattern(text) -> bool:
    """Whether a drawn `matches` value compiles (the checker refuses the others, C038)."""
    try:
        compile_pattern(str(text))
    except PatternError:
        return False
    return True
