"""Check beside the policy audit: no request broke policy. Evaluated inside the
`marts/policy_violations` step (`check_specs=` in assets.py)."""

from collections.abc import Iterator

import dagster as dg
import duckdb

from pipeline.loads import DayRange

POLICY_VIOLATIONS = dg.AssetKey(["marts", "policy_violations"])

NO_POLICY_VIOLATIONS = dg.AssetCheckSpec(
    "no_policy_violations",
    asset=POLICY_VIOLATIONS,
    description="Zero policy violations (ZDR, strict BYOK, key filters, environments)",
)


def no_policy_violations(
    conn: duckdb.DuckDBPyConnection, days: DayRange
) -> Iterator[dg.AssetCheckResult]:
    """`NO_POLICY_VIOLATIONS` for the run's days (ERROR, not blocking: nothing downstream
    needs the audit to be empty)."""
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
    yield dg.AssetCheckResult(
        asset_key=POLICY_VIOLATIONS,
        check_name=NO_POLICY_VIOLATIONS.name,
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
