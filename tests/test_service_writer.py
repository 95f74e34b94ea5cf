"""The writer is a process of its own (docs/service.md, One writer): it gives the store `coltiva run` gives,
and a writer's process killed under a running service stops the service instead of leaving it half alive."""

import os
import signal

import httpx

from coltiva.sample import generate

from .service_helpers import Server, post_events, run_file, same_meaning, wait_gone

TICK = "2026-04-01T00:00:00Z"


def _feed(server: Server, lines: list[str]) -> None:
    with httpx.Client(base_url=server.base, timeout=60) as http:
        for n in range(0, len(lines), 150):
            assert post_events(http, lines[n:n + 150]).status_code == 200
        assert http.post("/tick", params={"now": TICK}).status_code == 200


def test_the_writer_in_its_process_gives_the_store_run_gives(tmp_path):
    lines = generate(leads=40, days=60, seed=5)
    with Server(tmp_path) as server:
        assert len(server.children()) == 1
        _feed(server, lines)
    same_meaning(server.db, run_file(tmp_path, lines, tick=TICK))


def test_a_writer_killed_under_the_service_stops_it_with_a_reason(tmp_path):
    lines = generate(leads=20, days=30, seed=9)
    server = Server(tmp_path).start()
    with httpx.Client(base_url=server.base, timeout=60) as http:
        assert post_events(http, lines[:50]).status_code == 200
        (writer,) = server.children()
        os.kill(writer, signal.SIGKILL)
        wait_gone([writer])
        answer = http.post("/events", content=(lines[50] + "\n").encode())
        assert answer.status_code == 503 and "writer's process ended" in answer.json()["error"], answer.text
    assert server.proc.wait(timeout=60) == 1  # stopped by itself, so a supervisor restarts it
    server.proc.stdout.close()
    assert "Traceback" not in server.log.read_text()
    logs = server.logs()
    assert any(r["level"] == "critical" and "writer's process ended" in r["message"] for r in logs), logs
    # nothing half-written: a restart on the same store takes the rest and ends where `coltiva run` does
    with Server(tmp_path) as again:
        _feed(again, lines)
    same_meaning(server.db, run_file(tmp_path, lines, tick=TICK))


def test_a_large_request_among_small_ones_gives_the_store_run_gives(tmp_path):
    """A request of more lines than INLINE_LINES is pickled for the writer in a thread while small requests
    keep coming: every request is answered with its own summary and the store is `coltiva run`'s."""
    import asyncio

    from service.writer import INLINE_LINES

    from .service_helpers import apost_events, by_lead, events_only

    lines = events_only(generate(leads=400, days=90, seed=14))
    leads = sorted(by_lead(lines).items())
    big = [line for _, own in leads[:300] for line in own]  # most leads in one request
    small = [own for _, own in leads[300:]]  # each other lead in requests of its own, concurrently
    assert len(big) > INLINE_LINES, len(big)

    async def post_all(base):
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            async def one_lead(own):
                return [await apost_events(http, own[i:i + 5]) for i in range(0, len(own), 5)]

            answers = await asyncio.gather(apost_events(http, big), *(one_lead(own) for own in small))
        return answers[0], [r for rs in answers[1:] for r in rs]

    with Server(tmp_path) as server:
        first, rest = asyncio.run(post_all(server.base))
        assert first.status_code == 200 and first.json()["lines"] == len(big), first.text
        assert all(r.status_code == 200 for r in rest)
        assert sum(r.json()["lines"] for r in rest) + len(big) == len(lines)
        assert httpx.post(server.base + "/tick", params={"now": TICK}, timeout=60).status_code == 200
    same_meaning(server.db, run_file(tmp_path, lines, tick=TICK))
