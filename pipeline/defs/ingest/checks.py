"""Checks on ingestion: every line of every log file is accounted for, and the quarantined
share stays under `pipeline.max_rejected_pct`. Both are blocking and name the files.

Each check is an `AssetCheckSpec` of its asset (`check_specs=` in assets.py), evaluated inside
the asset's own step right after the load: a check costs no Dagster step of its own."""

from collections.abc import Iterator
from decimal import Decimal

import dagster as dg
import duckdb

from pipeline.loads import DayRange
from pipeline.sql import load_sql
from routing_core.config import LedgerConfig

REQUESTS = dg.AssetKey(["staging", "requests"])
OUTCOMES = dg.AssetKey(["staging", "outcomes"])

REJECTED_RATE = dg.AssetCheckSpec(
    "rejected_rate_under_threshold",
    asset=REQUESTS,
    blocking=True,
    description="Quarantined log lines (torn last lines excepted) stay under "
    "`pipeline.max_rejected_pct` of the lines read; above it, and with at least "
    "`pipeline.min_rejected_lines` of them, the run stops before the marts (something is wrong "
    "upstream), naming the files with the most quarantined lines. Fewer lines than that only "
    "warn.",
)
EVERY_REQUEST_LINE = dg.AssetCheckSpec(
    "every_request_line_accounted_for",
    asset=REQUESTS,
    blocking=True,
    description="For the latest load of every request-log and generation file of the days' "
    "folders: lines = loaded + duplicates + quarantined (raw.load_manifest). Fails naming the "
    "files.",
)
EVERY_OUTCOME_LINE = dg.AssetCheckSpec(
    "every_outcome_line_accounted_for",
    asset=OUTCOMES,
    blocking=True,
    description="For the latest load of every outcome file of the days' folders: lines = "
    "loaded + duplicates + quarantined (raw.load_manifest). Fails naming the files.",
)
REQUEST_CHECKS = [REJECTED_RATE, EVERY_REQUEST_LINE]
OUTCOME_CHECKS = [EVERY_OUTCOME_LINE]


def request_checks(
    conn: duckdb.DuckDBPyConnection, config: LedgerConfig, days: DayRange
) -> Iterator[dg.AssetCheckResult]:
    """The results of `REQUEST_CHECKS` for the days just loaded."""
    yield rejected_rate(conn, config, days)
    yield _accounting(conn, days, EVERY_REQUEST_LINE, ("requests", "openrouter_generations"))


def outcome_checks(
    conn: duckdb.DuckDBPyConnection, days: DayRange
) -> Iterator[dg.AssetCheckResult]:
    """The results of `OUTCOME_CHECKS` for the days just loaded."""
    yield _accounting(conn, days, EVERY_OUTCOME_LINE, ("outcomes",))


def _files_md(rows: list[tuple]) -> str:
    return "\n".join(f"- `{r[0]}`: " + ", ".join(str(x) for x in r[1:]) for r in rows) or "none"


def _accounting(
    conn: duckdb.DuckDBPyConnection,
    days: DayRange,
    spec: dg.AssetCheckSpec,
    sources: tuple[str, ...],
) -> dg.AssetCheckResult:
    rows = conn.execute(
        load_sql("checks/manifest_identity"), {**days.params, "sources": list(sources)}
    ).fetchall()
    files = len(rows)
    broken = [r for r in rows if r[1] != r[2] + r[3] + r[4] + r[5]]
    refused = [(r[0], r[6], r[7]) for r in rows if r[6] == "refused"]
    return dg.AssetCheckResult(
        asset_key=spec.asset_key,
        check_name=spec.name,
        passed=not broken,
        description=(
            "lines = loaded + duplicates + quarantined for every file"
            if not broken
            else f"{len(broken)} file(s) do not account for every line: "
            + ", ".join(r[0] for r in broken[:10])
        ),
        metadata={
            "files": files,
            "unaccounted_files": dg.MetadataValue.md(
                _files_md(
                    [
                        (r[0], f"lines {r[1]}", f"loaded {r[2]}", f"dup {r[3]}", f"quar {r[4]}")
                        for r in broken[:20]
                    ]
                )
            ),
            "refused_files": dg.MetadataValue.md(_files_md(refused[:20])),
        },
    )


def rejected_rate(
    conn: duckdb.DuckDBPyConnection, config: LedgerConfig, days: DayRange
) -> dg.AssetCheckResult:
    """`REJECTED_RATE`: ERROR (blocking) above the limit with enough lines, WARN with fewer."""
    settings = config.pipeline
    limit, floor = settings.max_rejected_pct, settings.min_rejected_lines
    lines, rejected = conn.execute(load_sql("checks/rejected_rate"), days.params).fetchone()
    worst_files = conn.execute(
        "SELECT file, count(*) AS n, string_agg(DISTINCT reason, ', ' ORDER BY reason) "
        "FROM raw.rejected_records WHERE day BETWEEN $start AND $end AND NOT torn "
        "GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10",
        days.params,
    ).fetchall()
    worst = conn.execute(
        "SELECT file, line, coalesce(reason, ''), error FROM raw.rejected_records "
        "WHERE day BETWEEN $start AND $end AND NOT torn ORDER BY file, line LIMIT 10",
        days.params,
    ).fetchall()
    pct = Decimal(rejected) * 100 / Decimal(lines) if lines else Decimal(0)
    passed = pct <= limit
    blocks = not passed and rejected >= floor
    names = ", ".join(f"{f} ({n})" for f, n, _ in worst_files)
    if passed:
        description = None
    elif blocks:
        description = (
            f"{rejected} of {lines} lines quarantined ({pct:.2f} % > {limit} %); files: {names}"
        )
    else:
        description = (
            f"{rejected} of {lines} lines quarantined ({pct:.2f} % > {limit} %), fewer than "
            f"pipeline.min_rejected_lines ({floor}): not stopping the run; files: {names}"
        )
    return dg.AssetCheckResult(
        asset_key=REJECTED_RATE.asset_key,
        check_name=REJECTED_RATE.name,
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR if blocks or passed else dg.AssetCheckSeverity.WARN,
        description=description,
        metadata={
            "lines_read": int(lines),
            "rejected": int(rejected),
            "rejected_pct": float(round(pct, 4)),
            "max_rejected_pct": float(limit),
            "min_rejected_lines": floor,
            "files": dg.MetadataValue.md(
                "\n".join(f"- `{f}`: {n} line(s) ({r})" for f, n, r in worst_files) or "none"
            ),
            "examples": dg.MetadataValue.md(
                "\n".join(f"- `{f}` line {ln}: {code} — {err}" for f, ln, code, err in worst)
                or "none"
            ),
        },
    )
