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
