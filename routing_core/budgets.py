"""Spend limits enforced before any provider is called (docs/routing.md, budgets): API key limits
(`api_keys[].limit`) and guardrail budgets (of the API key's guardrail, the member's
guardrail and the `default` guardrail), per UTC calendar period.

Reservation protocol: `reserve()` the request's maximum cost before the first provider
call, `settle()` to the actual cost when it is known, `release()` when nothing was spent.
Reserved amounts count against every limit while in flight, so concurrent requests can
overshoot a limit by at most what is in flight (and only when the settled cost exceeds the
reserved bound, which `PriceBook.max_cost_breakdown` rules out).

Where the counters live is pluggable (`router.state`): `MemoryState` (default) keeps them
in this process; `routing_core.state_redis.RedisState` keeps them in a Redis shared by every
gateway worker and replica, with atomic reservations that expire after a TTL so a killed
replica's holds do not block a limit forever.

Counters (the `scope`/`scope_id` of `spent()` and of the 402 metadata):
- `("api_key", <api key id>)`: the API key's `limit`; counts platform credits + platform
  fee, plus the provider's charge when `include_byok` is true.
- `("guardrail:<gid>", "api_key:<id>")` and `("guardrail:<gid>", "member:<id>")`: a
  guardrail's `budget`, counting total cost. As in OpenRouter, guardrail budgets are per
  entity, not pooled: a guardrail on an API key caps that key, a member's guardrail caps
  that member across all keys, and the `default` guardrail caps every key and every member.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Protocol

# period_bounds is defined in routing_core.calendar and re-exported here for existing callers.
from routing_core.calendar import period_bounds
from routing_core.config import LedgerConfig
from routing_core.money import format_usd
from routing_core.pricing import ByokFeeMeter, utc_day, utc_month
from routing_core.routes import LIMIT_EXHAUSTED, RouteError
from routing_core.schema import REQUESTS_DIR, Cost
from routing_core.usage import bound_seeded_cost, finite_money

_ZERO = Decimal(0)


def period_key(reset: str, at: dt.datetime) -> str:
    """The UTC calendar period `at` falls in: daily 'YYYY-MM-DD', weekly ISO week
    'YYYY-Www' (weeks start on Monday), monthly 'YYYY-MM', none '' (lifetime)."""
    d = utc_day(at)
    if reset == "daily":
        return d.isoformat()
    if reset == "monthly":
        return f"{d.year:04d}-{d.month:02d}"
    if reset == "weekly":
        y, w, _ = d.isocalendar()
        return f"{y:04d}-W{w:02d}"
    return ""


def period_start(reset: str, at: dt.datetime) -> dt.date | None:
    """First UTC day of the period `at` falls in (None for lifetime)."""
    if reset not in ("daily", "weekly", "monthly"):
        return None
    return period_bounds(reset, utc_day(at))[0]


@dataclass(frozen=True, slots=True)
class _Limit:
    scope: str
    scope_id: str
    usd: Decimal
    reset: str
    measure: str  # "api_key" (credits + fee [+ provider]) or "total"
    include_byok: bool = False

    def amount(self, cost: Cost | Decimal) -> Decimal:
        if isinstance(cost, Decimal):
            return cost  # an undivided bound counts in full everywhere (conservative)
        if self.measure == "total":
            return cost.provider_usd + cost.platform_fee_usd + cost.platform_credits_usd
        spent = cost.platform_credits_usd + cost.platform_fee_usd
        if self.include_byok:
            spent += cost.provider_usd
        return spent


@dataclass(slots=True)
class Reservation:
    """Amounts held against each applicable limit for one in-flight request."""

    api_key_id: str
    member_id: str | None
    credential: str
    at: dt.datetime
    holds: tuple[tuple[_Limit, str, Decimal], ...]  # (limit, period key, reserved amount)
    done: bool = field(default=False)
    res_id: str = ""  # the shared state's handle on this hold ("" in memory)


CounterKey = tuple[str, str, str]  # (scope, scope_id, period key)


class BudgetState(Protocol):
    """Where counters live: `MemoryState` or `routing_core.state_redis.RedisState`."""

    shared: bool

    def reserve(
        self, holds: list[tuple[CounterKey, Decimal, Decimal, str]]
    ) -> tuple[str, int, Decimal]: ...

    def finish(
        self, res_id: str, holds: list[tuple[CounterKey, Decimal]], actual: list[Decimal] | None
    ) -> None: ...

    def add(self, items: list[tuple[CounterKey, Decimal, str]]) -> None: ...

    def settled(self, ck: CounterKey) -> Decimal: ...

    def inflight(self, ck: CounterKey) -> Decimal: ...

    def seed_once(self, seed: Callable[[], None]) -> bool: ...

    def close(self) -> None: ...


class MemoryState:
    """Budget counters of one process (`router.state: memory`). Not thread-safe by itself:
    `SpendGuard` calls it under its lock."""

    shared = False

    def __init__(self) -> None:
        self._settled: dict[CounterKey, Decimal] = {}
        self._inflight: dict[CounterKey, Decimal] = {}

    def reserve(
        self, holds: list[tuple[CounterKey, Decimal, Decimal, str]]
    ) -> tuple[str, int, Decimal]:
        """Hold every (counter, limit, amount, reset) or nothing. Returns (res_id, -1, 0) on
        success, else ("", index of the first exhausted hold, its used amount)."""
        for i, (ck, limit, amount, _) in enumerate(holds):
            used = self._settled.get(ck, _ZERO) + self._inflight.get(ck, _ZERO)
            if used + amount > limit:
                return "", i, used
        for ck, _, amount, _ in holds:
            self._inflight[ck] = self._inflight.get(ck, _ZERO) + amount
        return "", -1, _ZERO

    def finish(
        self, res_id: str, holds: list[tuple[CounterKey, Decimal]], actual: list[Decimal] | None
    ) -> None:
        """Drop a reservation's holds and, when `actual` is given, add it to settled."""
        for i, (ck, amount) in enumerate(holds):
            left = self._inflight.get(ck, _ZERO) - amount
            if left:
                self._inflight[ck] = left
            else:
                self._inflight.pop(ck, None)
            if actual is not None:
                self._settled[ck] = self._settled.get(ck, _ZERO) + actual[i]

    def add(self, items: list[tuple[CounterKey, Decimal, str]]) -> None:
        """Add already-spent amounts to settled counters (no reservation)."""
        for ck, amount, _ in items:
            self._settled[ck] = self._settled.get(ck, _ZERO) + amount

    def settled(self, ck: CounterKey) -> Decimal:
        return self._settled.get(ck, _ZERO)

    def inflight(self, ck: CounterKey) -> Decimal:
        return self._inflight.get(ck, _ZERO)

    def seed_once(self, seed: Callable[[], None]) -> bool:
        """Run `seed` (count the logs into the counters); in memory, always."""
        seed()
        return True

    def close(self) -> None:
        pass


