"""Benchmark: incremental invoice loading. The demo's native invoice files (`byok-ledger
simulate`) loaded into a fresh DuckDB file, then re-loaded with nothing new (must parse and
hash nothing: near-zero work), then once more after one page changed (parses that file only).

    .venv/bin/python bench/bench_invoice_reload.py --days 30
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--requests-per-day", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    import duckdb

    from pipeline.loads import DayRange, load_invoices
    from routing_core.config import load_config

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "sim"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "byok_ledger.cli",
                "simulate",
                "--out",
                str(out),
                "--days",
                str(args.days),
                "--requests-per-day",
                str(args.requests_per_day),
                "--engine",
                "synth",
                "--quiet",
            ],
            check=True,
            capture_output=True,
            cwd=ROOT,
        )
        cfg = load_config(out / "ledger.yaml")
        files = sorted(p for p in cfg.invoices_dir.rglob("*") if p.is_file())
        logs = sorted(p.name[3:] for p in (cfg.logs_dir / "requests").glob("dt=*"))
        days = DayRange(dt.date.fromisoformat(logs[0]), dt.date.fromisoformat(logs[-1]))
        db = str(Path(tmp) / "bench.duckdb")

        def once() -> tuple[float, dict[str, int]]:
            with duckdb.connect(db) as conn:
                t = time.perf_counter()
                stats = load_invoices(conn, cfg, days)
                return time.perf_counter() - t, stats

        first, stats = once()
        print(
            f"{len(files)} invoice files ({sum(p.stat().st_size for p in files):,} bytes), "
            f"{stats['rows']:,} lines for {days}; load average {os.getloadavg()[0]:.1f}"
        )
        print(f"first load            {first * 1000:8.0f} ms  parsed {stats['parsed']}")
        times = []
        for _ in range(args.repeats):
            t, stats = once()
            assert stats["parsed"] == 0, stats
            times.append(t)
        print(
            f"nothing new (x{args.repeats})    {statistics.median(times) * 1000:8.0f} ms median "
            f"(min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f})  parsed 0"
        )
        page = next(p for p in files if p.suffix == ".json" and p.parent.name != "_platform")
        page.write_text(page.read_text() + "\n")  # same content, new bytes: a re-fetch
        t, stats = once()
        print(f"one page re-fetched   {t * 1000:8.0f} ms  parsed {stats['parsed']}")


if __name__ == "__main__":
    main()
