"""Money for one request (docs/config.md prices, docs/log-contract.md cost fields): list prices with `effective_from` changes, the
provider's estimated charge on a BYOK account, the platform's BYOK fee above the monthly
free allowance, and shared-capacity credits with markup. Decimal end to end; every `Cost`
field is quantized to 9 decimal places (DuckDB DECIMAL(38,9)) with ROUND_HALF_EVEN.
"""

from __future__ import annotations

import bisect
import datetime as dt
import threading
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal

from routing_core.config import LedgerConfig, Platform
from routing_core.routes import Attempt
from routing_core.schema import Cost, Usage

Q9 = Decimal("0.000000001")
_MILLION = Decimal(1_000_000)
_HUNDRED = Decimal(100)
_ZERO = Decimal(0)


def q9(value: Decimal) -> Decimal:
    """Quantize to the 9 decimal places the logs and DuckDB carry."""
    return value.quantize(Q9, rounding=ROUND_HALF_EVEN)


def utc_day(at: dt.datetime) -> dt.date:
    """The UTC calendar day of an aware timestamp (naive timestamps are taken as UTC)."""
    if at.tzinfo is not None and at.utcoffset():
        at = at.astimezone(dt.UTC)
    return at.date()


def utc_month(at: dt.datetime) -> str:
    d = utc_day(at)
    return f"{d.year:04d}-{d.month:02d}"


@dataclass(frozen=True, slots=True)
class EffectivePrice:
    """USD per 1M tokens on one endpoint for one UTC day; defaults already filled in
    (`cached_input` and `cache_write` default to `input`)."""

    input: Decimal
    cached_input: Decimal
    cache_write: Decimal
    output: Decimal

    @property
    def sort_key(self) -> Decimal:
        """What "cheapest first" compares: input + output per 1M tokens."""
        return self.input + self.output


def _effective(input: Decimal, output: Decimal, cached: Decimal | None, write: Decimal | None):
    return EffectivePrice(
        input=input,
        cached_input=input if cached is None else cached,
        cache_write=input if write is None else write,
        output=output,
    )


class ByokFeeMeter:
    """Month-to-date list-price BYOK spend per UTC calendar month, and the platform fee each
    new request owes: `byok_fee_pct` of the part of its list price above
    `byok_free_allowance_usd` for that month. Thread-safe: a request straddling the
    allowance is charged only on the part above it, whatever the interleaving."""

    def __init__(self, fee_pct: Decimal, free_allowance_usd: Decimal) -> None:
        self.fee_rate = Decimal(fee_pct) / _HUNDRED
        self.allowance = Decimal(free_allowance_usd)
        self._lock = threading.Lock()
        self._mtd: dict[str, Decimal] = {}

    @classmethod
    def from_config(cls, config: LedgerConfig | Platform) -> ByokFeeMeter:
        platform = config.platform if isinstance(config, LedgerConfig) else config
        return cls(platform.byok_fee_pct, platform.byok_free_allowance_usd)

    def charge(self, list_usd: Decimal, at: dt.datetime) -> Decimal:
        """Book `list_usd` of BYOK spend at `at`; return this request's fee (9 dp)."""
        month = utc_month(at)
        with self._lock:
            before = self._mtd.get(month, _ZERO)
            after = before + list_usd
            self._mtd[month] = after
        chargeable = after - max(before, self.allowance)
        if chargeable <= 0:
            return q9(_ZERO)
        return q9(chargeable * self.fee_rate)

    def seed(self, month: str, byok_list_usd: Decimal) -> None:
        """Add already-spent list-price BYOK usage for `month` ('YYYY-MM'), e.g. summed from
        the request logs at start-up, so the allowance is not granted twice."""
        with self._lock:
            self._mtd[month] = self._mtd.get(month, _ZERO) + Decimal(byok_list_usd)

    def month_to_date(self, month: str) -> Decimal:
        with self._lock:
            return self._mtd.get(month, _ZERO)


