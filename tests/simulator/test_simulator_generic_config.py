"""A config other than acme (two providers, one BYOK key, one API key, no workloads, no
budgets): both engines and the scenario suite still run, frictions that do not apply are
null in the manifest, and scenarios without ingredients say N/A instead of failing."""

from __future__ import annotations

import json
from decimal import Decimal

from simulator.run import run_simulation
from simulator.scenarios import run_scenarios

MINI = """\
providers:
  - { id: oai, api: openai, base_url: https://api.openai.com/v1, invoice_format: openai_costs }
  - { id: ant, api: anthropic, base_url: https://api.anthropic.com, invoice_format: anthropic_cost_report }
models:
  - id: openai/gpt-4o-mini
    endpoints:
      - { provider: oai, upstream_model: gpt-4o-mini, price: { input: "0.15", output: "0.60" } }
  - id: anthropic/claude-3.5-haiku
    endpoints:
      - { provider: ant, upstream_model: claude-3-5-haiku, price: { input: "0.80", output: "4.00" } }
shared_capacity: { providers: [oai, ant] }
byok_keys:
  - { id: k1, provider: oai, secret_env: K1, account: { project_id: p1 } }
api_keys:
  - { id: app, secret_sha256: 35c404b39ce7b60ef60f26853c4c141d73585c230638288574230110d09256f9, environment: prod, app: a }
"""


def test_simulate_and_scenarios_on_a_minimal_config(tmp_path):
    cfg = tmp_path / "ledger.yaml"
    cfg.write_text(MINI)
    for engine, rpd in (("router", 40), ("synth", 3000)):
        r = run_simulation(
            cfg,
            tmp_path / engine,
            days=2,
            requests_per_day=rpd,
            seed=3,
            progress=False,
            engine=engine,
        )
        m = json.loads(r.manifest_path.read_text(), parse_float=Decimal)
        assert r.requests_ok > 0
        assert list(m["invoices"]) == ["oai"]  # only the BYOK key's provider is invoiced
        assert m["frictions"]["late_correction"] is None  # no FOCUS provider here
        assert m["frictions"]["credit"] is None
        assert (r.invoices_dir / "_platform").is_dir()
    verdicts = {v.scenario: v for v in run_scenarios(cfg)}
    assert {n: v.status for n, v in verdicts.items()} == {
        "key_rate_limit": "PASS",
        "provider_outage": "PASS",
        "strict_byok_failure": "N/A",
        "zdr_constraint": "N/A",
        "model_fallback": "N/A",
        "split_billing": "PASS",
        "environment_separation": "N/A",
    }
    assert "model_fallbacks" in verdicts["model_fallback"].observed
