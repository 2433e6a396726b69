"""Provider usage is bounded before it is priced, so that one absurd provider answer can
never be booked as real spend or exhaust a budget.

What a provider reports is read field by field (`read_count`): a count must be a whole,
finite, non-negative number of at most `MAX_COUNT`; anything else (a string, a boolean,
-5, 1.5, 1e20, 1e400 = infinity) is *invalid*. Then `bound_usage` decides what is booked,
and flags it in the record's `usage_source`:

- `provider`: the provider's counts, used as they are.
- `estimated`: the provider reported no usage at all (or a stream ended before it did):
  input is estimated from the prompt's size and output from the text the provider
  returned, at `CHARS_PER_TOKEN` characters a token. Never a silent $0. A stream that
  ended early with the input reported (Anthropic's message_start) keeps that input and
  counts at least the streamed text as output.
- `clamped`: some count was invalid or out of bounds and was replaced: an invalid input
  count or a prompt above the served endpoint's context length -> the prompt estimate
  (at most the context length); an invalid output count -> the response-text estimate;
  output above the request's `max_tokens` plus `MAX_TOKENS_TOLERANCE` -> `max_tokens`;
  an invalid cache or reasoning count -> 0.

The same rules bound what a restarted router re-reads from the request logs
(`bound_seeded_cost`): a poisoned line on disk cannot make a limit answer 402 forever.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from routing_core.schema import Cost, Usage

if TYPE_CHECKING:
    from routing_core.pricing import PriceBook

USAGE_PROVIDER = "provider"
USAGE_ESTIMATED = "estimated"
USAGE_CLAMPED = "clamped"
USAGE_SOURCES = (USAGE_PROVIDER, USAGE_ESTIMATED, USAGE_CLAMPED)

MAX_COUNT = 10**12  # the log contract's ceiling for any token count
CHARS_PER_TOKEN = 4  # estimate: English text and code average about 4 characters a token
MAX_TOKENS_TOLERANCE = 16  # output a few tokens above max_tokens is the provider's rounding
INVALID = -1  # an invalid count inside a parsed Usage, until bound_usage replaces it

# What an adapter says about the usage object it parsed.
STATE_OK = "ok"
STATE_MISSING = "missing"
STATE_INVALID = "invalid"
STATE_PARTIAL = "partial"  # a stream that ended early: input reported, output not final


def read_count(v: Any) -> int | None:
    """A token count as the provider sent it: the int, 0 when absent (None), or None when
    invalid (not a whole, finite number in 0..MAX_COUNT)."""
    if v is None:
        return 0
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v if 0 <= v <= MAX_COUNT else None
    if isinstance(v, float):
        if math.isfinite(v) and v.is_integer() and 0 <= v <= MAX_COUNT:
            return int(v)
        return None
    return None


def text_tokens(chars: int) -> int:
    """Tokens estimated for `chars` characters (rounded up)."""
    return -(-max(0, chars) // CHARS_PER_TOKEN)


def prompt_chars(messages: Any, tools: Any) -> int:
    """Characters of prompt text (message contents, text parts, tool definitions); an image
    or other non-text part counts as 1500 characters."""
    chars = 0
    for m in messages or ():
        c = m.get("content") if isinstance(m, dict) else None
        if isinstance(c, str):
            chars += len(c)
        elif isinstance(c, list):
            for p in c:
                if isinstance(p, dict):
                    t = p.get("text")
                    chars += len(t) if isinstance(t, str) else 1500
    if tools:
        chars += len(repr(tools))
    return chars


def estimate_prompt_tokens(chars: int, n_messages: int) -> int:
    """An estimate of what the provider bills for a prompt (4 tokens of framing a message)."""
    return text_tokens(chars) + 4 * n_messages + 4


def response_chars(body: dict[str, Any]) -> int:
    """Characters of the answer text and tool-call arguments of a chat.completion body."""
    chars = 0
    for ch in body.get("choices") or ():
        msg = ch.get("message") if isinstance(ch, dict) else None
        if not isinstance(msg, dict):
            continue
        c = msg.get("content")
        if isinstance(c, str):
            chars += len(c)
        for call in msg.get("tool_calls") or ():
            fn = call.get("function") if isinstance(call, dict) else None
            if isinstance(fn, dict):
                chars += len(str(fn.get("arguments") or "")) + len(str(fn.get("name") or ""))
    return chars


def bound_usage(
    usage: Usage,
    state: str,
    *,
    max_tokens: int,
    context_length: int,
    prompt_estimate: int,
    output_estimate: int,
) -> tuple[Usage, str]:
    """The usage to book and its `usage_source` (see module docstring). `usage` may hold
    `INVALID` in any field when `state` is `invalid`."""
    if state == STATE_MISSING:
        return (
            Usage(
                input_tokens=min(prompt_estimate, context_length),
                output_tokens=min(output_estimate, max_tokens),
            ),
            USAGE_ESTIMATED,
        )
    inp, cr, cw = usage.input_tokens, usage.cache_read_tokens, usage.cache_write_tokens
    out, rs = usage.output_tokens, usage.reasoning_tokens
    limit_out = max_tokens + MAX_TOKENS_TOLERANCE
    if state == STATE_PARTIAL:  # output not final yet: at least what was streamed
        out = max(out, min(output_estimate, max_tokens))
        u, source = bound_usage(
            Usage(inp, cr, cw, out, rs),
            STATE_OK if min(inp, cr, cw) >= 0 else STATE_INVALID,
            max_tokens=max_tokens,
            context_length=context_length,
            prompt_estimate=prompt_estimate,
            output_estimate=output_estimate,
        )
        return u, USAGE_ESTIMATED
    if state == STATE_OK and out <= limit_out and inp + cr + cw <= context_length and rs <= out:
        return usage, USAGE_PROVIDER
    if inp < 0 or cr < 0 or cw < 0 or inp + cr + cw > context_length:
        inp, cr, cw = min(prompt_estimate, context_length), 0, 0
    if out < 0:
        out = min(output_estimate, max_tokens)
    elif out > limit_out:
        out = max_tokens
    rs = min(max(rs, 0), out)
    return Usage(inp, cr, cw, out, rs), USAGE_CLAMPED


def finite_money(v: Any) -> Decimal | None:
    """A cost field read back from a log line: a finite, non-negative Decimal, else None."""
    if v is None:
        return Decimal(0)
    if not isinstance(v, str | int) or isinstance(v, bool):
        return None
    try:
        d = Decimal(v)
    except ArithmeticError:
        return None
    return d if d.is_finite() and d >= 0 else None


def bound_seeded_cost(cost: Cost, ceiling: Cost) -> Cost:
    """A re-read record's cost, each layer capped at `ceiling` (the most one request on
    that route can cost): a poisoned line counts at most one request's worth."""
    return Cost(
        list_usd=min(cost.list_usd, ceiling.list_usd),
        provider_usd=min(cost.provider_usd, ceiling.provider_usd),
        platform_fee_usd=min(cost.platform_fee_usd, ceiling.platform_fee_usd),
        platform_credits_usd=min(cost.platform_credits_usd, ceiling.platform_credits_usd),
    )


