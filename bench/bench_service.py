"""The service under load: events/s and latency at 1, 10 and 50 concurrent clients, against `coltiva run`.

    .venv/bin/python bench/bench_service.py            # also `make bench` (section "service")
    .venv/bin/python bench/bench_service.py --events 20000 --repeat 1

Each row starts a fresh `coltiva serve --clock manual --port 0` (a real uvicorn,
in its own process) and drives it with N httpx clients (asyncio, in this
process); each client owns its leads and posts their events in order, B events
a request, and waits for each answer (2xx = committed) before the next.
events/s counts applied events from the first request to the last answer;
latency is per request. The reference is `Runner.run_lines` in this process on
the same events (5,000 a transaction, what `coltiva run` does, without process
start-up). Both share the machine's cores with the client, which is part of
what is measured: on 2 cores the clients' JSON and HTTP work competes with
the server.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bench.workload import Spec, json_lines  # noqa: E402

JOURNEY = ROOT / "journeys" / "demand_generation.journey"
TARGET = 0.8  # 50 clients, batches of 100: at least 80 % of coltiva run's rate
console = Console(width=150)


def reference_rate(lines: list[str], workdir: Path) -> float:
    """Applied events/s of Runner.run_lines on a fresh store (what `coltiva run` does)."""
    from dsl.loader import load_journey
    from engine.compiler import compile_journey
    from engine.runner import Runner
    from engine.store import Store

    loaded = load_journey(JOURNEY)
    cj = compile_journey(loaded.journey, loaded.diagnostics)
    path = workdir / "run.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    with Store(path) as store:
        store.register(cj, loaded.sources)
        runner = Runner(store, [cj])
        start = time.perf_counter()
        summary = runner.run_lines(lines, "bench")
        return summary.applied / (time.perf_counter() - start)


def split(lines: list[str], clients: int, batch: int) -> list[list[bytes]]:
    """Each client's requests: its own leads' events in order, `batch` lines a request."""
    import json

    per: list[list[str]] = [[] for _ in range(clients)]
    owner: dict[str, int] = {}
    for line in lines:
        lead = json.loads(line)["lead"]
        per[owner.setdefault(lead, len(owner) % clients)].append(line)
    return [[("\n".join(c[i:i + batch]) + "\n").encode() for i in range(0, len(c), batch)] for c in per]


def serve_rate(lines: list[str], clients: int, batch: int, workdir: Path) -> tuple[float, list[float]]:
    db = workdir / f"svc-{clients}-{batch}.db"
    log = workdir / "serve.log"
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "coltiva.cli", "serve", str(JOURNEY), "--db", str(db),
                                 "--port", "0", "--clock", "manual"], cwd=workdir, stdout=subprocess.PIPE,
                                stderr=err, text=True)
    try:
        banner = proc.stdout.readline()
        if not banner.startswith("listening on "):
            raise SystemExit(f"coltiva serve did not start:\n{log.read_text()[-2000:]}")
        base = banner.split()[-1]
        httpx.get(base + "/health", timeout=60)
        requests = split(lines, clients, batch)
        latencies: list[float] = []
        applied = 0

        async def client(bodies):
            nonlocal applied
            async with httpx.AsyncClient(base_url=base, timeout=120) as http:
                for body in bodies:
                    while True:
                        t = time.perf_counter()
                        r = await http.post("/events", content=body)
                        if r.status_code == 429:
                            await asyncio.sleep(0.05)
                            continue
                        r.raise_for_status()
                        latencies.append(time.perf_counter() - t)
                        applied += r.json()["applied"]
                        break

        async def run():
            await asyncio.gather(*(client(b) for b in requests))

        start = time.perf_counter()
        asyncio.run(run())
        elapsed = time.perf_counter() - start
        return applied / elapsed, latencies
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        proc.stdout.close()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="bench_service", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000, help="events per row with batches of 100")
    parser.add_argument("--single", type=int, default=2_000, help="events per row with batches of 1")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    lines = list(json_lines(Spec(max(1, args.events // 10), args.events, 90, args.seed)))
    with tempfile.TemporaryDirectory(prefix="coltiva-bench-service-") as tmp:
        workdir = Path(tmp)
        ref = statistics.median(reference_rate(lines, workdir) for _ in range(args.repeat))
        table = Table(title=f"coltiva serve: {len(lines):,} events ({args.single:,} with batches of 1), "
                            f"against Runner.run_lines at {ref:,.0f} ev/s on the same events")
        for col in ("clients", "events/request", "events/s", "of run's rate", "p50 ms", "p99 ms", "target"):
            table.add_column(col, justify="right")
        for batch in (1, 100):
            events = lines if batch > 1 else lines[:args.single]
            for clients in (1, 10, 50):
                runs = [serve_rate(events, clients, batch, workdir) for _ in range(args.repeat)]
                rate = statistics.median(r for r, _ in runs)
                lat = [x for _, ls in runs for x in ls]
                target = ""
                if clients == 50 and batch == 100:
                    target = "[green]met[/green]" if rate >= TARGET * ref else "[red]not met[/red]"
                    target = f"≥ {TARGET:.0%} {target}"
                table.add_row(str(clients), str(batch), f"{rate:,.0f}", f"{rate / ref:.0%}",
                              f"{1000 * pct(lat, 0.5):,.1f}", f"{1000 * pct(lat, 0.99):,.1f}", target)
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
