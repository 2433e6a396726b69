"""The production-testing checklist (docs/simulator.md) as runnable scenarios: each one starts fake
providers on loopback, a real `Router` on the given config (simulated time, temp log
folder), injects its fault, sends a short burst and checks what the router did — in its
answers and in the request log — against what the config's policy requires.

Expectations are read from the config *and* from the posture its data classes imply
(the postures of docs/config.md: legal/regulated traffic is strict BYOK; legal, financial, confidential and
regulated traffic is ZDR-only), so a config edited into an unsafe state is reported
rather than silently re-baselined. A scenario whose ingredients the config lacks (no
strict workload, no model fallbacks, ...) says N/A and why.

`run_scenarios(..., router_factory=...)` builds the router under test; tests use it to
run a deliberately broken router against the real policy.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from routing_core.config import LedgerConfig, load_config
from routing_core.planning import Planner
from routing_core.request_log import read_records
from routing_core.router import Router
from routing_core.routes import RouteError, RouteRequest
from routing_core.schema import Usage
from simulator.drive import SimClock
from simulator.fake_providers import SHARED_LABEL, start_fleet

T0 = dt.datetime(2026, 11, 4, 10, 0, tzinfo=dt.UTC)  # a Wednesday morning
STRICT_CLASSES = frozenset({"legal", "regulated"})
ZDR_CLASSES = frozenset({"legal", "financial", "confidential", "regulated"})
_TOOLS = [
    {
        "type": "function",
        "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}},
    }
]
RouterFactory = Callable[..., Router]


@dataclass(slots=True)
class Verdict:
    scenario: str
    expectation: str
    observed: str
    status: str  # PASS | FAIL | N/A
    details: list[str] = field(default_factory=list)

    @classmethod
    def judged(cls, scenario: str, expectation: str, observed: str, bad: list[str]) -> Verdict:
        """PASS when no problem was found, else FAIL listing them."""
        return cls(scenario, expectation, observed, "FAIL" if bad else "PASS", bad)


@dataclass(slots=True)
class Sent:
    ok: bool
    code: int | None
    record: dict[str, Any]


class Harness:
    """Fakes + router + clock + temp logs for one scenario."""

    def __init__(self, config: LedgerConfig, factory: RouterFactory | None):
        self.config = config
        self.clock = SimClock(T0)
        self._tmp = tempfile.TemporaryDirectory(prefix="byok-scenario-")
        self.log_dir = Path(self._tmp.name)
        self.fleet = start_fleet(
            config, clock=self.clock, usage_fn=lambda body: Usage(1200, 0, 0, 300)
        )
        self.reference = Planner(config)  # expectations come from the config, not the router
        make = factory or Router
        self.router = make(
            config,
            log_dir=self.log_dir,
            writer_id="scenario",
            secrets=self.fleet.secrets,
            base_urls=self.fleet.base_urls,
            clock=self.clock,
            sleep=self.clock.sleep,
            rng_seed=1,
            seed_spend_from_logs=False,
        )
        # Advance past every cooldown between requests, so each one starts fresh.
        s = config.router
        self.gap_s = max(s.cooldown_s, s.rate_limit_cooldown_s, s.max_retry_after_s) + 1

    def close(self) -> None:
        self.router.close()
        self.fleet.close()
        self._tmp.cleanup()

    def send(
        self,
        api_key_id: str,
        model: str,
        workload: str | None,
        n: int = 6,
        member: str | None = None,
        tools: bool = False,
    ) -> list[Sent]:
        out = []
        for i in range(n):
            self.clock.sleep(self.gap_s)
            kw: dict[str, Any] = dict(
                api_key_id=api_key_id,
                model=model,
                workload=workload,
                member_id=member,
                messages=[{"role": "user", "content": f"scenario {i}"}],
                max_tokens=400,
            )
            if tools:
                kw["tools"] = _TOOLS
            try:
                c = self.router.complete(**kw)
                rid, ok, code = c.request_id, True, None
            except RouteError as e:
                rid, ok, code = e.metadata.get("request_id"), False, e.code
            out.append(Sent(ok, code, self._record(rid)))
        return out

    def _record(self, rid: str | None) -> dict[str, Any]:
        for r in read_records(self.log_dir):
            if r["request_id"] == rid:
                return r
        return {}

    def all_records(self) -> list[dict[str, Any]]:
        return list(read_records(self.log_dir))


# --------------------------------------------------------------------------- helpers


def _wants_tools(config: LedgerConfig, workload: str | None) -> bool:
    if not workload:
        return False
    return "tools" in config.workload(workload).requires


def _combos(config: LedgerConfig) -> Iterable[tuple[str, str | None, str]]:
    """(API key, its default workload, model) in config order, the workload's own models
    first."""
    for a in config.api_keys:
        wl = config.workload(a.default_workload) if a.default_workload else None
        models = (
            list(wl.allowed_models) if wl and wl.allowed_models else [m.id for m in config.models]
        )
        for m in models:
            yield a.id, a.default_workload, m


def _plan(planner: Planner, api_key_id: str, workload: str | None, model: str, tools: bool):
    """The plan the config requires (a reference planner, never the router under test)."""
    return planner.plan(
        RouteRequest(
            api_key_id=api_key_id,
            models=(model,),
            workload=workload,
            requires=("tools",) if tools else (),
            at=T0,
        )
    )


def _effective_zdr(config: LedgerConfig, att: dict[str, Any]) -> bool:
    ep = next(
        ep
        for m in config.models
        if m.id == att["model"]
        for ep in m.endpoints
        if ep.provider == att["provider"]
    )
    if att.get("key_id"):
        key = next(k for k in config.byok_keys if k.id == att["key_id"])
        if key.zdr is not None:
            return key.zdr
    return ep.zdr


def _label(att) -> str:
    return att.key_id if att.key_id else SHARED_LABEL


def _fail_route(h: Harness, att, kind: str = "server_error") -> None:
    """Make one planned route fail on its fake (this key only, or the platform's key)."""
    fp = h.fleet[att.provider]
    if kind == "rate_limit":
        fp.add_fault("rate_limit", key=_label(att), retry_after=1)
    else:
        fp.add_fault("server_error", key=_label(att), model=att.upstream_model, status=503)


def _fmt_routes(records: list[dict]) -> str:
    seen: dict[str, int] = {}
    for r in records:
        if r.get("status") == "ok":
            k = f"{r['model']}@{r['provider']}/{r['key_id'] or 'shared'}"
        else:
            k = f"error {r.get('error_code')}"
        seen[k] = seen.get(k, 0) + 1
    return ", ".join(f"{v}x {k}" for k, v in seen.items()) or "nothing logged"


# --------------------------------------------------------------------------- scenarios


def key_rate_limit(config: LedgerConfig, factory: RouterFactory | None) -> Verdict:
    name = "key_rate_limit"
    expect = "a rate-limited BYOK key never serves; the next configured route does (or 429)"
    h = Harness(config, factory)
    try:
        pick = None
        for api, wl, model in _combos(config):
            tools = _wants_tools(config, wl)
            plan = _plan(h.reference, api, wl, model, tools)
            if plan.error is None and plan.attempts and plan.attempts[0].key_id:
                rank = (
                    len(plan.attempts) > 1
                    and plan.attempts[1].provider == plan.attempts[0].provider
                )
                if pick is None or (rank and not pick[-1]):
                    pick = (api, wl, model, tools, plan, rank)
                if rank:
                    break
        if pick is None:
            return Verdict(name, expect, "no API key/model is served by a BYOK key first", "N/A")
        api, wl, model, tools, plan, _ = pick
        key = plan.attempts[0]
        _fail_route(h, key, "rate_limit")
        nxt = next((a for a in plan.attempts[1:] if a.key_id != key.key_id), None)
        sent = h.send(api, model, wl, tools=tools)
        bad = []
        for s in sent:
            r = s.record
            atts = r.get("attempts", [])
            if not atts or atts[0].get("key_id") != key.key_id or atts[0].get("http_status") != 429:
                bad.append(f"{r.get('request_id')}: first attempt was not a 429 on {key.key_id}")
            if s.ok and r.get("key_id") == key.key_id:
                bad.append(f"{r.get('request_id')}: served by the rate-limited key")
            if (
                nxt is not None
                and s.ok
                and (r.get("provider"), r.get("key_id"), r.get("model"))
                != (nxt.provider, nxt.key_id, nxt.model)
            ):
                bad.append(
                    f"{r.get('request_id')}: served by {r.get('key_id') or 'shared'} "
                    f"instead of the next route {nxt.key_id or 'shared'}"
                )
            if nxt is not None and not s.ok:
                bad.append(
                    f"{r.get('request_id')}: failed {s.code} although {nxt.key_id or 'shared'} "
                    "was healthy"
                )
            if nxt is None and (s.ok or s.code != 429):
                bad.append(f"{r.get('request_id')}: expected 429 (no other route), got {s.code}")
        want = (
            f"{key.key_id} 429 -> {nxt.model}@{nxt.provider}/{nxt.key_id or 'shared'}"
            if nxt
            else f"{key.key_id} 429 -> request fails 429"
        )
        return Verdict.judged(
            name,
            f"{api} {model}: {want}",
            _fmt_routes([s.record for s in sent]),
            bad,
        )
    finally:
        h.close()


def provider_outage(config: LedgerConfig, factory: RouterFactory | None) -> Verdict:
    name = "provider_outage"
    h = Harness(config, factory)
    try:
        counts: dict[str, int] = {}
        for a in config.byok_keys:
            counts[a.provider] = counts.get(a.provider, 0) + 1
        pick = None
        for api, wl, model in _combos(config):
            tools = _wants_tools(config, wl)
            plan = _plan(h.reference, api, wl, model, tools)
            if plan.error is None and plan.attempts:
                p = plan.attempts[0].provider
                # An alternate only counts inside the attempt bound the router honours.
                alt = any(a.provider != p for a in plan.attempts[: plan.max_attempts])
                score = (alt, counts.get(p, 0))
                if pick is None or score > pick[0]:
                    pick = (score, api, wl, model, tools, plan)
        if pick is None:
            return Verdict(name, "-", "no routable API key/model in the config", "N/A")
        _, api, wl, model, tools, plan = pick
        down = plan.attempts[0].provider
        h.fleet[down].outage()
        alts = [a for a in plan.attempts[: plan.max_attempts] if a.provider != down]
        expect = (
            f"{down} down: {api} {model} moves to an approved alternate "
            f"({alts[0].model}@{alts[0].provider}) "
            if alts
            else f"{down} down: {api} {model} has no approved alternate, fails 503"
        )
        sent = h.send(api, model, wl, tools=tools)
        allowed = {(a.model, a.provider, a.key_id) for a in plan.attempts}
        bad = []
        for s in sent:
            r = s.record
            for att in r.get("attempts", []):
                if (att["model"], att["provider"], att["key_id"]) not in allowed:
                    bad.append(f"{r['request_id']}: attempt outside the plan: {att}")
            if s.ok and r.get("provider") == down:
                bad.append(f"{r['request_id']}: served by the provider that is down")
            if alts and not s.ok:
                bad.append(f"{r.get('request_id')}: failed {s.code} though an alternate exists")
            if not alts and (s.ok or s.code not in (502, 503)):
                bad.append(f"{r.get('request_id')}: expected 503, got {s.code}")
        return Verdict.judged(
            name,
            expect,
            _fmt_routes([s.record for s in sent]),
            bad,
        )
    finally:
        h.close()


def _api_key_for(config: LedgerConfig, workload: str):
    """The first router API key whose default workload is `workload` (None if none)."""
    return next((a for a in config.api_keys if a.default_workload == workload), None)


def _per_workload(
    name: str,
    config: LedgerConfig,
    factory: RouterFactory | None,
    workloads: list,
    check: Callable[[Harness, Any, Any, list[str]], list[dict[str, Any]]],
    texts: tuple[str, str, str, str],
) -> Verdict:
    """A scenario that checks each workload of a posture through its API key: `check(h,
    api, workload, bad)` injects the fault, sends, appends problems to `bad` and returns the
    records it saw. `texts`: the expectation and reason when no workload has the posture,
    the reason when none has an API key, and the expectation of a run."""
    na_expect, no_workloads, no_api_key, expect = texts
    if not workloads:
        return Verdict(name, na_expect, no_workloads, "N/A")
    h = Harness(config, factory)
    try:
        bad: list[str] = []
        observed = []
        tested = []
        for w in workloads:
            api = _api_key_for(config, w.id)
            if api is None:
                continue
            tested.append(f"{api.id}/{w.id}")
            observed.append(f"{w.id}: {_fmt_routes(check(h, api, w, bad))}")
        if not tested:
            return Verdict(name, "-", no_api_key, "N/A")
        return Verdict.judged(
            name,
            f"{', '.join(tested)}: {expect}",
            "; ".join(observed),
            bad,
        )
    finally:
        h.close()


def strict_byok_failure(config: LedgerConfig, factory: RouterFactory | None) -> Verdict:
    def check(h: Harness, api, w, bad: list[str]) -> list[dict[str, Any]]:
        model = (w.allowed_models or [m.id for m in config.models])[0]
        tools = _wants_tools(config, w.id)
        plan = _plan(h.reference, api.id, w.id, model, tools)
        # Every BYOK key this request could use is rate limited; shared stays healthy,
        # so a leak would succeed and show.
        for a in plan.attempts:
            if a.key_id:
                _fail_route(h, a, "rate_limit")
        sent = h.send(api.id, model, w.id, n=4, tools=tools)
        for s in sent:
            r = s.record
            shared = [a for a in r.get("attempts", []) if a["credential"] == "shared"]
            if shared or r.get("credential") == "shared":
                bad.append(
                    f"{r.get('request_id')}: {w.id} used shared capacity "
                    f"({len(shared)} attempt(s), status {r.get('status')})"
                )
            if s.ok:
                bad.append(
                    f"{r.get('request_id')}: {w.id} was served although every BYOK key was failing"
                )
            elif s.code not in (404, 429, 502, 503):
                bad.append(f"{r.get('request_id')}: unexpected error {s.code}")
        return [s.record for s in sent]

    strict = [w for w in config.workloads if w.byok == "strict" or w.data_class in STRICT_CLASSES]
    return _per_workload(
        "strict_byok_failure",
        config,
        factory,
        strict,
        check,
        (
            "strict BYOK traffic fails instead of using shared capacity",
            "no workload with byok: strict (or a legal/regulated data class)",
            "strict workloads have no API key using them",
            "BYOK keys failing -> 404/429/503, never shared",
        ),
    )


def zdr_constraint(config: LedgerConfig, factory: RouterFactory | None) -> Verdict:
    def check(h: Harness, api, w, bad: list[str]) -> list[dict[str, Any]]:
        tools = _wants_tools(config, w.id)
        models = w.allowed_models or [m.id for m in config.models]
        # 1) healthy providers: everything served or attempted must be ZDR
        recs = [s.record for m in models[:2] for s in h.send(api.id, m, w.id, n=2, tools=tools)]
        # 2) the ZDR pool fails: requests must fail safely, never widen to non-ZDR
        for m in models[:2]:
            for a in _plan(h.reference, api.id, w.id, m, tools).attempts:
                _fail_route(h, a, "server_error")
        recs += [s.record for s in h.send(api.id, models[0], w.id, n=3, tools=tools)]
        for r in recs:
            for att in r.get("attempts", []):
                if not _effective_zdr(config, att):
                    bad.append(
                        f"{r['request_id']}: {w.id} attempted non-ZDR "
                        f"{att['model']}@{att['provider']}/{att['key_id'] or 'shared'}"
                    )
            if r.get("status") == "ok" and r.get("zdr") is not True:
                bad.append(f"{r['request_id']}: served with zdr={r.get('zdr')}")
        return recs

    wls = [w for w in config.workloads if w.zdr == "required" or w.data_class in ZDR_CLASSES]
    return _per_workload(
        "zdr_constraint",
        config,
        factory,
        wls,
        check,
        (
            "ZDR traffic only reaches ZDR endpoints",
            "no workload requires ZDR (or has a legal/financial/confidential/regulated data class)",
            "ZDR workloads have no API key using them",
            "ZDR endpoints only; safe failure when the ZDR pool is down",
        ),
    )


def model_fallback(config: LedgerConfig, factory: RouterFactory | None) -> Verdict:
    name = "model_fallback"
    cands = [w for w in config.workloads if w.model_fallbacks]
    if not cands:
        return Verdict(
            name,
            "a failing model falls back to the workload's model_fallbacks",
            "no workload has model_fallbacks",
            "N/A",
        )
    h = Harness(config, factory)
    try:
        for w in cands:
            api = _api_key_for(config, w.id)
            if api is None:
                continue
            tools = _wants_tools(config, w.id)
            primary = next(
                (
                    m
                    for m in (w.allowed_models or [m.id for m in config.models])
                    if m not in w.model_fallbacks
                ),
                None,
            )
            if primary is None:
                continue
            plan = _plan(h.reference, api.id, w.id, primary, tools)
            if plan.error or not any(a.model != primary for a in plan.attempts):
                continue
            for a in plan.attempts:
                if a.model == primary:
                    _fail_route(h, a, "server_error")
            sent = h.send(api.id, primary, w.id, n=5, tools=tools)
            bad = []
            for s in sent:
                r = s.record
                if not s.ok:
                    bad.append(f"{r.get('request_id')}: failed {s.code} instead of falling back")
                    continue
                if r["model"] == primary or r["model"] not in w.model_fallbacks:
                    bad.append(f"{r['request_id']}: served by {r['model']}, not a fallback")
                if not r.get("fallback_used") or r.get("fallback_reason") != "model_fallback":
                    bad.append(
                        f"{r['request_id']}: log does not show the model fallback "
                        f"({r.get('fallback_used')}, {r.get('fallback_reason')})"
                    )
            ok = [s.record for s in sent if s.ok]
            cost = sum(
                (
                    Decimal(r["cost"]["provider_usd"])
                    + Decimal(r["cost"]["platform_fee_usd"])
                    + Decimal(r["cost"]["platform_credits_usd"])
                    for r in ok
                ),
                Decimal(0),
            )
            for s in sent:
                if s.ok:
                    h.router.record_outcome(request_id=s.record["request_id"], accepted=True)
            per = (cost / len(ok)).quantize(Decimal("0.000001")) if ok else None
            return Verdict.judged(
                name,
                f"{api.id}: {primary} failing -> {w.model_fallbacks[0]} "
                "(fallback_used, model_fallback in the log)",
                _fmt_routes([s.record for s in sent])
                + (f"; cost per accepted output ${per}" if per is not None else ""),
                bad,
            )
        return Verdict(name, "-", "no workload's primary model has a routable fallback", "N/A")
    finally:
        h.close()


def split_billing(config: LedgerConfig, factory: RouterFactory | None) -> Verdict:
    name = "split_billing"
    from simulator.invoices import UsageMeter
    from simulator.provider_prices import MILLION, TOKEN_TYPES, ProviderPriceBook
    from simulator.statement import StatementMeter, from_nano

    h = Harness(config, factory)
    try:
        # BYOK-first traffic, then the same traffic with its BYOK key rate limited so shared
        # capacity serves part of it.
        recs: list[dict] = []
        byok_pick = None
        for api, wl, model in _combos(config):
            tools = _wants_tools(config, wl)
            plan = _plan(h.reference, api, wl, model, tools)
            if (
                plan.error is None
                and plan.attempts
                and plan.attempts[0].key_id
                and any(a.credential == "shared" for a in plan.attempts)
            ):
                byok_pick = (api, wl, model, tools, plan)
                break
        if byok_pick is None:
            return Verdict(name, "-", "no route has both a BYOK key and shared capacity", "N/A")
        api, wl, model, tools, plan = byok_pick
        recs += [s.record for s in h.send(api, model, wl, n=4, tools=tools)]
        for a in plan.attempts:
            if a.key_id:
                _fail_route(h, a, "rate_limit")
        recs += [s.record for s in h.send(api, model, wl, n=4, tools=tools)]
        served = [r for r in recs if r.get("status") == "ok"]
        meter = UsageMeter()
        meter.add_served(h.fleet.served(), include_shared=False)
        book = ProviderPriceBook(config)
        billed = Decimal(0)
        for (prov, day, key, upstream), q in meter.q.items():
            prices = book.unit_prices(prov, upstream, day)
            billed += (
                sum((n * prices[tt] for tt, n in zip(TOKEN_TYPES, q, strict=True)), Decimal(0))
                / MILLION
                * book.discount_factor(key)
            )
        expected = sum((Decimal(r["cost"]["provider_usd"]) for r in served), Decimal(0))
        stmt = StatementMeter()
        for r in served:
            stmt.add_record(r)
        statement = sum((from_nano(v.usage) for v in stmt.rows.values()), Decimal(0))
        logged_platform = sum(
            (
                Decimal(r["cost"]["platform_fee_usd"]) + Decimal(r["cost"]["platform_credits_usd"])
                for r in served
            ),
            Decimal(0),
        )
        bad = []
        # Exact provider pricing vs per-request 9-decimal estimates: only sub-micro-dollar
        # rounding may differ.
        if abs(billed - expected) >= Decimal("0.000001"):
            bad.append(f"provider invoice ${billed:.6f} vs logged provider_usd ${expected:.6f}")
        if statement != logged_platform:
            bad.append(f"platform statement ${statement} vs logged fees+credits ${logged_platform}")
        for r in served:
            c = r["cost"]
            if r["credential"] == "byok" and Decimal(c["platform_credits_usd"]) != 0:
                bad.append(f"{r['request_id']}: BYOK request carries platform credits")
            if r["credential"] == "shared" and (
                Decimal(c["provider_usd"]) != 0 or Decimal(c["platform_credits_usd"]) <= 0
            ):
                bad.append(f"{r['request_id']}: shared request billed to the BYOK account")
        n_b = sum(1 for r in served if r["credential"] == "byok")
        n_s = sum(1 for r in served if r["credential"] == "shared")
        return Verdict.judged(
            name,
            "provider invoice = logs' provider_usd; platform statement = logs' fees + "
            "credits (to the cent)",
            f"{n_b} BYOK + {n_s} shared; invoice ${billed.quantize(Decimal('0.000001'))} vs logs "
            f"${expected.quantize(Decimal('0.000001'))}; statement ${statement} vs logs "
            f"${logged_platform}",
            bad,
        )
    finally:
        h.close()


def environment_separation(config: LedgerConfig, factory: RouterFactory | None) -> Verdict:
    name = "environment_separation"
    envs = sorted({a.environment for a in config.api_keys})
    scoped = [k for k in config.byok_keys if k.filters.environments or k.filters.api_keys]
    if len(envs) < 2 or not scoped:
        return Verdict(
            name,
            "API keys never use BYOK keys of another environment",
            "the config has one environment or no environment-scoped BYOK keys",
            "N/A",
        )
    h = Harness(config, factory)
    try:
        bad: list[str] = []
        n = 0
        env_of = {a.id: a.environment for a in config.api_keys}
        # Every API key, with every model some scoped key serves: nothing may cross.
        scoped_models = sorted(
            {
                m.id
                for m in config.models
                for ep in m.endpoints
                if any(k.provider == ep.provider for k in scoped)
            }
        )
        for a in config.api_keys:
            tools = _wants_tools(config, a.default_workload)
            for m in scoped_models:
                plan = _plan(h.reference, a.id, a.default_workload, m, tools)
                if plan.error is not None:
                    continue
                for s in h.send(a.id, m, a.default_workload, n=1, tools=tools):
                    n += 1
                    for att in s.record.get("attempts", []):
                        kid = att.get("key_id")
                        if not kid:
                            continue
                        k = next(x for x in config.byok_keys if x.id == kid)
                        envs_ok = k.filters.environments
                        if envs_ok is not None and env_of[a.id] not in envs_ok:
                            bad.append(
                                f"{s.record['request_id']}: {a.id} ({env_of[a.id]}) "
                                f"used {kid} (environments {envs_ok})"
                            )
                        if k.filters.api_keys is not None and a.id not in k.filters.api_keys:
                            bad.append(
                                f"{s.record['request_id']}: {a.id} used {kid} "
                                f"(api_keys filter {k.filters.api_keys})"
                            )
        return Verdict.judged(
            name,
            f"{len(config.api_keys)} API keys x {len(scoped_models)} models: "
            "no BYOK key outside its environments/api_keys filter",
            f"{n} requests, {len(bad)} crossing(s)",
            bad,
        )
    finally:
        h.close()


SCENARIOS: dict[str, Callable[[LedgerConfig, RouterFactory | None], Verdict]] = {
    "key_rate_limit": key_rate_limit,
    "provider_outage": provider_outage,
    "strict_byok_failure": strict_byok_failure,
    "zdr_constraint": zdr_constraint,
    "model_fallback": model_fallback,
    "split_billing": split_billing,
    "environment_separation": environment_separation,
}


def run_scenarios(
    config: str | Path | LedgerConfig,
    names: Iterable[str] | None = None,
    *,
    router_factory: RouterFactory | None = None,
) -> list[Verdict]:
    """Run the named scenarios (all by default) and return their verdicts. A scenario that
    crashes is a FAIL with the error, never an exception out of here."""
    cfg = config if isinstance(config, LedgerConfig) else load_config(config)
    out = []
    for n in names or SCENARIOS:
        try:
            out.append(SCENARIOS[n](cfg, router_factory))
        except Exception as e:  # a broken scenario must show up as a FAIL line
            out.append(Verdict(n, "-", f"scenario crashed: {type(e).__name__}: {e}", "FAIL"))
    return out


def print_table(verdicts: list[Verdict], width: int = 60) -> None:
    def clip(s: str) -> str:
        return s if len(s) <= width else s[: width - 1] + "…"

    rows = [("scenario", "expectation", "observed", "verdict")]
    rows += [(v.scenario, clip(v.expectation), clip(v.observed), v.status) for v in verdicts]
    w = [max(len(r[i]) for r in rows) for i in range(4)]
    for i, r in enumerate(rows):
        print("  ".join(c.ljust(w[j]) for j, c in enumerate(r)).rstrip())
        if i == 0:
            print("  ".join("-" * x for x in w))
    for v in verdicts:
        if v.status != "PASS":
            print(
                f"\n{v.scenario}: {v.status}\n  expected: {v.expectation}\n  observed: {v.observed}"
            )
            for d in v.details[:10]:
                print(f"  - {d}")
            if len(v.details) > 10:
                print(f"  ... and {len(v.details) - 10} more")
    passed = sum(v.status == "PASS" for v in verdicts)
    na = sum(v.status == "N/A" for v in verdicts)
    failed = sum(v.status == "FAIL" for v in verdicts)
    print(f"\n{passed} passed, {failed} failed, {na} not applicable")
