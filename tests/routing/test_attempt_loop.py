"""The attempt loop (routing_core.attempts) driven by hand, without HTTP: each step's
result is whatever the test sends back, so the failover rules are checked in isolation."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from routing_core.attempts import CALL, SLEEP, attempt_loop
from routing_core.planning import Planner
from routing_core.providers import (
    AUTH,
    BAD_REQUEST,
    CONTEXT_LENGTH,
    RATE_LIMITED,
    SERVER,
    ProviderError,
    ProviderResult,
)
from routing_core.request import RequestCtx
from routing_core.routes import RouteRequest
from routing_core.schema import Usage

AT = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)
OK = ProviderResult({}, Usage())


class Timer:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def drive(cfg, results, *, models=("m/a", "m/b"), timer=None):
    """Run the loop over the plan of `models`, answering CALL steps from `results` in order.
    Returns (calls made as (model, provider, key_id), sleeps, outcome, cooled keys)."""
    planner = Planner(cfg)
    req = RouteRequest(api_key_id="app", models=tuple(models), workload=None, at=AT)
    plan = planner.plan(req)
    assert plan.error is None
    timer = timer or Timer()
    ctx = RequestCtx("req_x", timer(), AT, "app", list(models), None, None, plan=plan)
    cooled: list[tuple[str, float]] = []
    gen = attempt_loop(
        ctx,
        settings=cfg.router,
        timeouts={p.id: p.timeout_s for p in cfg.providers},
        rng=random.Random(0),
        timer=timer,
        cool_down=lambda k, s: cooled.append((k, s)),
    )
    calls, sleeps = [], []
    answers = iter(results)
    try:
        step = next(gen)
        while True:
            if step[0] == CALL:
                a = step[1]
                calls.append((a.model, a.provider, a.key_id))
                res = next(answers)
                if isinstance(res, ProviderError):
                    ctx.kinds.append(res.kind)
                step = gen.send(res)
            else:
                assert step[0] == SLEEP and step[1] >= 0
                sleeps.append(step[1])
                step = gen.send(None)
    except StopIteration as stop:
        return calls, sleeps, stop.value, cooled


def err(kind: str, **kw) -> ProviderError:
    return ProviderError(kind, kind, **kw)


def test_first_route_serves(small_cfg):
    calls, sleeps, (served, res), _ = drive(small_cfg(), [OK])
    assert calls == [("m/a", "p1", "k1")] and sleeps == [] and res is OK
    assert served.key_id == "k1"


def test_rate_limit_rests_the_key_and_moves_on(small_cfg):
    calls, sleeps, (served, _), cooled = drive(small_cfg(), [err(RATE_LIMITED), OK])
    assert calls[0] == ("m/a", "p1", "k1") and calls[1] != calls[0]
    assert cooled and cooled[0][0] == "k1" and len(sleeps) == 1  # backoff between attempts
    assert served is not None


def test_auth_error_skips_the_key_for_the_rest_of_the_request(small_cfg):
    calls, _, (served, _), cooled = drive(small_cfg(), [err(AUTH), OK])
    assert ("k1", small_cfg().router.cooldown_s) in cooled
    assert all(k != "k1" for _, _, k in calls[1:])


def test_context_length_skips_the_model(small_cfg):
    calls, _, (served, _), _ = drive(small_cfg(), [err(CONTEXT_LENGTH), OK])
    assert calls[0][0] == "m/a" and calls[1][0] == "m/b" and served.model == "m/b"


def test_bad_request_is_not_failed_over(small_cfg):
    calls, _, (served, error), _ = drive(small_cfg(), [err(BAD_REQUEST)])
    assert served is None and error.code == 400 and len(calls) == 1


def test_every_route_failing_is_exhausted(small_cfg):
    cfg = small_cfg(
        api_keys=[
            {
                "id": "app",
                "secret_sha256": "0" * 64,
                "environment": "prod",
                "app": "t",
                "default_workload": "w",
            }
        ],
        workloads=[{"id": "w", "max_attempts": 3, "deadline_s": 30}],
    )
    calls, sleeps, (served, error), _ = drive(cfg, [err(SERVER)] * 10)
    assert served is None and error.code == 503 and len(calls) == 3 and len(sleeps) == 2


@pytest.mark.parametrize("late", [True, False])
def test_the_deadline_stops_the_loop(small_cfg, late):
    timer = Timer()

    def answers():
        while True:
            timer.t += 1000.0 if late else 0.0  # a failed call that outlived the deadline
            yield err(SERVER)

    calls, _, (served, error), _ = drive(small_cfg(), answers(), timer=timer)
    assert served is None
    assert (len(calls) == 1) if late else (len(calls) > 1)
    if late:
        assert "deadline" in error.message
