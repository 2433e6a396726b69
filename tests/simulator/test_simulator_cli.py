"""`byok-ledger simulate` end to end through the CLI, the adapted config, the fault
timeline in the logs, and money written without float artefacts."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from simulator_testkit import ACME, log_lines, manifest

from byok_ledger.cli import main
from routing_core.config import load_config
from simulator.exact_json import dumps, loads_exact


def test_simulate_cli_writes_a_runnable_folder(tmp_path, capsys):
    out = tmp_path / "demo"
    rc = main(
        [
            "simulate",
            "--config",
            str(ACME),
            "--out",
            str(out),
            "--days",
            "2",
            "--requests-per-day",
            "40",
            "--seed",
            "5",
            "--quiet",
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "requests logged" in text and "byok-ledger run --config" in text
    cfg = load_config(out / "ledger.yaml")
    assert cfg.logs_dir == (out / "logs").resolve()
    assert cfg.invoices_dir == (out / "invoices").resolve()
    assert cfg.duckdb_path == (out / "ledger.duckdb").resolve()
    assert cfg.reports_dir == (out / "reports").resolve()
    src = load_config(ACME)
    # Everything but the paths is the source config, money still exact.
    assert cfg.model_dump(exclude={"paths", "source"}) == src.model_dump(
        exclude={"paths", "source"}
    )
    assert (out / "ground_truth.json").is_file()
    assert sorted(p.name for p in (out / "logs" / "requests").iterdir()) == [
        "dt=2026-10-26",
        "dt=2026-10-27",
    ]


def test_simulate_cli_reports_a_bad_config(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("providers: []\n")
    assert main(["simulate", "--config", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "bad.yaml" in capsys.readouterr().err


def test_fault_timeline_shows_in_the_logs(sim):
    m = manifest(sim)
    names = [f["name"] for f in m["faults"]]
    assert names == [
        "key_rate_limit",
        "provider_outage",
        "revoked_key",
        "zdr_pool_loss",
        "budget_exhausted",
        "spend_spike",
    ]
    recs = []
    for _, _, raw in log_lines(sim.logs_dir):
        if raw.endswith(b"}"):  # skip the deliberately torn line
            recs.append(json.loads(raw))
    atts = [(r, a) for r in recs for a in r["attempts"]]
    f = {x["name"]: x for x in m["faults"]}
    # the rate-limited key answered 429 inside its windows
    k = f["key_rate_limit"]["targets"]["key_id"]
    assert any(a["key_id"] == k and a["http_status"] == 429 for _, a in atts)
    # the outage: the provider answered 5xx and other routes served meanwhile
    p = f["provider_outage"]["targets"]["provider"]
    s, e = f["provider_outage"]["start"][:19], f["provider_outage"]["end"][:19]
    window = [r for r in recs if s <= r["ts"][:19] < e]
    assert any(
        a["provider"] == p and a["http_status"] in (503, 529) for r in window for a in r["attempts"]
    )
    assert all(r["provider"] != p for r in window if r["status"] == "ok")
    # the revoked key: 401s
    k = f["revoked_key"]["targets"]["key_id"]
    assert any(a["key_id"] == k and a["http_status"] == 401 for _, a in atts)
    # the ZDR pool loss: the workload fails safely, never on a non-ZDR route
    wl = f["zdr_pool_loss"]["targets"]["workload"]
    s, e = f["zdr_pool_loss"]["start"][:19], f["zdr_pool_loss"]["end"][:19]
    hit = [r for r in recs if r["workload"] == wl and s <= r["ts"][:19] < e]
    assert hit and all(r["status"] == "error" for r in hit)
    assert all(r["zdr"] is not False for r in recs if r["workload"] == wl)
    # the budget: 402s on the runaway's API key, without a provider attempt
    api = f["budget_exhausted"]["targets"]["api_key_id"]
    e402 = [r for r in recs if r["api_key_id"] == api and r["error_code"] == 402]
    assert e402 and all(r["attempts"] == [] for r in e402)
    # the spike: that day's spend on the workload/model dwarfs the others
    t = f["spend_spike"]["targets"]
    spend: dict[str, Decimal] = {}
    for r in recs:
        if r["workload"] == t["workload"] and r["model"] == t["model"]:
            spend[r["ts"][:10]] = spend.get(r["ts"][:10], Decimal(0)) + sum(
                Decimal(r["cost"][x])
                for x in ("provider_usd", "platform_fee_usd", "platform_credits_usd")
            )
    assert spend[t["day"]] > Decimal(60)  # over the $40 batch-daily budget
    assert all(v < spend[t["day"]] / 10 for d, v in spend.items() if d != t["day"])


def test_outcomes_point_at_logged_requests_and_workflows(sim_clean):
    req_ids = set()
    wf_ids = set()
    for _, _, raw in log_lines(sim_clean.logs_dir):
        r = json.loads(raw)
        req_ids.add(r["request_id"])
        wf_ids.add(r["workflow_id"])
    events = [json.loads(raw) for _, _, raw in log_lines(sim_clean.logs_dir, "outcomes")]
    assert events
    assert all(
        (e["request_id"] in req_ids) if e["request_id"] else (e["workflow_id"] in wf_ids)
        for e in events
    )
    assert {e["accepted"] for e in events} == {True, False}


def test_exact_json_writes_decimals_as_numbers():
    text = dumps(
        {"a": Decimal("0.000000100"), "b": Decimal("-0"), "c": [Decimal("1E+2")], "s": 'x"y'},
        indent=None,
    )
    assert text == '{"a": 0.000000100,"b": 0,"c": [100],"s": "x\\"y"}'
    back = loads_exact(text)
    assert back["a"] == Decimal("0.0000001") and back["c"] == [100]
    assert "E" not in text and "e-" not in text
    with pytest.raises(TypeError):
        dumps({"x": 0.1})
