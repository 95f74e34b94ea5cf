"""Coltiva on Apache Flink: the pure step, keyed by lead, with records in Flink state.

`logic` is what happens to one lead (no Flink needed); `job` is the PyFlink job
around it; `sinks` is where actions, records and quarantined lines go. PyFlink is
an optional extra, installed in its own environment (`make flink`).
"""

__all__ = ["logic", "job", "sinks"]
