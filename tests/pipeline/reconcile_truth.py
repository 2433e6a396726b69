"""A generated Acme month with a known truth for the reconciliation cause tests: request logs
written hour by hour by two log writers, and native OpenAI / Anthropic / FOCUS invoice files
computed from the same requests, with these frictions injected (amounts exact by design):

- price drift: OpenAI bills gpt-4.1 on the prod project 4 % more per day from DRIFT_FROM;
- negotiated discount: OpenAI bills gpt-4.1-mini on the non-prod project 15 % less every day;
- lost logs: writer router-2.jsonl lost LOST_HOURS on LOST_DAY (all its traffic);
- unmapped account: on UNMAPPED_DAY the backup key's traffic is billed to a project no key
  claims (proj_acme_new / key_new);
- usage outside the router: on OUTSIDE_DAY OpenAI bills gpt-4o-mini on the prod project,
  which the router never used;
- missing workspace: on WORKSPACE_DAY Anthropic bills the prod workspace's Sonnet usage to a
  workspace ledger.yaml does not know (wrkspc_acme_new);
- billed nothing: on ZERO_DAY the arrived Anthropic report has no line for the default
  workspace although the logs expect usage there;
- late correction: a FOCUS correction of -0.40 for CORRECTION_DAY (before the month) on Bedrock.

`TRUTH` maps every cell that should not match to its true cause.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from decimal import Decimal

from pipeline_testkit import SONNET_ON_ANTHROPIC, STAGING_MINI, Ledger, request

START = dt.date(2026, 10, 1)
DAYS = 20
DRIFT_FROM = dt.date(2026, 10, 12)
LOST_DAY = dt.date(2026, 10, 10)
LOST_HOURS = (13, 14, 15)
UNMAPPED_DAY = dt.date(2026, 10, 8)
OUTSIDE_DAY = dt.date(2026, 10, 9)
WORKSPACE_DAY = dt.date(2026, 10, 11)
ZERO_DAY = dt.date(2026, 10, 17)
CORRECTION_DAY = dt.date(2026, 9, 30)
D = Decimal

# Cells: (name, request kwargs, per-request provider_usd, writers that log it)
HAIKU = {
    "api_key_id": "public-chat-staging",
    "model": "anthropic/claude-3.5-haiku",
    "provider": "anthropic",
    "upstream_model": "claude-3-5-haiku-20241022",
    "key_id": "ant-nonprod",
}
SONNET = {**SONNET_ON_ANTHROPIC, "key_id": "ant-prod-primary"}
# Shared-capacity traffic (no provider invoice on your account): it makes each writer's
# hourly volume realistic (5+ lines) without changing any reconciliation cell.
SHARED = {
    "model": "google/gemini-2.5-flash",
    "provider": "vertex",
    "upstream_model": "gemini-2.5-flash",
    "credential": "shared",
    "key_id": None,
    "credits": "0.001",
    "zdr": True,
}
CELLS = {
    "shared-a": (SHARED, D("0"), ("router-1", "router-2")),
    "shared-b": (SHARED, D("0"), ("router-1", "router-2")),
    "gpt41": ({}, D("0.05"), ("router-1", "router-2")),
    "mini": (STAGING_MINI, D("0.02"), ("router-1",)),
    "sonnet": (SONNET, D("0.03"), ("router-1", "router-2")),
    "haiku": (HAIKU, D("0.01"), ("router-1", "router-2")),
}
ACCOUNT = {
    "gpt41": "project_id=proj_acme_prod;api_key_id=key_prod_primary",
    "mini": "project_id=proj_acme_nonprod;api_key_id=key_nonprod",
    "backup": "project_id=proj_acme_prod;api_key_id=key_prod_backup",
    "new_project": "project_id=proj_acme_new;api_key_id=key_new",
    "sonnet": "workspace_id=wrkspc_acme_prod",
    "new_workspace": "workspace_id=wrkspc_acme_new",
}
UPSTREAM = {
    "gpt41": "gpt-4.1-2025-04-14",
    "mini": "gpt-4.1-mini-2025-04-14",
    "sonnet": "claude-sonnet-4-20250514",
    "haiku": "claude-3-5-haiku-20241022",
    "4o-mini": "gpt-4o-mini-2024-07-18",
    "bedrock": "anthropic.claude-sonnet-4-20250514-v1:0",
}
BACKUP_USD = D("0.10")  # per request, hours 9-11 of UNMAPPED_DAY on router-1
OUTSIDE_USD = D("1.50")
CORRECTION_USD = D("-0.40")


def days() -> list[dt.date]:
    return [START + dt.timedelta(days=i) for i in range(DAYS)]


def drift_factor(day: dt.date) -> Decimal:
    if day < DRIFT_FROM:
        return D(1)
    return 1 + D("0.04") * ((day - DRIFT_FROM).days + 1)


def _ts(day: dt.date, hour: int, minute: int) -> str:
    return f"{day.isoformat()}T{hour:02d}:{minute:02d}:00.000Z"


def write(led: Ledger) -> dict[tuple, Decimal]:
    """Write logs and invoices; return the full (unlost) provider cost per (day, cell name)."""
    full: dict[tuple, Decimal] = {}
    for day in days():
        per_writer: dict[str, list] = {"router-1": [], "router-2": []}
        for name, (kw, usd, writers) in CELLS.items():
            for w in writers:
                for hour in range(24):
                    full[(day, name)] = full.get((day, name), D(0)) + usd
                    if w == "router-2" and day == LOST_DAY and hour in LOST_HOURS:
                        continue  # billed, never logged
                    rid = f"{day:%m%d}-{w}-{name}-{hour:02d}"
                    per_writer[w].append(
                        request(rid, _ts(day, hour, 7), provider_usd=str(usd), **kw)
                    )
        if day == UNMAPPED_DAY:
            for hour in (9, 10, 11):
                per_writer["router-1"].append(
                    request(
                        f"{day:%m%d}-backup-{hour}",
                        _ts(day, hour, 30),
                        key_id="oai-prod-backup",
                        provider_usd=str(BACKUP_USD),
                    )
                )
        for w, recs in per_writer.items():
            led.write_requests(day.isoformat(), recs, name=w)
        _openai(led, day, full)
        _anthropic(led, day, full)
    # The Bedrock day before the month, and its late correction.
    led.write_requests(
        CORRECTION_DAY.isoformat(),
        [
            request(
                f"bedrock-{i}",
                _ts(CORRECTION_DAY, 10, i),
                api_key_id="assistant-prod",
                model="anthropic/claude-sonnet-4",
                provider="bedrock",
                upstream_model=UPSTREAM["bedrock"],
                key_id="bedrock-prod",
                provider_usd="0.10",
                zdr=True,
            )
            for i in range(10)
        ],
        name="router-1",
    )
    _focus(led)
    return full


def _bucket(day: dt.date, results: list[dict]) -> dict:
    t0 = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())
    return {"object": "bucket", "start_time": t0, "end_time": t0 + 86400, "results": results}


def _oai(usd: Decimal, model: str, project: str, key: str) -> dict:
    return {
        "object": "organization.costs.result",
        "amount": {"value": float(usd), "currency": "usd"},
        "line_item": f"{model}, input",
        "project_id": project,
        "api_key_id": key,
        "quantity": 1000,
    }


def _openai(led: Ledger, day: dt.date, full: dict) -> None:
    res = [
        _oai(
            full[(day, "gpt41")] * drift_factor(day),
            UPSTREAM["gpt41"],
            "proj_acme_prod",
            "key_prod_primary",
        ),
        _oai(full[(day, "mini")] * D("0.85"), UPSTREAM["mini"], "proj_acme_nonprod", "key_nonprod"),
    ]
    if day == UNMAPPED_DAY:
        res.append(_oai(3 * BACKUP_USD, UPSTREAM["gpt41"], "proj_acme_new", "key_new"))
    if day == OUTSIDE_DAY:
        res.append(_oai(OUTSIDE_USD, UPSTREAM["4o-mini"], "proj_acme_prod", "key_prod_primary"))
    page = {"object": "page", "data": [_bucket(day, res)], "has_more": False, "next_page": None}
    path = led.invoices / "openai" / f"costs_{day.isoformat()}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    # JSON numbers as the API sends them (floats in the file; the loader reads them as text).
    path.write_text(json.dumps(page), encoding="utf-8")


def _ant(usd: Decimal, model: str, workspace: str | None) -> dict:
    return {
        "amount": str(usd * 100),  # cents, as a decimal string
        "currency": "USD",
        "cost_type": "tokens",
        "token_type": "uncached_input_tokens",
        "description": "usage",
        "model": model,
        "service_tier": "standard",
        "context_window": "0-200k",
        "workspace_id": workspace,
    }


def _anthropic(led: Ledger, day: dt.date, full: dict) -> None:
    ws = "wrkspc_acme_new" if day == WORKSPACE_DAY else "wrkspc_acme_prod"
    res = [_ant(full[(day, "sonnet")], UPSTREAM["sonnet"], ws)]
    if day != ZERO_DAY:
        res.append(_ant(full[(day, "haiku")], UPSTREAM["haiku"], None))
    page = {
        "data": [
            {
                "starting_at": f"{day.isoformat()}T00:00:00Z",
                "ending_at": f"{(day + dt.timedelta(days=1)).isoformat()}T00:00:00Z",
                "results": res,
            }
        ],
        "has_more": False,
        "next_page": None,
    }
    path = led.invoices / "anthropic" / f"cost_report_{day.isoformat()}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(page), encoding="utf-8")


FOCUS_COLUMNS = [
    *("BillingAccountId", "SubAccountId", "BillingPeriodStart", "BillingPeriodEnd"),
    *("ChargePeriodStart", "ChargePeriodEnd", "ChargeCategory", "ChargeClass"),
    *("ChargeDescription", "BilledCost", "EffectiveCost", "ListCost", "BillingCurrency"),
    *("ProviderName", "ServiceName", "ServiceCategory", "ResourceId", "SkuMeter"),
    *("ConsumedQuantity", "ConsumedUnit", "Tags"),
]


def _focus_row(period: tuple[str, str], usd: Decimal, charge_class: str | None) -> dict:
    day0, day1 = CORRECTION_DAY.isoformat(), (CORRECTION_DAY + dt.timedelta(days=1)).isoformat()
    return {
        "BillingAccountId": "998877665544",
        "SubAccountId": "412938475610",
        "BillingPeriodStart": period[0],
        "BillingPeriodEnd": period[1],
        "ChargePeriodStart": f"{day0}T00:00:00Z",
        "ChargePeriodEnd": f"{day1}T00:00:00Z",
        "ChargeCategory": "Usage",
        "ChargeClass": charge_class or "NULL",
        "ChargeDescription": "Claude Sonnet 4 input",
        "BilledCost": str(usd),
        "EffectiveCost": str(usd),
        "ListCost": str(usd),
        "BillingCurrency": "USD",
        "ProviderName": "AWS",
        "ServiceName": "Amazon Bedrock",
        "ServiceCategory": "AI and Machine Learning",
        "ResourceId": f"arn:aws:bedrock:us-east-1::foundation-model/{UPSTREAM['bedrock']}",
        "SkuMeter": "Input Tokens",
        "ConsumedQuantity": "1000",
        "ConsumedUnit": "Tokens",
        "Tags": "NULL",
    }


def _focus(led: Ledger) -> None:
    folder = led.invoices / "bedrock"
    folder.mkdir(parents=True, exist_ok=True)
    september = ("2026-09-01T00:00:00Z", "2026-10-01T00:00:00Z")
    october = ("2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z")
    for name, rows in (
        ("focus_2026-09.csv", [_focus_row(september, D("1.00"), None)]),
        ("focus_2026-10_corrections.csv", [_focus_row(october, CORRECTION_USD, "Correction")]),
    ):
        with (folder / name).open("w", newline="", encoding="utf-8") as fh:
            wr = csv.DictWriter(fh, fieldnames=FOCUS_COLUMNS)
            wr.writeheader()
            wr.writerows(rows)


def truth() -> dict[tuple, str]:
    """(day, provider, account, upstream_model) -> the true cause, for every injected cell."""
    t: dict[tuple, str] = {}
    for day in days():
        t[(day, "openai", ACCOUNT["mini"], UPSTREAM["mini"])] = "price_mismatch"
        if day >= DRIFT_FROM:
            t[(day, "openai", ACCOUNT["gpt41"], UPSTREAM["gpt41"])] = "price_mismatch"
    for cell in ("gpt41", "sonnet"):
        t[
            (LOST_DAY, "openai" if cell == "gpt41" else "anthropic", ACCOUNT[cell], UPSTREAM[cell])
        ] = "logs_missing"
    t[(LOST_DAY, "anthropic", "workspace_id=default", UPSTREAM["haiku"])] = "logs_missing"
    t[(UNMAPPED_DAY, "openai", ACCOUNT["backup"], UPSTREAM["gpt41"])] = "account_mismatch"
    t[(UNMAPPED_DAY, "openai", ACCOUNT["new_project"], UPSTREAM["gpt41"])] = "account_mismatch"
    t[(OUTSIDE_DAY, "openai", ACCOUNT["gpt41"], UPSTREAM["4o-mini"])] = "usage_outside_router"
    t[(WORKSPACE_DAY, "anthropic", ACCOUNT["sonnet"], UPSTREAM["sonnet"])] = "account_mismatch"
    t[(WORKSPACE_DAY, "anthropic", ACCOUNT["new_workspace"], UPSTREAM["sonnet"])] = (
        "account_mismatch"
    )
    return t
