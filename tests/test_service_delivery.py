"""Actions out by webhook to a real receiver on loopback: every action, in order per lead, signed, retried, dead-lettered."""

import json
import time
from collections import defaultdict

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from coltiva.sample import generate

from .service_helpers import post_events, Receiver, Server, coltiva, run_file

SECRET = "s3cret-for-tests"
TICK = "2026-06-01T00:00:00Z"


def _config(tmp_path, url, dead_url, **extra):
    text = f"""
[delivery]
seed = 7
every = 0.05

[[webhooks]]
name = "email"
url = "{url}/email"
secret = "{SECRET}"
kinds = ["send"]
timeout = 1.0
backoff = 0.01
max_attempts = 30

[[webhooks]]
name = "crm"
url = "{dead_url}/crm"
secret = "{SECRET}"
kinds = ["handoff"]
backoff = 0.01
max_attempts = 3
"""
    path = tmp_path / "coltiva.toml"
    path.write_text(text)
    return str(path)


def _wait_for(predicate, what):
    for _ in range(1200):  # bounded: a broken delivery fails the test, it never hangs it
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


def _check_order_and_retries(calls, wanted):
    """Per lead, calls come in outbox order; a key comes again only as a retry of a call not answered 200."""
    assert all(c["signed"] for c in calls), "a call with a bad signature"
    by_lead = defaultdict(list)
    for c in sorted(calls, key=lambda c: c["n"]):
        by_lead[c["body"]["lead"]].append(c)
    for lead, lead_calls in by_lead.items():
        seqs = [c["body"]["seq"] for c in lead_calls]
        assert seqs == sorted(seqs), f"{lead}: out of order {seqs}"
    seen_ok = set()
    for c in sorted(calls, key=lambda c: c["n"]):
        assert c["key"] == c["body"]["key"]
        if c["key"] in seen_ok:  # a repeat after a 200 is never sent
            raise AssertionError(f"{c['key']} sent again after it was delivered")
        if c["answered"] == 200:
            seen_ok.add(c["key"])
        expected_attempt = sum(1 for d in calls if d["key"] == c["key"] and d["n"] < c["n"]) + 1
        assert c["attempt"] == expected_attempt
    assert seen_ok == wanted


def test_every_action_reaches_its_webhook_in_order_signed_and_dead_letters_after_max_attempts(tmp_path):
    lines = generate(leads=25, days=60, seed=17)
    with Receiver(SECRET, fail_first=5, slow_every=25, slow_seconds=1.5) as receiver, \
            Receiver(SECRET, always_fail=True) as broken:
        config = _config(tmp_path, receiver.url, broken.url)
        with Server(tmp_path, "--config", config) as server, httpx.Client(base_url=server.base, timeout=60) as http:
            post_events(http, lines)
            http.post("/tick", params={"now": TICK})
            actions = [json.loads(x) for x in http.get("/actions", params={"limit": 100_000}).text.splitlines()]
            sends = {a["key"] for a in actions if a["kind"] == "send"}
            handoffs = {a["key"] for a in actions if a["kind"] == "handoff"}
            _wait_for(lambda: {c["key"] for c in receiver.delivered()} == sends, "every send delivered")
            _wait_for(lambda: len(broken.calls) == 3 * len(handoffs), "three attempts per handoff")
            metrics = http.get("/metrics").text
        calls = list(receiver.calls)
    assert sends and handoffs
    assert sum(1 for c in calls if c["answered"] == 500) == 5  # the first five failed
    assert any(c["answered"] == "too late" for c in calls)  # and some were too slow: retried with the same key
    assert any(c["attempt"] > 1 and c["answered"] == 200 for c in calls)
    _check_order_and_retries(calls, sends)
    assert 'coltiva_deliveries_total{destination="crm",result="dead"} %d.0' % len(handoffs) in metrics
    dead = coltiva("deliveries", "dead", "--config", config, "--db", server.db, "--format", "jsonl", cwd=tmp_path)
    letters = [json.loads(x) for x in dead.stdout.splitlines()]
    assert {d["key"] for d in letters} == handoffs and {d["attempts"] for d in letters} == {3}
    assert all(d["destination"] == "crm" for d in letters)
    # the CRM is back: a dead letter retried by hand is delivered and leaves the list
    with Receiver(SECRET) as fixed:
        config = _config(tmp_path, receiver.url, fixed.url)
        first = letters[0]
        coltiva("deliveries", "retry", "crm", str(first["seq"]), "--config", config, "--db", server.db, cwd=tmp_path)
        assert [c["key"] for c in fixed.delivered()] == [first["key"]] and fixed.calls[0]["signed"]
    left = coltiva("deliveries", "dead", "--config", config, "--db", server.db, "--format", "jsonl",
                   cwd=tmp_path).stdout.splitlines()
    assert len(left) == len(letters) - 1


