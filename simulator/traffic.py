"""The traffic model: who calls the router, when, with which models and how many tokens.

Profiles are derived from the config (every router API key with its workload, members and
the models that workload may use); for the acme example a hand-tuned table gives each app
a realistic mix. Days get weekday and diurnal shapes; a workflow is one unit of app work
(a chat conversation, an agent loop, a batch job, a single call) made of planned calls,
each with the token usage the fake provider will report for it. Everything is drawn from
`random.Random` instances seeded with strings, so a seed gives the same traffic on every
machine and Python process.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
import random
import statistics
from dataclasses import dataclass

from routing_core.config import LedgerConfig

# --------------------------------------------------------------------------- shapes

# Relative traffic per UTC hour (index 0 = 00:00-01:00).
CURVES: dict[str, tuple[float, ...]] = {
    # Customer-facing chat: Europe + Americas, evening peak in UTC.
    "consumer": (
        3,
        2,
        2,
        1.5,
        1.5,
        1.5,
        2,
        3,
        4,
        5,
        6,
        6.5,
        7,
        7.5,
        8,
        8.5,
        9,
        9,
        9.5,
        9,
        8,
        7,
        5.5,
        4,
    ),
    # Employees: office hours (EU morning to US afternoon).
    "business": (
        0.5,
        0.3,
        0.3,
        0.3,
        0.3,
        0.5,
        1,
        2,
        5,
        8,
        9,
        9,
        8,
        9,
        10,
        10,
        9.5,
        8,
        6,
        4,
        2.5,
        1.5,
        1,
        0.7,
    ),
    # Offline jobs: overnight window.
    "batch": (
        9,
        10,
        10,
        10,
        9,
        8,
        6,
        3,
        1,
        0.5,
        0.5,
        0.5,
        0.5,
        0.5,
        0.5,
        0.5,
        0.5,
        0.5,
        1,
        1,
        2,
        3,
        5,
        7,
    ),
}
_HOURS = {name: tuple(enumerate(w)) for name, w in CURVES.items()}
# Traffic factor per weekday (Monday first); normalised to a mean of 1 per week.
WEEKDAYS: dict[str, tuple[float, ...]] = {
    "consumer": (1.0, 1.0, 1.0, 1.0, 1.05, 0.9, 0.85),
    "business": (1.15, 1.2, 1.2, 1.15, 1.05, 0.2, 0.15),
    "batch": (1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0),
    "dev": (1.2, 1.25, 1.25, 1.2, 1.0, 0.05, 0.05),
}


@dataclass(frozen=True, slots=True)
class TokenShape:
    """Token sizes of one call: lognormal input and output around their medians, a cached
    prefix (system prompt, shared document) read on a share of the calls."""

    input_median: int
    output_median: int
    input_sigma: float = 0.6
    output_sigma: float = 0.5
    cached_prefix: int = 0
    cache_hit_p: float = 0.0
    reasoning_frac: float = 0.0


@dataclass(frozen=True, slots=True)
class KeyProfile:
    api_key_id: str
    environment: str
    app: str
    workload: str | None
    share: float  # of the day's requests
    style: str  # single | chat | agent | batch
    curve: str  # CURVES key
    weekday: str  # WEEKDAYS key
    models: tuple[tuple[str, float], ...]
    members: tuple[tuple[str | None, float], ...] = ((None, 1.0),)
    tokens: TokenShape = TokenShape(1500, 400)
    requires: tuple[str, ...] = ()


@dataclass(slots=True)
class Call:
    """One planned router call and the usage the provider will report if it serves it
    (its id is `<workflow id>.<step>`)."""

    offset_s: float  # seconds after the workflow start
    input_tokens: int  # uncached input
    cache_read_tokens: int
    cache_write_tokens: int
    output_tokens: int
    reasoning_tokens: int


@dataclass(slots=True)
class Workflow:
    wf_id: str
    start: dt.datetime
    api_key_id: str
    workload: str | None
    member_id: str | None
    models: tuple[str, ...]
    style: str
    calls: list[Call]
    tag: str = ""  # why a fault/event added it ("spike", "runaway", ...)
    idempotent_double: bool = False  # the app submits its first call twice (same key)
    outcome_per: str = "request"  # request | workflow | none
    meta: dict[str, str] | None = None  # app behaviour overrides (on_error, max_errors, ...)


# --------------------------------------------------------------------------- acme table

# Hand-tuned profiles for examples/acme/ledger.yaml (ids must exist in the config; any
# missing id falls back to the generic derivation).
_ACME: dict[str, dict] = {
    "public-chat-prod": dict(
        share=0.30,
        style="chat",
        curve="consumer",
        weekday="consumer",
        models=(
            ("anthropic/claude-sonnet-4", 0.45),
            ("openai/gpt-4.1", 0.25),
            ("openai/gpt-4.1-mini", 0.30),
        ),
        tokens=TokenShape(1400, 380, cached_prefix=1200, cache_hit_p=0.6),
    ),
    "public-chat-staging": dict(
        share=0.04,
        style="chat",
        curve="business",
        weekday="dev",
        models=(("anthropic/claude-sonnet-4", 0.5), ("openai/gpt-4.1-mini", 0.5)),
        tokens=TokenShape(1200, 350, cached_prefix=1200, cache_hit_p=0.5),
    ),
    "assistant-prod": dict(
        share=0.14,
        style="chat",
        curve="business",
        weekday="business",
        models=(
            ("anthropic/claude-sonnet-4", 0.5),
            ("openai/gpt-4.1", 0.3),
            ("anthropic/claude-3.5-haiku", 0.2),
        ),
        members=(("erin", 0.5), ("carol", 0.3), ("bob", 0.2)),
        tokens=TokenShape(2600, 500, cached_prefix=2000, cache_hit_p=0.5),
    ),
    "coding-agent-prod": dict(
        share=0.22,
        style="agent",
        curve="business",
        weekday="business",
        models=(
            ("anthropic/claude-sonnet-4", 0.65),
            ("google/gemini-2.5-pro", 0.25),
            ("anthropic/claude-opus-4.1", 0.10),
        ),
        members=(("carol", 1.0),),
        tokens=TokenShape(7000, 700, cached_prefix=6000, cache_hit_p=0.9, reasoning_frac=0.2),
    ),
    "coding-agent-dev": dict(
        share=0.04,
        style="agent",
        curve="business",
        weekday="dev",
        models=(("anthropic/claude-sonnet-4", 0.5), ("google/gemini-2.5-flash", 0.5)),
        members=(("carol", 1.0),),
        tokens=TokenShape(5000, 600, cached_prefix=4000, cache_hit_p=0.85),
    ),
    "finance-prod": dict(
        share=0.05,
        style="single",
        curve="business",
        weekday="business",
        models=(("anthropic/claude-sonnet-4", 0.7), ("anthropic/claude-opus-4.1", 0.3)),
        members=(("bob", 1.0),),
        tokens=TokenShape(9000, 1100, cached_prefix=5000, cache_hit_p=0.4),
    ),
    "legal-prod": dict(
        share=0.05,
        style="single",
        curve="business",
        weekday="business",
        models=(("anthropic/claude-opus-4.1", 0.55), ("anthropic/claude-sonnet-4", 0.45)),
        members=(("alice", 1.0),),
        tokens=TokenShape(16000, 1400, cached_prefix=12000, cache_hit_p=0.5),
    ),
    "batch-prod": dict(
        share=0.13,
        style="batch",
        curve="batch",
        weekday="batch",
        models=(
            ("openai/gpt-4.1-mini", 0.5),
            ("meta-llama/llama-3.3-70b-instruct", 0.3),
            ("google/gemini-2.5-flash", 0.2),
        ),
        tokens=TokenShape(1800, 260, input_sigma=0.4),
    ),
    "sandbox-dev": dict(
        share=0.03,
        style="single",
        curve="business",
        weekday="dev",
        models=(
            ("openai/gpt-4o-mini", 0.5),
            ("openai/gpt-4.1-mini", 0.3),
            ("anthropic/claude-3.5-haiku", 0.2),
        ),
        members=(("dan", 1.0),),
        tokens=TokenShape(600, 220),
    ),
}

# Generic defaults by data class (for configs other than acme).
_BY_CLASS: dict[str, dict] = {
    "public": dict(
        style="chat",
        curve="consumer",
        weekday="consumer",
        tokens=TokenShape(1400, 380, cached_prefix=1000, cache_hit_p=0.5),
    ),
    "internal": dict(
        style="chat",
        curve="business",
        weekday="business",
        tokens=TokenShape(2500, 500, cached_prefix=1500, cache_hit_p=0.4),
    ),
    "proprietary_code": dict(
        style="agent",
        curve="business",
        weekday="business",
        tokens=TokenShape(7000, 700, cached_prefix=6000, cache_hit_p=0.9),
    ),
    "financial": dict(
        style="single", curve="business", weekday="business", tokens=TokenShape(9000, 1100)
    ),
    "legal": dict(
        style="single",
        curve="business",
        weekday="business",
        tokens=TokenShape(16000, 1400, cached_prefix=10000, cache_hit_p=0.5),
    ),
    "confidential": dict(
        style="single", curve="business", weekday="business", tokens=TokenShape(6000, 900)
    ),
    "regulated": dict(
        style="single", curve="business", weekday="business", tokens=TokenShape(6000, 900)
    ),
}


def build_profiles(config: LedgerConfig) -> list[KeyProfile]:
    """One profile per router API key, in config order."""
    models = {m.id for m in config.models}
    members = {m.id for m in config.members}
    workloads = {w.id: w for w in config.workloads}
    out: list[KeyProfile] = []
    for k in config.api_keys:
        wl = workloads.get(k.default_workload) if k.default_workload else None
        spec = dict(_ACME.get(k.id, {}))
        if spec:
            spec["models"] = tuple((m, w) for m, w in spec["models"] if m in models)
            spec["members"] = tuple(
                (m, w) for m, w in spec.get("members", ((None, 1.0),)) if m is None or m in members
            ) or ((None, 1.0),)
        if not spec or not spec["models"]:
            base = _BY_CLASS.get(wl.data_class if wl else "internal", _BY_CLASS["internal"])
            if k.environment != "prod":
                base = {**base, "weekday": "dev"}
            candidates = (
                list(wl.allowed_models)
                if wl and wl.allowed_models
                else [m.id for m in config.models]
            )
            # A few models, the first most used (1, 1/2, 1/3 ...).
            chosen = candidates[:3]
            spec = {
                **base,
                "share": 1.0,
                "models": tuple((m, 1.0 / (i + 1)) for i, m in enumerate(chosen)),
                "members": ((k.owner, 1.0),) if k.owner else ((None, 1.0),),
            }
        if k.owner:
            spec["members"] = ((k.owner, 1.0),)
        out.append(
            KeyProfile(
                api_key_id=k.id,
                environment=k.environment,
                app=k.app,
                workload=wl.id if wl else None,
                share=float(spec.get("share", 1.0)),
                style=spec["style"],
                curve=spec["curve"],
                weekday=spec["weekday"],
                models=spec["models"],
                members=spec["members"],
                tokens=spec["tokens"],
                requires=tuple(wl.requires) if wl else (),
            )
        )
    total = sum(p.share for p in out) or 1.0
    return [_with_share(p, p.share / total) for p in out]


def _with_share(p: KeyProfile, share: float) -> KeyProfile:
    return KeyProfile(
        p.api_key_id,
        p.environment,
        p.app,
        p.workload,
        share,
        p.style,
        p.curve,
        p.weekday,
        p.models,
        p.members,
        p.tokens,
        p.requires,
    )


# --------------------------------------------------------------------------- drawing


def _cumulative(weighted: tuple[tuple, ...]) -> tuple[list[float], list]:
    acc, items, total = [], [], 0.0
    for item, w in weighted:
        total += w
        acc.append(total)
        items.append(item)
    return acc, items


def _pick(rng: random.Random, weighted: tuple[tuple, ...]):
    """One item of ((item, weight), ...), by weight."""
    return _draw(rng, *_cumulative(weighted))


def _draw(rng: random.Random, acc: list[float], items: list):
    return items[min(len(items) - 1, bisect.bisect_right(acc, rng.random() * acc[-1]))]


_LN_SIZE = 4096
_LN_TABLES: dict[float, list[float]] = {}


def _lognormal_table(sigma: float) -> list[float]:
    """exp(N(0, sigma)) at 4096 evenly spaced quantiles: drawing one is a table lookup
    (millions of calls a day), and the spread is the lognormal's."""
    t = _LN_TABLES.get(sigma)
    if t is None:
        nd = statistics.NormalDist(0.0, sigma)
        t = [math.exp(nd.inv_cdf((i + 0.5) / _LN_SIZE)) for i in range(_LN_SIZE)]
        _LN_TABLES[sigma] = t
    return t


