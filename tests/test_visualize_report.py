"""`coltiva report`: every number equals the one computed here, independently, from the store's tables."""

from __future__ import annotations

import json
import re
import sqlite3
import statistics
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone

import numpy
import pytest

from .browser_session import browser  # noqa: F401  (the shared session fixture)
from .visualize_helpers import run_cli

NAME = "Demand generation (B2B)"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from click.testing import CliRunner

    from coltiva.commands.run import command
    from coltiva.sample import generate

    tmp = tmp_path_factory.mktemp("report")
    events = tmp / "events.jsonl"
    # and one lead that reaches May purchase twice in one week (recycled by sales, back at once)
    bounce = [("page.visited", "09:00"), ("demo.requested", "09:10"), ("demo.requested", "09:20"),
              ("sales.rejected", "10:00"), ("demo.requested", "11:00")]
    extra = [json.dumps({"id": f"bounce-{i}", "lead": "bouncer", "type": kind, "time": f"2026-02-04T{at}:00Z"})
             for i, (kind, at) in enumerate(bounce)]
    events.write_text("\n".join(generate(leads=120, days=90, seed=11) + extra) + "\n")
    db = tmp / "store.db"
    result = CliRunner().invoke(command, ["journeys/demand_generation.journey", "--events", str(events),
                                          "--db", str(db)])
    assert result.exit_code == 0, result.output
    return db


def _week(seconds: int) -> str:
    day = datetime.fromtimestamp(seconds, timezone.utc).date()
    return (day - timedelta(days=day.weekday())).isoformat()


def _moves_by_week(db) -> list[tuple[str, str, str]]:
    con = sqlite3.connect(db)
    rows = con.execute("SELECT time, dst, lead FROM transitions WHERE journey = ?", (NAME,)).fetchall()
    con.close()
    return [(_week(t), dst, lead) for t, dst, lead in rows]


def _expected(db) -> dict:
    """The report's numbers, computed in Python from raw rows (no SQL grouping, no shared code)."""
    con = sqlite3.connect(db)
    moves = con.execute("SELECT seq, lead, src, dst, time FROM transitions WHERE journey = ? ORDER BY seq",
                        (NAME,)).fetchall()
    sends = con.execute("SELECT lead, time FROM outbox WHERE journey = ? AND kind = 'send'", (NAME,)).fetchall()
    handoffs = con.execute("SELECT time FROM outbox WHERE journey = ? AND kind = 'handoff'", (NAME,)).fetchall()
    con.close()
    seen = {(_week(t), dst, lead) for _, lead, _, dst, t in moves}
    reaching = Counter((w, dst) for w, dst, _ in seen)
    entered = defaultdict(set)
    moved = defaultdict(set)
    for _, lead, src, dst, _ in moves:
        entered[dst].add(lead)
        if src is not None and src != dst:
            moved[(src, dst)].add(lead)
    by_lead = defaultdict(list)
    for seq, lead, src, dst, t in moves:
        by_lead[lead].append((seq, dst, t))
    stays, still = defaultdict(list), Counter()
    for rows in by_lead.values():
        rows.sort()
        for (_, dst, t), nxt in zip(rows, rows[1:] + [None]):
            if dst == "exit":
                continue
            if nxt is None:
                still[dst] += 1
            else:
                stays[dst].append((nxt[2] - t) / 86400)
    per_lead_week = Counter((_week(t), lead) for lead, t in sends)
    weeks_of_sends = defaultdict(list)
    for (w, _), n in per_lead_week.items():
        weeks_of_sends[w].append(n)
    all_times = [t for *_, t in moves] + [t for _, t in sends] + [t for (t,) in handoffs]
    return dict(reaching=reaching, entered=entered, moved=moved, stays=stays, still=still,
                sends=weeks_of_sends, handoffs=Counter(_week(t) for (t,) in handoffs),
                first=_week(min(all_times)), last=_week(max(all_times)))


