"""How long the finance report and alert evaluation take on a large split-billing mart.

Builds a temporary DuckDB with the pipeline's own tables (pipeline.loads.ensure_tables) and
DAYS x ROWS_PER_DAY synthetic rows of marts.split_billing_daily (every combination of API
key, workload, model and key the Acme config could produce, plus noise), then times
`render_month`, `render_last_days` and `evaluate_alerts(dry_run=True)` (medians of REPEAT).

    .venv/bin/python bench/bench_reports_alerts.py [DAYS] [ROWS_PER_DAY]
"""

from __future__ import annotations

import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from pipeline.alerts import evaluate_alerts
from pipeline.loads import ensure_tables
from reports.render import render_last_days, render_month
from routing_core.config import load_config

REPEAT = 3
CONFIG = Path(__file__).resolve().parent.parent / "examples" / "acme" / "ledger.yaml"


def build(path: Path, days: int, rows_per_day: int, first: dt.date) -> None:
    with duckdb.connect(str(path)) as c:
        ensure_tables(c)
        c.execute(
            """
            INSERT INTO marts.split_billing_daily
            SELECT
                $first + CAST(d AS INTEGER) AS day,
                ['prod', 'staging', 'dev'][1 + r % 3], 'app-' || (r % 12),
                ['public-chat-prod', 'assistant-prod', 'coding-agent-prod', 'batch-prod',
                 'legal-prod', 'finance-prod', 'sandbox-dev'][1 + r % 7],
                ['public-chat', 'internal-assistant', 'coding-agent', 'batch', 'legal-review',
                 'financial-analysis'][1 + (r // 7) % 6],
                NULL, ['openai', 'anthropic', 'bedrock', 'vertex'][1 + r % 4],
                'model-' || (r % 40), CASE WHEN r % 5 = 0 THEN 'shared' ELSE 'byok' END,
                10 + r % 50,
                CAST(round(random() * 5, 6) AS DECIMAL(38, 9)), CAST(1 AS DECIMAL(38, 9)),
                CAST(0.05 AS DECIMAL(38, 9)), CAST(0 AS DECIMAL(38, 9)),
                CAST(round(random() * 5, 6) + 0.05 AS DECIMAL(38, 9)), 'invoiced',
                CASE WHEN r % 5 = 0 THEN NULL ELSE 'key-' || (r % 25) END,
                NULL, NULL, 0, 0.05, 0, 1, 'logged'
            FROM range($days) t(d), range($rows) s(r)
            """,
            {"first": first, "days": days, "rows": rows_per_day},
        )


def median_time(fn) -> float:
    runs = []
    for _ in range(REPEAT):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


def main() -> None:
    days = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    rows = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    first = dt.date(2026, 9, 28)
    with tempfile.TemporaryDirectory() as tmp:
        cfg_path = Path(tmp) / "ledger.yaml"
        text = CONFIG.read_text().replace("duckdb: data/ledger.duckdb", "duckdb: ledger.duckdb")
        cfg_path.write_text(text.replace("reports: data/reports", "reports: reports"))
        cfg = load_config(cfg_path)
        t0 = time.perf_counter()
        build(cfg.duckdb_path, days, rows, first)
        print(
            f"mart: {days} days x {rows:,} rows = {days * rows:,} rows, built in "
            f"{time.perf_counter() - t0:.1f}s"
        )
        month = (first + dt.timedelta(days=days - 1)).strftime("%Y-%m")
        print(f"render_month({month}) median {median_time(lambda: render_month(cfg, month)):.2f}s")
        print(f"render_last_days(7)  median {median_time(lambda: render_last_days(cfg)):.2f}s")
        t = median_time(lambda: evaluate_alerts(cfg, dry_run=True))
        r = evaluate_alerts(cfg, dry_run=True)
        print(f"evaluate_alerts(dry_run) median {t:.2f}s ({len(r.evaluated)} alerts evaluated)")


if __name__ == "__main__":
    main()
