"""UTC calendar arithmetic shared by the router, the pipeline, alerts, reports, CLI and
simulator: calendar periods (daily, ISO weekly, monthly) and months written `YYYY-MM`.

One definition, so budget enforcement, budget alerts, reports and exports cut a week or a
month at the same day. Every date here is a UTC calendar day (`datetime.date`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

__all__ = [
    "add_months",
    "month_bounds",
    "month_of",
    "months_between",
    "parse_month",
    "period_bounds",
    "periods_between",
]

PERIODS = ("daily", "weekly", "monthly")


def add_months(day: dt.date, months: int) -> dt.date:
    """The first day of the month `months` after (negative: before) the month of `day`."""
    index = day.year * 12 + (day.month - 1) + months
    if not dt.MINYEAR * 12 <= index < (dt.MAXYEAR + 1) * 12:
        raise ValueError(f"{months} month(s) from {day.isoformat()} is outside years 1..9999")
    return dt.date(index // 12, index % 12 + 1, 1)


def period_bounds(period: str, day: dt.date) -> tuple[dt.date, dt.date]:
    """The (first, last) UTC day, both inclusive, of the calendar `period` (daily, weekly:
    ISO Monday..Sunday, monthly) containing `day`. The one definition shared by limit
    enforcement in the router and budget alerts in the pipeline, so both cut periods alike."""
    if period == "daily":
        return day, day
    if period == "weekly":
        start = day - dt.timedelta(days=day.weekday())
        return start, start + dt.timedelta(days=6)
    if period == "monthly":
        start = day.replace(day=1)
        if start.month == 12:  # no month after December 9999 exists to step back from
            return start, start.replace(day=31)
        return start, add_months(start, 1) - dt.timedelta(days=1)
    raise ValueError(f"unknown budget period {period!r}; use daily, weekly or monthly")


def periods_between(
    period: str, first: dt.date, last: dt.date
) -> Iterator[tuple[dt.date, dt.date]]:
    """Every `period` that overlaps [first, last], oldest first, as (first, last) days."""
    start, end = period_bounds(period, first)
    while start <= last:
        yield start, end
        start, end = period_bounds(period, end + dt.timedelta(days=1))


def parse_month(text: str) -> dt.date:
    """The first day of the month written canonically as `YYYY-MM` (e.g. 2026-11). Anything
    else ("2026-9", "2026-11-01", " 2026-11", "11/2026") raises ValueError naming the format."""
    try:
        start = dt.datetime.strptime(text, "%Y-%m").date()
    except (TypeError, ValueError):
        start = None
    # strptime alone accepts "2026-9"; file names and keys need the one canonical spelling.
    if start is None or month_of(start) != text:  # (strftime's %Y drops 0001's zeros)
        raise ValueError(f"{text!r} is not a month written YYYY-MM (e.g. 2026-11)")
    return start


def month_of(day: dt.date) -> str:
    """`YYYY-MM` of a day."""
    return f"{day.year:04d}-{day.month:02d}"


def month_bounds(month: str) -> tuple[dt.date, dt.date]:
    """(first, last) day, both inclusive, of the month `YYYY-MM`; ValueError if not canonical."""
    return period_bounds("monthly", parse_month(month))


def months_between(first: dt.date, last: dt.date) -> list[str]:
    """Every `YYYY-MM` that overlaps [first, last], oldest first (empty when last < first)."""
    return [month_of(start) for start, _ in periods_between("monthly", first, last)]
