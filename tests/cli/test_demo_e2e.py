"""`byok-ledger demo` end to end through the installed console script: the default demo must
finish and its data must show every behaviour the finance report exists for (a variance,
unattributed usage, a fallback-heavy day, a budget alert, an anomaly)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from browserkit import RENDERED, run_chromium, script_errors

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path_factory.mktemp("demo") / "out"
    exe = shutil.which("byok-ledger", path=str(Path(sys.executable).parent))
    assert exe, "the byok-ledger console script is not installed in this environment"
    proc = subprocess.run(
        [exe, "demo", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return proc, out


def test_demo_finishes_and_prints_where_everything_is(demo_run) -> None:
    proc, out = demo_run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"DuckDB file  {out / 'ledger.duckdb'}" in proc.stdout
    for line in proc.stdout.splitlines():
        if line.strip().startswith(("report ", "last 7 days ")):
            assert Path(line.split()[-1]).is_file(), line
    assert "provider invoices (own accounts)" in proc.stdout
    assert "reconciliation cells:" in proc.stdout
    # The summary says what explains the variance, not only how many cells are off: the demo's
    # lost log hours are its largest unmatched variance.
    causes = proc.stdout.split("by likely cause", 1)[1].splitlines()[1:]
    assert causes and causes[0].split()[0] == "logs_missing", causes[:4]


def test_demo_data_shows_every_behaviour_the_report_is_for(demo_run) -> None:
    proc, out = demo_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    with duckdb.connect(str(out / "ledger.duckdb"), read_only=True) as c:
        off = c.execute(
            "SELECT count(*) FROM marts.reconciliation_daily "
            "WHERE status IN ('over_billed', 'under_billed')"
        ).fetchone()[0]
        assert off >= 1, "no reconciliation variance in the demo data"
        unattributed = c.execute("SELECT count(*) FROM marts.unattributed_usage").fetchone()[0]
        assert unattributed >= 1, "no unattributed usage in the demo data"
        # A fallback-heavy day: its fallback share is at least 3x the median day's.
        rates = [
            r[0]
            for r in c.execute(
                "SELECT sum(fallback_served) / sum(served) FROM marts.routing_health "
                "GROUP BY day ORDER BY 1"
            ).fetchall()
        ]
        median = rates[len(rates) // 2]
        assert rates[-1] >= 3 * median and rates[-1] > 0, rates
        kinds = {r[0] for r in c.execute("SELECT DISTINCT kind FROM marts.alerts").fetchall()}
        assert "anomaly" in kinds and "budget_threshold" in kinds, kinds
        undelivered = c.execute(
            "SELECT count(*) FROM marts.alerts WHERE delivered_at IS NULL"
        ).fetchone()[0]
        assert undelivered == 0
        violations = c.execute("SELECT count(*) FROM marts.policy_violations").fetchone()[0]
        assert violations == 0


def test_demo_report_is_self_contained_html_with_charts(demo_run) -> None:
    proc, out = demo_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    reports = sorted((out / "reports").glob("finance-20*.html"))
    assert reports, list((out / "reports").iterdir())
    html = reports[-1].read_text(encoding="utf-8")
    assert "<svg" in html
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in html
    assert "demo-secret-" not in html  # router API key secrets never reach a report


def test_demo_leaves_no_secret_in_logs_duckdb_or_reports(demo_run) -> None:
    """The demo's provider secrets are `fake-<env var>` strings (fake_providers.demo_secrets);
    none may appear in any file the demo wrote (logs, invoices, DuckDB, reports)."""
    proc, out = demo_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    leaks = []
    for path in out.rglob("*"):
        if path.is_file() and path.suffix != ".yaml":
            data = path.read_bytes()
            if (
                b"fake-acme_" in data
                or b"fake-byok_ledger_shared" in data
                or b"demo-secret-" in data
            ):
                leaks.append(str(path))
    assert not leaks, leaks


def test_demo_report_renders_in_real_chromium(demo_run, tmp_path) -> None:
    """The demo's own month report in Debian's headless Chromium: its inline script runs, no
    script error, the headline layers are on the page, and a non-blank screenshot is taken."""
    proc, out = demo_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    page = sorted((out / "reports").glob("finance-20*.html"))[-1]
    dom = run_chromium(tmp_path, page, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert script_errors(dom.stderr) == []
    assert RENDERED.search(dom.stdout)
    for text in (
        "Provider invoices (own accounts)",
        "Platform BYOK fees",
        "Platform shared-capacity credits",
        "Reconciliation",
    ):
        assert text in dom.stdout, text
    shot = tmp_path / "demo-report.png"
    res = run_chromium(tmp_path, page, f"--screenshot={shot}", "--window-size=1280,3000")
    assert res.returncode == 0 and script_errors(res.stderr) == [], res.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000
