"""Every native format the simulator writes, read back with small independent readers
(Decimal throughout), adds up to the ground-truth manifest; without frictions the
invoices agree with what the router logged (to the cent per day and account)."""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

from simulator_testkit import log_lines, manifest

CENT = Decimal("0.01")


def read_openai(folder: Path):
    by_day, lines, starts = defaultdict(Decimal), [], []
    pages = sorted(folder.glob("costs_page_*.json"))
    for i, p in enumerate(pages):
        doc = json.loads(p.read_text(), parse_float=Decimal)
        assert doc["object"] == "page"
        assert doc["has_more"] is (i + 1 < len(pages))
        assert (doc["next_page"] is None) is (i + 1 == len(pages))
        for b in doc["data"]:
            assert b["object"] == "bucket"
            starts.append(b["start_time"])
            day = dt.datetime.fromtimestamp(b["start_time"], dt.UTC).date().isoformat()
            for r in b["results"]:
                assert r["object"] == "organization.costs.result"
                assert r["amount"]["currency"] == "usd"
                assert r["quantity_unit"] == "tokens"
                model, kind = r["line_item"].rsplit(", ", 1)
                assert kind in ("input", "output", "cached input")
                by_day[day] += Decimal(r["amount"]["value"])
                lines.append(r)
    return by_day, lines, starts


def read_anthropic(folder: Path):
    by_day, lines = defaultdict(Decimal), []
    for p in sorted(folder.glob("cost_report_page_*.json")):
        doc = json.loads(p.read_text())
        for b in doc["data"]:
            day = b["starting_at"][:10]
            assert b["ending_at"].endswith("T00:00:00Z")
            for r in b["results"]:
                assert isinstance(r["amount"], str)  # cents as a decimal string
                assert r["currency"] == "USD" and r["cost_type"] == "tokens"
                assert r["token_type"] in (
                    "uncached_input_tokens",
                    "output_tokens",
                    "cache_read_input_tokens",
                    "cache_creation.ephemeral_5m_input_tokens",
                )
                by_day[day] += Decimal(r["amount"]) / 100
                lines.append(r)
    return by_day, lines


def _null(v: str) -> bool:
    return v in ("", "NULL")


def read_focus(folder: Path):
    usage, other, rows = defaultdict(Decimal), [], []
    for p in sorted(folder.glob("focus_*.csv")):
        for row in csv.DictReader(p.open(newline="")):
            rows.append(row)
            day = row["ChargePeriodStart"][:10]
            cost = Decimal(row["BilledCost"])
            if row["ChargeCategory"] == "Usage" and _null(row["ChargeClass"]):
                usage[day] += cost
                assert row["ConsumedUnit"] == "Tokens"
                assert row["SkuMeter"] in (
                    "Input Tokens",
                    "Output Tokens",
                    "Cache Read Input Tokens",
                    "Cache Write Input Tokens",
                )
            else:
                other.append(row)
    return usage, other, rows


def _money_eq(a: dict, b: dict) -> bool:
    keys = set(a) | set(b)
    return all(Decimal(str(a.get(k, 0))) == Decimal(str(b.get(k, 0))) for k in keys)


def test_every_invoice_format_parses_back_to_the_manifest(sim):
    m = manifest(sim)
    inv = sim.invoices_dir
    assert set(m["invoices"]) == {"openai", "anthropic", "bedrock", "vertex"}
    # deepinfra has no BYOK key: nothing is invoiced to Acme there.
    assert not (inv / "deepinfra").exists()

    by_day, _, starts = read_openai(inv / "openai")
    assert _money_eq(by_day, m["invoices"]["openai"]["usage_usd_by_day"])
    # The first bucket starts mid-day (a real query window), the others at midnight.
    assert starts[0] % 86400 != 0 and all(s % 86400 == 0 for s in starts[1:])
    assert len(starts) == sim.days

    by_day, lines = read_anthropic(inv / "anthropic")
    assert _money_eq(by_day, m["invoices"]["anthropic"]["usage_usd_by_day"])
    assert any(r["workspace_id"] is None for r in lines)  # the default workspace

    for pid in ("bedrock", "vertex"):
        usage, other, _ = read_focus(inv / pid)
        assert _money_eq(usage, m["invoices"][pid]["usage_usd_by_day"]), pid
        want = sorted(
            (o["category"], Decimal(str(o["usd"]))) for o in m["invoices"][pid]["other_lines"]
        )
        got = sorted((o["ChargeCategory"], Decimal(o["BilledCost"])) for o in other)
        assert got == want, pid

    total = sum((Decimal(str(p["usage_usd_total"])) for p in m["invoices"].values()), Decimal(0))
    assert total == Decimal(str(m["totals"]["invoice_usage_usd"])) > 0


