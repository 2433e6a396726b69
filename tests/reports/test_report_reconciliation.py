"""The report's reconciliation section on the generated month with a known truth
(tests/pipeline/reconcile_truth.py): the dollars per cause and the unexplained rest, each
cell's explanation and action, and the count of requests with estimated or clamped usage."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import duckdb
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipeline"))

import reconcile_truth as rt  # noqa: E402
from pipeline_testkit import Ledger, materialize  # noqa: E402

from reports.render import render_month  # noqa: E402
from routing_core.config import load_config  # noqa: E402


@pytest.fixture(scope="module")
def october(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("truth-report")
    led = Ledger(root)
    mp = pytest.MonkeyPatch()
    mp.setenv("BYOK_LEDGER_CONFIG", str(led.config))
    (root / "dagster_home").mkdir()
    mp.setenv("DAGSTER_HOME", str(root / "dagster_home"))
    rt.write(led)
    assert materialize(led, start="2026-10-01", end="2026-10-20").success
    # Two requests flagged as estimated and one as clamped by the router (usage_source).
    with duckdb.connect(str(led.duckdb)) as conn:
        conn.execute("ALTER TABLE staging.requests ADD COLUMN IF NOT EXISTS usage_source VARCHAR")
        conn.execute(
            "UPDATE staging.requests SET usage_source = CASE request_id "
            "WHEN '1001-router-1-gpt41-00' THEN 'estimated' "
            "WHEN '1001-router-1-gpt41-01' THEN 'estimated' "
            "WHEN '1001-router-1-mini-00' THEN 'clamped' ELSE usage_source END"
        )
    cfg = load_config(led.config)
    html = render_month(cfg, "2026-10").read_text(encoding="utf-8")
    yield html
    mp.undo()


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_summary_gives_dollars_per_cause_and_the_unexplained_rest(october):
    m = re.search(r"<p[^>]*data-recon-summary>(.*?)</p>", october, re.S)
    assert m, "no reconciliation summary"
    text = _text(m.group(1))
    # Discount 20 x $0.072 + drift $2.40 x 4 % x (1 + ... + 9) = $1.44 + $4.32.
    assert "$11.49 of variance in 38 cells" in text
    assert "$5.76 price mismatch" in text
    assert "$3.48 account mismatch" in text  # 2 x $0.30 + 2 x $1.44
    assert "$1.50 usage outside the router" in text
    assert "$0.27 logs missing" in text  # $0.15 + $0.09 + $0.03
    assert "$0.48 unexplained" in text  # the billed-nothing day


def test_cells_by_impact_with_explanation_and_action(october):
    table = october.split('data-table="recon-variances"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr>(.*?)</tr>", table, re.S)[1:]
    first = _text(rows[0])
    assert "gpt-4.1-2025-04-14" in first and "price mismatch" in first
    assert "drifts from ledger.yaml" in first and "update the model" in first
    text = _text(table)
    assert "bills 15.0 % less than ledger.yaml" in text
    assert "put workspace_id=wrkspc_acme_new in byok_keys[].account of ant-prod-primary" in text
    assert "Log writer router-2.jsonl 13:00–15:59 UTC (3 h) wrote nothing" in text
    # Largest variance first.
    amounts = [
        float(re.findall(r"-?\$[\d,.]+", _text(r))[-1].replace("$", "").replace(",", ""))
        for r in rows
    ]
    assert [abs(a) for a in amounts] == sorted((abs(a) for a in amounts), reverse=True)


def test_headline_counts_the_reconciliation_work(october):
    summary = october.split("Needs attention:", 1)[1].split("</ul>", 1)[0]
    assert "38 reconciliation cells" in summary
    assert "$11.01 with a likely cause, $0.48 unexplained" in summary


def test_estimated_and_clamped_usage_is_counted(october):
    m = re.search(r"<p[^>]*data-usage-sources>(.*?)</p>", october, re.S)
    assert m
    text = _text(m.group(1))
    assert text.strip().startswith("2 requests had no usage from the provider")
    assert "and 1 reported usage out of range" in text


def test_finance_terms_are_spelled_out(october):
    for term in ("BYOK (bring your own key)", "ZDR (zero data retention)", "Upstream model"):
        assert term in october
