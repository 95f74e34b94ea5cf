"""Operating the service: SIGTERM drains and exits 0, Prometheus metrics, JSON logs, coltiva.toml mistakes."""

import asyncio
import json
import os
import signal
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from coltiva.sample import generate
from engine.events import Event, parse_event
from engine.store import Store
from service.config import load_config
from service.errors import ConfigError

from .service_helpers import events_only, post_events, JOURNEY, Server, coltiva


def test_sigterm_answers_the_requests_in_flight_then_exits_0(tmp_path):
    lines = events_only(generate(leads=200, days=60, seed=31))
    chunks = [lines[i:i + 300] for i in range(0, len(lines), 300)]
    server = Server(tmp_path).start()
    answers: list = [None] * len(chunks)

    async def post_all():
        async with httpx.AsyncClient(base_url=server.base, timeout=60) as http:
            async def one(n):
                try:
                    answers[n] = await http.post("/events", content=("\n".join(chunks[n]) + "\n").encode())
                except httpx.TransportError as err:
                    answers[n] = err
                if n == 0:
                    os.kill(server.proc.pid, signal.SIGTERM)

            await asyncio.gather(*(one(n) for n in range(len(chunks))))

    asyncio.run(post_all())
    assert server.proc.wait(timeout=60) == 0
    server.proc.stdout.close()
    statuses = [a.status_code if isinstance(a, httpx.Response) else "gone" for a in answers]
    assert set(statuses) <= {200, "gone"} and statuses.count(200) >= 1
    with Store(server.db) as store:
        kept = {row[1] for row in store.dump()["inputs"] if row[0] == "event"}
    for chunk, answer in zip(chunks, answers):
        if isinstance(answer, httpx.Response):
            events = [e for e in map(parse_event, chunk) if isinstance(e, Event)]
            assert answer.json()["applied"] + answer.json()["duplicates"] <= len(events)
            assert all(e.id in kept for e in events if e.type != "email.opend")
    logs = server.logs()
    assert logs and all({"time", "level", "logger", "message"} <= set(r) for r in logs)
    assert logs[-1]["message"] == "stopped"


def test_metrics_are_prometheus_text_with_the_service_figures(tmp_path):
    lines = generate(leads=30, days=40, seed=8)
    with Server(tmp_path) as server, httpx.Client(base_url=server.base, timeout=60) as http:
        summary = post_events(http, lines).json()
        text = http.get("/metrics").text
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    assert samples[("coltiva_events_total", (("outcome", "applied"),))] == summary["applied"]
    assert samples[("coltiva_events_total", (("outcome", "quarantined"),))] == summary["quarantined"]
    assert samples[("coltiva_writer_queue_depth", ())] == 0
    assert samples[("coltiva_due_leads", ())] >= 0
    assert samples[("coltiva_commit_seconds_count", ())] >= 1
    assert samples[("coltiva_http_requests_total", (("route", "/events"), ("status", "200")))] == 1
    (posted,) = [r for r in server.logs() if r["message"] == "request" and r["path"] == "/events"
                 and r["status"] == 200]
    assert (posted["method"], posted["status"]) == ("POST", 200) and posted["ms"] >= 0


