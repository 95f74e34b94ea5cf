"""Start the service: bind the socket (so `--port 0` can print the port it got), JSON logs, uvicorn.

uvicorn handles SIGTERM and SIGINT: it stops accepting connections, lets the
requests in flight finish (so the batch being committed is answered), then the
app's shutdown drains the writer's queue and closes the store.
"""

from __future__ import annotations

import json
import logging
import signal
import socket
import sys
import time

from .app import Service, create_app
from .config import ServiceConfig
from .errors import ConfigError
from .writer import WriterGone

__all__ = ["serve", "JsonFormatter", "setup_logging"]

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "color_message"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the record's extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        out = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
               "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage()}
        out.update({k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")})
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info).splitlines()[-1]
        return json.dumps(out, ensure_ascii=False, default=str)


def setup_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    for name in ("coltiva.service", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False
    logging.getLogger("uvicorn.access").disabled = True  # the app logs each request itself, as JSON


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # answers leave at once (no Nagle wait)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {err.strerror}") from None
    sock.listen(2048)  # a burst of clients queues instead of being reset
    sock.set_inheritable(True)
    return sock


def serve(config: ServiceConfig, open_runner, announce=print) -> None:
    """Run until SIGTERM/SIGINT. `open_runner` builds the writing Runner where the writer works."""
    setup_logging()
    svc = Service(config, open_runner)  # forks the writer's process: before any thread or socket of the server
    try:
        _run(svc, config, announce)
    finally:
        svc.release()
    if svc.gone:
        raise WriterGone(f"stopped: the writer's process ended ({svc.gone})")


def _run(svc: Service, config: ServiceConfig, announce) -> None:
    import uvicorn

    if not config.loopback and not svc.keys.active:
        raise ConfigError(f"listening on {config.host} (beyond this machine) needs API keys: "
                          "create one with `coltiva keys create NAME --scope ...` and pass --keys")
    app = create_app(svc)
    sock = _bind(config.host, config.port)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="on",
                                           proxy_headers=False,  # no use of the client's address: no rewriting
                                           # uvicorn annotates an int; it hands the value to asyncio.wait_for (a float)
                                           timeout_keep_alive=30,
                                           timeout_graceful_shutdown=config.commit_deadline,  # type: ignore[arg-type]
                                           h11_max_incomplete_event_size=64 * 1024))
    host = f"[{config.host}]" if ":" in config.host else config.host
    announce(f"listening on http://{host}:{port}")
    # uvicorn drains on SIGTERM, then re-raises it to the handler in place before it started:
    # this one lets the drained service exit 0 (a stop asked for is not a failure)
    signal.signal(signal.SIGTERM, lambda *_: None)
    server.run(sockets=[sock])
    logging.getLogger("coltiva.service").info("stopped")
    if not server.started:
        raise ConfigError("the service did not start (see the log above)")
