"""Plan, then apply: what a new version of a live journey does to the leads in flight, shown before it is done.

`make_plan` is a dry run: it reads the journey's leads and runs the very switch
that `apply_plan` will run (engine.migrate.switch_lead), so the plan shown is the
change made. The plan's hash covers the store state it read (engine.store.Store.digest),
the new version, the policy and the switch instant: `apply_plan` refuses a hash
that no longer matches, and writes the switch in one transaction.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field

from dsl.errors import PlanError

from .compiler import CompiledJourney, lead_rules
from .events import format_time
from .migrate import POLICIES, Moves, follows, moves_between, switch_lead, unmapped_stage
from .record import DONE, Lead
from .runner import collect_actions
from .step import advance, advance_lead
from .store import Store, text_changes
from .timers import meant_sends, release_time, window_due

__all__ = ["Plan", "StageMove", "SendChange", "make_plan", "apply_plan", "pending_sends", "plan_lines"]


@dataclass(frozen=True)
class StageMove:
    """How many leads on `version` in stage `source` are in `target` after the switch (the same when they stay)."""

    version: str
    source: str
    target: str
    leads: int


@dataclass(frozen=True)
class SendChange:
    """Scheduled sends of one content id that the change cancels, adds or re-times, and the earliest instant."""

    content: str
    leads: int
    earliest: int | None


@dataclass
class Plan:
    journey: str
    current: str | None
    new_version: str
    policy: str
    at: int
    changes: list[str]
    leads: int = 0
    stay: int = 0                                     # leads that stay on their version (drain)
    moves: list[StageMove] = field(default_factory=list)
    cancelled: list[SendChange] = field(default_factory=list)
    added: list[SendChange] = field(default_factory=list)
    retimed: list[SendChange] = field(default_factory=list)
    at_once: int = 0                                  # leads the switch itself moves (a threshold they now meet)
    switch_actions: dict = field(default_factory=dict)  # kind -> count, emitted at the switch instant
    catch_up: int = 0                                 # actions the old version had due by the switch instant
    refusals: list[str] = field(default_factory=list)
    digest: str = ""
    # what apply writes: each switched lead's record on the new version, and the actions, in lead order
    records: dict[str, Lead] = field(default_factory=dict, repr=False)
    actions: list = field(default_factory=list, repr=False)

    @property
    def hash(self) -> str:
        material = json.dumps([self.journey, self.current, self.new_version, self.policy, self.at, self.digest])
        return hashlib.sha256(material.encode()).hexdigest()[:16]

    def to_json(self) -> dict:
        def sends(items):
            return [{"content": s.content, "leads": s.leads, "earliest": format_time(s.earliest)} for s in items]

        return {
            "journey": self.journey, "from": self.current, "to": self.new_version, "policy": self.policy,
            "at": format_time(self.at), "changes": self.changes, "leads": self.leads, "stay": self.stay,
            "moves": [{"version": m.version, "from": m.source, "to": m.target, "leads": m.leads} for m in self.moves],
            "sends": {"cancelled": sends(self.cancelled), "added": sends(self.added), "retimed": sends(self.retimed)},
            "moved_at_once": self.at_once, "at_switch": dict(sorted(self.switch_actions.items())),
            "due_before_switch": self.catch_up, "refusals": self.refusals, "plan": self.hash,
        }


def pending_sends(cj: CompiledJourney, rec: Lead) -> dict[str, int]:
    """Content the lead's stage will still send, by id, with when (derived exactly as engine.timers does)."""
    plan = cj.stages.get(rec.state)
    if plan is None:
        return {}
    release = release_time(cj, rec) if cj.caps else None
    out: dict[str, int] = {}
    for meant, send in meant_sends(cj, plan, rec):
        due = meant if release is None or release <= meant else release
        out[send.content] = window_due(cj, rec, due)
    return out


#: How many instants a lead's journeys are stepped forward to see when its sends go (a bound, never met by a
#: stage's own sends: each instant fires at least one timer).
MAX_SIMULATED_INSTANTS = 1_000


