"""Why a lead is where it is: replay its logged inputs through the pure step, with tracing on.

Nothing extra is stored per step: the input log and the step function are
enough to rebuild every step exactly. The replayed record is compared with the
stored one, so `explain` also proves the store agrees with the journey.
"""

from __future__ import annotations

from dataclasses import dataclass

from .events import parse_event
from .record import Lead
from .step import advance, step_event
from .store import Store

__all__ = ["Explanation", "explain_lead"]


@dataclass
class Explanation:
    journey: str
    version: str
    steps: list[dict]
    stored: Lead
    replayed: Lead | None

    @property
    def consistent(self) -> bool:
        return self.replayed == self.stored


def explain_lead(store: Store, lead: str) -> list[Explanation]:
    records = dict(store.lead_journeys(lead))
    inputs = store.lead_inputs(lead)
    out = []
    for cj in store.journeys():
        if cj.name not in records:
            continue
        rec: Lead | None = None
        trace: list[dict] = []
        for kind, time, payload, reached in inputs:
            if cj.name not in reached:
                continue
            if kind == "tick":
                if rec is not None:
                    rec, _ = advance(cj, rec, lead, time, trace)
                continue
            event = parse_event(payload)  # the logged line was valid when it was applied
            rec, _ = step_event(cj, rec, lead, event, trace)
        out.append(Explanation(cj.name, cj.version, trace, records[cj.name], rec))
    return out
