"""The service's settings: `coltiva.toml` (journeys, store, keys file, clock, limits, webhooks, Segment).

Every setting has a default, so `coltiva serve JOURNEY...` needs no file; options
given on the command line win over the file. Relative paths in the file are read
from the file's folder. See docs/service.md for every key.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from engine.record import OUTBOX_KINDS as ACTION_KINDS

from .errors import ConfigError

__all__ = ["Webhook", "ServiceConfig", "load_config", "config_for_store", "check_webhook_calls", "LOOPBACK",
           "ACTION_KINDS"]

LOOPBACK = ("127.0.0.1", "::1", "localhost")


@dataclass(frozen=True)
class Webhook:
    """One destination: the actions of some kinds (and content kinds) go to `url`, signed with `secret`."""

    name: str
    url: str
    secret: str
    kinds: tuple[str, ...] = ()           # action kinds (ACTION_KINDS); empty: every kind but `webhook`
    content_kinds: tuple[str, ...] = ()   # for sends: content kinds (email, ...); empty: every content kind
    timeout: float = 10.0
    max_attempts: int = 8                 # then the action goes to the dead letters
    backoff: float = 1.0                  # first retry after ~backoff s, doubling, with jitter
    max_backoff: float = 600.0
    concurrency: int = 8                  # calls in flight to this destination, at most (one per lead)

    def wants(self, action: dict) -> bool:
        if action.get("kind") == "webhook":  # `call webhook "NAME"` calls the destination named NAME, only it
            return action.get("webhook") == self.name
        if self.kinds and action.get("kind") not in self.kinds:
            return False
        if self.content_kinds and action.get("content_kind") not in self.content_kinds:
            return False
        return True


@dataclass(frozen=True)
class ServiceConfig:
    journeys: tuple[str, ...] = ()
    db: str = "coltiva.db"
    host: str = "127.0.0.1"
    port: int = 8787
    keys: str | None = None
    clock: str = "wall"                   # "wall": tick every `tick_every` s from the wall clock; "manual"
    tick_every: float = 60.0
    max_ahead_days: int = 90              # a tick further beyond the wall clock and the latest event needs force
    max_body: int = 16 * 1024 * 1024      # bytes per request
    read_deadline: float = 30.0           # seconds a client may take to send its body
    commit_deadline: float = 60.0         # seconds a request waits for its commit
    queue_lines: int = 200_000            # event lines waiting for the writer before 429
    group_lines: int = 20_000             # event lines per group commit, at most
    cache_leads: int = 200_000            # lead records the writer keeps in memory, at most
    webhooks: tuple[Webhook, ...] = ()
    deliver_every: float = 1.0            # seconds between delivery passes when idle
    delivery_seed: int | None = None      # seeds the retry jitter (tests); None: from os.urandom
    segment_types: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    log_requests: bool = True

    @property
    def loopback(self) -> bool:
        return self.host in LOOPBACK


_TOP = {"journeys", "store", "keys", "server", "clock", "webhooks", "segment", "delivery", "limits"}
#: The keys of each table: a misspelt key is named, never silently ignored.
_TABLES = {"server": {"host", "port"}, "clock": {"mode", "every", "max_ahead"},
           "limits": {"max_body_mb", "read_deadline", "commit_deadline", "queue_lines", "group_lines", "cache_leads"},
           "delivery": {"every", "seed"}, "segment": {"types"}}


def _get(table: dict, key: str, kind, where: str, default=None):
    if key not in table:
        return default
    value = table[key]
    ok = isinstance(value, kind) and not (isinstance(value, bool) and kind is not bool)
    if not ok:
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ConfigError(f"{where}.{key} must be a {names}, not {value!r}")
    return value


def _webhook(raw: dict, n: int, base: Path) -> Webhook:
    where = f"webhooks[{n}]"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a table ([[webhooks]])")
    url = _get(raw, "url", str, where)
    if not url or not url.startswith(("http://", "https://")):
        raise ConfigError(f"{where}.url must be an http:// or https:// address")
    secret = _get(raw, "secret", str, where)
    env = _get(raw, "secret_env", str, where)
    if env:
        secret = os.environ.get(env)
        if not secret:
            raise ConfigError(f"{where}.secret_env: the environment variable {env} is not set")
    if not secret:
        raise ConfigError(f"{where}: give a secret (or secret_env) to sign deliveries with")
    attempts = _get(raw, "max_attempts", int, where, 8)
    if attempts < 1:
        raise ConfigError(f"{where}.max_attempts must be at least 1")
    concurrency = _get(raw, "concurrency", int, where, 8)
    if concurrency < 1:
        raise ConfigError(f"{where}.concurrency must be at least 1")
    known = {"name", "url", "secret", "secret_env", "kinds", "content_kinds", "timeout", "max_attempts", "backoff",
             "max_backoff", "concurrency"}
    extra = set(raw) - known
    if extra:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(extra))}")
    for kind in _get(raw, "kinds", list, where, []):
        if kind not in ACTION_KINDS:
            import difflib

            guess = difflib.get_close_matches(str(kind), ACTION_KINDS, n=1)
            hint = f"did you mean {guess[0]!r}? " if guess else ""
            raise ConfigError(f"{where}.kinds: {kind!r} is not a kind of action ({hint}kinds: "
                              f"{', '.join(ACTION_KINDS)})")
    return Webhook(
        name=_get(raw, "name", str, where, f"webhook-{n + 1}"), url=url, secret=secret,
        kinds=tuple(_get(raw, "kinds", list, where, [])), content_kinds=tuple(_get(raw, "content_kinds", list, where, [])),
        timeout=float(_get(raw, "timeout", (int, float), where, 10.0)), max_attempts=attempts,
        backoff=float(_get(raw, "backoff", (int, float), where, 1.0)),
        max_backoff=float(_get(raw, "max_backoff", (int, float), where, 600.0)), concurrency=concurrency)


def load_config(path: str | Path | None) -> ServiceConfig:
    """Read coltiva.toml; a mistake names the key and what it should be."""
    if path is None:
        return ServiceConfig()
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the config ({err.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not valid TOML ({err})") from None
    unknown = set(data) - _TOP
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(_TOP))})")
    base = path.parent

    def rel(p: str) -> str:
        return str(p if Path(p).is_absolute() else base / p)

    cfg = ServiceConfig()
    journeys = _get(data, "journeys", list, "config", [])
    server = _get(data, "server", dict, "config", {})
    clock = _get(data, "clock", dict, "config", {})
    limits = _get(data, "limits", dict, "config", {})
    delivery = _get(data, "delivery", dict, "config", {})
    segment = _get(data, "segment", dict, "config", {})
    for name, table in (("server", server), ("clock", clock), ("limits", limits), ("delivery", delivery),
                        ("segment", segment)):
        extra = set(table) - _TABLES[name]
        if extra:
            raise ConfigError(f"{path}: unknown key(s) {', '.join(f'{name}.{k}' for k in sorted(extra))} "
                              f"(known in [{name}]: {', '.join(sorted(_TABLES[name]))})")
    types = _get(segment, "types", dict, "segment", {})
    if any(not isinstance(v, str) for v in types.values()):
        raise ConfigError("segment.types maps Segment event names to Coltiva event types (strings)")
    mode = _get(clock, "mode", str, "clock", cfg.clock)
    if mode not in ("wall", "manual"):
        raise ConfigError(f"clock.mode must be \"wall\" or \"manual\", not {mode!r}")
    every = float(_get(clock, "every", (int, float), "clock", cfg.tick_every))
    if every <= 0:
        raise ConfigError("clock.every must be a positive number of seconds")
    max_ahead = _get(clock, "max_ahead", int, "clock", cfg.max_ahead_days)
    if max_ahead < 0:
        raise ConfigError("clock.max_ahead must be a whole number of days, 0 or more")
    store = _get(data, "store", str, "config", None)
    keys = _get(data, "keys", str, "config", None)
    for name in ("max_body_mb", "read_deadline", "commit_deadline", "queue_lines", "group_lines"):
        value = limits.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value <= 0:
            raise ConfigError(f"limits.{name} must be above 0, not {value!r}")
    return replace(
        cfg,
        journeys=tuple(rel(j) for j in journeys),
        db=rel(store) if store else cfg.db,
        keys=rel(keys) if keys else None,
        host=_get(server, "host", str, "server", cfg.host),
        port=_get(server, "port", int, "server", cfg.port),
        clock=mode, tick_every=every, max_ahead_days=max_ahead,
        max_body=int(_get(limits, "max_body_mb", (int, float), "limits", cfg.max_body / 2 ** 20) * 2 ** 20),
        read_deadline=float(_get(limits, "read_deadline", (int, float), "limits", cfg.read_deadline)),
        commit_deadline=float(_get(limits, "commit_deadline", (int, float), "limits", cfg.commit_deadline)),
        queue_lines=_get(limits, "queue_lines", int, "limits", cfg.queue_lines),
        group_lines=_get(limits, "group_lines", int, "limits", cfg.group_lines),
        cache_leads=_get(limits, "cache_leads", int, "limits", cfg.cache_leads),
        webhooks=tuple(_webhook(w, n, base) for n, w in enumerate(_get(data, "webhooks", list, "config", []))),
        deliver_every=float(_get(delivery, "every", (int, float), "delivery", cfg.deliver_every)),
        delivery_seed=_get(delivery, "seed", int, "delivery", None),
        segment_types=MappingProxyType(dict(types)),
    )


def config_for_store(path: str | None, db: str | None) -> ServiceConfig:
    """The config a store command uses (`coltiva deliver`, `coltiva deliveries`): the file, then --db."""
    config = load_config(path)
    return replace(config, db=db) if db else config


def check_webhook_calls(config: ServiceConfig, journeys) -> None:
    """Every `call webhook "NAME"` of the journeys names a `[[webhooks]]` destination, else ConfigError.

    A `webhook` action goes to the destination of that name only: without one it
    would wait in the outbox forever, so the service refuses to start instead.
    """
    names = {hook.name for hook in config.webhooks}
    for journey in journeys:
        for stage in journey.stages:
            for act in stage.actions:
                if act.kind == "webhook" and act.value not in names:
                    import difflib

                    guess = difflib.get_close_matches(str(act.value), sorted(names), n=1)
                    hint = f" (did you mean {guess[0]!r}?)" if guess else ""
                    raise ConfigError(f"journey {journey.name!r} calls webhook {act.value!r} (line {act.span.line}), "
                                      f"but no [[webhooks]] entry has that name{hint}")