def _style_steps(rng: random.Random, style: str) -> tuple[int, float, float]:
    """(number of calls, min gap s, max gap s) of one workflow."""
    if style == "agent":
        return rng.randint(3, 9), 3.0, 25.0
    if style == "chat":
        return _pick(rng, ((1, 0.45), (2, 0.3), (3, 0.15), (4, 0.1))), 20.0, 150.0
    if style == "batch":
        return rng.randint(8, 24), 0.5, 2.5
    return 1, 0.0, 0.0


def make_calls(
    rng: random.Random,
    style: str,
    shape: TokenShape,
    n: int,
    gap: tuple[float, float],
    size_factor: float = 1.0,
) -> list[Call]:
    """The calls of one workflow. Conversations and agent loops grow their context each
    step and read the previous context from the provider's prompt cache. (Hot on
    million-request days: local names on purpose.)"""
    calls: list[Call] = []
    offset = 0.0
    context = 0  # tokens carried over from previous steps (history)
    rand, bits = rng.random, rng.getrandbits
    in_med, in_tab = shape.input_median * size_factor, _lognormal_table(shape.input_sigma)
    out_med, out_tab = shape.output_median * size_factor, _lognormal_table(shape.output_sigma)
    prefix, hit_p = shape.cached_prefix, shape.cache_hit_p
    write_p = hit_p + (1 - hit_p) / 2
    grows = style in ("agent", "chat")
    g0, gw = gap[0], gap[1] - gap[0]
    for i in range(n):
        fresh = int(in_med * in_tab[bits(12)]) or 1
        out = int(out_med * out_tab[bits(12)]) or 1
        cache_read = cache_write = 0
        if grows and i > 0:
            # The previous turn's prompt is a cached prefix now; the new part is uncached.
            cache_read = context
            fresh = max(50, fresh // 3)
        elif prefix:
            # The shared prefix (system prompt, repository map, document) on top of the
            # request's own input: read from cache, written to it, or sent uncached.
            x = rand()
            if x < hit_p:
                cache_read = prefix
            elif x < write_p:
                cache_write = prefix
            else:
                fresh += prefix
        calls.append(
            Call(offset, fresh, cache_read, cache_write, out, int(out * shape.reasoning_frac))
        )
        # Next step's cached prefix: everything so far, capped well inside any context.
        context = min(cache_read + fresh + cache_write + out, 150_000)
        offset += g0 + rand() * gw
    return calls


_OUTCOME_PER = {"agent": "workflow", "batch": "request", "chat": "workflow"}


def day_workflows(
    profiles: list[KeyProfile], day: dt.date, requests_per_day: int, seed: int, day_index: int
) -> list[Workflow]:
    """The regular traffic of one UTC day, sorted by start time."""
    out: list[Workflow] = []
    weekday = day.weekday()
    stamp = f"{day:%Y%m%d}"
    t_day = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    for p in profiles:
        rng = random.Random(f"{seed}:traffic:{day.isoformat()}:{p.api_key_id}")
        rand = rng.random
        factor = WEEKDAYS[p.weekday][weekday] * (0.9 + 0.2 * rand())
        target = requests_per_day * p.share * factor
        planned = int(target) + (1 if rand() < target - int(target) else 0)
        seq = 0
        hours = _cumulative(_HOURS[p.curve])
        model_t = _cumulative(p.models)
        member_t = _cumulative(p.members)
        per_default = _OUTCOME_PER.get(p.style, "request")
        head = f"wf-{stamp}-{p.api_key_id}-"
        while planned > 0:
            n, g0, g1 = _style_steps(rng, p.style)
            if p.style != "agent":
                n = min(n, planned)
            ms = int((_draw(rng, *hours) + rand()) * 3_600_000)
            start = t_day + dt.timedelta(milliseconds=ms)
            primary = (_draw(rng, *model_t),)
            member = _draw(rng, *member_t)
            calls = make_calls(rng, p.style, p.tokens, n, (g0, g1))
            per = "none" if rand() < 0.12 else per_default  # 12%: nobody rated it
            out.append(
                Workflow(
                    f"{head}{seq:05d}",
                    start,
                    p.api_key_id,
                    p.workload,
                    member,
                    primary,
                    p.style,
                    calls,
                    "",
                    p.style == "chat" and rand() < 0.01,
                    per,
                )
            )
            seq += 1
            planned -= len(calls)
    out.sort(key=lambda w: (w.start, w.wf_id))
    return out


# --------------------------------------------------------------------------- outcomes

# How often users accept an answer from each model (acme's models); others are derived
# from their output price (dearer models are, on average, accepted more often).
_QUALITY = {
    "anthropic/claude-opus-4.1": 0.93,
    "anthropic/claude-sonnet-4": 0.89,
    "openai/gpt-4.1": 0.86,
    "google/gemini-2.5-pro": 0.85,
    "openai/o4-mini": 0.83,
    "openai/gpt-4.1-mini": 0.77,
    "google/gemini-2.5-flash": 0.75,
    "anthropic/claude-3.5-haiku": 0.72,
    "meta-llama/llama-3.3-70b-instruct": 0.66,
    "openai/gpt-4o-mini": 0.63,
}


def quality_table(config: LedgerConfig) -> dict[str, float]:
    """Acceptance probability per gateway model."""
    prices = sorted({(max(ep.price.output for ep in m.endpoints), m.id) for m in config.models})
    out: dict[str, float] = {}
    for rank, (_, mid) in enumerate(prices):
        pct = rank / max(1, len(prices) - 1)
        out[mid] = _QUALITY.get(mid, round(0.62 + 0.3 * pct, 3))
    return out
