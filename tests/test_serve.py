"""`coltiva serve` for real: uvicorn on loopback, httpx clients, SIGKILL mid-load; the store equals `coltiva run`."""

import asyncio
import json
import os
import signal
import threading

import httpx

from coltiva.sample import generate
from engine.events import Event, parse_event
from engine.store import Store

from .service_helpers import Server, by_lead, coltiva, run_file, same_meaning, wait_gone

CLIENTS = 50
TICK = "2026-06-01T00:00:00Z"


def _client_batches(lines, clients=CLIENTS, size=7):
    """Each client gets its own leads; it sends their events in order, `size` lines a request."""
    groups = sorted(by_lead(lines).items())
    per_client = [[] for _ in range(clients)]
    for n, (_lead, lead_lines) in enumerate(groups):
        per_client[n % clients].extend(lead_lines)
    return [[c[i:i + size] for i in range(0, len(c), size)] for c in per_client]


async def _post_all(base, batches_per_client, acked, stop_after=None, on_threshold=None, refused=None):
    """Every client posts its batches in order; acked[client] counts the batches answered 200.

    A 400 names the lines that are not events: the client drops them (into `refused`) and sends the rest."""
    total = 0

    async def client(n, batches):
        nonlocal total
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            for batch in batches[acked[n]:]:
                while True:
                    try:
                        response = await http.post("/events", content=("\n".join(batch) + "\n").encode())
                    except httpx.TransportError:
                        return  # the server died: what was not acknowledged is resent later
                    if response.status_code == 429:  # writer busy: wait as told, then retry
                        await asyncio.sleep(float(response.headers["Retry-After"]) / 10)
                        continue
                    if response.status_code == 400:  # nothing of it was kept: send it again without those lines
                        named = {p["line"] for p in response.json()["problems"]}
                        assert named, response.text
                        if refused is not None:
                            refused.update(line for i, line in enumerate(batch, 1) if i in named)
                        batch = [line for i, line in enumerate(batch, 1) if i not in named]
                        continue
                    assert response.status_code == 200, response.text
                    break
                acked[n] += 1
                total += 1
                if stop_after is not None and total == stop_after:
                    on_threshold()

    await asyncio.gather(*(client(n, b) for n, b in enumerate(batches_per_client)))


def test_fifty_concurrent_clients_give_the_store_of_coltiva_run(tmp_path):
    lines = generate(leads=120, days=60, seed=11)
    batches = _client_batches(lines)
    acked = [0] * CLIENTS
    refused: set = set()
    # a tiny lead cache: the writer drops records all the time and reloads them; the meaning must not change
    (tmp_path / "coltiva.toml").write_text("[limits]\ncache_leads = 7\n")
    with Server(tmp_path, "--config", str(tmp_path / "coltiva.toml")) as server:
        asyncio.run(_post_all(server.base, batches, acked, refused=refused))
        assert acked == [len(b) for b in batches]
        ticked = httpx.post(server.base + "/tick", params={"now": TICK}, timeout=60).json()
        assert ticked["ticked_leads"] > 0
        aside = httpx.get(server.base + "/quarantine").text.splitlines()
        explained = httpx.get(server.base + "/explain/lead-0001").json()
        logs = server.logs()
        assert server.stop() == 0
    commits = [r for r in logs if r.get("message") == "request" and r["path"] == "/events" and r["status"] == 200]
    assert len(commits) == sum(len(b) for b in batches)
    # the whole sample, malformed lines too, through `coltiva run`: it applies exactly what the service applied
    reference = run_file(tmp_path, lines, tick=TICK)
    same_meaning(server.db, reference)
    # the sample's five malformed lines: four are not events (refused with 400 by the service, kept aside by
    # `coltiva run`), one has a type no journey reacts to (kept aside by both)
    with Store(reference) as store:
        run_aside = {raw for _source, _line, _reason, raw in store.dump()["quarantine"]}
    assert len(refused) == 4 and refused <= run_aside
    assert len(aside) == 1 and json.loads(aside[0])["reason"].startswith("unknown event type")
    assert explained == json.loads(coltiva("explain", "lead-0001", "--db", reference, "--format", "json").stdout)


def test_sigkill_mid_load_then_resend_what_was_not_acknowledged(tmp_path):
    lines = generate(leads=100, days=60, seed=23)
    batches = _client_batches(lines, size=4)
    acked = [0] * CLIENTS
    refused: set = set()
    server = Server(tmp_path).start()
    writer = server.children()
    assert len(writer) == 1, "the writer works in a process of its own (docs/service.md)"
    killed = threading.Event()

    def kill():
        os.kill(server.proc.pid, signal.SIGKILL)  # no drain, no goodbye: the process is gone mid-commit
        killed.set()

    asyncio.run(_post_all(server.base, batches, acked, stop_after=sum(len(b) for b in batches) // 3,
                          on_threshold=kill, refused=refused))
    assert killed.is_set()
    server.proc.wait(timeout=60)
    server.proc.stdout.close()
    wait_gone(writer)  # the kernel ends the writer with the server: its transaction in flight is rolled back
    assert sum(acked) < sum(len(b) for b in batches), "the kill came after everything was acknowledged"
    # 2xx means committed: every event of every acknowledged batch is in the store the kill left
    with Store(server.db) as store:
        dump = store.dump()
    kept = {row[1] for row in dump["inputs"] if row[0] == "event"}
    aside = {row[3] for row in dump["quarantine"]}
    for n, client_batches in enumerate(batches):
        for batch in client_batches[:acked[n]]:
            for line in batch:
                event = parse_event(line)
                assert line in refused or line in aside or (isinstance(event, Event) and event.id in kept), \
                    f"acknowledged, lost: {line}"
    # restart on the same store; every client resends from its first unacknowledged batch
    with Server(tmp_path) as again:
        asyncio.run(_post_all(again.base, batches, acked, refused=refused))
        assert acked == [len(b) for b in batches]
        ticked = httpx.post(again.base + "/tick", params={"now": TICK}, timeout=60).json()
        assert ticked["ticked_leads"] > 0
    same_meaning(server.db, run_file(tmp_path, lines, tick=TICK))
