"""Route planning (docs/routing.md): for one request, the ordered attempts (prioritized BYOK keys →
shared capacity → fallback-tier BYOK keys, model by model) and every excluded candidate
with its reason code.

Everything that depends only on the config is indexed once in `Planner.__init__`; `plan()`
is plain Python over dicts, tuples and frozensets (no pydantic, no regex, no I/O) and only
looks at the keys of the (provider, model) pairs it considers. Plans are memoised by the
request's routing-relevant fields, its UTC day (prices change by day) and the set of
cooling keys, so a steady stream of identical requests costs one dict lookup.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass
from decimal import Decimal

from routing_core.config import Endpoint, LedgerConfig
from routing_core.pricing import PriceBook, utc_day
from routing_core.routes import (
    BAD_REQUEST,
    CONTEXT_TOO_LONG,
    DATA_COLLECTION,
    GUARDRAIL_BLOCK,
    KEY_COOLING_DOWN,
    KEY_DISABLED,
    KEY_FILTER_API_KEY,
    KEY_FILTER_ENVIRONMENT,
    KEY_FILTER_MEMBER,
    KEY_FILTER_MODEL,
    MISSING_CAPABILITY,
    MODEL_NOT_ALLOWED,
    MODEL_UNKNOWN,
    NO_ROUTE,
    NO_SHARED_CAPACITY,
    OVER_MAX_PRICE,
    PROVIDER_IGNORED,
    PROVIDER_NOT_ALLOWED,
    SHARED_FALLBACK_DISABLED,
    STRICT_BYOK,
    UNKNOWN_API_KEY,
    ZDR_REQUIRED,
    Attempt,
    Exclusion,
    Plan,
    RouteError,
    RouteRequest,
)

# Data classes whose traffic must never reach a provider that may retain or train on data.
CONFIDENTIAL_DATA_CLASSES = frozenset(
    {"confidential", "regulated", "legal", "financial", "proprietary_code"}
)

DEFAULT_MAX_ATTEMPTS = 4
DEFAULT_DEADLINE_S = 60.0
_PLAN_CACHE_MAX = 8192


# --------------------------------------------------------------------------- indexes


@dataclass(frozen=True, slots=True)
class _Key:
    """A BYOK key reduced to what planning checks."""

    id: str
    provider: str
    tier: str
    order: int
    models: frozenset[str] | None
    api_keys: frozenset[str] | None
    members: frozenset[str] | None
    environments: frozenset[str] | None
    zdr: bool | None
    disabled: bool
    shared_fallback: str

    def serves(self, api_key_id: str, member_id: str | None, environment: str) -> bool:
        """Do the request-side filters (API key, member, environment) match?"""
        return (
            (self.api_keys is None or api_key_id in self.api_keys)
            and (self.members is None or member_id in self.members)
            and (self.environments is None or environment in self.environments)
        )


# Indexes into _Entry.excl: the per-request reasons a key can be excluded for.
_R_DISABLED, _R_API_KEY, _R_MEMBER, _R_ENV, _R_ZDR, _R_COOLING = range(6)
_R_CODES = (
    KEY_DISABLED,
    KEY_FILTER_API_KEY,
    KEY_FILTER_MEMBER,
    KEY_FILTER_ENVIRONMENT,
    ZDR_REQUIRED,
    KEY_COOLING_DOWN,
)


class _Entry:
    """One BYOK key on one endpoint: its (static) Attempt and, filled on first use, its
    Exclusion for each reason, so plan() allocates nothing per key. A benign race may build
    the same Exclusion twice; both are equal."""

    __slots__ = ("key", "attempt", "excl")

    def __init__(self, key: _Key, attempt: Attempt) -> None:
        self.key = key
        self.attempt = attempt
        self.excl: list[Exclusion | None] = [None] * 6

    def excluded(self, r: int) -> Exclusion:
        e = self.excl[r]
        if e is None:
            a = self.attempt
            e = self.excl[r] = Exclusion(a.model, a.provider, "byok", a.key_id, _R_CODES[r])
        return e


class _ExclusionCache(dict):
    """(model, provider, credential, reason, detail) -> Exclusion, built once."""

    def get_or_make(self, model, provider, credential, reason, detail=""):
        k = (model, provider, credential, reason, detail)
        e = self.get(k)
        if e is None:
            e = self[k] = Exclusion(model, provider, credential, None, reason, detail)
        return e


@dataclass(frozen=True, slots=True)
class _Ep:
    """One (model, provider) endpoint with its keys already sorted and split by tier."""

    model: str
    provider: str
    upstream_model: str
    zdr: bool
    supports: frozenset[str]
    context_length: int
    collects_data: bool  # provider data_collection: allow
    shared: bool  # served by the platform's shared capacity
    prioritized: tuple[_Entry, ...]  # model filter passed, sorted by (order, id)
    fallback: tuple[_Entry, ...]
    shared_attempt: Attempt
    model_filtered: tuple[Exclusion, ...]  # keys of this provider whose model filter excludes it
    # Keys whose shared_fallback setting may remove shared capacity here (checked per request
    # against their API key / member / environment filters).
    shared_blockers: tuple[_Key, ...]


@dataclass(frozen=True, slots=True)
class _ApiKey:
    id: str
    environment: str
    app: str
    owner: str | None
    guardrail: str | None
    default_workload: str | None


@dataclass(frozen=True, slots=True)
class _Policy:
    """Everything that one (API key, member, workload) combination contributes."""

    workload: str | None
    data_class: str | None
    wl_models: frozenset[str] | None
    gr_models: frozenset[str] | None
    gr_ignored_models: frozenset[str]
    wl_providers: frozenset[str] | None
    gr_providers: frozenset[str] | None
    gr_ignored_providers: frozenset[str]
    guardrails: tuple[str, ...]
    zdr: bool
    zdr_preferred: bool
    deny_data_collection: bool
    requires: frozenset[str]
    strict: bool
    shared_fallback: bool
    fallbacks: tuple[str, ...]
    max_attempts: int
    deadline_s: float


@dataclass(frozen=True, slots=True)
class ResolvedRequest:
    """Who is asking, as the router logs it (docs/log-contract.md fields)."""

    api_key_id: str
    environment: str
    app: str
    member_id: str | None
    workload: str | None
    data_class: str | None
    guardrails: tuple[str, ...]


def _fs(values: Collection[str] | None) -> frozenset[str] | None:
    return None if values is None else frozenset(values)


def _intersect(a: frozenset[str] | None, b: frozenset[str] | None) -> frozenset[str] | None:
    if a is None:
        return b
    if b is None:
        return a
    return a & b


def _error_plan(code: int, message: str, **metadata: object) -> Plan:
    return Plan(attempts=(), excluded=(), error=RouteError(code, message, dict(metadata)))


class Planner:
    """Builds `Plan`s for `RouteRequest`s against one loaded config."""

    def __init__(self, config: LedgerConfig) -> None:
        self.config = config
        self.prices = PriceBook(config)
        providers = {p.id: p for p in config.providers}
        shared = frozenset(config.shared_capacity.providers)

        keys = [
            _Key(
                id=k.id,
                provider=k.provider,
                tier=k.tier,
                order=k.order,
                models=_fs(k.filters.models),
                api_keys=_fs(k.filters.api_keys),
                members=_fs(k.filters.members),
                environments=_fs(k.filters.environments),
                zdr=k.zdr,
                disabled=k.disabled,
                shared_fallback=k.shared_fallback,
            )
            for k in config.byok_keys
        ]
        keys.sort(key=lambda k: (k.order, k.id))
        by_provider: dict[str, list[_Key]] = {}
        for k in keys:
            by_provider.setdefault(k.provider, []).append(k)

        self._endpoints: dict[tuple[str, str], Endpoint] = {}
        self._models: dict[str, tuple[_Ep, ...]] = {}
        self._dated_models: set[str] = set()
        self._day_order: dict[tuple[str, dt.date], tuple[_Ep, ...]] = {}
        for m in config.models:
            eps = []
            for ep in m.endpoints:
                self._endpoints[(m.id, ep.provider)] = ep
                pkeys = by_provider.get(ep.provider, [])
                serving = [k for k in pkeys if k.models is None or m.id in k.models]
                filtered = tuple(
                    Exclusion(m.id, ep.provider, "byok", k.id, KEY_FILTER_MODEL)
                    for k in pkeys
                    if not (k.models is None or m.id in k.models)
                )
                blockers = tuple(
                    k
                    for k in pkeys
                    if k.shared_fallback == "never_for_provider"
                    or (
                        k.shared_fallback == "never_for_key_models"
                        and k.models is not None
                        and m.id in k.models
                    )
                )
                eps.append(
                    _Ep(
                        model=m.id,
                        provider=ep.provider,
                        upstream_model=ep.upstream_model,
                        zdr=ep.zdr,
                        supports=frozenset(ep.supports),
                        context_length=ep.context_length,
                        collects_data=providers[ep.provider].data_collection == "allow",
                        shared=ep.provider in shared,
                        prioritized=tuple(
                            _Entry(k, self._byok_attempt(m.id, ep, k))
                            for k in serving
                            if k.tier == "prioritized"
                        ),
                        fallback=tuple(
                            _Entry(k, self._byok_attempt(m.id, ep, k))
                            for k in serving
                            if k.tier == "fallback"
                        ),
                        shared_attempt=Attempt(
                            m.id, ep.provider, "shared", None, "shared", ep.upstream_model, ep.zdr
                        ),
                        model_filtered=filtered,
                        shared_blockers=blockers,
                    )
                )
            # Endpoints are stored cheapest first, so plan() needs no sort unless the
            # request gives a provider order; models with dated price changes are re-sorted
            # per UTC day (cached) because a change can reorder them.
            if any(ep.price.effective_from for ep in m.endpoints):
                self._dated_models.add(m.id)
            self._models[m.id] = tuple(self._by_price(eps, m.id, dt.date.min))

        self._api_keys = {
            a.id: _ApiKey(a.id, a.environment, a.app, a.owner, a.guardrail, a.default_workload)
            for a in config.api_keys
        }
        self._member_guardrail = {m.id: m.guardrail for m in config.members}
        self._guardrails = {g.id: g for g in config.guardrails}
        self._workloads = {w.id: w for w in config.workloads}
        # Policies for every (API key, member, workload) that can occur without a request
        # override are built here; other combinations are built once on first use.
        self._policies: dict[tuple[str, str | None, str | None], _Policy] = {}
        for a in self._api_keys.values():
            wids = {None, a.default_workload, *self._workloads}
            for wid in wids:
                self._policy(a, a.owner, wid)
        self._cache: dict[tuple, Plan] = {}
        self._excl = _ExclusionCache()

    @staticmethod
    def _byok_attempt(model: str, ep: Endpoint, k: _Key) -> Attempt:
        return Attempt(
            model,
            ep.provider,
            "byok",
            k.id,
            k.tier,
            ep.upstream_model,
            ep.zdr if k.zdr is None else k.zdr,
        )

    # ----------------------------------------------------------------- lookups

    def endpoint(self, model: str, provider: str) -> Endpoint:
        """The config `Endpoint` of `model` on `provider` (KeyError if there is none)."""
        return self._endpoints[(model, provider)]

    def resolve(self, req: RouteRequest) -> ResolvedRequest | RouteError:
        """The API key's environment/app, the effective member and workload of a request,
        or the 400/401 error `plan()` would return."""
        api = self._api_keys.get(req.api_key_id)
        if api is None:
            return RouteError(UNKNOWN_API_KEY, f"unknown API key {req.api_key_id!r}")
        wid = req.workload or api.default_workload
        if wid is not None and wid not in self._workloads:
            return RouteError(BAD_REQUEST, f"unknown workload {wid!r}")
        member = req.member_id or api.owner
        if member is not None and member not in self._member_guardrail:
            return RouteError(BAD_REQUEST, f"unknown member {member!r}")
        pol = self._policy(api, member, wid)
        return ResolvedRequest(
            api.id, api.environment, api.app, member, wid, pol.data_class, pol.guardrails
        )

    def guardrails_for(self, api_key_id: str, member_id: str | None) -> tuple[str, ...]:
        """Guardrail ids that apply (API key's, member's, `default`), deduplicated."""
        api = self._api_keys[api_key_id]
        out: list[str] = []
        for gid in (api.guardrail, self._member_guardrail.get(member_id or ""), "default"):
            if gid and gid in self._guardrails and gid not in out:
                out.append(gid)
        return tuple(out)

    def _policy(self, api: _ApiKey, member: str | None, wid: str | None) -> _Policy:
        cache_key = (api.id, member, wid)
        pol = self._policies.get(cache_key)
        if pol is not None:
            return pol
        gids = self.guardrails_for(api.id, member)
        grs = [self._guardrails[g] for g in gids]
        gr_models: frozenset[str] | None = None
        gr_providers: frozenset[str] | None = None
        for g in grs:
            gr_models = _intersect(gr_models, _fs(g.allowed_models))
            gr_providers = _intersect(gr_providers, _fs(g.allowed_providers))
        w = self._workloads.get(wid) if wid else None
        pol = _Policy(
            workload=wid,
            data_class=w.data_class if w else None,
            wl_models=_fs(w.allowed_models) if w else None,
            gr_models=gr_models,
            gr_ignored_models=frozenset(m for g in grs for m in g.ignored_models),
            wl_providers=_fs(w.allowed_providers) if w else None,
            gr_providers=gr_providers,
            gr_ignored_providers=frozenset(p for g in grs for p in g.ignored_providers),
            guardrails=gids,
            zdr=(w is not None and w.zdr == "required") or any(g.enforce_zdr for g in grs),
            zdr_preferred=w is not None and w.zdr == "preferred",
            deny_data_collection=w is not None and w.data_class in CONFIDENTIAL_DATA_CLASSES,
            requires=frozenset(w.requires) if w else frozenset(),
            strict=w is not None and w.byok == "strict",
            shared_fallback=w.shared_fallback if w else True,
            fallbacks=tuple(w.model_fallbacks) if w else (),
            max_attempts=w.max_attempts if w else DEFAULT_MAX_ATTEMPTS,
            deadline_s=w.deadline_s if w else DEFAULT_DEADLINE_S,
        )
        self._policies[cache_key] = pol
        return pol

    # ----------------------------------------------------------------- planning

    def plan(self, req: RouteRequest, *, cooling_keys: Collection[str] = frozenset()) -> Plan:
        """The ordered attempts and every excluded candidate for `req`.

        `cooling_keys`: BYOK key ids currently cooling down (excluded with
        `key_cooling_down`). Pass the same frozenset object while it is unchanged: it is
        part of the memo key. Never raises for policy reasons: `Plan.error` carries 400
        (bad input), 401 (unknown API key), 403 (guardrails block every candidate) or 404
        (nothing eligible; metadata lists every exclusion)."""
        at = req.at
        day = utc_day(at) if at is not None else dt.datetime.now(dt.UTC).date()
        if not isinstance(cooling_keys, frozenset):
            cooling_keys = frozenset(cooling_keys)
        memo = (
            req.api_key_id,
            req.models,
            req.workload,
            req.member_id,
            req.zdr,
            req.provider_only,
            req.provider_order,
            req.provider_ignore,
            req.allow_fallbacks,
            req.data_collection,
            req.requires,
            req.max_price_input,
            req.max_price_output,
            req.estimated_input_tokens,
            day,
            cooling_keys,
        )
        try:
            plan = self._cache.get(memo)
        except TypeError:  # a caller passed lists instead of tuples: plan without the memo
            return self._build(req, day, cooling_keys)
        if plan is None:
            plan = self._build(req, day, cooling_keys)
            if len(self._cache) >= _PLAN_CACHE_MAX:
                self._cache.clear()  # bounded; refills with what is hot now
            self._cache[memo] = plan
        return plan

    def plan_uncached(
        self, req: RouteRequest, *, cooling_keys: Collection[str] = frozenset()
    ) -> Plan:
        """`plan()` without the memo (benchmarks, tests)."""
        at = req.at
        day = utc_day(at) if at is not None else dt.datetime.now(dt.UTC).date()
        return self._build(req, day, frozenset(cooling_keys))

    def _build(self, req: RouteRequest, day: dt.date, cooling: frozenset[str]) -> Plan:
        api = self._api_keys.get(req.api_key_id)
        if api is None:
            return _error_plan(UNKNOWN_API_KEY, f"unknown API key {req.api_key_id!r}")
        if not req.models:
            return _error_plan(BAD_REQUEST, "the request names no model")
        wid = req.workload or api.default_workload
        if wid is not None and wid not in self._workloads:
            return _error_plan(BAD_REQUEST, f"unknown workload {wid!r}")
        member = req.member_id or api.owner
        if member is not None and member not in self._member_guardrail:
            return _error_plan(BAD_REQUEST, f"unknown member {member!r}")
        pol = self._policy(api, member, wid)

        models: list[str] = []
        for m in (*req.models, *pol.fallbacks):
            if m not in models:
                models.append(m)
        zdr = req.zdr or pol.zdr  # any source can only turn ZDR on
        deny = pol.deny_data_collection or req.data_collection == "deny"
        requires = pol.requires.union(req.requires) if req.requires else pol.requires
        only = req.provider_only
        ignore = req.provider_ignore
        order = req.provider_order
        if pol.strict:
            shared_off: str | None = STRICT_BYOK
            shared_off_detail = f"workload {wid} is byok: strict"
        elif not pol.shared_fallback:
            shared_off = SHARED_FALLBACK_DISABLED
            shared_off_detail = f"workload {wid} has shared_fallback: false"
        elif not req.allow_fallbacks:
            shared_off = SHARED_FALLBACK_DISABLED
            shared_off_detail = "request allow_fallbacks: false"
        else:
            shared_off = None
            shared_off_detail = ""
        max_in = req.max_price_input
        max_out = req.max_price_output
        est_tokens = req.estimated_input_tokens
        price = self.prices.price
        api_id = api.id
        env = api.environment

        attempts: list[Attempt] = []
        excluded: list[Exclusion] = []
        not_guardrail = 0  # exclusions that are not a guardrail's allow/ignore list
        xc = self._excl.get_or_make
        wl_models = pol.wl_models
        gr_models = pol.gr_models
        gr_ignored_models = pol.gr_ignored_models
        wl_providers = pol.wl_providers
        gr_providers = pol.gr_providers
        gr_ignored_providers = pol.gr_ignored_providers
        screen_price = max_in is not None or max_out is not None

        for model in models:
            eps = self._models.get(model)
            if eps is not None and model in self._dated_models:
                eps = self._eps_on(model, day)
            if eps is None:
                excluded.append(xc(model, None, None, MODEL_UNKNOWN))
                not_guardrail += 1
                continue
            if wl_models is not None and model not in wl_models:
                excluded.append(xc(model, None, None, MODEL_NOT_ALLOWED, f"workload {wid}"))
                not_guardrail += 1
                continue
            if gr_models is not None and model not in gr_models:
                excluded.append(xc(model, None, None, MODEL_NOT_ALLOWED, "guardrail allowlist"))
                continue
            if model in gr_ignored_models:
                excluded.append(xc(model, None, None, MODEL_NOT_ALLOWED, "guardrail ignore list"))
                continue

            ok: list[_Ep] = []
            for ep in eps:
                p = ep.provider
                reason = None
                detail = ""
                guardrail = False
                if wl_providers is not None and p not in wl_providers:
                    reason, detail = PROVIDER_NOT_ALLOWED, f"workload {wid}"
                elif gr_providers is not None and p not in gr_providers:
                    reason, detail, guardrail = PROVIDER_NOT_ALLOWED, "guardrail allowlist", True
                elif only is not None and p not in only:
                    reason, detail = PROVIDER_NOT_ALLOWED, "request provider.only"
                elif p in gr_ignored_providers:
                    reason, detail, guardrail = PROVIDER_IGNORED, "guardrail ignore list", True
                elif p in ignore:
                    reason, detail = PROVIDER_IGNORED, "request provider.ignore"
                elif deny and ep.collects_data:
                    reason = DATA_COLLECTION
                elif requires and not requires <= ep.supports:
                    reason = MISSING_CAPABILITY
                    detail = "needs " + ",".join(sorted(requires - ep.supports))
                elif est_tokens and est_tokens > ep.context_length:
                    reason = CONTEXT_TOO_LONG
                elif screen_price:
                    pr = price(model, p, day)
                    if (max_in is not None and pr.input > max_in) or (
                        max_out is not None and pr.output > max_out
                    ):
                        reason = OVER_MAX_PRICE
                if reason is None:
                    ok.append(ep)
                else:
                    excluded.append(xc(model, p, None, reason, detail))
                    if not guardrail:
                        not_guardrail += 1

            if order is not None and len(ok) > 1:
                # request provider.order first, in that order; the rest keep price order
                last = len(order)
                ok.sort(key=lambda ep: order.index(ep.provider) if ep.provider in order else last)

            prio: list[Attempt] = []
            shared: list[Attempt] = []
            fallback: list[Attempt] = []
            for ep in ok:
                if ep.model_filtered:
                    excluded += ep.model_filtered
                    not_guardrail += len(ep.model_filtered)
                for tier_entries, out in ((ep.prioritized, prio), (ep.fallback, fallback)):
                    for ent in tier_entries:
                        k = ent.key
                        if k.disabled:
                            r = _R_DISABLED
                        elif k.api_keys is not None and api_id not in k.api_keys:
                            r = _R_API_KEY
                        elif k.members is not None and member not in k.members:
                            r = _R_MEMBER
                        elif k.environments is not None and env not in k.environments:
                            r = _R_ENV
                        elif zdr and not ent.attempt.zdr:
                            r = _R_ZDR
                        elif cooling and k.id in cooling:
                            r = _R_COOLING
                        else:
                            out.append(ent.attempt)
                            continue
                        excluded.append(ent.excl[r] or ent.excluded(r))
                        not_guardrail += 1

                # Shared capacity for this endpoint.
                r_shared = None
                detail = ""
                if not ep.shared:
                    r_shared = NO_SHARED_CAPACITY
                elif shared_off is not None:
                    r_shared, detail = shared_off, shared_off_detail
                else:
                    for k in ep.shared_blockers:
                        if k.serves(api_id, member, env):
                            r_shared = SHARED_FALLBACK_DISABLED
                            detail = f"key {k.id} is shared_fallback: {k.shared_fallback}"
                            break
                    else:
                        if zdr and not ep.zdr:
                            r_shared = ZDR_REQUIRED
                if r_shared is None:
                    shared.append(ep.shared_attempt)
                else:
                    excluded.append(xc(model, ep.provider, "shared", r_shared, detail))
                    not_guardrail += 1

            if pol.zdr_preferred and not zdr:
                # zdr: preferred keeps every route but tries ZDR ones first within each tier.
                prio.sort(key=_not_zdr)
                shared.sort(key=_not_zdr)
                fallback.sort(key=_not_zdr)
            attempts += prio
            attempts += shared
            attempts += fallback

        error = None
        if not attempts:
            ex = [e.to_dict(with_detail=True) for e in excluded]
            if excluded and not_guardrail == 0:
                error = RouteError(
                    GUARDRAIL_BLOCK,
                    "guardrail " + ", ".join(pol.guardrails) + " blocks every requested "
                    "model/provider for " + ", ".join(models),
                    {"excluded": ex},
                )
            else:
                error = RouteError(
                    NO_ROUTE,
                    f"no eligible route for {', '.join(models)}: every candidate was "
                    "excluded (see metadata.excluded)",
                    {"excluded": ex},
                )
        return Plan(
            attempts=tuple(attempts),
            excluded=tuple(excluded),
            error=error,
            max_attempts=pol.max_attempts,
            deadline_s=pol.deadline_s,
        )

    def _by_price(self, eps: list[_Ep] | tuple[_Ep, ...], model: str, day: dt.date) -> list[_Ep]:
        """Cheapest first by effective input + output price on `day`; ties by provider id."""
        price = self.prices.price

        def key(ep: _Ep) -> tuple[Decimal, str]:
            return (price(model, ep.provider, day).sort_key, ep.provider)

        return sorted(eps, key=key)

    def _eps_on(self, model: str, day: dt.date) -> tuple[_Ep, ...]:
        """Endpoints of a model with dated price changes, in price order on `day`."""
        k = (model, day)
        eps = self._day_order.get(k)
        if eps is None:
            if len(self._day_order) > 4096:
                self._day_order.clear()
            eps = self._day_order[k] = tuple(self._by_price(self._models[model], model, day))
        return eps


def _not_zdr(a: Attempt) -> bool:
    return not a.zdr
