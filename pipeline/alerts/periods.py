"""Calendar-aligned UTC budget periods: daily, weekly (ISO, Monday first) and monthly."""

from __future__ import annotations

# One definition of calendar periods for the router's limits, these alerts and the reports.
from routing_core.calendar import period_bounds, periods_between

__all__ = ["period_bounds", "periods_between"]