def test_report_numbers_equal_the_tables(store, capsys):
    code, out, err = run_cli(["report", "--db", str(store), "--format", "json"], capsys)
    assert code == 0, err
    report = json.loads(out)
    want = _expected(store)
    assert report["journey"] == NAME
    assert report["weeks"][0] == want["first"] and report["weeks"][-1] == want["last"]
    assert all((datetime.fromisoformat(b) - datetime.fromisoformat(a)).days == 7
               for a, b in zip(report["weeks"], report["weeks"][1:]))
    assert {(r["week"], r["stage"]): r["leads"] for r in report["reaching"]} == dict(want["reaching"])
    assert {(c["source"], c["target"]): (c["entered"], c["moved"]) for c in report["conversions"]} == {
        k: (len(want["entered"][k[0]]), len(v)) for k, v in want["moved"].items()}
    for c in report["conversions"]:
        assert c["rate"] == pytest.approx(c["moved"] / c["entered"])
    times = {t["stage"]: t for t in report["times"]}
    assert set(times) == set(want["stays"]) | set(want["still"])
    for stage, t in times.items():
        days = want["stays"].get(stage, [])
        assert (t["stays"], t["open"]) == (len(days), want["still"].get(stage, 0))
        if days:
            assert t["median_days"] == pytest.approx(statistics.median(days), abs=1e-3)
            assert t["p90_days"] == pytest.approx(float(numpy.percentile(days, 90)), abs=1e-3)
        else:
            assert t["median_days"] is None and t["p90_days"] is None
    assert report["cap_per_week"] == 3  # at most 3 messages per 7 days
    assert {s["week"]: (s["leads"], s["sends"], s["max_per_lead"], s["over_cap"]) for s in report["sends"]} == {
        w: (len(ns), sum(ns), max(ns), sum(n > 3 for n in ns)) for w, ns in want["sends"].items()}
    for s in report["sends"]:
        assert s["mean_per_lead"] == pytest.approx(s["sends"] / s["leads"], abs=1e-3)
    assert {h["week"]: h["handoffs"] for h in report["handoffs"]} == dict(want["handoffs"])
    assert sum(want["handoffs"].values()) > 0 and len(want["stays"]) >= 4  # the sample exercises every table
    twice = Counter((w, dst) for w, dst, lead in _moves_by_week(store) if lead == "bouncer")
    assert twice[("2026-02-02", "may_purchase")] == 2  # counted once in "reaching": leads, not moves


def test_text_and_html_reports(store, tmp_path, capsys, browser):
    code, out, err = run_cli(["report", "--db", str(store), "journeys/demand_generation.journey"], capsys)
    assert code == 0, err
    for title in ("Leads reaching each stage per week", "Stage-to-stage conversion", "Time in stage",
                  "Sends per lead per week (cap 3.0)", "Handoffs per week"):
        assert title in out
    page = tmp_path / "report.html"
    code, _, err = run_cli(["report", "--db", str(store), "--format", "html", "-o", str(page)], capsys)
    assert code == 0, err
    html = page.read_text()
    assert not re.search(r"<(script|img|link(?![^>]*href=\"data:)|iframe)\b", html)
    assert not re.search(r"(src|href)=\"(https?:)?//", html)
    shown = browser.open(page, script="""() => [...document.querySelectorAll('.chart')].map(
        c => [c.id, c.querySelector('svg').getBoundingClientRect().width > 200,
              c.querySelectorAll('svg text').length > 5])""")
    assert shown["errors"] == [] and len(shown["requests"]) == 1
    assert shown["result"] == [[f"chart-{n}", True, True] for n in ("reaching", "times", "sends", "handoffs")]


def test_report_mistakes_are_clear(store, tmp_path, capsys):
    code, _, err = run_cli(["report", "--db", str(tmp_path / "none.db")], capsys)
    assert code == 1 and "no such database file" in err and "Traceback" not in err
    code, _, err = run_cli(["report", "--db", str(store), "Nope"], capsys)
    assert code == 1 and "no journey named 'Nope'" in err
    code, _, err = run_cli(["report", "--db", str(store), "--format", "html"], capsys)
    assert code == 1 and "-o" in err


def test_the_weekly_cap_is_the_strictestcap_per_week():
    from visualize.report import cap_per_week

    day = 86400
    assert cap_per_week([]) is None
    assert cap_per_week([(3, 7 * day)]) == 3
    assert cap_per_week([(1, day)]) == 7  # one a day: seven in a week
    assert cap_per_week([(10, 30 * day)]) == 10  # a window longer than a week: at most N in any week
    assert cap_per_week([(1, day), (5, 7 * day)]) == 5
