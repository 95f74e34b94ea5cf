"""Hostile input is normal input: a user's mistake on the command line gives a clear message and a non-zero exit,
never a traceback (the project's rules; docs/engine.md, *Opening a store*). The real `coltiva` command, in a
subprocess, on a real store."""

from __future__ import annotations

import subprocess

import pytest

from .engine_helpers import COLTIVA, SAAS, T0, line


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    where = tmp_path_factory.mktemp("cli")
    (where / "events.jsonl").write_text(line("e1", "trial.started", T0) + "\n")
    (where / "not-a-store.db").write_text("garbage\n")
    done = subprocess.run([COLTIVA, "run", SAAS, "--events", where / "events.jsonl", "--db", where / "s.db"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return where


def _coltiva(where, *args):
    return subprocess.run([COLTIVA, *[str(a).replace("{db}", str(where / "s.db")) for a in args]],
                          capture_output=True, text=True, cwd=where, timeout=120)


@pytest.mark.parametrize("args, said", [
    (("tick", "--db", "{db}", "--now", "garbage"), "not a valid ISO 8601 time"),
    (("tick", "--db", "{db}", "--now", "2026-01-01T00:00:00"), "has no zone"),
    (("tick", "--db", "{db}", "--now", "2126-01-01T00:00:00Z"), "more than 90 days beyond"),
    (("tick", "--db", "not-a-store.db", "--now", "2026-01-01T00:00:00Z"), "not a Coltiva store"),
    (("explain", "nobody", "--db", "{db}"), "no lead 'nobody'"),
    (("explain", "L1", "--db", "missing.db"), "no such store"),
    (("plan", SAAS, "--db", "{db}", "--at", "2025-01-01T00:00:00Z"), "cannot be applied in the past"),
    (("run", SAAS, SAAS, "--events", "events.jsonl", "--db", "{db}"), "both named"),
    (("actions", "--db", "{db}", "--after", "abc"), "--after"),
])
def test_a_mistake_on_the_command_line_is_a_message_never_a_traceback(store, args, said):
    done = _coltiva(store, *args)
    assert done.returncode != 0
    assert "Traceback" not in done.stdout + done.stderr
    assert said in done.stdout + done.stderr


@pytest.mark.parametrize("after", [str(2 ** 63), "99999999999999999999999"])
def test_an_outbox_position_too_large_for_the_store_is_a_message(store, after):
    """It was an OverflowError traceback from the database driver (found by the spec audit)."""
    done = _coltiva(store, "actions", "--db", "{db}", "--after", after)
    assert done.returncode == 2 and "Traceback" not in done.stdout + done.stderr
    assert "--after" in done.stderr and "0<=x<=4611686018427387904" in done.stderr
