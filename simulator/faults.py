"""The fault timeline: what goes wrong during the simulated period, chosen from the config
so it lands on real routes (a prioritized key that has a backup, the busiest provider, a
ZDR-only workload's whole pool, the API key or guardrail with the smallest daily budget).

Each `FaultEvent` is programmed into the fake providers (router mode) or evaluated by
`FaultModel` (fast synthesizer); both follow the same rules as the fakes: a window in
simulated time, a key label (BYOK key id, or "shared") or a whole provider, and `every`
(fire on every n-th matching request).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from routing_core.config import LedgerConfig
from routing_core.planning import Planner
from routing_core.routes import RouteRequest


@dataclass(slots=True)
class FaultRule:
    """One rule as the fake provider understands it."""

    provider: str
    kind: str  # rate_limit | server_error | revoked
    key: str | None  # key label; None = every key of the provider (an outage)
    start: dt.datetime
    end: dt.datetime
    every: int = 1
    retry_after: float | None = None
    status: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "kind": self.kind,
            "key": self.key,
            "start": _iso(self.start),
            "end": _iso(self.end),
            "every": self.every,
            "retry_after_s": self.retry_after,
            "status": self.status,
        }


@dataclass(slots=True)
class FaultEvent:
    name: str  # key_rate_limit | provider_outage | revoked_key | zdr_pool_loss | ...
    description: str
    start: dt.datetime
    end: dt.datetime
    rules: list[FaultRule] = field(default_factory=list)
    targets: dict[str, Any] = field(default_factory=dict)
    expect: str = ""  # what the logs should show

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "start": _iso(self.start),
            "end": _iso(self.end),
            "targets": self.targets,
            "expect": self.expect,
            "rules": [r.as_dict() for r in self.rules],
        }


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _at(day: dt.date, hour: float) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC) + dt.timedelta(hours=hour)


@dataclass(slots=True)
class TimelineDays:
    """Which simulated day each scripted event lands on (index from the start)."""

    rate_limit: tuple[int, int]  # first and last day of the peak-hour rate limiting
    outage: int  # also the fallback-heavy day
    revoked: int
    zdr_loss: int
    budget: int
    spike: int

    @classmethod
    def for_period(cls, start: dt.date, days: int) -> TimelineDays:
        """Spread the events over the period; the incidents land on weekdays when the
        period has one nearby (an outage on a quiet Sunday shows little)."""

        def d(frac: float, weekday: bool = True) -> int:
            i = min(days - 1, max(0, int(days * frac)))
            if weekday:
                for j in (i, i + 1, i + 2, i - 1, i - 2):
                    if 0 <= j < days and (start + dt.timedelta(days=j)).weekday() < 5:
                        return j
            return i

        return cls(
            rate_limit=(d(0.1, False), d(0.32, False)),
            outage=d(0.45),
            revoked=d(0.22),
            zdr_loss=d(0.58),
            budget=d(0.7),
            spike=max(d(0.86), min(days - 1, 7)),
        )


def _busiest_prioritized_with_backup(config: LedgerConfig) -> tuple[str, str | None] | None:
    """(key, backup key) — a prioritized prod key whose provider has another prioritized
    key: rate limiting it shows the same-provider backup, then shared capacity."""
    keys = [k for k in config.byok_keys if k.tier == "prioritized" and not k.disabled]
    pref = ("ant-prod-primary", "oai-prod-primary")
    keys.sort(
        key=lambda k: (
            pref.index(k.id) if k.id in pref else len(pref),
            k.filters.api_keys is not None,
            k.order,
            k.id,
        )
    )
    for k in keys:
        backups = [
            b
            for b in keys
            if b.provider == k.provider
            and b.id != k.id
            and b.order > k.order
            and b.filters.environments == k.filters.environments
        ]
        if backups:
            return k.id, backups[0].id
    return (keys[0].id, None) if keys else None


def build_timeline(config: LedgerConfig, start: dt.date, days: int) -> list[FaultEvent]:
    """The scripted faults for a period (fewer on very short periods)."""
    td = TimelineDays.for_period(start, days)
    day = [start + dt.timedelta(days=i) for i in range(days)]
    events: list[FaultEvent] = []
    providers = [p.id for p in config.providers]

    picked = _busiest_prioritized_with_backup(config)
    if picked:
        key_id, backup = picked
        provider = next(k.provider for k in config.byok_keys if k.id == key_id)
        ev = FaultEvent(
            "key_rate_limit",
            f"BYOK key {key_id} hits its provider quota at peak hours (14:00-17:00 UTC) on "
            f"weekdays: every 2nd request gets 429 with Retry-After 20s",
            _at(day[td.rate_limit[0]], 0),
            _at(day[td.rate_limit[1]], 24),
            targets={"key_id": key_id, "provider": provider, "backup_key_id": backup},
            expect="attempts with status rate_limited on this key, then the backup key or "
            "shared capacity serving (fallback_reason rate_limited)",
        )
        for i in range(td.rate_limit[0], td.rate_limit[1] + 1):
            if day[i].weekday() < 5:
                ev.rules.append(
                    FaultRule(
                        provider,
                        "rate_limit",
                        key_id,
                        _at(day[i], 14),
                        _at(day[i], 17),
                        every=2,
                        retry_after=20,
                    )
                )
        if ev.rules:
            events.append(ev)

    # The busiest provider goes down for five hours: the fallback-heavy day.
    keys_of = {p: sum(1 for k in config.byok_keys if k.provider == p) for p in providers}
    outage_provider = (
        "anthropic" if "anthropic" in providers else max(providers, key=lambda p: keys_of[p])
    )
    od = day[td.outage]
    events.append(
        FaultEvent(
            "provider_outage",
            f"{outage_provider} is down 12:00-17:00 UTC (503/529 on every key, shared included): "
            "the fallback-heavy day",
            _at(od, 12),
            _at(od, 17),
            rules=[
                FaultRule(
                    outage_provider,
                    "server_error",
                    None,
                    _at(od, 12),
                    _at(od, 17),
                    status=529 if config.provider(outage_provider).api == "anthropic" else 503,
                )
            ],
            targets={"provider": outage_provider, "day": od.isoformat()},
            expect="attempts with status error on this provider; requests served by an approved "
            "alternate (other provider, model fallback) or failing 503 where policy allows none",
        )
    )

    # A key revoked in the console until it is rotated the next day.
    revocable = [
        k
        for k in config.byok_keys
        if not k.disabled and k.filters.environments and "prod" not in k.filters.environments
    ]
    revocable = revocable or [k for k in config.byok_keys if not k.disabled]
    if revocable and days >= 2:
        k = revocable[0]
        rd = day[td.revoked]
        end = _at(rd + dt.timedelta(days=1), 16) if td.revoked + 1 < days else _at(rd, 23)
        events.append(
            FaultEvent(
                "revoked_key",
                f"BYOK key {k.id} was revoked at 10:00 UTC and rotated the next day at 16:00",
                _at(rd, 10),
                end,
                rules=[FaultRule(k.provider, "revoked", k.id, _at(rd, 10), end)],
                targets={"key_id": k.id, "provider": k.provider},
                expect="attempts with status auth_error (401) on this key, the key cooling down, "
                "traffic moving to other keys or shared capacity",
            )
        )

    zdr = _zdr_pool(config)
    if zdr:
        wl, rules_for = zdr
        zd = day[td.zdr_loss]
        s, e = _at(zd, 9), _at(zd, 12)
        rules = [
            FaultRule(
                p,
                kind,
                key,
                s,
                e,
                retry_after=30 if kind == "rate_limit" else None,
                status=503 if kind == "server_error" else None,
            )
            for p, kind, key in rules_for
        ]
        events.append(
            FaultEvent(
                "zdr_pool_loss",
                f"every ZDR route of workload {wl} fails 09:00-12:00 UTC "
                "(its ZDR keys rate limited, its ZDR provider down)",
                s,
                e,
                rules=rules,
                targets={"workload": wl, "day": zd.isoformat()},
                expect="requests of this workload fail (429/503) and never reach a non-ZDR endpoint",
            )
        )
    return events


def _zdr_pool(config: LedgerConfig) -> tuple[str, list[tuple[str, str, str | None]]] | None:
    """A workload with zdr: required and its routes (provider, fault kind, key label)."""
    planner = Planner(config)
    wls = [w for w in config.workloads if w.zdr == "required"]
    wls.sort(key=lambda w: (w.id != "financial-analysis", w.id))
    for w in wls:
        api = next((a for a in config.api_keys if a.default_workload == w.id), None)
        if api is None:
            continue
        models = w.allowed_models or [m.id for m in config.models]
        rules: dict[tuple[str, str, str | None], None] = {}
        for mid in models:
            plan = planner.plan(RouteRequest(api_key_id=api.id, models=(mid,), workload=w.id))
            for a in plan.attempts:
                if a.key_id:
                    rules[
                        (
                            a.provider,
                            "rate_limit" if a.provider == "anthropic" else "server_error",
                            a.key_id,
                        )
                    ] = None
                else:
                    rules[(a.provider, "server_error", "shared")] = None
        if rules:
            return w.id, list(rules)
    return None


class FaultModel:
    """The fakes' fault matching, for the fast synthesizer (same windows, same `every`)."""

    def __init__(self, events: list[FaultEvent]):
        self.rules = [r for e in events for r in e.rules]
        self.seen = [0] * len(self.rules)

    def hot(self, start: dt.datetime, end: dt.datetime) -> set:
        """Providers and (provider, key label) pairs with a rule overlapping [start, end);
        (provider, None) when a rule covers every key. Lets callers skip `check`."""
        out: set = set()
        for r in self.rules:
            if r.start < end and r.end > start:
                out.add(r.provider)
                out.add((r.provider, r.key))
        return out

    def check(self, provider: str, key_label: str, at: dt.datetime) -> FaultRule | None:
        for i, r in enumerate(self.rules):
            if r.provider != provider or (r.key is not None and r.key != key_label):
                continue
            if not (r.start <= at < r.end):
                continue
            self.seen[i] += 1
            if self.seen[i] % max(1, r.every):
                continue
            return r
        return None


def program_fakes(fleet: Any, events: list[FaultEvent]) -> None:
    """Program every rule into the fake providers of a `Fleet`."""
    for e in events:
        for r in e.rules:
            fp = fleet[r.provider]
            if r.kind == "rate_limit":
                fp.add_fault(
                    "rate_limit",
                    key=r.key,
                    start=r.start,
                    end=r.end,
                    every=r.every,
                    retry_after=r.retry_after,
                )
            elif r.kind == "server_error":
                fp.add_fault(
                    "server_error", key=r.key, start=r.start, end=r.end, status=r.status or 503
                )
            elif r.kind == "revoked":
                fp.add_fault("revoked", key=r.key, start=r.start, end=r.end)
            else:
                raise ValueError(f"unknown fault rule kind {r.kind!r}")
