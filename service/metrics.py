"""Prometheus metrics for /metrics: events/s (as counters), queue depth, due leads, delivery lag and failures."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["Metrics", "CONTENT_TYPE"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """One registry per service (never the global one: tests start several services in one process)."""

    def __init__(self):
        r = self.registry = CollectorRegistry()
        self.events = Counter("coltiva_events", "Event lines by outcome (rate() gives events/s)", ["outcome"],
                              registry=r)
        self.requests = Counter("coltiva_http_requests", "HTTP requests answered", ["route", "status"], registry=r)
        self.commit_seconds = Histogram("coltiva_commit_seconds", "Seconds per group commit", registry=r)
        self.commit_requests = Histogram("coltiva_commit_requests", "Requests per group commit", registry=r,
                                         buckets=(1, 2, 5, 10, 20, 50, 100, 200))
        self.queue_depth = Gauge("coltiva_writer_queue_depth", "Jobs waiting for the writer", registry=r)
        self.queue_lines = Gauge("coltiva_writer_queue_lines", "Event lines waiting for the writer", registry=r)
        self.cached = Gauge("coltiva_cached_records", "Records the writer keeps in memory (at most cache_leads each)",
                            ["kind"], registry=r)
        self.due_leads = Gauge("coltiva_due_leads", "Lead records with something due now", registry=r)
        self.last_tick = Gauge("coltiva_last_tick_timestamp_seconds", "Time of the last tick", registry=r)
        self.ticks = Counter("coltiva_ticks", "Ticks applied", registry=r)
        self.delivered = Counter("coltiva_deliveries", "Webhook calls by destination and result",
                                 ["destination", "result"], registry=r)
        self.delivery_lag = Gauge("coltiva_delivery_lag_actions", "Outbox actions not yet past a destination's offset",
                                  ["destination"], registry=r)
        self.dead_letters = Gauge("coltiva_dead_letters", "Actions in the dead-letter list", ["destination"],
                                  registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
