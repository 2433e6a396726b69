"""The fast synthesizer writes what the router would: every line validates against the log
contract, costs follow `PriceBook.cost` / `ByokFeeMeter` to the nano-dollar, routes follow
the planner, and the invoices still add up to the manifest."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from simulator_testkit import ACME, log_lines, manifest, small_run

from routing_core.config import load_config
from routing_core.pricing import ByokFeeMeter, PriceBook
from routing_core.routes import Attempt
from routing_core.schema import OutcomeEvent, RequestRecord, Usage


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return small_run(
        tmp_path_factory.mktemp("synth"),
        days=2,
        requests_per_day=2500,
        engine="synth",
        frictions=False,
    )


def test_every_synthesized_line_validates(synth):
    lines = log_lines(synth.logs_dir)
    assert len(lines) > 4000
    for _, _, raw in lines:
        RequestRecord.model_validate_json(raw)
    outcomes = log_lines(synth.logs_dir, "outcomes")
    assert outcomes
    for _, _, raw in outcomes:
        OutcomeEvent.model_validate_json(raw)
    ids = [json.loads(raw)["request_id"] for _, _, raw in lines]
    assert len(ids) == len(set(ids))


def test_synthesized_costs_equal_the_routers_pricing(synth):
    config = load_config(ACME)
    book = PriceBook(config)
    fees = ByokFeeMeter.from_config(config)
    n = 0
    for _, _, raw in log_lines(synth.logs_dir):  # file order = time order
        r = json.loads(raw)
        if r["status"] != "ok":
            assert r["cost"]["list_usd"] == "0.000000000"
            continue
        a = Attempt(
            r["model"],
            r["provider"],
            r["credential"],
            r["key_id"],
            "shared" if r["credential"] == "shared" else "prioritized",
            r["upstream_model"],
            r["zdr"],
        )
        u = Usage(**r["usage"])
        at = dt.datetime.fromisoformat(r["ts"].replace("Z", "+00:00"))
        assert r["cost"] == book.cost(a, u, at, fees).as_dict(), r["request_id"]
        n += 1
    assert n > 4000
    assert fees.month_to_date("2026-10") > config.platform.byok_free_allowance_usd  # fees ran


def test_synthesized_routes_follow_policy(synth):
    config = load_config(ACME)
    keys = {k.id: k for k in config.byok_keys}
    env_of = {a.id: a.environment for a in config.api_keys}
    for _, _, raw in log_lines(synth.logs_dir):
        r = json.loads(raw)
        for att in r["attempts"]:
            k = keys.get(att["key_id"]) if att["key_id"] else None
            if k and k.filters.environments:
                assert env_of[r["api_key_id"]] in k.filters.environments
            if r["workload"] == "legal-review":
                assert att["credential"] == "byok"
        if r["workload"] in ("legal-review", "financial-analysis") and r["status"] == "ok":
            assert r["zdr"] is True


def test_synth_invoices_add_up(synth):
    m = manifest(synth)
    assert m["engine"] == "synth"
    total = sum(
        (Decimal(str(v)) for p in m["invoices"].values() for v in p["usage_usd_by_day"].values()),
        Decimal(0),
    )
    assert total == Decimal(str(m["totals"]["invoice_usage_usd"])) > 0
    logged = sum(
        (
            Decimal(json.loads(raw)["cost"]["provider_usd"])
            for _, _, raw in log_lines(synth.logs_dir)
        ),
        Decimal(0),
    )
    # Provider-style rounding only: per-line rounding over a few hundred lines.
    assert abs(total - logged) < Decimal("0.05"), (total, logged)