def test_the_lead_cache_stays_bounded_while_the_store_grows(tmp_path):
    """60 leads through a writer that keeps 5 records of each kind: /metrics shows at most 5, the store has all."""
    lines = generate(leads=60, days=20, seed=12)
    (tmp_path / "coltiva.toml").write_text("[limits]\ncache_leads = 5\n")
    # the example journey with a lead score: every lead also gets a lead-wide record
    source = Path(JOURNEY).read_text().replace('journey "Demand generation (B2B)"\n',
                                               'journey "Demand generation (B2B)"\nlead scoring\n  page.visited +1\n')
    (tmp_path / "scored.journey").write_text(source)
    with Server(tmp_path, "--config", str(tmp_path / "coltiva.toml"), journeys=(str(tmp_path / "scored.journey"),)) \
            as server, \
            httpx.Client(base_url=server.base, timeout=60) as http:
        for n in range(0, len(lines), 200):  # several commits, each trims
            assert post_events(http, lines[n:n + 200]).status_code == 200
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for family in text_string_to_metric_families(http.get("/metrics").text) for s in family.samples}
    cached = {labels[0][1]: value for (name, labels), value in samples.items() if name == "coltiva_cached_records"}
    assert set(cached) == {"lead", "lead_wide"} and all(0 < value <= 5 for value in cached.values()), cached
    with Store(server.db) as store:
        dump = store.dump()
    assert len({row[1] for row in dump["leads"]}) > 50 and len(dump["lead_wide"]) > 50


def test_config_mistakes_are_named_not_tracebacks(tmp_path):
    cases = {
        "stores = 'x.db'\n": "unknown key(s) stores",
        "[clock]\nmode = 'sundial'\n": "clock.mode",
        "[[webhooks]]\nurl = 'ftp://x'\nsecret = 's'\n": "webhooks[0].url",
        "[[webhooks]]\nurl = 'http://x'\nsecret_env = 'COLTIVA_NO_SUCH_VAR'\n": "COLTIVA_NO_SUCH_VAR",
        "[limits]\nqueue_lines = 'many'\n": "limits.queue_lines must be a int",
        "[limits]\nmax_body = 3\n": "unknown key(s) limits.max_body",  # a misspelt key is never ignored
        "[server]\nhots = '0.0.0.0'\n": "unknown key(s) server.hots",
        "[limits]\ncommit_deadline = 0\n": "limits.commit_deadline must be above 0",
        "[clock]\nmax_ahead = -1\n": "clock.max_ahead",
        "journeys = [\n": "not valid TOML",
    }
    path = tmp_path / "coltiva.toml"
    for text, message in cases.items():
        path.write_text(text)
        with pytest.raises(ConfigError) as caught:
            load_config(path)
        assert message in str(caught.value), (text, str(caught.value))
    out = coltiva("serve", JOURNEY, "--config", str(path), "--port", "0", cwd=tmp_path, check=False)
    assert out.returncode == 1 and "not valid TOML" in out.stderr and "Traceback" not in out.stderr


def test_a_config_file_alone_starts_the_service(tmp_path):
    (tmp_path / "coltiva.toml").write_text(f"journeys = [{json.dumps(JOURNEY)}]\nstore = 'from-config.db'\n"
                                           "[clock]\nmode = 'manual'\n")
    with Server(tmp_path, "--config", str(tmp_path / "coltiva.toml"), journeys=(), clock=None, db=None) as server:
        assert httpx.post(server.base + "/events", content=json.dumps(
            {"id": 1, "lead": "x", "type": "page.visited", "time": "2026-01-05T09:00:00Z"})).json()["applied"] == 1
    assert (tmp_path / "from-config.db").exists()


def test_the_documented_config_is_a_valid_config(tmp_path, monkeypatch):
    import re

    from .conftest import ROOT

    (block,) = re.findall(r"```toml\n(.*?)```", (ROOT / "docs" / "service.md").read_text(), flags=re.S)
    monkeypatch.setenv("COLTIVA_EMAIL_SECRET", "a")
    monkeypatch.setenv("COLTIVA_CRM_SECRET", "b")
    (tmp_path / "coltiva.toml").write_text(block)
    config = load_config(tmp_path / "coltiva.toml")
    assert [w.name for w in config.webhooks] == ["email", "crm", "crm-sync"] and config.webhooks[0].secret == "a"
    assert config.segment_types["Demo Requested"] == "demo.requested"
    assert config.max_body == 16 * 2 ** 20 and config.delivery_seed == 42 and config.clock == "wall"
    assert config.journeys == (str(tmp_path / "journeys/demand_generation.journey"),)
