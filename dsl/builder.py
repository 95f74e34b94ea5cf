"""Syntax tree to journey model: one Lark transformer, positions kept as spans."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

from lark import Lark, Token, Tree

from . import model as m
from .comments import comment_start
from .diagnostics import Diagnostic, Severity
from .fastparse import fast_build

__all__ = ["build_journey", "build_text", "decode_string", "encode_string"]


def decode_string(token: str) -> str:
    """A quoted literal to its text: `\\"` and `\\\\` are escapes; other backslashes stay (regexes)."""
    body = token[1:-1]
    if "\\" not in body:
        return body  # the common case: nothing to unescape
    out = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body) and body[i + 1] in '"\\':
            out.append(body[i + 1])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def encode_string(text: str) -> str:
    """The inverse of decode_string: the shortest quoted literal that reads back as `text`."""
    if '"' not in text and "\\" not in text:
        return f'"{text}"'  # the common case: nothing to escape
    out = ['"']
    for i, ch in enumerate(text):
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            nxt = text[i + 1] if i + 1 < len(text) else None
            out.append("\\\\" if nxt in (None, "\\", '"') else "\\")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _unit(word: str) -> str:
    return word[:-1] if word.endswith("s") else word


def _days(text: str) -> tuple[int, ...]:
    """`weekdays`, `weekends`, or `mon,wed-fri` to sorted weekday numbers (a range may wrap: `fri-mon`)."""
    if text == "weekdays":
        return (0, 1, 2, 3, 4)
    if text == "weekends":
        return (5, 6)
    out: set[int] = set()
    for part in text.split(","):
        first, _, last = part.partition("-")
        a = m.WEEKDAYS.index(first)
        b = m.WEEKDAYS.index(last) if last else a
        out.update((a + i) % 7 for i in range((b - a) % 7 + 1))
    return tuple(sorted(out))


#: A Span from its five fields, without the named tuple's `__new__` (a Python call): one per node built.
_new_span = tuple.__new__


class _Builder:
    """One method per grammar rule, named after it, taking (meta, children) with the children already built."""

    def __init__(self, path: str, text: str = ""):
        self.path = path
        self.lines = text.splitlines()
        self.diagnostics: list[Diagnostic] = []
        self._methods: dict[str, Callable] = {}

    def build(self, tree: Tree):
        """The tree bottom-up, each node by its rule's method.

        A plain recursive walk: Lark's `Transformer.transform` costs a generator and a
        `getattr` per node (~40 % of building a 1,000-stage journey's model).
        The parser has bounded the nesting (C062), so the recursion is shallow.
        """
        children = [self.build(c) if isinstance(c, Tree) else c for c in tree.children]
        meta = tree.meta
        return self.method(tree.data)(None if meta.empty else (meta.line, meta.column, meta.end_line,
                                                               meta.end_column), children)

    def method(self, rule: str) -> Callable:
        """The method of a rule (or alias): called with the node's position and its built children."""
        found = self._methods.get(rule)
        if found is None:
            found = self._methods[rule] = getattr(self, rule, None) or functools.partial(self._unknown, rule)
        return found

    @staticmethod
    def _unknown(data, meta, children):
        return Tree(data, children)

    # -- helpers -------------------------------------------------------------
    def _span(self, meta: tuple[int, int, int, int] | None) -> m.Span:
        """A node's span from its position (line, column, end line, end column), None: it has none."""
        if meta is None:
            return m.Span(self.path, 0, 0, 0, 0)
        return _new_span(m.Span, (self.path, *meta))

    def _tok_span(self, tok: Token) -> m.Span:
        # tokens from our parser always carry their positions
        return _new_span(m.Span, (self.path, tok.line, tok.column, tok.end_line, tok.end_column))

    @staticmethod
    def _tokens(children, kind=None):
        return [c for c in children if isinstance(c, Token) and (kind is None or c.type == kind)]

    # -- words -----------------------------------------------------------------
    def duration(self, meta, children):
        amount, unit = children
        duration = m.Duration(int(amount), _unit(str(unit)), self._span(meta))
        if duration.unit in ("month", "year"):
            weeks = max(1, round(duration.amount * (52 if duration.unit == "year" else 4.35)))
            self.diagnostics.append(Diagnostic(
                "C081", Severity.ERROR,
                f"`{duration}` is not a fixed length: a {duration.unit} is "
                f"{'28 to 31 days' if duration.unit == 'month' else '365 or 366 days'}",
                self._span(meta),
                f"write weeks or days, e.g. `{weeks} weeks` (see \"Months\" in docs/decisions.md)"))
        return duration

    def points(self, meta, children):
        token = children[0]
        if str(token)[:1] not in "+-":
            self.diagnostics.append(
                Diagnostic(
                    "C097", Severity.WARNING,
                    f"points have a sign: `{token}` is read as `+{token}`; did you mean to take points away?",
                    self._tok_span(token), f"write `+{token}` (or `-{token}`); `coltiva fmt FILE` adds the `+`",
                )
            )
        return int(token)

    def string(self, meta, children):
        return decode_string(children[0])

    def number(self, meta, children):
        text = str(children[0])
        return float(text) if "." in text else int(text)

    def true(self, meta, _):
        return True

    def false(self, meta, _):
        return False

    def list(self, meta, children):
        return tuple(children)

    # -- conditions ----------------------------------------------------------
    def compare(self, meta, children):
        field, op, value = children
        op = "==" if str(op) == "=" else str(op)
        return m.Compare(str(field), op, value, self._span(meta))

    def _string_compare(self, op, meta, children):
        field, text = children
        return m.Compare(str(field), op, decode_string(text), self._span(meta))

    def starts_with(self, meta, children):
        return self._string_compare("starts with", meta, children)

    def ends_with(self, meta, children):
        return self._string_compare("ends with", meta, children)

    def contains(self, meta, children):
        return self._string_compare("contains", meta, children)

    def matches(self, meta, children):
        return self._string_compare("matches", meta, children)

    def in_(self, meta, children):
        return m.Compare(str(children[0]), "in", children[1], self._span(meta))

    def not_in(self, meta, children):
        return m.Compare(str(children[0]), "not in", children[1], self._span(meta))

    def is_set(self, meta, children):
        return m.Compare(str(children[0]), "is set", None, self._span(meta))

    def all_of(self, meta, children):
        return m.AllOf(tuple(children), self._span(meta))

    def any_of(self, meta, children):
        return m.AnyOf(tuple(children), self._span(meta))

    def not_(self, meta, children):
        return m.Not(children[0], self._span(meta))

    def had(self, meta, children):
        return m.Had(str(children[0]), self._span(meta))

    def where(self, meta, children):
        return ("where", children[0])

    def events(self, meta, children):
        return ("events", tuple(str(c) for c in children))

    # -- blocks ----------------------------------------------------------------
    def header(self, meta, children):
        return ("header", decode_string(children[0]), self._span(meta))

    def include(self, meta, children):
        return m.Include(decode_string(children[0]), self._span(meta))

    def cap(self, meta, children):
        return ("cap", int(children[0]), children[1])

    def score_rule(self, meta, children):
        event = str(children[0])
        condition = None
        cap_count = cap_window = None
        points = 0
        for c in children[1:]:
            if isinstance(c, tuple) and c[0] == "where":
                condition = c[1]
            elif isinstance(c, tuple) and c[0] == "cap":
                cap_count, cap_window = c[1], c[2]
            elif isinstance(c, int):
                points = c
        return m.ScoreRule(event, points, condition, cap_count, cap_window, self._span(meta))

    def decay(self, meta, children):
        return m.Decay(children[0], self._span(meta))

    def scoring(self, meta, children):
        return ("scoring", children, self._span(meta))

    def fit_rule(self, meta, children):
        return m.FitRule(children[0], children[1], self._span(meta))

    def fit(self, meta, children):
        return ("fit", children, self._span(meta))

    def content_item(self, meta, children):
        kind, cid, *title = children
        return m.ContentItem(
            str(kind), decode_string(cid), decode_string(title[0]) if title else None, self._span(meta)
        )

    def content(self, meta, children):
        return ("content", children, self._span(meta))

    def _event_rule(self, cls, meta, children):
        first, *more = children[0][1]
        condition = children[1][1] if len(children) > 1 else None
        return cls(first, condition, self._span(meta), more=tuple(more))

    def exit_rule(self, meta, children):
        return self._event_rule(m.ExitRule, meta, children)

    def enroll_rule(self, meta, children):
        return self._event_rule(m.EnrollRule, meta, children)

    def frequency_cap(self, meta, children):
        return m.FrequencyCap(int(children[0]), children[1], self._span(meta))

    # -- time ------------------------------------------------------------------
    def zone_fixed(self, meta, children):
        return m.TimeZone(decode_string(children[0]), None, self._span(meta))

    def zone_from(self, meta, children):
        default = decode_string(children[1]) if len(children) > 1 else None
        return m.TimeZone(default, str(children[0]), self._span(meta))

    def every_day(self, meta, _):
        return tuple(range(7))

    def days(self, meta, children):
        return _days(str(children[0]))

    def _window(self, kind, meta, children):
        days = next((c for c in children if isinstance(c, tuple)), tuple(range(7)))
        hours = next((c for c in children if isinstance(c, Token) and c.type == "HOURS"), None)
        start = end = None
        if hours is not None:
            start, end = self._hours(hours)
        return m.SendWindow(kind, days, start, end, self._span(meta))

    def _hours(self, token: Token) -> tuple[int, int]:
        """`HH:MM-HH:MM` to minutes of the day; a time that is no time of day is C080."""
        out = []
        for part in str(token).split("-"):
            hh, mm = (int(x) for x in part.split(":"))
            if hh > 24 or mm > 59 or (hh == 24 and mm):
                self.diagnostics.append(Diagnostic(
                    "C080", Severity.ERROR, f"`{part}` is not a time of day", self._tok_span(token),
                    "write hours as HH:MM from 00:00 to 24:00, e.g. `09:00-17:30`"))
                hh, mm = min(hh, 24), min(mm, 59)
            out.append(min(hh * 60 + mm, 1440))
        return out[0], out[1]

    def send_window(self, meta, children):
        return self._window("only", meta, children)

    def quiet_hours(self, meta, children):
        return self._window("quiet", meta, children)

    def past_skip(self, meta, _):
        return "skip"

    def past_send(self, meta, _):
        return "send"

    def at_date(self, meta, children):
        offset, direction, field, source, *past = children
        event = None if source.type == "LEAD" else str(source)
        return m.DateAnchor(offset, str(direction), str(field), event, past[0] if past else "skip",
                            self._span(meta))

    def lead_cap(self, meta, children):
        return ("lead cap", m.FrequencyCap(int(children[0]), children[1], self._span(meta)))

    def lead_scoring(self, meta, children):
        return ("lead scoring", children, self._span(meta))

    def priority(self, meta, children):
        return m.Priority(int(children[0]), self._span(meta))

    # -- stages ----------------------------------------------------------------
    def exit_target(self, meta, _):
        return m.EXIT

    def _target(self, value) -> str:
        return str(value)

    def _target_span(self, value, meta) -> m.Span:
        if isinstance(value, Token):
            return self._tok_span(value)
        # `exit` has no token of its own: find the word on the statement's line, before any comment
        span = self._span(meta)
        line = self.lines[span.line - 1] if 0 < span.line <= len(self.lines) else ""
        at = comment_start(line)
        column = line[:at].rfind("exit") + 1 if at is not None else line.rfind("exit") + 1
        return m.Span(self.path, span.line, max(column, 1), span.line, max(column, 1) + 4)

    def initial(self, meta, _):
        return ("initial", self._span(meta))

    def final(self, meta, _):
        return ("final", self._span(meta))

    def handoff(self, meta, _):
        return ("handoff", self._span(meta))

    def on_entry(self, meta, _):
        return None

    def after(self, meta, children):
        return children[0]

    def send_if(self, meta, children):
        return ("if", children[0])

    def send_unless(self, meta, children):
        return ("unless", children[0])

    def every_visit(self, meta, _):
        return "every visit"

    def send(self, meta, children):
        kind, cid, when, *rest = children
        test = next((r for r in rest if isinstance(r, tuple)), None)
        condition, unless = (test[1], test[0] == "unless") if test else (None, False)
        at = None
        if isinstance(when, m.DateAnchor):
            when, at = None, when
        return m.Send(str(kind), decode_string(cid), when, self._span(meta), condition, unless,
                      at=at, every_visit="every visit" in rest)

    # -- internal actions --------------------------------------------------------
    def _act(self, kind, meta, children, to=None):
        """`children`: the value (a quoted text or a condition value), then an optional `after` delay."""
        after = children[-1] if isinstance(children[-1], m.Duration) else None
        value = children[0]
        value = decode_string(value) if isinstance(value, Token) else value
        return m.InternalAction(kind, value, to, after, self._span(meta))

    def notify(self, meta, children):
        """`notify owner "MESSAGE"` (to None) or `notify user "WHO" "MESSAGE"`."""
        strings = self._tokens(children, "STRING")
        to = decode_string(strings[0]) if len(strings) == 2 else None
        return self._act("notify", meta, children[len(strings) - 1:], to)

    def task(self, meta, children):
        return self._act("task", meta, children)

    def set_field(self, meta, children):
        return self._act("set_field", meta, children[1:], str(children[0]))

    def tag(self, meta, children):
        return self._act("tag", meta, children)

    def add_to_list(self, meta, children):
        return self._act("add_to_list", meta, children)

    def call_webhook(self, meta, children):
        return self._act("webhook", meta, children)

    # -- journey options ---------------------------------------------------------
    def reenter_once(self, meta, _):
        return m.Reentry("once", None, self._span(meta))

    def reenter_always(self, meta, _):
        return m.Reentry("always", None, self._span(meta))

    def reenter_per(self, meta, children):
        return m.Reentry("per", children[0], self._span(meta))

    def catalogue(self, meta, children):
        return m.Catalogue(decode_string(children[0]), self._span(meta))

    def on_event(self, meta, children):
        first, *more = children[0][1]
        condition = children[1][1] if len(children) == 3 else None
        return m.EventTrigger(first, self._target(children[-1]), condition, self._span(meta),
                              self._target_span(children[-1], meta), tuple(more))

    def goal(self, meta, children):
        return ("goal", self.on_event(meta, children))

    def on_lead_score(self, meta, children):
        return dataclasses.replace(self.on_score(meta, children), lead=True)

    def on_score(self, meta, children):
        op, value, target = children
        op = "==" if str(op) == "=" else str(op)
        number = float(value) if "." in str(value) else int(value)
        if op in ("==", "!="):
            self.diagnostics.append(
                Diagnostic(
                    "C010", Severity.ERROR,
                    f"a score threshold compares with >=, >, <= or <, not {op}",
                    self._span(meta),
                    "scores change by points and decay; write e.g. `when score >= 20 -> next`",
                )
            )
        return m.ScoreTrigger(op, number, self._target(target), self._span(meta), self._target_span(target, meta))

    def on_idle(self, meta, children):
        return m.TimeTrigger(children[0], "idle", self._target(children[1]), self._span(meta),
                             self._target_span(children[1], meta))

    def on_in_stage(self, meta, children):
        return m.TimeTrigger(children[0], "in stage", self._target(children[1]), self._span(meta),
                             self._target_span(children[1], meta))

    def on_in_journey(self, meta, children):
        return m.TimeTrigger(children[0], "in journey", self._target(children[1]), self._span(meta),
                             self._target_span(children[1], meta))

    def on_since_send(self, meta, children):
        after, content, target = children
        return m.TimeTrigger(after, "since", self._target(target), self._span(meta),
                             self._target_span(target, meta), decode_string(content))

    def hold(self, meta, children):
        stall, every, kind, cid, times, then = children
        return m.HoldLoop(
            stall, every, str(kind), decode_string(cid), int(times), self._target(then), self._span(meta),
            self._target_span(then, meta),
        )

    def stage(self, meta, children):
        sid = children[0]
        label = None
        items = children[1:]
        if items and isinstance(items[0], Token) and items[0].type == "STRING":
            label = decode_string(items[0])
            items = items[1:]
        flags = {"initial": False, "final": False, "handoff": False}
        sends, triggers, holds, flag_spans, actions = [], [], [], [], []
        for item in items:
            if isinstance(item, tuple):
                flags[item[0]] = True
                flag_spans.append(item)
            elif isinstance(item, m.Send):
                sends.append(item)
            elif isinstance(item, m.InternalAction):
                actions.append(item)
            elif isinstance(item, m.HoldLoop):
                holds.append(item)
            else:
                triggers.append(item)
        if str(sid) == m.EXIT:
            self.diagnostics.append(
                Diagnostic(
                    "C024", Severity.ERROR, "`exit` is a reserved word: `-> exit` means leaving the journey",
                    self._tok_span(sid), 'name the stage differently, e.g. `stage left "Left"`',
                )
            )
        for extra in holds[1:]:
            self.diagnostics.append(
                Diagnostic(
                    "C011", Severity.ERROR, f"stage `{sid}` has more than one holding loop",
                    extra.span, "keep one `hold` line per stage",
                )
            )
        return m.Stage(
            id=str(sid),
            label=label,
            initial=flags["initial"],
            final=flags["final"],
            handoff=flags["handoff"],
            sends=tuple(sends),
            triggers=tuple(triggers),
            hold=holds[0] if holds else None,
            span=self._span(meta),
            id_span=self._tok_span(sid),
            flag_spans=tuple(flag_spans),
            actions=tuple(actions),
        )

    # -- moves ----------------------------------------------------------------
    def stage_move(self, meta, children):
        return m.Move("stage", str(children[0]), self._target(children[1]), self._span(meta))

    def content_move(self, meta, children):
        return m.Move("content", decode_string(children[0]), decode_string(children[1]), self._span(meta))

    def moves(self, meta, children):
        return ("moves", children, self._span(meta))

    def start(self, meta, children):
        return children


def build_journey(tree: Tree, path: str, text: str = "") -> tuple[m.Journey, list[Diagnostic]]:
    """Build the model of one file (includes not yet resolved)."""
    builder = _Builder(path, text)
    return _assemble(builder.build(tree), builder.diagnostics, path)


def build_text(parser: Lark, source: str, path: str, text: str = "") -> tuple[m.Journey, list[Diagnostic]] | None:
    """The model of one file, built while the fast loop parses `source` (`dsl.fastparse.fast_build`): the
    same as `build_journey` on its tree, without making the tree. None where the loop gives up."""
    builder = _Builder(path, text)
    items = fast_build(parser, source, builder.method)
    if items is None:
        return None
    return _assemble(items, builder.diagnostics, path)


def _assemble(items: list, diagnostics: list[Diagnostic], path: str) -> tuple[m.Journey, list[Diagnostic]]:
    """The journey from its top-level items (what `start` gave), in the order written."""
    name = None
    header_span = m.Span(path, 1, 1, 1, 1)
    stages, scoring, fit, exits, enrollments, caps, contents, includes, moves, goals = ([] for _ in range(10))
    decay = lead_decay = priority = None
    lead_scoring, lead_caps = [], []
    zones, windows = [], []
    reentry: m.Reentry | None = None
    catalogue: m.Catalogue | None = None
    block_spans = []
    for item in items:
        if isinstance(item, tuple) and item[0] in ("scoring", "fit", "content", "moves", "lead scoring"):
            block_spans.append((item[0], item[2]))
        if isinstance(item, tuple) and item[0] == "header":
            if name is not None:
                diagnostics.append(
                    Diagnostic("C012", Severity.ERROR, "the journey is named twice", item[2],
                               "keep one `journey \"...\"` line at the top of the file")
                )
                continue
            name, header_span = item[1], item[2]
        elif isinstance(item, tuple) and item[0] == "scoring":
            for rule in item[1]:
                if isinstance(rule, m.Decay):
                    if decay is not None:
                        diagnostics.append(
                            Diagnostic("C013", Severity.ERROR, "score decay is declared twice", rule.span,
                                       f"keep one `decay half-life` line (first at line {decay.span.line})")
                        )
                        continue
                    decay = rule
                else:
                    scoring.append(rule)
        elif isinstance(item, tuple) and item[0] == "lead scoring":
            for rule in item[1]:
                if not isinstance(rule, m.Decay):
                    lead_scoring.append(rule)
                elif lead_decay is not None:
                    diagnostics.append(_twice("lead score decay", rule.span, lead_decay.span,
                                              "keep one `decay half-life` line in `lead scoring`"))
                else:
                    lead_decay = rule
        elif isinstance(item, tuple) and item[0] == "lead cap":
            lead_caps.append(item[1])
        elif isinstance(item, m.Priority):
            if priority is not None:
                diagnostics.append(_twice("the priority", item.span, priority.span, "keep one `priority` line"))
                continue
            priority = item
        elif isinstance(item, tuple) and item[0] == "fit":
            fit.extend(item[1])
        elif isinstance(item, tuple) and item[0] == "content":
            contents.extend(item[1])
        elif isinstance(item, tuple) and item[0] == "moves":
            moves.extend(item[1])
        elif isinstance(item, tuple) and item[0] == "goal":
            goals.append(item[1])
        elif isinstance(item, m.Stage):
            stages.append(item)
        elif isinstance(item, m.ExitRule):
            exits.append(item)
        elif isinstance(item, m.EnrollRule):
            enrollments.append(item)
        elif isinstance(item, m.FrequencyCap):
            caps.append(item)
        elif isinstance(item, m.TimeZone):
            zones.append(item)
        elif isinstance(item, m.SendWindow):
            windows.append(item)
        elif isinstance(item, m.Include):
            includes.append(item)
        elif isinstance(item, (m.Reentry, m.Catalogue)):
            kind = "re-enter" if isinstance(item, m.Reentry) else "catalogue"
            earlier = reentry if isinstance(item, m.Reentry) else catalogue
            if earlier is not None:
                diagnostics.append(
                    Diagnostic("C107", Severity.ERROR, f"`{kind}` is declared twice", item.span,
                               f"keep one `{kind}` line (first at line {earlier.span.line})")
                )
            elif isinstance(item, m.Reentry):
                reentry = item
            else:
                catalogue = item
    journey = m.Journey(
        name=name,
        stages=tuple(stages),
        scoring=tuple(scoring),
        decay=decay,
        fit=tuple(fit),
        exits=tuple(exits),
        enrollments=tuple(enrollments),
        caps=tuple(caps),
        zones=tuple(zones),
        windows=tuple(windows),
        contents=tuple(contents),
        includes=tuple(includes),
        moves=tuple(moves),
        lead_scoring=tuple(lead_scoring),
        lead_decay=lead_decay,
        lead_caps=tuple(lead_caps),
        priority=priority,
        goals=tuple(goals),
        reentry=reentry,
        catalogue=catalogue,
        path=path,
        span=header_span,
        block_spans=tuple(block_spans),
    )
    return journey, diagnostics


def _twice(what: str, span: m.Span, first: m.Span, hint: str) -> Diagnostic:
    """C111: a lead-wide declaration written twice (the second is not kept)."""
    return Diagnostic("C111", Severity.ERROR, f"{what} is declared twice", span, f"{hint} (first at line {first.line})")
