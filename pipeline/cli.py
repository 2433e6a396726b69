"""`byok-ledger run` as a typed function: `run_ledger(config_file, start, end)` materializes the
whole ledger graph through Dagster, headless, for a range of UTC days (one in-process run of
the `ledger_daily` job, recorded in the config's Dagster instance, `pipeline.instance`), then
prints a per-day summary. The `alerts` assets are part of that graph, so budgets, anomalies and
reconciliation alerts are evaluated and delivered in the same run. `byok_ledger.cli` parses the
arguments and calls this.

Exit codes: 0 ok (non-blocking check warnings are printed), 1 the run failed or a blocking
check failed, 2 the config or the days are wrong.
"""

from __future__ import annotations

import datetime as dt
import gc
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from pipeline import run_record
from pipeline import settings as pipeline_settings
from pipeline.instance import fast_sqlite, instance_dir, open_run_instance, prepare_instance
from routing_core.config import LedgerConfig
from routing_core.money import format_amount

PLANNED_SUBSET_ENV = "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"
STEP_EVENTS = ("STEP_SUCCESS", "STEP_FAILURE", "STEP_SKIPPED")


def parse_day(value: str | None, flag: str) -> dt.date | None:
    """A `YYYY-MM-DD` day of a command-line flag (None stays None); ValueError names the flag."""
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{flag} {value!r} is not a YYYY-MM-DD day") from None


def _money(v: Any) -> str:
    # routing_core.money: half-up cents, and a -$0.003 variance is "0.00", not "-0.00".
    return "-" if v is None else format_amount(Decimal(v))


def _summary(cfg: LedgerConfig, start: dt.date, end: dt.date) -> list[tuple]:
    import duckdb

    with duckdb.connect(str(cfg.duckdb_path), read_only=True) as conn:
        return conn.execute(
            """
            WITH d AS (SELECT CAST(unnest(generate_series(CAST($start AS DATE), CAST($end AS DATE),
                                      INTERVAL 1 DAY)) AS DATE) AS day),
            s AS (
                SELECT day, sum(requests) AS requests,
                       sum(coalesce(provider_billed_usd, provider_estimated_usd)) AS provider,
                       sum(platform_fee_usd) AS fee, sum(platform_credits_usd) AS credits,
                       sum(total_usd) AS total,
                       sum(total_usd) FILTER (WHERE attribution = 'unattributed') AS unattributed,
                       CASE WHEN bool_and(status = 'invoiced') THEN 'invoiced'
                            WHEN bool_or(status = 'invoiced') THEN 'partial'
                            ELSE 'estimated' END AS status
                FROM marts.split_billing_daily WHERE day BETWEEN $start AND $end GROUP BY day
            ), r AS (
                SELECT day, sum(variance_usd) FILTER (WHERE status IN
                           ('matched', 'over_billed', 'under_billed')) AS variance,
                       count(*) FILTER (WHERE status IN ('over_billed', 'under_billed')) AS off
                FROM marts.reconciliation_daily WHERE day BETWEEN $start AND $end GROUP BY day
            )
            SELECT d.day, coalesce(s.requests, 0), s.provider, s.fee, s.credits, s.total,
                   s.unattributed, coalesce(s.status, '-'), r.variance, coalesce(r.off, 0)
            FROM d LEFT JOIN s USING (day) LEFT JOIN r USING (day) ORDER BY d.day
            """,
            {"start": start, "end": end},
        ).fetchall()


