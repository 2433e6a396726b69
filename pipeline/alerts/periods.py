"""Calendar-aligned UTC budget periods: daily, weekly (ISO, Monday first) and monthly."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

# One definition of calendar periods for the router's limits and these alerts.
from routing_core.budgets import period_bounds

__all__ = ["period_bounds", "periods_between"]


def periods_between(
    period: str, first: dt.date, last: dt.date
) -> Iterator[tuple[dt.date, dt.date]]:
    """Every period that overlaps [first, last], oldest first."""
    start, end = period_bounds(period, first)
    while start <= last:
        yield start, end
        start, end = period_bounds(period, end + dt.timedelta(days=1))
