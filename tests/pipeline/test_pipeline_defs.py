"""The daily schedule re-runs a trailing window as one range run (the names of assets, checks,
jobs and schedules are snapshot-tested in test_pipeline_contracts.py)."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from pipeline.definitions import defs
from pipeline.defs.reconcile.schedules import ledger_daily_schedule, rerun_window


def test_rerun_window_is_trailing_and_clipped():
    assert rerun_window(dt.date(2026, 3, 10), 7, dt.date(2026, 1, 1)) == (
        dt.date(2026, 3, 3),
        dt.date(2026, 3, 9),
    )
    assert rerun_window(dt.date(2026, 1, 3), 7, dt.date(2026, 1, 1)) == (
        dt.date(2026, 1, 1),
        dt.date(2026, 1, 2),
    )
    assert rerun_window(dt.date(2026, 3, 10), 0, dt.date(2026, 1, 1)) == (
        dt.date(2026, 3, 9),
        dt.date(2026, 3, 9),
    )


def test_schedule_requests_one_range_run_over_the_window():
    ctx = dg.build_schedule_context(
        scheduled_execution_time=dt.datetime(2026, 3, 10, 2, 30, tzinfo=dt.UTC)
    )
    req = ledger_daily_schedule(ctx)
    assert req.tags["dagster/asset_partition_range_start"] == "2026-03-03"
    assert req.tags["dagster/asset_partition_range_end"] == "2026-03-09"
    assert defs.resolve_schedule_def("ledger_daily_schedule").cron_schedule == "30 2 * * *"


def test_the_instance_defaults_match_the_repository_dagster_yaml():
    import yaml

    from pipeline.instance import DEFAULT_INSTANCE_YAML
    from pipeline.settings import REPO_ROOT

    assert yaml.safe_load(DEFAULT_INSTANCE_YAML) == yaml.safe_load(
        (REPO_ROOT / "dagster.yaml").read_text()
    )


def test_instance_folder_is_beside_the_duckdb_file_unless_dagster_home(tmp_path, monkeypatch):
    from pipeline_testkit import Ledger

    from pipeline.instance import instance_dir, prepare_instance
    from routing_core.config import load_config

    led = Ledger(tmp_path)
    cfg = load_config(led.config)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    home = prepare_instance(cfg)
    assert home == (led.duckdb.parent / ".dagster").resolve()
    assert "enabled: false" in (home / "dagster.yaml").read_text()
    # An operator's dagster.yaml (e.g. PostgreSQL storage) is never overwritten.
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n# mine\n")
    prepare_instance(cfg)
    assert "# mine" in (home / "dagster.yaml").read_text()
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "elsewhere"))
    assert instance_dir(cfg) == (tmp_path / "elsewhere").resolve()


def test_partitions_start_at_start_date_else_first_log_day(tmp_path):
    from pipeline_testkit import Ledger, acme_day_requests

    from pipeline.settings import settings_for

    led = Ledger(tmp_path)
    today = dt.date(2026, 12, 4)
    # No logs, no start_date: today, and a run's own range widens it.
    assert settings_for(led.config, today=today).partition_start == today
    s = settings_for(led.config, dt.date(2026, 3, 1), dt.date(2026, 3, 3), today=today)
    assert s.partition_start == dt.date(2026, 3, 1) and s.covers(s.partition_start, today, today)
    led.write_requests("2026-03-02", acme_day_requests())
    s = settings_for(led.config, today=today)
    assert s.partition_start == dt.date(2026, 3, 2)
    assert s.covers(dt.date(2026, 3, 2), today, today)  # today's partial day is a partition
    assert not s.covers(dt.date(2026, 3, 1), dt.date(2026, 3, 2), today)
    # A run ending after tomorrow stretches the end.
    later = settings_for(led.config, None, today + dt.timedelta(days=3), today=today)
    assert later.covers(today, today + dt.timedelta(days=3), today)
    # pipeline.start_date wins, in both directions.
    text = led.config.read_text()
    led.config.write_text(text.replace("pipeline:\n", "pipeline:\n  start_date: 2026-03-05\n"))
    s = settings_for(led.config, dt.date(2026, 3, 1), dt.date(2026, 3, 9), today=today)
    assert s.partition_start == dt.date(2026, 3, 5)