def simulated_sends(journeys: list[CompiledJourney], rules, records: dict[str, Lead], wide, lead: str, name: str,
                    contents: set[str]) -> dict[str, int]:
    """When each of `contents` goes out in journey `name`, by stepping every journey of the lead forward on its
    timers alone (no further event): under lead-wide rules a send's instant depends on the other journeys' sends
    (the cap across journeys, priorities), which no derivation from one record can see. Stops when the lead
    leaves the stage it is in, when all of `contents` went, or when nothing more is due."""
    stage = records[name].state if name in records else None
    out: dict[str, int] = {}
    for _ in range(MAX_SIMULATED_INSTANTS):
        due = min((r.due for r in records.values() if r.due is not None), default=None)
        if due is None or stage is None or contents <= out.keys():
            break
        step = advance_lead(journeys, rules, records, wide, lead, due)
        records, wide = step.records, step.wide
        for a in step.actions:
            content = a.data.get("content")
            if a.journey == name and a.kind == "send" and content in contents and content not in out:
                out[content] = a.time
        if records[name].state != stage:
            break
    return out


def _renamed(moves: Moves, content: str) -> str:
    for was, now in moves.contents:
        if was == content:
            content = now
    return content


def make_plan(store: Store, new: CompiledJourney, policy: str = "migrate", at: int | None = None) -> Plan:
    """A dry run of switching `new.name` to `new` under `policy` at `at` (default: the store's last instant)."""
    if policy not in POLICIES:
        raise PlanError(f"unknown policy {policy!r}: use one of {', '.join(POLICIES)}")
    if store.format < 2:
        raise PlanError(f"{store.path}: store format {store.format} keeps no versions yet; open it once with a "
                        "writer (`coltiva tick`) to migrate it, then plan")
    last = store.last_input_time()
    at = last if at is None else at
    if at < last:
        raise PlanError(f"the switch instant {format_time(at)} is before the last input the store applied "
                        f"({format_time(last)}): a change cannot be applied in the past")
    current = store.current_version(new.name)
    old_text = store.stored_text(new.name, current) if current else None
    plan = Plan(new.name, current, new.version, policy, at,
                text_changes(old_text, new.text) if old_text is not None else ["+ (a new journey)"],
                digest=store.digest(new.name))
    versions: dict[str, CompiledJourney] = {new.version: new}
    # the lead-wide rules of the journeys as they will run (C113 if the new version disagrees with the others)
    running = store.journeys()
    rules = lead_rules([new, *(cj for cj in running if cj.name != new.name)])
    rules_now = lead_rules(running)
    other = functools.cache(store.compiled)  # the other journeys' versions, each rebuilt once, not once per lead
    wides = store.load_wides([lead for lead, _ in store.leads_of(new.name)]) if rules.active or rules_now.active else {}
    moves_from: dict[str, Moves] = {}
    moved: Counter = Counter()
    cancelled: dict[str, list] = {}
    added: dict[str, list] = {}
    retimed: dict[str, list] = {}
    refused: Counter = Counter()
    for lead, stored in store.leads_of(new.name):
        plan.leads += 1
        rec, version = stored.record, stored.version
        if version not in versions:
            versions[version] = store.compiled(new.name, version)
        old = versions[version]
        if not follows(policy, rec) or version == new.version:
            plan.stay += version != new.version and rec.state not in DONE
            continue
        moves = moves_from.setdefault(version, moves_between(old, new))
        if unmapped_stage(old, new, rec.state, moves):
            refused[(version, rec.state)] += 1
            continue
        # the old version fires what it had due by the switch instant, then the switch proper
        caught, catch_up = advance(old, rec, lead, at)
        plan.catch_up += len(catch_up)
        after, at_switch = switch_lead(old, new, caught, lead, at, moves,  # nothing left due: only the switch
                                       wide=wides.get(lead), rules=rules)
        for a in at_switch:
            plan.switch_actions[a.kind] = plan.switch_actions.get(a.kind, 0) + 1
        if any(a.kind in ("stage", "exit") for a in at_switch):
            plan.at_once += 1
        if caught.state not in DONE:
            moved[(version, caught.state, after.state)] += 1
        before = {_renamed(moves, c): due for c, due in pending_sends(old, caught).items()}
        later = pending_sends(new, after)
        if rules.active or rules_now.active:  # the lead's other journeys decide when its sends go
            others = {j: s for j, s in store.lead_versions(lead).items() if j != new.name}
            both = [other(j, s.version) for j, s in others.items()]
            rest = {j: s.record for j, s in others.items()}
            wide = wides.get(lead)
            before = {_renamed(moves, c): due for c, due in simulated_sends(
                [*both, old], rules_now, {**rest, new.name: caught}, wide, lead, new.name, set(before)).items()}
            later = simulated_sends([*both, new], rules, {**rest, new.name: after}, wide, lead, new.name, set(later))
        later.update({a.data["content"]: a.time for a in at_switch
                      if a.kind == "send" and "edition" not in a.data})
        for content, due in before.items():
            if content not in later:
                cancelled.setdefault(content, []).append(due)
            elif later[content] != due:
                retimed.setdefault(content, []).append(later[content])
        for content, due in later.items():
            if content not in before:
                added.setdefault(content, []).append(due)
        plan.records[lead] = after
        plan.actions.extend(catch_up + at_switch)
    plan.moves = [StageMove(v, s, t, n) for (v, s, t), n in sorted(moved.items())]
    for table, out in ((cancelled, plan.cancelled), (added, plan.added), (retimed, plan.retimed)):
        out.extend(SendChange(c, len(times), min(times)) for c, times in sorted(table.items()))
    plan.refusals = [f"{n} lead(s) in stage `{stage}` (version {version}): version {new.version} has no stage "
                     f"`{stage}` and no move for it; add `stage {stage} -> STAGE` (or `-> exit`) to a `moves` block"
                     for (version, stage), n in sorted(refused.items())]
    return plan


