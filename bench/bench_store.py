"""The store's own writes, by layout: a finished run's rows written again with no engine work.

Usage: python bench/bench_store.py STORE.db [--layout format5|format6] [--stretch N]

STORE.db is a store a durable run left behind (`python -m bench --workdir DIR` keeps
DIR/coltiva-bench-*/bench.db while it runs; any `coltiva run` store does). Its input log,
outbox and transitions are written again, in order, into a fresh file, in batches of
5,000 inputs as `Runner` commits them, each batch with the final record of every lead it
touches, statement by statement as `Store._write` does. Prints, per stretch of inputs,
the CPU µs per input of each statement: what grows as the store grows (docs/decisions.md,
"Store format 6"). `format5` is the layout before format 6: records written by
INSERT OR REPLACE (every B-tree of the table rewritten) and a unique index on the
outbox key; `format6` is the store's own (`engine.store`).
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.store import CHECKPOINT_PAGES, LEADS_STEPPED, SCHEMA, WRITER_CACHE_KIB  # noqa: E402

BATCH = 5_000
FORMAT5_LEADS = "INSERT OR REPLACE INTO leads (journey, lead, version, state, due, record) VALUES (?, ?, ?, ?, ?, ?)"
STATEMENTS = ("heads", "inputs", "lead_log", "leads", "outbox", "transitions", "commit")


def fresh(path: Path, layout: str) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(f"PRAGMA cache_size = -{WRITER_CACHE_KIB}")
    db.execute(f"PRAGMA wal_autocheckpoint = {CHECKPOINT_PAGES}")
    schema = SCHEMA
    if layout == "format5":
        schema = schema.replace("    key TEXT NOT NULL,", "    key TEXT NOT NULL UNIQUE,")
        assert schema != SCHEMA
    db.executescript(schema)
    return db


def replay(done: Path, layout: str, stretch: int) -> list[dict[str, float]]:
    """Per stretch of `stretch` inputs: CPU µs per input of each statement (and 'all')."""
    src = sqlite3.connect(f"file:{done}?mode=ro", uri=True)
    inputs = src.execute("SELECT kind, event_id, lead, time, event, journeys FROM inputs ORDER BY seq").fetchall()
    outbox = src.execute("SELECT key, journey, version, lead, kind, time, data FROM outbox ORDER BY seq").fetchall()
    moves = src.execute("SELECT journey, lead, src, dst, time, rule FROM transitions ORDER BY seq").fetchall()
    records: dict[str, list[tuple]] = defaultdict(list)
    for row in src.execute("SELECT journey, lead, version, state, due, record FROM leads"):
        records[row[1]].append(row)
    src.close()
    leads_sql = FORMAT5_LEADS if layout == "format5" else LEADS_STEPPED
    out: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="coltiva-bench-store-") as tmp:
        db = fresh(Path(tmp) / "replay.db", layout)
        clock = time.process_time
        spent: dict[str, float] = defaultdict(float)
        a = m = end = 0
        mark = stretch
        for first in range(0, len(inputs), BATCH):
            batch = inputs[first:first + BATCH]
            until = batch[-1][3]
            a_end, m_end = a, m
            while a_end < len(outbox) and outbox[a_end][5] <= until:
                a_end += 1
            while m_end < len(moves) and moves[m_end][4] <= until:
                m_end += 1
            leads = list(dict.fromkeys(row[2] for row in batch if row[2] is not None))
            t = clock()
            db.execute("BEGIN IMMEDIATE")
            heads: dict[str, int] = {}
            for s in range(0, len(leads), 500):
                chunk = leads[s:s + 500]
                heads.update(db.execute(f"SELECT lead, last FROM lead_log WHERE lead IN ({','.join('?' * len(chunk))})",
                                        chunk).fetchall())
            rows = []
            for seq, (kind, event_id, lead, when, event, journeys) in enumerate(batch, end + 1):
                prev = None
                if lead is not None:
                    prev, heads[lead] = heads.get(lead), seq
                rows.append((seq, kind, event_id, lead, when, event, journeys, prev))
            end += len(batch)
            steps = (
                ("inputs", "INSERT INTO inputs (seq, kind, event_id, lead, time, event, journeys, prev) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows),
                ("lead_log", "INSERT INTO lead_log (lead, last) VALUES (?, ?) "
                             "ON CONFLICT (lead) DO UPDATE SET last = excluded.last", [(k, heads[k]) for k in leads]),
                ("leads", leads_sql, [r for k in leads for r in records.get(k, ())]),
                ("outbox", "INSERT INTO outbox (key, journey, version, lead, kind, time, data) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?)", outbox[a:a_end]),
                ("transitions", "INSERT INTO transitions (journey, lead, src, dst, time, rule) "
                                "VALUES (?, ?, ?, ?, ?, ?)", moves[m:m_end]),
            )
            now = clock()
            spent["heads"] += now - t
            for name, sql, args in steps:
                t = now
                db.executemany(sql, args)
                now = clock()
                spent[name] += now - t
            db.execute("COMMIT")
            spent["commit"] += clock() - now
            a, m = a_end, m_end
            if end >= mark or first + BATCH >= len(inputs):
                n = end - (mark - stretch)
                row = {name: 1e6 * spent[name] / n for name in STATEMENTS}
                row["all"] = sum(row.values())
                row["inputs_done"] = end
                out.append(row)
                spent.clear()
                mark += stretch
        db.close()
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="bench_store", description=__doc__.split("\n\n")[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("--layout", choices=("format5", "format6"), default="format6")
    parser.add_argument("--stretch", type=int, default=500_000, help="inputs per printed line (default 500,000)")
    args = parser.parse_args(argv)
    if not args.store.is_file():
        parser.error(f"{args.store}: no such store")
    print(f"{args.layout}: CPU µs per input, per statement")
    print(f"{'inputs':>10} {'all':>6} " + " ".join(f"{s:>11}" for s in STATEMENTS))
    rows = replay(args.store, args.layout, args.stretch)
    for row in rows:
        print(f"{int(row['inputs_done']):>10,} {row['all']:6.1f} " + " ".join(f"{row[s]:11.1f}" for s in STATEMENTS))
    if len(rows) >= 4:
        first, last = rows[0]["all"] + rows[1]["all"], rows[-1]["all"] + rows[-2]["all"]
        print(f"last two stretches / first two: {last / first:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
