"""The platform statement (`openrouter_activity`): what the routing platform bills, per UTC
day x gateway model x provider — shared-capacity credits plus BYOK fees in `usage`, with
the BYOK upstream cost (at list price) as the informational `byok_usage_inference`.

The platform meters what it actually routed, so the statement is built from every request
the router served, before any log loss on the customer's side. Amounts are kept in integer
nano-dollars (the logs carry 9 decimal places), so sums are exact.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from routing_core.config import LedgerConfig
from simulator.exact_json import dumps

NANO = 10**9


def nano(value: str | Decimal) -> int:
    """A 9-decimal money string from a log record as integer nano-dollars."""
    return int((Decimal(value) * NANO).to_integral_value())


def from_nano(n: int) -> Decimal:
    return (Decimal(n) / NANO).quantize(Decimal("0.000000001"))


@dataclass(slots=True)
class _Row:
    usage: int = 0
    byok_inference: int = 0
    requests: int = 0
    byok_requests: int = 0
    prompt: int = 0
    completion: int = 0
    reasoning: int = 0


class StatementMeter:
    """Accumulates served requests into statement rows."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str, str], _Row] = defaultdict(_Row)

    def add(
        self,
        day: str,
        model: str,
        provider: str,
        byok: bool,
        fee_n: int,
        credits_n: int,
        list_n: int,
        prompt: int,
        completion: int,
        reasoning: int,
        n: int = 1,
    ) -> None:
        r = self.rows[(day, model, provider)]
        r.usage += fee_n + credits_n
        r.requests += n
        r.prompt += prompt
        r.completion += completion
        r.reasoning += reasoning
        if byok:
            r.byok_inference += list_n
            r.byok_requests += n

    def add_record(self, rec: dict) -> None:
        """A request record (docs/log-contract.md dict) that was served (status ok)."""
        if rec.get("status") != "ok" or not rec.get("model"):
            return
        c, u = rec["cost"], rec["usage"]
        self.add(
            rec["ts"][:10],
            rec["model"],
            rec["provider"],
            rec["credential"] == "byok",
            nano(c["platform_fee_usd"]),
            nano(c["platform_credits_usd"]),
            nano(c["list_usd"]),
            u["input_tokens"] + u["cache_read_tokens"] + u["cache_write_tokens"],
            u["output_tokens"],
            u["reasoning_tokens"],
        )


def _permaslug(config: LedgerConfig, model: str) -> str:
    m = next((m for m in config.models if m.id == model), None)
    if m is None:
        return model
    org = model.split("/")[0]
    upstream = m.endpoints[0].upstream_model.split("/")[-1]
    return f"{org}/{upstream}"


def write_statement(
    config: LedgerConfig, meter: StatementMeter, out_dir: Path, rel_root: Path
) -> tuple[list[str], dict[str, dict[str, Decimal]]]:
    """Write `activity_YYYY-MM.json` files; return (relative files, per-day totals
    {day: {"usage": .., "byok_usage_inference": .., "requests": ..}})."""
    names = {p.id: p.statement_name or p.id for p in config.providers}
    by_month: dict[str, list[dict]] = defaultdict(list)
    totals: dict[str, dict[str, Decimal]] = {}
    for (day, model, provider), r in sorted(meter.rows.items()):
        by_month[day[:7]].append(
            {
                "date": day,
                "model": model,
                "model_permaslug": _permaslug(config, model),
                "endpoint_id": str(
                    uuid.uuid5(uuid.NAMESPACE_URL, f"byok-ledger:{model}:{provider}")
                ),
                "provider_name": names.get(provider, provider),
                "usage": from_nano(r.usage).normalize() if r.usage else Decimal(0),
                "byok_usage_inference": from_nano(r.byok_inference).normalize()
                if r.byok_inference
                else Decimal(0),
                "byok_requests": r.byok_requests,
                "requests": r.requests,
                "prompt_tokens": r.prompt,
                "completion_tokens": r.completion,
                "reasoning_tokens": r.reasoning,
            }
        )
        t = totals.setdefault(
            day,
            {
                "usage_usd": Decimal(0),
                "byok_usage_inference_usd": Decimal(0),
                "requests": Decimal(0),
            },
        )
        t["usage_usd"] += from_nano(r.usage)
        t["byok_usage_inference_usd"] += from_nano(r.byok_inference)
        t["requests"] += r.requests
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for month, rows in sorted(by_month.items()):
        p = out_dir / f"activity_{month}.json"
        p.write_text(dumps({"data": rows}) + "\n", encoding="utf-8")
        files.append(str(p.relative_to(rel_root)))
    return files, totals
