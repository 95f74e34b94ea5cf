"""How long the language takes on big journeys: parse + include resolution + every check.

    .venv/bin/python bench/bench_language.py            # 10, 100 and 1,000 stages
    .venv/bin/python bench/bench_language.py --profile  # where the 1,000-stage time goes
    .venv/bin/python bench/bench_language.py --long     # only the long-journey rows

Each journey is generated like a real one, only longer: a content library,
scoring with caps and decay, fit rules, exit and frequency caps, and per stage
sends on entry and after a delay, event triggers with `where`, a skip, score
thresholds up and down, idle and in-stage timers, holding loops, a handoff.
The generated journeys must check clean (the bench fails otherwise), so the
time is that of a journey a marketer could ship.

The long-journey rows are shapes no marketer writes but anyone can send: one
`and` of 5,000 comparisons (C058 pairs the parts of an `and`) and 16,000
distinct event types (C037 compares event types with each other). They must
stay near-linear; before the checks grouped what they compare (issue 8) they
took 112 s and 18 s.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dsl import load_text  # noqa: E402
from dsl.parser import grammar_parser  # noqa: E402

SIZES = (10, 100, 1000)
TARGET_SECONDS = 0.5  # for 1,000 stages


def generate(stages: int) -> str:
    """A clean journey with `stages` nurturing stages, plus `dormant` and `customer`."""
    n = stages
    out = [f'journey "Generated nurture, {n} stages"', ""]
    out += ["content"]
    for k in range(n):
        out += [f'  email "s{k}-welcome" "Welcome to stage {k}"',
                f'  ebook "s{k}-guide"',
                f'  newsletter "s{k}-digest"']
    out += ['  case_study "references"', ""]
    out += [
        "scoring",
        "  email.opened +1 at most 10 per 30 days",
        "  email.clicked +3",
        '  page.visited where path starts with "/pricing" +15',
        "  page.visited +1 at most 20 per 7 days",
        "  webinar.attended +10",
        "  demo.requested +50",
        "  email.bounced -5",
        "  email.unsubscribed -50",
        "  decay half-life 45 days",
        "",
        "fit",
        "  company.size >= 200 +15",
        '  job.title matches "(?i)director|vp|head" +10',
        '  country in ["IT", "DE", "FR"] +5',
        "",
        "exit on email.unsubscribed",
        "enroll on form.submitted",
        "at most 3 messages per 7 days",
        "",
    ]
    for k in range(n):
        nxt = f"s{k + 1}" if k + 1 < n else "customer"
        skip = f"s{k + 3}" if k + 3 < n else "customer"
        out.append(f'stage s{k} "Stage {k} – fase {k}"')
        if k == 0:
            out.append("  initial")
        if k == n - 1:
            out.append("  handoff to sales")
        out.append(f'  send email "s{k}-welcome" on entry')
        out.append(f'  send ebook "s{k}-guide" after 3 days')
        out.append(f'  on form.submitted where path starts with "/s{k}/" and not (country == "US") -> {nxt}')
        out.append(f"  on demo.requested -> {skip}")
        out.append(f"  when score >= {20 * (k + 1)} -> {nxt}")
        if k > 0:
            out.append(f"  when score < {20 * k - 10} -> s{k - 1}")
        if k % 2 == 0:
            out.append(f'  hold after 14 days idle: every 7 days send newsletter "s{k}-digest", 3 times, '
                       "then -> dormant")
            out.append("  after 90 days in stage -> dormant")
        else:
            out.append("  after 60 days idle -> dormant")
        out.append("")
    out += [
        'stage dormant "Dormant"',
        "  on form.submitted -> s0",
        "  on webinar.attended -> s1" if n > 1 else "  on webinar.attended -> customer",
        "  after 365 days idle -> exit",
        "",
        'stage customer "Customer"',
        '  send case_study "references" on entry',
        "  final",
        "",
    ]
    return "\n".join(out)


def long_journeys() -> dict[str, str]:
    """Journeys long in one direction: the checks that compare pairs must not be quadratic in it."""
    clauses = " and ".join(f"f{i} == {i}" for i in range(5000))
    events = "\n".join(f"  on kind{i:05d}.seen -> b" for i in range(16000))
    same_event = "\n".join(f"  on e where f == {i} -> b" for i in range(2000))
    thresholds = "\n".join(f"  when score >= {i} -> b" for i in range(2000, 0, -1))
    timers = "\n".join(f"  after {i} days idle -> b" for i in range(2000, 0, -1))

    def stage(body: str, head: str = "") -> str:
        return f'journey "long"\n{head}stage a\n  initial\n{body}\nstage b\n  final\n'

    return {
        "and of 5,000 clauses": stage(f"  on e where {clauses} -> b"),
        "16,000 event types": stage(events),
        "2,000 triggers of one event": stage(same_event),
        "2,000 thresholds": stage(thresholds, "scoring\n  e +1\n"),
        "2,000 idle timers": stage(timers),
    }


def measure_long(runs: int = 3) -> list[dict]:
    """Median parse + load + check time of each long journey (diagnostics allowed: the time is the point)."""
    rows = []
    for name, text in long_journeys().items():
        times, found = [], 0
        for _ in range(runs):
            start = time.perf_counter()
            loaded = load_text(text, "long.journey", ROOT)
            times.append(time.perf_counter() - start)
            found = len(loaded.diagnostics)
        rows.append({"name": name, "bytes": len(text.encode()), "median": statistics.median(times),
                     "diagnostics": found})
    return rows


def print_long(rows: list[dict]) -> None:
    print(f"{'long journey':<28} {'KiB':>5} {'median s':>9} {'diagnostics':>12}")
    for r in rows:
        print(f"{r['name']:<28} {r['bytes'] // 1024:>5} {r['median']:>9.2f} {r['diagnostics']:>12}")


def time_once(text: str) -> float:
    start = time.perf_counter()
    loaded = load_text(text, "generated.journey", ROOT)
    elapsed = time.perf_counter() - start
    if not loaded.ok or loaded.diagnostics:
        first = loaded.diagnostics[0]
        raise SystemExit(f"generated journey does not check clean: {first.span}: {first.code} {first.message}")
    return elapsed


def measure(stages: int, runs: int) -> dict:
    text = generate(stages)
    time_once(text)  # warm-up (and the cleanliness check)
    times = sorted(time_once(text) for _ in range(runs))
    q = statistics.quantiles(times, n=4) if len(times) >= 4 else [times[0], times[len(times) // 2], times[-1]]
    return {
        "stages": stages,
        "lines": text.count("\n") + 1,
        "runs": runs,
        "median": statistics.median(times),
        "min": times[0],
        "max": times[-1],
        "iqr": q[2] - q[0],
    }


def phases(text: str, runs: int = 5) -> dict[str, float]:
    """Median CPU seconds (`process_time`: the machine is shared) of each phase of loading and compiling.

    The phases run as `load_text` runs them (the garbage collector paused), then
    `load_text` and `compile_journey` are timed whole, as `python -m bench` times them.
    """
    import gc

    from dsl.checks import run_checks
    from dsl.loader import parse_journey
    from engine.compiler import compile_journey

    clock = time.process_time
    found: dict[str, list[float]] = {name: [] for name in (
        "parse and build the model", "checks", "load_text", "compile_journey", "load_text + compile_journey")}
    for _ in range(runs):
        was = gc.isenabled()
        gc.disable()
        a = clock()
        journey, _ = parse_journey(text, "generated.journey")  # built as it is parsed (dsl.builder.build_text)
        b = clock()
        assert journey is not None  # the generated text parses
        run_checks(journey)
        checked = clock()
        del journey
        if was:
            gc.enable()
        gc.collect()  # the phases' garbage, so that no collection of it falls inside the timing below
        d = clock()
        loaded = load_text(text, "generated.journey", ROOT)
        e = clock()
        compile_journey(loaded.journey, loaded.diagnostics)
        f = clock()
        del loaded  # freed here, not inside the next run's timing
        for name, seconds in zip(found, (b - a, checked - b, e - d, f - e, f - d)):
            found[name].append(seconds)
    return {name: statistics.median(times) for name, times in found.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=0, help="runs per size (default: 30, 30, 9)")
    parser.add_argument("--profile", action="store_true", help="profile one 1,000-stage load")
    parser.add_argument("--long", action="store_true", help="only the long-journey rows")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    grammar_parser()
    print(f"building the parser (once per process): {1000 * (time.perf_counter() - start):.0f} ms")

    if args.long:
        print_long(measure_long())
        return 0

    if args.profile:
        text = generate(1000)
        time_once(text)
        profiler = cProfile.Profile()
        profiler.enable()
        time_once(text)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
        return 0

    rows = [measure(size, args.runs or (30 if size < 1000 else 9)) for size in SIZES]
    print(f"{'stages':>7} {'lines':>6} {'runs':>5} {'median ms':>10} {'min ms':>8} {'max ms':>8} {'IQR ms':>7}")
    for r in rows:
        print(f"{r['stages']:>7} {r['lines']:>6} {r['runs']:>5} {1000 * r['median']:>10.1f} "
              f"{1000 * r['min']:>8.1f} {1000 * r['max']:>8.1f} {1000 * r['iqr']:>7.1f}")
    cpu = phases(generate(1000))
    print("1,000 stages by phase (median CPU time): "
          + ", ".join(f"{name} {1000 * seconds:.0f} ms" for name, seconds in cpu.items()))
    print_long(measure_long())
    big = rows[-1]
    verdict = "ok" if big["median"] < TARGET_SECONDS else "TOO SLOW"
    print(f"1,000 stages: median {1000 * big['median']:.0f} ms for parse + load + check "
          f"(target < {1000 * TARGET_SECONDS:.0f} ms): {verdict}")
    return 0 if big["median"] < TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
