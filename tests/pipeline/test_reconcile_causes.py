"""Reconciliation causes on a generated month with a known truth (tests/pipeline/
reconcile_truth.py): every injected friction gets its status, cause and evidence (implied
factor and first day, writer and hours, suggested identifiers) and its dollars; at least 95 %
of the injected variance dollars get the right cause; the money identity still holds; the
variance check gives one result per day; and the reconciliation alert fires once per day."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import reconcile_truth as rt
from pipeline_testkit import Ledger, materialize

D = Decimal
COLS = (
    "day, provider, account, upstream_model, expected_usd, billed_usd, variance_usd, status, "
    "likely_cause, explanation, implied_factor, cause_first_day, suggested_account, log_gap, "
    "estimated_gap_usd"
)


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("truth")
    led = Ledger(root)
    mp = pytest.MonkeyPatch()
    mp.setenv("BYOK_LEDGER_CONFIG", str(led.config))
    (root / "dagster_home").mkdir()
    mp.setenv("DAGSTER_HOME", str(root / "dagster_home"))
    full = rt.write(led)
    first = materialize(led, start="2026-10-01", end="2026-10-20")
    # The late correction's day lies before the month: built on its own, as a re-run would.
    before = materialize(led, day=rt.CORRECTION_DAY.isoformat())
    yield led, full, first, before
    mp.undo()


def _cells(led: Ledger, where: str = "TRUE", params=None) -> dict[tuple, dict]:
    names = [c.strip() for c in COLS.split(",")]
    rows = led.query(f"SELECT {COLS} FROM marts.reconciliation_daily WHERE {where}", params)
    return {r[:4]: dict(zip(names, r, strict=True)) for r in rows}


def test_runs_succeed(month):
    _, _, first, before = month
    assert first.success and before.success


def test_discount_is_a_steady_price_mismatch_since_the_first_day(month):
    led, full, _, _ = month
    cells = _cells(led, "upstream_model = ?", [rt.UPSTREAM["mini"]])
    assert len(cells) == rt.DAYS
    for key, c in cells.items():
        assert c["status"] == "under_billed", key
        assert c["likely_cause"] == "price_mismatch", key
        assert c["implied_factor"] == D("0.85")
        assert c["cause_first_day"] == rt.START
        assert c["variance_usd"] == -full[(key[0], "mini")] * D("0.15")
    last = cells[(dt.date(2026, 10, 20), "openai", rt.ACCOUNT["mini"], rt.UPSTREAM["mini"])]
    assert (
        "OpenAI bills 15.0 % less than ledger.yaml's price for gpt-4.1-mini" in last["explanation"]
    )
    assert "every day since 2026-10-01" in last["explanation"]
    assert "negotiated discount" in last["explanation"]


def test_price_drift_shows_a_changing_factor_from_its_first_day(month):
    led, full, _, _ = month
    cells = _cells(
        led, "upstream_model = ? AND account = ?", [rt.UPSTREAM["gpt41"], rt.ACCOUNT["gpt41"]]
    )
    for (day, *_), c in sorted(cells.items()):
        if day < rt.DRIFT_FROM:
            assert c["status"] == ("over_billed" if day == rt.LOST_DAY else "matched"), day
            continue
        assert c["status"] == "over_billed"
        assert c["likely_cause"] == "price_mismatch"
        assert c["cause_first_day"] == rt.DRIFT_FROM
        assert c["implied_factor"] == rt.drift_factor(day)
        assert c["variance_usd"] == full[(day, "gpt41")] * (rt.drift_factor(day) - 1)
    last = cells[(dt.date(2026, 10, 20), "openai", rt.ACCOUNT["gpt41"], rt.UPSTREAM["gpt41"])]
    assert "drifts from ledger.yaml's since 2026-10-12" in last["explanation"]
    assert "rose from 1.040 on 2026-10-12 to 1.360 on 2026-10-20" in last["explanation"]


def test_lost_log_hours_name_the_writer_hours_and_estimated_cost(month):
    led, full, _, _ = month
    cells = _cells(led, "day = ? AND likely_cause = 'logs_missing'", [rt.LOST_DAY])
    assert {k[3] for k in cells} == {rt.UPSTREAM[c] for c in ("gpt41", "sonnet", "haiku")}
    per_request = {rt.UPSTREAM[n]: usd for n, (_, usd, _) in rt.CELLS.items() if n in rt.UPSTREAM}
    for key, c in cells.items():
        lost = per_request[key[3]] * len(rt.LOST_HOURS)  # one request per hour on router-2
        assert c["status"] == "over_billed"
        assert c["variance_usd"] == lost
        assert c["estimated_gap_usd"] == lost
        assert c["log_gap"] == "router-2.jsonl 13:00–15:59 UTC (3 h)"
        assert "Log writer router-2.jsonl 13:00–15:59 UTC (3 h) wrote nothing" in c["explanation"]
    gaps = led.query(
        "SELECT day, writer, hour(gap_start), hours, typical_lines_per_hour "
        "FROM marts.reconciliation_log_gaps ORDER BY ALL"
    )
    assert gaps == [(rt.LOST_DAY, "router-2.jsonl", 13, 3, 5)]
    # The discount cell that day is logged by router-1 only: not blamed on the gap.
    mini = _cells(led, "day = ? AND upstream_model = ?", [rt.LOST_DAY, rt.UPSTREAM["mini"]])
    assert [c["likely_cause"] for c in mini.values()] == ["price_mismatch"]


def test_unmapped_account_suggests_the_identifiers_for_the_key(month):
    led, _, _, _ = month
    cells = _cells(led, "day = ? AND likely_cause = 'account_mismatch'", [rt.UNMAPPED_DAY])
    logged = cells[(rt.UNMAPPED_DAY, "openai", rt.ACCOUNT["backup"], rt.UPSTREAM["gpt41"])]
    billed = cells[(rt.UNMAPPED_DAY, "openai", rt.ACCOUNT["new_project"], rt.UPSTREAM["gpt41"])]
    assert len(cells) == 2
    assert (logged["status"], logged["billed_usd"], logged["variance_usd"]) == (
        "under_billed",
        D(0),
        -3 * rt.BACKUP_USD,
    )
    assert (billed["status"], billed["variance_usd"]) == ("unlogged_usage", 3 * rt.BACKUP_USD)
    for c in (logged, billed):
        assert c["suggested_account"] == rt.ACCOUNT["new_project"]
        assert (
            "put project_id=proj_acme_new, api_key_id=key_new in byok_keys[].account of "
            "oai-prod-backup" in c["explanation"]
        )


def test_missing_workspace_is_an_account_mismatch(month):
    led, full, _, _ = month
    cells = _cells(led, "day = ? AND provider = 'anthropic'", [rt.WORKSPACE_DAY])
    logged = cells[(rt.WORKSPACE_DAY, "anthropic", rt.ACCOUNT["sonnet"], rt.UPSTREAM["sonnet"])]
    billed = cells[
        (rt.WORKSPACE_DAY, "anthropic", rt.ACCOUNT["new_workspace"], rt.UPSTREAM["sonnet"])
    ]
    assert logged["status"] == "under_billed" and logged["billed_usd"] == 0
    assert billed["status"] == "unlogged_usage"
    assert billed["billed_usd"] == full[(rt.WORKSPACE_DAY, "sonnet")]
    for c in (logged, billed):
        assert c["likely_cause"] == "account_mismatch"
        assert c["suggested_account"] == "workspace_id=wrkspc_acme_new"
        assert "byok_keys[].account of ant-prod-primary" in c["explanation"]


def test_arrived_report_billing_nothing_is_never_matched(month):
    led, full, _, _ = month
    [c] = _cells(
        led, "day = ? AND upstream_model = ?", [rt.ZERO_DAY, rt.UPSTREAM["haiku"]]
    ).values()
    assert c["status"] == "under_billed"
    assert (c["billed_usd"], c["variance_usd"]) == (D(0), -full[(rt.ZERO_DAY, "haiku")])
    # Nothing else explains it: said plainly, counted as unexplained.
    assert c["likely_cause"] == "unknown"
    assert "bills nothing for claude-3-5-haiku-20241022" in c["explanation"]


def test_usage_outside_the_router_and_its_unattributed_row(month):
    led, _, _, _ = month
    key = (rt.OUTSIDE_DAY, "openai", rt.ACCOUNT["gpt41"], rt.UPSTREAM["4o-mini"])
    c = _cells(led, "day = ?", [rt.OUTSIDE_DAY])[key]
    assert (c["status"], c["likely_cause"], c["variance_usd"]) == (
        "unlogged_usage",
        "usage_outside_router",
        rt.OUTSIDE_USD,
    )
    rows = led.query(
        "SELECT day, upstream_model, billed_usd, likely_cause, explanation "
        "FROM marts.unattributed_usage ORDER BY day"
    )
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        (rt.UNMAPPED_DAY, rt.UPSTREAM["gpt41"], 3 * rt.BACKUP_USD, "account_mismatch"),
        (rt.OUTSIDE_DAY, rt.UPSTREAM["4o-mini"], rt.OUTSIDE_USD, "usage_outside_router"),
        (rt.WORKSPACE_DAY, rt.UPSTREAM["sonnet"], D("1.44"), "account_mismatch"),
    ]
    # No two different situations share one reason text.
    assert len({r[4] for r in rows}) == 3


def test_late_correction_before_the_window(month):
    led, _, _, _ = month
    [c] = _cells(led, "day = ?", [rt.CORRECTION_DAY]).values()
    assert (c["status"], c["likely_cause"]) == ("under_billed", "correction")
    assert (c["expected_usd"], c["billed_usd"], c["variance_usd"]) == (
        D("1.00"),
        D("0.60"),
        rt.CORRECTION_USD,
    )
    assert "A correction of -$0.40 (focus_2026-10_corrections.csv)" in c["explanation"]


def test_at_least_95_percent_of_injected_variance_gets_the_right_cause(month):
    led, _, _, _ = month
    truth = rt.truth()
    truth[(rt.CORRECTION_DAY, "bedrock", "sub_account_id=412938475610", rt.UPSTREAM["bedrock"])] = (
        "correction"
    )
    rows = led.query(
        "SELECT day, provider, account, upstream_model, abs(variance_usd), likely_cause "
        "FROM marts.reconciliation_daily WHERE status <> 'matched'"
    )
    found = {r[:4]: (r[4], r[5]) for r in rows}
    injected = sum(found[k][0] for k in truth)
    right = sum(found[k][0] for k, cause in truth.items() if found[k][1] == cause)
    assert injected > D("10")
    assert right / injected >= D("0.95"), (right, injected)
    # Every unmatched cell is an injected one (plus the billed-nothing day): nothing spurious.
    extra = set(found) - set(truth)
    assert extra == {(rt.ZERO_DAY, "anthropic", "workspace_id=default", rt.UPSTREAM["haiku"])}


def test_every_unmatched_cell_has_a_cause_and_a_sentence(month):
    led, _, _, _ = month
    assert led.query(
        "SELECT count(*) FROM marts.reconciliation_daily WHERE status <> 'matched' "
        "AND (likely_cause IS NULL OR explanation IS NULL OR explanation NOT LIKE '%.')"
    ) == [(0,)]
    assert led.query(
        "SELECT count(*) FROM marts.reconciliation_daily WHERE status = 'matched' "
        "AND (likely_cause IS NOT NULL OR variance_usd IS NULL)"
    ) == [(0,)]


def test_money_identity_holds_through_the_frictions(month):
    led, _, _, _ = month
    split = dict(
        led.query(
            "SELECT day, sum(provider_billed_usd) FROM marts.split_billing_daily "
            "WHERE provider <> '_platform' GROUP BY day"
        )
    )
    usage = dict(
        led.query(
            "SELECT day, sum(BilledCost) FROM staging.invoice_lines WHERE x_Provider <> '_platform' "
            "AND ChargeCategory = 'Usage' GROUP BY day"
        )
    )
    assert split == usage
    billed = dict(
        led.query("SELECT day, sum(billed_usd) FROM marts.reconciliation_daily GROUP BY day")
    )
    assert billed == usage


def test_variance_check_reports_each_day_separately(month):
    _, _, first, _ = month
    evs = [
        e
        for e in first.get_asset_check_evaluations()
        if e.check_name == "variance_within_tolerance"
    ]
    by_day = {e.partition: e.passed for e in evs}
    assert len(evs) == rt.DAYS and len(by_day) == rt.DAYS
    # Every day has the discount cell: every day fails, each on its own partition.
    assert set(by_day.values()) == {False}
    assert set(by_day) == {d.isoformat() for d in rt.days()}


def test_reconciliation_alert_once_per_day_over_min_impact(month):
    import duckdb

    from pipeline.alerts.reconciliation import evaluate_reconciliation
    from routing_core.config import load_config

    led, _, _, _ = month
    cfg = load_config(led.config)
    with duckdb.connect(str(led.duckdb), read_only=True) as conn:
        quiet = evaluate_reconciliation(conn, cfg, dt.date(2026, 10, 20), 31)
        low = cfg.model_copy(
            update={"alerts": cfg.alerts.model_copy(update={"min_impact_usd": D("0.40")})}
        )
        fired = evaluate_reconciliation(conn, low, dt.date(2026, 10, 20), 31)
        again = evaluate_reconciliation(conn, low, dt.date(2026, 10, 20), 31)
    # Only ZERO_DAY has unexplained variance ($0.48): above $0.40, below Acme's $20.
    assert quiet == []
    assert [(a.kind, a.period) for a in fired] == [("reconciliation", "day:2026-10-17")]
    assert fired[0].payload["unexplained_usd"] == D("0.48")
    assert "claude-3-5-haiku-20241022" in fired[0].message
    assert [a.alert_id for a in again] == [a.alert_id for a in fired]


def test_rerunning_one_day_reports_only_that_day_and_changes_nothing(month):
    led, _, _, _ = month
    before = led.query("SELECT * FROM marts.reconciliation_daily ORDER BY ALL")
    again = materialize(led, day="2026-10-05")
    assert again.success
    evs = [
        (e.check_name, e.partition)
        for e in again.get_asset_check_evaluations()
        if e.check_name in ("variance_within_tolerance", "split_billing_adds_up")
    ]
    # The re-run's results are keyed to its own day: the other 19 days' results stand.
    assert sorted(evs) == [
        ("split_billing_adds_up", "2026-10-05"),
        ("variance_within_tolerance", "2026-10-05"),
    ]
    assert led.query("SELECT * FROM marts.reconciliation_daily ORDER BY ALL") == before


def test_reconciliation_alert_is_recorded_and_delivered_once(month):
    import yaml

    from pipeline.alerts import evaluate_alerts
    from pipeline.alerts.receiver import WebhookReceiver
    from routing_core.config import load_config

    led, _, _, _ = month
    doc = yaml.safe_load(led.config.read_text())
    doc.setdefault("alerts", {})["min_impact_usd"] = "0.40"
    low = led.root / "ledger-low-impact.yaml"  # same folder: same data paths
    low.write_text(yaml.safe_dump(doc, sort_keys=False))
    cfg = load_config(low)
    with WebhookReceiver() as hook:
        first = evaluate_alerts(
            cfg, as_of=dt.date(2026, 10, 20), window_days=31, webhook_url=hook.url
        )
        second = evaluate_alerts(
            cfg, as_of=dt.date(2026, 10, 20), window_days=31, webhook_url=hook.url
        )
    sent = [b for b in hook.received if b.get("kind") == "reconciliation"]
    assert len(sent) == 1
    assert "2026-10-17" in sent[0]["text"] and "$0.48" in sent[0]["text"]
    assert [a.kind for a in first.delivered if a.kind == "reconciliation"] == ["reconciliation"]
    assert not [a for a in second.delivered if a.kind == "reconciliation"]
    assert led.query("SELECT count(*) FROM marts.alerts WHERE kind = 'reconciliation'") == [(1,)]
