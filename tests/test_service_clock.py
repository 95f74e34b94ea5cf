"""Time passing: the service ticks by itself, time never goes backwards, `coltiva tick` guards its --now."""

import json

import httpx

from coltiva.sample import generate
from engine.store import Store

from .service_helpers import post_events, Server, coltiva, run_file

LATE = "2026-06-01T00:00:00Z"


def _table(stdout):
    """The summary table's rows (label -> count), without its title."""
    rows = {}
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.strip("│┃ ").split("│")]
        if len(cells) == 2 and cells[1].replace(",", "").isdigit():
            rows[cells[0]] = int(cells[1].replace(",", ""))
    return rows


def test_tick_refuses_going_backwards_and_far_ahead_and_dry_run_writes_nothing(tmp_path):
    lines = generate(leads=40, days=40, seed=2)
    db = run_file(tmp_path, lines)
    with Store(db) as store:
        before = store.dump()
    dry = coltiva("tick", "--now", LATE, "--db", db, "--dry-run")
    with Store(db) as store:
        assert store.dump() == before  # nothing written
    real = coltiva("tick", "--now", LATE, "--db", db)
    assert _table(dry.stdout) == _table(real.stdout) and _table(real.stdout)["leads advanced by time"] > 0
    back = coltiva("tick", "--now", "2026-05-01T00:00:00Z", "--db", db, check=False)
    assert back.returncode == 1 and "never goes backwards" in back.stderr
    far = coltiva("tick", "--now", "2126-06-01T00:00:00Z", "--db", db, check=False)
    assert far.returncode == 1 and "--force" in far.stderr and "Traceback" not in far.stderr
    with Store(db) as store:
        assert store.last_tick() == store.dump()["inputs"][-1][3]  # the refused ticks left no trace
    forced = coltiva("tick", "--now", "2126-06-01T00:00:00Z", "--db", db, "--force")
    assert forced.returncode == 0


def test_the_service_ticks_by_itself_from_the_wall_clock(tmp_path):
    lines = generate(leads=40, days=40, seed=4)
    with Server(tmp_path, "--tick-every", "0.2", clock="wall") as server, httpx.Client(base_url=server.base) as http:
        post_events(http, lines, timeout=60)
        for _ in range(600):  # until the clock has ticked after the events (bounded: nothing hangs)
            health = http.get("/health").json()
            if health["last_tick"]:
                break
        with Store(server.db, read_only=True) as store:
            ticks = [row for row in store.dump()["inputs"] if row[0] == "tick"]
    assert ticks and health["last_tick"]
    assert "Z" in health["last_tick"]
    assert any(r.get("message") == "tick" for r in server.logs())  # logged like any input


def test_over_http_time_never_goes_backwards_and_far_ahead_needs_force(tmp_path):
    lines = generate(leads=40, days=40, seed=6)
    with Server(tmp_path) as server, httpx.Client(base_url=server.base, timeout=60) as http:
        post_events(http, lines)
        assert http.post("/tick", params={"now": LATE}).status_code == 200
        assert http.post("/tick", params={"now": "2026-05-01T00:00:00Z"}).status_code == 409
        far = http.post("/tick", params={"now": "2126-01-01T00:00:00Z"})
        assert far.status_code == 409 and "force" in far.json()["error"]
        assert http.post("/tick", params={"now": "2126-01-01T00:00:00Z", "force": "true"}).status_code == 200
    reference = run_file(tmp_path, lines, tick=LATE)
    coltiva("tick", "--now", "2126-01-01T00:00:00Z", "--db", reference, "--force")
    with Store(server.db) as a, Store(reference) as b:
        assert a.dump()["leads"] == b.dump()["leads"]
        assert [json.loads(r[5])["key"] for r in a.dump()["outbox"]] == \
               [json.loads(r[5])["key"] for r in b.dump()["outbox"]]



FUTURE_EVENT = json.dumps({"id": "far-1", "lead": "far-lead", "type": "page.visited", "time": "2090-01-01T00:00:00Z"})


def test_max_ahead_counts_days_from_the_latest_event_and_tick_on_the_command_line(tmp_path):
    db = run_file(tmp_path, [FUTURE_EVENT])  # an event far beyond the wall clock: the horizon starts there

    def tick(now, *more):
        return coltiva("tick", "--now", now, "--db", db, *more, check=False)

    refused = tick("2090-01-06T00:00:01Z", "--max-ahead", "5")  # one second past five days after the event
    assert refused.returncode == 1 and "more than 5 days" in refused.stderr and "Traceback" not in refused.stderr
    assert tick("2090-01-06T00:00:00Z", "--max-ahead", "5").returncode == 0  # exactly five days: allowed
    # the horizon moves with the last tick: five days after it now
    assert tick("2090-01-11T00:00:01Z", "--max-ahead", "5").returncode == 1
    assert tick("2090-01-11T00:00:00Z", "--max-ahead", "5").returncode == 0
    assert tick("2090-03-01T00:00:00Z", "--max-ahead", "5", "--dry-run").returncode == 1  # dry runs obey it too
    assert tick("2090-03-01T00:00:00Z").returncode == 0  # the default: 90 days


def test_max_ahead_counts_from_the_wall_clock_without_later_events(tmp_path):
    import time

    from engine.events import format_time

    db = run_file(tmp_path, generate(leads=5, days=20, seed=3))  # events in 2026, before the wall clock
    ahead = format_time(int(time.time()) + 10 * 86_400)  # ten days beyond the wall clock
    refused = coltiva("tick", "--now", ahead, "--max-ahead", "5", "--db", db, check=False)
    assert refused.returncode == 1 and "wall clock" in refused.stderr
    assert coltiva("tick", "--now", ahead, "--max-ahead", "15", "--db", db, check=False).returncode == 0


def test_the_service_obeys_max_ahead_from_the_command_line_and_the_config(tmp_path):
    (tmp_path / "coltiva.toml").write_text("[clock]\nmax_ahead = 5\n")
    with Server(tmp_path, "--config", str(tmp_path / "coltiva.toml")) as server, \
            httpx.Client(base_url=server.base, timeout=60) as http:
        http.post("/events", content=FUTURE_EVENT)
        far = http.post("/tick", params={"now": "2090-01-06T00:00:01Z"})
        assert far.status_code == 409 and "more than 5 days" in far.json()["error"]
        assert http.post("/tick", params={"now": "2090-01-06T00:00:00Z"}).status_code == 200
        assert http.post("/tick", params={"now": "2090-02-01T00:00:00Z", "force": "true"}).status_code == 200
    with Server(tmp_path, "--max-ahead", "40", db="other.db") as server, \
            httpx.Client(base_url=server.base, timeout=60) as http:
        http.post("/events", content=FUTURE_EVENT)
        assert http.post("/tick", params={"now": "2090-02-11T00:00:00Z"}).status_code == 409
        assert http.post("/tick", params={"now": "2090-02-09T00:00:00Z"}).status_code == 200
