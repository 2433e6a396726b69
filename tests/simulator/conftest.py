"""Fixtures of the simulator tests: small simulations run once per module."""

from __future__ import annotations

import pytest
from simulator_testkit import small_run


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """A router-mode run with every friction."""
    return small_run(tmp_path_factory.mktemp("sim"), engine="router")


@pytest.fixture(scope="module")
def sim_clean(tmp_path_factory):
    """The same run without frictions."""
    return small_run(tmp_path_factory.mktemp("sim_clean"), engine="router", frictions=False)
