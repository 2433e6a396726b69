"""`byok-ledger alerts` end to end through the CLI entry point."""

from __future__ import annotations

import datetime as dt

from martkit import CHAT_MONTHLY_BUDGET as BUDGET
from martkit import NO_ANOMALIES

from byok_ledger.cli import main


def test_alerts_cli_dry_run_then_real_run(make_cfg, marts, receiver, tmp_path, capsys):
    marts.add(dt.date(2026, 11, 1), "120")
    make_cfg(budgets=[BUDGET], alerts={**NO_ANOMALIES, "webhook_url": receiver.url})
    cfg = str(tmp_path / "ledger.yaml")

    assert main(["alerts", "--config", cfg, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "evaluated 2, new 2, delivered 0, failed 0 (dry run" in out
    assert out.count("new (not sent)") == 2 and receiver.received == []

    assert main(["alerts", "--config", cfg]) == 0
    out = capsys.readouterr().out
    assert "evaluated 2, new 2, delivered 2, failed 0" in out
    assert out.count("delivered") >= 3 and "budget_threshold" in out
    assert len(receiver.received) == 2

    assert main(["alerts", "--config", cfg]) == 0
    assert "new 0, delivered 0" in capsys.readouterr().out


def test_alerts_cli_without_duckdb_says_run_first(make_cfg, tmp_path, capsys):
    make_cfg()
    assert main(["alerts", "--config", str(tmp_path / "ledger.yaml")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "byok-ledger run" in err


def test_alerts_cli_without_marts_says_run_first(make_cfg, tmp_path, capsys):
    import duckdb

    make_cfg()
    duckdb.connect(str(tmp_path / "ledger.duckdb")).close()
    assert main(["alerts", "--config", str(tmp_path / "ledger.yaml")]) == 2
    assert "no marts.split_billing_daily" in capsys.readouterr().err


def test_alerts_cli_reads_the_webhook_from_the_named_variable(
    make_cfg, marts, receiver, tmp_path, capsys, monkeypatch
):
    marts.add(dt.date(2026, 11, 1), "60")
    make_cfg(budgets=[BUDGET], alerts={**NO_ANOMALIES, "webhook_url_env": "LEDGER_CLI_HOOK"})
    cfg = str(tmp_path / "ledger.yaml")
    monkeypatch.delenv("LEDGER_CLI_HOOK", raising=False)
    assert main(["alerts", "--config", cfg]) == 0
    out = capsys.readouterr().out
    assert "environment variable LEDGER_CLI_HOOK (alerts.webhook_url_env) is not set" in out
    assert receiver.received == []

    monkeypatch.setenv("LEDGER_CLI_HOOK", receiver.url + "/secret-path-token")
    assert main(["alerts", "--config", cfg]) == 0
    out = capsys.readouterr().out
    assert "delivered 1" in out and "secret-path-token" not in out
    assert len(receiver.received) == 1


def test_alerts_cli_refuses_both_webhook_keys(make_cfg, tmp_path, capsys):
    import yaml

    make_cfg(alerts={**NO_ANOMALIES, "webhook_url": "http://x"})
    path = tmp_path / "ledger.yaml"
    data = yaml.safe_load(path.read_text())
    data["alerts"]["webhook_url_env"] = "HOOK"
    path.write_text(yaml.safe_dump(data))
    assert main(["alerts", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "webhook_url or webhook_url_env" in err and "alerts" in err