class PriceBook:
    """Prices of every (model, provider) endpoint, indexed once at load."""

    def __init__(self, config: LedgerConfig) -> None:
        # (model, provider) -> (sorted change dates, prices); index 0 is the base price,
        # valid from the beginning of time.
        self._prices: dict[tuple[str, str], tuple[list[dt.date], list[EffectivePrice]]] = {}
        for m in config.models:
            for ep in m.endpoints:
                p = ep.price
                dates = [dt.date.min]
                prices = [_effective(p.input, p.output, p.cached_input, p.cache_write)]
                for ch in p.effective_from:  # sorted by the config model
                    dates.append(ch.date)
                    prices.append(_effective(ch.input, ch.output, ch.cached_input, ch.cache_write))
                self._prices[(m.id, ep.provider)] = (dates, prices)
        self._discount = {
            k.id: (_HUNDRED - k.provider_discount_pct) / _HUNDRED for k in config.byok_keys
        }
        self._markup = (_HUNDRED + config.shared_capacity.price_markup_pct) / _HUNDRED
        self._fee_rate = config.platform.byok_fee_pct / _HUNDRED

    def price(self, model: str, provider: str, day: dt.date) -> EffectivePrice:
        """The price in force on UTC `day`: the latest `effective_from` change with
        date <= day, else the base price. KeyError for an unknown endpoint."""
        dates, prices = self._prices[(model, provider)]
        if len(dates) == 1:
            return prices[0]
        return prices[bisect.bisect_right(dates, day) - 1]

    def list_usd(self, model: str, provider: str, usage: Usage, day: dt.date) -> Decimal:
        """Unquantized list price of `usage` (disjoint buckets, docs/log-contract.md)."""
        p = self.price(model, provider, day)
        return (
            usage.input_tokens * p.input
            + usage.cache_read_tokens * p.cached_input
            + usage.cache_write_tokens * p.cache_write
            + usage.output_tokens * p.output
        ) / _MILLION

    def cost(
        self, attempt: Attempt, usage: Usage, at: dt.datetime, fee_meter: ByokFeeMeter
    ) -> Cost:
        """What a served attempt costs, by billing layer. BYOK: provider_usd = list price
        less the key's `provider_discount_pct`, platform fee from `fee_meter` (this call
        books the list price into the meter); shared: credits = list price plus markup."""
        list_usd = self.list_usd(attempt.model, attempt.provider, usage, utc_day(at))
        if attempt.credential == "byok":
            discount = self._discount.get(attempt.key_id or "", Decimal(1))
            return Cost(
                list_usd=q9(list_usd),
                provider_usd=q9(list_usd * discount),
                platform_fee_usd=fee_meter.charge(list_usd, at),
                platform_credits_usd=q9(_ZERO),
            )
        return Cost(
            list_usd=q9(list_usd),
            provider_usd=q9(_ZERO),
            platform_fee_usd=q9(_ZERO),
            platform_credits_usd=q9(list_usd * self._markup),
        )

    def max_cost_breakdown(
        self, attempt: Attempt, input_tokens: int, max_output_tokens: int, at: dt.datetime
    ) -> Cost:
        """Upper bound of `cost()` per billing layer, for budget reservations: every input
        token at the dearest input rate (uncached, cache read or cache write), every allowed
        output token, and the full fee (as if the allowance were used up)."""
        p = self.price(attempt.model, attempt.provider, utc_day(at))
        in_rate = max(p.input, p.cached_input, p.cache_write)
        list_usd = (input_tokens * in_rate + max_output_tokens * p.output) / _MILLION
        if attempt.credential == "byok":
            discount = self._discount.get(attempt.key_id or "", Decimal(1))
            # Round up so a reservation is never below the cost it guards.
            return Cost(
                list_usd=_q9_up(list_usd),
                provider_usd=_q9_up(list_usd * discount),
                platform_fee_usd=_q9_up(list_usd * self._fee_rate),
                platform_credits_usd=q9(_ZERO),
            )
        return Cost(
            list_usd=_q9_up(list_usd),
            provider_usd=q9(_ZERO),
            platform_fee_usd=q9(_ZERO),
            platform_credits_usd=_q9_up(list_usd * self._markup),
        )

    def max_cost(
        self, attempt: Attempt, input_tokens: int, max_output_tokens: int, at: dt.datetime
    ) -> Decimal:
        """Upper bound of the total cost (provider + fee + credits) of this attempt.
        Prefer `max_cost_breakdown` for `SpendGuard.reserve`: with a `Cost` each limit
        counts only the layers it measures."""
        return self.max_cost_breakdown(attempt, input_tokens, max_output_tokens, at).total_usd


def _q9_up(value: Decimal) -> Decimal:
    return value.quantize(Q9, rounding=ROUND_CEILING)
