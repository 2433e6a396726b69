"""Pricing: effective_from prices, split-billing cost layers, 9-dp rounding, the BYOK fee
above the monthly free allowance (including under concurrency) and the reservation bound."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routing_core.config import load_config, parse_config
from routing_core.pricing import ByokFeeMeter, PriceBook, q9
from routing_core.routes import Attempt
from routing_core.schema import Usage

ACME = Path(__file__).resolve().parents[2] / "examples" / "acme" / "ledger.yaml"
D = Decimal


def at(day: str, hour: int = 12) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(hour=hour, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def cfg():
    return load_config(ACME)


@pytest.fixture(scope="module")
def book(cfg) -> PriceBook:
    return PriceBook(cfg)


def test_effective_from_picks_latest_change_on_or_before_the_day(book: PriceBook) -> None:
    m, p = "openai/gpt-4.1-mini", "openai"
    before = book.price(m, p, dt.date(2026, 11, 15))
    on = book.price(m, p, dt.date(2026, 11, 16))
    after = book.price(m, p, dt.date(2027, 1, 1))
    assert (before.input, before.cached_input, before.output) == (D("0.40"), D("0.10"), D("1.60"))
    assert (on.input, on.cached_input, on.output) == (D("0.36"), D("0.09"), D("1.44"))
    assert after == on


def test_several_changes_and_defaults() -> None:
    data = {
        "providers": [
            {"id": "p", "api": "openai", "base_url": "http://x", "invoice_format": "focus"}
        ],
        "models": [
            {
                "id": "m",
                "endpoints": [
                    {
                        "provider": "p",
                        "upstream_model": "u",
                        "price": {
                            "input": "1",
                            "output": "2",
                            "cache_write": "1.25",
                            "effective_from": [
                                {"date": "2026-03-01", "input": "3", "output": "4"},
                                {
                                    "date": "2026-02-01",
                                    "input": "2",
                                    "output": "3",
                                    "cached_input": "0.5",
                                },
                            ],
                        },
                    }
                ],
            }
        ],
        "api_keys": [{"id": "a", "secret_sha256": "0" * 64, "environment": "prod", "app": "x"}],
    }
    book = PriceBook(parse_config(data))
    base = book.price("m", "p", dt.date(2026, 1, 31))
    assert (base.input, base.cached_input, base.cache_write, base.output) == (
        D(1),
        D(1),
        D("1.25"),
        D(2),
    )
    feb = book.price("m", "p", dt.date(2026, 2, 28))
    # a change without cache prices defaults them to its own input price
    assert (feb.input, feb.cached_input, feb.cache_write, feb.output) == (
        D(2),
        D("0.5"),
        D(2),
        D(3),
    )
    mar = book.price("m", "p", dt.date(2026, 3, 1))
    assert (mar.input, mar.cached_input, mar.output) == (D(3), D(3), D(4))


def test_byok_cost_layers(cfg, book: PriceBook) -> None:
    meter = ByokFeeMeter(D("5"), D("0"))  # no allowance: fee on everything
    a = Attempt("anthropic/claude-sonnet-4", "bedrock", "byok", "bedrock-prod", "prioritized")
    u = Usage(
        input_tokens=1000,
        cache_read_tokens=2000,
        cache_write_tokens=400,
        output_tokens=500,
        reasoning_tokens=100,
    )
    c = book.cost(a, u, at("2026-11-20"), meter)
    # 1000*3 + 2000*0.30 + 400*3.75 + 500*15 = 3000+600+1500+7500 = 12600 per 1M
    assert c.list_usd == D("0.012600000")
    assert c.provider_usd == D("0.011340000")  # bedrock-prod has a 10% discount
    assert c.platform_fee_usd == D("0.000630000")  # 5% of list
    assert c.platform_credits_usd == 0
    assert c.as_dict()["platform_credits_usd"] == "0.000000000"
    assert all(
        v.as_tuple().exponent == -9
        for v in (c.list_usd, c.provider_usd, c.platform_fee_usd, c.platform_credits_usd)
    )


def test_shared_cost_has_markup_and_no_provider_or_fee(book: PriceBook) -> None:
    meter = ByokFeeMeter(D("5"), D("0"))
    a = Attempt("openai/gpt-4.1", "openai", "shared", None, "shared")
    c = book.cost(
        a, Usage(input_tokens=1_000_000, output_tokens=1_000_000), at("2026-11-20"), meter
    )
    assert c.list_usd == D("10.000000000")
    assert c.platform_credits_usd == D("10.550000000")  # 5.5% markup
    assert c.provider_usd == 0 and c.platform_fee_usd == 0
    assert meter.month_to_date("2026-11") == 0  # shared traffic does not use the allowance


def test_rounding_is_half_even_at_9_places() -> None:
    assert q9(D("0.0000000005")) == D("0.000000000")
    assert q9(D("0.0000000015")) == D("0.000000002")
    assert q9(D("0.00000000250")) == D("0.000000002")


def test_cost_uses_price_of_the_request_utc_day(book: PriceBook) -> None:
    meter = ByokFeeMeter(D("0"), D("0"))
    a = Attempt("openai/gpt-4.1-mini", "openai", "byok", "oai-prod-primary", "prioritized")
    u = Usage(input_tokens=1_000_000)
    # 23:30 on the 15th in UTC-05:00 is already the 16th in UTC: the new price applies.
    local = dt.datetime(2026, 11, 15, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    assert book.cost(a, u, local, meter).list_usd == D("0.360000000")
    assert book.cost(a, u, at("2026-11-15", 23), meter).list_usd == D("0.400000000")


def test_fee_allowance_boundary_charges_only_the_part_above() -> None:
    meter = ByokFeeMeter(D("5"), D("100"))
    nov = at("2026-11-03")
    assert meter.charge(D("90"), nov) == 0
    assert meter.charge(D("20"), nov) == D("0.500000000")  # 10 of 20 above the allowance
    assert meter.charge(D("10"), nov) == D("0.500000000")  # all above
    assert meter.charge(D("10"), at("2026-12-01", 0)) == 0  # a new month, a new allowance
    assert meter.month_to_date("2026-11") == D("120")


def test_fee_meter_seed_counts_earlier_spend() -> None:
    meter = ByokFeeMeter(D("10"), D("100"))
    meter.seed("2026-11", D("95"))
    assert meter.charge(D("10"), at("2026-11-30")) == D("0.500000000")
    meter.seed("2026-10", D("500"))
    assert meter.month_to_date("2026-11") == D("105")


def test_fee_meter_is_exact_under_threads() -> None:
    meter = ByokFeeMeter(D("5"), D("100"))
    fees: list[Decimal] = []
    lock = threading.Lock()

    def work() -> None:
        local = [meter.charge(D("0.37"), at("2026-11-10")) for _ in range(200)]
        with lock:
            fees.extend(local)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total = D("0.37") * 1600  # 592
    assert meter.month_to_date("2026-11") == total
    # The fee is 5% of exactly the part above the allowance, whatever the interleaving
    # (each per-request fee is rounded to 9 dp; 0.37*5% has no 10th decimal).
    assert sum(fees) == (total - 100) * D("0.05")


@settings(max_examples=200, deadline=None)
@given(
    inp=st.integers(0, 200_000),
    cr=st.integers(0, 200_000),
    cw=st.integers(0, 200_000),
    out=st.integers(0, 50_000),
    extra_out=st.integers(0, 10_000),
    credential=st.sampled_from(["byok", "shared"]),
    model=st.sampled_from(
        [
            ("anthropic/claude-sonnet-4", "bedrock"),
            ("openai/gpt-4.1", "openai"),
            ("meta-llama/llama-3.3-70b-instruct", "deepinfra"),
        ]
    ),
)
def test_max_cost_bounds_the_actual_cost(book, inp, cr, cw, out, extra_out, credential, model):
    key = {"bedrock": "bedrock-prod", "openai": "oai-prod-primary", "deepinfra": None}[model[1]]
    if credential == "byok" and key is None:
        credential = "shared"
    a = Attempt(
        model[0],
        model[1],
        credential,
        key if credential == "byok" else None,
        "prioritized" if credential == "byok" else "shared",
    )
    when = at("2026-11-20")
    actual = book.cost(a, Usage(inp, cr, cw, out), when, ByokFeeMeter(D("5"), D("0")))
    bound = book.max_cost_breakdown(a, inp + cr + cw, out + extra_out, when)
    assert bound.provider_usd >= actual.provider_usd
    assert bound.platform_fee_usd >= actual.platform_fee_usd
    assert bound.platform_credits_usd >= actual.platform_credits_usd
    assert book.max_cost(a, inp + cr + cw, out + extra_out, when) >= actual.total_usd
