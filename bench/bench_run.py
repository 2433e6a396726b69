"""`byok-ledger run` as a user runs it: the whole process, measured from outside, side by side
with a bare DuckDB scan of the same log files.

For each code tree given (default: this checkout; pass an older checkout to compare before and
after), in fresh child processes, on one generated day of N requests:

- first run    `run` on a day with no data, on a new Dagster instance (it is created)
- fixed start  the same again with `--force` (where the tree has it): Dagster import,
               instance, bookkeeping, no data (target <= 3 s)
- day          `run` of the N-request day (target for 1M: <= 8 s; beyond the fixed start,
               <= 4x the bare scan)
- re-run       the same day again, no new or changed input (target <= 3 s); a tree that
               records its last run skips it (reported when it does not)
- bare scan    DuckDB reading and aggregating the same files, nothing else

Wall time and peak RSS of each child. The machine is shared: run it a few times (`--repeats`)
and read the best of each.

    .venv/bin/python bench/bench_run.py                         # 1,000,000 requests
    .venv/bin/python bench/bench_run.py --requests 10000000
    .venv/bin/python bench/bench_run.py --code /tmp/before --code .   # before/after

Generated logs are cached under $BYOK_BENCH_DIR (default /tmp/byok-ledger-bench).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import importlib.util
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIG_ENV = "BYOK_LEDGER_CONFIG"


def _bench_pipeline():
    """The log generator and bare scan of bench/bench_pipeline.py (one definition of both)."""
    spec = importlib.util.spec_from_file_location(
        "bench_pipeline", REPO / "bench" / "bench_pipeline.py"
    )
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def _child(cmd: list[str], code: Path, env: dict[str, str] | None = None) -> dict:
    """Run a child process; its wall time, peak RSS (MB) and exit status."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        cwd=code,
        env={
            **{k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", CONFIG_ENV)},
            "PYTHONPATH": str(code),
            **(env or {}),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out, _ = proc.communicate()
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU seconds of this child alone (children run one at a time): on a shared machine the
    # wall time includes waiting for a core, the CPU time does not.
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    # The child reports its own peak RSS (RUSAGE_CHILDREN would mix all earlier children).
    rss = None
    for line in out.splitlines():
        if line.startswith("BENCH_RSS_MB "):
            rss = float(line.split()[1])
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "rss_mb": rss,
        "rc": proc.returncode,
        "out": out,
    }


RUN_WRAPPER = (
    "import resource, sys\n"
    "from byok_ledger.cli import main\n"
    "rc = main(sys.argv[1:])\n"
    "print('BENCH_RSS_MB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n"
    "sys.exit(rc)\n"
)


def _has_force(code: Path) -> bool:
    """Whether the tree's `run` has `--force` (and so skips a re-run with nothing new)."""
    cli = code / "byok_ledger" / "cli.py"
    return cli.exists() and '"--force"' in cli.read_text(encoding="utf-8")


def _run(code: Path, config: Path, day: dt.date, *, force: bool = False) -> dict:
    d = day.isoformat()
    cmd = [
        sys.executable,
        "-c",
        RUN_WRAPPER,
        "run",
        "--config",
        str(config),
        "--start",
        d,
        "--end",
        d,
    ]
    if force and _has_force(code):
        cmd.append("--force")
    res = _child(cmd, code)
    # Exit 1 (a blocking check failed, or the run did) is a run that did not do the day's
    # work: its time would read as a fast run, so it stops the benchmark too.
    if res["rc"] != 0:
        raise SystemExit(f"byok-ledger run exited {res['rc']} in {code}:\n{res['out'][-4000:]}")
    res["skipped"] = "nothing changed since run" in res["out"]
    return res


def bench_code(code: Path, logs: Path, day: dt.date, n: int, bp, fallback: list[Path]) -> dict:
    # One workspace per tree and per benchmark process: two benchmarks of the same checkout
    # at once must not share (and delete) each other's DuckDB and instance.
    tag = hashlib.sha1(str(code).encode()).hexdigest()[:8]
    ws = bp.CACHE / "run-bench" / f"{code.name or 'tree'}-{tag}-{os.getpid()}"
    shutil.rmtree(ws, ignore_errors=True)
    (ws / "invoices").mkdir(parents=True)
    text = bp.ACME.read_text()
    text = text.replace("logs: data/logs", f"logs: {logs}")
    text = text.replace("invoices: data/invoices", f"invoices: {ws / 'invoices'}")
    text = text.replace("duckdb: data/ledger.duckdb", f"duckdb: {ws / 'ledger.duckdb'}")
    # No webhook: alerts are evaluated and recorded, not sent (the example's local receiver
    # is not running, and delivery retries would measure the network, not the run).
    text = text.replace("  webhook_url: http://127.0.0.1:8788/hooks/byok-ledger\n", "")
    config = ws / "ledger.yaml"
    config.write_text(text)
    empty = day - dt.timedelta(days=1)
    out = {
        "first_run": _run(code, config, empty),
        # --force: the real fixed start (without it, the same empty day again is skipped).
        "fixed_start": _run(code, config, empty, force=True),
        "day": _run(code, config, day),
        "rerun": _run(code, config, day),
    }
    if not out["rerun"]["skipped"]:
        why = [ln for ln in out["rerun"]["out"].splitlines() if "running again" in ln]
        print(f"  {code.name}: the re-run was not skipped {why}", flush=True)
    # The bare scan: a tree's bench_pipeline.py `--child bare` (read_json with the log
    # contract's column types + GROUP BY); this tree's, else the first given tree's that runs.
    for tree in (code, *fallback):
        script = tree / "bench" / "bench_pipeline.py"
        if not script.exists():
            continue
        bare = _child(
            [sys.executable, str(script), "--child", "bare", str(logs), day.isoformat()], tree
        )
        try:
            wall = json.loads(bare["out"].strip().splitlines()[-1])["wall_s"]
        except (ValueError, IndexError, KeyError):
            continue
        out["bare_scan"] = {
            "wall_s": round(wall, 2),
            "cpu_s": bare["cpu_s"],
            "rss_mb": None,
            "tree": tree.name,
        }
        break
    else:
        raise SystemExit("no tree's bench/bench_pipeline.py could run the bare scan")
    for k, v in out.items():
        rss = f"{v['rss_mb']:.0f} MB" if v.get("rss_mb") else ""
        print(
            f"  {code.name}: {k:<12} wall {v['wall_s']:>7.2f}s  cpu {v['cpu_s']:>7.2f}s  {rss}"
            + ("  (skipped: nothing changed)" if v.get("skipped") else ""),
            flush=True,
        )
    shutil.rmtree(ws, ignore_errors=True)  # this process's own workspace (a 1M day: ~1 GB)
    return out


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--requests", type=int, default=1_000_000, help="requests in the day (default 1,000,000)"
    )
    p.add_argument(
        "--code",
        action="append",
        type=Path,
        help="code tree to measure (repeatable; default: this checkout)",
    )
    p.add_argument(
        "--repeats", type=int, default=1, help="measure each tree this many times (best kept)"
    )
    args = p.parse_args()
    bp = _bench_pipeline()
    logs = bp.CACHE / f"logs-{args.requests}"
    bp.generate(logs, bp.DAY0, args.requests, files=max(2, args.requests // 2_000_000))
    codes = [c.resolve() for c in (args.code or [REPO])]
    load = os.getloadavg()
    print(
        f"byok-ledger run, {args.requests:,} requests on {bp.DAY0}; load average {load[0]:.1f} on {os.cpu_count()} cores"
    )
    results: dict[str, dict] = {}
    for code in codes:
        best: dict[str, dict] = {}
        for _ in range(max(1, args.repeats)):
            r = bench_code(code, logs, bp.DAY0, args.requests, bp, [REPO, *codes])
            for k, v in r.items():
                if k not in best or v["wall_s"] < best[k]["wall_s"]:
                    best[k] = v
        results[str(code)] = best
    names = ["first_run", "fixed_start", "day", "rerun", "bare_scan"]
    head = f"{'':<14}" + "".join(f"{Path(c).name[:28]:>30}" for c in results)
    print(head)
    for k in names:
        cells = []
        for r in results.values():
            v = r[k]
            rss = f" {v['rss_mb']:.0f}MB" if v.get("rss_mb") else ""
            cells.append(f"{v['wall_s']:.2f}s/{v['cpu_s']:.2f}s cpu{rss}")
        print(f"{k:<14}" + "".join(f"{c:>30}" for c in cells))
    for code, r in results.items():
        beyond = r["day"]["wall_s"] - r["fixed_start"]["wall_s"]
        ratio = beyond / r["bare_scan"]["wall_s"] if r["bare_scan"]["wall_s"] else float("nan")
        print(f"{Path(code).name}: (day - fixed start) / bare scan = {ratio:.1f}x")
    print(
        json.dumps(
            {
                c: {k: {kk: vv for kk, vv in v.items() if kk != "out"} for k, v in r.items()}
                for c, r in results.items()
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
