"""The one request-record encoder (the log contract's request record as one JSON line),
used by every writer: the router and the simulator's fast synthesizer.

A record is assembled from JSON fragments instead of `json.dumps` of a ~30-field nested
dict (that was a third of the router's overhead): the caller fragment (`who`), the served
route (`route`) and each attempt's head are cached by the writer, and every caller- or
provider-supplied string is quoted by the json module's own C encoder. Key order is
`schema.REQUEST_FIELDS`, then the optional fields (`usage_source`, `stream`, `ttfb_ms`,
`error_reason`) when they are set. The tests validate every line against
`schema.RequestRecord`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from decimal import Decimal
from json.encoder import encode_basestring_ascii
from typing import TYPE_CHECKING, Any

from routing_core.schema import REQUESTS_DIR, SCHEMA_VERSION, Cost, Usage, format_ts

if TYPE_CHECKING:
    from routing_core.request import RequestCtx
    from routing_core.request_log import RequestLog
    from routing_core.routes import Attempt

FRAGMENT_CACHE_SIZE = 10_000  # per cache; cleared when full (a few distinct values in practice)

# C-implemented JSON string quoting (what json.dumps does for a str, minus its Python-level
# wrapper: ~0.3 µs instead of ~3 µs on the hot path).
jq = encode_basestring_ascii
_dumps = json.dumps

NOT_SERVED = (
    '"model":null,"provider":null,"upstream_model":null,"credential":null,"key_id":null,'
    '"account":{}'
)
ZERO_USAGE = (
    '{"input_tokens":0,"cache_read_tokens":0,"cache_write_tokens":0,'
    '"output_tokens":0,"reasoning_tokens":0}'
)
ZERO_COST = (
    '{"list_usd":"0.000000000","provider_usd":"0.000000000",'
    '"platform_fee_usd":"0.000000000","platform_credits_usd":"0.000000000"}'
)


_OK = '"ok"'
_ERROR = '"error"'


def jstr(v: str | None) -> str:
    """A JSON string or null."""
    return "null" if v is None else jq(v)


def who_fragment(
    api_key_id: str | None,
    environment: str | None,
    app: str | None,
    member_id: str | None,
    workload: str | None,
    data_class: str | None,
) -> str:
    """`"api_key_id":..,"environment":..,"app":..,"member_id":..,"workload":..,
    "data_class":..` (no braces, no trailing comma)."""
    return (
        f'"api_key_id":{jstr(api_key_id)},"environment":{jstr(environment)},'
        f'"app":{jstr(app)},"member_id":{jstr(member_id)},"workload":{jstr(workload)},'
        f'"data_class":{jstr(data_class)}'
    )


def route_fragment(
    model: str,
    provider: str,
    upstream_model: str,
    credential: str,
    key_id: str | None,
    account: Mapping[str, str] | None,
) -> str:
    """`"model":..,"provider":..,"upstream_model":..,"credential":..,"key_id":..,
    "account":{..}` of a served record (no braces, no trailing comma)."""
    acc = _dumps(dict(account or {}), separators=(",", ":"))
    return (
        f'"model":{jq(model)},"provider":{jq(provider)},"upstream_model":{jq(upstream_model)},'
        f'"credential":{jq(credential)},"key_id":{jstr(key_id)},"account":{acc}'
    )


def attempt_head(model: str, provider: str, credential: str, key_id: str | None) -> str:
    """`{"model":..,"provider":..,"credential":..,"key_id":..` of an attempt (open brace,
    no trailing comma): the cacheable part of `attempt_json`."""
    return (
        f'{{"model":{jq(model)},"provider":{jq(provider)},"credential":{jq(credential)},'
        f'"key_id":{jstr(key_id)}'
    )


def attempt_json(
    head: str, status: str, http_status: int | None, error_type: str | None, latency_ms: float
) -> str:
    """One attempt object from its cached `attempt_head`."""
    return (
        f'{head},"status":{jq(status)},"http_status":'
        f'{"null" if http_status is None else int(http_status)},"error_type":'
        f'{"null" if error_type is None else jq(error_type)},"latency_ms":{latency_ms!r}}}'
    )


def usage_json(u: Usage | None) -> str:
    if u is None:
        return ZERO_USAGE
    return usage_json_ints(
        u.input_tokens, u.cache_read_tokens, u.cache_write_tokens, u.output_tokens,
        u.reasoning_tokens,
    )  # fmt: skip


def usage_json_ints(inp: int, cache_read: int, cache_write: int, out: int, reasoning: int) -> str:
    """The usage object from five plain ints (callers pass bounded `Usage` counts or the
    synthesizer's integers: never bools or floats)."""
    return (
        f'{{"input_tokens":{inp},"cache_read_tokens":{cache_read},'
        f'"cache_write_tokens":{cache_write},"output_tokens":{out},'
        f'"reasoning_tokens":{reasoning}}}'
    )


def cost_json(c: Cost | None) -> str:
    if c is None:
        return ZERO_COST
    return cost_json_str(
        _money(c.list_usd), _money(c.provider_usd), _money(c.platform_fee_usd),
        _money(c.platform_credits_usd),
    )  # fmt: skip


def cost_json_str(list_usd: str, provider_usd: str, fee_usd: str, credits_usd: str) -> str:
    """The cost object from already formatted decimal strings (9 decimal places)."""
    return (
        f'{{"list_usd":"{list_usd}","provider_usd":"{provider_usd}",'
        f'"platform_fee_usd":"{fee_usd}","platform_credits_usd":"{credits_usd}"}}'
    )


def _money(d: Decimal) -> str:
    return f"{d:f}"


def request_line(
    *,
    request_id: str,
    ts: str,
    duration_ms: float,
    who: str,
    workflow_id: str | None,
    idempotency_key: str | None,
    requested_models: Iterable[str] | str,
    route: str | None,
    attempts: Iterable[str],
    fallback_used: bool,
    fallback_reason: str | None,
    error_code: int | None,
    zdr: bool | None,
    usage: str,
    cost: str,
    usage_source: str | None = None,
    stream: bool | None = None,
    ttfb_ms: float | None = None,
    error_reason: str | None = None,
) -> str:
    """One request record as a JSON line (no newline). Fragments (`who`, `route`,
    `attempts`, `usage`, `cost`) come from the functions above; `requested_models` is a
    list of slugs or its already encoded JSON array; `route` None means not served.
    `status` is "error" exactly when `error_code` is set."""
    req = (
        requested_models
        if requested_models.__class__ is str
        else "[" + ",".join(map(jq, requested_models)) + "]"
    )
    tail = ""
    if usage_source is not None:
        tail = f',"usage_source":{jq(usage_source)}'
    if stream is not None:
        tail += ',"stream":true' if stream else ',"stream":false'
    if ttfb_ms is not None:
        tail += f',"ttfb_ms":{ttfb_ms!r}'
    if error_reason is not None:
        tail += f',"error_reason":{jq(error_reason)}'
    # One f-string, the null checks inline (a helper call per field costs more than the
    # rest of the line on the simulator's million-record days).
    return (
        f'{{"schema_version":{SCHEMA_VERSION},"request_id":{jq(request_id)},"ts":"{ts}",'
        f'"duration_ms":{duration_ms!r},{who},'
        f'"workflow_id":{"null" if workflow_id is None else jq(workflow_id)},'
        f'"idempotency_key":{"null" if idempotency_key is None else jq(idempotency_key)},'
        f'"requested_models":{req},'
        f"{NOT_SERVED if route is None else route},"
        f'"attempts":[{",".join(attempts)}],"fallback_used":{"true" if fallback_used else "false"},'
        f'"fallback_reason":{"null" if fallback_reason is None else jq(fallback_reason)},'
        f'"status":{_OK if error_code is None else _ERROR},'
        f'"error_code":{"null" if error_code is None else int(error_code)},'
        f'"zdr":{"null" if zdr is None else ("true" if zdr else "false")},'
        f'"usage":{usage},"cost":{cost}{tail}}}'
    )


class RecordWriter:
    """The router's record writer: one JSON line per request through `request_line`, with
    the caller, served-route and attempt-route fragments cached (each cache bounded)."""

    def __init__(self, log: RequestLog, accounts: Mapping[str, Mapping[str, str]]):
        self.log = log
        self._accounts = accounts
        self._who: dict[tuple, tuple[Any, str]] = {}
        self._routes: dict[int, tuple[Attempt, str]] = {}
        self._heads: dict[tuple, str] = {}

    def write(
        self,
        ctx: RequestCtx,
        served: Attempt | None,
        usage: Usage | None,
        cost: Cost | None,
        error_code: int | None,
        fallback_used: bool,
        fallback_reason: str | None,
        duration_ms: float,
        *,
        usage_source: str | None = None,
        ttfb_ms: float | None = None,
        error_reason: str | None = None,
    ) -> None:
        start = ctx.start
        if start.tzinfo is dt.UTC:
            ts = start.isoformat(timespec="milliseconds")[:23] + "Z"
        else:
            ts = format_ts(start)
        heads = self._heads
        atts = []
        for a in ctx.attempts:
            rk = (a["model"], a["provider"], a["credential"], a["key_id"])
            head = heads.get(rk)
            if head is None:
                head = attempt_head(*rk)
                if len(heads) > FRAGMENT_CACHE_SIZE:
                    heads.clear()
                heads[rk] = head
            atts.append(
                attempt_json(head, a["status"], a["http_status"], a["error_type"], a["latency_ms"])
            )
        line = request_line(
            request_id=ctx.request_id,
            ts=ts,
            duration_ms=duration_ms,
            who=self.who(ctx),
            workflow_id=ctx.workflow_id,
            idempotency_key=ctx.idempotency_key,
            requested_models=ctx.requested,
            route=None if served is None else self.route(served),
            attempts=atts,
            fallback_used=fallback_used,
            fallback_reason=fallback_reason,
            error_code=error_code,
            zdr=None if served is None else served.zdr,
            usage=usage_json(usage),
            cost=cost_json(cost),
            usage_source=usage_source,
            stream=True if ctx.stream else None,
            ttfb_ms=ttfb_ms,
            error_reason=error_reason,
        )
        self.log.write_line(REQUESTS_DIR, ts[:10], line)

    def who(self, ctx: RequestCtx) -> str:
        """`"api_key_id":...,"data_class":...` for this caller (cached). The app is the
        one the request named (`ctx.app`) once the caller resolved, else the API key's."""
        r = ctx.resolved
        app = ctx.app
        # Keyed by object identity (resolved callers are cached objects and hashing the
        # dataclass costs more than the lookup); the stored object guards against id reuse.
        key = (ctx.api_key_id, id(r), app)
        hit = self._who.get(key)
        if hit is not None and hit[0] is r:
            return hit[1]
        frag = who_fragment(
            ctx.api_key_id,
            r.environment if r else None,
            (r.app if app is None else app) if r else None,
            r.member_id if r else None,
            r.workload if r else None,
            r.data_class if r else None,
        )
        if len(self._who) > FRAGMENT_CACHE_SIZE:
            self._who.clear()
        self._who[key] = (r, frag)
        return frag

    def route(self, a: Attempt) -> str:
        """`"model":...,"account":{...}` for a served route (cached by identity: plans
        are cached, so their attempts are the same objects request after request)."""
        hit = self._routes.get(id(a))
        if hit is not None and hit[0] is a:
            return hit[1]
        frag = route_fragment(
            a.model,
            a.provider,
            a.upstream_model,
            a.credential,
            a.key_id,
            self._accounts.get(a.key_id, {}) if a.key_id else {},
        )
        if len(self._routes) > FRAGMENT_CACHE_SIZE:
            self._routes.clear()
        self._routes[id(a)] = (a, frag)
        return frag
