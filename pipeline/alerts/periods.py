"""Calendar-aligned UTC budget periods: daily, weekly (ISO, Monday first) and monthly."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator


def period_bounds(period: str, day: dt.date) -> tuple[dt.date, dt.date]:
    """The (first, last) day, both inclusive, of the `period` that contains `day`."""
    if period == "daily":
        return day, day
    if period == "weekly":
        start = day - dt.timedelta(days=day.weekday())  # ISO week: Monday .. Sunday
        return start, start + dt.timedelta(days=6)
    if period == "monthly":
        start = day.replace(day=1)
        nxt = (start + dt.timedelta(days=32)).replace(day=1)
        return start, nxt - dt.timedelta(days=1)
    raise ValueError(f"unknown budget period {period!r}; use daily, weekly or monthly")


def periods_between(
    period: str, first: dt.date, last: dt.date
) -> Iterator[tuple[dt.date, dt.date]]:
    """Every period that overlaps [first, last], oldest first."""
    start, end = period_bounds(period, first)
    while start <= last:
        yield start, end
        start, end = period_bounds(period, end + dt.timedelta(days=1))