def make_state(config: LedgerConfig) -> BudgetState:
    """The counter store `router.state` names (`memory`, or a Redis URL)."""
    st = config.router
    if st.state == "memory":
        return MemoryState()
    from routing_core.state_redis import RedisState  # only deployments with Redis import it

    ttl = st.reservation_ttl_s
    if ttl is None:
        ttl = max((w.deadline_s for w in config.workloads), default=60.0) + 60.0
    return RedisState(st.state, prefix=st.state_prefix, reservation_ttl_s=ttl)


class SpendGuard:
    """Thread-safe spend counters with reservations. One lock; every operation is a few
    dict updates, so it is safe to call from asyncio code as well as from threads."""

    def __init__(self, config: LedgerConfig, state: BudgetState | None = None) -> None:
        self.config = config
        self._lock = threading.Lock()
        self.state = state if state is not None else make_state(config)
        guardrails = {g.id: g for g in config.guardrails}
        self._member_guardrail = {m.id: m.guardrail for m in config.members}
        self._api_owner = {a.id: a.owner for a in config.api_keys}

        def gr_limit(gid: str | None, entity: str) -> _Limit | None:
            g = guardrails.get(gid or "")
            if g is None or g.budget is None:
                return None
            return _Limit(f"guardrail:{g.id}", entity, g.budget.usd, g.budget.reset, "total")

        # Limits that follow from the API key alone.
        self._api_limits: dict[str, tuple[_Limit, ...]] = {}
        for a in config.api_keys:
            limits: list[_Limit] = []
            if a.limit is not None:
                limits.append(
                    _Limit(
                        "api_key", a.id, a.limit.usd, a.limit.reset, "api_key", a.limit.include_byok
                    )
                )
            for gid in dict.fromkeys((a.guardrail, "default")):
                lim = gr_limit(gid, f"api_key:{a.id}")
                if lim is not None:
                    limits.append(lim)
            self._api_limits[a.id] = tuple(limits)
        # Limits that follow from the member.
        self._member_limits: dict[str, tuple[_Limit, ...]] = {}
        for m in config.members:
            limits = []
            for gid in dict.fromkeys((m.guardrail, "default")):
                lim = gr_limit(gid, f"member:{m.id}")
                if lim is not None:
                    limits.append(lim)
            self._member_limits[m.id] = tuple(limits)
        self._all_limits = [lim for ls in self._api_limits.values() for lim in ls] + [
            lim for ls in self._member_limits.values() for lim in ls
        ]

    def _limits(self, api_key_id: str, member_id: str | None) -> tuple[_Limit, ...]:
        api = self._api_limits.get(api_key_id, ())
        if member_id is None:
            member_id = self._api_owner.get(api_key_id)
        if member_id is None:
            return api
        return api + self._member_limits.get(member_id, ())

    def reserve(
        self,
        api_key_id: str,
        member_id: str | None,
        max_cost: Cost | Decimal,
        credential: str,
        at: dt.datetime,
    ) -> Reservation:
        """Hold `max_cost` against every limit that applies (a `Cost` lets each limit count
        only the layers it measures; a bare Decimal counts in full everywhere). Raises
        `RouteError(402)` naming the first exhausted scope and its remaining amount; on
        failure nothing is held. `member_id` None means the API key's owner, if any."""
        limits = self._limits(api_key_id, member_id)
        holds = []
        asks = []
        for lim in limits:
            pk = period_key(lim.reset, at)
            amount = lim.amount(max_cost)
            holds.append((lim, pk, amount))
            asks.append(((lim.scope, lim.scope_id, pk), lim.usd, amount, lim.reset))
        with self._lock:
            res_id, bad, used = self.state.reserve(asks)
        if bad >= 0:
            lim, pk, amount = holds[bad]
            remaining = max(lim.usd - used, _ZERO)
            raise RouteError(
                LIMIT_EXHAUSTED,
                f"{lim.scope} {lim.scope_id} limit exhausted: "
                f"{format_usd(remaining, keep_small=True)} of {format_usd(lim.usd)} left this "
                f"period ({lim.reset}), request may cost up to "
                f"{format_usd(amount, keep_small=True)}",
                {
                    "scope": lim.scope,
                    "scope_id": lim.scope_id,
                    "period": pk or "lifetime",
                    "limit_usd": str(lim.usd),
                    "remaining_usd": str(remaining),
                    "requested_usd": str(amount),
                },
            )
        return Reservation(api_key_id, member_id, credential, at, tuple(holds), res_id=res_id)

    @staticmethod
    def _holds(res: Reservation) -> list[tuple[CounterKey, Decimal]]:
        return [((lim.scope, lim.scope_id, pk), amount) for lim, pk, amount in res.holds]

    def settle(self, reservation: Reservation, actual: Cost) -> None:
        """Replace the hold by the actual cost (in the reservation's periods). Idempotent."""
        with self._lock:
            if reservation.done:
                return
            reservation.done = True
            actuals = [lim.amount(actual) for lim, _, _ in reservation.holds]
            self.state.finish(reservation.res_id, self._holds(reservation), actuals)

    def release(self, reservation: Reservation) -> None:
        """Drop the hold of a request that spent nothing. Idempotent."""
        with self._lock:
            if reservation.done:
                return
            reservation.done = True
            self.state.finish(reservation.res_id, self._holds(reservation), None)

    def record(self, api_key_id: str, member_id: str | None, cost: Cost, at: dt.datetime) -> None:
        """Count an already-spent cost (no reservation), e.g. when replaying logs."""
        with self._lock:
            self.state.add(self._settled_items(api_key_id, member_id, cost, at))

    def _settled_items(
        self, api_key_id: str, member_id: str | None, cost: Cost, at: dt.datetime
    ) -> list[tuple[CounterKey, Decimal, str]]:
        return [
            ((lim.scope, lim.scope_id, period_key(lim.reset, at)), lim.amount(cost), lim.reset)
            for lim in self._limits(api_key_id, member_id)
        ]

    def spent(self, scope: str, scope_id: str, at: dt.datetime) -> Decimal:
        """Settled spend of one counter in the period containing `at` (excludes holds)."""
        lim = self._find(scope, scope_id)
        pk = period_key(lim.reset, at) if lim else ""
        with self._lock:
            return self.state.settled((scope, scope_id, pk))

    def in_flight(self, scope: str, scope_id: str, at: dt.datetime) -> Decimal:
        """Currently reserved amount of one counter in the period containing `at`."""
        lim = self._find(scope, scope_id)
        pk = period_key(lim.reset, at) if lim else ""
        with self._lock:
            return self.state.inflight((scope, scope_id, pk))

    def limits(self) -> list[tuple[str, str, Decimal, str]]:
        """Every (scope, scope_id, limit usd, reset) this guard enforces (for metrics)."""
        return [(lim.scope, lim.scope_id, lim.usd, lim.reset) for lim in self._all_limits]

    def close(self) -> None:
        """Close the counter store's connections (Redis)."""
        self.state.close()

    def _find(self, scope: str, scope_id: str) -> _Limit | None:
        return next(
            (lim for lim in self._all_limits if lim.scope == scope and lim.scope_id == scope_id),
            None,
        )

    def seed_from_logs(
        self,
        logs_dir: Path,
        now: dt.datetime,
        *,
        fee_meter: ByokFeeMeter | None = None,
        ceiling: Callable[[dict, dt.datetime], Cost | None] | None = None,
    ) -> int:
        """Count the request logs of the current periods (the docs/log-contract.md layout) so limits survive
        a restart; with `fee_meter`, also seed this month's list-price BYOK spend. A torn
        or unreadable line is skipped; a money field that is not a finite, non-negative
        decimal counts 0. `ceiling(record, ts)` gives the most one request on that record's
        route can cost: each layer is capped there (routing_core.usage.bound_seeded_cost),
        so one poisoned line counts at most one request's worth. Returns the number of
        records counted."""
        resets = {lim.reset for lim in self._all_limits}
        starts = [period_start(r, now) for r in resets]
        month_start = utc_day(now).replace(day=1)
        if fee_meter is not None:
            starts.append(month_start)
        if any(s is None for s in starts):
            first: dt.date | None = None  # a lifetime limit: read everything
        else:
            first = min((s for s in starts if s is not None), default=utc_day(now))
        month = utc_month(now)
        byok_list = _ZERO
        n = 0
        items: list[tuple[CounterKey, Decimal, str]] = []
        for rec in _records(Path(logs_dir) / REQUESTS_DIR, first, utc_day(now)):
            try:
                ts = dt.datetime.fromisoformat(rec["ts"].replace("Z", "+00:00"))
                if ts.tzinfo is None:
                    continue
                c = rec.get("cost") or {}
                cost = Cost(
                    *(
                        finite_money(c.get(f)) or _ZERO
                        for f in ("list_usd", "provider_usd", "platform_fee_usd")
                    ),
                    platform_credits_usd=finite_money(c.get("platform_credits_usd")) or _ZERO,
                )
                api_key_id = rec["api_key_id"]
                if not isinstance(api_key_id, str):
                    continue
            except (KeyError, TypeError, ValueError, AttributeError, InvalidOperation):
                continue
            if ts > now:
                continue
            if ceiling is not None:
                top = ceiling(rec, ts)
                if top is not None:
                    cost = bound_seeded_cost(cost, top)
            items.extend(self._settled_items(api_key_id, rec.get("member_id"), cost, ts))
            if rec.get("credential") == "byok" and utc_month(ts) == month:
                byok_list += cost.list_usd
            n += 1
        if fee_meter is not None and byok_list:
            fee_meter.seed(month, byok_list)

        def count() -> None:
            with self._lock:
                self.state.add(items)

        # A shared store is seeded by one process only, when it is empty (the others wait
        # for it); the fee meter above is per process and always seeded.
        self.state.seed_once(count)
        return n


def _records(requests_dir: Path, first: dt.date | None, last: dt.date) -> Iterator[dict]:
    """Request records of day folders first..last (inclusive); bad lines skipped."""
    if not requests_dir.is_dir():
        return
    for day_dir in sorted(requests_dir.glob("dt=*")):
        try:
            day = dt.date.fromisoformat(day_dir.name[3:])
        except ValueError:
            continue
        if (first is not None and day < first) or day > last:
            continue
        for f in sorted(day_dir.glob("*.jsonl")):
            with f.open("rb") as fh:
                for line in fh:
                    try:
                        rec = json.loads(line)
                    except ValueError:
                        continue  # torn last line of a crashed writer
                    if isinstance(rec, dict):
                        yield rec
