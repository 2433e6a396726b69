"""`byok-ledger report --config FILE --month YYYY-MM`: render the month's finance report and
refresh the rolling last-7-days view; print where they are."""

from __future__ import annotations

import argparse
import sys

from reports.data import ReportError
from reports.render import render_last_days, render_month
from routing_core.config import load_config


def report(args: argparse.Namespace) -> int:
    """CLI handler: 0 when written, 2 with a message saying what to do otherwise."""
    config = load_config(args.config)  # a ConfigError is reported by byok_ledger.cli.main
    try:
        month = render_month(config, args.month)
        rolling = render_last_days(config, 7)
    except ReportError as e:
        print(f"byok-ledger report: {e}", file=sys.stderr)
        return 2
    print(month)
    print(rolling)
    return 0
