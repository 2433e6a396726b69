"""The fake providers' programmable faults behave as documented (the router and simulator
tests rely on them), and what they served is recorded for invoices."""

from __future__ import annotations

import datetime as dt
import threading

import httpx
import pytest

from simulator.fake_providers import SHARED_LABEL, FakeProvider, demo_secrets, start_fleet

T0 = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now


BODY = {"model": "gpt-x", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}


def post(client, fp, secret="s1", body=BODY):
    return client.post(
        fp.url + "/chat/completions", json=body, headers={"authorization": f"Bearer {secret}"}
    )


@pytest.fixture
def client():
    with httpx.Client() as c:
        yield c


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def fp(clock):
    with FakeProvider("openai", name="p", keys={"s1": "acct1", "s2": "acct2"}, clock=clock) as f:
        yield f


def test_every_nth_and_times(fp, client):
    fp.add_fault("server_error", every=3, times=2)
    codes = [post(client, fp).status_code for _ in range(9)]
    assert codes == [200, 200, 500, 200, 200, 500, 200, 200, 200]


def test_fault_scoped_to_key_and_model(fp, client):
    fp.add_fault("rate_limit", key="acct2", model="gpt-x", retry_after=4)
    assert post(client, fp, "s1").status_code == 200
    r = post(client, fp, "s2")
    assert r.status_code == 429 and r.headers["retry-after"] == "4"
    assert r.json()["error"]["code"] == "rate_limit_exceeded"
    assert post(client, fp, "s2", {**BODY, "model": "other"}).status_code == 200


def test_outage_window_follows_the_fake_clock(fp, client, clock):
    fp.outage(T0 + dt.timedelta(minutes=5), T0 + dt.timedelta(minutes=10))
    assert post(client, fp).status_code == 200
    clock.now = T0 + dt.timedelta(minutes=6)
    r = post(client, fp)
    assert r.status_code == 503 and r.json()["error"]["type"] == "server_error"
    clock.now = T0 + dt.timedelta(minutes=10)
    assert post(client, fp).status_code == 200


def test_per_key_rate_limit_window(fp, client, clock):
    fp.rate_limit("acct1", requests=2, window_s=60)
    assert [post(client, fp).status_code for _ in range(3)] == [200, 200, 429]
    r = post(client, fp)
    assert r.headers["retry-after"] == "60"
    assert post(client, fp, "s2").status_code == 200  # other key unaffected
    clock.now = T0 + dt.timedelta(seconds=61)
    assert post(client, fp).status_code == 200


def test_revoke_and_unknown_key(fp, client):
    fp.revoke("acct1")
    assert post(client, fp).status_code == 401
    fp.unrevoke("acct1")
    assert post(client, fp).status_code == 200
    r = post(client, fp, "nope")
    assert r.status_code == 401 and r.json()["error"]["type"] == "invalid_request_error"


def test_served_records_clock_key_model_usage_status(fp, client, clock):
    post(client, fp)
    fp.add_fault("server_error", times=1)
    post(client, fp, "s2")
    s = fp.served
    assert [(x.ts, x.key, x.model, x.status) for x in s] == [
        (T0, "acct1", "gpt-x", 200),
        (T0, "acct2", "gpt-x", 500),
    ]
    assert s[0].usage.input_tokens >= 1 and s[0].usage.output_tokens >= 1
    assert s[1].usage.input_tokens == 0  # failures carry no usage
    assert fp.count() == 1 and fp.count(status=None) == 2 and fp.count(key="acct2") == 0


def test_concurrent_clients_are_all_recorded(fp):
    def worker():
        with httpx.Client() as c:
            for _ in range(20):
                assert post(c, fp).status_code == 200

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert fp.count() == 80


def test_unknown_path_is_404(fp, client):
    r = client.post(fp.url + "/embeddings", json={})
    assert r.status_code == 404


def test_fleet_from_config_labels_keys_and_serves_models(acme_cfg, client):
    secrets = demo_secrets(acme_cfg)
    with start_fleet(acme_cfg, secrets) as fleet:
        assert set(fleet.base_urls) == {p.id for p in acme_cfg.providers}
        oai = fleet["openai"]
        assert oai.url.endswith("/v1")
        r = post(
            client, oai, secrets["ACME_OPENAI_PROD_KEY"], {**BODY, "model": "gpt-4.1-2025-04-14"}
        )
        assert r.status_code == 200
        r = post(
            client,
            oai,
            secrets["BYOK_LEDGER_SHARED_OPENAI_KEY"],
            {**BODY, "model": "gpt-4.1-2025-04-14"},
        )
        assert r.status_code == 200
        assert [s.key for s in oai.served] == ["oai-prod-primary", SHARED_LABEL]
        # A model the provider does not serve gets the real API's 404.
        r = post(client, oai, secrets["ACME_OPENAI_PROD_KEY"], {**BODY, "model": "claude"})
        assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
