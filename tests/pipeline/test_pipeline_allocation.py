"""The allocation SQL (largest remainder at 1e-9 USD) conserves money exactly and is
proportional, for any estimates and billed amounts."""

from __future__ import annotations

from decimal import Decimal

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.sql import run_sql

NANO = Decimal("0.000000001")
money = st.decimals(
    min_value=Decimal("-5000"),
    max_value=Decimal("50000"),
    places=9,
    allow_nan=False,
    allow_infinity=False,
)
weight = st.decimals(
    min_value=Decimal("0"),
    max_value=Decimal("1000"),
    places=9,
    allow_nan=False,
    allow_infinity=False,
)
cells = st.lists(
    st.tuples(money, st.lists(weight, min_size=1, max_size=12)), min_size=1, max_size=6
)

_conn = duckdb.connect()


def allocate(cells_in: list[tuple[Decimal, list[Decimal]]]) -> dict[int, list[Decimal]]:
    rows, row_id = [], 0
    for cell_id, (total, weights) in enumerate(cells_in):
        for w in weights:
            rows.append((cell_id, row_id, w, total))
            row_id += 1
    _conn.execute(
        "CREATE OR REPLACE TEMP TABLE _alloc_in (cell_id BIGINT, row_id BIGINT, "
        "weight DECIMAL(38, 9), total DECIMAL(38, 9))"
    )
    _conn.executemany("INSERT INTO _alloc_in VALUES (?, ?, ?, ?)", rows)
    run_sql(_conn, "intermediate/allocate")
    out: dict[int, list[Decimal]] = {}
    for cell_id, _, allocated in _conn.execute(
        "SELECT cell_id, row_id, allocated FROM _alloc_out ORDER BY row_id"
    ).fetchall():
        out.setdefault(cell_id, []).append(allocated)
    return out


@settings(max_examples=150, deadline=None)
@given(cells)
def test_allocation_sums_exactly_to_each_cells_billed_cost(cells_in):
    out = allocate(cells_in)
    for cell_id, (total, weights) in enumerate(cells_in):
        parts = out[cell_id]
        assert len(parts) == len(weights)
        assert sum(parts) == total  # exact, not approximately
        wsum = sum(weights)
        for p, w in zip(parts, weights, strict=True):
            # Each share is its exact proportion rounded to within one nano-dollar.
            exact = total * w / wsum if wsum else total / len(weights)
            assert abs(p - exact) <= NANO * 1 + Decimal("1e-18")
            assert p == p.quantize(NANO)


def test_equal_weights_split_the_odd_nano_dollar_deterministically():
    assert allocate([(Decimal("0.000000002"), [Decimal(1)] * 3)]) == {
        0: [Decimal("0.000000001"), Decimal("0.000000001"), Decimal("0")]
    }
    assert allocate([(Decimal("10"), [Decimal(0), Decimal(0)])]) == {
        0: [Decimal("5"), Decimal("5")]
    }
    assert allocate([(Decimal("-1"), [Decimal(1), Decimal(3)])]) == {
        0: [Decimal("-0.25"), Decimal("-0.75")]
    }
