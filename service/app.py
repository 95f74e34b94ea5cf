"""The ASGI app (FastAPI on uvicorn): routes, API keys, limits, JSON errors, the clock and delivery tasks.

Reads run in worker threads on read-only connections; writes queue for the one
writer (service.writer) and are answered after their commit. Every error is
JSON `{"error": ...}` with its status: 400 bad input, 401 no or unknown key,
403 key without the scope (or a browser page in open mode), 404, 408 body too
slow, 409 time going backwards, 413 too large, 429 writer busy (Retry-After),
503 not committed in time (retry: event ids make it safe).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import signal
import time
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from engine.events import format_time, parse_time
from engine.runner import ReadLines

from .config import ServiceConfig
from .errors import Busy, ServiceError
from .events import InvalidEvents, read_events
from .keys import KeyRing
from .metrics import CONTENT_TYPE, Metrics
from .reads import Readers
from .segment import ValidationError, parse_segment, to_lines, event_schemas
from .writer import Writer, WriterWork, settle_heap, summary_json

if TYPE_CHECKING:
    from .delivery import Deliverer

__all__ = ["Service", "create_app"]

log = logging.getLogger("coltiva.service")
MAX_LIMIT = 100_000
#: A body up to this size is validated on the event loop (a few ms at most); a larger one in a worker thread.
INLINE_BYTES = 256 * 1024


class SummaryOut(BaseModel):
    """What one request did, after its commit."""

    lines: int
    applied: int
    duplicates: int
    quarantined: int
    ticked_leads: int
    actions: dict[str, int]


class VersionOut(BaseModel):
    journey: str
    version: str
    current: bool


class ProblemOut(BaseModel):
    line: int
    field: str
    problem: str


class ErrorOut(BaseModel):
    error: str
    problems: list[ProblemOut] | None = None


class HealthOut(BaseModel):
    status: str
    queue: int
    last_tick: str | None


def _errors(*codes: int) -> dict:
    text = {400: "bad input", 401: "no or unknown API key", 403: "the key lacks the scope", 404: "not found",
            408: "body sent too slowly", 409: "time would go backwards", 413: "body too large",
            429: "writer busy: retry after Retry-After seconds", 503: "not committed in time: retry"}
    return {c: {"model": ErrorOut, "description": text[c]} for c in codes}


class Service:
    """Everything one running service holds: config, writer, readers, keys, metrics, background tasks."""

    def __init__(self, config: ServiceConfig, open_runner):
        self.config = config
        self.metrics = Metrics()
        work = WriterWork(open_runner, cache_leads=config.cache_leads, max_ahead_days=config.max_ahead_days)
        # the writer's process is forked here, before the server starts (docs/service.md, One writer)
        self.writer = Writer(work, queue_lines=config.queue_lines, group_lines=config.group_lines,
                             on_commit=self._committed, on_gone=self._writer_gone)
        self.gone: str | None = None  # why the writer's process ended, if it did
        self.readers = Readers(config.db)
        self.keys = KeyRing(config.keys)
        self.stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        self.requests = itertools.count(1)
        self.tasks: list[asyncio.Task] = []
        self.deliverer: Deliverer | None = None
        self.delivering: asyncio.Future | None = None

    def _committed(self, requests: int, lines: int, seconds: float) -> None:
        self.metrics.commit_seconds.observe(seconds)
        self.metrics.commit_requests.observe(requests)

    def _writer_gone(self, why: str) -> None:
        """The writer's process ended under the service (killed, out of memory): stop, so a supervisor restarts
        it; until then every write answers 503 and nothing is half-written (its transaction died with it)."""
        if self.gone is None:
            self.gone = why
            log.critical("the writer's process ended: stopping", extra={"error": why})
            os.kill(os.getpid(), signal.SIGTERM)  # uvicorn drains the requests in flight, then the app stops

    def count(self, summary) -> None:
        m = self.metrics.events
        m.labels("applied").inc(summary.applied)
        m.labels("duplicate").inc(summary.duplicates)
        m.labels("quarantined").inc(summary.quarantined)

    async def start(self) -> None:
        await self.writer.start()
        if self.writer.last_tick is not None:
            self.metrics.last_tick.set(self.writer.last_tick)
        if self.config.clock == "wall":
            self.tasks.append(asyncio.create_task(self._clock(), name="coltiva-clock"))
        if self.config.webhooks:
            import random

            from .delivery import Deliverer

            loop = asyncio.get_running_loop()
            self.deliverer = await loop.run_in_executor(None, lambda: Deliverer(
                self.config.webhooks, self.readers.run, self.writer.run_sync, metrics=self.metrics,
                rng=random.Random(self.config.delivery_seed), every=self.config.deliver_every))
            self.delivering = loop.run_in_executor(None, self.deliverer.loop)
        settle_heap()

    async def stop(self) -> None:
        if self.deliverer is not None and self.delivering is not None:
            self.deliverer.stop()
            try:
                await self.delivering  # the calls in flight end (or time out) and are recorded before the writer closes
            except Exception as err:  # logged; the writer still drains and closes
                log.error("delivery stopped with an error", extra={"error": f"{type(err).__name__}: {err}"})
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.writer.close()
        self.readers.close()

    def release(self) -> None:
        """End the writer's process if the app did not (it never started, or stopped on an error)."""
        self.writer.release()

    async def tick(self, now: int, force: bool = True, deadline=None):
        job = self.writer.submit_tick(now, force)
        summary = await (deadline(job) if deadline is not None else job.future)
        self.metrics.ticks.inc()
        self.metrics.last_tick.set(now)
        log.info("tick", extra={"now": format_time(now), "ticked_leads": summary.ticked_leads,
                                "actions": dict(summary.actions)})
        if self.deliverer is not None:
            self.deliverer.wake()
        return summary

    async def _clock(self) -> None:
        """Tick from the wall clock every `tick_every` seconds: the engine is given `now`, never reads it."""
        while True:
            await asyncio.sleep(self.config.tick_every)
            now = int(time.time())
            if self.writer.last_tick is not None and now <= self.writer.last_tick:
                continue
            try:
                await self.tick(now)
            except Exception as err:  # logged; the next tick tries again
                log.error("tick failed", extra={"error": f"{type(err).__name__}: {err}"})


