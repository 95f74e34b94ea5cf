"""The service's HTTP contract on a real uvicorn: API keys and scopes, JSON errors, limits, 429, deadlines."""

import asyncio
import json
import socket
import threading

import httpx
import pytest

from coltiva.sample import generate

from .service_helpers import events_only, post_events, JOURNEY, Server, coltiva

T0 = "2026-01-05T09:00:00Z"


def _event(n, lead="lead-a", kind="page.visited", time=T0):
    return json.dumps({"id": f"e-{n}", "lead": lead, "type": kind, "time": time})


def _json_error(response, status):
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert isinstance(body["error"], str) and body["error"], body
    return body["error"]


def _config(tmp_path, text):
    path = tmp_path / "coltiva.toml"
    path.write_text(text)
    return str(path)


@pytest.fixture
def keyed(tmp_path):
    tokens = {}
    for name, scopes in (("writer", ["events:write"]), ("reader", ["actions:read"]), ("root", ["admin"])):
        out = coltiva("keys", "create", name, *[x for s in scopes for x in ("--scope", s)], "--keys", "keys.json",
                      cwd=tmp_path)
        tokens[name] = out.stdout.strip()
    with Server(tmp_path, "--keys", "keys.json") as server:
        yield server, tokens


def test_every_endpoint_but_health_needs_a_key_with_its_scope(keyed, tmp_path):
    server, tokens = keyed
    base = server.base

    def auth(name):
        return {"Authorization": f"Bearer {tokens[name]}"}

    assert httpx.get(base + "/health").status_code == 200
    for path in ("/leads", "/actions", "/quarantine", "/versions", "/metrics", "/openapi.json", "/schema/events.json"):
        _json_error(httpx.get(base + path), 401)
        _json_error(httpx.get(base + path, headers={"Authorization": "Bearer colt_nope_nope"}), 401)
        _json_error(httpx.get(base + path, headers=auth("writer")), 403)
        assert httpx.get(base + path, headers=auth("reader")).status_code == 200
        assert httpx.get(base + path, headers=auth("root")).status_code == 200
    (version,) = httpx.get(base + "/versions", headers=auth("reader")).json()
    assert version["journey"] == "Demand generation (B2B)" and version["current"] and len(version["version"]) == 12
    _json_error(httpx.post(base + "/events", content=_event(1)), 401)
    _json_error(httpx.post(base + "/events", content=_event(1), headers=auth("reader")), 403)
    assert httpx.post(base + "/events", content=_event(1), headers=auth("writer")).json()["applied"] == 1
    _json_error(httpx.post(base + "/tick", params={"now": T0}, headers=auth("writer")), 403)
    assert httpx.post(base + "/tick", params={"now": T0}, headers=auth("root")).status_code == 200
    # revoked on the command line: the running service refuses the key at once (it re-reads the file)
    coltiva("keys", "revoke", "writer", "--keys", "keys.json", cwd=tmp_path)
    _json_error(httpx.post(base + "/events", content=_event(2), headers=auth("writer")), 401)
    keys = json.loads((tmp_path / "keys.json").read_text())["keys"]
    # a token is colt_<id>_<secret>, and the secret itself may contain `_`
    assert all(tokens[k["name"]].split("_", 2)[2] not in json.dumps(k) for k in keys), "a secret stored in clear"
    assert (tmp_path / "keys.json").stat().st_mode & 0o777 == 0o600
    # every key revoked: the service is locked, it never falls back to open access
    for name in ("reader", "root"):
        coltiva("keys", "revoke", name, "--keys", "keys.json", cwd=tmp_path)
    _json_error(httpx.get(base + "/leads"), 401)
    _json_error(httpx.get(base + "/leads", headers=auth("root")), 401)


def test_listening_beyond_loopback_needs_keys(tmp_path):
    refused = coltiva("serve", JOURNEY, "--db", str(tmp_path / "s.db"), "--host", "0.0.0.0", "--port", "0",
                      cwd=tmp_path, check=False)
    assert refused.returncode == 1 and "needs API keys" in refused.stderr and "Traceback" not in refused.stderr


def test_without_keys_loopback_is_open_but_never_to_a_web_page(tmp_path):
    with Server(tmp_path) as server:
        assert httpx.post(server.base + "/events", content=_event(1)).status_code == 200
        blocked = httpx.post(server.base + "/events", content=_event(2), headers={"Origin": "http://evil.example"})
        _json_error(blocked, 403)
        # a browser that sends no Origin still says where the request comes from
        cross = httpx.post(server.base + "/events", content=_event(3), headers={"Sec-Fetch-Site": "cross-site"})
        _json_error(cross, 403)
        assert httpx.post(server.base + "/events", content=_event(4),
                          headers={"Sec-Fetch-Site": "none"}).status_code == 200  # typed by the user: allowed


