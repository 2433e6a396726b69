"""Cost per accepted output is money divided by a count: DuckDB divides DECIMALs in DOUBLE,
so the SQL divides whole nanodollars instead. A share that does not terminate must come out
as the exact half-up DECIMAL, not a float's approximation."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import duckdb

from pipeline.sql import load_sql


def test_cost_per_accepted_report_query_divides_exactly() -> None:
    conn = duckdb.connect()
    conn.execute("CREATE SCHEMA marts")
    conn.execute(
        "CREATE TABLE marts.cost_per_accepted_output (period DATE, workload VARCHAR, "
        "environment VARCHAR, model VARCHAR, requests BIGINT, workflows BIGINT, accepted BIGINT, "
        "total_cost_usd DECIMAL(38, 9), cost_per_accepted_usd DECIMAL(38, 9))"
    )
    day = dt.date(2026, 11, 2)
    # 12345678901.000000001 USD over 3 accepted outputs: 4115226300.333333333(6) -> ...334.
    conn.execute(
        "INSERT INTO marts.cost_per_accepted_output VALUES "
        "(?, 'batch', 'prod', 'm', 5, 0, 3, 12345678901.000000001, NULL)",
        [day],
    )
    sql = load_sql("reports/cost_per_accepted")
    rel = conn.execute(sql, {"start": day, "end": day})
    names = [d[0] for d in rel.description]
    row = dict(zip(names, rel.fetchone(), strict=True))
    assert row["cost_per_accepted_usd"] == Decimal("4115226300.333333334")
    assert isinstance(row["cost_per_accepted_usd"], Decimal)
