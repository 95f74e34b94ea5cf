"""A reference engine written only from docs/language.md, docs/engine.md and docs/events.md.

It reads no engine code: it exists to be compared, lead by lead, with the real
engine (tests/test_reference_model.py). It favours clarity over speed: time is
simulated by asking, after every change, which timer the docs say is due next.
Every place where the docs leave a choice open is marked `DOCS-QUESTION` and
listed in tests/reference/FINDINGS.md.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from dsl import model as m

__all__ = ["Action", "LeadResult", "Reference", "Together", "Wide", "parse_line", "BadLine", "iso"]

#: Timer kinds at one instant, in the docs' order (engine.md, "Order within one step", 1).
DEFERRED, CONTENT, ACT, HOLD_SEND, HOLD_END, TIMEOUT, CROSSING = range(7)

LEAD_UPDATED = "lead.updated"
_MIN_TIME = int(datetime(1970, 1, 1, tzinfo=timezone.utc).timestamp())
_MAX_TIME = int(datetime(2200, 1, 1, tzinfo=timezone.utc).timestamp())
_MAX_LINE = 1 << 20
_MAX_DEPTH = 32


def iso(t: int) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------- events (docs/events.md)


class BadLine(Exception):
    """A line the docs say is kept aside (quarantine)."""


@dataclass(frozen=True)
class Event:
    id: str
    lead: str
    type: str
    time: int
    data: dict
    attributes: dict


def _no_duplicates(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise BadLine(f"duplicate key {k!r}")
        out[k] = v
    return out


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise BadLine("number out of range")
    return value


def _constant(text: str):
    raise BadLine(f"{text} is not JSON")


def _depth(value, level: int = 1) -> None:
    if isinstance(value, (dict, list)):
        if level > _MAX_DEPTH:
            raise BadLine("nested too deep")
        for v in value.values() if isinstance(value, dict) else value:
            _depth(v, level + 1)


def _ident(value, name: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise BadLine(f"{name} is not a string or a whole number")
    text = str(value)
    if not 1 <= len(text) <= 256 or any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in text):
        raise BadLine(f"bad {name}")
    return text


def _time(value) -> int:
    if not isinstance(value, str):
        raise BadLine("time is not a string")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise BadLine("bad time") from None
    if moment.tzinfo is None:
        raise BadLine("time without a zone")
    t = int(moment.timestamp() // 1)  # whole seconds count
    if not _MIN_TIME <= t < _MAX_TIME:
        raise BadLine("time out of range")
    return t


def parse_line(raw: bytes, known_types: set[str]) -> Event:
    """One JSON Lines event as docs/events.md says, or BadLine."""
    if len(raw) > _MAX_LINE:
        raise BadLine("line too long")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadLine("not UTF-8") from None
    try:
        obj = json.loads(text, object_pairs_hook=_no_duplicates, parse_float=_finite, parse_constant=_constant)
    except (ValueError, RecursionError) as err:
        raise BadLine(f"bad JSON: {err}") from None
    _depth(obj)
    if not isinstance(obj, dict):
        raise BadLine("not an object")
    for name in ("id", "lead", "type", "time"):
        if name not in obj:
            raise BadLine(f"missing {name}")
    kind = obj["type"]
    if not isinstance(kind, str):
        raise BadLine("type is not a string")
    if kind not in known_types and kind != LEAD_UPDATED:
        raise BadLine("unknown event type")
    data = obj.get("data", {})
    attributes = obj.get("attributes", {})
    if not isinstance(data, dict) or not isinstance(attributes, dict):
        raise BadLine("data or attributes is not an object")
    return Event(_ident(obj["id"], "id"), _ident(obj["lead"], "lead"), kind, _time(obj["time"]), data, attributes)


# ---------------------------------------------------------------- the event catalogue (language.md)


def _catalogue(journey: m.Journey) -> dict[str, set[str]] | None:
    """The journey's `catalogue` file, relative to its own file: event type -> its data fields."""
    if journey.catalogue is None:
        return None
    from pathlib import Path

    out: dict[str, set[str]] = {}
    text = (Path(journey.path).parent / journey.catalogue.path).read_text(encoding="utf-8")
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if words:
            out[words[0]] = set(words[1:])
    return out