def test_coltiva_deliver_from_cron_resumes_at_its_offset(tmp_path):
    lines = generate(leads=12, days=60, seed=19)
    db = run_file(tmp_path, lines, db="coltiva.db")
    with Receiver(SECRET, fail_first=2) as receiver, Receiver(SECRET) as crm:
        config = _config(tmp_path, receiver.url, crm.url)
        passes = 0
        while True:  # each run delivers what it can; a failure waits for the next run (after its backoff)
            out = coltiva("deliver", "--config", config, "--db", db, cwd=tmp_path)
            passes += 1
            assert passes < 50, out.stdout
            if out.stdout.startswith("delivered 0, failed 0"):
                break
            time.sleep(0.05)
        status = coltiva("deliveries", "--config", config, "--db", db, cwd=tmp_path).stdout
        actions = [json.loads(x) for x in coltiva("actions", "--db", db, cwd=tmp_path).stdout.splitlines()]
        calls, crm_calls = list(receiver.calls), list(crm.calls)
    assert passes > 2
    _check_order_and_retries(calls, {a["key"] for a in actions if a["kind"] == "send"})
    _check_order_and_retries(crm_calls, {a["key"] for a in actions if a["kind"] == "handoff"})
    assert "email" in status and "crm" in status


def test_skip_gives_up_a_stuck_action_and_its_lead_moves_on(tmp_path):
    db = run_file(tmp_path, generate(leads=12, days=60, seed=21), db="coltiva.db")
    actions = [json.loads(x) for x in coltiva("actions", "--db", db, cwd=tmp_path).stdout.splitlines()]
    sends = defaultdict(list)
    for a in actions:
        if a["kind"] == "send":
            sends[a["lead"]].append(a)
    with Receiver(SECRET, always_fail=True) as broken, Receiver(SECRET) as crm:
        config = _config(tmp_path, broken.url, crm.url)
        out = coltiva("deliver", "--config", config, "--db", db, cwd=tmp_path).stdout
        # every lead's first send left at once (concurrently), failed, and waits for a later run
        assert f"failed {len(sends)}," in out and "next retry" in out
        assert sorted(c["body"]["seq"] for c in broken.calls) == sorted(s[0]["seq"] for s in sends.values())
        status = coltiva("deliveries", "--config", config, "--db", db, cwd=tmp_path).stdout
        assert "retrying" in status and str(len(sends)) in status
        first = min(s[0]["seq"] for s in sends.values())
        skipped = coltiva("deliveries", "skip", "email", "--config", config, "--db", db, cwd=tmp_path).stdout
        assert f"#{first}" in skipped  # the earliest action retrying
        letters = coltiva("deliveries", "dead", "--config", config, "--db", db, "--format", "jsonl",
                          cwd=tmp_path).stdout.splitlines()
        (letter,) = [json.loads(x) for x in letters]
        assert letter["seq"] == first
        lead = next(a["lead"] for a in actions if a["seq"] == first)
        before = len(broken.calls)
        time.sleep(0.1)  # past the backoff (0.01 s, doubled, with jitter): not a timing assertion
        coltiva("deliver", "--config", config, "--db", db, cwd=tmp_path)
        again = [c["body"] for c in broken.calls[before:]]
        assert first not in {b["seq"] for b in again}  # the skipped action is never sent again
        if len(sends[lead]) > 1:  # its lead moved on to its next send
            assert sends[lead][1]["seq"] in {b["seq"] for b in again}
        missing = coltiva("deliveries", "skip", "email", str(first), "--config", config, "--db", db, cwd=tmp_path,
                          check=False)
        assert missing.returncode == 1 and "not retrying" in missing.stderr


