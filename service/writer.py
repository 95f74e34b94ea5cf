"""The one writer: every write to the store goes through one process of its own, in request order.

The writer is a child process forked before the server starts (`WriterProcess`), so
stepping and SQLite never share an interpreter lock with HTTP (docs/decisions.md, "The
service's writer is a process of its own"). Each request is sent to it as soon as it
arrives; while it commits, the next requests wait in its pipe, and it then takes every
request waiting (up to `group_lines` event lines) and commits them in ONE transaction
(`Runner.run_requests`), answering each with its own summary. So throughput grows with
concurrency and the store keeps exactly one writer. A request is answered only after its
commit: 2xx means durable. When more than `queue_lines` lines wait for their commit, new
requests are refused with 429 and Retry-After instead of piling up in memory.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import logging
import multiprocessing
import os
import pickle
import select
import signal
import socket
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from engine.runner import ReadLines, Runner, Summary

from .clock import MAX_AHEAD_DAYS, check_tick
from .errors import Busy, ServiceError

__all__ = ["Writer", "WriterWork", "WriterProcess", "WriterGone", "summary_json"]

log = logging.getLogger("coltiva.service")

Request = tuple[list[bytes] | ReadLines, str]  # a request's lines (as read by the server) and its source


def summary_json(summary: Summary) -> dict:
    return {"lines": summary.lines, "applied": summary.applied, "duplicates": summary.duplicates,
            "quarantined": summary.quarantined, "ticked_leads": summary.ticked_leads,
            "actions": dict(summary.actions)}


class WriterGone(ServiceError):
    """The writer's process ended (killed, out of memory): nothing more can be committed until a restart."""

    status = 503


@dataclass(frozen=True)
class Opened:
    """What the server needs to know of the open runner: the event types it reads, the last tick."""

    known_types: frozenset[str]
    last_tick: int | None


@dataclass(frozen=True)
class Committed:
    """One request's answer: its summary, and the transaction it was part of (for /metrics)."""

    summary: Summary
    cached: dict[str, int]  # records in each cache after the commit
    first: bool             # the first request of its transaction: the one that reports it
    requests: int           # requests in the transaction
    lines: int              # their lines
    seconds: float          # how long the transaction took


class WriterWork:
    """What the writer's process does: owns the writing Store and Runner, on that process's one thread."""

    def __init__(self, open_runner: Callable[[], Runner], *, cache_leads: int, max_ahead_days: int = MAX_AHEAD_DAYS):
        self._open_runner = open_runner
        self.cache_leads = max(0, cache_leads)
        self.max_ahead_days = max_ahead_days
        self.runner: Runner | None = None
        self.last_tick: int | None = None  # kept here: ticks are checked in the order they are made

    def _opened(self) -> Runner:
        assert self.runner is not None, "open() opens the runner"
        return self.runner

    def open(self) -> Opened:
        self.runner = self._open_runner()
        self.last_tick = self.runner.store.last_tick()
        return Opened(self.runner.known_types, self.last_tick)

    def commit(self, requests: list[Request]) -> list[Committed]:
        started = time.perf_counter()
        summaries = self._opened().run_requests(requests)
        cached = self._trim_cache()
        took = time.perf_counter() - started
        lines = sum(len(lines) for lines, _ in requests)
        return [Committed(s, cached, n == 0, len(requests), lines, took) for n, s in enumerate(summaries)]

    def tick(self, now: int, force: bool) -> Summary:
        runner = self._opened()
        check_tick(runner.store, now, force=force, last_tick=self.last_tick, max_ahead_days=self.max_ahead_days)
        summary = runner.tick(now)
        self.last_tick = now
        self._trim_cache()
        return summary

    def call(self, fn: Callable[[Any], Any]) -> Any:
        return fn(self._opened().store)

    def close(self) -> None:
        if self.runner is not None:
            self.runner.store.close()
            self.runner = None

    def _trim_cache(self) -> dict[str, int]:
        """Bound the runner's caches, the lead records and the lead-wide records: drop the oldest entries
        (they reload from the store on use; what is cached is committed by then)."""
        runner = self._opened()
        _drop_oldest(runner.cache, self.cache_leads)
        _drop_oldest(runner.wides, self.cache_leads)
        return {"lead": len(runner.cache), "lead_wide": len(runner.wides)}


