"""Pipeline benchmark (targets in README.md, Benchmarks): one day of N requests through the whole Dagster graph.

Reports wall time and peak RSS of the run, the ratio to a bare DuckDB scan-and-aggregate of
the same log files measured side by side, and the cost of day 1 (empty ledger) vs day 30
(after 29 days of history). Each measurement runs in a fresh child process so its peak RSS is
its own.

    .venv/bin/python bench/bench_pipeline.py                  # 1,000,000 requests
    .venv/bin/python bench/bench_pipeline.py --requests 10000000
    .venv/bin/python bench/bench_pipeline.py --history-requests 100000 --history-days 30

Generated logs are cached under $BYOK_BENCH_DIR (default /tmp/byok-ledger-bench), keyed by
size: 10M requests take a while (and ~10 GB) to generate the first time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ACME = REPO / "examples" / "acme" / "ledger.yaml"
CACHE = Path(os.environ.get("BYOK_BENCH_DIR", "/tmp/byok-ledger-bench"))
DAY0 = dt.date(2026, 2, 1)

# Synthesized with DuckDB itself (fast and multi-threaded), following routing_core.schema:
# a mix of BYOK keys, shared capacity, failures with a rate-limited attempt, and workflows.
GEN_SQL = """
COPY (
  WITH base AS (
    SELECT i, (i * 2654435761) % 1000 AS h
    FROM range($first, $first + $n) t(i)
  ), pick AS (
    SELECT i, h,
      CASE WHEN h < 350 THEN 0 WHEN h < 600 THEN 1 WHEN h < 750 THEN 2
           WHEN h < 850 THEN 3 WHEN h < 950 THEN 4 ELSE 5 END AS route
    FROM base
  )
  SELECT
    1 AS schema_version,
    'req-' || i AS request_id,
    strftime(CAST($day AS TIMESTAMP) + to_microseconds(CAST((i % 86400000) AS BIGINT) * 1000),
             '%Y-%m-%dT%H:%M:%S.%gZ') AS ts,
    100.0 + h AS duration_ms,
    (['public-chat-prod', 'assistant-prod', 'coding-agent-prod', 'batch-prod',
      'public-chat-staging', 'public-chat-prod'])[route + 1] AS api_key_id,
    (['prod', 'prod', 'prod', 'prod', 'staging', 'prod'])[route + 1] AS environment,
    (['web-chat', 'internal-assistant', 'code-agent', 'batch-enrichment', 'web-chat',
      'web-chat'])[route + 1] AS app,
    NULL AS member_id,
    (['public-chat', 'internal-assistant', 'coding-agent', 'batch', 'public-chat',
      'public-chat'])[route + 1] AS workload,
    'public' AS data_class,
    CASE WHEN route = 2 THEN 'wf-' || (i // 4) END AS workflow_id,
    NULL AS idempotency_key,
    [(['openai/gpt-4.1', 'anthropic/claude-sonnet-4', 'google/gemini-2.5-pro',
       'openai/gpt-4o-mini', 'openai/gpt-4.1-mini', 'google/gemini-2.5-flash'])[route + 1]]
      AS requested_models,
    (['openai/gpt-4.1', 'anthropic/claude-sonnet-4', 'google/gemini-2.5-pro',
      'openai/gpt-4o-mini', 'openai/gpt-4.1-mini', 'google/gemini-2.5-flash'])[route + 1] AS model,
    (['openai', 'anthropic', 'vertex', 'openai', 'openai', 'vertex'])[route + 1] AS provider,
    (['gpt-4.1-2025-04-14', 'claude-sonnet-4-20250514', 'gemini-2.5-pro',
      'gpt-4o-mini-2024-07-18', 'gpt-4.1-mini-2025-04-14', 'gemini-2.5-flash'])[route + 1]
      AS upstream_model,
    CASE WHEN route = 5 THEN 'shared' ELSE 'byok' END AS credential,
    (['oai-prod-primary', 'ant-prod-primary', 'vertex-coding', 'oai-batch-overflow',
      'oai-nonprod', NULL])[route + 1] AS key_id,
    CASE route
      WHEN 0 THEN MAP {'project_id': 'proj_acme_prod', 'api_key_id': 'key_prod_primary'}
      WHEN 1 THEN MAP {'workspace_id': 'wrkspc_acme_prod'}
      WHEN 2 THEN MAP {'sub_account_id': 'acme-code-prod'}
      WHEN 3 THEN MAP {'project_id': 'proj_acme_batch', 'api_key_id': 'key_batch'}
      WHEN 4 THEN MAP {'project_id': 'proj_acme_nonprod', 'api_key_id': 'key_nonprod'}
      ELSE MAP {} END AS account,
    CASE WHEN h % 50 = 0 THEN
      [{'model': 'openai/gpt-4.1', 'provider': 'openai', 'credential': 'byok',
        'key_id': 'oai-prod-primary', 'status': 'rate_limited', 'http_status': 429,
        'error_type': 'rate_limit', 'latency_ms': 12.0},
       {'model': 'x', 'provider': (['openai', 'anthropic', 'vertex', 'openai', 'openai', 'vertex'])[route + 1],
        'credential': CASE WHEN route = 5 THEN 'shared' ELSE 'byok' END,
        'key_id': (['oai-prod-primary', 'ant-prod-primary', 'vertex-coding', 'oai-batch-overflow', 'oai-nonprod', NULL])[route + 1],
        'status': 'ok', 'http_status': 200, 'error_type': NULL, 'latency_ms': 90.0}]
    ELSE
      [{'model': 'x', 'provider': (['openai', 'anthropic', 'vertex', 'openai', 'openai', 'vertex'])[route + 1],
        'credential': CASE WHEN route = 5 THEN 'shared' ELSE 'byok' END,
        'key_id': (['oai-prod-primary', 'ant-prod-primary', 'vertex-coding', 'oai-batch-overflow', 'oai-nonprod', NULL])[route + 1],
        'status': 'ok', 'http_status': 200, 'error_type': NULL, 'latency_ms': 90.0}]
    END AS attempts,
    h % 50 = 0 AS fallback_used,
    CASE WHEN h % 50 = 0 THEN 'rate_limited' END AS fallback_reason,
    'ok' AS status,
    NULL::INTEGER AS error_code,
    route = 2 AS zdr,
    {'input_tokens': 500 + h, 'cache_read_tokens': h % 7 * 10, 'cache_write_tokens': 0,
     'output_tokens': 100 + h % 300, 'reasoning_tokens': 0} AS usage,
    {'list_usd': CAST(CAST((500 + h) * 3 AS DECIMAL(18, 9)) / 1000000 AS VARCHAR),
     'provider_usd': CASE WHEN route = 5 THEN '0' ELSE CAST(CAST((500 + h) * 3 AS DECIMAL(18, 9)) / 1000000 AS VARCHAR) END,
     'platform_fee_usd': CASE WHEN route = 5 THEN '0' ELSE CAST(CAST((500 + h) * 3 AS DECIMAL(18, 9)) / 20000000 AS VARCHAR) END,
     'platform_credits_usd': CASE WHEN route = 5 THEN CAST(CAST((500 + h) * 3 AS DECIMAL(18, 9)) / 1000000 AS VARCHAR) ELSE '0' END}
      AS cost
  FROM pick
) TO $path (FORMAT json)
"""


def generate(root: Path, day: dt.date, n: int, first: int = 0, files: int = 2) -> None:
    """`n` request lines for `day` under `root/requests/dt=day/` (cached: skipped if present)."""
    import duckdb

    folder = root / "requests" / f"dt={day.isoformat()}"
    done = folder / ".complete"
    if done.exists():
        return
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    conn = duckdb.connect()
    per = n // files
    for k in range(files):
        count = per if k < files - 1 else n - per * (files - 1)
        conn.execute(
            GEN_SQL,
            {
                "first": first + k * per,
                "n": count,
                "day": day.isoformat(),
                "path": str(folder / f"router-{k}.jsonl"),
            },
        )
    conn.close()
    done.write_text(str(n))


def _workspace(name: str, logs: Path) -> Path:
    """A config whose logs point at the cached data and whose DuckDB is fresh."""
    ws = CACHE / "runs" / name
    shutil.rmtree(ws, ignore_errors=True)
    (ws / "invoices").mkdir(parents=True)
    text = ACME.read_text()
    text = text.replace("logs: data/logs", f"logs: {logs}")
    text = text.replace("invoices: data/invoices", f"invoices: {ws / 'invoices'}")
    text = text.replace("duckdb: data/ledger.duckdb", f"duckdb: {ws / 'ledger.duckdb'}")
    (ws / "ledger.yaml").write_text(text)
    return ws


# --------------------------------------------------------------------------- child processes


def child_pipeline(config: str, start: str, end: str) -> dict:
    os.environ["BYOK_LEDGER_CONFIG"] = config
    os.environ.setdefault("BYOK_LEDGER_START", "2026-01-01")
    import dagster as dg

    from pipeline.definitions import defs
    from pipeline.defs.metadata import RANGE_END, RANGE_START
    from pipeline.defs.resources import build_resources

    job = defs.resolve_job_def("ledger_daily")
    t0 = time.perf_counter()
    result = job.execute_in_process(
        instance=dg.DagsterInstance.ephemeral(),
        resources=build_resources(config),
        tags={RANGE_START: start, RANGE_END: end},
        run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}},
        raise_on_error=True,
    )
    wall = time.perf_counter() - t0
    steps = {}
    for ev in result.all_events:
        if ev.event_type_value == "STEP_SUCCESS":
            steps[ev.step_key] = round(ev.event_specific_data.duration_ms / 1000, 2)
    return {"wall_s": wall, "success": result.success, "steps": steps}


def child_bare(logs: str, day: str) -> dict:
    import duckdb

    cols = "{" + ", ".join(f"'{k}': '{v}'" for k, v in BARE_COLUMNS.items()) + "}"
    conn = duckdb.connect(config={"memory_limit": "1500MB", "preserve_insertion_order": False})
    t0 = time.perf_counter()
    rows = conn.execute(
        f"""SELECT api_key_id, provider, model, credential, count(*),
                   sum(CAST(cost.provider_usd AS DECIMAL(38, 9))),
                   sum(CAST(cost.platform_fee_usd AS DECIMAL(38, 9)))
            FROM read_json($glob, format='newline_delimited', columns={cols},
                           hive_partitioning=false)
            GROUP BY ALL""",
        {"glob": f"{logs}/requests/dt={day}/*.jsonl"},
    ).fetchall()
    return {"wall_s": time.perf_counter() - t0, "groups": len(rows)}


# The bare scan reads the record with DuckDB's own (lenient) typed columns and no validation:
# the floor the pipeline's validated read is compared against.
BARE_COLUMNS = {
    "schema_version": "INTEGER",
    "request_id": "VARCHAR",
    "ts": "VARCHAR",
    "duration_ms": "DOUBLE",
    "api_key_id": "VARCHAR",
    "environment": "VARCHAR",
    "app": "VARCHAR",
    "member_id": "VARCHAR",
    "workload": "VARCHAR",
    "data_class": "VARCHAR",
    "workflow_id": "VARCHAR",
    "idempotency_key": "VARCHAR",
    "requested_models": "VARCHAR[]",
    "model": "VARCHAR",
    "provider": "VARCHAR",
    "upstream_model": "VARCHAR",
    "credential": "VARCHAR",
    "key_id": "VARCHAR",
    "fallback_used": "BOOLEAN",
    "status": "VARCHAR",
    "zdr": "BOOLEAN",
    "cost": "STRUCT(list_usd VARCHAR, provider_usd VARCHAR, platform_fee_usd VARCHAR, "
    "platform_credits_usd VARCHAR)",
}


def _child(kind: str, *args: str) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", kind, *args],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    if proc.returncode != 0:
        raise SystemExit(f"child {kind} failed:\n{proc.stdout}\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --------------------------------------------------------------------------- scenarios


def bench_one_day(n: int, repeats: int) -> dict:
    logs = CACHE / f"logs-{n}"
    t0 = time.perf_counter()
    generate(logs, DAY0, n, files=max(2, n // 2_000_000))
    gen_s = time.perf_counter() - t0
    size_gb = sum(p.stat().st_size for p in (logs / "requests").rglob("*.jsonl")) / 1e9
    day = DAY0.isoformat()
    pipe, bare = [], []
    for r in range(repeats):
        ws = _workspace(f"day-{n}-{r}", logs)
        pipe.append(_child("pipeline", str(ws / "ledger.yaml"), day, day))
        bare.append(_child("bare", str(logs), day))
    med_p = statistics.median(p["wall_s"] for p in pipe)
    med_b = statistics.median(b["wall_s"] for b in bare)
    return {
        "requests": n,
        "log_gb": round(size_gb, 2),
        "generate_s": round(gen_s, 1),
        "pipeline_s": round(med_p, 2),
        "bare_scan_s": round(med_b, 2),
        "ratio": round(med_p / med_b, 2),
        "peak_rss_mb": round(max(p["rss_mb"] for p in pipe)),
        "bare_peak_rss_mb": round(max(b["rss_mb"] for b in bare)),
        "steps_s": pipe[len(pipe) // 2]["steps"],
    }


def bench_history(n: int, days: int) -> dict:
    logs = CACHE / f"history-{n}x{days}"
    for i in range(days):
        generate(logs, DAY0 + dt.timedelta(days=i), n, first=i * n, files=1)
    first, last = DAY0.isoformat(), (DAY0 + dt.timedelta(days=days - 1)).isoformat()
    ws = _workspace(f"history-{n}", logs)
    cfg = str(ws / "ledger.yaml")
    day1 = _child("pipeline", cfg, first, first)
    if days > 2:  # build the history in between as one range run
        mid = (DAY0 + dt.timedelta(days=days - 2)).isoformat()
        _child("pipeline", cfg, (DAY0 + dt.timedelta(days=1)).isoformat(), mid)
    day_n = _child("pipeline", cfg, last, last)
    return {
        "requests_per_day": n,
        "days": days,
        "day1_s": round(day1["wall_s"], 2),
        f"day{days}_s": round(day_n["wall_s"], 2),
        "ratio": round(day_n["wall_s"] / day1["wall_s"], 2),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument(
        "--history-requests",
        type=int,
        default=0,
        help="also measure day 1 vs day N with this many requests a day",
    )
    ap.add_argument("--history-days", type=int, default=30)
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, *rest = args.child
        out = child_pipeline(*rest) if kind == "pipeline" else child_bare(*rest)
        out["rss_mb"] = _rss_mb()
        print(json.dumps(out))
        return 0
    CACHE.mkdir(parents=True, exist_ok=True)
    if args.requests:
        print(json.dumps(bench_one_day(args.requests, args.repeats), indent=2))
    if args.history_requests:
        print(json.dumps(bench_history(args.history_requests, args.history_days), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
