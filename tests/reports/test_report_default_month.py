"""`byok-ledger report` without --month renders the last month with data in the ledger."""

from __future__ import annotations

from pathlib import Path

import duckdb

from byok_ledger.cli import main

from .conftest import write_config


def test_report_without_month_renders_the_last_month_with_data(report_env, capsys):
    with duckdb.connect(str(report_env.duckdb_path), read_only=True) as c:
        [(last,)] = c.execute("SELECT max(day) FROM marts.split_billing_daily").fetchall()
    assert main(["report", "--config", str(report_env.source)]) == 0
    out = capsys.readouterr().out.split()
    assert Path(out[0]).name == f"finance-{last:%Y-%m}.html"
    assert Path(out[0]).exists()


def test_report_without_month_on_an_empty_ledger_says_run_first(tmp_path, capsys):
    cfg = write_config(tmp_path)
    assert main(["report", "--config", str(cfg.source)]) == 2
    err = capsys.readouterr().err
    assert "byok-ledger run" in err and "Traceback" not in err
