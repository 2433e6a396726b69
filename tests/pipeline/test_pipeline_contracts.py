"""Contracts engineers and operators build on: the Dagster names (asset keys, groups, checks,
jobs, schedules, sensors: renaming one breaks saved UI views, run history and alert rules) and
the SPEC §8 mart columns (names and order are contracts; extra columns may only follow)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import pytest

from pipeline import loads
from pipeline.alerts import ledger as alert_ledger
from pipeline.definitions import defs

# asset key -> group. Every asset is daily-partitioned (the alert assets evaluate as of the
# run's last day) and part of the one ledger job.
ASSETS = {
    "staging/requests": "ingest",
    "staging/outcomes": "ingest",
    "staging/invoice_lines": "ingest",
    "intermediate/request_groups": "reconcile",
    "marts/reconciliation_daily": "reconcile",
    "marts/split_billing_daily": "reconcile",
    "marts/unattributed_usage": "reconcile",
    "marts/non_usage_charges": "reconcile",
    "marts/cost_per_accepted_output": "insights",
    "marts/policy_violations": "insights",
    "marts/routing_health": "insights",
    "marts/budget_status": "alerts",
    "marts/alerts": "alerts",
}
UNPARTITIONED: set[str] = set()

# (asset, check) -> blocking
CHECKS = {
    ("staging/requests", "rejected_rate_under_threshold"): True,
    ("staging/requests", "every_request_line_accounted_for"): True,
    ("staging/outcomes", "every_outcome_line_accounted_for"): True,
    ("staging/invoice_lines", "invoice_files_readable"): False,
    ("staging/invoice_lines", "invoice_lines_accounted_for"): True,
    ("marts/reconciliation_daily", "variance_within_tolerance"): False,
    ("marts/split_billing_daily", "split_billing_adds_up"): True,
    ("marts/policy_violations", "no_policy_violations"): False,
    ("marts/alerts", "alerts_delivered"): False,
}

# SPEC §8, verbatim order.
SPEC_COLUMNS = {
    "marts.split_billing_daily": [
        "day",
        "environment",
        "app",
        "api_key_id",
        "workload",
        "member_id",
        "provider",
        "model",
        "credential",
        "requests",
        "provider_billed_usd",
        "provider_estimated_usd",
        "platform_fee_usd",
        "platform_credits_usd",
        "total_usd",
        "status",
    ],
    "marts.reconciliation_daily": [
        "day",
        "provider",
        "account",
        "upstream_model",
        "expected_usd",
        "billed_usd",
        "variance_usd",
        "variance_pct",
        "status",
    ],
    "marts.cost_per_accepted_output": [
        "period",
        "workload",
        "environment",
        "model",
        "requests",
        "workflows",
        "accepted",
        "total_cost_usd",
        "cost_per_accepted_usd",
    ],
}
# SPEC §8 names these marts without listing their columns: they must exist.
SPEC_MARTS = [
    "marts.unattributed_usage",
    "marts.policy_violations",
    "marts.routing_health",
    "marts.budget_status",
    "marts.alerts",
]
MONEY_COLUMNS = {
    "marts.split_billing_daily": [
        "provider_billed_usd",
        "provider_estimated_usd",
        "platform_fee_usd",
        "platform_credits_usd",
        "total_usd",
    ],
    "marts.reconciliation_daily": ["expected_usd", "billed_usd", "variance_usd"],
    "marts.cost_per_accepted_output": ["total_cost_usd", "cost_per_accepted_usd"],
}


def test_asset_keys_and_groups_snapshot():
    graph = defs.resolve_asset_graph()
    got = {k.to_user_string(): graph.get(k).group_name for k in graph.get_all_asset_keys()}
    assert got == ASSETS
    for key in ASSETS:
        node = graph.get(dg.AssetKey.from_user_string(key))
        assert (node.partitions_def is None) == (key in UNPARTITIONED), key
        # Partitioned assets take a day range in one run (single-run backfill).
        assert (node.backfill_policy is None) == (key in UNPARTITIONED), key


def test_asset_checks_snapshot():
    graph = defs.resolve_asset_graph()
    got = {}
    for check_key in graph.asset_check_keys:
        spec = graph.get_check_spec(check_key)
        got[(check_key.asset_key.to_user_string(), check_key.name)] = spec.blocking
    assert got == CHECKS


# The steps of a ledger run, one per asset op. Checks are check specs of their assets and run
# in the asset's own step (a step of its own costs ~50 ms of Dagster events and bookkeeping).
STEPS = [
    "alert_marts",
    "intermediate__request_groups",
    "marts__cost_per_accepted_output",
    "marts__policy_violations",
    "marts__reconciliation_daily",
    "marts__routing_health",
    "split_billing",
    "staging__invoice_lines",
    "staging__outcomes",
    "staging__requests",
]


def test_every_check_runs_in_its_assets_step():
    ledger_job = defs.resolve_job_def("ledger_daily")
    assert sorted(n.name for n in ledger_job.nodes) == STEPS
    assert not defs.asset_checks  # no check is a step of its own


def test_run_executes_the_code_locations_job():
    """`byok-ledger run` loads the job without the component loader (`_ledger_job`): the same
    steps, assets, checks, dependencies and resources as the code location's."""
    from pipeline.cli import _ledger_job
    from pipeline.defs.resources import build_resources

    def shape(job: dg.JobDefinition) -> tuple:
        layer = job.asset_layer
        graph = layer.asset_graph
        return (
            sorted(n.name for n in job.nodes),
            {k: sorted(graph.get(k).parent_keys) for k in layer.selected_asset_keys},
            {s.key: s.blocking for d in layer.data for s in d.assets_def.check_specs},
            sorted(job.resource_defs),
        )

    assert shape(_ledger_job(build_resources())) == shape(defs.resolve_job_def("ledger_daily"))


