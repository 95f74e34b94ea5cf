"""The one writer: every write to the store goes through a single thread, in request order.

Requests that arrive while a commit is in progress wait in a queue; the writer then
takes all of them (up to `group_lines` event lines) and commits them in ONE
transaction (`Runner.run_requests`), answering each with its own summary. So
throughput grows with concurrency (one fsync for many requests) and the store
keeps exactly one writer. A request is answered only after its commit: 2xx means
durable. When the queue holds more than `queue_lines` lines, new requests are
refused with 429 and Retry-After instead of piling up in memory.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, cast

from engine.runner import ReadLines, Runner, Summary

from .clock import MAX_AHEAD_DAYS, check_tick
from .errors import Busy, ServiceError

__all__ = ["Writer", "summary_json"]

log = logging.getLogger("coltiva.service")


def summary_json(summary: Summary) -> dict:
    return {"lines": summary.lines, "applied": summary.applied, "duplicates": summary.duplicates,
            "quarantined": summary.quarantined, "ticked_leads": summary.ticked_leads,
            "actions": dict(summary.actions)}


@dataclass
class _Events:
    lines: list[bytes] | ReadLines
    source: str
    future: asyncio.Future = field(repr=False)
    taken: bool = False  # the writer has it in a group: it will be committed even if its request gave up


@dataclass
class _Tick:
    now: int
    force: bool
    future: asyncio.Future = field(repr=False)
    taken: bool = False


class Writer:
    """Owns the writing Store and Runner on one thread; the event loop only queues and awaits."""

    def __init__(self, open_runner: Callable[[], Runner], *, queue_lines: int, group_lines: int, cache_leads: int,
                 on_commit: Callable[[int, int, float], None] | None = None, max_ahead_days: int = MAX_AHEAD_DAYS):
        self._open_runner = open_runner
        self.queue_lines = queue_lines
        self.group_lines = max(1, group_lines)
        self.cache_leads = max(0, cache_leads)
        self._on_commit = on_commit
        self.max_ahead_days = max_ahead_days
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="coltiva-writer")
        self._jobs: deque[_Events | _Tick | None] = deque()
        self._wake = asyncio.Event()  # start() makes a fresh one (an Event binds to a loop only on first use)
        self._task: asyncio.Task | None = None
        self.pending_lines = 0
        self.runner: Runner | None = None
        self.last_tick: int | None = None

    # -- lifecycle -----------------------------------------------------------------
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.runner = await loop.run_in_executor(self._executor, self._open_runner)
        self.last_tick = await loop.run_in_executor(self._executor, self.runner.store.last_tick)
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._loop(), name="coltiva-writer")

    async def close(self) -> None:
        """Finish every queued job (the requests in flight are answered), then close the store."""
        if self._task is not None:
            self._jobs.append(None)
            self._wake.set()
            await self._task
        loop = asyncio.get_running_loop()
        if self.runner is not None:
            await loop.run_in_executor(self._executor, self.runner.store.close)
        self._executor.shutdown(wait=True)

    # -- what requests call --------------------------------------------------------
    def submit(self, lines: list[bytes] | ReadLines, source: str) -> _Events:
        """Queue a request's lines; `job.future` gives its Summary once committed. Busy when the queue is full.

        A future cancelled before the writer takes its job (the request's deadline passed) drops
        the job: nothing of it is written (`job.taken` stays False).
        """
        if self.pending_lines and self.pending_lines + len(lines) > self.queue_lines:
            raise Busy(f"the writer has {self.pending_lines:,} event lines waiting; retry shortly")
        future = asyncio.get_running_loop().create_future()
        self.pending_lines += len(lines)
        job = _Events(lines, source, future)
        self._jobs.append(job)
        self._wake.set()
        return job

    async def events(self, lines: list[bytes] | ReadLines, source: str) -> Summary:
        return await self.submit(lines, source).future

    def submit_tick(self, now: int, force: bool = True) -> _Tick:
        """Queue a tick to `now`; never backwards; unless `force`, not far beyond the clock and the latest event."""
        job = _Tick(now, force, asyncio.get_running_loop().create_future())
        self._jobs.append(job)
        self._wake.set()
        return job

    async def tick(self, now: int, force: bool = True) -> Summary:
        return await self.submit_tick(now, force).future

    def run_sync(self, fn: Callable):
        """Run fn(store) on the writer's thread from another thread (delivery bookkeeping)."""
        return self._executor.submit(lambda: fn(self._opened().store)).result()

    def _opened(self) -> Runner:
        assert self.runner is not None, "start() opens the runner"
        return self.runner

    @property
    def known_types(self) -> frozenset[str]:
        """The event types the runner reads (fixed once it is open): what `parse_event` is given for its lines."""
        return self._opened().known_types

    @property
    def depth(self) -> int:
        return len(self._jobs)

    # -- the writer's loop ---------------------------------------------------------
    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self._jobs:
                self._wake.clear()
                await self._wake.wait()
            job = self._jobs.popleft()
            if job is None:
                return
            if isinstance(job, _Tick):
                if job.future.done():  # its request gave up before the writer took it
                    continue
                job.taken = True
                await self._settle([job], loop.run_in_executor(self._executor, self._tick, job.now, job.force))
                continue
            group: list[_Events] = []
            dropped = 0
            lines = 0
            while True:  # every request waiting (up to group_lines lines) goes into ONE transaction
                if job.future.done():  # its request gave up (deadline) before the writer took it: not written
                    dropped += len(job.lines)
                else:
                    job.taken = True
                    group.append(job)
                    lines += len(job.lines)
                if not (self._jobs and isinstance(self._jobs[0], _Events) and lines < self.group_lines):
                    break
                job = cast(_Events, self._jobs.popleft())  # an _Events: checked just above
            self.pending_lines -= dropped
            if not group:
                continue
            started = time.perf_counter()
            requests = [(j.lines, j.source) for j in group]
            await self._settle(group, loop.run_in_executor(self._executor, self._commit, requests))
            self.pending_lines -= lines
            if self._on_commit:
                self._on_commit(len(group), lines, time.perf_counter() - started)

    async def _settle(self, jobs: list, work) -> None:
        try:
            results = await work
        except Exception as err:  # every request of the group failed together: nothing was kept
            if not isinstance(err, ServiceError):
                log.error("commit failed", extra={"error": f"{type(err).__name__}: {err}", "requests": len(jobs)})
            for j in jobs:
                if not j.future.done():
                    j.future.set_exception(err)
            return
        if not isinstance(results, list):
            results = [results]
        for j, result in zip(jobs, results):
            if not j.future.done():  # a client that went away: its events are committed all the same
                j.future.set_result(result)

    def _commit(self, requests) -> list[Summary]:
        summaries = self._opened().run_requests(requests)
        self._trim_cache()
        return summaries

    def _tick(self, now: int, force: bool) -> Summary:
        runner = self._opened()
        check_tick(runner.store, now, force=force, last_tick=self.last_tick, max_ahead_days=self.max_ahead_days)
        summary = runner.tick(now)
        self.last_tick = now
        self._trim_cache()
        return summary

    def _trim_cache(self) -> None:
        """Bound the runner's caches, the lead records and the lead-wide records: drop the oldest entries
        (they reload from the store on use; what is cached is committed by then)."""
        runner = self._opened()
        _drop_oldest(runner.cache, self.cache_leads)
        _drop_oldest(runner.wides, self.cache_leads)

    @property
    def cached(self) -> dict[str, int]:
        """How many records each cache holds now (for /metrics)."""
        runner = self.runner
        return {"lead": len(runner.cache), "lead_wide": len(runner.wides)} if runner is not None else {}


def _drop_oldest(cache: dict, keep: int) -> None:
    """Drop a dict's oldest entries (insertion order) beyond `keep`."""
    extra = len(cache) - keep
    if extra > 0:
        for key in list(itertools.islice(iter(cache), extra)):
            del cache[key]
