"""Small helpers shared by the asset files: the day range of a run, the row-count + preview
metadata every asset returns (per day on each day's materialization), and the events of a
per-day check evaluated inside its asset's step."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import dagster as dg
import duckdb

from pipeline.loads import DayRange

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
PARTITION = "dagster/partition"


def run_days(context: Any) -> DayRange:
    """The days a run covers: its partition key range, or its tags."""
    if isinstance(context, dg.AssetExecutionContext) and context.has_partition_key_range:
        keys = context.partition_key_range
        return DayRange(dt.date.fromisoformat(keys.start), dt.date.fromisoformat(keys.end))
    tags = context.run.tags
    if RANGE_START in tags:
        return DayRange(
            dt.date.fromisoformat(tags[RANGE_START]), dt.date.fromisoformat(tags[RANGE_END])
        )
    if PARTITION in tags:
        d = dt.date.fromisoformat(tags[PARTITION])
        return DayRange(d, d)
    raise dg.Failure("this run has no day partition: launch it for a day or a range of days")


def table_metadata(
    context: dg.AssetExecutionContext,
    conn: duckdb.DuckDBPyConnection,
    table: str,
    days: DayRange,
    day_col: str = "day",
    limit: int = 5,
    asset_key: dg.AssetKey | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Metadata of a (re)built table: the rows of the run's days, a Markdown preview of a few
    rows, and, on each day's own materialization, `dagster/row_count` for that day (a range
    run records one materialization per day; each should count its own rows)."""
    where = f"WHERE {day_col} BETWEEN $start AND $end"
    per_day = dict(
        conn.execute(
            f"SELECT {day_col}, count(*) FROM {table} {where} GROUP BY ALL", days.params
        ).fetchall()
    )
    if context.has_partition_key_range:
        for day in days.days:
            context.add_asset_metadata(
                {
                    "dagster/row_count": dg.MetadataValue.int(
                        int(per_day.get(dt.date.fromisoformat(day), 0))
                    )
                },
                asset_key=asset_key,
                partition_key=day,
            )
    n = sum(per_day.values())
    cur = conn.execute(
        f"SELECT * FROM {table} {where} ORDER BY ALL LIMIT {int(limit)}", days.params
    )
    cols = [d[0] for d in cur.description]
    rows = cur.fetchall()
    md = "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n"
    md += "\n".join("| " + " | ".join("" if v is None else str(v) for v in r) + " |" for r in rows)
    return {
        "dagster/row_count": dg.MetadataValue.int(int(n)),
        "run_row_count": dg.MetadataValue.int(int(n)),
        "days": dg.MetadataValue.text(str(days)),
        "table": dg.MetadataValue.text(table),
        "preview": dg.MetadataValue.md(md),
        **{k: v for k, v in extra.items()},
    }


def rebuild_table(
    context: dg.AssetExecutionContext,
    ledger: Any,
    db: Any,
    table: str,
    build: Callable[[duckdb.DuckDBPyConnection, Any, DayRange], Any],
    day_col: str = "day",
    checks: Callable[[duckdb.DuckDBPyConnection, DayRange], Iterable[dg.AssetCheckResult]]
    | None = None,
) -> dg.MaterializeResult:
    """The body of a one-table asset (`db`: its DuckDB resource): replace the run's days with
    `build(conn, config, days)` (a `pipeline.loads` function), then report the table and the
    results of its `checks(conn, days)` (the asset's `check_specs`)."""
    days = run_days(context)
    with db.get_connection() as conn:
        build(conn, ledger.config(), days)
        meta = table_metadata(context, conn, table, days, day_col=day_col)
        results = list(checks(conn, days)) if checks else None
    return dg.MaterializeResult(metadata=meta, check_results=results)


def per_day_check(
    context: dg.AssetExecutionContext,
    spec: dg.AssetCheckSpec,
    evaluations: Iterable[dg.AssetCheckEvaluation],
) -> Iterator[dg.AssetCheckEvaluation | dg.Output]:
    """The events of a partitioned check of this step: one evaluation per day of the run (an
    `AssetCheckResult` holds one result for the whole range), then the step output Dagster
    expects of every check spec (what downstream steps wait for)."""
    yield from evaluations
    yield dg.Output(
        None, output_name=context.assets_def.get_output_name_for_asset_check_key(spec.key)
    )
