"""The fast synthesizer: above the router path's size (`ROUTER_MAX_PER_DAY`) it writes
request records and outcome events directly, through the router's own record encoder
(routing_core.record, so the shape and key order are the router's), routed by the same `Planner`, priced with the same rules as `PriceBook.cost` and
`ByokFeeMeter` (integer arithmetic in 1e-15 USD, rounded half-even to 9 decimals like
`q9`), with the same fault timeline evaluated by `FaultModel`. It meters what each
provider account served exactly like the fakes do, so invoices and the platform statement
come from the same writers as in router mode.

Simplifications (documented): no cooldowns between requests, no app retries, and API key
limits / guardrail budgets are enforced only for the scripted runaway.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

from routing_core.config import LedgerConfig
from routing_core.planning import Planner
from routing_core.record import (
    ZERO_COST,
    ZERO_USAGE,
    attempt_head,
    attempt_json,
    cost_json_str,
    request_line,
    route_fragment,
    usage_json_ints,
    who_fragment,
)
from routing_core.routes import RouteRequest
from routing_core.schema import OUTCOMES_DIR, REQUESTS_DIR, SCHEMA_VERSION
from simulator.drive import DriveStats
from simulator.faults import FaultEvent, FaultModel
from simulator.invoices import UsageMeter
from simulator.statement import StatementMeter
from simulator.traffic import KeyProfile, Workflow, day_workflows

WRITER_ID = "synth"
F = 10**15  # femto-dollars per dollar
_F_PER_NANO = 10**6


def _ppt(price_per_m: Decimal) -> int:
    """USD per 1M tokens -> femto-dollars per token (exact for <= 9 decimal places)."""
    v = price_per_m * 1_000_000_000
    if v != v.to_integral_value():
        raise ValueError(f"price {price_per_m} has more than 9 decimal places")
    return int(v)


def _div_half_even(n: int, d: int) -> int:
    q, r = divmod(n, d)
    if 2 * r > d or (2 * r == d and q % 2 == 1):
        q += 1
    return q


def _money(n: int) -> str:
    """Nano-dollars as the log's fixed 9-decimal string."""
    if n < 0:
        return "-" + _money(-n)
    return f"{n // 1_000_000_000}.{n % 1_000_000_000:09d}"


@dataclass(slots=True)
class _Route:
    model: str
    provider: str
    credential: str
    key_id: str | None
    upstream: str
    zdr: bool
    api: str
    prices: tuple[int, int, int, int]  # femto per token: input, cache read, cache write, output
    no_cache_read: bool
    no_cache_write: bool
    reasoning: bool
    attempt_head: str  # '{"model":..,"provider":..,"credential":..,"key_id":..,'
    served_json: str  # '"model":..,"provider":..,..,"account":{..}' of a served record
    # What this route served today: input, cache read, cache write, output, reasoning,
    # requests, list, fee, credits (nano-dollars); flushed into the meters at day end.
    acc: list[int] = field(default_factory=lambda: [0] * 9)


def _frac(d: Decimal) -> tuple[int, int]:
    f = Fraction(str(d))
    return f.numerator, f.denominator


class _Pricer:
    """`PriceBook.cost` + `ByokFeeMeter.charge` semantics in integers (femto-dollars),
    every layer rounded half-even to nano-dollars like `q9`."""

    def __init__(self, config: LedgerConfig):
        # factor = (100 - pct) / 100 as an integer ratio, per key
        self.discount: dict[str | None, tuple[int, int]] = {}
        for k in config.byok_keys:
            n, d = _frac(Decimal(100) - k.provider_discount_pct)
            self.discount[k.id] = (n, d * 100)
        n, d = _frac(Decimal(100) + config.shared_capacity.price_markup_pct)
        self.markup = (n, d * 100)
        n, d = _frac(config.platform.byok_fee_pct)
        self.fee = (n, d * 100)
        self.allowance_f = int(config.platform.byok_free_allowance_usd * F)
        self.mtd: dict[str, int] = {}

    def cost(
        self, r: _Route, inp: int, cr: int, cw: int, out: int, month: str
    ) -> tuple[int, int, int, int]:
        p = r.prices
        list_f = inp * p[0] + cr * p[1] + cw * p[2] + out * p[3]
        list_n = _div_half_even(list_f, _F_PER_NANO)
        if r.credential == "byok":
            n, d = self.discount.get(r.key_id, (1, 1))
            prov_n = _div_half_even(list_f * n, d * _F_PER_NANO)
            before = self.mtd.get(month, 0)
            after = before + list_f
            self.mtd[month] = after
            chargeable = after - max(before, self.allowance_f)
            fee_n = 0
            if chargeable > 0:
                fee_n = _div_half_even(chargeable * self.fee[0], self.fee[1] * _F_PER_NANO)
            return list_n, prov_n, fee_n, 0
        n, d = self.markup
        return list_n, 0, 0, _div_half_even(list_f * n, d * _F_PER_NANO)


