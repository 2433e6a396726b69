"""Inline SVG charts for the finance report: stacked daily bars, horizontal bars and budget
burn-down lines. Every text that comes from data is escaped here (the charts are inserted as
markup); each chart has role="img", a <title> and a <desc>, axis labels and a legend."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Sequence
from decimal import Decimal

from markupsafe import Markup, escape

from reports.formatting import usd, usd_short

# Okabe-Ito palette: distinguishable with the common colour-vision deficiencies.
PALETTE = {
    "blue": "#0072B2",
    "orange": "#E69F00",
    "green": "#009E73",
    "vermillion": "#D55E00",
    "sky": "#56B4E9",
    "grey": "#8a8f98",
    "purple": "#CC79A7",
}
_ids = itertools.count(1)


def _nice_max(value: Decimal) -> tuple[Decimal, Decimal]:
    """A round axis maximum >= value and a step giving 4-5 gridlines."""
    if value <= 0:
        return Decimal(1), Decimal("0.25")
    exp = Decimal(10) ** (len(str(int(value))) - 1) if value >= 1 else Decimal("0.1")
    while exp > value:
        exp /= 10
    for mult in (1, 2, 2.5, 5, 10):
        step = exp * Decimal(str(mult)) / 2
        top = (value / step).to_integral_value(rounding="ROUND_CEILING") * step
        if top / step <= 5:
            return top, step
    return exp * 10, exp * 2


def _svg_open(width: int, height: int, title: str, desc: str) -> tuple[str, list[str]]:
    n = next(_ids)
    tid, did = f"chart-{n}-title", f"chart-{n}-desc"
    head = (
        f'<svg class="chart" role="img" aria-labelledby="{tid} {did}" viewBox="0 0 {width} {height}" '
        f'width="100%" preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{tid}">{escape(title)}</title><desc id="{did}">{escape(desc)}</desc>'
    )
    return head, []


def _legend(items: Sequence[tuple[str, str]], x: float, y: float) -> str:
    parts = []
    for name, color in items:
        parts.append(
            f'<rect x="{x:.1f}" y="{y - 9:.1f}" width="12" height="12" rx="2" fill="{color}"/>'
            f'<text x="{x + 17:.1f}" y="{y + 1:.1f}" class="legend">{escape(name)}</text>'
        )
        x += 24 + 7.2 * len(name)
    return "".join(parts)


def _y_grid(
    left: float,
    top: float,
    pw: float,
    ph: float,
    ymax: Decimal,
    step: Decimal,
    fmt: Callable[[Decimal], str],
) -> list[str]:
    """Horizontal gridlines with their y tick labels, every `step` from 0 to `ymax`."""
    out = []
    v = Decimal(0)
    while v <= ymax:
        y = top + ph - float(v / ymax) * ph
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        out.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" class="tick" text-anchor="end">{escape(fmt(v))}</text>'
        )
        v += step
    return out


def _day_label(day: dt.date) -> str:
    return day.strftime("%b %d").replace(" 0", " ")


def stacked_bars(
    title: str,
    desc: str,
    days: Sequence[dt.date],
    series: Sequence[tuple[str, str, Sequence[Decimal]]],
    *,
    y_label: str,
    percent: bool = False,
    width: int = 860,
    height: int = 300,
) -> Markup:
    """One bar per day, one stacked segment per series (name, colour, values)."""
    head, _ = _svg_open(width, height, title, desc)
    left, right, top, bottom = 78, 16, 34, 52
    pw, ph = width - left - right, height - top - bottom
    totals = [sum((s[2][i] for s in series), Decimal(0)) for i in range(len(days))]
    ymax, step = (
        (Decimal(100), Decimal(25)) if percent else _nice_max(max(totals, default=Decimal(0)))
    )
    fmt = (lambda v: f"{v:.0f}%") if percent else usd_short
    parts = [head, _legend([(n, c) for n, c, _ in series], left, 18)]
    parts += _y_grid(left, top, pw, ph, ymax, step, fmt)
    n = max(len(days), 1)
    slot = pw / n
    bar = max(2.0, slot * 0.72)
    label_every = max(1, round(n / 12))
    for i, day in enumerate(days):
        x = left + i * slot + (slot - bar) / 2
        base = top + ph
        tip = ", ".join(
            f"{name} {fmt(vals[i]) if percent else usd(vals[i])}" for name, _, vals in series
        )
        parts.append(f"<g><title>{escape(day.isoformat())}: {escape(tip)}</title>")
        for _name, color, vals in series:
            h = float(vals[i] / ymax) * ph if ymax else 0
            if h <= 0:
                continue
            base -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{base:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="{color}"/>'
            )
        parts.append("</g>")
        if i % label_every == 0:
            cx = left + i * slot + slot / 2
            parts.append(
                f'<text x="{cx:.1f}" y="{top + ph + 16}" class="tick" text-anchor="middle">'
                f"{escape(_day_label(day))}</text>"
            )
    parts.append(
        f'<line x1="{left}" x2="{left + pw}" y1="{top + ph}" y2="{top + ph}" class="axis"/>'
    )
    parts.append(
        f'<text x="{left + pw / 2:.1f}" y="{height - 8}" class="axis-label" text-anchor="middle">Day (UTC)</text>'
        f'<text transform="translate(16 {top + ph / 2:.1f}) rotate(-90)" class="axis-label" '
        f'text-anchor="middle">{escape(y_label)}</text></svg>'
    )
    return Markup("".join(parts))


def hbars(
    title: str,
    desc: str,
    items: Sequence[tuple[str, Decimal]],
    *,
    x_label: str,
    color: str = PALETTE["blue"],
    width: int = 860,
) -> Markup:
    """Horizontal bars, one per item, largest first, each labelled with its amount."""
    row_h = 28
    left, right, top, bottom = 210, 110, 12, 44
    height = top + bottom + row_h * max(len(items), 1)
    head, _ = _svg_open(width, height, title, desc)
    pw = width - left - right
    vmax = max((v for _, v in items), default=Decimal(0))
    xmax, step = _nice_max(vmax)
    parts = [head]
    v = Decimal(0)
    while v <= xmax:
        x = left + float(v / xmax) * pw
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{height - bottom}" class="grid"/>'
        )
        parts.append(
            f'<text x="{x:.1f}" y="{height - bottom + 16}" class="tick" text-anchor="middle">{escape(usd_short(v))}</text>'
        )
        v += step
    for i, (label, value) in enumerate(items):
        y = top + i * row_h
        w = float(value / xmax) * pw if xmax and value > 0 else 0
        short = label if len(label) <= 28 else label[:27] + "…"
        parts.append(
            f"<g><title>{escape(label)}: {escape(usd(value))}</title>"
            f'<text x="{left - 8}" y="{y + row_h / 2 + 4:.1f}" class="cat" text-anchor="end">{escape(short)}</text>'
            f'<rect x="{left}" y="{y + 5}" width="{w:.1f}" height="{row_h - 10}" rx="2" fill="{color}"/>'
            f'<text x="{left + w + 6:.1f}" y="{y + row_h / 2 + 4:.1f}" class="val">{escape(usd(value))}</text></g>'
        )
    parts.append(
        f'<text x="{left + pw / 2:.1f}" y="{height - 8}" class="axis-label" text-anchor="middle">{escape(x_label)}</text></svg>'
    )
    return Markup("".join(parts))


def burn_down(
    title: str,
    desc: str,
    points: Sequence[tuple[dt.date, Decimal]],
    limit: Decimal,
    month_start: dt.date,
    month_end: dt.date,
    forecast: Decimal | None = None,
    *,
    width: int = 420,
    height: int = 230,
) -> Markup:
    """Cumulative spend through the month against the limit and the even-pace line."""
    head, _ = _svg_open(width, height, title, desc)
    left, right, top, bottom = 64, 14, 30, 44
    pw, ph = width - left - right, height - top - bottom
    spent = points[-1][1] if points else Decimal(0)
    ymax, step = _nice_max(max(limit, spent, forecast or Decimal(0)) * Decimal("1.05"))
    ndays = (month_end - month_start).days + 1

    def xy(day: dt.date, v: Decimal) -> tuple[float, float]:
        x = left + ((day - month_start).days + 1) / ndays * pw
        return x, top + ph - float(v / ymax) * ph

    over = spent > limit or (forecast is not None and forecast > limit)
    line_color = PALETTE["vermillion"] if over else PALETTE["blue"]
    legend = [("spent", line_color), ("limit", "#333333"), ("even pace", PALETTE["grey"])]
    if forecast is not None:
        legend.append(("forecast", PALETTE["purple"]))
    parts = [head, _legend(legend, left, 16)]
    parts += _y_grid(left, top, pw, ph, ymax, step, usd_short)
    ly = top + ph - float(limit / ymax) * ph
    parts.append(
        f'<line x1="{left}" x2="{left + pw}" y1="{ly:.1f}" y2="{ly:.1f}" stroke="#333" stroke-width="1.5" stroke-dasharray="6 4"/>'
    )
    parts.append(
        f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{ly:.1f}" stroke="{PALETTE["grey"]}" stroke-width="1" stroke-dasharray="2 3"/>'
    )
    if points:
        coords = [(left, top + ph)] + [xy(d, val) for d, val in points]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        parts.append(
            f'<polyline points="{path}" fill="none" stroke="{line_color}" stroke-width="2.5"/>'
        )
        lx, lyy = coords[-1]
        if forecast is not None:
            fx, fy = xy(month_end, forecast)
            parts.append(
                f'<line x1="{lx:.1f}" y1="{lyy:.1f}" x2="{fx:.1f}" y2="{fy:.1f}" stroke="{PALETTE["purple"]}" '
                f'stroke-width="2" stroke-dasharray="5 4"><title>forecast {escape(usd(forecast))} at month end</title></line>'
            )
        parts.append(f'<circle cx="{lx:.1f}" cy="{lyy:.1f}" r="3.5" fill="{line_color}"/>')
    ticks = (
        (month_start, "start"),
        (month_start + dt.timedelta(days=(ndays - 1) // 2), "middle"),
        (month_end, "end"),
    )
    for day, anchor in ticks:
        x = left + ((day - month_start).days + 1) / ndays * pw
        if anchor == "start":
            x = left
        parts.append(
            f'<text x="{x:.1f}" y="{top + ph + 16}" class="tick" text-anchor="{anchor}">{escape(_day_label(day))}</text>'
        )
    parts.append(
        f'<line x1="{left}" x2="{left + pw}" y1="{top + ph}" y2="{top + ph}" class="axis"/>'
    )
    parts.append(
        f'<text x="{left + pw / 2:.1f}" y="{height - 6}" class="axis-label" text-anchor="middle">Day of month (UTC)</text>'
        f'<text transform="translate(14 {top + ph / 2:.1f}) rotate(-90)" class="axis-label" text-anchor="middle">Cumulative USD</text></svg>'
    )
    return Markup("".join(parts))
