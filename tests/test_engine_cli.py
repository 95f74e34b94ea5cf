"""Smoke tests of the engine commands through real subprocesses: run, tick, leads, explain, actions, quarantine."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from .engine_helpers import COLTIVA, DAY, HOUR, T0, iso, line

ENV = {**os.environ, "COLUMNS": "250", "NO_COLOR": "1"}

JOURNEY = '''journey "cli-test"

exit on email.unsubscribed

scoring
  demo.requested +50
  email.opened +1

stage interested "Interested"
  initial
  send email "welcome" on entry
  send ebook "guide" after 2 days
  on demo.requested -> sales
  after 30 days idle -> exit

stage sales "Sales"
  handoff to sales
  on deal.won -> customer

stage customer "Customer"
  final
'''


def coltiva(*args, cwd):
    return subprocess.run([str(COLTIVA), *map(str, args)], cwd=cwd, env=ENV, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    (tmp / "j.journey").write_text(JOURNEY, encoding="utf-8")
    lines = [
        line("e1", "email.opened", T0, lead="ana"),
        line("e2", "demo.requested", T0 + 3 * DAY, lead="ana"),
        line("e3", "email.opened", T0 + HOUR, lead="bob"),
        line("e4", "email.unsubscribed", T0 + DAY, lead="cy"),
        line("e5", "email.opened", T0 + 2 * HOUR, lead="dee"),
        "{not json",
        '{"id": "x", "lead": "ana", "type": "email.openned", "time": "2026-01-02T00:00:00Z"}',
        line("e1", "email.opened", T0, lead="ana"),  # a duplicate
    ]
    (tmp / "events.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    run = coltiva("run", "j.journey", "--events", "events.jsonl", "--db", "s.db", "--batch", "3", cwd=tmp)
    assert run.returncode == 0, run.stderr
    tick = coltiva("tick", "--now", iso(T0 + 10 * DAY), "--db", "s.db", cwd=tmp)
    return tmp, run, tick


def test_run_prints_a_summary(workspace):
    _, run, _ = workspace
    assert "Traceback" not in run.stderr
    for label, n in [("events applied", 5), ("duplicates ignored", 1), ("kept aside (quarantine)", 2)]:
        row = next(r for r in run.stdout.splitlines() if label in r)
        assert row.split(label)[1].strip(" │|").split()[0] == str(n), row
    assert "quarantine" in run.stderr


def test_tick_fires_due_timers(workspace):
    tmp, _, tick = workspace
    assert tick.returncode == 0, tick.stderr
    assert any("leads advanced by time" in r and "2" in r.split("leads advanced by time")[1]
               for r in tick.stdout.splitlines()), tick.stdout  # bob and dee: the ebook


def test_leads_shows_the_funnel(workspace):
    tmp, _, _ = workspace
    out = coltiva("leads", "--db", "s.db", cwd=tmp)
    assert out.returncode == 0, out.stderr
    assert "cli-test" in out.stdout

    def count(stage):
        row = next(r for r in out.stdout.splitlines() if r.strip(" │|").startswith(stage + " "))
        return int(row.replace("│", " ").split()[-2].replace(",", ""))

    # ana handed off; bob and dee still interested; cy's first event was an exit event: never enrolled
    assert (count("interested"), count("sales"), count("customer"), count("exit")) == (2, 1, 0, 0)
    never = next(r for r in out.stdout.splitlines() if "not_enrolled" in r)
    assert never.replace("│", " ").split()[-1] == "1"


def test_explain_names_the_rules_that_fired_and_is_consistent(workspace):
    tmp, _, _ = workspace
    out = coltiva("explain", "ana", "--db", "s.db", cwd=tmp)
    assert out.returncode == 0, out.stderr
    text = " ".join(out.stdout.split())
    assert "on demo.requested -> sales" in text
    assert "demo.requested +50" in text
    assert "warning" not in text.lower()
    js = coltiva("explain", "ana", "--db", "s.db", "--format", "json", cwd=tmp)
    assert js.returncode == 0, js.stderr
    [explanation] = json.loads(js.stdout)
    assert explanation["consistent"] is True
    assert explanation["steps"][-1]["stage"][1] == "sales"
    notes = [n for s in explanation["steps"] for n in s["notes"]]
    assert any("rule fired" in n and "demo.requested" in n for n in notes)


def test_explain_of_an_unknown_lead_fails_cleanly(workspace):
    tmp, _, _ = workspace
    out = coltiva("explain", "nobody", "--db", "s.db", cwd=tmp)
    assert out.returncode != 0
    assert "Traceback" not in out.stderr and "nobody" in (out.stderr + out.stdout)


def _jsonl(text):
    return [json.loads(r) for r in text.splitlines() if r.strip()]


def test_actions_as_jsonl_with_since_and_kind(workspace):
    tmp, _, _ = workspace
    every = coltiva("actions", "--db", "s.db", cwd=tmp)
    assert every.returncode == 0, every.stderr
    rows = _jsonl(every.stdout)
    assert len({r["key"] for r in rows}) == len(rows) > 5
    assert [r["seq"] for r in rows] == sorted(r["seq"] for r in rows)
    handoffs = _jsonl(coltiva("actions", "--db", "s.db", "--kind", "handoff", cwd=tmp).stdout)
    assert [(r["lead"], r["stage"]) for r in handoffs] == [("ana", "sales")]
    since = iso(T0 + DAY)
    later = _jsonl(coltiva("actions", "--db", "s.db", "--since", since, cwd=tmp).stdout)
    assert later and all(r["time"] >= since for r in later)
    assert [r for r in rows if r["time"] >= since] == later
    sends = _jsonl(coltiva("actions", "--db", "s.db", "--kind", "send", "--since", since, cwd=tmp).stdout)
    # ana's guide was due at T0+2d, before her demo request at T0+3d: it fires first
    assert sorted((r["lead"], r["content"]) for r in sends) == [
        ("ana", "guide"), ("bob", "guide"), ("dee", "guide")]


def test_quarantine_as_jsonl(workspace):
    tmp, _, _ = workspace
    out = coltiva("quarantine", "--db", "s.db", "--format", "jsonl", cwd=tmp)
    assert out.returncode == 0, out.stderr
    rows = _jsonl(out.stdout)
    assert [(r["source"], r["line"]) for r in rows] == [("events.jsonl", 6), ("events.jsonl", 7)]
    assert "JSON" in rows[0]["reason"] and "email.opened" in rows[1]["reason"]
    assert rows[0]["raw"] == "{not json"


def test_a_journey_with_errors_is_not_run(tmp_path):
    (tmp_path / "bad.journey").write_text('journey "bad"\n\nstage a\n  initial\n  on go -> nowhere\n',
                                          encoding="utf-8")
    (tmp_path / "events.jsonl").write_text(line("e1", "go", T0) + "\n", encoding="utf-8")
    out = coltiva("run", "bad.journey", "--events", "events.jsonl", "--db", "s.db", cwd=tmp_path)
    assert out.returncode == 1
    assert "Traceback" not in out.stderr + out.stdout
    assert "bad.journey:5" in out.stderr and "nowhere" in out.stderr
    assert "error" in out.stderr