def _sends_by_lead(tmp_path, lines):
    """Each lead's sends in outbox order, from `coltiva run` on the same events (then a tick to TICK)."""
    db = run_file(tmp_path, lines, db="preview.db", tick=TICK)
    out = defaultdict(list)
    for x in coltiva("actions", "--db", db, cwd=tmp_path).stdout.splitlines():
        a = json.loads(x)
        if a["kind"] == "send":
            out[a["lead"]].append(a["key"])
    return out


def _busiest_lead(tmp_path, seed):
    """Events of 25 leads, each lead's sends, and the lead with the most sends (at least two)."""
    lines = generate(leads=25, days=60, seed=seed)
    sends = _sends_by_lead(tmp_path, lines)
    lead = max(sends, key=lambda lead: len(sends[lead]))
    assert len(sends[lead]) >= 2
    return lines, sends, lead


def _post_and_tick(http, lines):
    assert post_events(http, lines).status_code == 200
    assert http.post("/tick", params={"now": TICK}).status_code == 200


def _hooks(tmp_path, email_url, crm_url, **email):
    extra = "".join(f"{k} = {v}\n" for k, v in email.items())
    path = tmp_path / "hooks.toml"
    path.write_text(f"""
[delivery]
seed = 3
every = 0.05

[[webhooks]]
name = "email"
url = "{email_url}/email"
secret = "{SECRET}"
kinds = ["send"]
concurrency = 4
backoff = 0.01
{extra}
[[webhooks]]
name = "crm"
url = "{crm_url}/crm"
secret = "{SECRET}"
kinds = ["handoff"]
timeout = 60
""")
    return str(path)


def test_a_slow_lead_and_a_slow_destination_hold_only_themselves(tmp_path):
    """One lead's calls hang at the email receiver, and every CRM call hangs: everything else is delivered
    meanwhile; the slow lead's later sends wait for its first (in order per lead)."""
    lines, sends, slow = _busiest_lead(tmp_path, seed=17)
    with Receiver(SECRET, hold=lambda body: body["lead"] == slow) as email, \
            Receiver(SECRET, hold=lambda body: True) as crm:
        config = _hooks(tmp_path, email.url, crm.url, timeout=60)
        with Server(tmp_path, "--config", config) as server, httpx.Client(base_url=server.base, timeout=60) as http:
            _post_and_tick(http, lines)
            others = {k for lead, keys in sends.items() if lead != slow for k in keys}
            _wait_for(lambda: {c["key"] for c in email.delivered()} == others, "every other lead's sends")
            _wait_for(lambda: crm.calls, "a CRM call, hanging")
            held = [c for c in email.calls if c["body"]["lead"] == slow]
            assert [c["key"] for c in held] == [sends[slow][0]]  # only its first send left: the rest wait
            assert "answered" not in held[0] and all("answered" not in c for c in crm.calls)
            email.release.set()
            crm.release.set()
            _wait_for(lambda: [c["key"] for c in email.delivered() if c["body"]["lead"] == slow] == sends[slow],
                      "the slow lead's sends, in order")
            _wait_for(lambda: len(crm.delivered()) == len({c["key"] for c in crm.calls}), "the CRM calls")
    _check_order_and_retries(email.calls, {k for keys in sends.values() for k in keys})


