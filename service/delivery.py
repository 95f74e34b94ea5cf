"""Actions out: webhooks per action kind, at-least-once, in order, signed, retried, dead-lettered.

Each destination (a [[webhooks]] entry) has a stored offset in the outbox: every
action up to it is done (delivered, dead-lettered, or not for this destination).
The deliverer posts the next wanted action after the offset and advances the offset
only after a 2xx, so a crash can repeat a call but never lose one (at-least-once);
the `Idempotency-Key` header (the action's key) lets the receiver drop a repeat.
Actions go one at a time per destination, in outbox order, so a lead's actions
arrive in the order they happened. A failure is retried after an exponential
backoff with jitter (drawn from an injected random.Random, never global state);
after `max_attempts` failures the action goes to the dead-letter list and the
destination moves on. Delivery state lives in three tables created beside the
store's own (CREATE TABLE IF NOT EXISTS, on the writer's connection).

The body is the action as JSON (as `GET /actions` gives it, with `seq`). Headers:

    Idempotency-Key       the action's key (the same on every retry)
    X-Coltiva-Timestamp   Unix seconds when this attempt was signed
    X-Coltiva-Signature   sha256=HEX: HMAC-SHA256(secret, timestamp + "." + body)
    X-Coltiva-Attempt     1 for the first call, 2 for the first retry, ...
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import logging
import random
import threading
import time
from dataclasses import dataclass
from typing import Callable, TypeVar

import httpx

from engine.store import Store

from .config import Webhook

__all__ = ["DELIVERY_SCHEMA", "Deliverer", "PassResult", "DeadLetter", "DestinationState", "sign", "ensure_tables",
           "destination_states", "dead_letters", "skip", "forget_dead", "backoff_delay"]

log = logging.getLogger("coltiva.service")
T = TypeVar("T")

DELIVERY_SCHEMA = """
CREATE TABLE IF NOT EXISTS delivery_offsets (
    destination TEXT PRIMARY KEY,
    seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS delivery_retries (
    destination TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    next_at REAL NOT NULL,
    error TEXT NOT NULL
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
PAGE = 200


def ensure_tables(store: Store) -> None:
    store.db.executescript(DELIVERY_SCHEMA)


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
    retry_seq: int | None    # the action being retried, if any
    retry_attempts: int
    retry_error: str
    dead: int


def _offset(store: Store, name: str) -> int:
    row = store.db.execute("SELECT seq FROM delivery_offsets WHERE destination = ?", (name,)).fetchone()
    return row[0] if row else 0


def _retry(store: Store, name: str):
    return store.db.execute("SELECT seq, attempts, next_at, error FROM delivery_retries WHERE destination = ?",
                            (name,)).fetchone()


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


def _advance(name: str, seq: int) -> list[tuple[str, tuple]]:
    return [("INSERT INTO delivery_offsets (destination, seq) VALUES (?, ?) "
             "ON CONFLICT (destination) DO UPDATE SET seq = MAX(seq, excluded.seq)", (name, seq)),
            ("DELETE FROM delivery_retries WHERE destination = ? AND seq <= ?", (name, seq))]


class Deliverer:
    """Delivers every destination's actions. `read(fn)` and `write(fn)` run fn(store) where the caller allows:

    in the service, reads on a read connection and writes on the one writer's thread;
    from `coltiva deliver`, both on the command's own writing store.
    """

    def __init__(self, webhooks, read: Callable[[Callable[[Store], T]], T], write: Callable[[Callable[[Store], T]], T],
                 *, rng: random.Random | None = None, clock: Callable[[], float] = time.time, metrics=None,
                 every: float = 1.0, client: httpx.Client | None = None):
        self.webhooks = tuple(webhooks)
        self.read, self.write = read, write
        self.rng = rng if rng is not None else random.Random()
        self.clock = clock
        self.metrics = metrics
        self.every = every
        self.client = client or httpx.Client(follow_redirects=False)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.write(ensure_tables)

    # -- one pass over every destination --------------------------------------------------
    def pass_once(self) -> PassResult:
        delivered = failed = dead = 0
        waits: list[float] = []
        for hook in self.webhooks:
            d, f, x, wait = self._destination(hook)
            delivered, failed, dead = delivered + d, failed + f, dead + x
            if wait is not None:
                waits.append(wait)
        return PassResult(delivered, failed, dead, min(waits) if waits else None)

    def _destination(self, hook: Webhook):
        delivered = failed = dead = 0
        while not self._stop.is_set():
            offset, retry = self.read(lambda s: (_offset(s, hook.name), _retry(s, hook.name)))
            page = self.read(lambda s: self._page(s, offset))
            wanted = [(seq, a) for seq, a in page if hook.wants(a)]
            if not page:
                return delivered, failed, dead, None
            if not wanted:  # nothing for this destination on this page: move past it
                self.write(lambda s: _write(s, _advance(hook.name, page[-1][0])))
                continue
            for seq, action in wanted:
                attempts = 0
                if retry is not None and retry[0] == seq:
                    attempts = retry[1]
                    if retry[2] > self.clock():
                        return delivered, failed, dead, retry[2]
                error = self._call(hook, seq, action, attempts + 1)
                if error is None:
                    delivered += 1
                    self._count(hook, "delivered")
                    self.write(lambda s, seq=seq: _write(s, _advance(hook.name, seq)))
                    retry = None
                    continue
                failed += 1
                attempts += 1
                self._count(hook, "failed")
                log.warning("delivery failed", extra={"destination": hook.name, "seq": seq, "key": action["key"],
                                                      "attempt": attempts, "error": error})
                if attempts >= hook.max_attempts:
                    dead += 1
                    self._count(hook, "dead")
                    now = self.clock()
                    self.write(lambda s, seq=seq, key=action["key"], n=attempts, e=error: _write(s, [
                        ("INSERT OR REPLACE INTO delivery_dead (destination, seq, key, attempts, error, time) "
                         "VALUES (?, ?, ?, ?, ?, ?)", (hook.name, seq, key, n, e, now)),
                        *_advance(hook.name, seq)]))
                    retry = None
                    continue
                at = self.clock() + backoff_delay(hook, attempts, self.rng)
                self.write(lambda s, seq=seq, n=attempts, e=error: _write(s, [
                    ("INSERT OR REPLACE INTO delivery_retries (destination, seq, attempts, next_at, error) "
                     "VALUES (?, ?, ?, ?, ?)", (hook.name, seq, n, at, e))]))
                return delivered, failed, dead, at
            # every wanted action of the page delivered: the offset passes the rest of the page too
            self.write(lambda s, last=page[-1][0]: _write(s, _advance(hook.name, last)))
        return delivered, failed, dead, None

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
            self.write(lambda s: forget_dead(s, destination, seq))
        return error

    # -- the service's loop ----------------------------------------------------------------
    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def loop(self) -> None:
        """Deliver until stopped: after new actions (wake), at the next retry, or every `every` s."""
        while not self._stop.is_set():
            self._wake.clear()
            try:
                result = self.pass_once()
            except Exception as err:  # logged; the next pass tries again
                log.error("delivery pass failed", extra={"error": f"{type(err).__name__}: {err}"})
                result = PassResult()
            wait = self.every
            if result.next_retry is not None:
                wait = min(wait, max(0.0, result.next_retry - self.clock()))
            self._wake.wait(wait)
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
        offset = _offset(store, hook.name)
        retry = _retry(store, hook.name)
        dead = store.db.execute("SELECT COUNT(*) FROM delivery_dead WHERE destination = ?", (hook.name,)).fetchone()[0]
        out.append(DestinationState(hook.name, offset, max(0, last - offset), retry[0] if retry else None,
                                    retry[1] if retry else 0, retry[3] if retry else "", dead))
    return out


def dead_letters(store: Store, destination: str | None = None) -> list[DeadLetter]:
    sql = "SELECT destination, seq, key, attempts, error, time FROM delivery_dead"
    args: tuple = ()
    if destination:
        sql += " WHERE destination = ?"
        args = (destination,)
    return [DeadLetter(*row) for row in store.db.execute(sql + " ORDER BY destination, seq", args)]


def skip(store: Store, destination: str) -> int | None:
    """Give up on the action a destination is retrying: it goes to the dead letters, the offset moves on."""
    retry = _retry(store, destination)
    if retry is None:
        return None
    seq, attempts, _, error = retry
    action = _action(store, seq)
    _write(store, [("INSERT OR REPLACE INTO delivery_dead (destination, seq, key, attempts, error, time) "
                    "VALUES (?, ?, ?, ?, ?, ?)", (destination, seq, action["key"] if action else "?", attempts,
                                                  f"skipped by hand after: {error}", time.time())),
                   *_advance(destination, seq)])
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
