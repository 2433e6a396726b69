"""Each friction is in the files exactly as the ground-truth manifest says."""

from __future__ import annotations

import csv
import json
from collections import Counter
from decimal import Decimal

from simulator_testkit import log_lines, manifest

from routing_core.schema import RequestRecord


def test_malformed_line_is_where_the_manifest_says(sim):
    f = manifest(sim)["frictions"]["malformed_line"]
    path = sim.out_dir / f["file"]
    lines = path.read_bytes().split(b"\n")
    bad = []
    for i, raw in enumerate(lines[:-1], start=1):
        try:
            json.loads(raw)
        except ValueError:
            bad.append(i)
    assert bad == [f["line"]]
    assert f["line"] < len(lines) - 1  # inside the file, not a torn last line
    # Every other line of every request file is a valid record.
    n = 0
    for p, i, raw in log_lines(sim.logs_dir):
        if p == path and i == f["line"]:
            continue
        RequestRecord.model_validate_json(raw)
        n += 1
    assert n > 50


def test_duplicate_lines_are_exact_copies(sim):
    f = manifest(sim)["frictions"]["duplicate_lines"]
    counts = Counter()
    raw_by_id: dict[str, set[bytes]] = {}
    for _, _, raw in log_lines(sim.logs_dir):
        try:
            rid = json.loads(raw)["request_id"]
        except ValueError:
            continue
        counts[rid] += 1
        raw_by_id.setdefault(rid, set()).add(raw)
    dupes = sorted(r for r, c in counts.items() if c > 1)
    assert dupes == sorted(f["request_ids"])
    assert all(counts[r] == 2 and len(raw_by_id[r]) == 1 for r in dupes)
    replay = sim.out_dir / f["replay_file"]["file"]
    assert replay.name == "shipper-replay.jsonl"
    assert len(replay.read_bytes().splitlines()) == len(f["replay_file"]["request_ids"])


def test_lost_logs_are_gone_but_still_billed(sim):
    m = manifest(sim)
    f = m["frictions"]["lost_logs"]
    assert f["requests"] == len(f["request_ids"]) > 0
    seen = set()
    for _, _, raw in log_lines(sim.logs_dir):
        try:
            r = json.loads(raw)
        except ValueError:
            continue
        seen.add(r["request_id"])
        assert not (f["start"][:19] <= r["ts"][:19] < f["end"][:19]), r["ts"]
    for _, _, raw in log_lines(sim.logs_dir, "outcomes"):
        r = json.loads(raw)
        assert not (f["start"][:19] <= r["ts"][:19] < f["end"][:19])
    assert not seen & set(f["request_ids"])
    # The platform still billed them: its requests per day exceed what the logs now show.
    day = f["start"][:10]
    logged_ok = sum(
        1
        for _, _, raw in log_lines(sim.logs_dir)
        if raw.startswith(b"{")
        and raw.endswith(b"}")
        and json.loads(raw)["ts"][:10] == day
        and json.loads(raw)["status"] == "ok"
    )
    dup_ok = (
        len(m["frictions"]["duplicate_lines"]["request_ids"])
        if m["frictions"]["duplicate_lines"]["day"] == day
        else 0
    )
    assert m["platform_statement"]["requests_by_day"][day] >= logged_ok - dup_ok + f["served"]


def test_direct_usage_is_billed_and_never_logged(sim):
    f = manifest(sim)["frictions"]["direct_usage"]
    m = manifest(sim)
    cell = [
        c
        for c in m["invoices"][f["provider"]]["cells"]
        if (c["day"], c["key_id"], c["upstream_model"])
        == (f["day"], f["key_id"], f["upstream_model"])
    ]
    assert len(cell) == 1 and Decimal(str(cell[0]["usd"])) == Decimal(str(f["billed_usd"])) > 0
    for _, _, raw in log_lines(sim.logs_dir):
        try:
            r = json.loads(raw)
        except ValueError:
            continue
        assert not (
            r["ts"][:10] == f["day"]
            and r["key_id"] == f["key_id"]
            and r["upstream_model"] == f["upstream_model"]
        )
    # The OpenAI export names it by the key's project and API key id.
    import datetime as dt

    results = [
        r
        for p in sorted((sim.invoices_dir / "openai").glob("*.json"))
        for b in json.loads(p.read_text(), parse_float=Decimal)["data"]
        if dt.datetime.fromtimestamp(b["start_time"], dt.UTC).date().isoformat() == f["day"]
        for r in b["results"]
        if r["line_item"].startswith(f["upstream_model"] + ",")
        and r["project_id"] == f["account"]["project_id"]
        and r["api_key_id"] == f["account"]["api_key_id"]
    ]
    assert sum(Decimal(r["amount"]["value"]) for r in results) == Decimal(str(f["billed_usd"]))
    assert sum(r["quantity"] for r in results) == f["input_tokens"] + f["output_tokens"]


def test_correction_credit_and_price_drift(sim):
    fr = manifest(sim)["frictions"]
    corr, credit, drift = fr["late_correction"], fr["credit"], fr["price_drift"]
    rows = list(
        csv.DictReader(
            (sim.invoices_dir / corr["provider"] / f"focus_{corr['billing_month']}.csv").open(
                newline=""
            )
        )
    )
    c = [r for r in rows if r["ChargeClass"] == "Correction"]
    assert len(c) == 1
    assert Decimal(c[0]["BilledCost"]) == Decimal(str(corr["usd"])) < 0
    # The charge period is in an earlier, closed billing period than the file's.
    assert c[0]["ChargePeriodStart"][:7] < c[0]["BillingPeriodStart"][:7]
    assert c[0]["ChargePeriodStart"][:10] == corr["charge_day"]
    rows = list(
        csv.DictReader(
            (sim.invoices_dir / credit["provider"] / f"focus_{credit['billing_month']}.csv").open(
                newline=""
            )
        )
    )
    cr = [r for r in rows if r["ChargeCategory"] == "Credit"]
    assert len(cr) == 1 and Decimal(cr[0]["BilledCost"]) == Decimal(str(credit["usd"]))
    assert Decimal(str(drift["provider_price_per_mtok"])) > Decimal(
        str(drift["router_price_per_mtok"])
    )


def test_frictions_can_be_chosen_one_by_one(tmp_path):
    from simulator_testkit import small_run

    r = small_run(
        tmp_path / "one", days=2, requests_per_day=30, engine="router", frictions=["malformed_line"]
    )
    m = manifest(r)
    assert m["frictions_enabled"] == ["malformed_line"]
    assert m["frictions"]["malformed_line"] and m["frictions"]["lost_logs"] is None
    assert not list((r.logs_dir / "requests").rglob("shipper-replay.jsonl"))
