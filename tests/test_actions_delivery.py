"""Internal actions leave by webhook like every action: routed by kind, `webhook` actions to their named destination.

Real `coltiva run`, `coltiva deliver` and `coltiva serve` processes, real receivers on loopback (docs/service.md).
"""

from __future__ import annotations

import json
from pathlib import Path

from .service_helpers import Receiver, coltiva

SECRET = "s3cret-for-tests"
ROOT = Path(__file__).resolve().parent.parent
LIFECYCLE = ROOT / "journeys" / "hubspot_lifecycle.journey"


def _events(tmp_path) -> Path:
    t = "2026-03-0{}T09:00:00Z"
    rows = [
        {"id": "1", "lead": "ana", "type": "form.submitted", "time": t.format(1), "data": {"form": "newsletter"}},
        {"id": "2", "lead": "ana", "type": "demo.requested", "time": t.format(2)},
        {"id": "3", "lead": "ana", "type": "deal.created", "time": t.format(3), "data": {"amount": 12000}},
        {"id": "4", "lead": "ana", "type": "deal.won", "time": t.format(4), "data": {"amount": 12000}},
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _config(tmp_path, crm, sync, everything, kinds='["notify", "task", "set_field"]') -> str:
    path = tmp_path / "coltiva.toml"
    path.write_text(f"""
[delivery]
seed = 3

[[webhooks]]
name = "crm"
url = "{crm}/crm"
secret = "{SECRET}"
kinds = {kinds}

[[webhooks]]
name = "crm-sync"
url = "{sync}/sync"
secret = "{SECRET}"
kinds = ["stage"]

[[webhooks]]
name = "all"
url = "{everything}/all"
secret = "{SECRET}"
""")
    return str(path)


def test_internal_actions_reach_the_webhooks_of_their_kind_and_a_webhook_call_only_its_destination(tmp_path):
    db = str(tmp_path / "s.db")
    coltiva("run", str(LIFECYCLE), "--events", str(_events(tmp_path)), "--db", db, cwd=ROOT)
    actions = [json.loads(x) for x in coltiva("actions", "--db", db).stdout.splitlines()]
    kinds = {a["kind"] for a in actions}
    assert {"set_field", "add_to_list", "notify", "tag", "webhook", "handoff"} <= kinds
    with Receiver(SECRET) as crm, Receiver(SECRET) as sync, Receiver(SECRET) as everything:
        config = _config(tmp_path, crm.url, sync.url, everything.url)
        out = coltiva("deliver", "--config", config, "--db", db, cwd=tmp_path).stdout
        assert "failed 0" in out
        got = {name: [c["body"] for c in r.delivered()] for name, r in
               (("crm", crm), ("sync", sync), ("all", everything))}
    assert all(c["signed"] for r in (crm, sync, everything) for c in r.calls)
    wanted_crm = [a["key"] for a in actions if a["kind"] in ("notify", "task", "set_field")]
    assert [a["key"] for a in got["crm"]] == wanted_crm and wanted_crm
    calls = [a for a in actions if a["kind"] == "webhook"]
    assert [a["webhook"] for a in calls] == ["crm-sync"]
    # the destination named by `call webhook "crm-sync"` gets it (whatever its kinds), and no other does
    assert [a["key"] for a in got["sync"]] == [a["key"] for a in actions if a["kind"] in ("stage", "webhook")]
    assert [a["key"] for a in got["all"]] == [a["key"] for a in actions if a["kind"] != "webhook"]


def test_a_kind_no_action_has_is_refused_with_a_hint(tmp_path):
    config = _config(tmp_path, "http://127.0.0.1:9", "http://127.0.0.1:9", "http://127.0.0.1:9",
                     kinds='["notfy"]')
    out = coltiva("deliver", "--config", config, "--db", str(tmp_path / "s.db"), cwd=tmp_path, check=False)
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert "'notfy' is not a kind of action (did you mean 'notify'?" in out.stderr


def test_serve_refuses_a_journey_that_calls_a_webhook_no_destination_names(tmp_path):
    config = tmp_path / "coltiva.toml"
    config.write_text(f'[[webhooks]]\nname = "crm-synk"\nurl = "http://127.0.0.1:9/x"\nsecret = "{SECRET}"\n')
    out = coltiva("serve", str(LIFECYCLE), "--config", str(config), "--db", str(tmp_path / "s.db"), "--port", "0",
                  cwd=ROOT, check=False)
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert "calls webhook 'crm-sync'" in out.stderr and "did you mean 'crm-synk'?" in out.stderr


def test_the_service_keeps_aside_events_that_break_the_catalogue(tmp_path):
    import httpx

    from .service_helpers import Server

    (tmp_path / "events.catalogue").write_text("trial.started plan\nsubscription.started\n")
    journey = tmp_path / "t.journey"
    journey.write_text('journey "t"\nenroll on trial.started\n'
                       'stage a\n  initial\n  tag "trial"\n  on subscription.started -> b\nstage b\n  final\n')
    body = "".join(json.dumps(e) + "\n" for e in [
        {"id": "1", "lead": "a", "type": "trial.started", "time": "2026-03-01T09:00:00Z", "data": {"plan": "pro"}},
        {"id": "2", "lead": "b", "type": "trial.started", "time": "2026-03-01T09:00:00Z", "data": {"plna": "pro"}},
    ])
    with Server(tmp_path, "--catalogue", str(tmp_path / "events.catalogue"), journeys=(str(journey),)) as server, \
            httpx.Client(base_url=server.base, timeout=60) as http:
        summary = http.post("/events", content=body.encode()).json()
        kept = http.get("/quarantine").text
        actions = [json.loads(x) for x in http.get("/actions").text.splitlines()]
    assert summary["applied"] == 1 and summary["quarantined"] == 1, summary
    assert "data field 'plna' of trial.started is not in the event catalogue" in kept and "did you mean plan?" in kept
    assert [(a["lead"], a["kind"]) for a in actions] == [("a", "stage"), ("a", "tag")]
