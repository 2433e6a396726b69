"""Benchmark: one organisation-wide FOCUS export through `parse_focus_file`, against a bare
DuckDB scan of the same file, with the peak memory of each (measured in a fresh process).

The export is the third-party `focus-data-toolkit` generator's provider-realistic AWS FOCUS 1.3
file (EC2, S3, Lambda, savings plans, tax, …), tiled to `--rows` data rows, with one Amazon
Bedrock usage line every `--llm-every` rows: the loader must keep only those.

    .venv/bin/python bench/bench_invoices.py --rows 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TOOLKIT = Path(sys.executable).with_name("focus-toolkit")


def make_export(
    out: Path, rows: int, llm_every: int, version: str = "1.3", seed_rows: int = 20_000
) -> tuple[int, Decimal]:
    """Write the tiled export; returns (Bedrock lines, their BilledCost total)."""
    gen = out.parent / "gen"
    subprocess.run(
        [str(TOOLKIT), "generate", "--provider", "aws", "--focus-version", version,
         "--rows", str(seed_rows), "--seed", "11", "--out", str(gen)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    src = next(gen.glob("focus_*_cost_and_usage_aws.csv"))
    lines = src.read_text(encoding="utf-8").splitlines()
    header, body = lines[0], lines[1:]
    cols = next(__import__("csv").reader([header]))
    template = dict(zip(cols, next(__import__("csv").reader([body[0]])), strict=True))
    n_llm, llm_usd = 0, Decimal(0)
    with out.open("w", encoding="utf-8", newline="") as fh:
        import csv

        w = csv.writer(fh, lineterminator="\n")
        fh.write(header + "\n")
        written = 0
        while written < rows:
            for line in body:
                if written >= rows:
                    break
                if written % llm_every == 0:
                    cost = Decimal(n_llm % 997 + 1) / Decimal(1000) + Decimal("0.000000123")
                    row = dict(template)
                    row.update(
                        ServiceName="Amazon Bedrock",
                        ServiceCategory="AI and Machine Learning",
                        ServiceSubcategory="Generative AI",
                        ChargeCategory="Usage",
                        ChargeClass="",
                        BilledCost=str(cost),
                        EffectiveCost=str(cost),
                        ResourceId="arn:aws:bedrock:us-east-1::foundation-model/"
                        "anthropic.claude-sonnet-4-20250514-v1:0",
                        SkuMeter="Input Tokens",
                        CommitmentDiscountId="",
                        ChargePeriodStart="2026-05-02T00:00:00Z",
                        ChargePeriodEnd="2026-05-03T00:00:00Z",
                    )
                    w.writerow([row[c] for c in cols])
                    n_llm += 1
                    llm_usd += cost
                else:
                    fh.write(line + "\n")
                written += 1
    return n_llm, llm_usd


def _child(mode: str, path: str) -> None:
    import duckdb

    conn = duckdb.connect()
    if mode == "to_parquet":
        conn.execute(
            "COPY (SELECT * FROM read_csv($p, all_varchar = true)) TO "
            f"'{Path(path).with_suffix('.parquet')}' (FORMAT parquet)",
            {"p": path},
        )
        return
    t = time.perf_counter()
    if mode == "scan":
        n = conn.execute(
            "SELECT count(*), sum(TRY_CAST(BilledCost AS DECIMAL(38, 9))) FROM "
            + (
                "read_parquet($p)"
                if path.endswith(".parquet")
                else "read_csv($p, all_varchar = true)"
            ),
            {"p": path},
        ).fetchone()
        out = {"rows": n[0]}
    else:
        from pipeline.sources.focus import parse_focus_file

        res = parse_focus_file(conn, Path(path), "bedrock", None, set(), "_bench_target")
        total = conn.execute("SELECT sum(BilledCost) FROM _bench_target").fetchone()[0]
        out = {
            "rows": res.lines,
            "loaded": res.loaded,
            "out_of_scope": res.out_of_scope,
            "loaded_usd": str(total),
        }
    out["seconds"] = time.perf_counter() - t
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out["peak_rss_mb"] = usage.ru_maxrss / 1024
    # CPU seconds of all threads: on a machine shared with other jobs, wall time swings with
    # their load; this does not.
    out["cpu_seconds"] = usage.ru_utime + usage.ru_stime
    print(json.dumps(out))


def _run(mode: str, path: Path) -> dict:
    t = time.perf_counter()
    r = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(path)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    res = json.loads(r.stdout.strip().splitlines()[-1])
    res["process_seconds"] = time.perf_counter() - t
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--llm-every", type=int, default=50)
    ap.add_argument("--version", choices=("1.2", "1.3"), default="1.3")
    ap.add_argument("--format", choices=("csv", "parquet"), default="csv")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(*args.child)
        return 0
    with tempfile.TemporaryDirectory(prefix="bench_focus_") as tmp:
        path = Path(tmp) / "focus_org_export.csv"
        t = time.perf_counter()
        n_llm, llm_usd = make_export(path, args.rows, args.llm_every, args.version)
        if args.format == "parquet":
            # In a child process: a child's peak RSS starts at its parent's size at fork time.
            pq = path.with_suffix(".parquet")
            subprocess.run(
                [sys.executable, __file__, "--child", "to_parquet", str(path)], check=True
            )
            path.unlink()
            path = pq
        print(
            f"export: {args.rows:,} rows, {path.stat().st_size / 1e6:,.0f} MB {args.format}, FOCUS "
            f"{args.version}, {n_llm:,} Bedrock lines (${llm_usd}); written in "
            f"{time.perf_counter() - t:.1f}s"
        )
        scan = _run("scan", path)
        load = _run("load", path)
        ok = load["loaded"] == n_llm and Decimal(load["loaded_usd"]) == llm_usd
        print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
        print(
            f"bare DuckDB scan : {scan['seconds']:6.2f}s  peak RSS {scan['peak_rss_mb']:6.0f} MB"
            f"  CPU {scan['cpu_seconds']:.2f}s"
        )
        print(
            f"parse_focus_file : {load['seconds']:6.2f}s  peak RSS {load['peak_rss_mb']:6.0f} MB"
            f"  CPU {load['cpu_seconds']:.2f}s"
            f"  (process {load['process_seconds']:.2f}s; {load['loaded']:,} kept, "
            f"{load['out_of_scope']:,} out of scope; ratio to scan "
            f"{load['seconds'] / scan['seconds']:.2f}x)"
        )
        print("kept lines and dollars exact:", "yes" if ok else "NO")
        return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
