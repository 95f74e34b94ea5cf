"""The live-journey commands for real: `run` refuses a change, `plan` shows it, `apply` makes it, `versions` lists it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

from engine.store import Store

from .engine_helpers import COLTIVA, ROOT
from .live_helpers import V1_TEXT, V2_TEXT, halves

ENV = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
NAME = "Demand generation (B2B)"


def coltiva(*args, check=True):
    done = subprocess.run([str(COLTIVA), *map(str, args)], cwd=ROOT, env=ENV, capture_output=True, text=True,
                          timeout=120)
    assert "Traceback" not in done.stderr, done.stderr
    if check:
        assert done.returncode == 0, (done.stdout, done.stderr)
    return done


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    """One store that ran the first half of a sample on v1, made once by the real commands."""
    tmp = tmp_path_factory.mktemp("launched")
    before, after, _ = halves(20, 60, 5)
    (tmp / "before.jsonl").write_text("\n".join(before) + "\n")
    (tmp / "after.jsonl").write_text("\n".join(after) + "\n")
    db = tmp / "s.db"
    (tmp / "v1.journey").write_text(V1_TEXT)
    coltiva("run", tmp / "v1.journey", "--events", tmp / "before.jsonl", "--db", db)
    coltiva("tick", "--now", "2026-06-01T00:00:00Z", "--db", db)
    return tmp


def setup(tmp_path, launched):
    for name in ("before.jsonl", "after.jsonl", "s.db"):
        shutil.copy(launched / name, tmp_path / name)
    (tmp_path / "v1.journey").write_text(V1_TEXT)
    (tmp_path / "v2.journey").write_text(V2_TEXT)
    # v2 without the move of "dormant": a removed stage with leads and nowhere to go
    (tmp_path / "v2bad.journey").write_text(V2_TEXT.replace("stage dormant", "stage asleep")
                                            .replace("-> dormant", "-> asleep"))
    return tmp_path / "s.db"


def dump(db):
    with Store(db, read_only=True) as store:
        return store.dump()


def test_run_with_a_changed_journey_says_run_coltiva_plan(tmp_path, launched):
    db = setup(tmp_path, launched)
    before = dump(db)
    done = coltiva("run", tmp_path / "v2.journey", "--events", tmp_path / "after.jsonl", "--db", db, check=False)
    assert done.returncode == 1
    assert "changed" in done.stderr and f"coltiva plan {tmp_path / 'v2.journey'} --db {db}" in done.stderr
    assert "coltiva apply" in done.stderr
    assert dump(db) == before


def test_a_plan_refuses_a_removed_stage_with_leads_and_no_move(tmp_path, launched):
    db = setup(tmp_path, launched)
    with Store(db, read_only=True) as store:
        dormant = sum(1 for _, s in store.leads_of(NAME) if s.record.state == "dormant")
    assert dormant > 0
    done = coltiva("plan", tmp_path / "v2bad.journey", "--db", db, check=False)
    assert done.returncode == 1
    assert f"REFUSED: {dormant} lead(s) in stage `dormant`" in done.stdout and "stage dormant -> STAGE" in done.stdout
    shown = json.loads(coltiva("plan", tmp_path / "v2bad.journey", "--db", db, "--format", "json", check=False).stdout)
    assert len(shown["refusals"]) == 1
    applied = coltiva("apply", tmp_path / "v2bad.journey", "--db", db, "--policy", "migrate", "--plan", shown["plan"],
                      check=False)
    assert applied.returncode == 1 and "refusals" in applied.stderr


def test_plan_apply_versions_and_a_rollback(tmp_path, launched):
    db = setup(tmp_path, launched)
    before = dump(db)
    done = coltiva("plan", tmp_path / "v2.journey", "--db", db)
    assert "what changed in meaning:" in done.stdout and "+  send email \"welcome-2026\" on entry" in done.stdout
    assert dump(db) == before  # a plan is a dry run
    shown = json.loads(coltiva("plan", tmp_path / "v2.journey", "--db", db, "--format", "json").stdout)
    assert f"plan {shown['plan']}" in done.stdout and shown["refusals"] == []
    assert sum(m["leads"] for m in shown["moves"]) > 0
    # a wrong hash, then a store that moved since the plan: refused, nothing written
    wrong = coltiva("apply", tmp_path / "v2.journey", "--db", db, "--policy", "migrate", "--plan", "0" * 16,
                    check=False)
    assert wrong.returncode == 1 and "run `coltiva plan` again" in wrong.stderr
    drained = coltiva("apply", tmp_path / "v2.journey", "--db", db, "--policy", "drain", "--plan", shown["plan"],
                      check=False)
    assert drained.returncode == 1  # the plan shown was for migrate
    assert dump(db) == before
    coltiva("tick", "--now", "2026-06-02T00:00:00Z", "--db", db)
    moved = coltiva("apply", tmp_path / "v2.journey", "--db", db, "--policy", "migrate", "--plan", shown["plan"],
                    check=False)
    assert moved.returncode == 1 and "the store changed since" in moved.stderr
    # planned again, applied
    shown = json.loads(coltiva("plan", tmp_path / "v2.journey", "--db", db, "--format", "json").stdout)
    coltiva("apply", tmp_path / "v2.journey", "--db", db, "--policy", "migrate", "--plan", shown["plan"])
    again = coltiva("apply", tmp_path / "v2.journey", "--db", db, "--policy", "migrate", "--plan", shown["plan"],
                    check=False)
    assert again.returncode == 1 and "already the one that runs" in again.stderr
    history = json.loads(coltiva("versions", NAME, "--db", db, "--format", "json").stdout)
    assert [(h["command"], h["policy"], h["current"]) for h in history] == [("run", None, False),
                                                                           ("apply", "migrate", True)]
    assert history[0]["leads"] == 0 and history[1]["leads"] == shown["leads"] > 0
    assert history[1]["note"] == f"plan {shown['plan']}"
    table = coltiva("versions", NAME, "--db", db).stdout
    assert shown["to"] in table and "current" in table
    # events keep coming on the new version; then the rollback is one more plan and apply
    coltiva("run", tmp_path / "v2.journey", "--events", tmp_path / "after.jsonl", "--db", db)
    back = json.loads(coltiva("plan", tmp_path / "v1.journey", "--db", db, "--format", "json").stdout)
    assert back["refusals"] == []
    coltiva("apply", tmp_path / "v1.journey", "--db", db, "--policy", "migrate", "--plan", back["plan"])
    history = json.loads(coltiva("versions", NAME, "--db", db, "--format", "json").stdout)
    assert [h["version"] for h in history] == [history[0]["version"], shown["to"], history[0]["version"]]
    assert history[-1]["current"] and history[-1]["leads"] == back["leads"]
    # explain replays across both switches
    with Store(db, read_only=True) as store:
        lead = next(lead for lead, s in store.leads_of(NAME) if s.record.state not in ("exit", "not_enrolled"))
    explained = coltiva("explain", lead, "--db", db)
    assert "switch to version" in explained.stdout and "replay of the log matches" in explained.stdout


def test_versions_of_an_unknown_journey_is_a_message(tmp_path, launched):
    db = setup(tmp_path, launched)
    done = coltiva("versions", "nope", "--db", db, check=False)
    assert done.returncode == 1 and "no journey 'nope'" in done.stderr and NAME in done.stderr


def test_a_plan_at_an_instant_before_the_store_is_refused(tmp_path, launched):
    db = setup(tmp_path, launched)
    done = coltiva("plan", tmp_path / "v2.journey", "--db", db, "--at", "2026-01-01T00:00:00Z", check=False)
    assert done.returncode == 1 and "before the last input" in done.stderr


def test_diff_with_a_store_shows_the_plan_counts(tmp_path, launched):
    db = setup(tmp_path, launched)
    shown = json.loads(coltiva("plan", tmp_path / "v2.journey", "--db", db, "--format", "json").stdout)
    done = coltiva("diff", tmp_path / "v1.journey", tmp_path / "v2.journey", "--db", db)
    for m in shown["moves"]:
        where = "stay in" if m["from"] == m["to"] else f"move to {m['to']} from"
        assert f"{m['leads']} lead(s) {where} {m['from']} " in done.stdout
    assert f"plan {shown['plan']}" in done.stdout
    plain = coltiva("diff", tmp_path / "v1.journey", tmp_path / "v2.journey")
    assert "lead(s)" not in plain.stdout


def test_a_plan_on_a_format_1_store_says_to_migrate_it_first(tmp_path):
    old = ROOT / "tests" / "fixtures" / "store_v1.db"
    db = tmp_path / "v1.db"
    shutil.copy(old, db)
    (tmp_path / "v2.journey").write_text(V2_TEXT)
    done = coltiva("plan", tmp_path / "v2.journey", "--db", db, check=False)
    assert done.returncode == 1 and "store format 1 keeps no versions yet" in done.stderr


def test_diff_with_a_store_draws_the_leads_each_stage_holds_after_the_change(tmp_path, launched):
    """The plan's counts drawn on the diff: each stage of the new version with the leads it will hold."""
    import xml.etree.ElementTree as ET

    db = setup(tmp_path, launched)
    shown = json.loads(coltiva("plan", tmp_path / "v2.journey", "--db", db, "--format", "json").stdout)
    after: dict[str, int] = {}
    for m in shown["moves"]:
        after[m["to"]] = after.get(m["to"], 0) + m["leads"]
    coltiva("diff", tmp_path / "v1.journey", tmp_path / "v2.journey", "--db", db, "-o", tmp_path / "d.svg")
    root = ET.fromstring((tmp_path / "d.svg").read_bytes())
    texts = " ".join(t.text or "" for t in root.iter() if t.tag.endswith("text"))
    for stage, n in after.items():
        if stage != "exit" and n:
            assert f"{n:,} lead" in texts, (stage, n, texts[:400])
    plain = tmp_path / "plain.svg"
    coltiva("diff", tmp_path / "v1.journey", tmp_path / "v2.journey", "-o", plain)
    plain_texts = " ".join(t.text or "" for t in ET.fromstring(plain.read_bytes()).iter() if t.tag.endswith("text"))
    assert not re.search(r"\b\d[\d,]* leads?\b", plain_texts)


def test_the_funnel_counts_leads_draining_in_a_stage_the_new_version_dropped():
    from engine.compiler import compile_journey
    from dsl.loader import load_text
    from rich.console import Console

    from coltiva.tables import funnel_table

    cj = compile_journey(load_text(V2_TEXT).journey)
    old_only = "gone_stage"
    table = funnel_table(cj, {cj.journey.stages[0].id: 3, old_only: 2, "exit": 1})
    console = Console(record=True, width=200)
    console.print(table)
    text = console.export_text()
    assert old_only in text and "older version" in text
    assert "6" in text.split("total")[1].split("\n")[0]  # the total counts them too
