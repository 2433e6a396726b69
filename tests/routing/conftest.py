"""Shared fixtures for the routing execution tests: the acme config, one fleet of loopback
fake providers per test session (reset before each test), routers writing to tmp dirs,
and a builder for small hand-made configs."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from routing_core.config import LedgerConfig, load_config, parse_config
from routing_core.request_log import read_records
from routing_core.router import Router
from routing_core.schema import RequestRecord, Usage
from simulator.fake_providers import Fleet, start_fleet

ACME = Path(__file__).resolve().parents[2] / "examples" / "acme" / "ledger.yaml"
SHA0 = "0" * 64


class UsageSwitch:
    """A usage_fn whose behaviour a test can swap while the fleet keeps running."""

    def __init__(self) -> None:
        self.fn: Callable[[dict], Usage] | None = None

    def __call__(self, body: dict) -> Usage:
        if self.fn is not None:
            return self.fn(body)
        return Usage(input_tokens=20, output_tokens=10)


@pytest.fixture(scope="session")
def acme_cfg() -> LedgerConfig:
    return load_config(ACME)


@pytest.fixture(scope="session")
def usage_switch() -> UsageSwitch:
    return UsageSwitch()


@pytest.fixture(scope="session")
def _acme_fleet(acme_cfg: LedgerConfig, usage_switch: UsageSwitch) -> Iterator[Fleet]:
    with start_fleet(acme_cfg, usage_fn=usage_switch) as fleet:
        yield fleet


@pytest.fixture(scope="session")
def _small_fleet(usage_switch: UsageSwitch) -> Iterator[Fleet]:
    with start_fleet(small_config(), usage_fn=usage_switch) as fleet:
        yield fleet


@pytest.fixture
def small_fleet(_small_fleet: Fleet, usage_switch: UsageSwitch) -> Fleet:
    """Fakes for providers p1 (openai) and p2 (anthropic) of `small_config()`."""
    _small_fleet.reset()
    usage_switch.fn = None
    return _small_fleet


@pytest.fixture
def fleet(_acme_fleet: Fleet, usage_switch: UsageSwitch) -> Fleet:
    """The acme fleet with no faults and nothing served yet."""
    _acme_fleet.reset()
    usage_switch.fn = None
    return _acme_fleet


class Sleeps:
    """An injected sleep: records what the router asked for, returns at once."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, s: float) -> None:
        self.calls.append(s)


@pytest.fixture
def make_router(tmp_path: Path) -> Iterator[Callable[..., Router]]:
    routers: list[Router] = []

    def make(config: LedgerConfig, fleet: Fleet, **kw: Any) -> Router:
        kw.setdefault("log_dir", tmp_path / "logs")
        kw.setdefault("rng_seed", 7)
        kw.setdefault("sleep", Sleeps())
        r = Router(config, secrets=fleet.secrets, base_urls=fleet.base_urls, **kw)
        routers.append(r)
        return r

    yield make
    for r in routers:
        r.close()


@pytest.fixture
def acme_router(acme_cfg: LedgerConfig, fleet: Fleet, make_router) -> Router:
    return make_router(acme_cfg, fleet)


def records(router: Router) -> list[dict]:
    """Every request record the router wrote, each validated against the log contract."""
    out = list(read_records(router.log_dir))
    for rec in out:
        RequestRecord.model_validate(rec)
    return out


class Clock:
    """A settable UTC clock for cooldowns, TTLs and outage windows."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self.now = start or dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


SMALL: dict[str, Any] = {
    "providers": [
        {
            "id": "p1",
            "api": "openai",
            "base_url": "http://127.0.0.1:9/v1",
            "invoice_format": "focus",
            "timeout_s": 2,
        },
        {
            "id": "p2",
            "api": "anthropic",
            "base_url": "http://127.0.0.1:9",
            "invoice_format": "focus",
            "timeout_s": 2,
        },
    ],
    "models": [
        {
            "id": "m/a",
            "endpoints": [
                {"provider": "p1", "upstream_model": "a-1", "price": {"input": "1", "output": "2"}},
                {
                    "provider": "p2",
                    "upstream_model": "a-2",
                    "price": {"input": "1", "output": "3"},
                    "zdr": True,
                },
            ],
        },
        {
            "id": "m/b",
            "endpoints": [
                {
                    "provider": "p1",
                    "upstream_model": "b-1",
                    "price": {"input": "0.5", "output": "1"},
                },
            ],
        },
    ],
    "shared_capacity": {"providers": ["p1", "p2"]},
    "byok_keys": [
        {"id": "k1", "provider": "p1", "secret_env": "K1", "order": 1},
        {"id": "k2", "provider": "p2", "secret_env": "K2", "order": 1},
    ],
    "api_keys": [{"id": "app", "secret_sha256": SHA0, "environment": "prod", "app": "t"}],
    "workloads": [{"id": "w", "max_attempts": 4, "deadline_s": 30}],
}


def small_config(**overrides: Any) -> LedgerConfig:
    """SMALL with top-level sections replaced (deep-copied so tests can't leak edits)."""
    data = copy.deepcopy(SMALL)
    data.update(copy.deepcopy(overrides))
    return parse_config(data)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def logged() -> Callable[[Router], list[dict]]:
    """`logged(router)`: the router's request records, each validated (test modules cannot
    import conftest under --import-mode=importlib, so helpers travel as fixtures)."""
    return records


@pytest.fixture
def small_cfg() -> Callable[..., LedgerConfig]:
    """`small_cfg(**sections)`: the SMALL config with top-level sections replaced."""
    return small_config