def test_errors_are_json_never_html(tmp_path):
    config = _config(tmp_path, "[limits]\nmax_body_mb = 0.01\n")
    with Server(tmp_path, "--config", config) as server:
        base = server.base
        _json_error(httpx.get(base + "/nowhere"), 404)
        _json_error(httpx.get(base + "/events"), 405)
        _json_error(httpx.post(base + "/events", content=b"x" * 20_000), 413)

        def chunks():  # no Content-Length: the limit holds while the body streams
            for _ in range(40):
                yield b"y" * 1000

        _json_error(httpx.post(base + "/events", content=chunks()), 413)
        _json_error(httpx.get(base + "/actions", params={"after": -1}), 400)
        _json_error(httpx.get(base + "/actions", params={"limit": 0}), 400)
        _json_error(httpx.get(base + "/actions", params={"after": "x"}), 400)
        assert "ISO 8601" in _json_error(httpx.post(base + "/tick", params={"now": "yesterday"}), 400)
        _json_error(httpx.post(base + "/tick"), 400)
        _json_error(httpx.get(base + "/explain/nobody"), 404)
        assert httpx.post(base + "/tick", params={"now": "2026-02-01T00:00:00Z"}).status_code == 200
        assert "backwards" in _json_error(httpx.post(base + "/tick", params={"now": "2026-01-01T00:00:00Z"}), 409)
        _json_error(httpx.post(base + "/segment", content=b"{}"), 400)
        _json_error(httpx.post(base + "/segment", content=b"not json"), 400)
    assert "Traceback" not in server.log.read_text()


def test_a_request_is_answered_after_its_commit_with_its_own_summary(tmp_path):
    """Twenty concurrent requests carry the same five events: applied exactly once, the rest duplicates."""
    body = ("\n".join(_event(n, lead=f"lead-{n}") for n in range(5)) + "\n").encode()

    async def post_all(base):
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            return await asyncio.gather(*(http.post("/events", content=body) for _ in range(20)))

    with Server(tmp_path) as server:
        answers = [r.json() for r in asyncio.run(post_all(server.base))]
        lines = httpx.get(server.base + "/actions", params={"limit": 100_000}).text.splitlines()
    assert sum(a["applied"] for a in answers) == 5
    assert sum(a["duplicates"] for a in answers) == 95
    assert len({json.loads(x)["key"] for x in lines}) == len(lines) > 0


def test_actions_are_paged_by_position(tmp_path):
    lines = generate(leads=120, days=60, seed=5)
    with Server(tmp_path) as server, httpx.Client(base_url=server.base, timeout=60) as http:
        post_events(http, lines)
        whole = http.get("/actions", params={"limit": 100_000})
        # streamed page by page as it is read: no Content-Length, so the answer was never built whole
        assert whole.headers["transfer-encoding"] == "chunked" and "content-length" not in whole.headers
        everything = [json.loads(x) for x in whole.text.splitlines()]
        paged, after = [], 0
        while True:
            page = [json.loads(x) for x in http.get("/actions", params={"after": after, "limit": 97}).text
                    .splitlines()]
            if not page:
                break
            assert len(page) <= 97
            paged += page
            after = page[-1]["seq"]
        sends = http.get("/actions", params={"kind": "send", "limit": 100_000}).text.splitlines()
        default = http.get("/actions").text.splitlines()  # docs/events.md: at most 1,000 unless told
    assert len(default) == min(1000, len(everything))
    assert paged == everything and len(everything) > 700  # more than one page of the reader (500)
    assert [a["seq"] for a in everything] == sorted({a["seq"] for a in everything})
    assert sends and all(json.loads(x)["kind"] == "send" for x in sends)


def test_a_full_queue_answers_429_with_retry_after(tmp_path):
    config = _config(tmp_path, "[limits]\nqueue_lines = 10\n")
    body = ("\n".join(_event(n, lead=f"l-{n}") for n in range(10)) + "\n").encode()

    async def flood(base):
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            return await asyncio.gather(*(http.post("/events", content=body) for _ in range(50)))

    with Server(tmp_path, "--config", config) as server:
        answers = asyncio.run(flood(server.base))
    busy = [r for r in answers if r.status_code == 429]
    assert busy, [r.status_code for r in answers]
    assert {r.status_code for r in answers} <= {200, 429}
    for r in busy:
        _json_error(r, 429)
        assert int(r.headers["Retry-After"]) >= 1


