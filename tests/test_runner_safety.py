"""What a run does when things go wrong: a failed write, a bug on one event, a second writer, bad bytes."""

import json
import subprocess
import sys

import pytest

import engine.runner as runner_module
from dsl.errors import StoreError
from engine.runner import Runner
from engine.store import Store
from engine.stores import open_store

from .engine_helpers import DAY, T0, journey, line

SENDER = """journey "sender"
scoring
  hello +1
stage a
  initial
  send email "welcome" on entry
  on go -> b
stage b
  send email "next" on entry
  final
"""


def _outbox(store):
    return [a for _, a in store.actions()]


def test_a_failed_write_leaves_nothing_behind_and_a_retry_delivers_every_action(store_at, monkeypatch):
    cj = journey(SENDER)
    with open_store(store_at("s")) as store:
        store.register(cj, {})
        runner = Runner(store, [cj])
        real = store.write_batch
        calls = []

        def failing_once(**kwargs):
            calls.append(1)
            if len(calls) == 1:
                raise OSError("disk full")
            return real(**kwargs)

        monkeypatch.setattr(store, "write_batch", failing_once)
        lines = [line("e1", "hello", T0), line("e2", "go", T0 + DAY)]
        with pytest.raises(OSError):
            runner.run_lines(lines)
        assert _outbox(store) == []
        runner.run_lines(lines)  # the same process retries: it must start from the store, not its cache
        contents = [a.get("content") for a in _outbox(store) if a["kind"] == "send"]
        assert contents == ["welcome", "next"]


def test_an_event_that_fails_is_kept_aside_and_the_batch_goes_on(store_at, monkeypatch):
    cj = journey(SENDER)
    real = runner_module.step_lead

    def step(journeys, rules, records, wide, lead, event, traces=None):
        if event.id == "bad":
            raise RuntimeError("boom")
        return real(journeys, rules, records, wide, lead, event, traces)

    monkeypatch.setattr(runner_module, "step_lead", step)
    with open_store(store_at("s")) as store:
        store.register(cj, {})
        summary = Runner(store, [cj]).run_lines(
            [line("e1", "hello", T0, lead="A"), line("bad", "hello", T0, lead="B"), line("e3", "go", T0 + 1, lead="A")])
        assert summary.applied == 2 and summary.quarantined == 1
        (row,) = list(store.quarantined())
        assert row[2] == 2 and "boom" in row[3] and "bug" in row[3]
        assert "B" not in {a["lead"] for a in _outbox(store)}
        assert store.seen(["bad"]) == set()  # not logged as applied: a fixed version can take it again


def test_one_writer_at_a_time_and_readers_are_never_blocked(tmp_path):
    path = tmp_path / "s.db"
    with Store(path, writer=True):
        with pytest.raises(StoreError, match="one writer at a time"):
            Store(path, writer=True)
        with Store(path) as reader:  # reading while a writer holds the lock
            assert reader.stage_counts() == {}
    with Store(path, writer=True):  # released on close
        pass


def test_a_second_writer_process_is_refused_with_a_message(tmp_path):
    path = tmp_path / "s.db"
    with Store(path, writer=True):
        done = subprocess.run([sys.executable, "-m", "coltiva.cli", "tick", "--now", "2026-01-01T00:00:00Z",
                               "--db", str(path)], capture_output=True, text=True)
    assert done.returncode == 1
    assert "one writer at a time" in done.stderr and "Traceback" not in done.stderr


def test_bad_bytes_and_values_are_quarantined_through_the_cli(tmp_path):
    good = {"id": "ok", "lead": "L", "type": "hello", "time": "2026-01-01T00:00:00Z"}
    lines = [
        b"\xef\xbb\xbf" + json.dumps(good).encode(),  # a BOM on the first line is not part of the event
        b'{"id": "u", "lead": "L", "type": "hello", "time": "2026-01-02T00:00:00Z", "data": {"x": "\xff"}}',
        b'{"id": "n", "lead": "L", "type": "hello", "time": "2026-01-02T00:00:00Z", "data": {"x": NaN}}',
        b'{"id": "s\\udfff", "lead": "L", "type": "hello", "time": "2026-01-02T00:00:00Z"}',
        b'{"id": "f", "lead": "L", "type": "hello", "time": "9999-12-31T23:59:59-05:00"}',
    ]
    events = tmp_path / "e.jsonl"
    events.write_bytes(b"\n".join(lines) + b"\n")
    source = tmp_path / "sender.journey"
    source.write_text(SENDER)
    db = tmp_path / "s.db"
    done = subprocess.run([sys.executable, "-m", "coltiva.cli", "run", str(source), "--events", str(events),
                           "--db", str(db)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    with Store(db) as store:
        reasons = {line_no: reason for _, _, line_no, reason, _ in store.quarantined()}
        assert store.seen(["ok"]) == {"ok"}
    assert sorted(reasons) == [2, 3, 4, 5]
    assert "UTF-8" in reasons[2] and "NaN" in reasons[3] and "Unicode" in reasons[4] and "range" in reasons[5]


def test_two_files_with_one_journey_name_are_refused(tmp_path):
    first, second = tmp_path / "a.journey", tmp_path / "b.journey"
    first.write_text(SENDER)
    second.write_text(SENDER.replace('"next"', '"other"'))
    events = tmp_path / "e.jsonl"
    events.write_text(line("e1", "hello", T0) + "\n")
    done = subprocess.run([sys.executable, "-m", "coltiva.cli", "run", str(first), str(second), "--events",
                           str(events), "--db", str(tmp_path / "s.db")], capture_output=True, text=True)
    assert done.returncode == 1
    assert "both named 'sender'" in done.stderr and "Traceback" not in done.stderr