def test_focus_exports_differ_like_real_ones(sim):
    _, _, bedrock = read_focus(sim.invoices_dir / "bedrock")
    _, _, vertex = read_focus(sim.invoices_dir / "vertex")
    assert all(r["ChargePeriodStart"].endswith("T00:00:00Z") for r in bedrock)
    assert all(" " in r["ChargePeriodStart"] and "T" not in r["ChargePeriodStart"] for r in vertex)
    assert any(r["ChargeClass"] == "NULL" for r in vertex)
    assert all(
        r["ResourceId"].startswith("arn:aws:bedrock:us-east-1::foundation-model/")
        for r in bedrock
        if r["ChargeCategory"] == "Usage" and r["ResourceId"]
    )
    usage = [r for r in vertex if r["ChargeCategory"] == "Usage" and r["ChargeClass"] == "NULL"]
    assert usage and all(
        r["ResourceId"].startswith("projects/acme-code-prod/locations/us-central1/publishers/")
        for r in usage
    )
    assert all(r["ResourceId"].endswith("/" + r["SkuId"].split(":")[1]) for r in usage)
    # Bedrock carries Acme's 10% private pricing: billed = 90% of list on every usage row.
    for r in bedrock:
        if r["ChargeCategory"] == "Usage" and not r["ChargeClass"]:
            assert abs(
                Decimal(r["BilledCost"]) - Decimal(r["ListCost"]) * Decimal("0.9")
            ) <= Decimal("0.00000002")  # both rounded to 8 dp


def test_platform_statement_matches_manifest_and_logs(sim_clean):
    m = manifest(sim_clean)
    by_day = defaultdict(Decimal)
    rows = []
    for p in sorted((sim_clean.invoices_dir / "_platform").glob("activity_*.json")):
        for r in json.loads(p.read_text(), parse_float=Decimal)["data"]:
            rows.append(r)
            by_day[r["date"]] += Decimal(r["usage"])
    assert rows and {
        "date",
        "model",
        "model_permaslug",
        "endpoint_id",
        "provider_name",
        "usage",
        "byok_usage_inference",
        "byok_requests",
        "requests",
        "prompt_tokens",
        "completion_tokens",
        "reasoning_tokens",
    } <= set(rows[0])
    assert _money_eq(by_day, m["platform_statement"]["usage_usd_by_day"])
    # Without frictions the statement is exactly the logs' fees + credits per day.
    logged = defaultdict(Decimal)
    for _, _, raw in log_lines(sim_clean.logs_dir):
        r = json.loads(raw)
        if r["status"] == "ok":
            logged[r["ts"][:10]] += Decimal(r["cost"]["platform_fee_usd"]) + Decimal(
                r["cost"]["platform_credits_usd"]
            )
    assert _money_eq(by_day, logged)
    assert {r["provider_name"] for r in rows} <= {
        "OpenAI",
        "Anthropic",
        "Amazon Bedrock",
        "Google Vertex",
        "DeepInfra",
    }


def test_without_frictions_invoices_match_the_logs_per_cell(sim_clean):
    """Provider ground truth comes from what the fakes served, priced by the provider's
    book; with no drift, no direct use and no lost logs it equals the router's estimate up
    to provider rounding, for every day x account x upstream model."""
    m = manifest(sim_clean)
    assert m["frictions_enabled"] == []
    assert all(v is None for v in m["frictions"].values())
    logged = defaultdict(Decimal)
    for _, _, raw in log_lines(sim_clean.logs_dir):
        r = json.loads(raw)
        if r["status"] == "ok" and r["credential"] == "byok":
            logged[(r["ts"][:10], r["key_id"], r["upstream_model"])] += Decimal(
                r["cost"]["provider_usd"]
            )
    billed = {}
    for p in m["invoices"].values():
        for c in p["cells"]:
            billed[(c["day"], c["key_id"], c["upstream_model"])] = Decimal(str(c["usd"]))
    assert billed.keys() == logged.keys()
    worst = max(abs(billed[k] - logged[k]) for k in billed)
    assert worst < CENT, worst