# -- every request: its log line and metric, its limits -------------------------------------
class AccessLog:
    """Pure ASGI middleware: one JSON log line and one metric per request (cheaper than BaseHTTPMiddleware)."""

    def __init__(self, app, svc: "Service"):
        self.app, self.svc = app, svc

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = 500  # if the app raises, the outer error handler answers 500

        async def sending(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.svc.metrics.requests.labels(route, str(status)).inc()
            if self.svc.config.log_requests and route != "/health":
                log.info("request", extra={"method": scope["method"], "path": scope["path"], "status": status,
                                           "ms": round(1000 * (time.perf_counter() - started), 2)})


class BodyGuard:
    """Pure ASGI middleware: a body larger than `max_body`, or slower than `deadline`, is refused.

    The deadline covers the whole body, so a client sending a byte a second holds only its
    own connection, and only until the deadline; other requests never wait for it.
    """

    def __init__(self, app, max_body: int, deadline: float):
        self.app, self.max_body, self.deadline = app, max_body, deadline

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0 or declared > self.max_body:
                    status = 413 if declared > self.max_body else 400
                    msg = (f"a request carries at most {self.max_body:,} bytes" if status == 413
                           else "Content-Length must be a whole number")
                    return await JSONResponse({"error": msg}, status)(scope, receive, send)
        end = asyncio.get_running_loop().time() + self.deadline
        received = 0
        done = False

        async def guarded():
            nonlocal received, done
            if done:
                return await receive()
            try:
                async with asyncio.timeout_at(end):  # no task per chunk, unlike wait_for
                    message = await receive()
            except TimeoutError:
                raise HTTPException(408, f"the body was not sent within {self.deadline:g} s") from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise HTTPException(413, f"a request carries at most {self.max_body:,} bytes")
                done = not message.get("more_body", False)
            return message

        await self.app(scope, guarded, send)


async def _bearer_scope(svc: Service, request: Request, creds: HTTPAuthorizationCredentials | None,
                        scope: str) -> None:
    if not svc.keys.configured:
        # open mode: only on loopback (serve refuses otherwise), and never for a web page of another site
        if request.headers.get("origin") or request.headers.get("sec-fetch-site") not in (None, "none", "same-origin"):
            raise HTTPException(403, "requests from web pages are refused when no API keys are configured")
        return
    if creds is None or creds.scheme.lower() != "bearer" or not creds.credentials:
        raise HTTPException(401, "an API key is required: send `Authorization: Bearer <key>` "
                                 "(create one with `coltiva keys create NAME --scope ...`)")
    key = svc.keys.known(creds.credentials)  # a key seen before: no scrypt, no thread
    if key is None:
        key = await run_in_threadpool(svc.keys.verify, creds.credentials)
    if key is None:
        raise HTTPException(401, "unknown or revoked API key")
    if not key.allows(scope):
        raise HTTPException(403, f"the key {key.name!r} lacks the scope {scope!r}")


_bearer = HTTPBearer(auto_error=False)


def need(scope: str):
    async def check(request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]):
        await _bearer_scope(request.app.state.svc, request, creds, scope)

    return Depends(check)


