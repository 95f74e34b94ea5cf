"""Group commit is a law, not a hope: any split of the same lines into requests gives the store `run_lines` gives."""

from hypothesis import given, settings
from hypothesis import strategies as st

from coltiva.sample import generate
from dsl.loader import load_journey
from engine.compiler import compile_journey
from engine.events import parse_event
from engine.runner import ReadLines, Runner
from engine.store import Store

from .service_helpers import JOURNEY

LINES = generate(leads=12, days=50, seed=9)
LOADED = load_journey(JOURNEY)
CJ = compile_journey(LOADED.journey, LOADED.diagnostics)


def _store():
    store = Store(":memory:")
    store.register(CJ, LOADED.sources)
    return store


def _read(lines, known_types) -> ReadLines:
    numbered = [(n, line) for n, line in enumerate(lines, 1) if line.strip()]
    return ReadLines(numbered, [parse_event(line, known_types) for _, line in numbered])


def _meaning(store):
    dump = store.dump()
    dump["quarantine"] = sorted((reason, raw) for _source, _line, reason, raw in dump["quarantine"])
    return dump


@settings(max_examples=30, deadline=None)
@given(cuts=st.lists(st.integers(0, len(LINES)), max_size=12), groups=st.lists(st.integers(1, 5), max_size=12),
       batch=st.sampled_from([1, 3, 5000]), read=st.booleans())
def test_any_split_into_requests_and_groups_gives_the_store_of_one_run(cuts, groups, batch, read):
    """`read`: the requests' lines come already read (ReadLines), as POST /events gives them to the writer."""
    bounds = sorted({0, len(LINES), *cuts})
    requests = [(LINES[a:b], f"request {n}") for n, (a, b) in enumerate(zip(bounds, bounds[1:]))]
    with _store() as reference, _store() as grouped:
        whole = Runner(reference, [CJ], batch_size=batch).run_lines(LINES, "file")
        runner = Runner(grouped, [CJ], batch_size=batch)
        if read:
            requests = [(_read(lines, runner.known_types), source) for lines, source in requests]
        summaries, i = [], 0
        for size in [*groups, len(requests)]:  # the writer takes the waiting requests a group at a time
            summaries += runner.run_requests(requests[i:i + size])
            i += size
        assert len(summaries) == len(requests)
        for field in ("lines", "applied", "duplicates", "quarantined"):
            assert sum(getattr(s, field) for s in summaries) == getattr(whole, field)
        assert _meaning(grouped) == _meaning(reference)
        before = _meaning(grouped)
        again = runner.run_requests(requests)  # a client that resends everything: nothing applied twice
        assert sum(s.applied for s in again) == 0 and _meaning(grouped) == before


def test_a_failed_group_commit_keeps_nothing_and_the_next_one_starts_from_the_truth():
    with _store() as store:
        runner = Runner(store, [CJ])
        runner.run_requests([(LINES[:40], "first")])
        kept = _meaning(store)
        real_write = store.write_batch

        def disk_full(**_writes):
            raise OSError("disk full")

        store.write_batch = disk_full
        try:
            runner.run_requests([(LINES[40:80], "a"), (LINES[80:120], "b")])
            raise AssertionError("the commit should have failed")
        except OSError:
            pass
        store.write_batch = real_write
        assert _meaning(store) == kept
        runner.run_requests([(LINES[40:], "retry")])
        with _store() as reference:
            Runner(reference, [CJ]).run_lines(LINES, "file")
            assert _meaning(store) == _meaning(reference)


def test_the_writer_takes_every_request_waiting_up_to_group_lines_in_one_commit(tmp_path):
    """A real service whose writer is held (another process holds SQLite's write lock) while 21 requests
    queue: once free, it commits the waiting ones together, `group_lines` lines at most a group."""
    import asyncio
    import json
    import sqlite3

    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    from .service_helpers import Server

    def body(n):
        return ("\n".join(json.dumps({"id": f"g{n}-{i}", "lead": f"g{n}", "type": "page.visited",
                                      "time": "2026-01-05T09:00:00Z"}) for i in range(5)) + "\n").encode()

    def metrics(text):
        return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}

    for group_lines, groups in ((100_000, 1), (10, 10)):  # 20 requests of 5 lines: one group, or ten of two
        (tmp_path / f"g{group_lines}.toml").write_text(f"[limits]\ngroup_lines = {group_lines}\n")
        with Server(tmp_path, "--config", str(tmp_path / f"g{group_lines}.toml"), db=f"g{group_lines}.db") as server:
            lock = sqlite3.connect(server.db, isolation_level=None)
            lock.execute("BEGIN IMMEDIATE")
            answers: list = []
            counts: list = []

            async def post_all():
                async with httpx.AsyncClient(base_url=server.base, timeout=60) as http:
                    async def wait_queue(depth, lines):  # bounded: never hangs
                        for _ in range(1000):
                            m = metrics((await http.get("/metrics")).text)
                            if (m["coltiva_writer_queue_depth"], m["coltiva_writer_queue_lines"]) == (depth, lines):
                                return
                            await asyncio.sleep(0.01)
                        raise AssertionError(f"the queue never held {depth} requests")

                    first = asyncio.ensure_future(http.post("/events", content=body(0)))
                    await wait_queue(0, 5)  # the writer took it, and is stuck on the lock
                    rest = [asyncio.ensure_future(http.post("/events", content=body(n))) for n in range(1, 21)]
                    await wait_queue(20, 105)  # all twenty wait behind it
                    lock.execute("ROLLBACK")
                    lock.close()
                    answers.extend(await asyncio.gather(first, *rest))
                    m = metrics((await http.get("/metrics")).text)
                    counts.append((m["coltiva_commit_requests_count"], m["coltiva_commit_requests_sum"]))

            asyncio.run(post_all())
        (count, total), = counts
        assert [a.json()["applied"] for a in answers] == [5] * 21
        assert (count, total) == (1 + groups, 21), (group_lines, count, total)
