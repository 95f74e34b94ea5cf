"""Run the real `coltiva` command and the reference model on the same input, and compare.

The engine is driven only through its command line (`run`, `tick`, `actions`)
and read through its store's `leads` and `quarantine` tables, as a user would.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from dsl.loader import load_journey

from .model import Action, LeadResult, Reference, Together, iso

__all__ = ["COLTIVA", "Outcome", "engine_outcome", "reference_outcome", "compare", "Workload"]

COLTIVA = str(Path(sys.executable).parent / "coltiva")


@dataclass(frozen=True)
class Workload:
    """`coltiva run` of each batch of lines, each followed by `coltiva tick --now` its instant."""

    journey: Path | tuple[Path, ...]  # several: one `coltiva run` of them all, a lead in each
    rounds: tuple[tuple[list[bytes], int], ...]

    @property
    def journeys(self) -> tuple[Path, ...]:
        return self.journey if isinstance(self.journey, tuple) else (self.journey,)


@dataclass(frozen=True)
class Outcome:
    """Per "journey|lead": state, the record's documented fields, and the actions; the quarantined lines."""

    leads: dict[str, LeadResult]
    quarantined: tuple[int, ...]
    #: under lead-wide rules, per lead: (lead score value, the time it was true, the lead's clock)
    wide: dict[str, tuple[float, int, int]] = field(default_factory=dict)


def _t(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp())


def _action(row: dict) -> Action:
    kind = row["kind"]
    if kind == "stage":
        return Action("stage", _t(row["time"]), src=row["from"], dst=row["to"])
    if kind == "exit":
        return Action("exit", _t(row["time"]), src=row["from"])
    if kind == "handoff":
        return Action("handoff", _t(row["time"]), stage=row["stage"], score=row["score"])
    if kind not in ("send",):  # an internal action: its data fields besides the common ones and `stage`
        common = {"key", "kind", "journey", "version", "lead", "time", "stage", "seq"}
        return Action(kind, _t(row["time"]), stage=row["stage"],
                      data=tuple(sorted((k, v) for k, v in row.items() if k not in common)))
    deferred = row.get("deferred_from")
    return Action("send", _t(row["time"]), stage=row["stage"], content_kind=row["content_kind"],
                  content=row["content"], deferred_from=_t(deferred) if deferred else None,
                  edition=row.get("edition"))


def engine_outcome(work: Workload, tmp: Path) -> Outcome:
    db = tmp / "store.db"
    for n, (lines, tick) in enumerate(work.rounds):
        events = tmp / f"events{n}.jsonl"
        events.write_bytes(b"\n".join(lines) + b"\n")
        subprocess.run([COLTIVA, "run", *map(str, work.journeys), "--events", str(events), "--db", str(db)],
                       check=True, capture_output=True)
        subprocess.run([COLTIVA, "tick", "--now", iso(tick), "--db", str(db)], check=True, capture_output=True)
    out = subprocess.run([COLTIVA, "actions", "--db", str(db)], check=True, capture_output=True, text=True).stdout
    actions: dict[str, list[Action]] = {}
    for line in out.splitlines():
        row = json.loads(line)
        actions.setdefault(f'{row["journey"]}|{row["lead"]}', []).append(_action(row))
    leads = {}
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        for journey, lead, state, record in con.execute("SELECT journey, lead, state, record FROM leads"):
            lead = f"{journey}|{lead}"
            rec = json.loads(record)
            # docs/engine.md lists the record's fields in this order: stage, when it entered it,
            # its last activity, its score and the time that score was true, fit points, ...
            entered = rec[1] if state not in ("waiting", "not_enrolled") else None
            leads[lead] = LeadResult(state, entered, rec[2], rec[3], rec[4], rec[5],
                                     tuple(actions.get(lead, ())))
        quarantined = tuple(sorted(
            (int(Path(source).stem.removeprefix("events")), n)
            for source, n in con.execute("SELECT source, line_no FROM quarantine")
        ))
        wide = {}
        if con.execute("SELECT 1 FROM sqlite_master WHERE name = 'lead_wide'").fetchone():
            for lead, record in con.execute("SELECT lead, record FROM lead_wide"):
                # engine.md lists the lead-wide record's fields in this order: the lead score and the
                # time it was true, the caps of lead score rules, the recent sends (and their journeys),
                # and the lead's clock
                rec = json.loads(record)
                wide[lead] = (rec[0], rec[1], rec[-1])
    con.close()
    return Outcome(leads, quarantined, wide)


