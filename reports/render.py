"""Renders the finance report (monthly and rolling N-day views) from the marts into one
self-contained HTML file: Jinja2 with autoescaping, inline CSS and SVG, no network."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from decimal import Decimal
from pathlib import Path
from statistics import median
from typing import Any

import jinja2

from reports import charts, data
from reports.data import ReportData, ReportError
from reports.formatting import change, pct, share, usd
from routing_core.calendar import month_bounds, period_bounds
from routing_core.config import LedgerConfig
from routing_core.money import format_usd

TEMPLATES = Path(__file__).resolve().parent / "templates"

LAYERS = (
    ("provider_usd", "Provider invoices (own accounts)", charts.PALETTE["blue"]),
    ("fee_usd", "Platform BYOK fees", charts.PALETTE["orange"]),
    ("credits_usd", "Platform shared-capacity credits", charts.PALETTE["green"]),
)

# What a reader should do about each reconciliation outcome.
ACTIONS = {
    "over_billed": "The provider billed more than the logs explain. Look for traffic outside the "
    "router on this account, a price change missing from ledger.yaml, or a discount the config "
    "assumes but the contract lacks; dispute with the provider if none applies.",
    "under_billed": "Billed less than the logs expect: a discount or credit not in the config, or "
    "a partial invoice. Check the price and provider_discount_pct; re-run after the final export.",
    "missing_invoice": "Logged BYOK spend with no invoice line yet. Exports lag: re-run "
    "`byok-ledger run` after the next one. If it persists past the re-run window, check the "
    "key's account identifiers against the invoice.",
    "unlogged_usage": "Invoice cost with no logged request behind it: a key used outside the "
    "router, an account ledger.yaml does not map, or lost logs; each cell's likely cause below "
    "says which.",
    "invoice_unreadable": "The provider's export for these cells was refused as unreadable: fix or "
    "re-download the file and re-run; until then the logs' cost is an estimate.",
    "matched": "Nothing to do.",
}
# What to do about each likely cause of a variance (marts.reconciliation_daily.likely_cause).
CAUSE_ACTIONS = {
    "price_mismatch": "The provider's price or your negotiated discount differs from ledger.yaml: "
    "confirm the contract, then set the model's price or the key's provider_discount_pct.",
    "logs_missing": "A router host wrote no request log for some hours while the provider billed: "
    "recover the lost log files if you can; the invoice is probably right.",
    "account_mismatch": "The invoice bills an account ledger.yaml does not map to your key: add the "
    "suggested identifiers to byok_keys[].account, then re-run.",
    "usage_outside_router": "Someone uses a key or account without the router (a script, a "
    "notebook): find the owner, route that traffic, or rotate the key.",
    "correction": "The provider booked a correction to that day after the fact: nothing to do "
    "unless you dispute it.",
    "missing_invoice": "The provider's export has not arrived yet: re-run after the next one.",
    "invoice_unreadable": "The export was refused as unreadable: fix or re-download the file named "
    "in the explanation and re-run.",
    "unknown": "No rule explains it: compare the invoice lines with the logs of that day, and "
    "raise it with the provider if the logs are complete.",
}
CAUSE_LABELS = {
    "price_mismatch": "price mismatch",
    "logs_missing": "logs missing",
    "account_mismatch": "account mismatch",
    "usage_outside_router": "usage outside the router",
    "correction": "late correction",
    "missing_invoice": "invoice not arrived",
    "invoice_unreadable": "invoice unreadable",
    "unknown": "unexplained",
}
UNATTRIBUTED_ACTION = (
    "Billed on an account no BYOK key claims, or on a known account with no request behind it: "
    "usage outside the router. Find the owner; add the account to byok_keys[].account or move "
    "that traffic behind the router."
)


def environment() -> jinja2.Environment:
    """Autoescape is on for every template: a model or workload named <script> stays text."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(usd=usd, pct=pct, change=change, share=share)
    # Tables of many amounts: one precision (cents) for the whole column.
    env.filters["cents"] = lambda v: format_usd(v, 2, missing="\u2014")
    return env


def _month_bounds(month: str) -> tuple[dt.date, dt.date]:
    # The canonical spelling only ("2026-9" is refused): it names the report file.
    try:
        return month_bounds(month)
    except ValueError:
        raise ReportError(f"--month {month!r} is not YYYY-MM (e.g. 2026-11)") from None


def _charts(d: ReportData) -> dict[str, Any]:
    out: dict[str, Any] = {}
    days = [r["day"] for r in d.daily]
    out["daily"] = charts.stacked_bars(
        f"Daily spend by billing layer, {d.title}",
        "Stacked bars per UTC day: provider invoices on own accounts, platform BYOK fees and "
        "platform shared-capacity credits. The same numbers are in the table below.",
        days,
        [(name, color, [Decimal(r[key]) for r in d.daily]) for key, name, color in LAYERS],
        y_label="USD per day",
    )
    wl = [(r["label"], Decimal(r["total_usd"])) for r in d.splits["workload"]][:12]
    out["workload"] = charts.hbars(
        f"Spend by workload, {d.title}",
        "Total spend (all billing layers) per workload, largest first.",
        wl,
        x_label="USD in period",
    )
    cd = d.credential_daily
    byok, shared = [], []
    for r in cd:
        tot = Decimal(r["byok_usd"]) + Decimal(r["shared_usd"])
        byok.append(Decimal(r["byok_usd"]) * 100 / tot if tot else Decimal(0))
        shared.append(Decimal(r["shared_usd"]) * 100 / tot if tot else Decimal(0))
    out["share"] = charts.stacked_bars(
        f"BYOK vs shared capacity, share of routed spend per day, {d.title}",
        "For each UTC day, the percentage of spend served on the customer's own keys (BYOK) "
        "and on the platform's shared capacity. Unattributed invoice cost is excluded.",
        [r["day"] for r in cd],
        [
            ("BYOK", charts.PALETTE["blue"], byok),
            ("shared capacity", charts.PALETTE["orange"], shared),
        ],
        y_label="Share of spend",
        percent=True,
        height=240,
    )
    out["burn"] = [
        charts.burn_down(
            f"Budget {b['budget_id']} burn-down",
            f"Cumulative spend of {b['scope']} {b['match']} in {b['month_start']:%B %Y} against "
            f"its monthly limit of {usd(b['limit_usd'])}; spent {usd(b['spent_usd'])} so far.",
            b["points"],
            b["limit_usd"],
            b["month_start"],
            b["month_end"],
            b["forecast_usd"],
        )
        for b in d.burn_down
    ]
    return out


