"""Routing-plan latency (target: p50 <= 20 us on 300 models, 200 BYOK keys, 50 API keys).

Generates that config in memory (seeded), builds a `Planner`, and times single-model
`plan()` calls with time.perf_counter_ns: once on the memoised path (what a router sees for
repeated request shapes) and once through `plan_uncached()` (every plan built from the
indexes). Prints p50/p90/p99 in microseconds for each.

    .venv/bin/python bench/bench_plan.py [--iterations 20000] [--seed 1]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import random
import statistics
import time

from routing_core.config import parse_config
from routing_core.planning import Planner
from routing_core.routes import RouteRequest

N_PROVIDERS = 12
N_MODELS = 300
N_KEYS = 200
N_API_KEYS = 50
ENVS = ["prod", "staging", "dev"]


def generate(seed: int) -> dict:
    rnd = random.Random(seed)
    providers = [
        {
            "id": f"prov{i}",
            "api": "openai" if i % 2 else "anthropic",
            "base_url": f"http://127.0.0.1:{9000 + i}",
            "invoice_format": "focus",
            "data_collection": "allow" if i % 4 == 0 else "deny",
        }
        for i in range(N_PROVIDERS)
    ]
    pids = [p["id"] for p in providers]
    models = []
    for i in range(N_MODELS):
        eps = rnd.sample(pids, rnd.choice([1, 2, 2, 3, 4]))
        models.append(
            {
                "id": f"vendor{i % 20}/model-{i}",
                "endpoints": [
                    {
                        "provider": p,
                        "upstream_model": f"model-{i}-{p}",
                        "price": {
                            "input": f"{rnd.randint(10, 500) / 100:.2f}",
                            "output": f"{rnd.randint(50, 2000) / 100:.2f}",
                        },
                        "zdr": rnd.random() < 0.4,
                        "supports": rnd.sample(["tools", "json", "vision"], rnd.randint(1, 3)),
                        "context_length": 128000,
                    }
                    for p in eps
                ],
            }
        )
    served: dict[str, list[str]] = {p: [] for p in pids}
    for m in models:
        for e in m["endpoints"]:
            served[e["provider"]].append(m["id"])
    api_ids = [f"api-{i}" for i in range(N_API_KEYS)]
    keys = []
    for i in range(N_KEYS):
        p = pids[i % N_PROVIDERS]
        filters: dict = {}
        if rnd.random() < 0.5:
            filters["environments"] = [rnd.choice(ENVS)]
        if rnd.random() < 0.3:
            filters["models"] = rnd.sample(served[p], min(len(served[p]), rnd.randint(1, 10)))
        if rnd.random() < 0.2:
            filters["api_keys"] = rnd.sample(api_ids, 3)
        keys.append(
            {
                "id": f"key-{i}",
                "provider": p,
                "secret_env": f"KEY_{i}",
                "tier": "fallback" if rnd.random() < 0.15 else "prioritized",
                "order": rnd.randint(0, 5),
                "filters": filters,
                "zdr": rnd.choice([None, True, False]),
            }
        )
    guardrails = [
        {"id": "default", "ignored_providers": [pids[-1]]},
        {"id": "conf", "enforce_zdr": True, "allowed_providers": pids[:8]},
        {"id": "cheap", "budget": {"usd": "50", "reset": "daily"}},
    ]
    workloads = [
        {"id": "chat", "data_class": "public", "model_fallbacks": [models[0]["id"]]},
        {"id": "internal", "data_class": "internal", "allowed_providers": pids[:9]},
        {
            "id": "legal",
            "data_class": "legal",
            "byok": "strict",
            "zdr": "required",
            "shared_fallback": False,
        },
        {"id": "code", "data_class": "proprietary_code", "requires": ["tools"]},
    ]
    api_keys = [
        {
            "id": a,
            "secret_sha256": f"{i:064x}",
            "environment": ENVS[i % 3],
            "app": f"app{i % 7}",
            "guardrail": rnd.choice([None, None, "conf", "cheap"]),
            "default_workload": rnd.choice([None, "chat", "internal", "legal", "code"]),
            "limit": {"usd": "1000", "reset": "monthly"},
        }
        for i, a in enumerate(api_ids)
    ]
    return {
        "providers": providers,
        "models": models,
        "shared_capacity": {"providers": pids[: N_PROVIDERS - 2], "price_markup_pct": "5"},
        "byok_keys": keys,
        "api_keys": api_keys,
        "guardrails": guardrails,
        "workloads": workloads,
    }


def percentiles(ns: list[int]) -> tuple[float, float, float]:
    q = statistics.quantiles(ns, n=100)
    return (q[49] / 1000, q[89] / 1000, q[98] / 1000)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--iterations", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    t0 = time.perf_counter()
    cfg = parse_config(generate(args.seed))
    t1 = time.perf_counter()
    planner = Planner(cfg)
    t2 = time.perf_counter()
    print(
        f"config: {len(cfg.models)} models, {len(cfg.byok_keys)} BYOK keys, "
        f"{len(cfg.api_keys)} API keys, {len(cfg.providers)} providers"
    )
    print(
        f"validate config: {(t1 - t0) * 1000:.1f} ms; build planner indexes: "
        f"{(t2 - t1) * 1000:.1f} ms"
    )

    rnd = random.Random(args.seed + 1)
    at = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)
    api_ids = [a.id for a in cfg.api_keys]
    model_ids = [m.id for m in cfg.models]
    reqs = [
        RouteRequest(api_key_id=rnd.choice(api_ids), models=(rnd.choice(model_ids),), at=at)
        for _ in range(2000)
    ]
    n_attempts = [len(planner.plan_uncached(r).attempts) for r in reqs]
    print(
        f"requests: 2000 distinct single-model shapes, mean {statistics.mean(n_attempts):.1f} "
        f"attempts/plan (incl. workload fallbacks)"
    )

    gc.disable()
    try:
        for label, fn in (
            ("uncached (plan built from indexes)", planner.plan_uncached),
            ("memoised (plan(), repeated shapes)", planner.plan),
        ):
            for r in reqs:  # warm-up (also fills the memo for the memoised run)
                fn(r)
            samples = []
            clock = time.perf_counter_ns
            for i in range(args.iterations):
                r = reqs[i % len(reqs)]
                s = clock()
                fn(r)
                samples.append(clock() - s)
            p50, p90, p99 = percentiles(samples)
            print(
                f"plan {label}: p50 {p50:.1f} us  p90 {p90:.1f} us  p99 {p99:.1f} us "
                f"({args.iterations} calls)"
            )
    finally:
        gc.enable()


if __name__ == "__main__":
    main()
