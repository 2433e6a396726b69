"""`byok-ledger report` through the CLI entry point: paths printed, clear errors."""

from __future__ import annotations

import os
from pathlib import Path

from byok_ledger.cli import main

from .conftest import write_config


def test_report_cli_renders_month_and_rolling_view(report_env, capsys):
    assert main(["report", "--config", str(report_env.source), "--month", "2026-11"]) == 0
    out = capsys.readouterr().out.split()
    assert [Path(p).name for p in out] == ["finance-2026-11.html", "finance-last-7-days.html"]
    assert all(Path(p).parent == report_env.reports_dir and Path(p).exists() for p in out)
    # Readable like any file the user writes (the temporary file it comes from is 0600).
    umask = os.umask(0o022)
    os.umask(umask)
    assert {Path(p).stat().st_mode & 0o777 for p in out} == {0o666 & ~umask}


def test_report_cli_without_duckdb_says_run_first(tmp_path, capsys):
    cfg = write_config(tmp_path)
    assert main(["report", "--config", str(cfg.source), "--month", "2026-11"]) == 2
    err = capsys.readouterr().err
    assert "ledger.duckdb does not exist" in err and "run `byok-ledger run" in err
    assert not cfg.reports_dir.exists()


def test_report_cli_bad_month_and_bad_config(report_env, tmp_path, capsys):
    assert main(["report", "--config", str(report_env.source), "--month", "2026-13"]) == 2
    assert "is not YYYY-MM" in capsys.readouterr().err
    # A month without its leading zero would name the file finance-2026-9.html: refused.
    assert main(["report", "--config", str(report_env.source), "--month", "2026-9"]) == 2
    assert "is not YYYY-MM" in capsys.readouterr().err
    assert main(["report", "--config", str(tmp_path / "nope.yaml"), "--month", "2026-11"]) == 2
    assert "config file not found" in capsys.readouterr().err


def test_report_cli_months_at_the_edges_of_the_calendar(report_env, capsys):
    # 9999-12 used to end in an OverflowError traceback (there is no month after it).
    for month in ("9999-12", "9999-01", "1970-01"):
        assert main(["report", "--config", str(report_env.source), "--month", month]) == 2
        err = capsys.readouterr().err
        assert f"no billing data for {month}" in err and "Traceback" not in err
    for month in ("0000-01", "10000-01", "-2026-11", "2026-00", "２０２６-11"):
        assert main(["report", "--config", str(report_env.source), f"--month={month}"]) == 2
        assert "is not YYYY-MM" in capsys.readouterr().err
