"""A real `coltiva serve` in a subprocess on loopback, and what the service tests share."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import httpx

from engine.store import Store

from .conftest import ROOT

JOURNEY = str(ROOT / "journeys" / "demand_generation.journey")


class Server:
    """`coltiva serve --port 0` started for real; the port is read from the line it prints."""

    def __init__(self, tmp: Path, *args: str, db: str = "svc.db", journeys=(JOURNEY,), clock: str = "manual"):
        self.tmp = Path(tmp)
        self.db = str(self.tmp / db)
        self.args = [*journeys, "--db", self.db, "--port", "0", *(["--clock", clock] if clock else []), *args]
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

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=60)
        self.proc.stdout.close()

    def logs(self) -> list[dict]:
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.startswith("{")]

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            self.stop()


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