def _fallback_heavy(d: ReportData) -> list[dict[str, Any]]:
    """Days whose fallback rate is at least twice the period's median (and at least 5%)."""
    rows = [r for r in (d.fallback_daily or []) if r["served"]]
    if not rows:
        return []
    rates = [Decimal(r["fallback_served"]) / Decimal(r["served"]) for r in rows]
    med = Decimal(str(median(rates)))
    out = []
    for r, rate in zip(rows, rates, strict=True):
        if rate >= max(2 * med, Decimal("0.05")):
            out.append({**r, "rate": rate * 100, "median": med * 100})
    return out


def _recon_summary(d: ReportData) -> dict[str, Any]:
    """Dollars of variance (absolute, per cell) each cause explains, and what stays unexplained;
    cells still waiting for an invoice have no variance yet and are counted apart."""
    causes = [
        r
        for r in d.recon_causes
        if r["likely_cause"] not in (None, "missing_invoice", "invoice_unreadable")
    ]
    waiting = [
        r for r in d.recon_causes if r["likely_cause"] in ("missing_invoice", "invoice_unreadable")
    ]
    total = sum((Decimal(r["abs_variance_usd"]) for r in causes), Decimal(0))
    unexplained = sum(
        (Decimal(r["abs_variance_usd"]) for r in causes if r["likely_cause"] == "unknown"),
        Decimal(0),
    )
    return {
        "causes": causes,
        "waiting": waiting,
        "total": total,
        "explained": total - unexplained,
        "unexplained": unexplained,
        "cells": sum(int(r["cells"]) for r in causes),
        "estimated_requests": sum(
            int(r["requests"]) for r in d.usage_sources if r["usage_source"] == "estimated"
        ),
        "clamped_requests": sum(
            int(r["requests"]) for r in d.usage_sources if r["usage_source"] == "clamped"
        ),
    }


def render(d: ReportData, out_path: Path) -> Path:
    """Write the HTML atomically (a reader never sees half a report)."""
    html = (
        environment()
        .get_template("finance.html.j2")
        .render(
            d=d,
            layers=LAYERS,
            charts=_charts(d),
            actions=ACTIONS,
            cause_actions=CAUSE_ACTIONS,
            cause_labels=CAUSE_LABELS,
            recon=_recon_summary(d),
            tolerance=d.tolerance,
            unattributed_action=UNATTRIBUTED_ACTION,
            fallback_heavy=_fallback_heavy(d),
        )
    )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".report-", suffix=".html", dir=out_path.parent)
    # mkstemp creates 0600; a report is meant to be shared like any file the user writes.
    umask = os.umask(0o022)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(html)
    os.replace(tmp, out_path)
    return out_path


def render_month(config: LedgerConfig, month: str) -> Path:
    """Render `<reports dir>/finance-YYYY-MM.html` for a calendar month (UTC)."""
    start, end = _month_bounds(month)
    prev_start, prev_end = period_bounds("monthly", start - dt.timedelta(days=1))
    conn = data.connect(config.duckdb_path)
    try:
        first, last = data.data_range(conn)
        if first is None or start > last or end < first:
            span = f"{first}..{last}" if first else "nothing yet"
            raise ReportError(
                f"no billing data for {month} in {config.duckdb_path} (the marts cover {span})"
            )
        d = data.load(
            conn,
            config,
            title=start.strftime("%B %Y"),
            kind="month",
            start=start,
            end=end,
            prev_start=prev_start,
            prev_end=prev_end,
        )
    finally:
        conn.close()
    return render(d, config.reports_dir / f"finance-{month}.html")


def render_last_days(config: LedgerConfig, days: int = 7) -> Path:
    """Render `<reports dir>/finance-last-<days>-days.html`: the last `days` UTC days with data
    in the marts (not the wall clock: data may be simulated), against the `days` before."""
    if days < 1:
        raise ReportError("days must be at least 1")
    conn = data.connect(config.duckdb_path)
    try:
        _, last = data.data_range(conn)
        if last is None:
            raise ReportError(
                f"{config.duckdb_path} has no billing rows yet: run `byok-ledger run` first"
            )
        start = last - dt.timedelta(days=days - 1)
        prev_end = start - dt.timedelta(days=1)
        d = data.load(
            conn,
            config,
            title=f"Last {days} days to {last.isoformat()}",
            kind="rolling",
            start=start,
            end=last,
            prev_start=prev_end - dt.timedelta(days=days - 1),
            prev_end=prev_end,
        )
    finally:
        conn.close()
    return render(d, config.reports_dir / f"finance-last-{days}-days.html")
