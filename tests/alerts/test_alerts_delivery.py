"""Delivery to a real webhook receiver on 127.0.0.1: once only, failures retried on the next
run, dry runs send and record nothing."""

from __future__ import annotations

import datetime as dt
import socket

import httpx
from martkit import CHAT_MONTHLY_BUDGET as BUDGET
from martkit import NO_ANOMALIES

from pipeline.alerts import evaluate_alerts
from pipeline.alerts.delivery import deliver
from pipeline.alerts.model import Alert

D = dt.date


def setup(make_cfg, marts, url: str | None):
    marts.add(D(2026, 11, 1), "55")  # 50% reached, nothing else (1 day: no forecast)
    return make_cfg(budgets=[BUDGET], alerts={**NO_ANOMALIES, "webhook_url": url})


def ledger(marts):
    return marts.query(
        "SELECT alert_id, attempts, delivered_at IS NOT NULL, last_error FROM marts.alerts"
    )


def test_delivered_once_and_never_again(make_cfg, marts, receiver):
    cfg = setup(make_cfg, marts, receiver.url)
    r = evaluate_alerts(cfg)
    assert len(r.new) == 1 and len(r.delivered) == 1 and r.failed == []
    [body] = receiver.received
    assert body["kind"] == "budget_threshold" and body["severity"] == "info"
    assert body["text"].startswith(":information_source: [byok-ledger info] Budget chat-monthly")
    assert body["fields"]["threshold_pct"] == 50 and body["fields"]["spent_usd"] == "55.000000000"
    assert receiver.headers[0]["idempotency-key"] == body["alert_id"] == r.new[0].alert_id
    [(aid, attempts, delivered, err)] = ledger(marts)
    assert (attempts, delivered, err) == (1, True, None)

    r2 = evaluate_alerts(cfg)  # same alert found again: not new, not sent
    assert len(r2.evaluated) == 1 and r2.new == [] and r2.delivered == []
    assert len(receiver.received) == 1

    marts.add(D(2026, 11, 2), "50")  # 100%: only the new threshold is sent
    evaluate_alerts(cfg)
    assert [b["fields"]["threshold_pct"] for b in receiver.received] == [50, 100]
    assert receiver.received[1]["severity"] == "critical"


def test_failed_delivery_is_retried_on_the_next_run(make_cfg, marts, receiver):
    cfg = setup(make_cfg, marts, receiver.url)
    receiver.fail_next = 2  # every attempt of the first run gets a 500
    r1 = evaluate_alerts(cfg, max_attempts=2, backoff_base_s=0.01)
    assert len(r1.new) == 1 and r1.delivered == [] and len(r1.failed) == 1
    assert "HTTP 500" in r1.failed[0][1]
    [(_, attempts, delivered, err)] = ledger(marts)
    assert (attempts, delivered) == (2, False) and "HTTP 500" in err
    assert receiver.received == []

    r2 = evaluate_alerts(cfg, max_attempts=2, backoff_base_s=0.01)  # receiver is back
    assert r2.new == [] and [a.alert_id for a in r2.delivered] == [r1.new[0].alert_id]
    assert len(receiver.received) == 1
    [(_, attempts, delivered, _)] = ledger(marts)
    assert (attempts, delivered) == (3, True)

    evaluate_alerts(cfg, max_attempts=2, backoff_base_s=0.01)
    assert len(receiver.received) == 1  # never twice


def test_one_500_is_retried_within_the_run(make_cfg, marts, receiver):
    cfg = setup(make_cfg, marts, receiver.url)
    receiver.fail_next = 1
    r = evaluate_alerts(cfg, max_attempts=3, backoff_base_s=0.01)
    assert len(r.delivered) == 1 and len(receiver.received) == 1
    assert ledger(marts)[0][1:3] == (2, True)


def test_dry_run_sends_and_records_nothing(make_cfg, marts, receiver):
    cfg = setup(make_cfg, marts, receiver.url)
    r = evaluate_alerts(cfg, dry_run=True)
    assert len(r.evaluated) == 1 and len(r.new) == 1 and r.delivered == []
    assert receiver.received == []
    tables = marts.query("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'marts'")
    assert tables == [("split_billing_daily",)]
    # After a real run, a dry run sees the alert as already recorded.
    evaluate_alerts(cfg)
    r = evaluate_alerts(cfg, dry_run=True)
    assert r.new == [] and len(receiver.received) == 1


def test_unreachable_webhook_fails_without_leaking_the_url(make_cfg, marts):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/services/T000/B000/secret-token"
    cfg = setup(make_cfg, marts, url)
    r = evaluate_alerts(cfg, max_attempts=2, backoff_base_s=0.01)
    assert len(r.failed) == 1
    [(_, attempts, delivered, err)] = ledger(marts)
    assert attempts == 2 and not delivered and "secret-token" not in err and "ConnectError" in err


def test_after_a_failure_the_rest_wait_for_the_next_run(make_cfg, marts, receiver):
    marts.add(D(2026, 11, 1), "120")  # 50% and 100%: two alerts
    cfg = make_cfg(budgets=[BUDGET], alerts={**NO_ANOMALIES, "webhook_url": receiver.url})
    receiver.fail_next = 2
    r = evaluate_alerts(cfg, max_attempts=2, backoff_base_s=0.01)
    assert len(r.failed) == 1 and len(r.deferred) == 1 and r.delivered == []
    assert sorted(row[1] for row in ledger(marts)) == [0, 2]  # the deferred one was not tried
    r = evaluate_alerts(cfg, max_attempts=2, backoff_base_s=0.01)
    assert len(r.delivered) == 2 and len(receiver.received) == 2


def test_no_webhook_configured_records_without_sending(make_cfg, marts):
    cfg = setup(make_cfg, marts, None)
    r = evaluate_alerts(cfg)
    assert len(r.new) == 1 and r.delivered == [] and r.failed == []
    assert ledger(marts)[0][1:3] == (0, False)


def test_deliver_backoff_is_exponential_and_bounded():
    waits: list[float] = []
    transport = httpx.MockTransport(lambda req: httpx.Response(503, text="busy"))
    alert = Alert(
        alert_id="x",
        kind="anomaly",
        scope="api_key:a",
        period="day:2026-11-01",
        severity="warning",
        message="m",
    )
    with httpx.Client(transport=transport) as client:
        d = deliver(
            client,
            "http://hook.invalid/x",
            alert,
            max_attempts=5,
            backoff_base_s=1,
            backoff_max_s=3,
            sleep=waits.append,
        )
    assert not d.ok and d.attempts == 5 and "HTTP 503" in (d.error or "")
    assert waits == [1, 2, 3, 3]
    # A 400 is not retried: the receiver will not change its mind.
    with httpx.Client(transport=httpx.MockTransport(lambda req: httpx.Response(400))) as client:
        d = deliver(client, "http://hook.invalid/x", alert, max_attempts=5, sleep=waits.append)
    assert d.attempts == 1 and not d.ok


def test_webhook_url_override_and_the_demo_receiver(make_cfg, marts):
    from pipeline.alerts import WebhookReceiver

    cfg = setup(make_cfg, marts, "http://127.0.0.1:9/never-used")
    with WebhookReceiver() as rx:
        r = evaluate_alerts(cfg, webhook_url=rx.url)
    assert len(r.delivered) == 1 and rx.received[0]["alert_id"] == r.delivered[0].alert_id
