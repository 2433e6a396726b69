"""Simulator timings: the demo's simulate step (router engine, 30 days at the demo rate)
and the fast synthesizer on one day of 1,000,000 requests (target: under 60 s).

    .venv/bin/python bench/bench_simulate.py [--repeat 3] [--million-repeat 1] [--skip-million]

Each measurement runs in a fresh subprocess (clean imports, its own peak RSS); the table
gives the median wall time, requests written per second, and the per-request cost ratio
of the router path to the synthesizer.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "examples" / "acme" / "ledger.yaml"

_CHILD = """
import json, sys, time
from simulator.run import run_simulation
t = time.perf_counter()
r = run_simulation(sys.argv[1], sys.argv[2], days=int(sys.argv[3]),
                   requests_per_day=int(sys.argv[4]), seed=7, progress=False,
                   engine=sys.argv[5])
print(json.dumps({"elapsed_s": time.perf_counter() - t, "requests": r.requests_logged}))
"""


def run_once(days: int, rpd: int, engine: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-sim-") as out:
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        p = subprocess.run(
            [sys.executable, "-c", _CHILD, str(CONFIG), out, str(days), str(rpd), engine],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            check=False,
        )
        if p.returncode:
            raise SystemExit(f"simulation failed:\n{p.stderr}")
        res = json.loads(p.stdout.strip().splitlines()[-1])
        res["peak_rss_mb"] = (
            max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
        )
        return res


def measure(label: str, days: int, rpd: int, engine: str, repeat: int) -> dict:
    runs = [run_once(days, rpd, engine) for _ in range(repeat)]
    med = statistics.median(r["elapsed_s"] for r in runs)
    n = runs[0]["requests"]
    row = {
        "case": label,
        "engine": engine,
        "days": days,
        "requests_per_day": rpd,
        "requests": n,
        "median_s": round(med, 2),
        "requests_per_s": round(n / med),
        "us_per_request": round(med / n * 1e6, 1),
        "peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs)),
        "runs_s": [round(r["elapsed_s"], 2) for r in runs],
    }
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--million-repeat", type=int, default=1)
    ap.add_argument("--skip-million", action="store_true")
    ap.add_argument("--demo-rate", type=int, default=300, help="requests/day of the demo")
    a = ap.parse_args()
    print(f"machine: {os.cpu_count()} cpu(s), load {os.getloadavg()[0]:.1f}", flush=True)
    rows = [
        measure("demo: 30 days, router", 30, a.demo_rate, "router", a.repeat),
        measure("synth: 30 days at the demo rate", 30, a.demo_rate, "synth", a.repeat),
    ]
    if not a.skip_million:
        rows.append(measure("synth: 1 day x 1,000,000", 1, 1_000_000, "synth", a.million_repeat))
    r, s = rows[0], rows[1]
    print(
        f"\nrouter path / synthesizer per request: "
        f"{r['us_per_request'] / s['us_per_request']:.1f}x "
        f"({r['us_per_request']} vs {s['us_per_request']} us)"
    )
    if not a.skip_million:
        m = rows[2]
        verdict = "OK" if m["median_s"] < 60 else "OVER TARGET"
        print(
            f"1,000,000 requests in {m['median_s']} s (target < 60 s): {verdict}; "
            f"peak RSS {m['peak_rss_mb']} MB"
        )


if __name__ == "__main__":
    main()
