"""Budget counters and reservations in Redis (`router.state: redis://...`), shared by every
gateway worker and replica, so N replicas enforce one limit instead of N.

Per counter (scope, scope id, calendar period) three keys under `router.state_prefix`:
- `<prefix>:c:<counter>`  hash {settled, inflight}: nanodollars (integers, exact);
- `<prefix>:z:<counter>`  sorted set: reservation id -> expiry (Redis server time, ms);
- `<prefix>:a:<counter>`  hash: reservation id -> reserved nanodollars.

`reserve` is one Lua script: it first drops the expired holds of every counter it touches
(a killed replica's reservations stop counting after the TTL), then checks
`settled + inflight + amount <= limit` on every counter, then holds all or nothing. Time is
Redis's own clock (`TIME`), so replicas with skewed clocks agree. `finish` (settle/release)
drops the hold only if it is still there (HDEL's answer), so a hold that expired before
its request finished is never subtracted twice, and adds the actual cost to `settled`.

Counters of a finished calendar period expire 35 days after the period ends (lifetime
counters never). Money is whole nanodollars: a hold rounds up, a settled cost to nearest;
Lua compares in doubles, exact below 2^53 nanodollars (9 million USD) per counter.

Re-seeding: the first process to find the store empty (no `<prefix>:seeded` marker) takes
a `SET NX` lock, counts the request logs of the current periods into it and sets the
marker; the others wait for the marker instead of counting the logs again.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import time
from collections.abc import Callable
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal

import redis

from routing_core.budgets import CounterKey, period_bounds
from routing_core.routes import UNAVAILABLE, RouteError

log = logging.getLogger("byok_ledger.budgets")
_FINISH_TRIES = 3

_NANO = Decimal("0.000000001")
_ZERO = Decimal(0)
_KEEP_DAYS = 35  # how long a finished period's counters stay readable
PASSWORD_ENV = "BYOK_LEDGER_STATE_PASSWORD"
SEED_WAIT_S = 120.0

_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rid = ARGV[1]
local ttl = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
for i = 1, n do
  local c, z, a = KEYS[3*i-2], KEYS[3*i-1], KEYS[3*i]
  local dead = redis.call('ZRANGEBYSCORE', z, '-inf', now, 'LIMIT', 0, 5000)
  if #dead > 0 then
    local sum = 0
    for _, m in ipairs(dead) do
      local v = redis.call('HGET', a, m)
      if v then
        sum = sum + tonumber(v)
        redis.call('HDEL', a, m)
      end
      redis.call('ZREM', z, m)
    end
    if sum > 0 then
      redis.call('HINCRBY', c, 'inflight', string.format('%d', -sum))
    end
  end
end
for i = 1, n do
  local v = redis.call('HMGET', KEYS[3*i-2], 'settled', 'inflight')
  local used = tonumber(v[1] or '0') + tonumber(v[2] or '0')
  local lim = tonumber(ARGV[1+3*i])
  local amt = tonumber(ARGV[2+3*i])
  if used + amt > lim then
    return {i, string.format('%d', used)}
  end
end
for i = 1, n do
  local c, z, a = KEYS[3*i-2], KEYS[3*i-1], KEYS[3*i]
  local amt = ARGV[2+3*i]
  redis.call('HINCRBY', c, 'inflight', amt)
  redis.call('ZADD', z, now + ttl, rid)
  redis.call('HSET', a, rid, amt)
  local exp = tonumber(ARGV[3+3*i])
  if exp > 0 then
    redis.call('PEXPIREAT', c, exp)
    redis.call('PEXPIREAT', z, exp)
    redis.call('PEXPIREAT', a, exp)
  end
end
return {0, '0'}
"""

