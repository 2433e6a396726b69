"""Test kit for the FOCUS export tests: provider-realistic organisation-wide exports from the
third-party `focus-data-toolkit` generator (AWS, Azure, GCP; FOCUS 1.2 and 1.3), LLM lines to
inject into them, and exact expected totals computed independently of the loader (Python
Decimal, rounded half away from zero to the nanodollar like a DECIMAL(38,9) cast)."""

from __future__ import annotations

import csv
import subprocess
import sys
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

NANO = Decimal("0.000000001")
NULLS = {"", "null", "none", "n/a"}

# One LLM line per cloud, as that cloud's FOCUS export writes it.
LLM_SERVICE = {
    "aws": {
        "ServiceName": "Amazon Bedrock",
        "ServiceCategory": "AI and Machine Learning",
        "ServiceSubcategory": "Generative AI",
        "ResourceId": "arn:aws:bedrock:us-east-1::foundation-model/"
        "anthropic.claude-sonnet-4-20250514-v1:0",
        "model": "anthropic.claude-sonnet-4-20250514-v1:0",
    },
    "azure": {
        # Azure books Azure OpenAI under the Cognitive Services account's service.
        "ServiceName": "Azure AI Services",
        "ServiceCategory": "AI and Machine Learning",
        "ServiceSubcategory": "AI Platforms",
        "ResourceId": "/subscriptions/11111111-1111-4111-8111-111111111111/resourceGroups/rg-ai"
        "/providers/Microsoft.CognitiveServices/accounts/acme-openai/deployments/gpt-4o",
        "model": "gpt-4o",
    },
    "gcp": {
        "ServiceName": "Vertex AI",
        "ServiceCategory": "AI and Machine Learning",
        "ServiceSubcategory": "Generative AI",
        "ResourceId": "projects/acme-code-prod/locations/us-central1/publishers/google/models/"
        "gemini-2.5-flash",
        "model": "gemini-2.5-flash",
    },
}


def toolkit_export(out: Path, provider: str, version: str, rows: int = 300, seed: int = 7) -> Path:
    """A FOCUS cost-and-usage CSV made by focus-data-toolkit (it has no LLM lines at all)."""
    subprocess.run(
        [sys.executable, "-m", "focus_data_toolkit", "generate", "--provider", provider,
         "--focus-version", version, "--rows", str(rows), "--seed", str(seed), "--out", str(out)],
        check=True,
        capture_output=True,
        timeout=120,
    )  # fmt: skip
    (path,) = out.glob(f"focus_*_cost_and_usage_{provider}.csv")
    return path


def read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


def write_rows(path: Path, header: list[str], rows: list[dict[str, Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(header)
        for r in rows:
            w.writerow(["" if r.get(c) is None else r.get(c) for c in header])
    return path


def nano(text: str) -> Decimal:
    """A FOCUS amount text as the ledger stores it (DECIMAL(38,9), half away from zero)."""
    return Decimal(text).quantize(NANO, rounding=ROUND_HALF_UP)


def billed_total(rows: list[dict[str, str]]) -> Decimal:
    return sum((nano(r["BilledCost"]) for r in rows), Decimal(0))


def llm_row(template: dict[str, str], provider: str, **overrides: Any) -> dict[str, Any]:
    """An LLM usage line of `provider`'s cloud in the shape (columns) of `template`."""
    row: dict[str, Any] = {c: "" for c in template}
    for c in (
        "ProviderName", "PublisherName", "ServiceProviderName", "HostProviderName",
        "InvoiceIssuerName", "InvoiceId", "BillingAccountId", "BillingAccountName",
        "BillingAccountType", "SubAccountId", "SubAccountName", "SubAccountType",
        "BillingPeriodStart", "BillingPeriodEnd", "BillingCurrency", "PricingCurrency",
        "RegionId", "RegionName",
    ):  # fmt: skip
        if c in template:
            row[c] = template[c]
    svc = LLM_SERVICE[provider]
    row.update({k: v for k, v in svc.items() if k != "model" and k in template})
    row.update(
        ChargePeriodStart="2026-05-02T00:00:00Z",
        ChargePeriodEnd="2026-05-03T00:00:00Z",
        ChargeCategory="Usage",
        ChargeFrequency="Usage-Based",
        ChargeDescription=f"{svc['model']} input tokens",
        BilledCost="0.123456789",
        EffectiveCost="0.123456789",
        ListCost="0.130000000",
        SkuMeter="Input Tokens",
        ConsumedQuantity="41152",
        ConsumedUnit="Tokens",
        Tags='{"team":"ai-platform"}',
    )
    row.update(overrides)
    return row
