"""The service under load: events/s and latency at 1, 10 and 50 concurrent clients, against `coltiva run`.

    .venv/bin/python bench/bench_service.py            # also `make bench` (section "service")
    .venv/bin/python bench/bench_service.py --events 20000 --repeat 1
    .venv/bin/python bench/bench_service.py --rows 50x100 --repeat 5     # the target's row only

Each row starts a fresh `coltiva serve --clock manual --port 0` (a real uvicorn,
in its own process) and drives it with N httpx clients (asyncio, in this
process); each client owns its leads and posts their events in order, B events
a request, and waits for each answer (2xx = committed) before the next.
events/s counts applied events from the first request to the last answer;
latency is per request. The reference is `Runner.run_lines` in this process on
the same events (5,000 a transaction, what `coltiva run` does, without process
start-up), measured just before and just after each run of the service (the
machine's load changes from one minute to the next). Both share the machine's
cores with the client, which is part of what is measured: on 2 cores the clients' JSON and HTTP work competes
with the server. So each row also gives the server's CPU per event (from
/proc, all its threads) beside the reference's: the cost of HTTP, auth and
group commit over the engine's own, whatever else the machine runs. With
--repeat N, "of run's rate" is the median of the N ratios (each service run
against the mean of the references measured just before and just after it),
with their range: on a shared machine the load moves from one minute to the
next, and a reference on one side only would carry that drift.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Measure:
    rate: float                 # applied events/s, wall clock
    cpu_per_event: float        # seconds of CPU (the server's process, or this one for the reference) per event
    latencies: tuple[float, ...] = ()


def reference_rate(lines: list[str], workdir: Path) -> Measure:
    """Applied events/s of Runner.run_lines on a fresh store, made as `coltiva run` makes it."""
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
        runner = Runner(store, [cj], freeze_gc=True)  # as `coltiva run` (a batch command) makes it
        start, cpu = time.perf_counter(), time.process_time()
        try:
            summary = runner.run_lines(lines, "bench")
            elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        finally:
            gc.unfreeze()  # this process goes on to drive the service: its heap is not a batch command's
        return Measure(summary.applied / elapsed, cpu / summary.applied)


def process_cpu(pid: int) -> float:
    """Seconds of CPU a process and its live children (the service's writer) have used (user + system), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    children = Path(f"/proc/{pid}/task/{pid}/children")
    kids = [int(p) for p in children.read_text().split()] if children.exists() else []
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK") + sum(process_cpu(k) for k in kids)


def split(lines: list[str], clients: int, batch: int) -> list[list[bytes]]:
    """Each client's requests: its own leads' events in order, `batch` lines a request."""
    import json

    per: list[list[str]] = [[] for _ in range(clients)]
    owner: dict[str, int] = {}
    for line in lines:
        lead = json.loads(line)["lead"]
        per[owner.setdefault(lead, len(owner) % clients)].append(line)
    return [[("\n".join(c[i:i + batch]) + "\n").encode() for i in range(0, len(c), batch)] for c in per]


def serve_rate(lines: list[str], clients: int, batch: int, workdir: Path) -> Measure:
    db = workdir / f"svc-{clients}-{batch}.db"
    for suffix in ("", "-wal", "-shm"):  # a fresh store for every run
        Path(str(db) + suffix).unlink(missing_ok=True)
    log = workdir / "serve.log"
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "coltiva.cli", "serve", str(JOURNEY), "--db", str(db),
                                 "--port", "0", "--clock", "manual"], cwd=workdir, stdout=subprocess.PIPE,
                                stderr=err, text=True)
    stdout = proc.stdout
    assert stdout is not None  # stdout=PIPE
    try:
        banner = stdout.readline()
        if not banner.startswith("listening on "):
            raise SystemExit(f"coltiva serve did not start:\n{log.read_text()[-2000:]}")
        base = banner.split()[-1]
        httpx.get(base + "/health", timeout=60)
        requests = split(lines, clients, batch)
        latencies: list[float] = []
        applied = 0

        async def client(http, bodies):
            nonlocal applied
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

        async def run() -> tuple[float, float]:
            # the clients and their connections are made before the clock starts: an httpx client
            # builds an SSL context (~0.1 s of CPU) even for http://, which is not the service's cost
            tls = ssl.create_default_context()
            https = [httpx.AsyncClient(base_url=base, timeout=120, verify=tls) for _ in requests]
            try:
                await asyncio.gather(*(h.get("/health") for h in https))
                start, cpu = time.perf_counter(), process_cpu(proc.pid)
                await asyncio.gather(*(client(h, b) for h, b in zip(https, requests)))
                return time.perf_counter() - start, process_cpu(proc.pid) - cpu
            finally:
                await asyncio.gather(*(h.aclose() for h in https))

        elapsed, cpu = asyncio.run(run())
        return Measure(applied / elapsed, cpu / max(1, applied), tuple(latencies))
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        stdout.close()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="bench_service", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000, help="events per row with batches of 100")
    parser.add_argument("--single", type=int, default=2_000, help="events per row with batches of 1")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--rows", nargs="*", default=["1x1", "10x1", "50x1", "1x100", "10x100", "50x100"],
                        help="CLIENTSxBATCH rows to run (default: all six)")
    args = parser.parse_args(argv)
    try:
        rows = [tuple(int(x) for x in row.split("x")) for row in args.rows]
    except ValueError:
        parser.error("--rows takes CLIENTSxBATCH, e.g. 50x100")
    lines = list(json_lines(Spec(max(1, args.events // 10), args.events, 90, args.seed)))
    with tempfile.TemporaryDirectory(prefix="coltiva-bench-service-") as tmp:
        workdir = Path(tmp)
        table = Table(title=f"coltiva serve: {len(lines):,} events ({args.single:,} with batches of 1), each row "
                            "against Runner.run_lines on the same events measured just before and after it")
        for col in ("clients", "events/request", "events/s", "run's events/s", "of run's rate", "p50 ms", "p99 ms",
                    "server CPU µs/event", "run's CPU µs/event", "target"):
            table.add_column(col, justify="right")
        for clients, batch in rows:
            events = lines if batch > 1 else lines[:args.single]
            # the reference runs next to each row: the machine's load changes from minute to minute
            # the reference runs before and after each service run: the machine's load drifts between them
            refs, runs = [reference_rate(events, workdir)], []
            for _ in range(args.repeat):
                runs.append(serve_rate(events, clients, batch, workdir))
                refs.append(reference_rate(events, workdir))
            ref = statistics.median(r.rate for r in refs)
            rate = statistics.median(r.rate for r in runs)
            # each service run against the mean of the references just before and just after it
            ratios = sorted(s.rate / ((a.rate + b.rate) / 2) for s, a, b in zip(runs, refs, refs[1:]))
            ratio = statistics.median(ratios)
            spread = f" ({ratios[0]:.0%}–{ratios[-1]:.0%})" if len(ratios) > 1 else ""
            lat = [x for r in runs for x in r.latencies]
            target = ""
            if clients == 50 and batch == 100:
                met = ratio >= TARGET
                target = f"≥ {TARGET:.0%} " + ("[green]met[/green]" if met else "[red]not met[/red]")
            table.add_row(str(clients), str(batch), f"{rate:,.0f}", f"{ref:,.0f}", f"{ratio:.0%}{spread}",
                          f"{1000 * pct(lat, 0.5):,.1f}", f"{1000 * pct(lat, 0.99):,.1f}",
                          f"{1e6 * statistics.median(r.cpu_per_event for r in runs):,.0f}",
                          f"{1e6 * statistics.median(r.cpu_per_event for r in refs):,.0f}", target)
    table.caption = "load average (1, 5, 15 min) at the end: " + " ".join(f"{x:.1f}" for x in os.getloadavg())
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