def test_jobs_schedules_sensors_snapshot():
    repo = defs.get_repository_def()
    assert sorted(j.name for j in repo.get_all_jobs() if not j.name.startswith("__")) == [
        "ledger_daily",
    ]
    schedules = {s.name: (s.job_name, s.cron_schedule) for s in repo.schedule_defs}
    assert schedules == {"ledger_daily_schedule": ("ledger_daily", "30 2 * * *")}
    # Alerts are assets of the ledger job: no sensor waits for UI launches to evaluate them.
    assert {s.name for s in repo.sensor_defs} == set()
    ledger_job = defs.resolve_job_def("ledger_daily")
    assert {k.to_user_string() for k in ledger_job.asset_layer.selected_asset_keys} == set(ASSETS)


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple[str, str]]]:
    """Every table's (column, type) in order, as the pipeline and the alert ledger create them."""
    path = Path(tmp_path_factory.mktemp("contracts")) / "ledger.duckdb"
    with duckdb.connect(str(path)) as conn:
        loads.ensure_tables(conn)
        alert_ledger.ensure_tables(conn)
        rows = conn.execute(
            "SELECT table_schema || '.' || table_name, column_name, data_type "
            "FROM information_schema.columns ORDER BY table_schema, table_name, ordinal_position"
        ).fetchall()
    out: dict[str, list[tuple[str, str]]] = {}
    for table, col, typ in rows:
        out.setdefault(table, []).append((col, typ))
    return out


@pytest.mark.parametrize("table", sorted(SPEC_COLUMNS))
def test_spec_mart_columns_come_first_in_spec_order(schema, table):
    cols = [c for c, _ in schema[table]]
    spec = SPEC_COLUMNS[table]
    assert cols[: len(spec)] == spec
    # Extra columns follow; none repeats or shadows a contract name.
    assert len(set(cols)) == len(cols)


@pytest.mark.parametrize("table", sorted(MONEY_COLUMNS))
def test_spec_money_columns_are_decimal_38_9(schema, table):
    types = dict(schema[table])
    assert {c: types[c] for c in MONEY_COLUMNS[table]} == {
        c: "DECIMAL(38,9)" for c in MONEY_COLUMNS[table]
    }


def test_every_spec_mart_exists(schema):
    assert [t for t in SPEC_MARTS if t not in schema] == []
