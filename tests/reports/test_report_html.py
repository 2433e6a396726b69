"""The finance report's content: headline totals computed by hand from the fixture rows,
escaping of hostile names, self-containment, the rolling view and missing optional marts."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from martkit import create_marts

from reports.data import ReportError
from reports.formatting import change, pct, usd, usd_short
from reports.render import render_last_days, render_month

from .conftest import EVIL_APP, EVIL_MODEL, build_marts, write_config  # noqa: F401


def card(html: str, layer: str) -> str:
    """The text of one headline card (value and change line)."""
    m = re.search(rf'data-layer="{layer}">(.*?)</div>', html, re.S)
    assert m, f"no headline card for {layer}"
    return re.sub(r"<[^>]+>", " ", m.group(1))


def test_month_headline_totals_match_hand_computed(report_env):
    html = render_month(report_env, "2026-11").read_text()
    # November by hand (conftest.split_rows): 10 days x $10 BYOK provider + $2 unattributed;
    # 10 x $0.50 fee; 10 x ($4 + $1) credits. October (2 days): $20, $1, $10, $31.
    # 10 days against 2: the changes compare per-day averages (total +406.5 % would mislead).
    assert "$102.00" in card(html, "provider_usd") and "+2.0% per day" in card(html, "provider_usd")
    assert "$5.00" in card(html, "fee_usd") and "+0.0% per day" in card(html, "fee_usd")
    assert "$50.00" in card(html, "credits_usd") and "($5.00/day over 2 days)" in card(
        html, "credits_usd"
    )
    assert "$157.00" in card(html, "total_usd") and "+1.3% per day" in card(html, "total_usd")
    assert "406.5" not in html
    assert "<strong>Unequal periods:</strong> this period has data for 10 days" in html
    assert "<strong>$21.00</strong> is still the router" in html  # Nov 9-10 not invoiced
    assert "2,200 requests over 10 days" in html


def test_month_sections_show_what_to_do(report_env):
    html = render_month(report_env, "2026-11").read_text()
    for status in ("over_billed", "missing_invoice", "unlogged_usage"):
        assert f'<span class="badge {status}">{status.replace("_", " ")}</span>' in html
    assert "dispute with the provider" in html  # over_billed action
    assert "$2.00 of invoice cost has no logged request behind it" in html
    assert "$0.1750" in html  # cost per accepted output: $10.50 / 60
    assert "no accepted output" in html
    assert "Fallback-heavy day: 2026-11-05 (40.0% of served requests were fallbacks" in html
    assert "BYOK share of routed spend: <strong>67.7%</strong>" in html  # 105 / 155
    assert "-$25.00" in html  # the Bedrock credit, beside the totals
    # Budgets and alerts come from the ledger `byok-ledger alerts` wrote.
    assert "openai-monthly" in html and "118.9%" in html  # $107 of $90
    assert "reached 100%" in html and "No policy violations" in html
    assert html.count('role="img"') == 5  # daily, workload, share, 2 burn-downs


def test_values_from_data_are_escaped(report_env):
    html = render_month(report_env, "2026-11").read_text()
    assert EVIL_MODEL not in html and EVIL_APP not in html
    assert "&lt;script&gt;alert(&#34;model&#34;)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert html.count("<script") == 1  # only the report's own render check


def test_report_is_self_contained(report_env):
    html = render_month(report_env, "2026-11").read_text()
    # Nothing is fetched: no external scripts, styles, fonts or images.
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', html)
    assert "@import" not in html and "url(" not in html
    assert "@media print" in html


def test_rolling_last_seven_days(report_env):
    path = render_last_days(report_env)
    assert path.name == "finance-last-7-days.html"
    html = path.read_text()
    # Nov 4-10: 7 x $10 provider, 7 x $0.50 fee, 7 x $5 credits; previous 7 days (Oct 28 -
    # Nov 3) hold Oct 30 - Nov 3: $52, $2.50, $25, $79.50.
    # 7 days of data against 5: per-day averages ($10.00 vs $10.40), not +34.6 % on totals.
    assert "$70.00" in card(html, "provider_usd")
    assert "-3.8% per day vs previous 7 days ($10.40/day over 5 days)" in card(html, "provider_usd")
    assert "$108.50" in card(html, "total_usd") and "-2.5% per day" in card(html, "total_usd")
    assert "Last 7 days to 2026-11-10" in html
    assert "this period has data for 7 days, the previous 7 days for 5" in html


def test_missing_optional_marts_are_explained(tmp_path):
    cfg = write_config(tmp_path, budgets=[])
    with duckdb.connect(str(cfg.duckdb_path)) as c:
        create_marts(c)
        c.execute("DROP TABLE marts.routing_health; DROP TABLE marts.cost_per_accepted_output")
    build_rows_only(cfg.duckdb_path)
    html = render_month(cfg, "2026-11").read_text()
    assert "marts.routing_health is not built yet" in html
    assert "Budgets have not been evaluated yet" in html and "No alert ledger yet" in html


def build_rows_only(path: Path) -> None:
    from .conftest import split_rows

    with duckdb.connect(str(path)) as c:
        c.executemany(
            "INSERT INTO marts.split_billing_daily VALUES (" + ",".join(["?"] * 24) + ")",
            split_rows(),
        )


def test_month_without_data_is_an_error(report_env):
    with pytest.raises(
        ReportError, match=r"no billing data for 2026-05 .*2026-10-30\.\.2026-11-10"
    ):
        render_month(report_env, "2026-05")
    with pytest.raises(ReportError, match="YYYY-MM"):
        render_month(report_env, "November")


def test_missing_duckdb_and_marts_are_errors(tmp_path):
    cfg = write_config(tmp_path)
    with pytest.raises(ReportError, match="does not exist: run `byok-ledger run"):
        render_month(cfg, "2026-11")
    duckdb.connect(str(cfg.duckdb_path)).close()
    with pytest.raises(
        ReportError, match="no marts.split_billing_daily, marts.reconciliation_daily"
    ):
        render_month(cfg, "2026-11")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("1234.565"), "$1,234.57"),
        (Decimal("-3.2"), "-$3.20"),  # the one money spelling: hyphen minus (routing_core.money)
        (Decimal("0.0042"), "$0.0042"),  # not shown as $0.00
        (Decimal("0"), "$0.00"),
        (None, "—"),
    ],
)
def test_usd(value, expected):
    assert usd(value) == expected


def test_changes_and_ticks():
    assert change(Decimal(110), Decimal(100)) == "+10.0%"
    assert change(Decimal(90), Decimal(100)) == "-10.0%"
    assert change(Decimal(5), Decimal(0)) == "new"
    assert pct(Decimal("12.345")) == "12.3%" and pct(None) == "—"
    assert [usd_short(Decimal(v)) for v in ("1250", "1000", "350", "0.25")] == [
        "$1.25k",
        "$1k",
        "$350",
        "$0.25",
    ]
    # A $2.50 grid step keeps its cents instead of reading $0, $3, $5, $8.
    assert [usd_short(Decimal(v)) for v in ("0", "2.5", "5.0", "7.50", "12.5", "0.375")] == [
        "$0",
        "$2.50",
        "$5",
        "$7.50",
        "$12.50",
        "$0.375",
    ]


def test_needs_attention_summary(report_env):
    html = render_month(report_env, "2026-11").read_text()
    summary = html.split("Needs attention:", 1)[1].split("</ul>", 1)[0]
    # over_billed $3 (unknown cause) + unlogged_usage $2 (usage outside the router); the two
    # missing-invoice days have no variance yet and are counted on their own line.
    assert (
        "2 reconciliation cells (day × provider × account × model) off by $5.00 in total: "
        "$2.00 with a likely cause, $3.00 unexplained" in summary
    )
    assert "2 cells with $20.00 of logged cost whose invoice has not arrived" in summary
    assert "$2.00 of invoice cost with no logged request" in summary
    assert "1 budget period over the limit: openai-monthly" in summary


def test_byok_fee_free_allowance_is_explained(report_env, tmp_path):
    # Without an allowance every BYOK day carries a fee: nothing to explain.
    assert "BYOK fee only after" not in render_month(report_env, "2026-11").read_text()
    platform = {"name": "OpenRouter", "byok_fee_pct": "5", "byok_free_allowance_usd": "100"}
    (tmp_path / "allowance").mkdir()
    cfg = write_config(tmp_path / "allowance", platform=platform)
    build_marts(cfg.duckdb_path)
    text = " ".join(render_month(cfg, "2026-11").read_text().split())
    assert "OpenRouter charges its 5% BYOK fee only after the first $100.00 of BYOK" in text


def test_quiet_daily_budget_periods_are_summarised_not_listed(report_env):
    """A daily budget makes a row a day; only the current day and those at 50 %+ are listed,
    the rest are counted in one line (while 'needs attention' still sees every period)."""
    with duckdb.connect(str(report_env.duckdb_path)) as conn:
        cols = [r[0] for r in conn.execute("DESCRIBE marts.budget_status").fetchall()]
        template = dict(
            zip(
                cols,
                conn.execute("SELECT * FROM marts.budget_status LIMIT 1").fetchone(),
                strict=True,
            )
        )
        for day, spent, current in ((3, "1", False), (4, "30", False), (5, "2", True)):
            row = dict(template)
            row.update(
                budget_id="quiet-daily",
                scope="workload",
                match="w",
                period="daily",
                period_start=dt.date(2026, 11, day),
                period_end=dt.date(2026, 11, day),
                spent_usd=Decimal(spent),
                limit_usd=Decimal("40"),
                pct=Decimal(spent) * 100 / 40,
                is_current=current,
            )
            conn.execute(
                f"INSERT INTO marts.budget_status ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                [row[c] for c in cols],
            )
    text = re.sub(r"<[^>]+>", " ", render_month(report_env, "2026-11").read_text())
    listed = re.findall(r"quiet-daily\s+workload\s+w\s+daily (2026-11-\d\d)", text)
    assert sorted(listed) == ["2026-11-04", "2026-11-05"]  # 75 % used, and the current day
    assert "1 earlier daily period under 50 % used not listed (quiet-daily" in text


def test_needs_attention_when_every_variance_has_a_cause(report_env):
    with duckdb.connect(str(report_env.duckdb_path)) as conn:
        conn.execute(
            "UPDATE marts.reconciliation_daily SET likely_cause = 'price_mismatch' "
            "WHERE likely_cause = 'unknown'"
        )
    html = render_month(report_env, "2026-11").read_text()
    summary = html.split("Needs attention:", 1)[1].split("</ul>", 1)[0]
    assert "off by $5.00 in total: every dollar with a likely cause" in summary
    assert "unexplained" not in summary
    recon = html.split("data-recon-summary>", 1)[1].split("</p>", 1)[0]
    assert "$3.00 price mismatch" in recon and "unexplained" not in recon
