"""`coltiva serve JOURNEY...`: take events over HTTP, on the same runner and store as `coltiva run`.

A deliberately small server (the standard library's, one request at a time, so
writes to the store stay serialized): it wraps the runner and adds no meaning
of its own. Endpoints:

    POST /events          JSON Lines (or one JSON object) -> summary as JSON
    POST /tick?now=TIME   fire what is due up to TIME      -> summary as JSON
    GET  /leads           leads per stage of each journey  -> JSON
    GET  /actions?after=N the outbox after position N      -> JSON Lines
    GET  /health          "ok"
"""

from __future__ import annotations

import itertools
import json
import signal
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlparse

import click

from ._common import compile_files, db_option, writing_store

__all__ = ["command", "MAX_BODY"]

MAX_BODY = 64 * 1024 * 1024
READ_TIMEOUT = 30  # seconds a client may take to send its request


def _summary_json(summary) -> dict:
    return {"lines": summary.lines, "applied": summary.applied, "duplicates": summary.duplicates,
            "quarantined": summary.quarantined, "ticked_leads": summary.ticked_leads,
            "actions": dict(summary.actions)}


def make_handler(runner, store):
    requests = itertools.count(1)

    class Handler(BaseHTTPRequestHandler):
        server_version = "coltiva"
        timeout = READ_TIMEOUT  # a client that stalls mid-request cannot hold the server

        def log_message(self, fmt, *args):  # one line per request on stderr, without the date
            sys.stderr.write(f"{self.command} {self.path} -> {args[1] if len(args) > 1 else ''}\n")

        def _send(self, status: int, body: str, kind: str = "application/json") -> None:
            data = body.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", f"{kind}; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, message: str) -> None:
            self._send(status, json.dumps({"error": message}) + "\n")

        def do_GET(self):
            self._safely(self._get)

        def do_POST(self):
            self._safely(self._post)

        def _safely(self, handle) -> None:
            """A failure answers 500 with the reason; the store's transaction was rolled back."""
            try:
                handle()
            except (ConnectionError, TimeoutError):
                raise
            except Exception as err:
                self._error(500, f"{type(err).__name__}: {err}; nothing of this request was kept, retry it")

        def _get(self):
            url = urlparse(self.path)
            if url.path == "/health":
                return self._send(200, "ok\n", "text/plain")
            if url.path == "/leads":
                return self._send(200, json.dumps(store.stage_counts(), ensure_ascii=False) + "\n")
            if url.path == "/actions":
                try:
                    after = int(parse_qs(url.query).get("after", ["0"])[0])
                except ValueError:
                    return self._error(400, "`after` must be a whole number (an outbox position)")
                lines = [json.dumps({"seq": seq, **a}, ensure_ascii=False) for seq, a in store.actions(after=after)]
                return self._send(200, "".join(line + "\n" for line in lines), "application/x-ndjson")
            return self._error(404, f"no such endpoint: GET {url.path}")

        def _post(self):
            from engine.events import parse_time

            url = urlparse(self.path)
            if url.path == "/tick":
                try:
                    now = parse_time(parse_qs(url.query).get("now", [""])[0])
                except ValueError as err:
                    return self._error(400, f"`now`: {err}")
                return self._send(200, json.dumps(_summary_json(runner.tick(now))) + "\n")
            if url.path != "/events":
                return self._error(404, f"no such endpoint: POST {url.path}")
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                return self._error(411, "send the events with a Content-Length (chunked bodies are not read)")
            try:
                length = int(self.headers.get("Content-Length", ""))
            except ValueError:
                return self._error(411, "a Content-Length header is required")
            if length < 0:
                return self._error(400, "Content-Length must not be negative")
            if length > MAX_BODY:
                return self._error(413, f"a request carries at most {MAX_BODY // (1024 * 1024)} MiB of events")
            body = self.rfile.read(length)
            summary = runner.run_lines(body.splitlines(), source=f"http request {next(requests)}")
            return self._send(200, json.dumps(_summary_json(summary)) + "\n")

    return Handler


@click.command("serve")
@click.argument("journeys", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@db_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8787, show_default=True, help="0 picks a free port.")
def command(journeys, db, host, port):
    """Accept events over HTTP (POST /events, JSON Lines) and step leads as they arrive."""
    from engine.runner import Runner

    compiled = compile_files(journeys)
    with writing_store(compiled, db) as store:
        runner = Runner(store, [cj for cj, _ in compiled])
        try:
            server = HTTPServer((host, port), make_handler(runner, store))
        except OSError as err:
            raise click.ClickException(f"cannot listen on {host}:{port}: {err.strerror}") from None
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
        click.echo(f"listening on http://{host}:{server.server_address[1]}", err=False)
        sys.stdout.flush()
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            click.echo("stopped", err=True)
        finally:
            server.server_close()
