"""The scenario suite passes on the acme config, and each scenario fails when the
behaviour it guards is broken: either the config is edited into an unsafe posture, or the
router under test runs a policy other than the config's (router_factory)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from simulator_testkit import ACME, acme_data, config_from

from byok_ledger.cli import main
from routing_core.config import load_config
from routing_core.router import Router
from simulator.scenarios import SCENARIOS, run_scenarios


def _by_name(verdicts):
    return {v.scenario: v for v in verdicts}


def test_all_scenarios_pass_on_acme():
    v = _by_name(run_scenarios(ACME))
    assert list(v) == list(SCENARIOS)
    assert {n: x.status for n, x in v.items()} == {n: "PASS" for n in SCENARIOS}, {
        n: (x.observed, x.details[:3]) for n, x in v.items() if x.status != "PASS"
    }


def _router_running(data):
    broken = config_from(data)
    return lambda _cfg, **kw: Router(broken, **kw)


def test_strict_byok_reports_a_leak_when_legal_may_use_shared():
    data = acme_data()
    wl = next(w for w in data["workloads"] if w["id"] == "legal-review")
    wl.update(byok="preferred", shared_fallback=True)
    # ZDR alone still keeps shared out (Anthropic's pool is not ZDR, Bedrock's key says
    # never_for_provider): open both, as a careless edit would.
    for k in data["byok_keys"]:
        if k["id"] in ("ant-legal-zdr", "bedrock-prod"):
            k["shared_fallback"] = "allow"
    v = run_scenarios(config_from(data), ["strict_byok_failure"])[0]
    assert v.status == "FAIL"
    assert any("used shared capacity" in d for d in v.details)


def test_zdr_reports_a_non_zdr_route_when_finance_loses_zdr():
    data = acme_data()
    wl = next(w for w in data["workloads"] if w["id"] == "financial-analysis")
    wl["zdr"] = "any"
    g = next(g for g in data["guardrails"] if g["id"] == "confidential")
    g["enforce_zdr"] = False
    v = run_scenarios(config_from(data), ["zdr_constraint"])[0]
    assert v.status == "FAIL"
    assert any("non-ZDR" in d for d in v.details)


def test_environment_separation_catches_a_router_ignoring_environment_filters():
    data = acme_data()
    for k in data["byok_keys"]:
        k.get("filters", {}).pop("environments", None)
    v = run_scenarios(ACME, ["environment_separation"], router_factory=_router_running(data))[0]
    assert v.status == "FAIL"
    assert any("(prod) used ant-nonprod" in d or "(dev) used oai-prod" in d for d in v.details)


def test_key_rate_limit_catches_a_router_that_gives_up_after_one_attempt():
    data = acme_data()
    for w in data["workloads"]:
        w["max_attempts"] = 1
    v = run_scenarios(ACME, ["key_rate_limit"], router_factory=_router_running(data))[0]
    assert v.status == "FAIL"


def test_outage_and_model_fallback_catch_a_router_without_model_fallbacks():
    data = acme_data()
    for w in data["workloads"]:
        w["model_fallbacks"] = []
    v = _by_name(
        run_scenarios(
            ACME, ["provider_outage", "model_fallback"], router_factory=_router_running(data)
        )
    )
    assert v["provider_outage"].status == "FAIL"
    assert v["model_fallback"].status == "FAIL"


def test_split_billing_catches_a_router_with_a_wrong_price_book():
    data = acme_data()
    for m in data["models"]:
        for ep in m["endpoints"]:
            ep["price"]["output"] = Decimal(str(ep["price"]["output"])) * 2
    v = run_scenarios(ACME, ["split_billing"], router_factory=_router_running(data))[0]
    assert v.status == "FAIL"
    assert any("provider invoice" in d for d in v.details)


def test_not_applicable_is_said_plainly():
    data = acme_data()
    for w in data["workloads"]:
        w["model_fallbacks"] = []
    v = run_scenarios(config_from(data), ["model_fallback"])[0]
    assert v.status == "N/A" and "model_fallbacks" in v.observed


def test_cli_exit_codes(tmp_path, capsys):
    assert main(["scenarios", "no_such_scenario"]) == 2
    assert main(["scenarios", "split_billing", "--config", str(ACME)]) == 0
    out = capsys.readouterr().out
    assert "split_billing" in out and "PASS" in out
    # A config edited into an unsafe posture makes the command fail.
    import yaml

    data = acme_data()
    wl = next(w for w in data["workloads"] if w["id"] == "legal-review")
    wl.update(byok="preferred", shared_fallback=True)
    for k in data["byok_keys"]:
        if k["id"] in ("ant-legal-zdr", "bedrock-prod"):
            k["shared_fallback"] = "allow"

    def plain(x):
        if isinstance(x, dict):
            return {k: plain(v) for k, v in x.items()}
        if isinstance(x, list):
            return [plain(v) for v in x]
        return format(x, "f") if isinstance(x, Decimal) else x

    bad = tmp_path / "ledger.yaml"
    bad.write_text(yaml.safe_dump(plain(data), sort_keys=False))
    load_config(bad)
    assert main(["scenarios", "strict_byok_failure", "--config", str(bad)]) == 1
    assert "FAIL" in capsys.readouterr().out


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_each_scenario_runs_alone(name):
    v = run_scenarios(ACME, [name])[0]
    assert v.scenario == name and v.status == "PASS"