async def _allowed(svc: Service, request: Request, scope: str) -> None:
    """What `need(scope)` checks, called directly (EventsLane): the same bearer parsing, the same rules."""
    await _bearer_scope(svc, request, await _bearer(request), scope)


def _where(errors) -> str:
    """pydantic's errors as `place: problem; ...` (the first ten)."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in list(errors)[:10])


def _error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status, headers=headers)


def _error_answer(exc: Exception, path: str) -> JSONResponse:
    """The JSON answer to an exception of a request (the app's exception handlers and EventsLane give the same)."""
    if isinstance(exc, HTTPException):
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code in (408, 413):  # the rest of the body was not read: this connection is done
            headers["Connection"] = "close"
        return _error(exc.status_code, str(exc.detail), headers)
    if isinstance(exc, InvalidEvents):  # each problem with its place, for a client that drops those lines
        return JSONResponse({"error": str(exc), "problems": [
            {"line": p.line, "field": p.field, "problem": p.problem} for p in exc.problems]}, exc.status)
    if isinstance(exc, ServiceError):
        return _error(exc.status, str(exc), {"Retry-After": str(exc.retry_after)} if isinstance(exc, Busy) else None)
    log.error("request failed", extra={"path": path, "error": f"{type(exc).__name__}: {exc}"})
    return _error(500, f"{type(exc).__name__}: {exc}; nothing of this request was kept, retry it")


class EventsLane:
    """Pure ASGI middleware: `POST /events`, the hot path, answered without FastAPI's routing, dependency
    solving and exception middleware (about a third of the event loop's time per request under load).

    It sits inside AccessLog and BodyGuard (logged, counted, size and time limits as any request) and
    calls the same code as the routes: the key check (`need`'s), `read_body`, the answer, and
    `_error_answer` for errors. The FastAPI route stays: it documents `/events` in /openapi.json and
    answers 405 to other methods.
    """

    def __init__(self, app, handle, route):
        self.app, self.handle, self.route = app, handle, route

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] != "/events" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        scope["route"] = self.route  # AccessLog's metric label, as for a routed request
        request = Request(scope, receive)
        try:
            answer = await self.handle(request)
        except Exception as exc:
            answer = _error_answer(exc, "/events")
        await answer(scope, receive, send)