def _paths(data: dict, prefix: str = ""):
    for key, value in data.items():
        if isinstance(value, dict) and value:
            yield from _paths(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


def _keeps_to(catalogue: dict[str, set[str]], ev: Event) -> None:
    """An event whose type the catalogue lacks, or whose data holds a field its line lacks, is kept aside;
    a field covers what is nested under it (`utm` allows `utm.source`)."""
    if ev.type == LEAD_UPDATED:
        return
    if ev.type not in catalogue:
        raise BadLine("not in the catalogue")
    for path in _paths(ev.data):
        if not any(path == f or path.startswith(f + ".") or f.startswith(path + ".") for f in catalogue[ev.type]):
            raise BadLine(f"field {path} not in the catalogue")


# ---------------------------------------------------------------- conditions (language.md, Conditions)

_MISSING = object()


def _zone_name(value) -> bool:
    try:
        return isinstance(value, str) and ZoneInfo(value) is not None
    except Exception:  # noqa: BLE001 - any refusal means: not a zone
        return False


def _field(data: dict, name: str):
    value = data
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _equal(a, b) -> bool:
    """Values compare by type: "5" is not 5, true is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) and _is_number(b):
        return a == b
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    return False


@dataclass(frozen=True)
class OnLead:
    """What conditions on the lead read (language.md, *Conditions on the lead*): its profile, the types it had."""

    profile: dict
    had: frozenset


_NOBODY = OnLead({}, frozenset())


def holds(cond: m.Condition | None, data: dict, lead: OnLead = _NOBODY) -> bool:
    if cond is None:
        return True
    if isinstance(cond, m.AllOf):
        return all(holds(p, data, lead) for p in cond.parts)
    if isinstance(cond, m.AnyOf):
        return any(holds(p, data, lead) for p in cond.parts)
    if isinstance(cond, m.Not):
        return not holds(cond.part, data, lead)
    if isinstance(cond, m.Had):
        return cond.event in lead.had
    if cond.field.startswith("lead."):
        value = _field(lead.profile, cond.field[len("lead."):])
    else:
        value = _field(data, cond.field)
    op = cond.op
    if op == "is set":
        return value is not _MISSING and value is not None
    if value is _MISSING:
        return op in ("!=", "not in")
    if op in ("==", "="):
        return _equal(value, cond.value)
    if op == "!=":
        return not _equal(value, cond.value)
    if op in ("in", "not in"):
        found = any(_equal(value, v) for v in cond.value)
        return found if op == "in" else not found
    if op in (">", ">=", "<", "<="):
        return _is_number(value) and _is_number(cond.value) and _compare(value, op, cond.value)
    if not isinstance(value, str):
        return False
    if op == "starts with":
        return value.startswith(cond.value)
    if op == "ends with":
        return value.endswith(cond.value)
    if op == "contains":
        return cond.value in value
    if op == "matches":
        return re.search(cond.value, value, re.ASCII) is not None
    raise ValueError(op)


def _compare(a, op: str, b) -> bool:
    return {">": a > b, ">=": a >= b, "<": a < b, "<=": a <= b}[op]


def _merge(profile: dict, update: dict) -> dict:
    """DOCS-QUESTION (Q1): "merged into the lead's profile": taken as a deep merge of objects."""
    out = dict(profile)
    for k, v in update.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


# ---------------------------------------------------------------- leads


def add_points(score, rules: tuple[m.ScoreRule, ...], hl: float | None, ev: Event, who: OnLead, t: int) -> None:
    """language.md, Scoring: every matching rule adds its points unless its cap is full; the value is
    rebased at `t` (`score`: a journey's Lead or the lead-wide Wide, both with value, vtime, cap_hist)."""
    points = 0
    for index, rule in enumerate(rules):
        if rule.event != ev.type or not holds(rule.condition, ev.data, who):
            continue
        if rule.cap_count is not None:
            # DOCS-QUESTION (Q5): the window is taken as (t - D, t].
            hist = [s for s in score.cap_hist.get(index, []) if s > t - rule.cap_window.seconds]
            if len(hist) >= rule.cap_count:
                score.cap_hist[index] = hist
                continue
            score.cap_hist[index] = hist + [t]
        points += rule.points
    if points:
        score.value = (score.value if hl is None else score.value * 2 ** (-(t - score.vtime) / hl)) + points
        score.vtime = t


@dataclass(frozen=True)
class Action:
    """What the outbox says, in the fields the docs name."""

    kind: str
    time: int
    stage: str | None = None  # send, handoff
    src: str | None = None  # stage (from), exit (from)
    dst: str | None = None  # stage (to)
    content_kind: str | None = None
    content: str | None = None
    deferred_from: int | None = None
    edition: int | None = None
    score: float | None = None  # handoff: the score, to 2 decimals
    data: tuple | None = None  # an internal action: its data fields but `stage`, sorted by name


def act_data(act: m.InternalAction) -> tuple:
    """language.md, *Internal actions*: the data of each kind of action (besides `stage`)."""
    if act.kind == "notify":
        fields = {"to": "owner" if act.to is None else act.to, "message": act.value}
    elif act.kind == "set_field":
        fields = {"field": act.to, "value": act.value}
    else:
        fields = {{"task": "title", "tag": "tag", "add_to_list": "list", "webhook": "webhook"}[act.kind]: act.value}
    return tuple(sorted(fields.items()))


@dataclass
class Pending:
    """A send the frequency cap holds."""

    due: int
    kind: str
    content: str
    hold: bool
    edition: int | None
    line: m.Send | None = None  # a conditional send is tested again when the cap releases it


@dataclass
class Lead:
    status: str = "new"  # new, waiting, active, exit, not_enrolled
    stage: str | None = None
    entered: int = 0
    last_activity: int | None = None
    value: float = 0.0
    vtime: int = 0
    fit: float = 0
    clock: int | None = None
    sent: set = field(default_factory=set)
    done_sends: set = field(default_factory=set)  # delayed send lines of this visit already due
    loop_count: int = 0
    loop_last: int | None = None  # when the loop's last send went out
    send_times: list = field(default_factory=list)
    pending: list = field(default_factory=list)
    cap_hist: dict = field(default_factory=dict)
    actions: list = field(default_factory=list)
    done_acts: set = field(default_factory=set)  # delayed internal actions of this stay already taken
    left: str | None = None  # engine.md, Re-entry: "way" (a way out written in a stage) or "rule" (an exit rule)
    enrolled: int | None = None  # when it last entered the journey
    had: set = field(default_factory=set)  # event types applied since enrollment (engine.md, *had*)
    profile: dict = field(default_factory=dict)  # the lead's attributes (a copy of Reference.profiles)
    zone: str | None = None  # the last valid IANA name its zone attribute gave
    dates: dict = field(default_factory=dict)  # (event or None, field) -> (instant, known since)
    sent_at: dict = field(default_factory=dict)  # content -> when it was last sent
    wide: Wide | None = None  # under lead-wide rules: the lead's one record across journeys (shared)


@dataclass
class Wide:
    """engine.md, *One lead across journeys*: the lead score and the time it was true, the caps of lead
    score rules, the sends across journeys with the journey of each, and the lead's one clock."""

    value: float = 0.0
    vtime: int = 0
    cap_hist: dict = field(default_factory=dict)
    sends: list = field(default_factory=list)  # (time, journey name)
    clock: int | None = None


@dataclass(frozen=True)
class LeadResult:
    state: str  # a stage id, exit, waiting or not_enrolled
    entered: int | None
    last_activity: int | None
    value: float
    vtime: int
    fit: float
    actions: tuple[Action, ...]


class Reference:
    """One journey, every lead: feed lines with `run`, then `tick`."""

    def __init__(self, journey: m.Journey, variants: frozenset[str] = frozenset(),
                 known: set[str] | None = None):
        """`known`: the event types of every journey loaded with this one (all of them see every event)."""
        #: names of KNOWN discrepancies (tests/reference/known.py) to follow the engine on
        self.variants = variants
        self.j = journey
        self.stages = {s.id: s for s in journey.stages}
        self.known = known if known is not None else journey.event_types()
        self.leads: dict[str, Lead] = {}
        self.profiles: dict[str, dict] = {}
        self.seen: set[str] = set()
        self.quarantined: list[int] = []  # line numbers, 1-based
        self.hl = journey.decay.half_life.seconds if journey.decay else None
        #: language.md, Re-entry: "once" (the default), "always" or "per" a window
        self.reentry = journey.reentry.mode if journey.reentry else "once"
        self.window = journey.reentry.window.seconds if journey.reentry and journey.reentry.window else None
        self.again = {x.content for s in journey.stages for x in s.sends if x.every_visit}
        self.catalogue = _catalogue(journey)
        #: set by `Together` when the run has lead-wide rules: the journey that declares them (all declare the
        #: same, C113), and whether this journey is stepped with the others (timers fired in one time order)
        self.rules: m.Journey | None = None
        self.joint = False

    # ---- time (language.md "Time: zones, send windows, dates"; engine.md "Time zones and send windows")

    def tz(self, lead: Lead) -> ZoneInfo:
        return ZoneInfo(lead.zone or self.j.time_zone.zone)

    def _local(self, day: date, minute: int, tz: ZoneInfo) -> int:
        """engine.md: a local time read with fold=0 (skipped: after the gap; repeated: the first)."""
        day = day + timedelta(days=minute // 1440)
        minute %= 1440
        return int(datetime.combine(day, time(minute // 60, minute % 60), tzinfo=tz).timestamp())

    def _spans(self, kind: str, tz: ZoneInfo, t: int):
        first = datetime.fromtimestamp(t, tz).date() - timedelta(days=1)
        for n in range(16):
            day = first + timedelta(days=n)
            for w in self.j.windows:
                if w.kind != kind or day.weekday() not in w.days:
                    continue
                if w.start is None:
                    yield self._local(day, 0, tz), self._local(day, 1440, tz)
                else:
                    end = w.end if w.end > w.start else w.end + 1440
                    yield self._local(day, w.start, tz), self._local(day, end, tz)

    def is_open(self, lead: Lead, t: int) -> bool:
        tz = self.tz(lead)
        only = any(w.kind == "only" for w in self.j.windows)
        inside = not only or any(a <= t < b for a, b in self._spans("only", tz, t))
        return inside and not any(a <= t < b for a, b in self._spans("quiet", tz, t))

    def open_at(self, lead: Lead, t: int) -> int:
        """The first open instant at or after t: t itself, a window's start or the end of quiet hours."""
        if not self.j.windows:
            return t
        tz = self.tz(lead)
        points = {t} | {a for a, _ in self._spans("only", tz, t) if a > t} | {b for _, b in self._spans("quiet", tz, t)
                                                                               if b > t}
        return next((x for x in sorted(points) if self.is_open(lead, x)), t)

    def learn(self, lead: Lead, ev: Event, t: int) -> None:
        """The lead's zone from its attribute, and the dates its sends count from."""
        zone = self.j.time_zone
        if zone.field is not None:
            name = _field(ev.attributes, zone.field)
            if _zone_name(name):
                lead.zone = name  # anything else is ignored
        for a in self.j.anchors():
            source = ev.attributes if a.event is None else (ev.data if a.event == ev.type else {})
            value = _field(source or {}, a.field)
            if not isinstance(value, str):
                continue
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                continue
            if not 1970 <= parsed.year <= 2199:
                continue
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=self.tz(lead))
            key, instant = (a.event, a.field), int(parsed.timestamp())
            if key not in lead.dates or lead.dates[key][0] != instant:
                lead.dates[key] = (instant, t)

    def dated_at(self, lead: Lead, send: m.Send) -> int | None:
        """When a send at a date is meant, None if not known yet or skipped as past."""
        a = send.at
        known = lead.dates.get((a.event, a.field))
        if known is None:
            return None
        meant = known[0] + a.seconds
        start = max(known[1], lead.entered)
        if meant < start:
            return None if a.past == "skip" else start
        return meant

    # ---- score

    def lead_score_at(self, lead: Lead, t: int) -> float:
        """language.md: the lead score has the lines of a `scoring` block and its own decay; no fit points."""
        w = lead.wide
        if w is None:
            return 0.0
        hl = self.rules.lead_decay.half_life.seconds if self.rules.lead_decay else None
        return w.value if hl is None else w.value * 2 ** (-(t - w.vtime) / hl)

    def score_at(self, lead: Lead, t: int) -> float:
        if self.hl is None:
            return lead.fit + lead.value
        return lead.fit + lead.value * 2 ** (-(t - lead.vtime) / self.hl)

    def _keeps(self, attributes: dict) -> bool:
        """DOCS-QUESTION (Q3): "Attributes a lead sends before it is enrolled are kept (state `waiting`)".

        Taken: a lead is `waiting` once it sent, before enrollment (in a `lead.updated` or in an
        event that does not enroll it), an attribute that one of the journey's fit lines, or a
        `lead.` condition (engine.md: "when a fit line or a `lead.` condition reads them"), reads.
        """
        fields = [c.field for r in self.j.fit for c in m.compares(r.condition)]
        fields += [c.field[len("lead."):] for cond in self.j.conditions() for c in m.compares(cond)
                   if c.field.startswith("lead.")]
        # engine.md: a date attribute, and a zone attribute that names a zone, sent before enrollment are kept
        fields += [a.field for a in self.j.anchors() if a.event is None]
        zone = self.j.time_zone.field
        return any(_field(attributes, name) is not _MISSING for name in fields) or (
            zone is not None and _zone_name(_field(attributes, zone)))

    def on_lead(self, lead: Lead, profile: dict | None = None) -> OnLead:
        return OnLead(lead.profile if profile is None else profile, frozenset(lead.had))

    def _fit_points(self, profile: dict) -> float:
        return sum(r.points for r in self.j.fit if holds(r.condition, profile))

    # ---- input

    def run(self, lines: list[bytes]) -> None:
        for event in self.parsed(lines):
            self.event(event)

    def parsed(self, lines: list[bytes]):
        """The batch's events in order: malformed lines kept aside, ids seen before dropped."""
        for number, raw in enumerate(lines, 1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            if not raw.strip():
                continue  # DOCS-QUESTION (Q2): blank lines are neither events nor kept aside
            try:
                event = parse_line(raw, self.known)
                if self.catalogue is not None:
                    _keeps_to(self.catalogue, event)
            except BadLine:
                self.quarantined.append(number)
                continue
            if event.id in self.seen:
                continue
            self.seen.add(event.id)
            yield event

    def tick(self, now: int) -> None:
        for lead in self.leads.values():
            if lead.status == "active":
                self.advance(lead, now)

    # ---- one event

    def _exit_rule(self, ev: Event, who: OnLead) -> bool:
        return any(ev.type in r.events and holds(r.condition, ev.data, who) for r in self.j.exits)

    def _finished(self, lead: Lead) -> bool:
        """engine.md, Re-entry: in a final stage, or out by a way out, and no exit rule met since."""
        if self.reentry == "once" or lead.left == "rule":
            return False
        if lead.status == "exit":
            return lead.left == "way"
        return lead.status == "active" and self.stages[lead.stage].final

    def _returns(self, lead: Lead, ev: Event, t: int) -> bool:
        who = self.on_lead(lead, _merge(self.profiles.get(ev.lead, {}), ev.attributes))
        if not self._finished(lead) or ev.type == LEAD_UPDATED or self._exit_rule(ev, who):
            return False
        if self.j.enrollments and not any(ev.type in r.events and holds(r.condition, ev.data, who)
                                          for r in self.j.enrollments):
            return False
        return self.reentry != "per" or lead.enrolled is None or t - lead.enrolled >= self.window

    def reenter(self, lead: Lead, ev: Event, t: int) -> None:
        """engine.md, Re-entry: the initial stage again, entered as on enrollment, at `t`."""
        src = lead.stage if lead.status == "active" else "exit"
        lead.status = "active"
        lead.left = None
        lead.enrolled = t
        lead.clock = t
        lead.sent -= self.again  # `every visit` content: once per visit
        self.profiles[ev.lead] = profile = _merge(self.profiles.get(ev.lead, {}), ev.attributes)
        self._start_visit(lead, ev, t, profile, src)

    def _start_visit(self, lead: Lead, ev: Event, t: int, profile: dict, src: str | None) -> None:
        """engine.md: fit points, score rules, entry of the initial stage, then the event's triggers.

        The enrolling event "is handled in the initial stage as in step 5: its event triggers
        first (first match wins); only if none fired, the initial stage's thresholds"."""
        lead.had.add(ev.type)
        lead.profile = profile
        self.learn(lead, ev, t)
        lead.fit = self._fit_points(profile)
        self.score_rules(lead, ev, t)
        lead.last_activity = t
        self.enter(lead, t, self.j.initial.id, src, test=False)
        if not self.goals(lead, ev, t) and not self.event_triggers(lead, ev, t):
            self.thresholds(lead, t)
        self.advance(lead, t)  # engine.md: what the event made due at once fires in the same step

    def _after_leaving(self, lead: Lead, ev: Event, t: int) -> None:
        """An event for a lead out of the journey: it may come back, or meet an exit rule that bars it."""
        if self._returns(lead, ev, t):
            self.reenter(lead, ev, t)
        elif self.reentry != "once" and lead.left == "way" and self._exit_rule(
                ev, self.on_lead(lead, _merge(self.profiles.get(ev.lead, {}), ev.attributes))):
            lead.left = "rule"

    def event(self, ev: Event, wide: Wide | None = None) -> None:
        """One event; under lead-wide rules (`wide`), at the lead's one clock (engine.md: "A late event is
        applied at that clock in every journey, and a journey that enrolls the lead on a late event
        enrolls it at that clock")."""
        lead = self.leads.setdefault(ev.lead, Lead())
        lead.wide = wide
        at = ev.time if wide is None else wide.clock
        profile = self.profiles.get(ev.lead, {})
        if lead.status == "not_enrolled":
            return
        if lead.status == "exit":
            self._after_leaving(lead, ev, max(at, lead.clock))
            return
        if lead.status in ("new", "waiting"):
            self.profiles[ev.lead] = profile = _merge(profile, ev.attributes)
            self.learn(lead, ev, at)
            if ev.type == LEAD_UPDATED:
                if self._keeps(ev.attributes):
                    lead.status = "waiting"  # attributes sent before enrollment are kept
                return
            who = OnLead(profile, frozenset())
            if any(ev.type in r.events and holds(r.condition, ev.data, who) for r in self.j.exits):
                lead.status = "not_enrolled"
                return
            if self.j.enrollments and not any(
                ev.type in r.events and holds(r.condition, ev.data, who) for r in self.j.enrollments
            ):
                if self._keeps(ev.attributes):
                    lead.status = "waiting"
                return
            self.enroll(lead, ev, profile, at)
            return
        t = max(at, lead.clock)  # a late event is applied at the lead's clock
        self.advance(lead, t)
        if lead.status == "exit":  # a timer took it out: it may still come back (a way out)
            self._after_leaving(lead, ev, t)
            return
        if lead.status != "active":
            return
        if self._returns(lead, ev, t):
            self.reenter(lead, ev, t)
            return
        stage = self.stages[lead.stage]
        lead.clock = t
        lead.had.add(ev.type)  # engine.md: set at the very start of the event's own part of the step
        # language.md: conditions on the lead read its attributes, this event's own included
        self.profiles[ev.lead] = profile = _merge(profile, ev.attributes)
        lead.profile = profile
        if self._exit_rule(ev, self.on_lead(lead)):
            if not stage.final:
                self.leave(lead, t, by_rule=True)
                return
            if self.reentry != "once":
                lead.left = "rule"  # finished, then met an exit rule: it never re-enters
        lead.fit = self._fit_points(profile)
        self.learn(lead, ev, t)
        self.score_rules(lead, ev, t)
        if ev.type != LEAD_UPDATED:
            self.activity(lead, t)
        if not self.goals(lead, ev, t) and not self.event_triggers(lead, ev, t):
            self.thresholds(lead, t)
        self.advance(lead, t)  # engine.md: what the event made due at once fires in the same step

    def enroll(self, lead: Lead, ev: Event, profile: dict, t: int) -> None:
        """engine.md: fit points, score rules, entry of the initial stage, then the event's triggers."""
        lead.status = "active"
        lead.clock = t
        lead.enrolled = t
        lead.vtime = t
        self._start_visit(lead, ev, t, profile, None)

    def goals(self, lead: Lead, ev: Event, t: int) -> bool:
        """engine.md, Goals: for a lead in a non-final stage, the first goal that matches and leads to
        another stage than the lead's moves it (a goal to the lead's own stage is passed over)."""
        if self.stages[lead.stage].final:
            return False
        for goal in self.j.goals:
            if ev.type in goal.events and goal.target != lead.stage and holds(goal.condition, ev.data,
                                                                             self.on_lead(lead)):
                self.move(lead, t, goal.target)
                return True
        return False

    def event_triggers(self, lead: Lead, ev: Event, t: int) -> bool:
        """The first event trigger of the stage that matches moves the lead."""
        for trig in self.stages[lead.stage].triggers:
            if (isinstance(trig, m.EventTrigger) and ev.type in trig.events
                    and holds(trig.condition, ev.data, self.on_lead(lead))):
                self.move(lead, t, trig.target)
                return True
        return False

    def score_rules(self, lead: Lead, ev: Event, t: int) -> None:
        add_points(lead, self.j.scoring, self.hl, ev, self.on_lead(lead), t)

    def activity(self, lead: Lead, t: int) -> None:
        lead.last_activity = t
        lead.loop_count = 0
        lead.pending = [p for p in lead.pending if not p.hold]

    # ---- stages

    def thresholds(self, lead: Lead, t: int, depth: int = 0) -> None:
        stage = self.stages[lead.stage]
        if depth >= len(self.j.stages):
            return  # the cascade bound
        score = self.score_at(lead, t)
        for trig in stage.triggers:
            if isinstance(trig, m.ScoreTrigger) and _compare(
                    self.lead_score_at(lead, t) if trig.lead else score, trig.op, trig.value):
                self.move(lead, t, trig.target, depth + 1)
                return

    def move(self, lead: Lead, t: int, target: str, depth: int = 0) -> None:
        if target == m.EXIT:
            self.leave(lead, t)
        else:
            self.enter(lead, t, target, lead.stage, depth)

    def leave(self, lead: Lead, t: int, by_rule: bool = False) -> None:
        lead.actions.append(Action("exit", t, src=lead.stage))
        lead.status = "exit"
        lead.pending = []
        if self.reentry != "once" and not by_rule:
            lead.left = "way"

    def enter(self, lead: Lead, t: int, target: str, src: str | None, depth: int = 0, test: bool = True) -> None:
        stage = self.stages[target]
        lead.actions.append(Action("stage", t, src=src, dst=target))
        lead.stage = target
        lead.entered = t
        lead.done_sends = set()
        lead.done_acts = set()
        lead.loop_count = 0
        lead.pending = []  # what the previous stage still had scheduled is cancelled
        # engine.md: "Entering a stage emits, in this order, the `stage` action, the `handoff` if the
        # stage says so, and its on-entry sends in the order written"
        if stage.handoff:
            lead.actions.append(Action("handoff", t, stage=target, score=round(self.score_at(lead, t), 2)))
        # language.md, Internal actions: "after the `handoff` if any and before the on-entry sends"
        for act in stage.actions:
            if act.after is None:
                lead.actions.append(Action(act.kind, t, stage=target, data=act_data(act)))
        for send in stage.sends:
            if send.after is None and send.at is None:
                self.send(lead, t, send.kind, send.content, hold=False, edition=None, due=t, line=send)
        if test:
            self.thresholds(lead, t, depth)

    # ---- sends and the frequency cap

    def _cap_free_at(self, lead: Lead, t: int) -> int:
        """The first instant >= t at which one more message keeps every cap (window (s - D, s])."""
        while True:
            later = t
            logs = [(cap, lead.send_times) for cap in self.j.caps]
            if lead.wide is not None:  # language.md: "(a journey's own cap applies as well)"
                logs += [(cap, [s for s, _ in lead.wide.sends]) for cap in self.rules.lead_caps]
            for cap, times in logs:
                w = cap.window.seconds
                inside = sorted(s for s in times if s > t - w)
                if len(inside) >= cap.count:
                    later = max(later, inside[len(inside) - cap.count] + w)
            if later == t:
                return t
            t = later

    def says_no(self, lead: Lead, line: m.Send | None) -> bool:
        """language.md, Conditional sends: `if C` sends only if C holds, `unless C` only if it does not."""
        if line is None or line.condition is None:
            return False
        return holds(line.condition, {}, self.on_lead(lead)) == line.unless

    def send(self, lead: Lead, t: int, kind: str, content: str, hold: bool, edition, due: int,
             line: m.Send | None = None) -> None:
        if not hold and (content in lead.sent or any(p.content == content for p in lead.pending)):
            return  # never twice (DOCS-QUESTION Q6: a content held by the cap counts as on its way)
        if self.says_no(lead, line):
            return  # passed over for this visit (a delayed line is already in done_sends)
        if lead.pending or self._cap_free_at(lead, t) != t or not self.is_open(lead, t):
            lead.pending.append(Pending(due, kind, content, hold, edition, line))
            return
        self._deliver(lead, t, kind, content, edition, None)

    def _deliver(self, lead: Lead, t: int, kind: str, content: str, edition, deferred_from) -> None:
        lead.send_times.append(t)
        if lead.wide is not None:
            lead.wide.sends.append((t, self.j.name))  # counts at once in the cap across journeys
        lead.sent.add(content)
        lead.sent_at[content] = t
        if edition is not None:
            lead.loop_last = t
        lead.actions.append(Action("send", t, stage=lead.stage, content_kind=kind, content=content,
                                   deferred_from=deferred_from, edition=edition))

    # ---- time

    def _loop_start(self, lead: Lead, hold: m.HoldLoop) -> int:
        return max(lead.last_activity or lead.entered, lead.entered) + hold.stall_after.seconds

    def _crossing(self, lead: Lead, trig: m.ScoreTrigger) -> int | None:
        """The first whole second after the clock at which decay alone makes the threshold true."""
        if trig.lead:  # language.md: `when lead score` is "crossed by decay alone" like `when score`
            if lead.wide is None or self.rules.lead_decay is None or lead.wide.value == 0:
                return None
            hl, at = self.rules.lead_decay.half_life.seconds, self.lead_score_at
        elif self.hl is None or lead.value == 0:
            return None
        else:
            hl, at = self.hl, self.score_at
        start = lead.clock
        ok = lambda s: _compare(at(lead, s), trig.op, trig.value)  # noqa: E731
        hi = start + 1
        while not ok(hi):
            if hi - start > hl * 1200:
                return None  # the decaying part has vanished: it never holds
            hi = start + (hi - start) * 2
        lo = start  # ok(lo) is false (thresholds are levels) or lo is the clock itself
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if ok(mid):
                hi = mid
            else:
                lo = mid
        return hi

    def next_due(self, lead: Lead) -> tuple[int, int, int, object] | None:
        """(time, kind, order written, what) of the next timer, or None."""
        stage = self.stages[lead.stage]
        found = []
        if lead.pending:
            first = lead.pending[0]
            found.append((self.open_at(lead, self._cap_free_at(lead, max(first.due, lead.clock))), DEFERRED, 0,
                          first))
        for i, send in enumerate(stage.sends):
            if send.at is not None and i not in lead.done_sends:
                at = self.dated_at(lead, send)
                if at is not None:
                    found.append((at, CONTENT, i, send))
            elif send.after is not None and i not in lead.done_sends:
                found.append((lead.entered + send.after.seconds, CONTENT, i, send))
        for i, act in enumerate(stage.actions):
            if act.after is not None and i not in lead.done_acts:
                found.append((lead.entered + act.after.seconds, ACT, i, act))
        hold = stage.hold
        if hold is not None and not any(p.hold for p in lead.pending):
            # DOCS-QUESTION (Q8): "every INTERVAL" and "one INTERVAL after the last send" are
            # counted from when the previous loop send went out (a send the cap held delays the rest).
            if lead.loop_count == 0:
                at = self._loop_start(lead, hold)
            else:
                at = lead.loop_last + hold.every.seconds
            found.append((at, HOLD_SEND if lead.loop_count < hold.times else HOLD_END, 0, hold))
        for i, trig in enumerate(stage.triggers):
            if isinstance(trig, m.TimeTrigger) and trig.mode == "since":
                if trig.content in lead.sent_at:
                    found.append((lead.sent_at[trig.content] + trig.after.seconds, TIMEOUT, i, trig))
            elif isinstance(trig, m.TimeTrigger):
                base = {"in stage": lead.entered, "in journey": lead.enrolled}.get(
                    trig.mode, max(lead.last_activity, lead.entered))
                found.append((base + trig.after.seconds, TIMEOUT, i, trig))
            elif isinstance(trig, m.ScoreTrigger):
                at = self._crossing(lead, trig)
                if at is not None:
                    found.append((at, CROSSING, i, trig))
        if not found:
            return None
        return min(found, key=lambda f: f[:3])

    def advance(self, lead: Lead, now: int) -> None:
        """Fire everything due at or before `now`, each at its own time (under lead-wide rules, `Together`
        fires the timers of every journey of the lead in one time order instead)."""
        while lead.status == "active" and not self.joint:
            due = self.next_due(lead)
            if due is None or due[0] > now:
                break
            self.fire_due(lead, due)

    def fire_due(self, lead: Lead, due: tuple[int, int, int, object]) -> None:
        t, kind, index, what = due
        t = max(t, lead.clock)
        before, emitted = lead.clock, len(lead.actions)
        lead.clock = t
        self.fire(lead, t, kind, index, what)
        if len(lead.actions) == emitted:
            lead.clock = before  # a send held by the cap emits nothing and moves no clock
        # DOCS-QUESTION (Q7): is a tick a "step" that moves the lead's clock to `now`? Taken: no,
        # the clock is the time of the lead's last event or of the last timer that fired for it, so
        # an event older than a tick but newer than that is applied at its own time.

    def fire(self, lead: Lead, t: int, kind: int, index: int, what) -> None:
        stage = self.stages[lead.stage]
        if kind == DEFERRED:
            lead.pending.pop(0)
            if self.says_no(lead, what.line):  # tested again when the cap releases it
                return
            self._deliver(lead, t, what.kind, what.content, what.edition, what.due)
        elif kind == CONTENT:
            lead.done_sends.add(index)
            self.send(lead, t, what.kind, what.content, hold=False, edition=None, due=t, line=what)
            if what.at is not None and lead.pending and lead.pending[-1].content == what.content:
                lead.pending[-1].due = self.dated_at(lead, what) or t
        elif kind == ACT:
            lead.done_acts.add(index)
            lead.actions.append(Action(what.kind, t, stage=lead.stage, data=act_data(what)))
        elif kind == HOLD_SEND:
            lead.loop_count += 1
            self.send(lead, t, what.kind, what.content, hold=True, edition=lead.loop_count, due=t)
        elif kind == HOLD_END:
            self.move(lead, t, stage.hold.then)
            return
        elif kind in (TIMEOUT, CROSSING):
            self.move(lead, t, what.target)
            return
        self.thresholds(lead, t)  # language.md: thresholds are "tested after every ... timer"

    # ---- results

    def results(self) -> dict[str, LeadResult]:
        out = {}
        for lead_id, lead in self.leads.items():
            if lead.status == "new":
                continue
            state = lead.stage if lead.status == "active" else lead.status
            out[lead_id] = LeadResult(state, lead.entered if lead.stage else None, lead.last_activity,
                                      lead.value, lead.vtime, lead.fit, tuple(lead.actions))
        return out


class Together:
    """The journeys of one run under lead-wide rules (engine.md, *One lead across journeys*): a lead is
    stepped in all its journeys at once, with one lead score, one cap across journeys and one clock."""

    def __init__(self, refs: list[Reference]):
        #: language.md: "the higher number first, and between equal numbers the journey whose name sorts
        #: first (by code point)"
        self.refs = sorted(refs, key=lambda r: (-(r.j.priority.value if r.j.priority else 0), r.j.name))
        self.rules = next(r.j for r in refs if r.j.lead_scoring or r.j.lead_caps)
        for ref in self.refs:
            ref.rules, ref.joint = self.rules, True
        self.wide: dict[str, Wide] = {}
        self.quarantined: list[int] = []

    def run(self, lines: list[bytes]) -> None:
        first = self.refs[0]
        first.quarantined = []
        for ev in first.parsed(lines):
            self.event(ev)
        self.quarantined = first.quarantined

    def event(self, ev: Event) -> None:
        w = self.wide.setdefault(ev.lead, Wide())
        # "The lead has one clock ...: the latest instant any of its journeys reached. A late event is
        # applied at that clock in every journey."
        # DOCS-QUESTION (Q9): does an event no journey enrolls the lead on move that clock? Taken: yes,
        # every applied event is a step of the lead (its lead score takes the points at that instant).
        if w.clock is None:
            w.vtime = ev.time  # the lead score (0) is true from the lead's first event, as a journey's from enrollment
        t = ev.time if w.clock is None else max(ev.time, w.clock)
        self.advance(ev.lead, t)  # 1. due timers of every journey
        w.clock = max(t, w.clock or t)
        self.lead_score(w, ev, w.clock)  # 2. the lead score, once for the lead
        for ref in self.refs:  # 3. each journey reacts, in priority order
            ref.event(ev, w)
            lead = ref.leads[ev.lead]
            if lead.clock is not None and lead.status != "new":
                w.clock = max(w.clock, lead.clock)
        self.advance(ev.lead, w.clock)  # what the event made due at once, in the same step

    def lead_score(self, w: Wide, ev: Event, t: int) -> None:
        """language.md: counts from the lead's first event, whether or not any journey enrolled it."""
        profile = _merge(self.refs[0].profiles.get(ev.lead, {}), ev.attributes)
        hl = self.rules.lead_decay.half_life.seconds if self.rules.lead_decay else None
        add_points(w, self.rules.lead_scoring, hl, ev, OnLead(profile, frozenset()), t)

    def tick(self, now: int) -> None:
        for lead_id in self.wide:
            self.advance(lead_id, now)

    def advance(self, lead_id: str, now: int) -> None:
        """Due timers of every journey, earliest first; at one instant the journey first by priority
        fires first, then the ties inside a journey as in *Order within one step*."""
        w = self.wide[lead_id]
        while True:
            best = None
            for rank, ref in enumerate(self.refs):
                lead = ref.leads.get(lead_id)
                if lead is None or lead.status != "active":
                    continue
                due = ref.next_due(lead)
                if due is not None and due[0] <= now and (best is None or (due[0], rank, *due[1:3]) < best[0]):
                    best = ((due[0], rank, *due[1:3]), ref, lead, due)
            if best is None:
                return
            _, ref, lead, due = best
            ref.fire_due(lead, due)
            w.clock = max(w.clock, lead.clock)