def test_a_failing_lead_goes_to_the_dead_letters_and_holds_only_itself(tmp_path):
    lines, sends, failing = _busiest_lead(tmp_path, seed=23)
    with Receiver(SECRET, fail_lead=failing) as email, Receiver(SECRET) as crm:
        config = _hooks(tmp_path, email.url, crm.url, max_attempts=3)
        with Server(tmp_path, "--config", config) as server, httpx.Client(base_url=server.base, timeout=60) as http:
            _post_and_tick(http, lines)
            others = {k for lead, keys in sends.items() if lead != failing for k in keys}
            _wait_for(lambda: {c["key"] for c in email.delivered()} == others, "every other lead's sends")
            _wait_for(lambda: len([c for c in email.calls if c["body"]["lead"] == failing])
                      == 3 * len(sends[failing]), "three attempts of each of the failing lead's sends")
            gauges = f'coltiva_dead_letters{{destination="email"}} {float(len(sends[failing]))}'
            _wait_for(lambda: gauges in http.get("/metrics").text, "the dead letters counted in /metrics")
            _wait_for(lambda: 'coltiva_delivery_lag_actions{destination="email"} 0.0' in http.get("/metrics").text,
                      "the email destination's offset at the end of the outbox")
        calls = list(email.calls)
        failures = [r for r in server.logs() if r["message"] == "delivery failed"]
    tried = [c for c in sorted(calls, key=lambda c: c["n"]) if c["body"]["lead"] == failing]
    # in order: each send tried three times (attempts 1, 2, 3) before the next one leaves
    assert [(c["key"], c["attempt"]) for c in tried] == [(k, n) for k in sends[failing] for n in (1, 2, 3)]
    _check_order_and_retries([c for c in calls if c["body"]["lead"] != failing], others)
    dead = coltiva("deliveries", "dead", "--config", config, "--db", server.db, "--format", "jsonl", cwd=tmp_path)
    letters = [json.loads(x) for x in dead.stdout.splitlines()]
    assert [d["key"] for d in letters] == sends[failing] and {d["attempts"] for d in letters} == {3}
    status = coltiva("deliveries", "--config", config, "--db", server.db, cwd=tmp_path).stdout
    assert "email" in status
    # each failed call logged with its destination, key, attempt and error (docs/service.md, Operating it)
    assert sorted((r["destination"], r["key"], r["attempt"]) for r in failures) == \
        sorted(("email", k, n) for k in sends[failing] for n in (1, 2, 3))
    assert all("HTTP 500" in r["error"] for r in failures)


def test_webhooks_take_their_kinds_and_content_kinds(tmp_path):
    db = run_file(tmp_path, generate(leads=25, days=60, seed=17), db="coltiva.db", tick=TICK)
    actions = [json.loads(x) for x in coltiva("actions", "--db", db, cwd=tmp_path).stdout.splitlines()]
    with Receiver(SECRET) as receiver:
        config = tmp_path / "kinds.toml"
        config.write_text("".join(f"""
[[webhooks]]
name = "{name}"
url = "{receiver.url}/{name}"
secret = "{SECRET}"
{extra}
""" for name, extra in (("mail", 'kinds = ["send"]\ncontent_kinds = ["email", "newsletter"]'),
                        ("crm", 'kinds = ["handoff"]'), ("all", ""))))
        out = coltiva("deliver", "--config", str(config), "--db", db, cwd=tmp_path).stdout
        got = {name: sorted(c["body"]["seq"] for c in receiver.delivered(f"/{name}"))
               for name in ("mail", "crm", "all")}
    assert got["mail"] == [a["seq"] for a in actions if a["kind"] == "send"
                           and a["content_kind"] in ("email", "newsletter")] != []
    assert got["crm"] == [a["seq"] for a in actions if a["kind"] == "handoff"] != []
    assert got["all"] == [a["seq"] for a in actions]
    assert out.startswith(f"delivered {sum(map(len, got.values()))}, failed 0")


@settings(max_examples=200, deadline=None)
@given(backoff=st.floats(0.001, 100), cap=st.floats(0.001, 1000), attempts=st.integers(1, 60),
       seed=st.integers(0, 2 ** 32))
def test_the_backoff_doubles_up_to_its_cap_with_jitter_from_a_seeded_random(backoff, cap, attempts, seed):
    import random

    from service.config import Webhook
    from service.delivery import backoff_delay

    hook = Webhook("w", "http://x", "s", backoff=backoff, max_backoff=cap)
    base = min(cap, backoff * 2 ** (attempts - 1))
    delay = backoff_delay(hook, attempts, random.Random(seed))
    assert 0.5 * base <= delay < 1.5 * base
    assert delay == backoff_delay(hook, attempts, random.Random(seed))  # seeded: the same run, the same waits