def create_app(svc: Service) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app):
        await svc.start()
        try:
            yield
        finally:
            await svc.stop()

    app = FastAPI(title="Coltiva", version="1", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None,
                  description="Events in, time passing, actions out. See docs/service.md.")
    app.state.svc = svc

    @app.exception_handler(HTTPException)
    async def http_error(request, exc: HTTPException):
        return _error_answer(exc, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def invalid(request, exc: RequestValidationError):
        return _error(400, _where(exc.errors()) or "invalid request")

    @app.exception_handler(ServiceError)
    async def refused(request, exc: ServiceError):
        return _error_answer(exc, request.url.path)

    @app.exception_handler(Exception)
    async def crashed(request, exc: Exception):
        return _error_answer(exc, request.url.path)

    async def read_body(request: Request) -> bytes:
        chunks = []
        async for chunk in request.stream():
            chunks.append(chunk)
        return b"".join(chunks)

    async def committed(job):
        """The job's Summary once committed; 503 if not within `commit_deadline` (then dropped if still queued)."""
        try:
            async with asyncio.timeout(svc.config.commit_deadline):
                return await asyncio.shield(job.future)
        except TimeoutError:
            if svc.writer.give_up(job):
                raise ServiceError("not committed within the deadline, and dropped: nothing of it was kept; "
                                   "send it again", 503) from None
            raise ServiceError("not committed within the deadline: it may still be; retry the same events "
                               "(their ids make a retry safe)", 503) from None

    async def commit(lines: list[bytes] | ReadLines, source: str) -> JSONResponse:
        summary = await committed(svc.writer.submit(lines, source))
        svc.count(summary)
        if svc.deliverer is not None and any(summary.actions.values()):
            svc.deliverer.wake()
        return JSONResponse(summary_json(summary))  # already the documented shape: no second validation

    # -- routes ---------------------------------------------------------------------------
    @app.get("/health", response_model=HealthOut, summary="Liveness: answers without touching the store")
    async def health():
        last = svc.writer.last_tick
        return {"status": "ok", "queue": svc.writer.depth, "last_tick": format_time(last) if last else None}

    def write_route(path: str, content: dict, summary: str):
        """A POST that carries events: events:write scope, its body documented, answered after the commit."""
        return app.post(path, response_model=SummaryOut, dependencies=[need("events:write")],
                        responses=_errors(400, 401, 403, 408, 413, 429, 503), summary=summary,
                        openapi_extra={"requestBody": {"required": True, "content": content}})

    @write_route("/events", {"application/x-ndjson": {"schema": {"type": "string"}},
                             "application/json": {"schema": {"$ref": "#/components/schemas/ColtivaEvent"}}},
                 "Coltiva events as JSON Lines (or one JSON object); answered after the commit")
    async def post_events(request: Request):
        return await events_answer(request)

    async def events_answer(request: Request) -> JSONResponse:
        body = await read_body(request)
        lines = body.splitlines()
        # read and validated before the writer sees them: a line that is not an event refuses the whole request
        # (400); the writer takes the lines as read (docs/service.md, Validation first)
        known = svc.writer.known_types
        read, found, total = (read_events(lines, known) if len(body) <= INLINE_BYTES
                              else await run_in_threadpool(read_events, lines, known))  # large: /health is not held
        if total:
            raise InvalidEvents(found, total)
        return await commit(read, f"http {svc.stamp}-{next(svc.requests)}")

    @write_route("/segment", {"application/json": {"schema": {"$ref": "#/components/schemas/SegmentPayload"}}},
                 "Segment Spec track / identify / batch payloads")
    async def post_segment(request: Request):
        body = await read_body(request)
        try:
            payload = parse_segment(body)
        except ValidationError as err:
            raise ServiceError(f"not a Segment track/identify/batch payload: {_where(err.errors())}") from None
        lines = to_lines(payload, svc.config.segment_types)
        return await commit(lines, f"segment {svc.stamp}-{next(svc.requests)}")

    @app.post("/tick", response_model=SummaryOut, dependencies=[need("admin")],
              responses=_errors(400, 401, 403, 409, 503),
              summary="Fire what is due up to `now` (time never goes backwards)")
    async def post_tick(now: Annotated[str, Query(description="ISO 8601 with a zone")],
                        force: Annotated[bool, Query(description="allow a tick far beyond the clock")] = False):
        try:
            moment = parse_time(now)
        except ValueError as err:
            raise ServiceError(f"`now`: {err}") from None
        return summary_json(await svc.tick(moment, force, deadline=committed))

    @app.get("/leads", dependencies=[need("actions:read")], responses=_errors(401, 403),
             response_model=dict[str, dict[str, int]], summary="Leads per stage of each journey")
    async def leads():
        return await run_in_threadpool(svc.readers.stage_counts)

    @app.get("/versions", dependencies=[need("actions:read")], responses=_errors(401, 403),
             response_model=list[VersionOut], summary="Every journey version in the store, the current ones marked")
    async def versions():
        return await run_in_threadpool(svc.readers.versions)

    @app.get("/actions", dependencies=[need("actions:read")], responses={
        200: {"content": {"application/x-ndjson": {"schema": {"type": "string"}}},
              "description": "the outbox after position `after`, one action a line, streamed"},
        **_errors(400, 401, 403)}, summary="The outbox, paged and streamed")
    async def actions(after: Annotated[int, Query(ge=0, le=2 ** 62)] = 0,
                      limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 1000,
                      kind: Annotated[str | None, Query(max_length=100)] = None):
        return StreamingResponse(svc.readers.action_pages(after, limit, kind), media_type="application/x-ndjson")

    @app.get("/quarantine", dependencies=[need("actions:read")], responses={
        200: {"content": {"application/x-ndjson": {"schema": {"type": "string"}}},
              "description": "events kept aside after position `after`, streamed"},
        **_errors(400, 401, 403)}, summary="Events kept aside, with the reason")
    async def quarantine(after: Annotated[int, Query(ge=0, le=2 ** 62)] = 0,
                         limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 1000):
        return StreamingResponse(svc.readers.quarantine_pages(after, limit), media_type="application/x-ndjson")

    @app.get("/explain/{lead}", dependencies=[need("actions:read")], responses=_errors(401, 403, 404),
             response_model=list[dict[str, Any]], summary="Every step of a lead, replayed from the log")
    async def explain(lead: str):
        found = await run_in_threadpool(svc.readers.explain, lead)
        if not found:
            raise HTTPException(404, f"no lead {lead!r} in the store")
        return found

    @app.get("/schema/events.json", dependencies=[need("actions:read")], responses=_errors(401, 403),
             response_model=dict[str, Any], summary="JSON Schema of the events accepted")
    async def schema():
        return event_schemas()

    @app.get("/metrics", dependencies=[need("actions:read")], responses={
        200: {"content": {CONTENT_TYPE: {"schema": {"type": "string"}}}, "description": "Prometheus text format"},
        **_errors(401, 403)}, summary="Prometheus metrics")
    async def metrics():
        m = svc.metrics
        m.queue_depth.set(svc.writer.depth)
        m.queue_lines.set(svc.writer.pending_lines)  # what `queue_lines` bounds: taken or not, not answered yet
        for kind, count in svc.writer.cached.items():
            m.cached.labels(kind).set(count)
        m.due_leads.set(await run_in_threadpool(svc.readers.due_leads))
        if svc.deliverer is not None:
            await run_in_threadpool(svc.deliverer.observe)
        return Response(m.render(), media_type=CONTENT_TYPE)

    # the published schemas for the request bodies documented above
    original_openapi = app.openapi

    def openapi():
        if app.openapi_schema is None:
            spec = original_openapi()
            schemas = event_schemas()
            components = spec.setdefault("components", {}).setdefault("schemas", {})
            components["ColtivaEvent"] = schemas["coltiva_event"]
            segment = schemas["segment_payload"]
            components.update({k: v for k, v in segment.pop("$defs", {}).items()})
            components["SegmentPayload"] = json.loads(json.dumps(segment).replace("#/$defs/", "#/components/schemas/"))
            for name in list(components):
                components[name] = json.loads(json.dumps(components[name]).replace("#/$defs/",
                                                                                     "#/components/schemas/"))
            # FastAPI documents 422 for parameters it validates; this service answers those with 400
            for operations in spec["paths"].values():
                for operation in operations.values():
                    operation["responses"].pop("422", None)
            for name in ("HTTPValidationError", "ValidationError"):
                components.pop(name, None)
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend the schema

    async def lane(request: Request) -> JSONResponse:
        await _allowed(svc, request, "events:write")
        return await events_answer(request)

    route = next(r for r in app.routes if getattr(r, "path", None) == "/events")
    app.add_middleware(EventsLane, handle=lane, route=route)  # innermost: inside the limits and the log
    app.add_middleware(BodyGuard, max_body=svc.config.max_body, deadline=svc.config.read_deadline)
    app.add_middleware(AccessLog, svc=svc)

    @app.get("/openapi.json", dependencies=[need("actions:read")], include_in_schema=False)
    async def openapi_json():
        return JSONResponse(app.openapi())

    return app
