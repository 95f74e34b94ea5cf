"""Actions out: webhooks per action kind, at-least-once, in order per lead, concurrent, signed, retried.

Each destination (a [[webhooks]] entry) has a stored offset in the outbox: every
action up to it is done (delivered, dead-lettered, or not for this destination).
Above the offset, actions already done are remembered one by one
(`delivery_done`), so a restart repeats none of them. A call's outcome is written
only after its answer, so a crash can repeat a call but never lose one
(at-least-once); the `Idempotency-Key` header (the action's key) lets the
receiver drop a repeat.

Calls run concurrently: across destinations, and within a destination across
leads (at most `concurrency` calls in flight to it), but a lead's actions go one
at a time in outbox order: its next action leaves only after the previous one is
delivered or dead. So a slow or failing lead holds only itself. A failure is
retried after an exponential backoff with jitter (drawn from an injected
random.Random, never global state); after `max_attempts` failures the action goes
to the dead-letter list and the lead moves on. Delivery state lives in tables
created beside the store's own (CREATE TABLE IF NOT EXISTS, on the writer's
connection), written in one transaction per round of answers.

The body is the action as JSON (as `GET /actions` gives it, with `seq`). Headers:

    Idempotency-Key       the action's key (the same on every retry)
    X-Coltiva-Timestamp   Unix seconds when this attempt was signed
    X-Coltiva-Signature   sha256=HEX: HMAC-SHA256(secret, timestamp + "." + body)
    X-Coltiva-Attempt     1 for the first call, 2 for the first retry, ...
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import itertools
import json
import logging
import queue
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Protocol, TypeVar

import httpx

from engine.store import Store

from .config import Webhook

__all__ = ["DELIVERY_SCHEMA", "Deliverer", "PassResult", "DeadLetter", "DestinationState", "sign", "ensure_tables",
           "destination_states", "dead_letters", "skip", "forget_dead", "backoff_delay", "WINDOW"]

log = logging.getLogger("coltiva.service")
T = TypeVar("T")


class _WithStore(Protocol):
    """Runs a function with the store and returns what it returns (`read` and `write` of the Deliverer)."""

    def __call__(self, fn: Callable[[Store], T], /) -> T: ...

DELIVERY_SCHEMA = """
CREATE TABLE IF NOT EXISTS delivery_offsets (
    destination TEXT PRIMARY KEY,
    seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS delivery_failing (
    destination TEXT NOT NULL,
    seq INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    next_at REAL NOT NULL,
    error TEXT NOT NULL,
    PRIMARY KEY (destination, seq)
);
CREATE TABLE IF NOT EXISTS delivery_done (
    destination TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (destination, seq)
);
CREATE TABLE IF NOT EXISTS delivery_dead (
    destination TEXT NOT NULL,
    seq INTEGER NOT NULL,
    key TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    error TEXT NOT NULL,
    time REAL NOT NULL,
    PRIMARY KEY (destination, seq)
);
"""
#: Until the deliveries went concurrent, one action per destination was retried at a time (this table).
_OLD_RETRIES = """
INSERT OR IGNORE INTO delivery_failing (destination, seq, attempts, next_at, error)
    SELECT destination, seq, attempts, next_at, error FROM delivery_retries;
DROP TABLE delivery_retries;
"""
PAGE = 200
#: Actions not yet done that the deliverer holds per destination (read ahead of the offset).
WINDOW = 2000


def ensure_tables(store: Store) -> None:
    store.db.executescript(DELIVERY_SCHEMA)
    old = store.db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'delivery_retries'").fetchone()
    if old:
        store.db.executescript("BEGIN IMMEDIATE;" + _OLD_RETRIES + "COMMIT;")


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def backoff_delay(hook: Webhook, attempts: int, rng: random.Random) -> float:
    """Exponential backoff with jitter: backoff × 2^(attempts-1), capped, times a factor in [0.5, 1.5)."""
    base = min(hook.max_backoff, hook.backoff * 2 ** max(0, attempts - 1))
    return base * (0.5 + rng.random())


@dataclass(frozen=True)
class PassResult:
    delivered: int = 0
    failed: int = 0
    dead: int = 0
    next_retry: float | None = None  # wall time of the earliest retry waiting, if any


@dataclass(frozen=True)
class DeadLetter:
    destination: str
    seq: int
    key: str
    attempts: int
    error: str
    time: float


@dataclass(frozen=True)
class DestinationState:
    destination: str
    offset: int
    behind: int              # outbox positions after the offset
    retry_seq: int | None    # the earliest action waiting for a retry, if any
    retry_attempts: int
    retry_error: str
    dead: int
    retrying: int = 0        # actions waiting for a retry (one per lead at most)


@dataclass(frozen=True)
class _Answer:
    """What one call came back with (None: a 2xx)."""

    destination: str
    seq: int
    action: dict
    attempt: int
    error: str | None


@dataclass
class _Destination:
    """The deliverer's picture of one destination (the store keeps the truth; this is read from it once)."""

    hook: Webhook
    offset: int
    failing: dict[int, tuple[int, float, str]]   # seq -> (attempts, next retry at, last error)
    done: set[int]                               # delivered or dead above the offset
    cursor: int = 0                              # the last outbox position read
    queue: dict[int, dict] = field(default_factory=dict)   # wanted, not done, in outbox order
    busy: set = field(default_factory=set)       # leads with a call in flight
    held: set[int] = field(default_factory=set)  # failed in this run of `coltiva deliver`: retried by a later run
    in_flight: int = 0


def _write(store: Store, statements: list[tuple[str, tuple]]) -> None:
    db = store.db
    db.execute("BEGIN IMMEDIATE")
    try:
        for sql, args in statements:
            db.execute(sql, args)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def _dead_row(name: str, seq: int, key: str, attempts: int, error: str, when: float) -> tuple[str, tuple]:
    return ("INSERT OR REPLACE INTO delivery_dead (destination, seq, key, attempts, error, time) "
            "VALUES (?, ?, ?, ?, ?, ?)", (name, seq, key, attempts, error, when))


def _load(store: Store, hook: Webhook) -> _Destination:
    row = store.db.execute("SELECT seq FROM delivery_offsets WHERE destination = ?", (hook.name,)).fetchone()
    offset = row[0] if row else 0
    failing = {seq: (n, at, err) for seq, n, at, err in store.db.execute(
        "SELECT seq, attempts, next_at, error FROM delivery_failing WHERE destination = ? AND seq > ?",
        (hook.name, offset))}
    done = {seq for (seq,) in store.db.execute(
        "SELECT seq FROM delivery_done WHERE destination = ? AND seq > ?", (hook.name, offset))}
    return _Destination(hook, offset, failing, done, cursor=offset)


class Deliverer:
    """Delivers every destination's actions. `read(fn)` and `write(fn)` run fn(store) where the caller allows:

    in the service, reads on a read connection and writes in the one writer's process;
    from `coltiva deliver`, both on the command's own writing store. Calls run on a pool
    of threads (one per call in flight); everything else, on the thread that runs
    `loop` or `pass_once`.
    """

    def __init__(self, webhooks, read: _WithStore, write: _WithStore,
                 *, rng: random.Random | None = None, clock: Callable[[], float] = time.time, metrics=None,
                 every: float = 1.0, client: httpx.Client | None = None, window: int = WINDOW):
        self.webhooks = tuple(webhooks)
        self.read, self.write = read, write
        self.rng = rng if rng is not None else random.Random()
        self.clock = clock
        self.metrics = metrics
        self.every = every
        self.window = max(1, window)
        calls = sum(h.concurrency for h in self.webhooks) or 1
        self.client = client or httpx.Client(follow_redirects=False,
                                             limits=httpx.Limits(max_connections=calls,
                                                                 max_keepalive_connections=calls))
        self._pool = ThreadPoolExecutor(max_workers=calls, thread_name_prefix="coltiva-delivery")
        self._answers: queue.Queue[_Answer | None] = queue.Queue()  # None: wake up
        self._stop = threading.Event()
        self._dests: dict[str, _Destination] = {}  # loaded by the first round
        self._in_flight = 0
        self._once = False
        self.write(ensure_tables)

    # -- rounds: dispatch what may leave, settle what came back ------------------------------
    def pass_once(self) -> PassResult:
        """Deliver until nothing more can leave now (`coltiva deliver`); failures wait for a later run."""
        return self._run(until_idle=True)

    def loop(self) -> None:
        """Deliver until stopped: new actions (wake), each retry at its time, else every `every` s."""
        try:
            self._run(until_idle=False)
        finally:
            self.close()

    def wake(self) -> None:
        self._answers.put(None)

    def stop(self) -> None:
        self._stop.set()
        self._answers.put(None)

    def _run(self, until_idle: bool) -> PassResult:
        counts = {"delivered": 0, "failed": 0, "dead": 0}
        self._once = until_idle
        if not self._dests:
            self._dests = {h.name: self.read(functools.partial(_load, hook=h)) for h in self.webhooks}
        next_retry = None
        try:
            while not self._stop.is_set():
                try:
                    next_retry = self._dispatch_all()
                except Exception as err:  # logged; the next round tries again
                    log.error("delivery round failed", extra={"error": f"{type(err).__name__}: {err}"})
                    if until_idle:
                        raise
                if until_idle and self._in_flight == 0:
                    break
                wait = self.every
                if next_retry is not None:
                    wait = min(wait, max(0.0, next_retry - self.clock()))
                try:
                    first = self._answers.get(timeout=wait)
                except queue.Empty:
                    continue
                try:
                    self._settle_answers(first, counts)
                except Exception as err:  # not recorded: those calls are repeated after a restart (at-least-once)
                    log.error("recording deliveries failed", extra={"error": f"{type(err).__name__}: {err}"})
                    if until_idle:
                        raise
        finally:
            while self._in_flight:  # stopping: the calls in flight end (or time out) and are recorded
                self._settle_answers(self._answers.get(), counts)
        return PassResult(counts["delivered"], counts["failed"], counts["dead"], next_retry)

    def _settle_answers(self, first: _Answer | None, counts: dict) -> None:
        """Record every answer waiting, in one transaction, and move the offsets."""
        answers = [first]
        while True:
            try:
                answers.append(self._answers.get_nowait())
            except queue.Empty:
                break
        statements: list[tuple[str, tuple]] = []
        touched = set()
        for answer in answers:
            if answer is not None:
                statements += self._settle(answer, counts)
                touched.add(answer.destination)
        for name in touched:
            statements += self._move_offset(self._dests[name])
        if statements:
            self.write(functools.partial(_write, statements=statements))

    def _dispatch_all(self) -> float | None:
        now = self.clock()
        waits = []
        for d in self._dests.values():
            self._refill(d)
            wait = self._dispatch(d, now)
            if wait is not None:
                waits.append(wait)
        return min(waits) if waits else None

    def _refill(self, d: _Destination) -> None:
        """Read the outbox after the cursor until the window holds `window` actions not yet done."""
        while len(d.queue) < self.window:
            page = self.read(lambda s: self._page(s, d.cursor))
            if not page:
                return
            for seq, action in page:
                if len(d.queue) >= self.window:
                    return
                d.cursor = seq
                if seq not in d.done and d.hook.wants(action):
                    d.queue[seq] = action
            if not d.queue:  # nothing for this destination so far: the offset follows the cursor
                statements = self._move_offset(d)
                if statements:
                    self.write(functools.partial(_write, statements=statements))

    def _dispatch(self, d: _Destination, now: float) -> float | None:
        """Send each lead's first action not done, unless its lead is busy or its retry is not due yet."""
        heads: set = set()
        waits = []
        for seq, action in d.queue.items():
            lead = action.get("lead")
            if lead in heads:
                continue  # a later action of a lead: it waits for the earlier one
            heads.add(lead)
            if lead in d.busy:
                continue
            failing = d.failing.get(seq)
            if failing is not None and (failing[1] > now or seq in d.held):
                waits.append(failing[1])
                continue
            if d.in_flight >= d.hook.concurrency:
                break
            d.busy.add(lead)
            d.in_flight += 1
            self._in_flight += 1
            self._pool.submit(self._answer, d.hook, seq, action, (failing[0] if failing else 0) + 1)
        return min(waits) if waits else None

    def _answer(self, hook: Webhook, seq: int, action: dict, attempt: int) -> None:
        try:
            error = self._call(hook, seq, action, attempt)
        except Exception as err:  # never lose the answer: an unexpected error is a failed call
            error = f"{type(err).__name__}: {err}"[:500]
        self._answers.put(_Answer(hook.name, seq, action, attempt, error))

    def _settle(self, answer: _Answer, counts: dict) -> list[tuple[str, tuple]]:
        d = self._dests[answer.destination]
        hook, seq = d.hook, answer.seq
        d.busy.discard(answer.action.get("lead"))
        d.in_flight -= 1
        self._in_flight -= 1
        if answer.error is None:
            counts["delivered"] += 1
            self._count(hook, "delivered")
            return self._done(d, seq)
        counts["failed"] += 1
        self._count(hook, "failed")
        log.warning("delivery failed", extra={"destination": hook.name, "seq": seq, "key": answer.action["key"],
                                              "attempt": answer.attempt, "error": answer.error})
        if answer.attempt >= hook.max_attempts:
            counts["dead"] += 1
            self._count(hook, "dead")
            return [_dead_row(hook.name, seq, answer.action["key"], answer.attempt, answer.error, self.clock()),
                    *self._done(d, seq)]
        at = self.clock() + backoff_delay(hook, answer.attempt, self.rng)
        d.failing[seq] = (answer.attempt, at, answer.error)
        if self._once:
            d.held.add(seq)
        return [("INSERT OR REPLACE INTO delivery_failing (destination, seq, attempts, next_at, error) "
                 "VALUES (?, ?, ?, ?, ?)", (hook.name, seq, answer.attempt, at, answer.error))]

    @staticmethod
    def _done(d: _Destination, seq: int) -> list[tuple[str, tuple]]:
        d.queue.pop(seq, None)
        d.done.add(seq)
        out = [("INSERT OR IGNORE INTO delivery_done (destination, seq) VALUES (?, ?)", (d.hook.name, seq))]
        if d.failing.pop(seq, None) is not None:
            out.append(("DELETE FROM delivery_failing WHERE destination = ? AND seq = ?", (d.hook.name, seq)))
        return out

    @staticmethod
    def _move_offset(d: _Destination) -> list[tuple[str, tuple]]:
        """The offset moves up to the first action not done: everything before it needs no memory."""
        offset = next(iter(d.queue)) - 1 if d.queue else d.cursor
        if offset <= d.offset:
            return []
        d.offset = offset
        d.done = {seq for seq in d.done if seq > offset}
        return [("INSERT INTO delivery_offsets (destination, seq) VALUES (?, ?) "
                 "ON CONFLICT (destination) DO UPDATE SET seq = MAX(seq, excluded.seq)", (d.hook.name, offset)),
                ("DELETE FROM delivery_done WHERE destination = ? AND seq <= ?", (d.hook.name, offset)),
                ("DELETE FROM delivery_failing WHERE destination = ? AND seq <= ?", (d.hook.name, offset))]

    @staticmethod
    def _page(store: Store, offset: int) -> list:
        rows = store.actions(after=offset)
        try:
            return list(itertools.islice(rows, PAGE))
        finally:
            rows.close()

    def _call(self, hook: Webhook, seq: int, action: dict, attempt: int) -> str | None:
        """One signed POST; None on 2xx, else why it failed."""
        body = json.dumps({"seq": seq, **action}, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        stamp = str(int(self.clock()))
        headers = {"Content-Type": "application/json", "Idempotency-Key": action["key"],
                   "X-Coltiva-Timestamp": stamp, "X-Coltiva-Signature": sign(hook.secret, stamp, body),
                   "X-Coltiva-Attempt": str(attempt), "User-Agent": "coltiva-webhooks"}
        try:
            response = self.client.post(hook.url, content=body, headers=headers, timeout=hook.timeout)
        except httpx.HTTPError as err:
            return f"{type(err).__name__}: {err}"[:500]
        if 200 <= response.status_code < 300:
            return None
        return f"HTTP {response.status_code}: {response.text[:200]}"

    def _count(self, hook: Webhook, result: str) -> None:
        if self.metrics is not None:
            self.metrics.delivered.labels(hook.name, result).inc()

    def redeliver(self, destination: str, seq: int) -> str | None:
        """Try a dead letter once more, now; on success it leaves the list. None on success, else why not."""
        hook = next((h for h in self.webhooks if h.name == destination), None)
        if hook is None:
            return f"no webhook named {destination!r} in the config"
        action = self.read(lambda s: _action(s, seq))
        if action is None:
            return f"no action at outbox position {seq}"
        error = self._call(hook, seq, action, 1)
        if error is None:
            self.write(functools.partial(forget_dead, destination=destination, seq=seq))
        return error

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.client.close()

    def observe(self) -> None:
        """Set the delivery gauges (lag in outbox positions, dead letters) for /metrics."""
        if self.metrics is None:
            return
        for state in self.read(lambda s: destination_states(s, self.webhooks)):
            self.metrics.delivery_lag.labels(state.destination).set(state.behind)
            self.metrics.dead_letters.labels(state.destination).set(state.dead)


# -- inspection and repair (coltiva deliveries) -------------------------------------------------
def destination_states(store: Store, webhooks) -> list[DestinationState]:
    last = store.last_action_seq()
    out = []
    for hook in webhooks:
        d = _load(store, hook)
        first = min(d.failing) if d.failing else None
        attempts, _, error = d.failing[first] if first is not None else (0, 0.0, "")
        dead = store.db.execute("SELECT COUNT(*) FROM delivery_dead WHERE destination = ?", (hook.name,)).fetchone()[0]
        out.append(DestinationState(hook.name, d.offset, max(0, last - d.offset), first, attempts, error, dead,
                                    len(d.failing)))
    return out


def dead_letters(store: Store, destination: str | None = None) -> list[DeadLetter]:
    sql = "SELECT destination, seq, key, attempts, error, time FROM delivery_dead"
    args: tuple = ()
    if destination:
        sql += " WHERE destination = ?"
        args = (destination,)
    return [DeadLetter(*row) for row in store.db.execute(sql + " ORDER BY destination, seq", args)]


def skip(store: Store, destination: str, seq: int | None = None) -> int | None:
    """Give up an action a destination is retrying (the earliest, unless `seq`): it goes to the dead letters,
    and its lead's next action may leave."""
    row = store.db.execute("SELECT seq, attempts, error FROM delivery_failing WHERE destination = ?"
                           + (" AND seq = ?" if seq is not None else "") + " ORDER BY seq LIMIT 1",
                           (destination, seq) if seq is not None else (destination,)).fetchone()
    if row is None:
        return None
    seq, attempts, error = row
    action = _action(store, seq)
    _write(store, [_dead_row(destination, seq, action["key"] if action else "?", attempts,
                             f"skipped by hand after: {error}", time.time()),
                   ("DELETE FROM delivery_failing WHERE destination = ? AND seq = ?", (destination, seq)),
                   ("INSERT OR IGNORE INTO delivery_done (destination, seq) VALUES (?, ?)", (destination, seq))])
    return seq


def _action(store: Store, seq: int) -> dict | None:
    rows = store.actions(after=seq - 1)
    try:
        first = next(rows, None)
    finally:
        rows.close()
    return first[1] if first is not None and first[0] == seq else None


def forget_dead(store: Store, destination: str, seq: int) -> None:
    _write(store, [("DELETE FROM delivery_dead WHERE destination = ? AND seq = ?", (destination, seq))])
