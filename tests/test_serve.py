"""`coltiva serve` over a real socket: events in over HTTP give the same store as `coltiva run`."""

import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request

from coltiva.sample import generate
from engine.events import Event, parse_event
from engine.store import Store

JOURNEY = "journeys/demand_generation.journey"


def _post(url, body: bytes):
    request = urllib.request.Request(url, data=body, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, response.read().decode()


def _get(url):
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.status, response.read().decode()


def test_events_over_http_equal_a_run_from_a_file(tmp_path):
    lines = generate(leads=40, days=60, seed=11)
    valid = next(line for line in lines if isinstance(parse_event(line), Event))
    server = subprocess.Popen(
        [sys.executable, "-m", "coltiva.cli", "serve", JOURNEY, "--db", str(tmp_path / "http.db"), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        banner = server.stdout.readline()
        assert banner.startswith("listening on http://127.0.0.1:"), banner
        base = banner.split()[-1]
        assert _get(base + "/health") == (200, "ok\n")
        half = len(lines) // 2
        status, body = _post(base + "/events", ("\n".join(lines[:half]) + "\n").encode())
        first = json.loads(body)
        assert status == 200 and first["applied"] > 0
        status, body = _post(base + "/events", ("\n".join(lines[half:]) + "\n").encode())
        second = json.loads(body)
        assert first["quarantined"] + second["quarantined"] == 5  # the sample's malformed lines
        again = json.loads(_post(base + "/events", (valid + "\n").encode())[1])
        assert again["duplicates"] == 1 and again["applied"] == 0
        ticked = json.loads(_post(base + "/tick?now=2026-06-01T00:00:00Z", b"")[1])
        assert ticked["ticked_leads"] > 0
        counts = json.loads(_get(base + "/leads")[1])
        assert sum(counts["Demand generation (B2B)"].values()) == 40
        actions = [json.loads(x) for x in _get(base + "/actions?after=0")[1].splitlines()]
        assert actions and [a["seq"] for a in actions] == sorted(a["seq"] for a in actions)
        try:
            _post(base + "/tick?now=yesterday", b"")
            raise AssertionError("a bad time must be refused")
        except urllib.error.HTTPError as err:
            assert err.code == 400 and "ISO 8601" in json.loads(err.read())["error"]
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    assert server.returncode == 0
    assert "Traceback" not in server.stderr.read()

    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(lines) + "\n" + valid + "\n")
    for args in (["run", JOURNEY, "--events", str(events)], ["tick", "--now", "2026-06-01T00:00:00Z"]):
        subprocess.run([sys.executable, "-m", "coltiva.cli", *args, "--db", str(tmp_path / "file.db")],
                       check=True, capture_output=True)
    with Store(tmp_path / "http.db") as a, Store(tmp_path / "file.db") as b:
        da, db = a.dump(), b.dump()
    assert da["leads"] == db["leads"]
    assert da["outbox"] == db["outbox"]
