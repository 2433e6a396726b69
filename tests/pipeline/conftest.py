"""Fixtures for the pipeline tests (the helpers live in pipeline_testkit.py, importable by name:
pyproject.toml puts this folder on pytest's pythonpath)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pipeline_testkit import Ledger, acme_day_requests, outcome


@pytest.fixture
def ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Ledger:
    led = Ledger(tmp_path)
    monkeypatch.setenv("BYOK_LEDGER_CONFIG", str(led.config))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    (tmp_path / "dagster_home").mkdir()
    return led


@pytest.fixture
def acme_day(ledger: Ledger) -> Ledger:
    """2026-03-02 of Acme: logs, outcomes and every native invoice format (no late correction)."""
    ledger.write_requests("2026-03-02", acme_day_requests())
    ledger.write_outcomes(
        "2026-03-02",
        [
            outcome("e1", "2026-03-02T10:05:00.000Z", True, request_id="r1"),
            outcome("e2", "2026-03-02T10:06:00.000Z", False, request_id="r1"),  # last one wins
            outcome("e3", "2026-03-02T12:30:00.000Z", True, workflow_id="wf-1"),
            outcome("e4", "2026-03-02T10:05:00.000Z", True, request_id="r4"),
        ],
    )
    ledger.add_invoices("acme_2026-03-02")
    return ledger