class _DayWriter:
    def __init__(self, logs_dir: Path):
        self.logs_dir = logs_dir
        self.buf: dict[tuple[str, str], list[str]] = {}

    def lines(self, kind: str, day: str) -> list[str]:
        return self.buf.setdefault((kind, day), [])

    def flush(self) -> None:
        """Append buffered lines to their files; the lists are emptied in place (callers
        keep references to them)."""
        for (kind, day), lines in self.buf.items():
            if not lines:
                continue
            p = self.logs_dir / kind / f"dt={day}" / f"{WRITER_ID}.jsonl"
            p.parent.mkdir(parents=True, exist_ok=True)
            with open(p, "a", encoding="utf-8") as f:
                f.write("\n".join(lines))
                f.write("\n")
            lines.clear()


def _ts(day_prefix: str, ms_of_day: int) -> str:
    s, ms = divmod(ms_of_day, 1000)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return f"{day_prefix}T{h:02d}:{m:02d}:{s:02d}.{ms:03d}Z"


# Attempt (status, http_status, error_type) of a scripted fault.
_FAULT_ATTEMPT = {
    "rate_limit": ("rate_limited", 429, "rate_limit_error"),
    "revoked": ("auth_error", 401, "authentication_error"),
}
_REASON = {"rate_limited": "rate_limited", "auth_error": "auth_error"}


def _j(v: object) -> str:
    return json.dumps(v, separators=(",", ":"))


def _flush_meters(
    routes_cache: dict, day: dt.date, prefix: str, meter: UsageMeter, statement: StatementMeter
) -> None:
    """Move the day's per-route totals into the provider meter and the statement."""
    for key, val in routes_cache.items():
        if key[-1] != day or val is None:
            continue
        for ro in val[1]:
            a = ro.acc
            if not a[5]:
                continue
            meter.add(
                ro.provider, day, ro.key_id or "shared", ro.upstream, a[0], a[1], a[2], a[3], n=a[5]
            )
            statement.add(
                prefix,
                ro.model,
                ro.provider,
                ro.credential == "byok",
                a[7],
                a[8],
                a[6],
                a[0] + a[1] + a[2],
                a[3],
                a[4],
                n=a[5],
            )
            ro.acc = [0] * 9


