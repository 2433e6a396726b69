"""Account matching (SPEC §7): an invoice grouped more coarsely than the BYOK keys (project
only) reconciles every key of that project in one cell; identifiers that differ never match;
the most specific invoice account wins."""

from __future__ import annotations

import json
from decimal import Decimal

from pipeline_testkit import Ledger, materialize, request

T = "2026-03-02T10:00:00.000Z"


def _write(led: Ledger, name: str, lines: list[tuple[str, dict]]) -> None:
    """An OpenAI Costs page; amounts written as JSON numbers exactly as given."""
    results = ",".join(
        '{"object": "organization.costs.result", "amount": {"value": '
        + value
        + ', "currency": "usd"}, "line_item": "gpt-4.1-2025-04-14, output", '
        + json.dumps(ids)[1:-1]
        + "}"
        for value, ids in lines
    )
    (led.invoices / "openai").mkdir(exist_ok=True)
    (led.invoices / "openai" / name).write_text(
        '{"object": "page", "has_more": false, "next_page": null, "data": [{"object": "bucket", '
        '"start_time": 1772409600, "end_time": 1772496000, "results": [' + results + "]}]}"
    )


def test_project_level_invoice_reconciles_both_keys_of_the_project(ledger: Ledger):
    ledger.write_requests(
        "2026-03-02",
        [
            request("a", T, provider_usd="1.00"),
            request("b", T, key_id="oai-prod-backup", provider_usd="3.00"),
            request(
                "c", T, api_key_id="public-chat-staging", key_id="oai-nonprod", provider_usd="0.50"
            ),
        ],
    )
    _write(
        ledger,
        "p.json",
        [
            ("4.4", {"project_id": "proj_acme_prod"}),  # both prod keys, project only
            ("0.5", {"project_id": "proj_acme_nonprod"}),
            ("0.25", {"project_id": "proj_other"}),  # no key of ours
        ],
    )
    assert materialize(ledger, day="2026-03-02").success
    assert ledger.query(
        "SELECT account, expected_usd, billed_usd, status, key_ids FROM marts.reconciliation_daily "
        "ORDER BY account"
    ) == [
        ("project_id=proj_acme_nonprod", Decimal("0.5"), Decimal("0.5"), "matched", "oai-nonprod"),
        (
            "project_id=proj_acme_prod",
            Decimal("4"),
            Decimal("4.4"),
            "over_billed",  # +10 %: outside max($0.01, 1 %), so it is shown, not matched
            "oai-prod-backup,oai-prod-primary",
        ),
        ("project_id=proj_other", Decimal("0"), Decimal("0.25"), "unlogged_usage", None),
    ]
    # 4.40 over estimates 1 : 3 -> 1.10 and 3.30, to the cent.
    assert ledger.query(
        "SELECT key_id, provider_billed_usd FROM marts.split_billing_daily "
        "WHERE attribution = 'logged' ORDER BY key_id"
    ) == [
        ("oai-nonprod", Decimal("0.5")),
        ("oai-prod-backup", Decimal("3.3")),
        ("oai-prod-primary", Decimal("1.1")),
    ]


def test_the_most_specific_invoice_account_wins(ledger: Ledger):
    ledger.write_requests("2026-03-02", [request("a", T, provider_usd="1.00")])
    _write(
        ledger,
        "p.json",
        [
            ("1.0", {"project_id": "proj_acme_prod", "api_key_id": "key_prod_primary"}),
            ("0.7", {"project_id": "proj_acme_prod"}),  # project-level line: another key's usage
        ],
    )
    assert materialize(ledger, day="2026-03-02").success
    assert ledger.query(
        "SELECT account, expected_usd, billed_usd, status FROM marts.reconciliation_daily "
        "ORDER BY account"
    ) == [
        ("project_id=proj_acme_prod", Decimal("0"), Decimal("0.7"), "unlogged_usage"),
        (
            "project_id=proj_acme_prod;api_key_id=key_prod_primary",
            Decimal("1"),
            Decimal("1"),
            "matched",
        ),
    ]