_CALLS = {"open", "tick", "call", "close"}  # and "commit", gathered; "commit" and "tick" carry a slot (_child)

#: Each write waiting for its answer has a slot in memory shared with the writer's process: WAITING
#: until the writer takes it (TAKEN) or its request gives up first (GIVEN_UP), decided under one
#: lock, so a request that timed out knows exactly whether anything of it will be written.
SLOTS = 65_536
WAITING, TAKEN, GIVEN_UP = 0, 1, 2
DROPPED = "dropped"  # the answer to a write given up before the writer took it
#: A request of more lines is pickled for the writer in a thread, not on the event loop.
INLINE_LINES = 2_000


def _frame(message: Any) -> bytes:
    """One message on the writer's socket: its length (8 bytes, big-endian), then its pickle."""
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return len(payload).to_bytes(8, "big") + payload


class _Frames:
    """The writer process's end of its socket: blocking reads of whole messages, and whether one is waiting."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = bytearray()

    def _complete(self) -> bool:
        return len(self.buf) >= 8 and len(self.buf) >= 8 + int.from_bytes(self.buf[:8], "big")

    def _more(self) -> None:
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise EOFError("the server closed the writer's socket")
        self.buf += chunk

    def recv(self) -> Any:
        while not self._complete():
            self._more()
        n = int.from_bytes(self.buf[:8], "big")
        message = pickle.loads(memoryview(self.buf)[8:8 + n])
        del self.buf[:8 + n]
        return message

    def waiting(self) -> bool:
        """A message has arrived (or started to: the rest is on its way): `recv` returns it without waiting long."""
        if len(self.buf) >= 8:
            return True
        if select.select([self.sock], [], [], 0)[0]:
            self._more()
            return True
        return False

    def send(self, frames: bytes) -> None:
        self.sock.sendall(frames)


class WriterProcess:
    """The writer's process, forked when this is made (before the server starts: one thread), and its socket.

    The server's side runs on its event loop: `send` writes a message and returns its answer's
    future, and one task hands each answer to its future in the order sent (the writer answers
    in that order); no thread in between. The socket carries the requests' lines as read,
    summaries and errors between two processes of one service; nothing is stored pickled. The
    child ignores SIGINT and SIGTERM (the server drains, then closes it) and ends when the
    server dies (the kernel kills it on Linux; its socket's end of file elsewhere), so a SIGKILL
    of the server ends both, as one process would.
    """

    def __init__(self, work: WriterWork, group_lines: int):
        ctx = multiprocessing.get_context("fork")  # the child inherits the compiled journeys: nothing to rebuild
        ours, theirs = socket.socketpair()
        self.states = ctx.RawArray("b", SLOTS)  # WAITING, TAKEN or GIVEN_UP, for each slot
        self.states_lock = ctx.Lock()
        self._proc = ctx.Process(target=_child, args=(theirs, ours, work, os.getpid(), max(1, group_lines),
                                                      self.states, self.states_lock),
                                 name="coltiva-writer", daemon=True)
        self._proc.start()  # before the server has threads or sockets
        theirs.close()
        self.pid = self._proc.pid
        self._sock = ours
        self._out: asyncio.StreamWriter | None = None
        self._answering: asyncio.Task | None = None
        self._pending: deque[asyncio.Future] = deque()
        self._gone: str | None = None
        self._closed = False

    async def connect(self) -> None:
        reader, self._out = await asyncio.open_unix_connection(sock=self._sock)
        self._answering = asyncio.create_task(self._answers(reader), name="coltiva-writer-answers")

    def send(self, frame: bytes) -> asyncio.Future:
        """Write one framed message (`_frame`); its answer's future. On the event loop."""
        answer = asyncio.get_running_loop().create_future()
        if self._gone is not None or self._out is None:
            answer.set_exception(self._lost())
        else:
            self._pending.append(answer)
            self._out.write(frame)
        return answer

    async def ask(self, name: str, *args: Any) -> Any:
        return await self.send(_frame((name, args)))

    async def _answers(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                size = int.from_bytes(await reader.readexactly(8), "big")
                status, value = pickle.loads(await reader.readexactly(size))
                answer = self._pending.popleft()
                if status == "error":
                    answer.set_exception(value)
                else:
                    answer.set_result(DROPPED if status == DROPPED else value)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        self._gone = await asyncio.get_running_loop().run_in_executor(None, self._ended)
        while self._pending:
            self._pending.popleft().set_exception(self._lost())

    def _lost(self) -> WriterGone:
        return WriterGone(f"the writer's process ended ({self._gone or 'not started'}); nothing more is "
                          "committed until the service restarts")

    def _ended(self) -> str:
        if self._closed:
            return "closed"
        self._proc.join(timeout=1)
        code = self._proc.exitcode
        if code is None:
            return "its socket closed"
        return f"killed by signal {-code}" if code < 0 else f"exit status {code}"

    async def close(self) -> None:
        """Close the store in the child (after every message sent before), then end it."""
        if self._closed:
            return
        try:
            await self.ask("close")
        except WriterGone:
            pass
        self._closed = True
        if self._out is not None:
            self._out.close()
        if self._answering is not None:
            await self._answering
        await asyncio.get_running_loop().run_in_executor(None, self.release)

    def release(self) -> None:
        """End the child if `close` did not (the server never started, or stopped on an error). Idempotent."""
        self._closed = True
        self._sock.close()  # the child reads end of file: it closes its store and ends
        self._proc.join(timeout=30)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join()


def _child(sock: socket.socket, servers_end: socket.socket, work: WriterWork, parent: int, group_lines: int, states,
           states_lock) -> None:
    """The writer's process: answer the server's calls, in order, until it says close or goes away.

    The requests waiting in the pipe when a commit starts are committed together, up to
    `group_lines` lines: one transaction, each request answered on its own. A write whose
    request gave up before it was taken is answered DROPPED and never written."""
    servers_end.close()  # the fork copied it: held here, the socket would never end when the server dies
    conn = _Frames(sock)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the server drains, then closes us
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _die_with(parent)
    settle_heap()  # what the server built before the fork lives as long as this process

    def take(slots: list[int]) -> list[bool]:
        with states_lock:
            kept = [states[slot] == WAITING for slot in slots]
            for slot, keep in zip(slots, kept):
                if keep:
                    states[slot] = TAKEN
        return kept

    held = None  # a call read while gathering requests, answered next
    while True:
        try:
            name, args = held if held is not None else conn.recv()
            held = None
            if name == "commit":
                group = [args]
                lines = len(args[1])
                while lines < group_lines and conn.waiting():
                    name, args = conn.recv()
                    if name != "commit":
                        held = (name, args)
                        break
                    group.append(args)
                    lines += len(args[1])
                kept = take([slot for slot, _, _ in group])
                taken = [(lines, source) for (_, lines, source), keep in zip(group, kept) if keep]
                answers = iter(_commit(work, taken))
                conn.send(b"".join(_frame(next(answers) if keep else (DROPPED, None)) for keep in kept))
                continue
            if name == "tick":
                slot, now, force = args
                if not take([slot])[0]:
                    conn.send(_frame((DROPPED, None)))
                    continue
                args = (now, force)
        except (EOFError, OSError):  # the server is gone without a word
            work.close()
            return
        try:
            if name not in _CALLS:
                raise ValueError(f"no call {name!r}")
            answer = ("ok", getattr(work, name)(*args))
        except BaseException as err:  # answered: the server raises it for the request(s) concerned
            answer = ("error", _portable(err))
        try:
            conn.send(_frame(answer))
        except OSError:  # the server is gone
            work.close()
            return
        if name == "close":
            return


def settle_heap() -> None:
    """After start-up, a garbage collector policy for a long-running process that makes many short-lived objects
    (the server and its writer).

    What start-up built (modules, compiled journeys, schemas) lives as long as the process: frozen, the
    collector never scans it again. Young collections run every 50,000 new objects instead of 700: each
    request makes thousands, nearly all freed by reference counting, so the default threshold spent about
    a tenth of the server's CPU looking for cycles that were not there (docs/service.md, Throughput). Not
    `batch_gc(freeze=True)` as `coltiva run`: a collection and a freeze after every commit cost more than a
    small request's commit.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def _commit(work: WriterWork, group: list[Request]) -> list[tuple[str, Any]]:
    """The requests of a group in one transaction: one answer each, or the same error for each."""
    if not group:
        return []
    try:
        return [("ok", answer) for answer in work.commit(group)]
    except BaseException as err:  # nothing of any of them was kept
        return [("error", _portable(err))] * len(group)


def _die_with(parent: int) -> None:
    """Ask the kernel to SIGKILL this process when the server's process dies (Linux); else watch the pipe."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the pipe's end of file stops the loop instead
        pass
    if os.getppid() != parent:  # the server died before the request above: nobody to work for
        os._exit(1)


def _portable(err: BaseException) -> BaseException:
    """The error itself if it crosses the pipe intact, else a RuntimeError that says what it was."""
    try:
        pickle.loads(pickle.dumps(err))
        return err
    except Exception:
        return RuntimeError(f"{type(err).__name__}: {err}")


@dataclass
class _Job:
    """One request's write (its lines) or a tick, waiting for its answer."""

    call: str                    # "commit" or "tick"
    args: tuple                  # (slot, lines, source) or (slot, now, force)
    lines: int                   # event lines (0 for a tick)
    future: asyncio.Future = field(repr=False)


class Writer:
    """The server's side of the writer: sends each write in order, awaits its answer, bounds what waits."""

    def __init__(self, work: WriterWork, *, queue_lines: int, group_lines: int,
                 on_commit: Callable[[int, int, float], None] | None = None,
                 on_gone: Callable[[str], None] | None = None):
        self.process = WriterProcess(work, group_lines)  # forked now: before the server has threads or sockets
        self.queue_lines = queue_lines
        self._on_commit = on_commit
        self._on_gone = on_gone
        self._loop: asyncio.AbstractEventLoop | None = None
        self._free = deque(range(SLOTS))  # the slots of no write waiting
        self._jobs: set[asyncio.Task] = set()
        self._unanswered: dict[int, _Job] = {}  # by slot
        self.pending_lines = 0  # the event lines not answered yet (taken or not): what `queue_lines` bounds
        self.opened: Opened | None = None
        self.last_tick: int | None = None
        self.cached: dict[str, int] = {}  # how many records each cache holds after the last commit (for /metrics)

    # -- lifecycle -----------------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self.process.connect()
        opened: Opened = await self.process.ask("open")
        self.opened, self.last_tick = opened, opened.last_tick

    async def close(self) -> None:
        """Answer every write sent or queued, then close the store and end the writer's process."""
        while self._jobs:
            await asyncio.gather(*self._jobs, return_exceptions=True)
        await self.process.close()

    def release(self) -> None:
        """End the writer's process if `close` did not (the app never started, or stopped on an error)."""
        self.process.release()

    # -- what requests call --------------------------------------------------------
    def submit(self, lines: list[bytes] | ReadLines, source: str) -> _Job:
        """Send a request's lines; `job.future` gives its Summary once committed. Busy when too much waits."""
        if self.pending_lines and self.pending_lines + len(lines) > self.queue_lines:
            raise Busy(f"the writer has {self.pending_lines:,} event lines waiting; retry shortly")
        return self._queue("commit", (lines, source), len(lines))

    async def events(self, lines: list[bytes] | ReadLines, source: str) -> Summary:
        return await self.submit(lines, source).future

    def submit_tick(self, now: int, force: bool = True) -> _Job:
        """Send a tick to `now`; never backwards; unless `force`, not far beyond the clock and the latest event."""
        return self._queue("tick", (now, force), 0)

    async def tick(self, now: int, force: bool = True) -> Summary:
        return await self.submit_tick(now, force).future

    def give_up(self, job: _Job) -> bool:
        """The request's deadline passed: cancel its answer. True if it was dropped (the writer had not taken
        it: nothing of it is written); False if the writer has it (it may still be committed)."""
        job.future.cancel()
        slot = job.args[0]
        with self.process.states_lock:
            if self.process.states[slot] == WAITING:
                self.process.states[slot] = GIVEN_UP
                return True
            return False

    def run_sync(self, fn: Callable[[Any], Any]) -> Any:
        """Run fn(store) in the writer's process, from a thread other than the event loop's (delivery bookkeeping).

        `fn` is a module-level function or a functools.partial of one: it crosses to the writer's process."""
        assert self._loop is not None, "start() first"
        return asyncio.run_coroutine_threadsafe(self.process.ask("call", fn), self._loop).result()

    @property
    def known_types(self) -> frozenset[str]:
        """The event types the runner reads (fixed once it is open): what `parse_event` is given for its lines."""
        assert self.opened is not None, "start() opens the runner"
        return self.opened.known_types

    @property
    def depth(self) -> int:
        """Writes waiting for the writer to take them (for /health and /metrics)."""
        states = self.process.states
        return sum(1 for slot in self._unanswered if states[slot] == WAITING)

    # -- sending and answering -------------------------------------------------------
    def _queue(self, call: str, args: tuple, lines: int) -> _Job:
        if not self._free:
            raise Busy(f"{SLOTS:,} writes are waiting for the writer; retry shortly")
        slot = self._free.popleft()
        self.process.states[slot] = WAITING  # nobody else looks at a free slot
        job = _Job(call, (slot, *args), lines, asyncio.get_running_loop().create_future())
        self._unanswered[slot] = job
        self.pending_lines += lines
        if lines <= INLINE_LINES:  # written now, in the order the requests came
            sent = self.process.send(_frame((call, job.args)))
            task = asyncio.ensure_future(self._answer(job, sent))
        else:  # a large one is pickled in a thread: the event loop goes on meanwhile
            task = asyncio.ensure_future(self._send_large(job))
        self._jobs.add(task)
        task.add_done_callback(self._jobs.discard)
        return job

    async def _send_large(self, job: _Job) -> None:
        frame = await asyncio.get_running_loop().run_in_executor(None, _frame, (job.call, job.args))
        if job.future.done():  # its request gave up meanwhile: never sent
            self._done(job)
            return
        await self._answer(job, self.process.send(frame))

    async def _answer(self, job: _Job, sent: asyncio.Future) -> None:
        try:
            answer = await sent
            if answer is DROPPED:
                return  # its request gave up before the writer took it: nothing of it was written
            if job.call == "commit":
                self.cached = answer.cached
                if answer.first and self._on_commit:
                    self._on_commit(answer.requests, answer.lines, answer.seconds)
                answer = answer.summary
            else:
                self.last_tick = job.args[1]
            if not job.future.done():  # a client that went away: its events are committed all the same
                job.future.set_result(answer)
        except Exception as err:  # every request of its transaction failed together: nothing of them was kept
            if isinstance(err, WriterGone) and self._on_gone is not None:
                self._on_gone(str(err))
            elif not isinstance(err, ServiceError):
                log.error("commit failed", extra={"error": f"{type(err).__name__}: {err}", "call": job.call})
            if not job.future.done():
                job.future.set_exception(err)
        finally:
            self._done(job)

    def _done(self, job: _Job) -> None:
        """Answered (or never sent): the writer is done with the job's slot."""
        del self._unanswered[job.args[0]]
        self.pending_lines -= job.lines
        self._free.append(job.args[0])


def _drop_oldest(cache: dict, keep: int) -> None:
    """Drop a dict's oldest entries (insertion order) beyond `keep`."""
    extra = len(cache) - keep
    if extra > 0:
        for key in list(itertools.islice(iter(cache), extra)):
            del cache[key]