def apply_plan(store: Store, new: CompiledJourney, sources: dict[str, str], policy: str, plan_hash: str,
               at: int | None = None, applied_at: str | None = None, command: str = "apply") -> Plan:
    """Make the change the plan `plan_hash` showed, in one transaction; refuse if the store moved since."""
    plan = make_plan(store, new, policy, at)
    if plan.current == new.version:
        raise PlanError(f"version {new.version} of {new.name!r} is already the one that runs: nothing to apply")
    if plan.hash != plan_hash:
        raise PlanError(f"plan {plan_hash} is not the plan of this change on the store as it is now (plan "
                        f"{plan.hash}): the store changed since, or the journey, the policy or the instant differ; "
                        "run `coltiva plan` again and read it")
    if plan.refusals:
        raise PlanError("the plan has refusals:\n  " + "\n  ".join(plan.refusals))
    actions: list = []
    transitions: list = []
    collect_actions(plan.actions, actions, transitions)
    switch = store.switch_input(new.name, plan.current, new.version, policy, plan.at) if plan.current else None
    sources_json = json.dumps(sources or {new.journey.path: new.text}, ensure_ascii=False)
    store.write_switch(new, sources_json, command=command, applied_at=applied_at, policy=policy,
                       note=f"plan {plan.hash}", switch=switch,
                       leads=[(new.name, lead, new.version, rec) for lead, rec in plan.records.items()],
                       actions=actions, transitions=transitions)
    return plan


def plan_lines(plan: Plan) -> list[str]:
    """The plan for people, as plain lines (the `plan` command prints them; `diff --db` reuses them)."""
    out = [f"plan for {plan.journey!r}: version {plan.current or '(none)'} -> {plan.new_version}, "
           f"policy {plan.policy}, at {format_time(plan.at)}"]
    if plan.current == plan.new_version:
        out.append("  no change: this version already runs")
        return out + [f"plan {plan.hash}"]
    out.append("what changed in meaning:")
    out += [f"    {line}" for line in plan.changes[:40]] or ["    (nothing in meaning: labels, layout or comments)"]
    if len(plan.changes) > 40:
        out.append(f"    ... and {len(plan.changes) - 40} more line(s)")
    out.append(f"leads in the journey: {plan.leads}")
    if plan.policy == "drain":
        out.append(f"  {plan.stay} lead(s) in flight finish on their version; new leads enter {plan.new_version}")
    for m in plan.moves:
        where = "stay in" if m.source == m.target else f"move to {m.target} from"
        out.append(f"  {m.leads} lead(s) {where} {m.source} (version {m.version})")
    for label, items in (("cancelled", plan.cancelled), ("added", plan.added), ("re-timed", plan.retimed)):
        for s in items:
            out.append(f"  scheduled sends {label}: {s.content!r} for {s.leads} lead(s), earliest "
                       f"{format_time(s.earliest)}")
    if plan.catch_up:
        out.append(f"  {plan.catch_up} action(s) the current version has due by the switch fire first")
    if plan.at_once:
        out.append(f"  {plan.at_once} lead(s) move at once at the switch (a threshold or timer of the new version)")
    if plan.switch_actions:
        out.append("  at the switch: " + ", ".join(f"{n} {kind}" for kind, n in sorted(plan.switch_actions.items())))
    for refusal in plan.refusals:
        out.append(f"  REFUSED: {refusal}")
    out.append(f"plan {plan.hash}")
    return out
