"""`byok-ledger report --config FILE [--month YYYY-MM]`: render the month's finance report
(default: the last month with data in the ledger) and refresh the rolling last-7-days view;
print where they are."""

from __future__ import annotations

import argparse
import sys

from reports import data
from reports.data import ReportError
from reports.render import render_last_days, render_month
from routing_core.calendar import month_of
from routing_core.config import LedgerConfig, load_config


def last_month_with_data(config: LedgerConfig) -> str:
    """`YYYY-MM` of the last day in the ledger's marts; ReportError when there is none."""
    conn = data.connect(config.duckdb_path)
    try:
        _, last = data.data_range(conn)
    finally:
        conn.close()
    if last is None:
        raise ReportError(
            f"{config.duckdb_path} has no data yet: run `byok-ledger run --config ...` first"
        )
    return month_of(last)


def report(args: argparse.Namespace) -> int:
    """CLI handler: 0 when written, 2 with a message saying what to do otherwise."""
    config = load_config(args.config)  # a ConfigError is reported by byok_ledger.cli.main
    try:
        month = render_month(config, args.month or last_month_with_data(config))
        rolling = render_last_days(config, 7)
    except ReportError as e:
        print(f"byok-ledger report: {e}", file=sys.stderr)
        return 2
    print(month)
    print(rolling)
    return 0
