"""`byok-ledger` CLI (the commands are listed in README.md). This file only parses arguments;
each subcommand's work lives in the module that owns the concept and is imported lazily, so
`explain` does not pay for importing Dagster."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from routing_core.config import ConfigError

# subcommand -> "module:function"; the function takes the parsed args and returns an exit code.
HANDLERS = {
    "check-config": "byok_ledger.routing_commands:check_config",
    "explain": "byok_ledger.routing_commands:explain",
    "simulate": "simulator.cli:simulate",
    "scenarios": "simulator.cli:scenarios",
    "run": "byok_ledger.pipeline_commands:run",
    "report": "reports.cli:report",
    "alerts": "byok_ledger.pipeline_commands:alerts",
    "ui": "byok_ledger.pipeline_commands:ui",
    "serve": "gateway.serve:serve_command",
    "demo": "byok_ledger.demo:demo",
    "export": "byok_ledger.cli:export_command",
}

# The acme example, found from the package so `demo`/`simulate`/`scenarios` work from any folder.
_CHECKOUT_EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "acme" / "ledger.yaml"
_PACKAGED_EXAMPLE = Path(__file__).resolve().parent / "_examples" / "acme" / "ledger.yaml"
# The checkout's copy when there is one, else the copy an installed wheel carries (setup.py).
DEFAULT_CONFIG = str(_CHECKOUT_EXAMPLE if _CHECKOUT_EXAMPLE.is_file() else _PACKAGED_EXAMPLE)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="byok-ledger",
        description="BYOK LLM routing and the ledger that reconciles it with provider invoices.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("demo", help="simulate traffic, run the pipeline, render the report")
    s.add_argument("--out", default="demo-out", help="output folder (default: demo-out)")
    s.add_argument("--days", type=int, default=30, help="simulated UTC days (default: 30)")
    s.add_argument(
        "--requests-per-day",
        type=int,
        default=None,
        help="simulated requests per day (default: a size that finishes in about a minute)",
    )
    s.add_argument(
        "--seed", type=int, default=7, help="random seed; the same seed gives the same data"
    )
    s.add_argument(
        "--config",
        default=DEFAULT_CONFIG,
        help="ledger.yaml to simulate (default: the Acme example)",
    )

    s = sub.add_parser("run", help="materialize the asset graph through Dagster for some UTC days")
    s.add_argument("--config", required=True, help="the ledger.yaml to run the pipeline for")
    s.add_argument("--start", help="first UTC day, YYYY-MM-DD (default: first day in the logs)")
    s.add_argument("--end", help="last UTC day, YYYY-MM-DD (default: last day in the logs)")
    s.add_argument(
        "--force",
        action="store_true",
        help="run even when no log, invoice, statement, config or code changed since the last "
        "successful run over the same days (without it, such a re-run prints one line and "
        "exits 0)",
    )

    s = sub.add_parser("explain", help="dry run: ordered attempts and excluded candidates")
    s.add_argument("--config", required=True, help="the ledger.yaml whose routing to explain")
    s.add_argument("--api-key", required=True, help="router API key id")
    s.add_argument(
        "--model", action="append", required=True, help="gateway slug; repeat for fallbacks"
    )
    s.add_argument("--workload", help="workload id the request declares (workload policies)")
    s.add_argument("--member", help="member id the request is made for (key filters, budgets)")
    s.add_argument("--zdr", action="store_true", help="request ZDR endpoints only")
    s.add_argument("--provider-only", action="append", help="restrict to these providers")
    s.add_argument("--provider-order", action="append", help="preferred provider order")
    s.add_argument("--provider-ignore", action="append", help="never these providers")
    s.add_argument("--no-fallbacks", action="store_true", help="allow_fallbacks=false")
    s.add_argument("--require", action="append", help="capability, e.g. tools")
    s.add_argument("--data-collection", choices=["allow", "deny"], help="request data policy")
    s.add_argument("--max-price-input", help="USD per 1M input tokens")
    s.add_argument("--max-price-output", help="USD per 1M output tokens")
    s.add_argument("--input-tokens", type=int, default=0, help="estimated input (context check)")
    s.add_argument("--json", action="store_true", help="print one JSON object")

    s = sub.add_parser("check-config", help="validate a ledger.yaml (exit 2 on problems)")
    s.add_argument("file", help="path of the ledger.yaml to check")

    s = sub.add_parser("report", help="(re)render the finance report for a month")
    s.add_argument("--config", required=True, help="the ledger.yaml whose ledger to report on")
    s.add_argument(
        "--month",
        help="UTC calendar month, YYYY-MM (default: the last month with data in the ledger)",
    )

    s = sub.add_parser("alerts", help="evaluate budgets and anomalies now and deliver new alerts")
    s.add_argument("--config", required=True, help="the ledger.yaml with the budgets and alerts")
    s.add_argument(
        "--dry-run", action="store_true", help="show alerts without sending or recording"
    )

    s = sub.add_parser(
        "ui",
        help="the Dagster UI on the instance that run, demo and the schedule use",
        description="Start the Dagster UI (dagster-webserver) for a ledger.yaml, on the same "
        "Dagster instance as `byok-ledger run`, `demo` and the schedule (the folder .dagster "
        "beside the DuckDB file, or $DAGSTER_HOME), so their run history shows. Ctrl-C stops it.",
    )
    s.add_argument("--config", required=True, help="the ledger.yaml to load")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    s.add_argument("--port", type=int, default=3000, help="TCP port (default: 3000)")
    s.add_argument(
        "--daemon",
        action="store_true",
        help="also run the Dagster daemon, which starts scheduled runs once the schedule is on",
    )

    s = sub.add_parser(
        "serve",
        help="the HTTP gateway: OpenAI- and Anthropic-compatible endpoints over the router",
        description="Serve the router over HTTP: POST /v1/chat/completions (OpenAI wire), "
        "POST /v1/messages (Anthropic wire), GET /v1/models, POST /v1/outcomes, "
        "POST /v1/explain, GET /healthz, /readyz and /metrics. Clients authenticate with a "
        "router API key (api_keys[].secret_sha256). Provider secrets come from the "
        "environment, as for the library. Ctrl-C or SIGTERM stops it after requests in "
        "flight finish. See docs/gateway.md.",
    )
    s.add_argument("--config", required=True, help="the ledger.yaml to serve")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    s.add_argument("--port", type=int, default=8080, help="TCP port (default: 8080)")
    s.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes (default: 1); above 1 needs router.state set to a Redis URL so "
        "every worker enforces the same budgets",
    )

    s = sub.add_parser(
        "export",
        help="one month of the ledger as FOCUS 1.2 (CSV or Parquet) or the marts as Parquet",
        description="Export a UTC calendar month of the ledger for other tools. --format focus "
        "writes the allocated, reconciled ledger as FOCUS 1.2 rows (the FinOps open cost and "
        "usage format) to one file: .csv or .parquet, picked by the suffix of --out. "
        "--format parquet writes every mart, cut to the month, as <mart>.parquet in the "
        "--out folder. Money stays exact decimals; times are UTC. An existing --out is "
        "replaced only if it is an unchanged earlier export (its manifest says so). Exit 2 "
        "when refused. See docs/marts.md.",
    )
    s.add_argument("--config", required=True, help="the ledger.yaml whose DuckDB file to read")
    s.add_argument("--month", required=True, help="UTC calendar month, YYYY-MM (e.g. 2026-11)")
    s.add_argument(
        "--format",
        required=True,
        choices=("focus", "parquet"),
        help="focus: one FOCUS 1.2 file; parquet: one Parquet file per mart in a folder",
    )
    s.add_argument(
        "--out",
        required=True,
        help="focus: a file ending in .csv or .parquet; parquet: a folder (created if missing)",
    )

    s = sub.add_parser("simulate", help="traffic through the real router against fake providers")
    s.add_argument(
        "--config",
        default=DEFAULT_CONFIG,
        help="ledger.yaml to simulate (default: the Acme example)",
    )
    s.add_argument(
        "--out", required=True, help="new folder for logs, invoices, statement and ledger.yaml"
    )
    s.add_argument("--days", type=int, default=30, help="simulated UTC days (default: 30)")
    s.add_argument(
        "--requests-per-day",
        type=int,
        default=300,
        help="simulated requests per day (default: 300)",
    )
    s.add_argument(
        "--seed", type=int, default=7, help="random seed; the same seed gives the same data"
    )
    s.add_argument("--start", help="first simulated UTC day, YYYY-MM-DD")
    s.add_argument("--no-frictions", action="store_true", help="no real-world frictions")
    s.add_argument(
        "--engine",
        choices=("auto", "router", "synth"),
        default="auto",
        help="router: the real Router against fake providers; synth: the fast "
        "synthesizer; auto: router up to 2,000 requests/day",
    )
    s.add_argument("--quiet", action="store_true", help="no progress line on stderr")

    s = sub.add_parser(
        "scenarios",
        help="run the production-testing scenarios (workload postures, failover, budgets; "
        "docs/simulator.md) and print a verdict table",
    )
    s.add_argument("names", nargs="*", metavar="NAME", help="scenarios to run (default: all)")
    s.add_argument(
        "--config",
        default=DEFAULT_CONFIG,
        help="ledger.yaml to test (default: the Acme example)",
    )
    return p


def export_command(args: argparse.Namespace) -> int:
    """`byok-ledger export`: the typed call into pipeline.export; a refusal exits 2."""
    from pipeline.export import ExportError, export_month
    from routing_core.config import load_config

    config = load_config(args.config)
    try:
        result = export_month(config, args.month, args.format, Path(args.out))
    except ExportError as e:
        print(f"byok-ledger export: {e}", file=sys.stderr)
        return 2
    print(result.summary())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    module, func = HANDLERS[args.command].split(":")
    handler = getattr(importlib.import_module(module), func)
    try:
        return int(handler(args) or 0)
    except ConfigError as e:  # every command's bad or missing --config, reported one way
        print(f"byok-ledger {args.command}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `byok-ledger ... | head`: the reader left, nothing to report
        return 1
    except Exception as e:  # the last net: a user sees one line, never a traceback
        if os.environ.get("BYOK_LEDGER_DEBUG"):
            raise
        where = traceback.extract_tb(e.__traceback__)[-1]
        print(
            f"byok-ledger {args.command}: unexpected error: {type(e).__name__}: {e} "
            f"(at {Path(where.filename).name}:{where.lineno}). This is a bug in byok-ledger: "
            "please report it; BYOK_LEDGER_DEBUG=1 shows the full traceback.",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
