"""A real `coltiva serve` in a subprocess on loopback, and what the service tests share."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import httpx

from engine.events import Event, parse_event
from engine.store import Store

from .conftest import ROOT

JOURNEY = str(ROOT / "journeys" / "demand_generation.journey")


class Server:
    """`coltiva serve --port 0` started for real; the port is read from the line it prints."""

    def __init__(self, tmp: Path, *args: str, db: str | None = "svc.db", journeys=(JOURNEY,),
                 clock: str | None = "manual"):
        self.tmp = Path(tmp)
        self.db = str(self.tmp / db) if db else None
        self.args = [*journeys, *(["--db", self.db] if db else []), "--port", "0",
                     *(["--clock", clock] if clock else []), *args]
        self.log = self.tmp / "serve.log"
        self.proc: subprocess.Popen | None = None
        self.base = ""

    def start(self) -> "Server":
        err = open(self.log, "a")
        self.proc = subprocess.Popen([sys.executable, "-m", "coltiva.cli", "serve", *self.args], cwd=self.tmp,
                                     stdout=subprocess.PIPE, stderr=err, text=True)
        err.close()
        banner = self.proc.stdout.readline()
        assert banner.startswith("listening on http://127.0.0.1:"), (banner, self.log.read_text())
        self.base = banner.split()[-1]
        # the socket is bound before the app starts: the first request waits in the backlog until it is ready
        response = httpx.get(self.base + "/health", timeout=60)
        assert response.status_code == 200, response.text
        return self

    def stop(self, sig=signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=60)
        self.proc.stdout.close()
        return code

    def children(self) -> list[int]:
        """The server's child processes now (its writer), from /proc."""
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(p) for p in path.read_text().split()] if path.exists() else []

    def kill(self) -> None:
        """SIGKILL the server, as a crash: its writer's process must end with it (it holds the store's lock)."""
        children = self.children()
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=60)
        self.proc.stdout.close()
        wait_gone(children)

    def logs(self) -> list[dict]:
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.startswith("{")]

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            self.stop()


def _body(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def _without_refused(lines: list[str], response: httpx.Response) -> list[str] | None:
    """The lines a 400 did not name (what a client sends again), or None if the answer is not such a 400."""
    if response.status_code != 400 or "problems" not in response.json():
        return None
    refused = {p["line"] for p in response.json()["problems"]}
    assert refused, response.text
    return [line for n, line in enumerate(lines, 1) if n not in refused]


def post_events(http: httpx.Client, lines: list[str], **kw) -> httpx.Response:
    """POST lines as JSON Lines; on a 400 naming lines that are not events, send the others again
    (what docs/service.md tells a client to do), until the answer is not such a 400."""
    while True:
        response = http.post("/events", content=_body(lines), **kw)
        rest = _without_refused(lines, response)
        if rest is None:
            return response
        lines = rest


async def apost_events(http: httpx.AsyncClient, lines: list[str], **kw) -> httpx.Response:
    """post_events for an async client."""
    while True:
        response = await http.post("/events", content=_body(lines), **kw)
        rest = _without_refused(lines, response)
        if rest is None:
            return response
        lines = rest


def events_only(lines: list[str]) -> list[str]:
    """The lines the engine reads as events (unknown types included): what a tests posts when the 400 is not its subject."""
    return [line for line in lines if isinstance(parse_event(line), Event)]


def coltiva(*args: str, cwd=None, check=True, input=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "coltiva.cli", *args], cwd=cwd, capture_output=True, text=True,
                          check=check, input=input)


def run_file(tmp: Path, lines: list[str], db: str = "file.db", tick: str | None = None) -> str:
    """The same events through `coltiva run` (and one `coltiva tick`): the reference store."""
    events = Path(tmp) / f"{db}.jsonl"
    events.write_text("\n".join(lines) + "\n")
    path = str(Path(tmp) / db)
    coltiva("run", JOURNEY, "--events", str(events), "--db", path)
    if tick:
        coltiva("tick", "--now", tick, "--db", path, "--force")
    return path