def synthesize(
    config: LedgerConfig,
    logs_dir: Path,
    start: dt.date,
    days: int,
    rpd: int,
    seed: int,
    profiles: list[KeyProfile],
    extra_flows: list[Workflow],
    faults: list[FaultEvent],
    quality: dict[str, float],
    progress: Callable | None,
    meter: UsageMeter,
    statement: StatementMeter,
) -> DriveStats:
    """Write `days` days of records and outcomes under `logs_dir` (see module doc)."""
    planner = Planner(config)
    pricer = _Pricer(config)
    fault_model = FaultModel(faults)
    api_of = {p.id: p.api for p in config.providers}
    ep_of = {(m.id, ep.provider): ep for m in config.models for ep in m.endpoints}
    account = {k.id: dict(k.account) for k in config.byok_keys}
    stats = DriveStats()
    writer = _DayWriter(logs_dir)
    routes_cache: dict[tuple, tuple | None] = {}
    rng = random.Random(f"{seed}:synth")
    rand = rng.random
    bits = random.Random(f"{seed}:ids").getrandbits  # 96-bit ids, deterministic per seed

    def new_id(prefix: str, _kind: int) -> str:
        return f"{prefix}{bits(96):024x}"

    def routes_for(wf: Workflow, day: dt.date):
        key = (wf.api_key_id, wf.models, wf.workload, wf.member_id, wf.style == "agent", day)
        hit = routes_cache.get(key, False)
        if hit is not False:
            return hit
        req = RouteRequest(
            api_key_id=wf.api_key_id,
            models=wf.models,
            workload=wf.workload,
            member_id=wf.member_id,
            requires=("tools",) if wf.style == "agent" else (),
            at=dt.datetime(day.year, day.month, day.day, 12, tzinfo=dt.UTC),
        )
        resolved = planner.resolve(req)
        if not hasattr(resolved, "environment"):
            routes_cache[key] = None
            return None
        plan = planner.plan(req)
        out = []
        for a in plan.attempts[: plan.max_attempts]:
            ep = ep_of[(a.model, a.provider)]
            pr = planner.prices.price(a.model, a.provider, day)
            head = attempt_head(a.model, a.provider, a.credential, a.key_id)
            served_json = route_fragment(
                a.model,
                a.provider,
                a.upstream_model,
                a.credential,
                a.key_id,
                account.get(a.key_id, {}) if a.key_id else {},
            )
            out.append(
                _Route(
                    a.model,
                    a.provider,
                    a.credential,
                    a.key_id,
                    a.upstream_model,
                    a.zdr,
                    api_of[a.provider],
                    (_ppt(pr.input), _ppt(pr.cached_input), _ppt(pr.cache_write), _ppt(pr.output)),
                    ep.price.cached_input is None,
                    ep.price.cache_write is None,
                    "reasoning" in ep.supports,
                    head,
                    served_json,
                )
            )
        who = who_fragment(
            wf.api_key_id,
            resolved.environment,
            resolved.app,
            resolved.member_id,
            resolved.workload,
            resolved.data_class,
        )
        val = (plan, out, who, _j(list(wf.models)))
        routes_cache[key] = val
        return val

    spent_runaway: dict[str, int] = {}
    for di in range(days):
        day = start + dt.timedelta(days=di)
        prefix = day.isoformat()
        month = prefix[:7]
        t_day = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
        flows = day_workflows(profiles, day, rpd, seed, di)
        flows.extend(w for w in extra_flows if w.start.date() == day)
        events: list[tuple[int, int, int]] = []  # (ms of day, workflow index, step)
        for wi, wf in enumerate(flows):
            base = int((wf.start - t_day).total_seconds() * 1000)
            for si, c in enumerate(wf.calls):
                ms = base + int(c.offset_s * 1000)
                if ms < 86_400_000:
                    events.append((ms, wi, si))
        events.sort()
        stats.workflows += len(flows)
        hot = fault_model.hot(t_day, t_day + dt.timedelta(days=1))
        served_models: dict[int, list[str]] = {}
        wf_routes: dict[int, tuple | None] = {}
        last_ms: dict[int, int] = {}
        errors_in: dict[int, int] = {}
        req_lines = writer.lines(REQUESTS_DIR, prefix)
        out_lines = writer.lines(OUTCOMES_DIR, prefix)
        for n_ev, (ms, wi, si) in enumerate(events):
            wf = flows[wi]
            runaway = wf.tag == "runaway"
            if runaway and errors_in.get(wi, 0) >= int((wf.meta or {}).get("max_errors", "10")):
                continue
            r = wf_routes.get(wi, False)
            if r is False:
                r = wf_routes[wi] = routes_for(wf, day)
            if r is None:
                continue  # a profile the config cannot resolve (unknown member/workload)
            plan, routes, who, requested = r
            call = wf.calls[si]
            ts = _ts(prefix, ms)
            stats.calls += 1
            rid = new_id("req_", 0)
            attempts: list[str] = []
            served = None
            first_kind = None
            kinds: set[str] = set()
            error_code = None
            total_ms = 1.5 + rand()
            if plan.error is not None:
                error_code = plan.error.code
            elif runaway and spent_runaway.get(wf.wf_id, 0) >= int(
                Decimal((wf.meta or {}).get("limit_usd", "5")) * 10**9
            ):
                error_code = 402
            else:
                at = None
                for ro in routes:
                    f = None
                    if ro.provider in hot and (
                        (ro.provider, None) in hot or (ro.provider, ro.key_id or "shared") in hot
                    ):
                        if at is None:
                            at = t_day + dt.timedelta(milliseconds=ms)
                        f = fault_model.check(ro.provider, ro.key_id or "shared", at)
                    if f is None:
                        served = ro
                        lat = round(250 + call.output_tokens * 11 * (0.8 + 0.4 * rand()), 3)
                        total_ms += lat
                        attempts.append(attempt_json(ro.attempt_head, "ok", 200, None, lat))
                        break
                    kind, http, etype = _FAULT_ATTEMPT.get(f.kind) or (
                        "error",
                        f.status or 503,
                        "server_error",
                    )
                    kinds.add(kind)
                    first_kind = first_kind or kind
                    lat = round(40 + 200 * rand(), 3)
                    total_ms += lat
                    attempts.append(attempt_json(ro.attempt_head, kind, http, etype, lat))
                if served is None:
                    error_code = (
                        429 if kinds == {"rate_limited"} else 503 if kinds == {"error"} else 502
                    )
            if served is not None:
                inp, cr, cw = call.input_tokens, call.cache_read_tokens, call.cache_write_tokens
                if served.no_cache_read:
                    inp, cr = inp + cr, 0
                if served.no_cache_write or served.api == "openai":
                    inp, cw = inp + cw, 0
                out = call.output_tokens
                reasoning = (
                    call.reasoning_tokens if (served.reasoning and served.api == "openai") else 0
                )
                list_n, prov_n, fee_n, cred_n = pricer.cost(served, inp, cr, cw, out, month)
                a = served.acc
                a[0] += inp
                a[1] += cr
                a[2] += cw
                a[3] += out
                a[4] += reasoning
                a[5] += 1
                a[6] += list_n
                a[7] += fee_n
                a[8] += cred_n
                if runaway:
                    spent_runaway[wf.wf_id] = (
                        spent_runaway.get(wf.wf_id, 0) + prov_n + fee_n + cred_n
                    )
                stats.ok += 1
                served_models.setdefault(wi, []).append(served.model)
                if served.model != wf.models[0]:
                    fb, reason = True, "model_fallback"
                elif first_kind:
                    fb, reason = True, _REASON.get(first_kind, "provider_error")
                else:
                    fb, reason = False, None
                line = request_line(
                    request_id=rid,
                    ts=ts,
                    duration_ms=round(total_ms, 3),
                    who=who,
                    workflow_id=wf.wf_id,
                    idempotency_key=None,
                    requested_models=requested,
                    route=served.served_json,
                    attempts=attempts,
                    fallback_used=fb,
                    fallback_reason=reason,
                    error_code=None,
                    zdr=served.zdr,
                    usage=usage_json_ints(inp, cr, cw, out, reasoning),
                    cost=cost_json_str(
                        _money(list_n), _money(prov_n), _money(fee_n), _money(cred_n)
                    ),
                    usage_source="provider",
                )
            else:
                stats.errors[error_code] = stats.errors.get(error_code, 0) + 1
                errors_in[wi] = errors_in.get(wi, 0) + 1
                if len(attempts) > 1:
                    fb, reason = True, _REASON.get(first_kind or "", "provider_error")
                else:
                    fb, reason = False, None
                line = request_line(
                    request_id=rid,
                    ts=ts,
                    duration_ms=round(total_ms, 3),
                    who=who,
                    workflow_id=wf.wf_id,
                    idempotency_key=None,
                    requested_models=requested,
                    route=None,
                    attempts=attempts,
                    fallback_used=fb,
                    fallback_reason=reason,
                    error_code=error_code,
                    zdr=None,
                    usage=ZERO_USAGE,
                    cost=ZERO_COST,
                )
            req_lines.append(line)
            last_ms[wi] = ms
            if served is not None and wf.outcome_per == "request":
                p = quality.get(served.model, 0.75)
                acc = rand() < p
                o_ms = min(86_399_999, ms + 5000 + int(rand() * 120_000))
                out_lines.append(
                    f'{{"schema_version":{SCHEMA_VERSION},"event_id":"{new_id("evt_", 1)}",'
                    f'"ts":"{_ts(prefix, o_ms)}","request_id":"{rid}","workflow_id":null,'
                    f'"accepted":{"true" if acc else "false"},'
                    f'"score":{round(p if acc else 1 - p, 2)!r},'
                    f'"reason":{"null" if acc else chr(34) + "rejected_by_user" + chr(34)}}}'
                )
                stats.outcomes += 1
            if n_ev % 50_000 == 49_999:
                writer.flush()  # bounded memory on million-request days
                if progress:
                    progress(t_day + dt.timedelta(milliseconds=ms), stats.calls)
        for wi, wf in enumerate(flows):
            if wf.outcome_per != "workflow" or wi not in last_ms:
                continue
            models = served_models.get(wi, [])
            p = min((quality.get(m, 0.75) for m in models), default=0.0)
            acc = bool(models) and rand() < p
            reason = "null" if acc else ('"failed"' if not models else '"rejected_by_user"')
            o_ms = min(86_399_999, last_ms[wi] + 30_000)
            out_lines.append(
                f'{{"schema_version":{SCHEMA_VERSION},"event_id":"{new_id("evt_", 1)}",'
                f'"ts":"{_ts(prefix, o_ms)}","request_id":null,"workflow_id":"{wf.wf_id}",'
                f'"accepted":{"true" if acc else "false"},"score":{round(p, 2)!r},'
                f'"reason":{reason}}}'
            )
            stats.outcomes += 1
        writer.flush()
        _flush_meters(routes_cache, day, prefix, meter, statement)
        if progress:
            progress(t_day + dt.timedelta(hours=23), stats.calls)
    return stats