class SeedCeiling:
    """`ceiling(record, ts)` for `SpendGuard.seed_from_logs`: the most one request on a
    logged record's route can cost (a full context window of input at the dearest input
    rate and as much output, the full fee). A route the config no longer knows gets the
    dearest ceiling of any endpoint. Cached per route and UTC day."""

    def __init__(self, prices: PriceBook, context: Mapping[tuple[str, str], int]):
        self.prices = prices
        self.context = context
        self._cache: dict[tuple, Cost] = {}

    def __call__(self, rec: dict, ts: dt.datetime) -> Cost:
        from routing_core.routes import Attempt

        cred = "byok" if rec.get("credential") == "byok" else "shared"
        key_id = rec.get("key_id") if cred == "byok" else None
        model, provider = rec.get("model"), rec.get("provider")
        key = (
            model if isinstance(model, str) else "",
            provider if isinstance(provider, str) else "",
        )
        ck = (key, cred, key_id if isinstance(key_id, str) else None, ts.date())
        hit = self._cache.get(ck)
        if hit is not None:
            return hit
        n = self.context.get(key)
        if n is not None:
            top = self.prices.max_cost_breakdown(Attempt(key[0], key[1], cred, ck[2], ""), n, n, ts)
        else:
            top = Cost()
            for (m, p), n in self.context.items():
                c = self.prices.max_cost_breakdown(Attempt(m, p, cred, None, ""), n, n, ts)
                top = Cost(*(max(x, y) for x, y in zip(_layers(top), _layers(c), strict=True)))
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[ck] = top
        return top


def _layers(c: Cost) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    return (c.list_usd, c.provider_usd, c.platform_fee_usd, c.platform_credits_usd)