_FINISH = """
local rid = ARGV[1]
local n = tonumber(ARGV[2])
local settle = ARGV[3] == '1'
for i = 1, n do
  local c, z, a = KEYS[3*i-2], KEYS[3*i-1], KEYS[3*i]
  local held = redis.call('HGET', a, rid)
  if held then
    redis.call('HDEL', a, rid)
    redis.call('HINCRBY', c, 'inflight', string.format('%d', -tonumber(held)))
  end
  redis.call('ZREM', z, rid)
  if settle then
    redis.call('HINCRBY', c, 'settled', ARGV[3+i])
  end
end
return n
"""


def to_nanos(amount: Decimal, *, up: bool = False) -> int:
    """Whole nanodollars of a USD Decimal (a hold rounds up so it never under-reserves)."""
    return int(amount.quantize(_NANO, rounding=ROUND_CEILING if up else ROUND_HALF_EVEN) / _NANO)


def from_nanos(n: int | bytes | str | None) -> Decimal:
    return _ZERO if n is None else Decimal(int(n)) * _NANO


def _counter_name(ck: CounterKey) -> str:
    scope, scope_id, pk = ck
    return f"{scope}|{scope_id}|{pk}"


def period_expiry_ms(reset: str, pk: str) -> int:
    """When a counter of period `pk` may be forgotten: 35 days after the period ends
    (0 = never, for lifetime limits)."""
    if not pk or reset not in ("daily", "weekly", "monthly"):
        return 0
    if reset == "weekly":
        year, week = pk.split("-W")
        day = dt.date.fromisocalendar(int(year), int(week), 1)
    elif reset == "monthly":
        day = dt.date.fromisoformat(pk + "-01")
    else:
        day = dt.date.fromisoformat(pk)
    last = period_bounds(reset, day)[1]
    end = dt.datetime.combine(last + dt.timedelta(days=1 + _KEEP_DAYS), dt.time(), dt.UTC)
    return int(end.timestamp() * 1000)


