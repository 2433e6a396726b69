"""Gateway fixtures: one fleet of loopback fake providers and one real `byok-ledger serve`
process per test session (faults cleared before each test)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from gatewaykit import Server, write_config

from simulator.fake_providers import Fleet, start_fleet


@pytest.fixture(scope="session")
def gw_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Fleet, Path, Server]]:
    folder = tmp_path_factory.mktemp("gw")
    _, cfg = write_config(folder, {})
    with start_fleet(cfg) as fleet:
        path, _ = write_config(folder, fleet.base_urls)
        server = Server(path, fleet.secrets)
        try:
            yield fleet, folder / "logs", server
        finally:
            server.stop()


@pytest.fixture
def gw(gw_env: tuple[Fleet, Path, Server]) -> tuple[Fleet, Path, Server]:
    fleet, logs, server = gw_env
    fleet.reset()
    assert server.proc.poll() is None, server.stderr()
    return fleet, logs, server
