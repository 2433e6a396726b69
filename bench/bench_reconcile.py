"""Reconciliation benchmark: what the cause analysis costs on a day of N requests.

Loads one generated day (bench_pipeline's generator, cached under $BYOK_BENCH_DIR) without
Dagster, then times `build_reconciliation` (cells, log-writer gaps, causes, one transaction)
against the rest of the day's steps measured in the same process, so the share it adds to a
1,000,000-request day is visible side by side.

    .venv/bin/python bench/bench_reconcile.py                 # 1,000,000 requests
    .venv/bin/python bench/bench_reconcile.py --requests 100000
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_pipeline import CACHE, DAY0, _workspace, generate  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    import duckdb

    from pipeline import loads
    from routing_core.config import load_config

    logs = CACHE / f"logs-{args.requests}"
    generate(logs, DAY0, args.requests)
    ws = _workspace(f"reconcile-{args.requests}", logs)
    cfg = load_config(ws / "ledger.yaml")
    days = loads.DayRange(DAY0, DAY0)
    conn = duckdb.connect(str(cfg.duckdb_path))
    steps: dict[str, float] = {}

    def timed(name: str, fn, *a) -> None:
        t = time.perf_counter()
        fn(conn, cfg, days, *a)
        steps[name] = time.perf_counter() - t

    timed("load_requests", loads.load_requests)
    timed("load_invoices", loads.load_invoices)
    timed("build_request_groups", loads.build_request_groups)
    runs = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        loads.build_reconciliation(conn, cfg, days)
        runs.append(time.perf_counter() - t)
    timed("build_split_billing", loads.build_split_billing)
    cells = conn.execute("SELECT count(*) FROM marts.reconciliation_daily").fetchone()[0]
    conn.close()
    best = min(runs)
    rest = sum(steps.values())
    print(f"requests: {args.requests:,}  reconciliation cells: {cells}")
    for k, v in steps.items():
        print(f"  {k:22s} {v:7.3f} s")
    print(
        f"  {'build_reconciliation':22s} {best:7.3f} s (best of {args.repeats}: "
        + ", ".join(f"{r:.3f}" for r in runs)
        + ")"
    )
    print(f"  reconciliation share of these steps: {100 * best / (best + rest):.1f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
