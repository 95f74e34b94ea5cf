"""The Flink job's PostgreSQL action sink without Flink (engine_flink.sinks.OutboxWriter) on a real server.

The sink commits actions in batches. A restore from a checkpoint makes it write
again the actions produced since that checkpoint, and those of batches it had
gathered but maybe not committed: by key, the outbox keeps each action once, at
its first position, whatever is replayed, however often and however batched; two
writers at once (two Flink workers) lose nothing and keep each lead's actions in
the order it produced them. The job itself, on a real mini-cluster, is in tests_flink/.
"""

from __future__ import annotations

import threading

from hypothesis import HealthCheck, given, settings, strategies as st

from engine.record import Action
from engine_flink.logic import action_from_line, action_line
from engine_flink.sinks import OutboxWriter

from .engine_helpers import T0

LAST_TIME = 7_258_118_399  # 2199-12-31T23:59:59Z, the last time the engine reads


def _action(lead: str, n: int) -> Action:
    return Action("send", "j", "v1", lead, T0 + n, f"{lead}|j@v1|send:x|{n}",
                  {"content": f"c{n}", "note": "é \"quoted\"", "n": n})


def _outbox(url: str) -> list[tuple[int, dict]]:
    from engine.pgstore import PgStore

    with PgStore(url, read_only=True) as store:
        return list(store.actions())


def _write_in_batches(writer: OutboxWriter, actions: list[Action], data) -> None:
    """The actions in order, cut into batches of drawn sizes (one transaction each)."""
    at = 0
    while at < len(actions):
        size = data.draw(st.sampled_from([1, 2, 5, 70]), "batch")  # 70: past COPY_FROM, by COPY
        writer.write([action_line(a) for a in actions[at:at + size]])
        at += size


@given(st.integers(1, 150), st.data())
@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_replays_from_any_checkpoint_write_each_action_once_in_first_order(pg_server, count, data):
    """Each attempt writes from its checkpoint on, in batches, and may fail anywhere; the last one reaches
    the end."""
    actions = [_action(f"L{n % 3}", n) for n in range(count)]
    url = pg_server.create_schema("coltiva", "sink_replay")
    start = 0
    for _ in range(data.draw(st.integers(0, 4), "failures")):
        stop = data.draw(st.integers(start, count), "fails after")
        writer = OutboxWriter(url)
        writer.open()
        _write_in_batches(writer, actions[start:stop], data)
        writer.close()
        start = data.draw(st.integers(0, stop), "restored from")  # a checkpoint before the failure
    writer = OutboxWriter(url)
    writer.open()
    _write_in_batches(writer, actions[start:], data)
    writer.close()
    rows = _outbox(url)
    assert [a for _, a in rows] == [a.to_json() for a in actions]  # each once, in the order first written
    positions = [p for p, _ in rows]
    assert positions == sorted(set(positions))


@given(st.builds(Action, st.sampled_from(["send", "stage", "handoff"]), st.text(min_size=1), st.text(min_size=1),
                 st.text(min_size=1), st.integers(0, LAST_TIME), st.text(min_size=1),
                 st.dictionaries(st.text().filter(lambda k: k not in {"key", "kind", "journey", "version", "lead",
                                                                      "time"}),
                                 st.one_of(st.none(), st.integers(), st.text()), max_size=4)))
def test_an_action_line_reads_back_as_the_same_action(action):
    assert action_from_line(action_line(action)) == action


def test_two_writers_at_once_lose_nothing_and_keep_each_leads_order(pg_server):
    """Two workers, each with its own leads and connection, replaying part of their work while the other
    writes: every key once; a lead's actions in the order produced; positions only grow."""
    url = pg_server.create_schema("coltiva", "sink_two")
    work = {w: [_action(f"W{w}-L{n % 5}", n) for n in range(150)] for w in (0, 1)}
    errors = []
    together = threading.Barrier(2, timeout=60)  # both write each step at once, so their writes overlap

    def worker(w: int) -> None:
        try:
            writer = OutboxWriter(url)
            writer.open()
            for at in range(0, 100, 4):  # batches of 4 actions
                together.wait()
                writer.write([action_line(a) for a in work[w][at:at + 4]])
            writer.close()  # a failure; restored from a checkpoint at action 60
            writer = OutboxWriter(url)
            writer.open()
            for at in range(60, 150, 3):
                together.wait()
                writer.write([action_line(a) for a in work[w][at:at + 3]])
            writer.close()
        except BaseException as err:  # shown by the assertion below
            together.abort()
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(w,)) for w in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    rows = [a for _, a in _outbox(url)]
    keys = [a["key"] for a in rows]
    assert len(keys) == len(set(keys)) == 300
    for w in (0, 1):
        for n in range(5):
            lead = f"W{w}-L{n}"
            assert [a for a in rows if a["lead"] == lead] == [a.to_json() for a in work[w] if a.lead == lead]
    writers = [a["lead"][:2] for a in rows]
    assert writers != sorted(writers)  # interleaved: the writes really overlapped