class RedisState:
    """Budget counters in Redis (see the module docstring). Thread-safe (redis-py pools
    connections); each call is one round trip."""

    shared = True

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "byok-ledger",
        reservation_ttl_s: float = 120.0,
        client: redis.Redis | None = None,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.ttl_ms = max(1, int(reservation_ttl_s * 1000))
        if client is None:
            client = redis.Redis.from_url(
                url,
                password=os.environ.get(PASSWORD_ENV) or None,
                socket_timeout=5.0,
                socket_connect_timeout=5.0,
                health_check_interval=30,
            )
        self.r = client
        try:
            self._reserve = self.r.register_script(_RESERVE)
            self._finish = self.r.register_script(_FINISH)
            self.r.ping()
        except redis.RedisError as e:
            raise ConnectionError(
                f"router.state {_safe_url(url)}: cannot reach Redis ({e}); start it or set "
                "router.state: memory"
            ) from None

    def _keys(self, ck: CounterKey) -> list[str]:
        name = _counter_name(ck)
        p = self.prefix
        return [f"{p}:c:{name}", f"{p}:z:{name}", f"{p}:a:{name}"]

    def reserve(
        self, holds: list[tuple[CounterKey, Decimal, Decimal, str]]
    ) -> tuple[str, int, Decimal]:
        """All-or-nothing hold (see `MemoryState.reserve`), atomically across replicas."""
        if not holds:
            return "", -1, _ZERO
        rid = secrets.token_hex(8)
        keys: list[str] = []
        argv: list[str | int] = [rid, self.ttl_ms, len(holds)]
        for ck, limit, amount, reset in holds:
            keys.extend(self._keys(ck))
            argv.extend(
                (to_nanos(limit), to_nanos(amount, up=True), period_expiry_ms(reset, ck[2]))
            )
        try:
            bad, used = self._reserve(keys=keys, args=argv)
        except redis.RedisError as e:
            # Fail closed: without the shared counters no limit can be enforced.
            raise RouteError(
                UNAVAILABLE,
                f"budget store unreachable ({type(e).__name__}); the request was not sent to "
                "any provider, retry shortly",
                {"budget_state": _safe_url(self.url)},
            ) from None
        if int(bad):
            return "", int(bad) - 1, from_nanos(used)
        return rid, -1, _ZERO

    def finish(
        self, res_id: str, holds: list[tuple[CounterKey, Decimal]], actual: list[Decimal] | None
    ) -> None:
        """Drop the holds still there and add the actual cost to settled."""
        if not holds:
            return
        keys: list[str] = []
        for ck, _ in holds:
            keys.extend(self._keys(ck))
        argv: list[str | int] = [res_id, len(holds), "1" if actual is not None else "0"]
        if actual is not None:
            argv.extend(to_nanos(a) for a in actual)
        for attempt in range(_FINISH_TRIES):
            try:
                self._finish(keys=keys, args=argv)
                return
            except redis.RedisError as e:
                if attempt + 1 == _FINISH_TRIES:
                    # The request is served and its record is written (the logs are the
                    # source of truth); the hold expires by its TTL. Counted spend lags
                    # until the store is re-seeded, so say so loudly instead of failing
                    # the request after the provider was paid.
                    log.error(
                        "budget store %s unreachable (%s): could not settle reservation %s "
                        "(%s); its hold expires by TTL, the request log has the cost",
                        _safe_url(self.url),
                        type(e).__name__,
                        res_id,
                        ", ".join(f"{'|'.join(ck)}={a}" for ck, a in holds),
                    )
                    return
                time.sleep(0.05 * (attempt + 1))

    def add(self, items: list[tuple[CounterKey, Decimal, str]]) -> None:
        """Add already-spent amounts (log replay) to settled counters, in one pipeline."""
        if not items:
            return
        totals: dict[CounterKey, tuple[int, str]] = {}
        for ck, amount, reset in items:
            prev = totals.get(ck, (0, reset))[0]
            totals[ck] = (prev + to_nanos(amount), reset)
        pipe = self.r.pipeline(transaction=True)
        for ck, (nanos, reset) in totals.items():
            c = self._keys(ck)[0]
            pipe.hincrby(c, "settled", nanos)
            exp = period_expiry_ms(reset, ck[2])
            if exp:
                pipe.pexpireat(c, exp)
        pipe.execute()

    def settled(self, ck: CounterKey) -> Decimal:
        return from_nanos(self.r.hget(self._keys(ck)[0], "settled"))

    def inflight(self, ck: CounterKey) -> Decimal:
        """Held amount, counting only holds that have not expired (server time)."""
        _, z, a = self._keys(ck)
        sec, usec = self.r.time()
        now_ms = sec * 1000 + usec // 1000
        live = self.r.zrangebyscore(z, f"({now_ms}", "+inf")
        if not live:
            return _ZERO
        return from_nanos(sum(int(v) for v in self.r.hmget(a, live) if v is not None))

    def seed_once(self, seed: Callable[[], None], *, wait_s: float = SEED_WAIT_S) -> bool:
        """Run `seed` if the store has never been seeded, in one process only. Returns
        True when this process seeded. Raises TimeoutError if another process holds the
        seeding lock for longer than `wait_s` without finishing."""
        marker, lock = f"{self.prefix}:seeded", f"{self.prefix}:seed-lock"
        deadline = time.monotonic() + wait_s
        token = secrets.token_hex(8)
        while True:
            if self.r.exists(marker):
                return False
            if self.r.set(lock, token, nx=True, px=int(wait_s * 1000)):
                try:
                    if self.r.exists(marker):
                        return False
                    seed()
                    self.r.set(marker, dt.datetime.now(dt.UTC).isoformat())
                    return True
                finally:
                    if self.r.get(lock) == token.encode():
                        self.r.delete(lock)
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"router.state {_safe_url(self.url)}: another process has been seeding "
                    f"the budget counters for over {wait_s:.0f} s; if it died, delete the key "
                    f"{lock!r}"
                )
            time.sleep(0.05)

    def close(self) -> None:
        self.r.close()


def _safe_url(url: str) -> str:
    """The URL without any user:password part (never in an error message)."""
    scheme, _, rest = url.partition("://")
    host = rest.rpartition("@")[2]
    return f"{scheme}://{host}"