def reference_outcome(work: Workload, variants: frozenset[str] = frozenset()) -> Outcome:
    journeys = []
    for path in work.journeys:
        loaded = load_journey(path)
        assert loaded.ok, loaded.diagnostics
        journeys.append(loaded.journey)
    known = set().union(*(j.event_types() for j in journeys))
    refs = [Reference(j, variants, known) for j in journeys]
    together = Together(refs) if any(j.lead_scoring or j.lead_caps for j in journeys) else None
    quarantined = []
    for n, (lines, tick) in enumerate(work.rounds):
        if together is not None:  # one step over every journey of a lead
            together.run(lines)
            together.tick(tick)
        for ref in refs if together is None else ():
            ref.quarantined = []
            ref.run(lines)
            ref.tick(tick)
        quarantined += [(n, line) for line in (together or refs[0]).quarantined]
    leads = {f"{ref.j.name}|{lead}": result for ref in refs for lead, result in ref.results().items()}
    wide = {lead: (w.value, w.vtime, w.clock) for lead, w in together.wide.items()} if together else {}
    return Outcome(leads, tuple(sorted(quarantined)), wide)


def _same_number(a: float, b: float) -> bool:
    return a == b or abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def compare(engine: Outcome, ref: Outcome) -> list[str]:
    """Every difference, one line each, lead by lead (empty when they agree)."""
    out = []
    if engine.quarantined != ref.quarantined:
        out.append(f"quarantine: engine {engine.quarantined} reference {ref.quarantined}")
    for lead in sorted(set(engine.wide) | set(ref.wide)):
        e, r = engine.wide.get(lead), ref.wide.get(lead)
        if e is None or r is None:
            out.append(f"lead-wide {lead}: only in {'reference' if e is None else 'engine'}: {e or r}")
        elif not _same_number(e[0], r[0]) or e[1:] != r[1:]:
            out.append(f"lead-wide {lead}: (lead score, its time, clock) engine {e[0]}, {iso(e[1])}, "
                       f"{iso(e[2])} reference {r[0]}, {iso(r[1])}, {iso(r[2])}")
    for lead in sorted(set(engine.leads) | set(ref.leads)):
        e, r = engine.leads.get(lead), ref.leads.get(lead)
        if e is None or r is None:
            out.append(f"{lead}: only in {'reference' if e is None else 'engine'}: {e or r}")
            continue
        if e.state != r.state:
            out.append(f"{lead}: state engine {e.state} reference {r.state}")
        if r.state not in ("waiting", "not_enrolled"):
            for name in ("entered", "last_activity", "vtime"):
                if getattr(e, name) != getattr(r, name):
                    out.append(f"{lead}: {name} engine {getattr(e, name)} reference {getattr(r, name)}")
            for name in ("value", "fit"):
                if not _same_number(getattr(e, name), getattr(r, name)):
                    out.append(f"{lead}: {name} engine {getattr(e, name)} reference {getattr(r, name)}")
        if e.actions != r.actions:
            n = next((i for i, (a, b) in enumerate(zip(e.actions, r.actions)) if a != b),
                     min(len(e.actions), len(r.actions)))
            out.append(f"{lead}: actions differ from #{n}: engine {_show(e.actions[n:n + 3])} "
                       f"reference {_show(r.actions[n:n + 3])}")
    return out


def _show(actions) -> str:
    return "; ".join(
        " ".join(f"{k}={iso(v) if k in ('time', 'deferred_from') and v else v}"
                 for k, v in vars(a).items() if v is not None)
        for a in actions
    )
