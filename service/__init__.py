"""The Coltiva service: events in over HTTP, time passing by itself, actions out by webhook.

The engine stays pure and single-writer: this package adds the moving parts a
long-running process needs around it (an ASGI app, one writer task that
group-commits requests, read connections, API keys, a clock, webhook delivery,
Segment payloads, metrics and configuration). See docs/service.md.
"""

__all__: list[str] = []
