"""Handlers of `byok-ledger simulate` and `byok-ledger scenarios` (argparse lives in
byok_ledger/cli.py)."""

from __future__ import annotations

import argparse
import sys


def simulate(args: argparse.Namespace) -> int:
    from simulator.run import run_simulation

    try:
        result = run_simulation(
            args.config,
            args.out,
            days=args.days,
            requests_per_day=args.requests_per_day,
            seed=args.seed,
            start=args.start,
            frictions=not args.no_frictions,
            progress=not getattr(args, "quiet", False),
            engine=getattr(args, "engine", "auto") or "auto",
        )
    except (FileNotFoundError, ValueError) as e:  # config errors: byok_ledger.cli.main
        print(f"byok-ledger simulate: {e}", file=sys.stderr)
        return 2
    print("\n".join(result.summary_lines()))
    print(f"next: byok-ledger run --config {result.config_path}")
    return 0


def scenarios(args: argparse.Namespace) -> int:
    from simulator.scenarios import SCENARIOS, print_table, run_scenarios

    unknown = [n for n in args.names if n not in SCENARIOS]
    if unknown:
        print(
            f"byok-ledger scenarios: unknown scenario(s) {', '.join(unknown)}; known: "
            f"{', '.join(SCENARIOS)}",
            file=sys.stderr,
        )
        return 2
    try:
        verdicts = run_scenarios(args.config, args.names or None)
    except FileNotFoundError as e:  # config errors: byok_ledger.cli.main
        print(f"byok-ledger scenarios: {e}", file=sys.stderr)
        return 2
    print_table(verdicts)
    return 1 if any(v.status == "FAIL" for v in verdicts) else 0
