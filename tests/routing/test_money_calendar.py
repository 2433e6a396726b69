"""The one money formatter (routing_core.money) and the one calendar module
(routing_core.calendar), and that every display path uses them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from routing_core.calendar import (
    add_months,
    month_bounds,
    month_of,
    months_between,
    parse_month,
    period_bounds,
    periods_between,
)
from routing_core.money import format_amount, format_pct, format_usd, round_display

D = dt.date


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("-0.765"), "-$0.77"),  # half-up: away from zero on an exact half
        (Decimal("0.765"), "$0.77"),
        (Decimal("0.764999999"), "$0.76"),
        (Decimal("-0.004"), "$0.00"),  # rounds to zero: no sign
        (Decimal("-0.005"), "-$0.01"),
        (Decimal("0"), "$0.00"),
        (Decimal("-0"), "$0.00"),
        (Decimal("0.000000001"), "$0.00"),
        (Decimal("1234.565"), "$1,234.57"),
        (Decimal("-1234567890123456789.125"), "-$1,234,567,890,123,456,789.13"),
        (
            Decimal("99999999999999999999999999999.999999999"),
            "$100,000,000,000,000,000,000,000,000,000.00",
        ),
        (7, "$7.00"),
        ("-2.5", "-$2.50"),
        (None, "-"),
    ],
)
def test_format_usd(value, expected):
    assert format_usd(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("-0.004"), "-$0.0040"),
        (Decimal("0.00004"), "$0.0000"),  # keeps 4 places, still rounds half-up
        (Decimal("0.01"), "$0.01"),
        (Decimal("0"), "$0.00"),
    ],
)
def test_format_usd_keep_small(value, expected):
    assert format_usd(value, keep_small=True) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("-0.765"), "-0.77"),
        (Decimal("-0.0004"), "0.00"),
        (Decimal("1234.5"), "1,234.50"),
        (Decimal("-1000000"), "-1,000,000.00"),
    ],
)
def test_format_amount(value, expected):
    assert format_amount(value) == expected


@pytest.mark.parametrize("bad", [Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity"), "x"])
def test_non_finite_or_garbage_refused(bad):
    with pytest.raises((ValueError, ArithmeticError)):
        format_usd(bad)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("12.25"), "12.3%"),
        (Decimal("-4.05"), "-4.1%"),
        (Decimal("-0.04"), "0.0%"),
        (Decimal("118.9375"), "118.9%"),
        (None, "-"),
    ],
)
def test_format_pct(value, expected):
    assert format_pct(value) == expected


def test_places_bounds():
    assert format_usd(Decimal("1.23456789"), 4) == "$1.2346"
    with pytest.raises(ValueError, match="places"):
        round_display(Decimal(1), 12)
    with pytest.raises(ValueError, match="places"):
        round_display(Decimal(1), -1)


@given(st.decimals(min_value=-(10**12), max_value=10**12, places=9, allow_nan=False))
def test_money_round_trips_to_the_cent(value):
    text = format_usd(value)
    assert text.count("-") <= 1 and "-$0.00" not in text
    parsed = Decimal(text.replace("$", "").replace(",", ""))
    assert abs(parsed - value) <= Decimal("0.005")


def test_every_display_path_spells_money_alike():
    """The four old formatters printed -0.765 four ways; now one spelling everywhere."""
    from byok_ledger.demo import _money as demo_money
    from pipeline.alerts.model import money as alert_money
    from pipeline.cli import _money as run_money
    from reports.formatting import usd as report_usd

    v = Decimal("-0.765")
    assert alert_money(v) == report_usd(v) == demo_money(v) == "-$0.77"
    assert run_money(v) == "-0.77"


# --- calendar ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "n", "expected"),
    [
        (D(2026, 1, 31), 1, D(2026, 2, 1)),
        (D(2026, 12, 15), 1, D(2027, 1, 1)),
        (D(2026, 1, 1), -1, D(2025, 12, 1)),
        (D(2024, 2, 29), 12, D(2025, 2, 1)),
        (D(2026, 3, 3), -27, D(2023, 12, 1)),
        (D(2026, 3, 3), 0, D(2026, 3, 1)),
    ],
)
def test_add_months(day, n, expected):
    assert add_months(day, n) == expected


@pytest.mark.parametrize(
    ("period", "day", "bounds"),
    [
        ("daily", D(2026, 11, 5), (D(2026, 11, 5), D(2026, 11, 5))),
        ("weekly", D(2026, 11, 5), (D(2026, 11, 2), D(2026, 11, 8))),  # ISO: Monday first
        ("weekly", D(2027, 1, 1), (D(2026, 12, 28), D(2027, 1, 3))),  # across a year end
        ("monthly", D(2024, 2, 10), (D(2024, 2, 1), D(2024, 2, 29))),  # leap year
        ("monthly", D(2026, 12, 31), (D(2026, 12, 1), D(2026, 12, 31))),
    ],
)
def test_period_bounds(period, day, bounds):
    assert period_bounds(period, day) == bounds


def test_calendar_edges():
    assert month_bounds("9999-12") == (D(9999, 12, 1), D(9999, 12, 31))
    assert month_bounds("0001-01") == (D(1, 1, 1), D(1, 1, 31))
    with pytest.raises(ValueError, match="outside years"):
        add_months(D(9999, 12, 1), 1)
    with pytest.raises(ValueError, match="outside years"):
        add_months(D(1, 1, 1), -1)


def test_period_bounds_refuses_unknown_period():
    with pytest.raises(ValueError, match="daily, weekly or monthly"):
        period_bounds("yearly", D(2026, 1, 1))


def test_budgets_and_alerts_reexport_the_one_definition():
    from pipeline.alerts import periods
    from routing_core import budgets, calendar

    assert budgets.period_bounds is calendar.period_bounds is periods.period_bounds


@pytest.mark.parametrize(
    "bad", ["2026-9", "2026-11-01", " 2026-11", "11/2026", "2026-13", "", "2026-00"]
)
def test_parse_month_is_canonical_only(bad):
    with pytest.raises(ValueError, match="YYYY-MM"):
        parse_month(bad)


def test_months():
    assert parse_month("2026-02") == D(2026, 2, 1)
    assert month_bounds("2026-02") == (D(2026, 2, 1), D(2026, 2, 28))
    assert month_of(D(2026, 2, 28)) == "2026-02"
    assert months_between(D(2026, 11, 30), D(2027, 2, 1)) == [
        "2026-11",
        "2026-12",
        "2027-01",
        "2027-02",
    ]
    assert months_between(D(2026, 2, 1), D(2026, 1, 1)) == []


@given(
    st.dates(min_value=D(1990, 1, 1), max_value=D(2200, 12, 31)),
    st.sampled_from(["daily", "weekly", "monthly"]),
)
def test_periods_tile_the_calendar(day, period):
    first, last = period_bounds(period, day)
    assert first <= day <= last
    nxt = list(periods_between(period, first, last + dt.timedelta(days=1)))
    assert nxt[0] == (first, last) and nxt[1][0] == last + dt.timedelta(days=1)
