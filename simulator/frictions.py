"""Real-world frictions the reconciliation must find, each switchable and recorded with
exact amounts and ids in the ground-truth manifest:

- `direct_usage`: someone used a BYOK key outside the router (billed, never logged).
- `lost_logs`: a few hours of router request/outcome logs lost (still billed and on the
  platform statement).
- `late_correction`: a FOCUS `ChargeClass=Correction` row for a day of an earlier, closed
  billing period.
- `credit`: a FOCUS `ChargeCategory=Credit` line.
- `duplicate_lines`: an at-least-once shipper re-sent some request lines (same file and a
  replay file).
- `malformed_line`: one broken line in the middle of a log file.
- `price_drift`: a provider price change the router's config does not know about.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

from routing_core.config import LedgerConfig
from routing_core.request_log import log_files
from routing_core.schema import OUTCOMES_DIR, REQUESTS_DIR
from simulator.invoices import FocusExtra, UsageMeter

COST_FIELDS = ("list_usd", "provider_usd", "platform_fee_usd", "platform_credits_usd")
ALL = (
    "direct_usage",
    "lost_logs",
    "late_correction",
    "credit",
    "duplicate_lines",
    "malformed_line",
    "price_drift",
)


def enabled_set(
    frictions: bool | str | list[str] | tuple[str, ...] | set[str] | None,
) -> tuple[str, ...]:
    """True/None = all, False = none, or an explicit list of names."""
    if frictions is True or frictions is None:
        return ALL
    if frictions is False:
        return ()
    names = [frictions] if isinstance(frictions, str) else list(frictions)
    unknown = sorted(set(names) - set(ALL))
    if unknown:
        raise ValueError(f"unknown friction(s) {unknown}; known: {', '.join(ALL)}")
    return tuple(n for n in ALL if n in names)


def _day(
    start: dt.date,
    days: int,
    frac: float,
    weekday: bool = False,
    avoid: frozenset[dt.date] = frozenset(),
) -> dt.date:
    """The day `frac` into the period; on a weekday if asked (a friction on a quiet Sunday
    would hardly show) and not on a day in `avoid` (a scripted incident) when possible."""
    i = min(days - 1, max(0, int(days * frac)))
    for j in (i, i + 1, i - 1, i + 2, i - 2, i + 3, i - 3):
        d = start + dt.timedelta(days=j)
        if 0 <= j < days and (not weekday or d.weekday() < 5) and d not in avoid:
            return d
    return start + dt.timedelta(days=i)


# --------------------------------------------------------------------------- ledger side


def direct_usage(
    config: LedgerConfig, meter: UsageMeter, start: dt.date, days: int, seed: int
) -> dict[str, Any] | None:
    """Add usage on a BYOK key that the router never saw, in a (day, key, model) cell the
    router did not use, so the whole cell is unattributed."""
    day = _day(start, days, 0.35, weekday=True)
    used = {(p, k, u) for (p, d, k, u) in meter.q if d == day}
    used_any = {(p, k, u) for (p, d, k, u) in meter.q}
    keys = sorted(
        config.byok_keys,
        key=lambda k: (
            config.provider(k.provider).invoice_format != "openai_costs",
            k.tier != "prioritized",
            k.order,
            k.id,
        ),
    )
    for k in keys:
        if k.disabled:
            continue
        eps = [(m.id, ep) for m in config.models for ep in m.endpoints if ep.provider == k.provider]
        # Prefer a model nobody routes through this key all period, then one idle that day.
        eps.sort(key=lambda me: ((k.provider, k.id, me[1].upstream_model) in used_any, me[0]))
        for mid, ep in eps:
            if (k.provider, k.id, ep.upstream_model) in used:
                continue
            rng = random.Random(f"{seed}:direct")
            n = 30 + rng.randint(0, 20)
            inp = sum(2500 + rng.randint(0, 3000) for _ in range(n))
            out = sum(600 + rng.randint(0, 900) for _ in range(n))
            meter.add(k.provider, day, k.id, ep.upstream_model, inp, 0, 0, out, n=n)
            return {
                "provider": k.provider,
                "key_id": k.id,
                "account": dict(k.account),
                "day": day.isoformat(),
                "model": mid,
                "upstream_model": ep.upstream_model,
                "requests": n,
                "input_tokens": inp,
                "output_tokens": out,
                "story": "a developer called the provider with the BYOK key directly "
                "(a notebook), bypassing the router",
            }
    return None


def focus_extras(
    config: LedgerConfig,
    meter: UsageMeter,
    start: dt.date,
    days: int,
    want_correction: bool,
    want_credit: bool,
) -> tuple[dict[str, list[FocusExtra]], dict[str, Any]]:
    """A late correction (last FOCUS provider with usage) and a credit (first one)."""
    focus_keys = [
        k
        for k in config.byok_keys
        if config.provider(k.provider).invoice_format == "focus" and not k.disabled
    ]
    extras: dict[str, list[FocusExtra]] = {}
    info: dict[str, Any] = {}
    end = start + dt.timedelta(days=days - 1)
    last_month = f"{end:%Y-%m}"
    prev_month_end = dt.date(end.year, end.month, 1) - dt.timedelta(days=1)
    if want_correction and focus_keys:
        # The correction goes into the last month's file, for a day of the month before.
        best = None
        focus_ids = {x.id for x in focus_keys}
        prev = f"{prev_month_end:%Y-%m}"
        for (p, d, k, u), q in sorted(meter.q.items()):
            if f"{d:%Y-%m}" == prev and k in focus_ids and (best is None or q[3] > best[1][3]):
                best = ((p, d, k, u), q)
        if best is not None:
            (p, d, k, u), q = best
            qty = q[3] // 10
            usd = -(Decimal("0.75") + Decimal(qty) / Decimal(250000)).quantize(Decimal("0.01"))
            charge_day, upstream, tt = d, u, "output"
        else:
            key = focus_keys[-1]
            p, k, charge_day, upstream, tt, qty = (
                key.provider,
                key.id,
                prev_month_end,
                None,
                None,
                None,
            )
            usd = Decimal("-4.20")
        extras.setdefault(p, []).append(
            FocusExtra(
                k,
                charge_day,
                last_month,
                "Usage",
                "Correction",
                usd,
                "Correction: output tokens metered twice by a billing pipeline fault",
                upstream_model=upstream,
                token_type=tt,
                quantity=-qty if qty else None,
            )
        )
        info["late_correction"] = {
            "provider": p,
            "key_id": k,
            "charge_day": charge_day.isoformat(),
            "billing_month": last_month,
            "upstream_model": upstream,
            "usd": usd,
            "charge_class": "Correction",
            "charge_category": "Usage",
            "expect": "joined on ChargePeriod (the earlier, closed period's day), not on the "
            "billing period of the file it arrives in",
        }
    if want_credit and focus_keys:
        key = focus_keys[0]
        day = _day(start, days, 0.5)
        usd = Decimal("-25.00")
        extras.setdefault(key.provider, []).append(
            FocusExtra(
                key.id,
                day,
                f"{day:%Y-%m}",
                "Credit",
                None,
                usd,
                "Promotional credit: generative AI onboarding",
            )
        )
        info["credit"] = {
            "provider": key.provider,
            "key_id": key.id,
            "day": day.isoformat(),
            "billing_month": f"{day:%Y-%m}",
            "usd": usd,
            "charge_category": "Credit",
            "expect": "kept as its own category, never spread into usage",
        }
    return extras, info


# --------------------------------------------------------------------------- log side


def _read(path: Path) -> list[bytes]:
    return [ln for ln in path.read_bytes().split(b"\n") if ln]


def _write(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(ln + b"\n" for ln in lines))


MAX_LISTED_IDS = 5000  # beyond this the manifest gives counts and sums, not every id


def lose_logs(
    log_dir: Path, start: dt.date, days: int, avoid: frozenset[dt.date] = frozenset()
) -> dict[str, Any] | None:
    """Delete the request and outcome lines of a 3-hour window (a router host's disk), on a
    day without a scripted incident (whose evidence must stay in the logs)."""
    day = _day(start, days, 0.62, weekday=True, avoid=avoid)
    t0 = f"{day.isoformat()}T13:00:00"
    t1 = f"{day.isoformat()}T16:00:00"
    ids: list[str] = []
    n_lost = n_served = 0
    sums = {f: Decimal(0) for f in COST_FIELDS}
    cells: dict[tuple, Decimal] = {}
    files = []
    for kind in (REQUESTS_DIR, OUTCOMES_DIR):
        for path in log_files(log_dir, kind, [day.isoformat()]):
            tmp = path.with_suffix(".tmp")
            dropped = 0
            with open(path, "rb") as src, open(tmp, "wb") as dst:
                for raw in src:
                    if not t0 <= _ts_of(raw) < t1:
                        dst.write(raw)
                        continue
                    dropped += 1
                    if kind != REQUESTS_DIR:
                        continue
                    r = json.loads(raw)
                    n_lost += 1
                    if len(ids) < MAX_LISTED_IDS:
                        ids.append(r["request_id"])
                    if r["status"] != "ok":
                        continue
                    n_served += 1
                    c = r["cost"]
                    for f in COST_FIELDS:
                        sums[f] += Decimal(c[f])
                    if r["credential"] == "byok":
                        k = (r["ts"][:10], r["provider"], r["key_id"], r["upstream_model"])
                        cells[k] = cells.get(k, Decimal(0)) + Decimal(c["provider_usd"])
            tmp.replace(path)
            if dropped:
                files.append(str(path.relative_to(log_dir.parent)))
    if not n_lost:
        return None
    return {
        "start": t0 + "Z",
        "end": t1 + "Z",
        "files": sorted(set(files)),
        "requests": n_lost,
        "request_ids": ids,
        "request_ids_complete": len(ids) == n_lost,
        "served": n_served,
        "cost_usd": sums,
        "byok_provider_usd_by_cell": [
            {"day": d, "provider": p, "key_id": k, "upstream_model": u, "provider_usd": v}
            for (d, p, k, u), v in sorted(cells.items())
        ],
        "expect": "billed by providers and the platform but absent from the logs: the "
        "reconciliation shows billed above expected for these cells",
    }


def _ts_of(raw: bytes) -> str:
    """The `ts` of a log line without parsing all of it (lines are written by json.dumps
    with `"ts":"` before the timestamp)."""
    i = raw.find(b'"ts":"')
    if i < 0:
        return json.loads(raw)["ts"]
    return raw[i + 6 : i + 30].decode()


def _head(path: Path, n: int) -> list[bytes]:
    """The first `n` complete lines of a file (without reading the rest)."""
    out = []
    with open(path, "rb") as f:
        for raw in f:
            if not raw.endswith(b"\n") or len(out) >= n:
                break
            out.append(raw.rstrip(b"\n"))
    return out


def duplicate_lines(log_dir: Path, start: dt.date, days: int, seed: int) -> dict[str, Any] | None:
    """Re-send some request lines: 5 appended again to their own file, 20 in a replay file
    (drawn from the first lines of the day's file, which is all a shipper retry resends)."""
    day = _day(start, days, 0.4)
    files = log_files(log_dir, REQUESTS_DIR, [day.isoformat()])
    if not files:
        return None
    path = files[0]
    lines = _head(path, 2000)
    if len(lines) < 4:
        return None
    rng = random.Random(f"{seed}:dupes")
    picks = sorted(rng.sample(range(len(lines)), min(25, len(lines) // 2)))
    same, other = picks[:5], picks[5:]
    with open(path, "ab") as f:
        f.write(b"".join(lines[i] + b"\n" for i in same))
    replay = path.with_name("shipper-replay.jsonl")
    if other:
        _write(replay, [lines[i] for i in other])
    ids = [json.loads(lines[i])["request_id"] for i in picks]
    return {
        "day": day.isoformat(),
        "request_ids": ids,
        "count": len(ids),
        "same_file": {
            "file": str(path.relative_to(log_dir.parent)),
            "request_ids": ids[: len(same)],
        },
        "replay_file": {
            "file": str(replay.relative_to(log_dir.parent)),
            "request_ids": ids[len(same) :],
        }
        if other
        else None,
        "expect": "each duplicated request_id counted once",
    }


def malformed_line(log_dir: Path, start: dt.date, days: int) -> dict[str, Any] | None:
    """Insert one torn line inside a request log file (never its last line); the day's
    smallest file with a few lines, so a million-line day is not rewritten for it."""
    day = _day(start, days, 0.15)
    files = [
        p for p in log_files(log_dir, REQUESTS_DIR, [day.isoformat()]) if len(_head(p, 3)) >= 3
    ]
    if not files:
        return None
    path = min(files, key=lambda p: (p.stat().st_size, p.name))
    head = _head(path, 2001)
    if not head:
        return None
    at = min(len(head) // 2, 1000)  # 0-based index of the line the broken one goes before
    broken = head[at][: max(10, len(head[at]) // 3)]
    tmp = path.with_suffix(".tmp")
    with open(path, "rb") as src, open(tmp, "wb") as dst:
        for i, raw in enumerate(src):
            if i == at:
                dst.write(broken + b"\n")
            dst.write(raw)
    tmp.replace(path)
    return {
        "file": str(path.relative_to(log_dir.parent)),
        "line": at + 1,
        "expect": "quarantined in raw.rejected_records (file, line, error); every other "
        "line of the file still loaded",
    }
