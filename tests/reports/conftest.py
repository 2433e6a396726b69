"""Fixtures for the report tests: a temporary DuckDB holding the marts (columns as the
pipeline builds them, SPEC §8) with hand-written rows whose totals are easy to check, and a
config pointing at it."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from martkit import create_marts, ledger_data
from martkit import write_config as write_ledger_yaml

from routing_core.config import LedgerConfig

EVIL_MODEL = '<script>alert("model")</script>'
EVIL_APP = "<img src=x onerror=alert(1)>"
D = dt.date


def _split(
    day,
    env,
    app,
    key,
    workload,
    provider,
    model,
    credential,
    key_id,
    billed,
    fee,
    credits,
    status="invoiced",
    requests=100,
    attribution="attributed",
):
    billed, fee, credits = Decimal(billed), Decimal(fee), Decimal(credits)
    return (
        day,
        env,
        app,
        key,
        workload,
        None,
        provider,
        model,
        credential,
        requests,
        None if status == "estimated" else billed,
        billed,
        fee,
        credits,
        billed + fee + credits,
        status,
        key_id,
        model,
        None,
        Decimal(0),
        fee,
        credits,
        billed + credits,
        attribution,
    )


def split_rows() -> list[tuple]:
    """Oct 30-31 and Nov 1-10, 2026. Per day: public-chat on a BYOK key ($10 provider + $0.50
    fee), public-chat on shared capacity ($4 credits), batch on shared capacity ($1 credits,
    with a hostile model name). Nov 9-10 are not invoiced yet. Nov 3: $2 unattributed invoice
    cost. November by hand: provider $102, fees $5, credits $50, total $157 ($21 estimated).
    October: provider $20, fees $1, credits $10, total $31."""
    rows = []
    days = [D(2026, 10, 30), D(2026, 10, 31)] + [D(2026, 11, i) for i in range(1, 11)]
    for day in days:
        status = "estimated" if day >= D(2026, 11, 9) else "invoiced"
        rows.append(
            _split(
                day,
                "prod",
                "web-chat",
                "public-chat-prod",
                "public-chat",
                "openai",
                "openai/gpt-4.1",
                "byok",
                "oai-prod-primary",
                "10",
                "0.50",
                "0",
                status,
            )
        )
        rows.append(
            _split(
                day,
                "prod",
                "web-chat",
                "public-chat-prod",
                "public-chat",
                "anthropic",
                "anthropic/claude-sonnet-4",
                "shared",
                None,
                "0",
                "0",
                "4",
            )
        )
        rows.append(
            _split(
                day,
                "prod",
                EVIL_APP,
                "batch-prod",
                "batch",
                "deepinfra",
                EVIL_MODEL,
                "shared",
                None,
                "0",
                "0",
                "1",
                requests=20,
            )
        )
    rows.append(
        _split(
            D(2026, 11, 3),
            None,
            None,
            None,
            None,
            "openai",
            None,
            None,
            None,
            "2",
            "0",
            "0",
            requests=0,
            attribution="unattributed",
        )
    )
    return rows


def build_marts(path: Path) -> None:
    with duckdb.connect(str(path)) as c:
        create_marts(c)
        c.executemany(
            "INSERT INTO marts.split_billing_daily VALUES (" + ",".join(["?"] * 24) + ")",
            split_rows(),
        )
        recon = []
        for i in range(1, 11):
            day = D(2026, 11, i)
            if i == 4:  # over-billed by $3
                recon.append(
                    (
                        day,
                        "openai",
                        "proj_acme_prod",
                        "gpt-4.1",
                        "10",
                        "13",
                        "3",
                        "30",
                        "over_billed",
                    )
                )
            elif i >= 9:
                recon.append(
                    (
                        day,
                        "openai",
                        "proj_acme_prod",
                        "gpt-4.1",
                        "10",
                        None,
                        None,
                        None,
                        "missing_invoice",
                    )
                )
            else:
                recon.append(
                    (day, "openai", "proj_acme_prod", "gpt-4.1", "10", "10", "0", "0", "matched")
                )
        recon.append(
            (
                D(2026, 11, 3),
                "openai",
                "proj_unknown",
                "gpt-4.1",
                "0",
                "2",
                "2",
                None,
                "unlogged_usage",
            )
        )
        causes = {
            "over_billed": (
                "unknown",
                "openai billed $13.00 against $10.00 logged; no rule explains it.",
            ),
            "missing_invoice": (
                "missing_invoice",
                "No openai export covering proj_acme_prod has arrived yet.",
            ),
            "unlogged_usage": (
                "usage_outside_router",
                "openai billed $2.00 on proj_unknown, an account no BYOK key claims.",
            ),
            "matched": (None, None),
        }
        c.executemany(
            "INSERT INTO marts.reconciliation_daily (day, provider, account, upstream_model, "
            "expected_usd, billed_usd, variance_usd, variance_pct, status, requests, "
            "invoice_lines, key_ids, corrections_usd, likely_cause, explanation) "
            "VALUES (?,?,?,?,?,?,?,?,?,100,1,'oai-prod-primary',0,?,?)",
            [(*r, *causes[r[8]]) for r in recon],
        )
        c.execute(
            "INSERT INTO marts.unattributed_usage VALUES "
            "('2026-11-03','invoice','openai','proj_unknown','gpt-4.1',NULL,NULL,2,1,'openai/costs.json','no key account matches',"
            "'usage_outside_router','openai billed $2.00 on proj_unknown, an account no BYOK key claims.')"
        )
        c.execute(
            "INSERT INTO marts.non_usage_charges VALUES "
            "('2026-11-05','bedrock','412938475610','Credit','','Promotional credit',-25,'USD','bedrock/focus.csv',7)"
        )
        c.execute(
            "INSERT INTO marts.cost_per_accepted_output VALUES "
            "('2026-11-02','public-chat','prod','openai/gpt-4.1',100,80,60,'10.50',0.175,80,10,10,2,5),"
            f"('2026-11-02','batch','prod','{EVIL_MODEL}',20,20,0,'1',NULL,20,20,0,0,0)"
        )
        for i in range(1, 11):
            fb = 40 if i == 5 else 3  # Nov 5 is fallback-heavy
            c.execute(
                "INSERT INTO marts.routing_health VALUES (?, 'openai', 'oai-prod-primary', 'byok', 100, 110, ?, 10, ?, ?, 0, 0, 0, 1, 0)",
                [D(2026, 11, i), 100, 25 if i == 5 else 1, fb],
            )


def write_config(tmp: Path, **overrides: Any) -> LedgerConfig:
    """A config whose budgets reference the fixture's keys; paths inside `tmp`."""
    keys = {"public-chat-prod": ("prod", "web-chat"), "batch-prod": ("prod", "batch")}
    data = ledger_data(["openai"], {"oai-prod-primary": "openai"}, keys)
    data.update(
        {
            "workloads": [{"id": "public-chat"}, {"id": "batch"}],
            "budgets": [
                {
                    "id": "chat-monthly",
                    "scope": "api_key",
                    "match": "public-chat-prod",
                    "usd": "200",
                    "period": "monthly",
                    "thresholds_pct": [50, 80, 100],
                },
                {
                    "id": "openai-monthly",
                    "scope": "provider",
                    "match": "openai",
                    "usd": "90",
                    "period": "monthly",
                    "thresholds_pct": [100],
                },
            ],
            "alerts": {
                "webhook_url": None,
                "min_impact_usd": "20",
                "baseline_days": 28,
                "sensitivity": 4,
            },
        }
    )
    data.update(overrides)
    return write_ledger_yaml(tmp, data)


@pytest.fixture
def report_env(tmp_path: Path) -> LedgerConfig:
    """Config + fixture marts + an evaluated alert ledger (so budgets/alerts show)."""
    from pipeline.alerts import evaluate_alerts

    cfg = write_config(tmp_path)
    build_marts(cfg.duckdb_path)
    evaluate_alerts(cfg)
    return cfg
