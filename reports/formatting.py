"""How money, percentages and changes are written in reports (from Decimal, never float)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

# The product's one minus sign and rounding rule (routing_core.money), also for % and changes.
from routing_core.money import MINUS, format_pct, format_usd


def usd(value: Decimal | int | None, places: int = 2) -> str:
    """$1,234.56; tiny non-zero amounts keep enough digits to not read as zero."""
    return format_usd(value, places, keep_small=True, missing="\u2014")


def usd_short(value: Decimal) -> str:
    """Axis ticks: $1.2k, $350, $7.50, $0.25."""
    d = Decimal(value)
    if abs(d) >= 1000:
        k = (d / 1000).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        return f"${k.normalize():f}k"
    if d == d.to_integral_value():
        return f"${d.quantize(Decimal(1)):,}"
    # Exact, with at least cents: steps of 2.5 or 0.125 rounded ($0, $3, $5, $8) would label
    # equally spaced gridlines with unequal amounts.
    cents = d.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return f"${cents:,}" if cents == d else f"${d.normalize():,f}"


def pct(value: Decimal | float | None, places: int = 1) -> str:
    """12.3% (routing_core.money.format_pct; a float is read from its shortest repr)."""
    return format_pct(None if value is None else Decimal(str(value)), places, missing="\u2014")


def share(part: Decimal | int, whole: Decimal | int) -> Decimal | None:
    """part/whole as a percentage, None when whole is zero."""
    return Decimal(part) * 100 / Decimal(whole) if whole else None


def change(current: Decimal, previous: Decimal) -> str:
    """Month-over-month change: +12.3% / −4.0% / 'new' when there was nothing before."""
    if previous == 0:
        return "new" if current else "\u2014"
    d = (Decimal(current) - Decimal(previous)) * 100 / abs(Decimal(previous))
    d = d.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    return f"{'+' if d >= 0 else MINUS}{abs(d)}%"