def by_lead(lines: list[str]) -> dict[str, list[str]]:
    """Lines grouped by lead, in file order; lines without a readable lead go under ''."""
    out: dict[str, list[str]] = defaultdict(list)
    for line in lines:
        try:
            lead = json.loads(line).get("lead", "")
        except (ValueError, AttributeError):
            lead = ""
        out[str(lead)].append(line)
    return out


def same_meaning(a: str, b: str) -> None:
    """Two stores agree: equal lead records, equal actions per lead (keys and content, in order), each once."""
    with Store(a) as sa, Store(b) as sb:
        da, db = sa.dump(), sb.dump()
    assert da["leads"] == db["leads"]

    def per_lead(dump):
        out = defaultdict(list)
        for key, _journey, lead, _kind, _time, text in dump["outbox"]:
            action = json.loads(text)
            out[lead].append(action)
        return out

    assert per_lead(da) == per_lead(db)
    keys = [row[0] for row in da["outbox"]]
    assert len(keys) == len(set(keys))
    applied = sorted(row[1] for row in da["inputs"] if row[0] == "event")
    assert applied == sorted(row[1] for row in db["inputs"] if row[0] == "event")


class Receiver:
    """A real webhook receiver on loopback (threaded): fails the first `fail_first` calls, is slow on some.

    Every call is recorded with whether its signature verifies, so tests judge what arrived.
    """

    def __init__(self, secret: str, fail_first: int = 0, slow_every: int = 0, slow_seconds: float = 0.0,
                 always_fail: bool = False, hold=None, fail_lead: str | None = None):
        """`hold(body)`: calls it is true for wait until `release` is set; `fail_lead`: that lead's calls fail."""
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.secret, self.fail_first, self.always_fail = secret, fail_first, always_fail
        self.release = threading.Event()
        self.calls: list[dict] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                import hashlib
                import hmac
                import time as _time

                body = self.rfile.read(int(self.headers["Content-Length"]))
                stamp = self.headers["X-Coltiva-Timestamp"]
                mac = hmac.new(receiver.secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
                with receiver.lock:
                    n = len(receiver.calls)
                    call = {"n": n, "key": self.headers["Idempotency-Key"], "body": json.loads(body),
                            "attempt": int(self.headers["X-Coltiva-Attempt"]), "path": self.path,
                            "signed": hmac.compare_digest("sha256=" + mac, self.headers["X-Coltiva-Signature"])}
                    receiver.calls.append(call)
                if hold is not None and hold(call["body"]):
                    call["held"] = True
                    receiver.release.wait(60)  # bounded: a test that forgets to release fails, never hangs
                fail = receiver.always_fail or n < receiver.fail_first or call["body"].get("lead") == fail_lead
                slow = bool(slow_every) and n % slow_every == slow_every - 1
                if slow:  # longer than the webhook's timeout: the sender gives up, the call counts as failed
                    _time.sleep(slow_seconds)
                call["answered"] = "too late" if slow else 500 if fail else 200
                self.send_response(200 if slow else call["answered"])
                self.send_header("Content-Length", "0")
                self.end_headers()

        class Server(ThreadingHTTPServer):
            request_queue_size = 256  # a real receiver's backlog: concurrent deliveries are not reset

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def delivered(self, path: str | None = None) -> list[dict]:
        with self.lock:
            return [c for c in self.calls if c.get("answered") == 200 and (path is None or c["path"] == path)]


def wait_gone(pids: list[int]) -> None:
    """Wait until these processes have ended (a server's writer, after the server was killed)."""
    deadline = time.monotonic() + 20
    while any(_alive(pid) for pid in pids):
        assert time.monotonic() < deadline, f"the writer's process outlived the server: {pids}"
        time.sleep(0.01)


def _alive(pid: int) -> bool:
    """A process that exists and is not a zombie (an orphan is reaped by init: gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False
