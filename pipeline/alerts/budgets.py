"""Budget evaluation (`budgets` in docs/config.md, docs/reports-alerts.md): spend per calendar-aligned UTC period from
`marts.split_billing_daily`, threshold alerts (each once per period per budget) and a
forecast alert when the run rate says the limit will be crossed before the period ends."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import duckdb

from pipeline.alerts.model import Alert, alert_id, money
from pipeline.alerts.periods import period_bounds, periods_between
from pipeline.alerts.queries import sql
from routing_core.config import Budget, LedgerConfig
from routing_core.money import format_pct

# A forecast from a single day of a week/month is mostly noise: wait for this many days.
FORECAST_MIN_DAYS = 2


@dataclass(frozen=True)
class BudgetStatus:
    budget_id: str
    scope: str
    match: str
    period: str
    period_start: dt.date
    period_end: dt.date
    as_of: dt.date
    spent_usd: Decimal
    limit_usd: Decimal
    pct: Decimal
    forecast_usd: Decimal | None
    is_current: bool
    daily: tuple[tuple[dt.date, Decimal], ...]  # spend per day in the period up to as_of

    def figures(self) -> dict[str, Any]:
        """The period and its figures, named as the `marts.budget_status` columns."""
        return {
            "budget_id": self.budget_id,
            "scope": self.scope,
            "match": self.match,
            "period": self.period,
            "period_start": self.period_start,
            "period_end": self.period_end,
            "as_of": self.as_of,
            "spent_usd": self.spent_usd,
            "limit_usd": self.limit_usd,
            "pct": self.pct,
            "forecast_usd": self.forecast_usd,
        }


def scope_label(budget: Budget) -> str:
    return f"{budget.scope}:{budget.match}"


def daily_spend(
    conn: duckdb.DuckDBPyConnection,
    config: LedgerConfig,
    budget: Budget,
    start: dt.date,
    end: dt.date,
) -> dict[dt.date, Decimal]:
    """Spend per day of the budget's scope in [start, end]."""
    owner_keys = [k.id for k in config.api_keys if k.owner == budget.match]
    rows = conn.execute(
        sql("budget_daily_spend"),
        {
            "start": start,
            "end": end,
            "scope": budget.scope,
            "match": budget.match,
            "owner_keys": owner_keys,
        },
    ).fetchall()
    return {day: Decimal(spend) for day, spend in rows}


def status_for_period(
    budget: Budget,
    start: dt.date,
    end: dt.date,
    as_of: dt.date,
    spend: dict[dt.date, Decimal],
) -> BudgetStatus:
    """Spent/limit/pct for one period, and the forecast when the period is still open."""
    last = min(end, as_of)
    daily = tuple(sorted((d, v) for d, v in spend.items() if start <= d <= last))
    spent = sum((v for _, v in daily), Decimal(0))
    limit = budget.usd
    pct = (spent * 100 / limit).quantize(Decimal("0.0001")) if limit > 0 else Decimal(0)
    is_current = start <= as_of <= end
    forecast: Decimal | None = None
    if is_current:
        elapsed = (as_of - start).days + 1
        total = (end - start).days + 1
        # Run rate over the days elapsed so far in this period (calendar days: a day with no
        # spend lowers the rate, as it should).
        forecast = spent if elapsed >= total else spent + spent / elapsed * (total - elapsed)
        forecast = forecast.quantize(Decimal("0.000000001"))
    return BudgetStatus(
        budget_id=budget.id,
        scope=budget.scope,
        match=budget.match,
        period=budget.period,
        period_start=start,
        period_end=end,
        as_of=last,
        spent_usd=spent,
        limit_usd=limit,
        pct=pct,
        forecast_usd=forecast,
        is_current=is_current,
        daily=daily,
    )


def alerts_for_status(budget: Budget, st: BudgetStatus) -> list[Alert]:
    """Threshold alerts for every threshold reached, plus the forecast alert (open periods only,
    before the limit is crossed)."""
    scope = scope_label(budget)
    period_key = f"{budget.period}:{st.period_start.isoformat()}"
    span = f"{st.period_start.isoformat()}..{st.period_end.isoformat()}"
    # The payload says `budget_scope` where the table says `scope` (a webhook field contract).
    base = {("budget_scope" if k == "scope" else k): v for k, v in st.figures().items()}
    out: list[Alert] = []
    for t in budget.thresholds_pct:
        if st.spent_usd * 100 < st.limit_usd * t or st.limit_usd <= 0:
            continue
        severity = "critical" if t >= 100 else "warning" if t >= 80 else "info"
        out.append(
            Alert(
                alert_id=alert_id("budget_threshold", f"{budget.id}|{scope}", period_key, str(t)),
                kind="budget_threshold",
                scope=scope,
                period=period_key,
                severity=severity,
                message=(
                    f"Budget {budget.id} ({budget.scope} {budget.match}) reached {t}%: "
                    f"{money(st.spent_usd)} of {money(st.limit_usd)} "
                    f"({format_pct(st.pct)}) spent in the {budget.period} period "
                    f"{span} (data through {st.as_of.isoformat()})."
                ),
                payload={**base, "threshold_pct": t},
            )
        )
    elapsed = (st.as_of - st.period_start).days + 1
    if (
        st.is_current
        and st.forecast_usd is not None
        and st.as_of < st.period_end
        and elapsed >= FORECAST_MIN_DAYS
        and st.spent_usd < st.limit_usd <= st.forecast_usd
    ):
        rate = st.spent_usd / elapsed
        fpct = (st.forecast_usd * 100 / st.limit_usd).quantize(Decimal("1"))
        out.append(
            Alert(
                alert_id=alert_id("budget_forecast", f"{budget.id}|{scope}", period_key),
                kind="budget_forecast",
                scope=scope,
                period=period_key,
                severity="warning",
                message=(
                    f"Budget {budget.id} ({budget.scope} {budget.match}) is forecast to reach "
                    f"{money(st.forecast_usd)} by {st.period_end.isoformat()} ({fpct}% of "
                    f"{money(st.limit_usd)}) at the current run rate of {money(rate)}/day; "
                    f"{money(st.spent_usd)} ({format_pct(st.pct)}) spent so far."
                ),
                payload={**base, "run_rate_usd_per_day": rate.quantize(Decimal("0.000000001"))},
            )
        )
    return out


def evaluate_budgets(
    conn: duckdb.DuckDBPyConnection,
    config: LedgerConfig,
    as_of: dt.date,
    window_days: int,
) -> tuple[list[BudgetStatus], list[Alert]]:
    """Every budget's periods overlapping the last `window_days` days up to `as_of` (so a
    missed run catches up), the current period included."""
    statuses: list[BudgetStatus] = []
    alerts: list[Alert] = []
    first = as_of - dt.timedelta(days=max(window_days, 1) - 1)
    for budget in config.budgets:
        periods = list(periods_between(budget.period, first, as_of))
        spend = daily_spend(conn, config, budget, periods[0][0], as_of)
        for start, end in periods:
            st = status_for_period(budget, start, end, as_of, spend)
            statuses.append(st)
            alerts.extend(alerts_for_status(budget, st))
    return statuses, alerts


__all__ = ["BudgetStatus", "evaluate_budgets", "period_bounds", "status_for_period"]
