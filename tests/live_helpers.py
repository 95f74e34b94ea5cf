"""Helpers of the live-journey tests: versions of the demand journey, apply in process, replay a whole store."""

from __future__ import annotations

import json

from coltiva.sample import generate
from dsl.loader import load_text
from engine.compiler import compile_journey
from engine.events import parse_time
from engine.plan import apply_plan, make_plan
from engine.runner import Runner
from engine.store import Store

from .engine_helpers import DEMAND

V1_TEXT = DEMAND.read_text(encoding="utf-8")
# a real edit of each kind: a lower threshold, a renamed content id (with its move), a sooner drip
V2_TEXT = (V1_TEXT.replace("when score >= 20 -> shown_interest", "when score >= 10 -> shown_interest")
           .replace('send email "welcome" on entry', 'send email "welcome-2026" on entry')
           .replace('"hidden-cost-of-manual-follow-up" after 7 days', '"hidden-cost-of-manual-follow-up" after 2 days')
           .replace("\nfit", '\nmoves\n  content "welcome" -> "welcome-2026"\n\nfit', 1))
assert V2_TEXT.count("welcome-2026") == 2 and "after 2 days" in V2_TEXT


def compiled(text: str, path: str = "demand.journey"):
    loaded = load_text(text, path)
    assert loaded.ok, [str(d) for d in loaded.diagnostics if d.is_error]
    return compile_journey(loaded.journey, loaded.diagnostics), {path: text}


def halves(leads: int, days: int, seed: int) -> tuple[list[str], list[str], int]:
    """Valid event lines of a sample, split in time: (before, after, the instant between)."""
    rows = []
    for line in generate(leads, days, seed):
        try:
            rows.append((parse_time(json.loads(line)["time"]), line))
        except Exception:  # the sample's malformed lines: they only reach the quarantine, not the log
            continue
    rows.sort(key=lambda r: r[0])
    cut = rows[len(rows) // 2][0]
    return [line for t, line in rows if t < cut], [line for t, line in rows if t >= cut], cut


def run(db, journeys, lines, batch=5000):
    with Store(db) as store:
        for cj, sources in journeys:
            store.register(cj, sources)
        return Runner(store, [cj for cj, _ in journeys], batch_size=batch).run_lines(lines, "events.jsonl")


def tick(db, now: int):
    with Store(db) as store:
        return Runner(store, store.journeys()).tick(now)


def apply(db, journey, policy: str, at: int | None = None):
    """Plan then apply in process; returns (the plan shown by a reader, the plan applied)."""
    cj, sources = journey
    with Store(db, read_only=True) as reader:
        shown = make_plan(reader, cj, policy, at)
    with Store(db, writer=True) as store:
        done = apply_plan(store, cj, sources, policy, shown.hash, at)
    return shown, done


def replay_store(src, dst) -> None:
    """Rebuild a store from another's input log alone: events, ticks and switches, in their order."""
    with Store(src, read_only=True) as s:
        inputs = s.db.execute("SELECT kind, time, event FROM inputs ORDER BY seq").fetchall()
        texts = {(n, v): (t, json.loads(src_files)) for n, v, t, src_files in
                 s.db.execute("SELECT name, version, text, sources FROM journeys")}
        switches = [json.loads(e) for k, _, e in inputs if k == "switch"]
        first = {}
        for sw in switches:
            first.setdefault(sw["journey"], sw["from"])
        versions = {name: first.get(name, s.current_version(name)) for name in s.journey_names()}

    def version(name, v):  # rebuilt from the files it ran with, as the store does: same rule positions
        with Store(src, read_only=True) as s:
            return s.compiled(name, v), texts[(name, v)][1]

    with Store(dst) as store:
        for name, v in versions.items():
            cj, sources = version(name, v)
            store.register(cj, sources)
        runner = Runner(store, store.journeys())
        waiting: list[str] = []  # consecutive events go in one batch: batches never change the meaning
        for kind, time, event in inputs + [("end", 0, None)]:
            if kind == "event":
                waiting.append(event)
                continue
            runner.run_lines(waiting)
            waiting = []
            if kind == "end":
                break
            if kind == "tick":
                runner.tick(time)
            else:
                sw = json.loads(event)
                cj, sources = version(sw["journey"], sw["to"])
                if sw["policy"] == "register":
                    store.register(cj, sources)
                else:
                    plan = make_plan(store, cj, sw["policy"], time)
                    apply_plan(store, cj, sources, sw["policy"], plan.hash, time)
                runner = Runner(store, store.journeys())


def meaning(db) -> dict:
    """The store's dump without the quarantine (a replay feeds only the lines that were applied)."""
    with Store(db, read_only=True) as store:
        out = store.dump()
    out.pop("quarantine")
    return out
