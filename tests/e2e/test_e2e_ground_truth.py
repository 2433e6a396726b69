"""The whole chain against its ground truth: a small router-engine simulation (every friction
on), the ledger pipeline over it on a temporary DuckDB (`pipeline.loads.run_all`, the same
functions the Dagster assets call), then every friction and total the simulator's
`ground_truth.json` states is looked for in the marts (SPEC §7-8, docs/simulator.md).

The run crosses a month end (2026-10-29 .. 2026-11-03) so the FOCUS late correction lands
in the simulated range (a day of October, in November's file)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipeline.loads import DayRange, run_all
from routing_core.config import LedgerConfig, load_config
from simulator.run import run_simulation

ROOT = Path(__file__).resolve().parents[2]
ACME = ROOT / "examples" / "acme" / "ledger.yaml"
CENT = Decimal("0.005")  # SPEC §8: "to the cent"
# Provider rounding on a cell (OpenAI 1e-6 $ per line, Anthropic 0.01 cent per line, FOCUS
# 6-8 dp) keeps billed within a few thousandths of a dollar of the router's estimate.
ROUNDING = Decimal("0.01")


@dataclass
class Chain:
    out: Path
    cfg: LedgerConfig
    m: dict[str, Any]
    conn: duckdb.DuckDBPyConnection

    def rows(self, sql: str, params: Any = None) -> list[tuple]:
        return self.conn.execute(sql, params).fetchall()


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("e2e")
    r = run_simulation(
        ACME,
        out,
        days=6,
        requests_per_day=60,
        seed=11,
        start="2026-10-29",
        progress=False,
        engine="router",
    )
    cfg = load_config(r.config_path)
    assert cfg.duckdb_path.parent == out  # a temporary DuckDB, never the repo's
    conn = duckdb.connect(str(cfg.duckdb_path))
    run_all(conn, cfg, DayRange(r.start, r.end))
    conn.close()
    m = json.loads(r.manifest_path.read_text(encoding="utf-8"), parse_float=Decimal)
    ro = duckdb.connect(str(cfg.duckdb_path), read_only=True)
    try:
        yield Chain(out, cfg, m, ro)
    finally:
        ro.close()


def _friction(c: Chain, name: str) -> dict[str, Any]:
    info = c.m["frictions"][name]
    assert info, f"the simulation did not produce the {name} friction (test precondition)"
    return info


def test_every_day_split_billing_adds_up_to_invoices_with_corrections_plus_statement(chain):
    by_day = chain.m["totals_by_day"]
    rows = chain.rows(
        """SELECT CAST(day AS VARCHAR), bool_and(status = 'invoiced'),
                  sum(coalesce(provider_billed_usd, 0) + platform_fee_usd + platform_credits_usd)
           FROM marts.split_billing_daily GROUP BY day ORDER BY day"""
    )
    got = {d: total for d, _, total in rows}
    assert sorted(got) == sorted(d for d in by_day if chain.m["start"] <= d <= chain.m["end"])
    assert all(invoiced for _, invoiced, _ in rows), rows
    for day, want in by_day.items():
        expected = want["invoice_with_corrections_plus_statement_usd"]
        assert abs(got[day] - expected) < CENT, (day, got[day], want)
    # The correction is really inside: on its day the before-corrections sum is off by it.
    corr = _friction(chain, "late_correction")
    d = corr["charge_day"]
    assert by_day[d]["invoice_corrections_usd"] == corr["usd"] < 0
    before = by_day[d]["invoice_usage_usd"] + by_day[d]["statement_usage_usd"]
    assert abs(got[d] - before - corr["usd"]) < CENT


def test_billed_usage_per_provider_and_day_matches_the_manifest(chain):
    """Reconciliation's billed (Usage lines with corrections) per provider × day: credits
    never inside, the correction on its ChargePeriod day."""
    got = {
        (p, d): v
        for p, d, v in chain.rows(
            """SELECT provider, CAST(day AS VARCHAR), sum(billed_usd)
               FROM marts.reconciliation_daily GROUP BY ALL"""
        )
    }
    want = {
        (p, d): v
        for p, inv in chain.m["invoices"].items()
        for d, v in inv["usage_with_corrections_usd_by_day"].items()
    }
    assert want
    for k, v in want.items():
        assert abs(got.get(k, Decimal(0)) - v) < CENT, (k, got.get(k), v)
    for k, v in got.items():
        assert k in want or v == 0, (k, v)


def test_late_correction_lands_on_its_charge_period_cell(chain):
    corr = _friction(chain, "late_correction")
    assert corr["billing_month"] != corr["charge_day"][:7]  # issued in a later month
    rows = chain.rows(
        """SELECT corrections_usd FROM marts.reconciliation_daily
           WHERE CAST(day AS VARCHAR) = ? AND provider = ? AND upstream_model = ?
             AND corrections_usd <> 0""",
        [corr["charge_day"], corr["provider"], corr["upstream_model"]],
    )
    assert rows == [(corr["usd"],)]
    assert chain.rows(
        "SELECT count(*) FROM marts.reconciliation_daily WHERE corrections_usd <> 0"
    ) == [(1,)]


def test_direct_key_usage_is_exactly_the_unattributed_invoice_usage(chain):
    du = _friction(chain, "direct_usage")
    rows = chain.rows(
        """SELECT CAST(day AS VARCHAR), provider, key_id, upstream_model, account, billed_usd
           FROM marts.unattributed_usage WHERE source = 'provider_invoice'"""
    )
    # Every lost-logs cell keeps some logged requests in this run, so the only invoice cost
    # nothing logged explains is the key used outside the router.
    assert len(rows) == 1, rows
    day, provider, key_id, upstream, account, billed = rows[0]
    assert (day, provider, key_id, upstream) == (
        du["day"],
        du["provider"],
        du["key_id"],
        du["upstream_model"],
    )
    for k, v in du["account"].items():
        assert f"{k}={v}" in account.split(";"), (account, du["account"])
    assert billed == du["billed_usd"] > 0
    status = chain.rows(
        """SELECT status, expected_usd FROM marts.reconciliation_daily
           WHERE CAST(day AS VARCHAR) = ? AND provider = ? AND upstream_model = ? AND account = ?""",
        [day, provider, upstream, account],
    )
    assert status == [("unlogged_usage", Decimal(0))]


def test_lost_log_hours_show_as_billed_above_expected_on_their_cells(chain):
    lost = _friction(chain, "lost_logs")
    drift = chain.m["frictions"]["price_drift"] or {}
    tol_usd = chain.cfg.pipeline.variance_tolerance_usd
    tol_pct = chain.cfg.pipeline.variance_tolerance_pct
    cells = lost["byok_provider_usd_by_cell"]
    assert cells
    over = 0
    for cell in cells:
        rows = chain.rows(
            """SELECT expected_usd, variance_usd, status FROM marts.reconciliation_daily
               WHERE CAST(day AS VARCHAR) = ? AND provider = ? AND upstream_model = ?
                 AND list_contains(string_split(key_ids, ','), ?)""",
            [cell["day"], cell["provider"], cell["upstream_model"], cell["key_id"]],
        )
        assert len(rows) == 1, (cell, rows)
        expected, variance, status = rows[0]
        drifted = (
            drift.get("upstream_model") == cell["upstream_model"]
            and cell["day"] >= drift["from_day"]
        )
        if not drifted:  # billed above expected by what the lost lines would have estimated
            assert abs(variance - cell["provider_usd"]) < ROUNDING, (cell, variance)
        beyond = cell["provider_usd"] > tol_usd and (
            expected == 0 or cell["provider_usd"] * 100 > tol_pct * expected
        )
        if beyond:
            assert status == "over_billed", (cell, rows[0])
            over += 1
    assert over >= 1, "no lost-logs cell exceeds the variance tolerance: a weak run"


def test_duplicates_dropped_once_and_staging_counts_the_logged_requests(chain):
    dup = _friction(chain, "duplicate_lines")
    counts = chain.m["counts"]
    n, distinct = chain.rows("SELECT count(*), count(DISTINCT request_id) FROM staging.requests")[0]
    assert n == distinct == counts["requests_in_logs_after_frictions"]
    assert counts["requests_in_logs_after_frictions"] < counts["requests_logged_before_frictions"]
    ids = dup["request_ids"]
    assert chain.rows(
        "SELECT count(*) FROM staging.requests WHERE list_contains(?, request_id)", [ids]
    ) == [(len(ids),)]
    assert chain.rows(
        "SELECT sum(duplicates_dropped) FROM raw.load_stats WHERE source = 'requests'"
    ) == [(dup["count"],)]
    lines = chain.rows("SELECT sum(lines_read) FROM raw.load_stats WHERE source = 'requests'")
    assert lines == [(counts["request_lines_in_logs_after_frictions"],)]
    lost = _friction(chain, "lost_logs")
    assert chain.rows(
        "SELECT count(*) FROM staging.requests WHERE list_contains(?, request_id)",
        [lost["request_ids"]],
    ) == [(0,)]


def test_malformed_line_is_quarantined_with_its_file_and_line(chain):
    bad = _friction(chain, "malformed_line")
    rows = chain.rows("SELECT file, line, torn, error FROM raw.rejected_records")
    assert len(rows) == 1, rows
    file, line, torn, error = rows[0]
    assert Path(file).resolve() == (chain.out / bad["file"]).resolve()
    assert line == bad["line"]
    assert torn is False and error


def test_credit_is_a_non_usage_charge_not_usage(chain):
    credit = _friction(chain, "credit")
    rows = chain.rows(
        """SELECT CAST(day AS VARCHAR), provider, charge_category, billed_usd
           FROM marts.non_usage_charges"""
    )
    assert rows == [(credit["day"], credit["provider"], "Credit", credit["usd"])]
    assert chain.rows(
        """SELECT count(*) FROM staging.invoice_lines
           WHERE ChargeCategory = 'Credit' AND BilledCost = ?""",
        [credit["usd"]],
    ) == [(1,)]
    # Not in usage: the provider's billed usage that day is the manifest's usage, credit-free.
    usage = chain.m["invoices"][credit["provider"]]["usage_with_corrections_usd_by_day"]
    billed = chain.rows(
        """SELECT coalesce(sum(billed_usd), 0) FROM marts.reconciliation_daily
           WHERE CAST(day AS VARCHAR) = ? AND provider = ?""",
        [credit["day"], credit["provider"]],
    )[0][0]
    assert abs(billed - usage.get(credit["day"], Decimal(0))) < CENT
    assert billed >= 0


def test_simulated_frictions_get_their_cause(chain):
    """The simulator's own frictions, explained: its late correction as `correction`, its
    direct key use as `usage_outside_router` (in the reconciliation cell and the unattributed
    row), and no other cell of those days blamed on them."""
    corr = _friction(chain, "late_correction")
    rows = chain.rows(
        """SELECT status, likely_cause, explanation FROM marts.reconciliation_daily
           WHERE CAST(day AS VARCHAR) = ? AND provider = ? AND upstream_model = ?
             AND corrections_usd <> 0""",
        [corr["charge_day"], corr["provider"], corr["upstream_model"]],
    )
    [(status, cause, why)] = rows
    assert status != "matched" and cause == "correction"
    assert "A correction of" in why
    du = _friction(chain, "direct_usage")
    [(cause, why)] = chain.rows(
        """SELECT likely_cause, explanation FROM marts.reconciliation_daily
           WHERE CAST(day AS VARCHAR) = ? AND provider = ? AND upstream_model = ?
             AND status = 'unlogged_usage'""",
        [du["day"], du["provider"], du["upstream_model"]],
    )
    assert cause == "usage_outside_router" and "outside the router" in why
    assert chain.rows(
        """SELECT DISTINCT likely_cause FROM marts.unattributed_usage
           WHERE CAST(day AS VARCHAR) = ? AND provider = ? AND upstream_model = ?""",
        [du["day"], du["provider"], du["upstream_model"]],
    ) == [("usage_outside_router",)]
    # Every cell that did not match carries a cause and a sentence.
    assert chain.rows(
        "SELECT count(*) FROM marts.reconciliation_daily WHERE status <> 'matched' "
        "AND (likely_cause IS NULL OR explanation IS NULL)"
    ) == [(0,)]
