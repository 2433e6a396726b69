"""Contract check: the report and the alerts read the marts exactly as the pipeline creates
them (pipeline.loads.ensure_tables), not only the fixture's copy of their columns."""

from __future__ import annotations

import duckdb

from pipeline.alerts import evaluate_alerts
from pipeline.loads import ensure_tables
from reports.render import render_month

from .conftest import build_marts, write_config

MARTS = (
    "split_billing_daily",
    "reconciliation_daily",
    "unattributed_usage",
    "non_usage_charges",
    "cost_per_accepted_output",
    "policy_violations",
    "routing_health",
)


def test_report_and_alerts_on_the_pipelines_own_tables(tmp_path):
    cfg = write_config(tmp_path)
    fixture = tmp_path / "fixture.duckdb"
    build_marts(fixture)
    with duckdb.connect(str(cfg.duckdb_path)) as conn:
        ensure_tables(conn)
        conn.execute(f"ATTACH '{fixture}' AS fx (READ_ONLY)")
        for mart in MARTS:
            cols = [
                r[0]
                for r in conn.execute(
                    "SELECT column_name FROM duckdb_columns() WHERE database_name = 'fx' "
                    "AND schema_name = 'marts' AND table_name = $t "
                    "AND column_name IN (SELECT column_name FROM duckdb_columns() "
                    "  WHERE database_name <> 'fx' AND schema_name = 'marts' AND table_name = $t)",
                    {"t": mart},
                ).fetchall()
            ]
            names = ", ".join(f'"{c}"' for c in cols)
            conn.execute(f"INSERT INTO marts.{mart} ({names}) SELECT {names} FROM fx.marts.{mart}")
        conn.execute("DETACH fx")
    result = evaluate_alerts(cfg)
    assert result.as_of is not None and result.evaluated
    html = render_month(cfg, "2026-11").read_text()
    assert "$157.00" in html and "$102.00" in html and "openai-monthly" in html
