"""Test-session settings for the Dagster code location: partitions from 2026-01-01 (every test
fixture's days lie after it), fixed before any test imports `pipeline.definitions`. Outside
tests the first partition is `pipeline.start_date` or the first day with logs."""

from __future__ import annotations

import datetime as dt

from pipeline import settings as pipeline_settings

pipeline_settings.activate(
    pipeline_settings.PipelineSettings(
        config_path=pipeline_settings.DEFAULT_CONFIG,
        partition_start=dt.date(2026, 1, 1),
    )
)
