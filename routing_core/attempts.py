"""The attempt loop (failover semantics, written once) as a generator, driven by the
router's sync, async and streaming entry points, and unit-testable without HTTP: drive it
with `next`/`send` and hand it whatever result each step should see.

Steps yielded: `(CALL, attempt, timeout_s)` -> the driver sends back a success object (a
`ProviderResult`, or an opened stream: anything but a `ProviderError`) or the
`ProviderError` of that call; `(SLEEP, seconds)` -> the driver sleeps and sends None. The
generator returns `(attempt, result)` on success or `(None, RouteError)` when the plan is
exhausted.

Failover: 429 -> next key/route (the key rests for `router.rate_limit_cooldown_s` or its
Retry-After; Retry-After is waited out only to retry the same route when it is the last one
left, within the deadline); 5xx / 529 / timeout / connection error -> next route; 401/403 ->
the key cools down for `router.cooldown_s`, next route; 400 -> no failover, except a
context-length error -> next model. Exponential backoff with full jitter between attempts;
`max_attempts` and `deadline_s` of the workload bound everything.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Generator, Mapping
from typing import Any

from routing_core.config import RouterSettings
from routing_core.providers import (
    AUTH,
    BAD_REQUEST,
    CONTEXT_LENGTH,
    RATE_LIMITED,
    UNAVAILABLE_KINDS,
    ProviderError,
)
from routing_core.request import RequestCtx
from routing_core.routes import (
    ALL_RATE_LIMITED,
    UNAVAILABLE,
    UPSTREAM_FAILED,
    Attempt,
    RouteError,
)
from routing_core.routes import BAD_REQUEST as HTTP_BAD_REQUEST

CALL = 0
SLEEP = 1


def attempt_loop(
    ctx: RequestCtx,
    *,
    settings: RouterSettings,
    timeouts: Mapping[str, float],
    rng: random.Random,
    timer: Callable[[], float],
    cool_down: Callable[[str, float], None],
) -> Generator[tuple, Any, tuple]:
    """The attempt loop over `ctx.plan` (see module docstring). `timeouts`: provider id ->
    per-call timeout; `timer`: monotonic seconds (ctx.t0 is its reading at entry);
    `cool_down(key_id, seconds)` rests a BYOK key."""
    plan = ctx.plan
    assert plan is not None
    routes = plan.attempts
    max_attempts = plan.max_attempts
    deadline = plan.deadline_s
    st = settings
    skip_models: set[str] = set()
    dead_keys: set[str] = set()  # keys that failed auth in this request
    i = 0
    n = 0
    last_error: ProviderError | None = None

    def elapsed() -> float:
        return timer() - ctx.t0 + ctx.slept

    def usable(j: int) -> bool:
        a = routes[j]
        return a.model not in skip_models and (a.key_id is None or a.key_id not in dead_keys)

    wait_same = 0.0  # Retry-After to wait before retrying the same route
    while i < len(routes) and n < max_attempts:
        if not usable(i):
            i += 1
            continue
        a = routes[i]
        if n:
            pause = wait_same or rng.uniform(
                0, min(st.backoff_max_s, st.backoff_base_s * (2 ** (n - 1)))
            )
            if elapsed() + pause >= deadline:
                break
            if pause > 0:
                yield (SLEEP, pause)
        wait_same = 0.0
        remaining = deadline - elapsed()
        if remaining <= 0:
            break
        res = yield (CALL, a, min(timeouts[a.provider], remaining))
        n += 1
        if not isinstance(res, ProviderError):
            return a, res
        last_error = res
        kind = res.kind
        if kind == RATE_LIMITED:
            if a.key_id is not None:
                cool_down(
                    a.key_id,
                    max(st.rate_limit_cooldown_s, min(res.retry_after_s or 0.0, st.cooldown_s)),
                )
            last_left = not any(usable(j) for j in range(i + 1, len(routes)))
            ra = res.retry_after_s
            if (
                last_left
                and n < max_attempts
                and ra is not None
                and ra <= st.max_retry_after_s
                and elapsed() + ra < deadline
            ):
                wait_same = max(ra, 1e-6)
                continue  # same route again after Retry-After
            i += 1
        elif kind == AUTH:
            if a.key_id is not None:
                dead_keys.add(a.key_id)
                cool_down(a.key_id, st.cooldown_s)
            i += 1
        elif kind == CONTEXT_LENGTH:
            skip_models.add(a.model)
            i += 1
        elif kind == BAD_REQUEST:
            return None, RouteError(
                HTTP_BAD_REQUEST,
                f"provider {a.provider} rejected the request: {res.message}",
                error_meta(ctx),
            )
        else:
            i += 1
    return None, exhausted(ctx, last_error, n, elapsed() >= deadline)


def exhausted(ctx: RequestCtx, last: ProviderError | None, n: int, late: bool) -> RouteError:
    """The caller-facing error (docs/routing.md) of a plan that ran out of attempts, routes or time."""
    kinds = ctx.kinds
    meta = error_meta(ctx)
    if not kinds:
        return RouteError(UNAVAILABLE, "deadline reached before any provider answered", meta)
    if last is not None and last.kind == CONTEXT_LENGTH and all(k == CONTEXT_LENGTH for k in kinds):
        return RouteError(
            HTTP_BAD_REQUEST,
            "the prompt is too long for every eligible model: " + last.message,
            meta,
        )
    why = f" after {n} attempt(s)" + (" (deadline reached)" if late else "")
    if all(k == RATE_LIMITED for k in kinds):
        if last is not None and last.retry_after_s is not None:
            meta["retry_after_s"] = last.retry_after_s
        return RouteError(ALL_RATE_LIMITED, "every eligible route is rate limited" + why, meta)
    if all(k in UNAVAILABLE_KINDS for k in kinds):
        return RouteError(UNAVAILABLE, "providers unavailable" + why, meta)
    return RouteError(UPSTREAM_FAILED, "upstream providers failed" + why, meta)


def error_meta(ctx: RequestCtx) -> dict[str, Any]:
    return {"request_id": ctx.request_id, "attempts": ctx.attempts}


def fallback_of(ctx: RequestCtx, served: Attempt | None) -> tuple[bool, str | None]:
    """(fallback_used, fallback_reason) of the record."""
    if served is not None and ctx.requested and served.model != ctx.requested[0]:
        return True, "model_fallback"
    if not ctx.kinds:
        return False, None
    first = ctx.attempts[0]
    same_route = (first["model"], first["provider"], first["key_id"])
    if served is not None and (served.model, served.provider, served.key_id) == same_route:
        return False, None  # served by the first route (e.g. after its Retry-After)
    if served is None and all(
        (a["model"], a["provider"], a["key_id"]) == same_route for a in ctx.attempts
    ):
        return False, None  # never left the first route
    kind = ctx.kinds[0]
    if kind == RATE_LIMITED:
        return True, "rate_limited"
    if kind == AUTH:
        return True, "auth_error"
    if kind == CONTEXT_LENGTH:
        return True, "model_fallback"
    return True, "provider_error"