def _print_summary(rows: list[tuple]) -> None:
    head = (
        "day",
        "requests",
        "provider_billed",
        "platform_fee",
        "platform_credits",
        "total",
        "unattributed",
        "status",
        "variance",
        "cells_off",
    )
    table = [head] + [
        (
            str(r[0]),
            str(r[1]),
            _money(r[2]),
            _money(r[3]),
            _money(r[4]),
            _money(r[5]),
            _money(r[6]),
            r[7],
            _money(r[8]),
            str(r[9]),
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    for i, row in enumerate(table):
        print(
            "  ".join(
                c.rjust(w) if j not in (0, 7) else c.ljust(w)
                for j, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if i == 0:
            print("  ".join("-" * w for w in widths))


class _StepPrinter:
    """Prints the run's step outcomes as the event log records them, reading only the events
    recorded since the last call (a cursor), not the whole log each time. Checks run inside
    their asset's step: each gets a line of its own under that step's, named as before
    (`<asset>_<check>`), `ok`, `warn` or `FAILED`."""

    RANK = {"ok": 0, "warn": 1, "FAILED": 2}

    def __init__(self, instance: Any, run_id: str, t0: float) -> None:
        import dagster as dg

        self.instance, self.run_id, self.t0 = instance, run_id, t0
        self.cursor: str | None = None
        # step key -> check -> worst outcome so far (a per-day check has one result per day).
        # A step's evaluations are logged before its STEP_SUCCESS or STEP_FAILURE.
        self.checks: dict[str, dict[str, str]] = {}
        self.types = {
            dg.DagsterEventType.STEP_SUCCESS,
            dg.DagsterEventType.STEP_FAILURE,
            dg.DagsterEventType.STEP_SKIPPED,
            dg.DagsterEventType.ASSET_CHECK_EVALUATION,
        }

    def poll(self) -> None:
        try:
            conn = self.instance.get_records_for_run(
                self.run_id, cursor=self.cursor, of_type=self.types
            )
        except Exception:  # the run is not registered yet
            return
        self.cursor = conn.cursor if conn.records else self.cursor
        for rec in conn.records:
            ev = rec.event_log_entry.dagster_event
            if ev is not None:
                self._print(ev)

    def _line(self, label: str, name: str, rest: str = "") -> None:
        print(f"  {time.perf_counter() - self.t0:6.1f}s  {label:<6}  {name}{rest}", flush=True)

    def _print(self, ev: Any) -> None:
        kind = ev.event_type_value
        if kind == "ASSET_CHECK_EVALUATION":
            data = ev.event_specific_data
            if data is None:
                return
            severity = getattr(data.severity, "value", data.severity)
            # Dagster blocks downstream steps only on a blocking check's ERROR result; a
            # blocking check that reports WARN (e.g. too few quarantined lines) is a warning.
            label = "ok" if data.passed else "FAILED" if severity == "ERROR" else "warn"
            name = f"{data.asset_key.to_python_identifier()}_{data.check_name}"
            seen = self.checks.setdefault(ev.step_key, {})
            if self.RANK[label] >= self.RANK[seen.get(name, "ok")]:
                seen[name] = label
            return
        if kind == "STEP_SUCCESS":
            self._line("ok", ev.step_key)
        elif kind == "STEP_FAILURE":
            err = ev.event_specific_data.error if ev.event_specific_data else None
            lines = err.message.strip().splitlines() if err else ["failed"]
            # A failed blocking check fails its asset's step ("<error class>: 1 blocking asset
            # check failed with ERROR severity:", then the checks); its own line follows.
            blocked = err is not None and err.cls_name == "DagsterAssetCheckFailedError"
            msg = lines[0].split(": ", 1)[-1].rstrip(":") if blocked else lines[-1]
            self._line("FAILED", ev.step_key, f": {msg}")
        else:
            self._line("skipped", ev.step_key, " (an upstream step or blocking check failed)")
        for name, label in self.checks.pop(ev.step_key, {}).items():
            self._line(label, name, "" if label == "ok" else " (check did not pass, below)")


def _days(cfg: LedgerConfig, start: dt.date | None, end: dt.date | None) -> tuple[dt.date, dt.date]:
    """The run's days: as given, else the first/last day with request logs (ValueError)."""
    from pipeline.sources.logs import days_with_logs

    if start is None or end is None:
        present = days_with_logs(cfg.logs_dir)
        if not present and start is None and end is None:
            raise ValueError(
                f"no request logs under {cfg.logs_dir}/requests/dt=*/; "
                "pass --start and --end to run days without logs"
            )
        start = start or dt.date.fromisoformat(present[0] if present else str(end))
        end = end or dt.date.fromisoformat(present[-1] if present else str(start))
    if end < start:
        raise ValueError(f"--end {end} is before --start {start}")
    first = cfg.pipeline.start_date
    if first is not None and start < first:
        raise ValueError(
            f"--start {start} is before pipeline.start_date {first} (the first daily "
            f"partition, {cfg.source}); set an earlier pipeline.start_date to run it"
        )
    return start, end


def _activate(config_file: Path, start: dt.date, end: dt.date) -> None:
    """Settings for this run, in place before the definitions load. In a process that already
    loaded them (a test, a notebook), their partitions must already cover the days."""
    wanted = pipeline_settings.settings_for(config_file, start, end)
    if "pipeline.defs.partitions" not in sys.modules:
        pipeline_settings.activate(wanted)
        return
    active = pipeline_settings.current()
    if not active.covers(start, end):
        raise ValueError(
            f"this process loaded the Dagster definitions with partitions from "
            f"{active.partition_start}; {start}..{end} is outside them (run "
            "`byok-ledger run` in a new process)"
        )
    pipeline_settings.activate(replace(active, config_path=wanted.config_path))


def _unusable_duckdb(path: Path) -> str | None:
    """Why the configured DuckDB file cannot hold the ledger, or None. A file that is not a
    DuckDB database (or one of another storage version) would otherwise be retried by every
    step's connection back-off for minutes; a lock held by another run is waited for as usual."""
    if not path.exists():
        return None
    if path.is_dir():
        return f"{path} (paths.duckdb) is a folder, not a DuckDB file"
    import duckdb

    try:
        duckdb.connect(str(path), read_only=True).close()
    except duckdb.Error as e:
        text = str(e)
        if "lock" in text.lower():  # another run is writing: the steps wait for it
            return None
        return (
            f"{path} (paths.duckdb) cannot be opened as a DuckDB database: "
            f"{text.splitlines()[0]}. Move the file away or point paths.duckdb elsewhere; "
            "it is never overwritten."
        )
    return None


def _ledger_job(resources: dict[str, Any]) -> Any:
    """The `ledger_daily` job over every asset (and check) of the `pipeline.defs` modules: the
    job of the code location (`pipeline.definitions`), loaded without the `dg` component
    loader, whose project scan and component-type metadata serve the UI (~0.15 s of each run;
    tests/pipeline/test_pipeline_contracts.py keeps the two jobs the same)."""
    import warnings

    import dagster as dg

    import pipeline.defs
    from pipeline.defs.reconcile.schedules import ledger_job

    with warnings.catch_warnings():  # as the component loader: beta parameters say so once
        for category in (dg.BetaWarning, dg.PreviewWarning, dg.SupersessionWarning):
            warnings.simplefilter("ignore", category)
        defs = dg.Definitions(
            assets=dg.load_assets_from_package_module(pipeline.defs),
            asset_checks=dg.load_asset_checks_from_package_module(pipeline.defs),
            jobs=[ledger_job],
            resources=resources,
        )
        return defs.resolve_job_def(ledger_job.name)


def run_ledger(
    config_file: str | Path,
    start: dt.date | None = None,
    end: dt.date | None = None,
    *,
    webhook_url: str | None = None,
    force: bool = False,
) -> int:
    """Materialize the ledger graph (alerts included) for start..end (default: the days in the
    logs) on the config's Dagster instance; print progress, failed checks and a summary.
    `webhook_url` replaces the config's alert webhook for this run (the demo's local one).

    When nothing the run depends on changed since the last successful run over the same days
    (`pipeline.run_record`: inputs, config, code, DuckDB file), print one line and return 0
    without starting Dagster; `force` runs anyway."""
    # Importing Dagster, loading the job and opening the instance create ~170,000 objects that
    # live as long as the process. The cyclic garbage collector would traverse them again and
    # again while they are created (~0.3 s of every run, three full collections): it pauses
    # until the run starts, then leaves them out of its collections (`gc.freeze`) until the
    # run is over.
    enabled = gc.isenabled()
    gc.disable()

    def started() -> None:
        gc.freeze()
        if enabled:
            gc.enable()

    try:
        return _run_ledger(config_file, start, end, webhook_url, force, started)
    finally:
        gc.unfreeze()
        if enabled:
            gc.enable()


def _run_ledger(
    config_file: str | Path,
    start: dt.date | None,
    end: dt.date | None,
    webhook_url: str | None,
    force: bool,
    started: Callable[[], None],
) -> int:
    config_file = Path(config_file).resolve()
    # Loaded once for the whole run (the resources and settings reuse this load).
    cfg = pipeline_settings.get_config(config_file)  # ConfigError: byok_ledger.cli.main reports it
    try:
        start, end = _days(cfg, start, end)
    except ValueError as e:
        print(f"byok-ledger run: {e}", file=sys.stderr)
        return 2
    problem = _unusable_duckdb(cfg.duckdb_path)
    if problem:
        print(f"byok-ledger run: {problem}", file=sys.stderr)
        return 2
    asked = (start, end)
    inputs = run_record.RunInputs.of(cfg, config_file, start, end, webhook_url=webhook_url)
    last = run_record.load(instance_dir(cfg))
    changed = run_record.differences(last, inputs, cfg.duckdb_path)
    if not changed and not force and last is not None:
        print(
            f"byok-ledger run: nothing changed since run {last['run_id']} at "
            f"{last['finished_at']}: 0 days re-materialized ({start}..{end}; --force runs anyway)"
        )
        return 0
    try:
        # Days whose invoices changed since they were built are re-run, even outside the range.
        from pipeline.sources.invoice_store import widen_for_invoices

        start, end, reinvoiced = widen_for_invoices(cfg, start, end, cfg.pipeline.start_date)
        _activate(config_file, start, end)
    except ValueError as e:
        print(f"byok-ledger run: {e}", file=sys.stderr)
        return 2
    home = prepare_instance(cfg)
    run_record.forget(home)  # until this run succeeds, nothing may be skipped
    # One "materialization planned" event per asset for the whole day range instead of one per
    # asset and day: on SQLite each event is its own fsynced transaction, and for a 30-day run
    # these were ~45% of all events. The per-day materializations are unchanged; what is lost is
    # only the UI marking a failed range run's days "failed" (the run itself shows failed).
    os.environ.setdefault(PLANNED_SUBSET_ENV, "1")

    from pipeline.defs.metadata import RANGE_END, RANGE_START
    from pipeline.defs.resources import AlertDeliveryResource, build_resources

    resources = build_resources(
        config_file, alert_delivery=AlertDeliveryResource(webhook_url=webhook_url)
    )
    job = _ledger_job(resources)
    ndays = (end - start).days + 1
    print(f"byok-ledger run: {ndays} day(s) {start}..{end}, config {config_file}")
    print(f"  duckdb  {cfg.duckdb_path}\n  dagster {home}")
    if reinvoiced:
        print(f"  invoices changed: re-materializing {', '.join(map(str, reinvoiced))}")
    if last is not None:
        why = "--force" if force else f"{', '.join(changed)} changed"
        print(f"  last successful run {last['run_id']}; running again: {why}")
    t0 = time.perf_counter()
    run_id = str(uuid.uuid4())
    with fast_sqlite(), open_run_instance(home) as instance:
        box: dict[str, Any] = {}

        def work() -> None:
            try:
                box["result"] = job.execute_in_process(
                    instance=instance,
                    resources=resources,
                    tags={RANGE_START: start.isoformat(), RANGE_END: end.isoformat()},
                    run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
                    raise_on_error=False,
                    run_id=run_id,
                )
            except BaseException as e:  # surfaced below, in the main thread
                box["error"] = e

        # Dagster works in a thread; this one prints each step as the run's event log records it.
        worker = threading.Thread(target=work, name="ledger-run", daemon=True)
        started()
        worker.start()
        printer = _StepPrinter(instance, run_id, t0)
        while worker.is_alive():
            worker.join(1.0)  # each poll opens the run's event store: not too often
            printer.poll()
        printer.poll()
    if "error" in box:
        raise box["error"]
    result = box["result"]
    elapsed = time.perf_counter() - t0
    rc, failed = _report(cfg, result, start, end, elapsed)
    if reinvoiced:  # said again under the summary: these days moved although nobody asked
        print(f"re-materialized because their invoices changed: {', '.join(map(str, reinvoiced))}")
    # Recorded only when a re-run could not do better: every blocking check passed, and no
    # alert waits for a webhook that is configured (a re-run retries the delivery). Inputs
    # that changed while the run read them are not recorded either: the next run sees them.
    # The days asked for are recorded even if invoices widened the run: after it, no day's
    # invoices are pending, so a re-run of those days would widen nothing.
    waiting = "alerts_delivered" in failed and inputs.webhook != "none"
    if rc == 0 and not waiting:
        after = run_record.RunInputs.of(cfg, config_file, *asked, webhook_url=webhook_url)
        if after == inputs:
            run_record.save(home, inputs, cfg.duckdb_path, result.run_id)
    return rc


def _report(
    cfg: LedgerConfig, result: Any, start: dt.date, end: dt.date, elapsed: float
) -> tuple[int, set[str]]:
    """Print failed checks, the outcome and the summary: (exit code, names of failed checks)."""
    blocking_failed = False
    failed: set[str] = set()
    for ev in result.get_asset_check_evaluations():
        if ev.passed:
            continue
        failed.add(ev.check_name)
        severity = getattr(ev.severity, "value", ev.severity)
        blocking = bool(getattr(ev, "blocking", False)) and severity == "ERROR"
        blocking_failed |= blocking
        tag = "BLOCKING" if blocking else severity
        print(f"  check {ev.check_name} on {ev.asset_key.to_user_string()} failed ({tag})")
        for k, v in ev.metadata.items():
            text = str(getattr(v, "value", v))
            if "\n" in text:
                print(f"      {k}:\n        " + text.replace("\n", "\n        "))
            else:
                print(f"      {k}: {text}")
    print(f"run {result.run_id} {'succeeded' if result.success else 'FAILED'} in {elapsed:.1f}s")
    if cfg.duckdb_path.exists():
        try:
            _print_summary(_summary(cfg, start, end))
        except Exception as e:  # the marts may not exist when the very first load failed
            print(f"(no summary: {e})")
    return (0 if result.success and not blocking_failed else 1), failed
