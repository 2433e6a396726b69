"""What the providers actually charge (their own price books), as opposed to what the
router estimates. Starts from the config's endpoint prices (with `effective_from` changes)
and the BYOK keys' negotiated discounts, then applies deliberate differences: a price
change the router's config does not know about ("price drift"). Token types here are the
disjoint buckets of docs/log-contract.md."""

from __future__ import annotations

import bisect
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from routing_core.config import LedgerConfig

TOKEN_TYPES = ("input", "cache_read", "cache_write", "output")
MILLION = Decimal(1_000_000)
HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class PriceDrift:
    """A provider price change the router's config is missing (USD per 1M tokens)."""

    provider: str
    upstream_model: str
    model: str  # gateway slug, for the manifest
    date: dt.date
    token_type: str
    old: Decimal
    new: Decimal

    def as_dict(self) -> dict:
        return {
            "provider": self.provider,
            "upstream_model": self.upstream_model,
            "model": self.model,
            "from_day": self.date.isoformat(),
            "token_type": self.token_type,
            "router_price_per_mtok": self.old,
            "provider_price_per_mtok": self.new,
        }


class ProviderPriceBook:
    """Per (provider, upstream model): dated prices per token type; per BYOK key: the
    discount the provider really applies on that account."""

    def __init__(self, config: LedgerConfig, drifts: list[PriceDrift] | None = None):
        self._prices: dict[tuple[str, str], tuple[list[dt.date], list[dict[str, Decimal]]]] = {}
        for m in config.models:
            for ep in m.endpoints:
                p = ep.price
                dates = [dt.date.min]
                rows = [_row(p.input, p.cached_input, p.cache_write, p.output)]
                for ch in p.effective_from:
                    dates.append(ch.date)
                    rows.append(_row(ch.input, ch.cached_input, ch.cache_write, ch.output))
                self._prices[(ep.provider, ep.upstream_model)] = (dates, rows)
        self.discount_pct = {k.id: k.provider_discount_pct for k in config.byok_keys}
        self.drifts = list(drifts or [])
        for d in self.drifts:
            dates, rows = self._prices[(d.provider, d.upstream_model)]
            # Split the schedule at the drift date and override from there on.
            i = bisect.bisect_right(dates, d.date)
            base = dict(rows[i - 1])
            if dates[i - 1] != d.date:
                dates.insert(i, d.date)
                rows.insert(i, base)
            else:
                i -= 1
            for j in range(i, len(rows)):
                rows[j] = {**rows[j], d.token_type: d.new}

    def unit_prices(self, provider: str, upstream_model: str, day: dt.date) -> dict[str, Decimal]:
        """USD per 1M tokens per token type on `day` (list price, before discounts)."""
        dates, rows = self._prices[(provider, upstream_model)]
        return rows[bisect.bisect_right(dates, day) - 1]

    def discount_factor(self, key_id: str) -> Decimal:
        return (HUNDRED - self.discount_pct.get(key_id, Decimal(0))) / HUNDRED


def _row(inp: Decimal, cached: Decimal | None, write: Decimal | None, out: Decimal):
    return {
        "input": inp,
        "cache_read": inp if cached is None else cached,
        "cache_write": inp if write is None else write,
        "output": out,
    }


def default_drift(
    config: LedgerConfig, start: dt.date, days: int, invoiced_providers: set[str]
) -> PriceDrift | None:
    """Pick one invoiced endpoint and raise its output price by 10% from two thirds into
    the period: the router keeps estimating at the old price, the invoice does not."""
    if days < 3:
        return None
    day = start + dt.timedelta(days=(2 * days) // 3)
    preferred = ("openai/gpt-4.1", "anthropic/claude-sonnet-4")
    candidates = []
    for m in config.models:
        for ep in m.endpoints:
            if ep.provider in invoiced_providers:
                rank = preferred.index(m.id) if m.id in preferred else len(preferred)
                candidates.append((rank, m.id, ep))
    if not candidates:
        return None
    candidates.sort(key=lambda c: (c[0], c[1], c[2].provider))
    _, mid, ep = candidates[0]
    old = ep.price.output
    for ch in ep.price.effective_from:
        if ch.date <= day:
            old = ch.output
    return PriceDrift(
        ep.provider,
        ep.upstream_model,
        mid,
        day,
        "output",
        old,
        (old * Decimal("1.10")).quantize(Decimal("0.0001")),
    )