def test_a_slow_client_and_a_flood_do_not_hold_health(tmp_path):
    config = _config(tmp_path, "[limits]\nread_deadline = 8\n")
    with Server(tmp_path, "--config", config) as server:
        host, port = server.base.removeprefix("http://").split(":")
        slow_answer: list[bytes] = []
        slow_started, slow_done = threading.Event(), threading.Event()

        def slow_client():  # a byte a second, for far longer than the deadline
            with socket.create_connection((host, int(port))) as s:
                s.sendall(b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
                slow_started.set()
                s.settimeout(1)
                for _ in range(100):
                    try:
                        s.sendall(b"{")
                        data = s.recv(4096)
                        if data:
                            s.settimeout(10)
                            while b"}" not in data and (chunk := s.recv(4096)):
                                data += chunk
                            slow_answer.append(data)
                            break
                    except socket.timeout:
                        continue
                    except OSError:
                        break
            slow_done.set()

        flooding = threading.Event()
        stop = threading.Event()
        flood_requests = []

        async def flood():
            lines = events_only(generate(leads=100, days=30, seed=3))
            body = ("\n".join(lines) + "\n").encode()

            async def one(http):
                while not stop.is_set():
                    r = await http.post("/events", content=body)
                    flood_requests.append(r.status_code)
                    flooding.set()

            async with httpx.AsyncClient(base_url=server.base, timeout=60) as http:
                await asyncio.gather(*(one(http) for _ in range(20)))

        flooder = threading.Thread(target=lambda: asyncio.run(flood()))
        flooder.start()
        flooding.wait(120)  # the flood is on; then the slow client starts
        thread = threading.Thread(target=slow_client)
        thread.start()
        slow_started.wait(30)
        for _ in range(3):
            health = httpx.get(server.base + "/health", timeout=30)
            assert health.status_code == 200 and health.json()["status"] == "ok"
            assert not slow_done.is_set(), "health answered only after the slow client was done"
            assert not stop.is_set()
        stop.set()
        flooder.join(120)
        thread.join(120)
    assert flood_requests and set(flood_requests) <= {200, 429}
    assert slow_answer and b" 408 " in slow_answer[0].split(b"\r\n")[0]
    assert b'"error"' in slow_answer[0]


def _post_in_thread(base, body):
    """POST /events from a thread; the answer lands in the returned list."""
    out: list = []

    def go():
        out.append(httpx.post(base + "/events", content=body, timeout=60))

    thread = threading.Thread(target=go)
    thread.start()
    return thread, out


def test_a_write_not_committed_within_the_deadline_gets_503_and_never_holds_the_reads(tmp_path):
    """Another process holds SQLite's write lock: the writer is stuck, so requests time out with 503.

    The one the writer had taken is committed once the lock goes ("it may still be"); the one still
    queued is dropped ("nothing of it was kept"): resending it applies it, exactly once.
    """
    import sqlite3

    config = _config(tmp_path, "[limits]\ncommit_deadline = 0.5\n")
    taken = ("\n".join(_event(n, lead="held-a") for n in range(3)) + "\n").encode()
    queued = ("\n".join(_event(n, lead="held-b") for n in range(10, 14)) + "\n").encode()
    with Server(tmp_path, "--config", config) as server:
        base = server.base
        assert httpx.post(base + "/events", content=_event(99, lead="warm")).status_code == 200
        lock = sqlite3.connect(server.db, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")  # busy_timeout of the writer's connection: 5 s, far beyond the deadline
        try:
            first, first_out = _post_in_thread(base, taken)
            first.join(30)
            second, second_out = _post_in_thread(base, queued)  # the writer is still stuck on the first
            for _ in range(3):  # the reads and /health never wait for the writer
                assert httpx.get(base + "/health", timeout=30).status_code == 200
                assert "Demand generation (B2B)" in httpx.get(base + "/leads", timeout=30).json()
            second.join(30)
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        assert "may still be" in _json_error(first_out[0], 503)
        assert "nothing of it was kept" in _json_error(second_out[0], 503)
        # the writer is free again: a request answered 200 is committed after the one it had taken
        assert httpx.post(base + "/events", content=_event(100, lead="after")).json()["applied"] == 1
        assert httpx.get(base + "/explain/held-a").status_code == 200
        _json_error(httpx.get(base + "/explain/held-b"), 404)
        again = httpx.post(base + "/events", content=taken + queued).json()
    assert (again["applied"], again["duplicates"]) == (4, 3)
    assert "Traceback" not in server.log.read_text()


def test_a_client_trickling_its_body_holds_only_its_own_request(tmp_path):
    """While one client sends a byte at a time, other writes are committed and answered."""
    config = _config(tmp_path, "[limits]\nread_deadline = 5\n")
    with Server(tmp_path, "--config", config) as server:
        host, port = server.base.removeprefix("http://").split(":")
        trickling, done = threading.Event(), threading.Event()
        answer: list[bytes] = []

        def trickle():
            with socket.create_connection((host, int(port))) as s:
                s.sendall(b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
                trickling.set()
                s.settimeout(0.2)
                data = b""
                for _ in range(300):  # bounded: the 408 comes after read_deadline
                    try:
                        s.sendall(b" ")
                        data += s.recv(4096)
                        if b"}" in data:
                            break
                    except socket.timeout:
                        continue
                    except OSError:
                        break
                answer.append(data)
            done.set()

        thread = threading.Thread(target=trickle)
        thread.start()
        trickling.wait(30)
        for n in range(5):
            r = httpx.post(server.base + "/events", content=_event(n, lead=f"quick-{n}"), timeout=30)
            assert r.status_code == 200 and r.json()["applied"] == 1
            assert not done.is_set(), "a write waited for the trickling client"
        thread.join(60)
    assert answer and b" 408 " in answer[0].split(b"\r\n")[0]
