"""The pipeline's subcommands (`run`, `alerts`, `ui`): argparse namespaces in, typed calls into
`pipeline` out. Only this package knows about argparse."""

from __future__ import annotations

import argparse
import sys


def run(args: argparse.Namespace) -> int:
    """`byok-ledger run --config FILE [--start DAY] [--end DAY] [--force]`."""
    from pipeline.cli import parse_day, run_ledger

    try:
        start = parse_day(args.start, "--start")
        end = parse_day(args.end, "--end")
    except ValueError as e:
        print(f"byok-ledger run: {e}", file=sys.stderr)
        return 2
    return run_ledger(args.config, start, end, force=args.force)


def alerts(args: argparse.Namespace) -> int:
    """`byok-ledger alerts --config FILE [--dry-run]`."""
    from pipeline.alerts.cli import run_alerts

    return run_alerts(args.config, dry_run=bool(args.dry_run))


def ui(args: argparse.Namespace) -> int:
    """`byok-ledger ui --config FILE [--host H] [--port P] [--daemon]`."""
    from pipeline.ui import serve_ui

    return serve_ui(args.config, host=args.host, port=args.port, daemon=bool(args.daemon))
