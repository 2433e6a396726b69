"""The one way money is written for people: reports, alerts, CLI summaries, demo and simulator.

Rule: amounts are rounded half-up (away from zero on an exact half: -0.765 is -$0.77, as a
spreadsheet's ROUND and a finance reader would do it) to cents, and negatives carry one
ASCII hyphen-minus before the dollar sign (-$0.77). A hyphen, not the typographic U+2212,
because these strings are pasted into spreadsheets, grepped in logs and posted to Slack,
and only the hyphen parses as a negative number everywhere. An amount that rounds to zero
prints without a sign ($0.00, never -$0.00).

Only display goes through here: stored amounts stay Decimal with 9 places (DuckDB
DECIMAL(38,9)) and are never rounded by this module's callers before they are summed."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, localcontext

__all__ = ["MINUS", "ROUNDING", "format_amount", "format_pct", "format_usd", "round_display"]

MINUS = "-"
ROUNDING = ROUND_HALF_UP
_PLACES_LIMIT = 9  # the ledger's own precision; more digits than that do not exist


def round_display(value: Decimal | int | str, places: int = 2) -> Decimal:
    """`value` rounded half-up to `places` decimals, with negative zero made plain zero."""
    if not 0 <= places <= _PLACES_LIMIT:
        raise ValueError(f"places must be between 0 and {_PLACES_LIMIT}, not {places}")
    d = value if isinstance(value, Decimal) else Decimal(value)
    if not d.is_finite():
        raise ValueError(f"cannot format a non-finite amount {value!r}")
    # Enough precision for any DECIMAL(38,9) (the default context's 28 digits is not).
    with localcontext() as ctx:
        ctx.prec = max(28, d.adjusted() + places + 2)
        q = d.quantize(Decimal(1).scaleb(-places), rounding=ROUNDING)
    return q if q != 0 else abs(q)


def format_amount(value: Decimal | int | str, places: int = 2) -> str:
    """1,234.56 / -0.77 / 0.00: a number column (the unit is in the header)."""
    q = round_display(value, places)
    return f"{MINUS if q < 0 else ''}{abs(q):,.{places}f}"


def format_usd(
    value: Decimal | int | str | None,
    places: int = 2,
    *,
    keep_small: bool = False,
    missing: str = "-",
) -> str:
    """$1,234.56 / -$0.77 / $0.00; `missing` for None. With `keep_small`, a non-zero amount
    under a cent shows four decimals ($0.0040) instead of reading as $0.00."""
    if value is None:
        return missing
    d = value if isinstance(value, Decimal) else Decimal(value)
    if keep_small and places == 2 and d.is_finite() and d != 0 and abs(d) < Decimal("0.01"):
        places = 4
    q = round_display(d, places)
    return f"{MINUS if q < 0 else ''}${abs(q):,.{places}f}"


def format_pct(value: Decimal | int | str | None, places: int = 1, *, missing: str = "-") -> str:
    """12.3% / -4.0% / 0.0%: a percentage (already x100) with the same rounding and minus."""
    if value is None:
        return missing
    q = round_display(value, places)
    return f"{MINUS if q < 0 else ''}{abs(q):.{places}f}%"
