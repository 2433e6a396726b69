"""A FOCUS line whose charge period spans several UTC days is booked as one line per day, its
amounts split exactly at the nanodollar by the same largest-remainder rule as the other invoice
formats (pipeline.sources.invoices.split_exact): the parts add up to the line, none is lost."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import duckdb
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pipeline.sources.focus import parse_focus_file
from pipeline.sources.invoices import day_parts, split_exact

HEADER = (
    "ChargePeriodStart,ChargePeriodEnd,ChargeCategory,BilledCost,EffectiveCost,ListCost,"
    "ConsumedQuantity,BillingCurrency,ServiceName,SubAccountId,CommitmentDiscountId"
)
NANO = Decimal("0.000000001")


def _parse(path: Path) -> list[tuple]:
    conn = duckdb.connect()
    parse_focus_file(conn, path, "bedrock", None, set(), "_t")
    return conn.execute(
        "SELECT x_SourceLine, day, ChargePeriodStart, ChargePeriodEnd, BilledCost, EffectiveCost, "
        "ListCost, ConsumedQuantity, x_UsageCost, x_SourceLocator FROM _t "
        "ORDER BY x_SourceLine, ChargePeriodStart"
    ).fetchall()


def _ts(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_a_month_long_line_is_spread_over_its_days(tmp_path: Path):
    p = tmp_path / "month.csv"
    p.write_text(
        HEADER + "\n"
        "2026-03-01T00:00:00Z,2026-04-01T00:00:00Z,Purchase,720,0,720,,USD,Amazon Bedrock,a,pt\n"
        "2026-03-02T12:00:00Z,2026-03-03T00:00:00Z,Usage,1,1,,10,USD,Amazon Bedrock,a,\n"
        "2026-03-02T18:00:00Z,2026-03-04T06:00:00Z,Usage,0.000000001,,,,USD,Amazon Bedrock,a,\n"
    )
    rows = _parse(p)
    month = [r for r in rows if r[0] == 2]
    assert len(month) == 31
    assert [r[1] for r in month] == [dt.date(2026, 3, 1) + dt.timedelta(days=i) for i in range(31)]
    assert sum(r[4] for r in month) == Decimal("720")
    assert {r[4] for r in month} == {
        Decimal("720") / 31 // NANO * NANO,
        (Decimal("720") / 31 // NANO + 1) * NANO,
    }
    assert month[0][9] == "line 2 (day 1 of 31)" and month[-1][9] == "line 2 (day 31 of 31)"
    assert [r[4] for r in rows if r[0] == 3] == [Decimal("1")]  # within one day: untouched
    assert [r[9] for r in rows if r[0] == 3] == [None]
    # One nanodollar over three days (6 h, 24 h, 6 h): it goes whole to the longest part.
    tiny = [r for r in rows if r[0] == 4]
    assert [(r[1], r[4]) for r in tiny] == [
        (dt.date(2026, 3, 2), Decimal(0)),
        (dt.date(2026, 3, 3), NANO),
        (dt.date(2026, 3, 4), Decimal(0)),
    ]
    assert [r[2:4] for r in tiny] == [
        (dt.datetime(2026, 3, 2, 18), dt.datetime(2026, 3, 3)),
        (dt.datetime(2026, 3, 3), dt.datetime(2026, 3, 4)),
        (dt.datetime(2026, 3, 4), dt.datetime(2026, 3, 4, 6)),
    ]


amounts = st.decimals(
    min_value=Decimal("-1000000"), max_value=Decimal("1000000"), places=9, allow_nan=False
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    lines=st.lists(
        st.tuples(
            st.datetimes(min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2026, 12, 31)),
            st.integers(min_value=1, max_value=40 * 86_400_000_000),  # up to 40 days, in µs
            amounts,
            amounts,
            st.one_of(st.none(), amounts),
        ),
        min_size=1,
        max_size=6,
    )
)
# Found by hypothesis: float seconds (timedelta.total_seconds() * 1e6) lose a microsecond here
# and move a nanodollar; the weights must be exact integer microseconds.
@example(
    lines=[
        (
            dt.datetime(2026, 1, 1, 5, 0, 0, 2340),
            77_848_628_238,
            Decimal(0),
            Decimal("26.106218486"),
            None,
        )
    ]
)
def test_spread_matches_the_invoice_rule_exactly(tmp_path_factory, lines):
    path = tmp_path_factory.mktemp("spread") / "f.csv"
    body = []
    for start, dur, billed, effective, listc in lines:
        end = start + dt.timedelta(microseconds=dur)
        body.append(
            f"{_ts(start)},{_ts(end)},Usage,{billed},{effective},{'' if listc is None else listc},"
            f",USD,Amazon Bedrock,a,"
        )
    path.write_text(HEADER + "\n" + "\n".join(body) + "\n")
    got = _parse(path)
    want = []
    for i, (start, dur, billed, effective, listc) in enumerate(lines):
        end = start + dt.timedelta(microseconds=dur)
        if end <= dt.datetime.combine(start.date() + dt.timedelta(days=1), dt.time()):
            parts = [(start, end)]
        else:
            parts = day_parts(start, end)
        # Exact microseconds (timedelta floor division), never float seconds.
        weights = [(b - a) // dt.timedelta(microseconds=1) for a, b in parts]
        split = {
            name: split_exact(v, weights) if v is not None and len(parts) > 1 else [v]
            for name, v in (("b", billed), ("e", effective), ("l", listc))
        }
        for k, (a, b) in enumerate(parts):
            lb = split["l"][k] if listc is not None else None
            want.append(
                (i + 2, a.date(), a, b, split["b"][k], split["e"][k], lb, None, split["b"][k])
            )
    assert [r[:9] for r in got] == want
