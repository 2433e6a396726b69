"""Check beside the policy audit: no request broke policy."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from pipeline.defs.metadata import run_days


@dg.asset_check(
    asset=dg.AssetKey(["marts", "policy_violations"]),
    description="Zero policy violations (ZDR, strict BYOK, key filters, environments)",
)
def no_policy_violations(
    context: dg.AssetCheckExecutionContext, duckdb: DuckDBResource
) -> dg.AssetCheckResult:
    days = run_days(context)
    with duckdb.get_connection() as conn:
        by_kind = conn.execute(
            "SELECT violation, count(*) FROM marts.policy_violations "
            "WHERE day BETWEEN $start AND $end GROUP BY 1 ORDER BY 1",
            days.params,
        ).fetchall()
        examples = conn.execute(
            "SELECT request_id, explanation FROM marts.policy_violations "
            "WHERE day BETWEEN $start AND $end ORDER BY day, request_id LIMIT 10",
            days.params,
        ).fetchall()
    total = sum(n for _, n in by_kind)
    return dg.AssetCheckResult(
        passed=total == 0,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "violations": total,
            **{f"violations_{k}": int(n) for k, n in by_kind},
            "examples": dg.MetadataValue.md(
                "\n".join(f"- `{rid}`: {why}" for rid, why in examples) or "none"
            ),
        },
    )