def _recorded(db: str) -> dict[str, set[int]]:
    """Per destination, the outbox positions the store says are done: up to its offset, and those above it."""
    import sqlite3

    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        offsets = dict(con.execute("SELECT destination, seq FROM delivery_offsets"))
        done: dict[str, set[int]] = defaultdict(set)
        for destination, seq in con.execute("SELECT destination, seq FROM delivery_done"):
            done[destination].add(seq)
    finally:
        con.close()
    return {d: set(range(1, offsets.get(d, 0) + 1)) | done[d] for d in ("email", "crm")}


def test_sigkill_during_delivery_then_restart_delivers_every_action_at_least_once_in_order(tmp_path):
    """The real service is SIGKILLed while calls are in flight to a real receiver (some held open, some
    answered, some not yet sent); restarted on the same store, it delivers every action, in order per lead,
    repeats only calls whose outcome it had not recorded (same key), and resumes at its stored offsets."""
    lines, sends, _busiest = _busiest_lead(tmp_path, seed=29)
    held_leads = sorted(sends)[:3]
    holding = {"on": True}
    with Receiver(SECRET, hold=lambda body: holding["on"] and body["lead"] in held_leads) as email, \
            Receiver(SECRET) as crm:
        config = _hooks(tmp_path, email.url, crm.url, timeout=60)
        server = Server(tmp_path, "--config", config).start()
        with httpx.Client(base_url=server.base, timeout=60) as http:
            _post_and_tick(http, lines)
            actions = [json.loads(x) for x in http.get("/actions", params={"limit": 100_000}).text.splitlines()]
        want = {"email": {a["key"] for a in actions if a["kind"] == "send"},
                "crm": {a["key"] for a in actions if a["kind"] == "handoff"}}
        seq_of = {a["key"]: a["seq"] for a in actions}
        _wait_for(lambda: len(email.delivered()) >= len(want["email"]) // 3, "a third of the sends delivered")
        _wait_for(lambda: sum(1 for c in email.calls if c.get("held")) == len(held_leads), "calls held open")
        assert len({c["key"] for c in email.delivered()}) < len(want["email"]), "all delivered before the kill"
        server.kill()  # SIGKILL: no drain; the held calls are in flight, their outcome never recorded
        at_kill = _recorded(server.db)
        calls_before = {"email": len(email.calls), "crm": len(crm.calls)}
        holding["on"] = False
        email.release.set()  # the held calls are answered 200 now, to a sender that is gone
        assert at_kill["email"] and all(seq_of[c["key"]] not in at_kill["email"] for c in email.calls if c.get("held"))
        with Server(tmp_path, "--config", config) as again:
            _wait_for(lambda: {c["key"] for c in email.delivered()} == want["email"], "every send, after the restart")
            _wait_for(lambda: {c["key"] for c in crm.delivered()} == want["crm"], "every handoff")
            last = max(a["seq"] for a in actions)
            _wait_for(lambda: _recorded(again.db) == {"email": set(range(1, last + 1)),
                                                     "crm": set(range(1, last + 1))},
                      "both offsets at the end of the outbox")
        calls = {"email": list(email.calls), "crm": list(crm.calls)}
    for destination, made in calls.items():
        assert all(c["signed"] and c["key"] == c["body"]["key"] for c in made)
        # every action of the destination delivered at least once
        assert {c["key"] for c in made if c["answered"] == 200} == want[destination]
        # in order per lead: a lead's calls, in the order they arrived, never go back in the outbox
        by_lead = defaultdict(list)
        for c in sorted(made, key=lambda c: c["n"]):
            by_lead[c["body"]["lead"]].append(c["body"]["seq"])
        assert all(seqs == sorted(seqs) for seqs in by_lead.values()), destination
        # duplicates only as retries of a call whose outcome was not recorded at the kill (the same key)
        after = made[calls_before[destination]:]
        assert not [c for c in after if c["body"]["seq"] in at_kill[destination]], "a recorded action sent again"
        answered_twice = {k for k in want[destination] if sum(c["answered"] == 200 for c in made if c["key"] == k) > 1}
        assert all(seq_of[k] not in at_kill[destination] for k in answered_twice)
        if destination == "email":  # each held call was sent again after the restart, with its key
            held = {c["key"] for c in made if c.get("held")}
            assert held and held <= {c["key"] for c in after}
