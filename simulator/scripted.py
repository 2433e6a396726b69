"""Scripted traffic events on top of the regular traffic: a runaway script that exhausts
the smallest daily budget (the router answers 402), and a one-day spend spike on one
workload and model (a job pointed at the most expensive model) big enough for the anomaly
detector and a budget threshold alert. Sizes adapt to the config's prices and budgets."""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass
from decimal import Decimal

from routing_core.config import LedgerConfig
from routing_core.money import format_usd
from routing_core.planning import Planner
from routing_core.routes import RouteRequest
from routing_core.schema import Usage
from simulator.faults import FaultEvent, TimelineDays, _at
from simulator.traffic import Call, Workflow


@dataclass(slots=True)
class _Target:
    api_key_id: str
    workload: str | None
    member_id: str | None
    model: str
    est_usd: Decimal  # estimated cost of one call


def _cost_of(
    planner: Planner,
    api_key_id: str,
    workload: str | None,
    member: str | None,
    model: str,
    usage: Usage,
    at: dt.datetime,
) -> Decimal | None:
    plan = planner.plan(
        RouteRequest(
            api_key_id=api_key_id, models=(model,), workload=workload, member_id=member, at=at
        )
    )
    if plan.error is not None or not plan.attempts:
        return None
    a = plan.attempts[0]
    return planner.prices.list_usd(a.model, a.provider, usage, at.date())


def _priciest(
    planner: Planner,
    config: LedgerConfig,
    api_key_id: str,
    workload: str | None,
    member: str | None,
    usage: Usage,
    at: dt.datetime,
    allowed: list[str] | None = None,
) -> _Target | None:
    best: _Target | None = None
    for m in config.models:
        if allowed is not None and m.id not in allowed:
            continue
        c = _cost_of(planner, api_key_id, workload, member, m.id, usage, at)
        if c is not None and (best is None or c > best.est_usd):
            best = _Target(api_key_id, workload, member, m.id, c)
    return best


_SPIKE_USAGE = Usage(
    input_tokens=36000, cache_read_tokens=0, cache_write_tokens=0, output_tokens=1500
)
_RUNAWAY_USAGE = Usage(input_tokens=40000, output_tokens=3000)


def scripted(
    config: LedgerConfig, start: dt.date, days: int, seed: int
) -> tuple[list[Workflow], list[FaultEvent]]:
    """(extra workflows, their descriptions for the manifest)."""
    td = TimelineDays.for_period(start, days)
    planner = Planner(config)
    flows: list[Workflow] = []
    events: list[FaultEvent] = []
    rng = random.Random(f"{seed}:scripted")

    # ---- budget exhaustion: the smallest daily limit or guardrail budget
    candidates: list[tuple[Decimal, str, str, str | None]] = []  # usd, kind, api key, member
    for a in config.api_keys:
        if a.limit and a.limit.reset == "daily":
            candidates.append((a.limit.usd, f"api key {a.id} limit", a.id, a.owner))
        for g in config.guardrails:
            if g.budget and g.budget.reset == "daily" and a.guardrail == g.id:
                candidates.append(
                    (g.budget.usd, f"guardrail {g.id} budget on {a.id}", a.id, a.owner)
                )
    candidates.sort(key=lambda c: (c[0], c[2]))
    if candidates and days >= 1:
        usd, what, api_id, member = candidates[0]
        api = config.api_key(api_id)
        day = start + dt.timedelta(days=td.budget)
        at = _at(day, 13)
        tgt = _priciest(planner, config, api_id, api.default_workload, member, _RUNAWAY_USAGE, at)
        if tgt is not None and tgt.est_usd > 0:
            n = min(250, math.ceil(usd * Decimal("1.4") / tgt.est_usd) + 15)
            wf_id = f"wf-{day:%Y%m%d}-{api_id}-runaway"
            calls = [Call(i * (15 + 10 * rng.random()), 40000, 0, 0, 3000, 0) for i in range(n)]
            flows.append(
                Workflow(
                    wf_id,
                    at,
                    api_id,
                    api.default_workload,
                    member,
                    (tgt.model,),
                    "script",
                    calls,
                    tag="runaway",
                    outcome_per="none",
                    meta={"on_error": "continue", "max_errors": "15", "limit_usd": str(usd)},
                )
            )
            events.append(
                FaultEvent(
                    "budget_exhausted",
                    f"a runaway script on {api_id} calls {tgt.model} in a loop from 13:00 UTC until "
                    f"the {what} (${usd}/day) is used up",
                    at,
                    at + dt.timedelta(seconds=calls[-1].offset_s + 1),
                    targets={
                        "api_key_id": api_id,
                        "member_id": member,
                        "model": tgt.model,
                        "limit": what,
                        "usd": str(usd),
                        "calls": n,
                    },
                    expect="requests answered 402 (limit exhausted) with no provider attempt once "
                    "the budget is spent",
                )
            )

    # ---- spend spike: one workload, one model, one day
    budget = next(
        (
            b
            for b in sorted(config.budgets, key=lambda b: b.usd)
            if b.scope == "workload" and b.period == "daily"
        ),
        None,
    )
    wl_id = budget.match if budget else None
    api = next((a for a in config.api_keys if wl_id and a.default_workload == wl_id), None)
    if api is None:
        api = next((a for a in config.api_keys if a.environment == "prod"), config.api_keys[0])
        wl_id = api.default_workload
    day = start + dt.timedelta(days=td.spike)
    at = _at(day, 2)
    tgt = _priciest(planner, config, api.id, wl_id, api.owner, _SPIKE_USAGE, at)
    if tgt is not None and tgt.est_usd > 0 and days >= 3:
        target = max(
            budget.usd * Decimal("1.5") if budget else Decimal(0), config.alerts.min_impact_usd * 5
        )
        n = min(400, math.ceil(target / tgt.est_usd))
        per_job = 20
        for j in range(math.ceil(n / per_job)):
            k = min(per_job, n - j * per_job)
            wf_id = f"wf-{day:%Y%m%d}-{api.id}-spike{j:02d}"
            jstart = at + dt.timedelta(minutes=12 * j + rng.random() * 5)
            calls = [Call(i * (4 + 3 * rng.random()), 36000, 0, 0, 1500, 0) for i in range(k)]
            flows.append(
                Workflow(
                    wf_id,
                    jstart,
                    api.id,
                    wl_id,
                    api.owner,
                    (tgt.model,),
                    "batch",
                    calls,
                    tag="spike",
                    outcome_per="request",
                )
            )
        events.append(
            FaultEvent(
                "spend_spike",
                f"a {wl_id or api.id} job was pointed at {tgt.model} for one night: {n} long calls "
                f"(~{format_usd(tgt.est_usd * n)} at list price)",
                at,
                at + dt.timedelta(hours=5),
                targets={
                    "api_key_id": api.id,
                    "workload": wl_id,
                    "model": tgt.model,
                    "day": day.isoformat(),
                    "calls": n,
                    "estimated_list_usd": str((tgt.est_usd * n).quantize(Decimal("0.01"))),
                    "budget": budget.id if budget else None,
                },
                expect="an anomaly on this workload/model for the day and the daily budget's "
                "threshold alerts",
            )
        )
    return flows, events
