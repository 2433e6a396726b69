"""Provider ground truth: what each provider account served, metered per UTC day and
token type, billed with the provider's own price book and rounding, and written in the
provider's native export format (docs/pipeline.md):

- `openai_costs`: `<invoices>/<provider>/costs_page_NNN.json` (OpenAI Costs API pages,
  daily buckets, dollars as JSON numbers, model inside `line_item`); the first bucket starts
  mid-day like a real query window, and holds that whole day's cost.
- `anthropic_cost_report`: `<invoices>/<provider>/cost_report_page_NNN.json` (Admin API
  cost report pages, `amount` in cents as a decimal string, null workspace = default).
- `focus`: `<invoices>/<provider>/focus_YYYY-MM.csv` (FOCUS 1.2 columns; literal NULLs and
  timestamp spellings differ between providers, like real exports).

Only BYOK keys' accounts are invoiced: shared capacity runs on the platform's pooled
accounts and shows up on the platform statement instead.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from routing_core.calendar import add_months, parse_month
from routing_core.config import ByokKey, LedgerConfig
from simulator.exact_json import dumps, plain
from simulator.fake_providers import SHARED_LABEL, Served
from simulator.provider_prices import MILLION, TOKEN_TYPES, ProviderPriceBook

SHARED = "shared"
PAGE_BUCKETS = 7  # both APIs default to 7 daily buckets a page


class UsageMeter:
    """Token quantities per (provider, day, key, upstream model, token type)."""

    def __init__(self) -> None:
        self.q: dict[tuple[str, dt.date, str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        self.requests: dict[tuple[str, dt.date, str, str], int] = defaultdict(int)

    def add(
        self,
        provider: str,
        day: dt.date,
        key_id: str,
        upstream: str,
        inp: int,
        cr: int,
        cw: int,
        out: int,
        n: int = 1,
    ) -> None:
        k = (provider, day, key_id, upstream)
        v = self.q[k]
        v[0] += inp
        v[1] += cr
        v[2] += cw
        v[3] += out
        self.requests[k] += n

    def add_served(self, served: Iterable[Served], *, include_shared: bool = True) -> None:
        """Meter what the fake providers answered (`Fleet.served()`): every 200 on a known
        key, as the provider's own metering saw it; `include_shared=False` leaves out the
        platform's pooled key (billed on the platform statement, not a BYOK invoice)."""
        for s in served:
            if s.status != 200 or not s.key or (not include_shared and s.key == SHARED_LABEL):
                continue
            u = s.usage
            self.add(
                s.provider,
                s.ts.astimezone(dt.UTC).date(),
                s.key,
                s.model,
                u.input_tokens,
                u.cache_read_tokens,
                u.cache_write_tokens,
                u.output_tokens,
            )


@dataclass(slots=True)
class InvoiceLine:
    """One line as written to a native file, with its USD amount exactly as written."""

    provider: str
    day: dt.date  # charge day
    key_id: str | None
    account: dict[str, str]
    upstream_model: str | None
    token_type: str | None
    quantity: int | None
    usd: Decimal
    category: str = "Usage"  # Usage | Credit | Tax | Adjustment
    charge_class: str | None = None  # None | Correction
    file: str = ""
    billing_month: str = ""  # YYYY-MM of the billing period (FOCUS)


@dataclass(slots=True)
class InvoiceSet:
    lines: list[InvoiceLine] = field(default_factory=list)
    files: dict[str, list[str]] = field(default_factory=dict)  # provider -> relative files
    notes: dict[str, dict] = field(default_factory=dict)  # provider -> format quirks


def _q(d: Decimal, places: str) -> Decimal:
    return d.quantize(Decimal(places), rounding=ROUND_HALF_UP)


def _daterange(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def _unix(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())


def _cursor(s: str) -> str:
    return "page_" + base64.urlsafe_b64encode(s.encode()).decode().rstrip("=")


def _lines_for(
    config: LedgerConfig, meter: UsageMeter, provider: str, book: ProviderPriceBook
) -> tuple[dict[str, ByokKey], list[tuple]]:
    """One provider's BYOK keys by id, and the (day, key, upstream, token_type, quantity,
    exact list USD, exact billed USD) of their accounts, sorted: what every writer bills."""
    keys = {k.id: k for k in config.byok_keys if k.provider == provider}
    out = []
    for (prov, day, key_id, upstream), qty in sorted(meter.q.items()):
        if prov != provider or key_id not in keys:
            continue
        prices = book.unit_prices(provider, upstream, day)
        factor = book.discount_factor(key_id)
        for tt, n in zip(TOKEN_TYPES, qty, strict=True):
            if n <= 0:
                continue
            list_usd = n * prices[tt] / MILLION
            out.append((day, key_id, upstream, tt, n, list_usd, list_usd * factor))
    return keys, out


# --------------------------------------------------------------------------- OpenAI


_OPENAI_TT = {
    "input": "input",
    "cache_read": "cached input",
    "cache_write": "input",
    "output": "output",
}


def write_openai_costs(
    config: LedgerConfig,
    provider: str,
    meter: UsageMeter,
    book: ProviderPriceBook,
    start: dt.date,
    end: dt.date,
    out_dir: Path,
    rel_root: Path,
) -> InvoiceSet:
    keys, lines = _lines_for(config, meter, provider, book)
    per_day: dict[dt.date, dict[tuple, list]] = defaultdict(dict)
    for day, key_id, upstream, tt, n, _list, billed in lines:
        item = f"{upstream}, {_OPENAI_TT[tt]}"
        acc = keys[key_id].account
        k = (acc.get("project_id"), acc.get("api_key_id"), item, key_id)
        cell = per_day[day].setdefault(k, [0, Decimal(0), upstream, tt])
        cell[0] += n
        cell[1] += billed
    res = InvoiceSet()
    days = _daterange(start, end)
    buckets = []
    first_start = _unix(start) + 9 * 3600 + 30 * 60  # a query window opened at 09:30 UTC
    for day in days:
        results = []
        for (project, api_key, item, key_id), (n, billed, upstream, tt) in sorted(
            per_day[day].items(), key=lambda kv: tuple(str(x) for x in kv[0])
        ):
            value = _q(billed, "0.000001")
            results.append(
                {
                    "object": "organization.costs.result",
                    "amount": {
                        "value": value.normalize() if value else Decimal(0),
                        "currency": "usd",
                    },
                    "line_item": item,
                    "project_id": project,
                    "api_key_id": api_key,
                    "quantity": n,
                    "quantity_unit": "tokens",
                }
            )
            res.lines.append(
                InvoiceLine(
                    provider, day, key_id, dict(keys[key_id].account), upstream, tt, n, value
                )
            )
        st = first_start if day == start else _unix(day)
        buckets.append(
            {
                "object": "bucket",
                "start_time": st,
                "end_time": _unix(day + dt.timedelta(days=1)),
                "results": results,
            }
        )
    files = _write_pages(buckets, out_dir, "costs_page_{:03d}.json", openai=True)
    res.files[provider] = [str((out_dir / f).relative_to(rel_root)) for f in files]
    _assign_files(res.lines, buckets, files, out_dir, rel_root, key="start_time")
    res.notes[provider] = {
        "first_bucket_start_time": first_start,
        "first_bucket_note": "the first bucket starts mid-day (query window) but holds that "
        "whole UTC day's cost; map buckets to the UTC date of start_time",
        "rounding": "amount.value per result rounded half-up to 0.000001 USD",
    }
    return res


def _write_pages(buckets: list[dict], out_dir: Path, pattern: str, *, openai: bool) -> list[str]:
    out_dir.mkdir(parents=True, exist_ok=True)
    pages = [buckets[i : i + PAGE_BUCKETS] for i in range(0, len(buckets), PAGE_BUCKETS)] or [[]]
    names = []
    for i, page in enumerate(pages):
        more = i + 1 < len(pages)
        nxt = None
        if more:
            first = pages[i + 1][0]
            nxt = _cursor(str(first.get("start_time", first.get("starting_at"))))
        doc = (
            {"object": "page", "data": page, "has_more": more, "next_page": nxt}
            if openai
            else {"data": page, "has_more": more, "next_page": nxt}
        )
        name = pattern.format(i + 1)
        (out_dir / name).write_text(dumps(doc) + "\n", encoding="utf-8")
        names.append(name)
    return names


def _assign_files(
    lines: list[InvoiceLine],
    buckets: list[dict],
    files: list[str],
    out_dir: Path,
    rel_root: Path,
    key: str,
) -> None:
    by_day: dict[dt.date, str] = {}
    for i, b in enumerate(buckets):
        v = b[key]
        day = (
            dt.datetime.fromtimestamp(v, dt.UTC).date()
            if isinstance(v, int)
            else dt.date.fromisoformat(v[:10])
        )
        by_day[day] = str((out_dir / files[i // PAGE_BUCKETS]).relative_to(rel_root))
    for ln in lines:
        ln.file = by_day[ln.day]


# --------------------------------------------------------------------------- Anthropic


_ANT_TT = {
    "input": "uncached_input_tokens",
    "cache_read": "cache_read_input_tokens",
    "cache_write": "cache_creation.ephemeral_5m_input_tokens",
    "output": "output_tokens",
}
_ANT_DESC = {
    "input": "Input Tokens",
    "cache_read": "Cache Read Input Tokens",
    "cache_write": "Cache Write (5m) Input Tokens",
    "output": "Output Tokens",
}


def _pretty_model(upstream: str) -> str:
    """'claude-sonnet-4-20250514' -> 'Claude Sonnet 4' (the cost report's descriptions)."""
    parts = [p for p in upstream.replace(".", "-").split("-") if not (p.isdigit() and len(p) == 8)]
    return " ".join(p.capitalize() if not p[0].isdigit() else p for p in parts if p)


def write_anthropic_cost_report(
    config: LedgerConfig,
    provider: str,
    meter: UsageMeter,
    book: ProviderPriceBook,
    start: dt.date,
    end: dt.date,
    out_dir: Path,
    rel_root: Path,
) -> InvoiceSet:
    keys, lines = _lines_for(config, meter, provider, book)
    per_day: dict[dt.date, list] = defaultdict(list)
    for day, key_id, upstream, tt, n, _list, billed in lines:
        per_day[day].append((key_id, upstream, tt, n, billed))
    res = InvoiceSet()
    buckets = []
    for day in _daterange(start, end):
        results = []
        for key_id, upstream, tt, n, billed in per_day[day]:
            cents = _q(billed * 100, "0.01")
            ws = keys[key_id].account.get("workspace_id")
            results.append(
                {
                    "amount": plain(cents),
                    "currency": "USD",
                    "cost_type": "tokens",
                    "description": f"{_pretty_model(upstream)} Usage - {_ANT_DESC[tt]}",
                    "model": upstream,
                    "service_tier": "standard",
                    "token_type": _ANT_TT[tt],
                    "workspace_id": None if ws in (None, "default") else ws,
                    "context_window": "0-200k",
                    "inference_geo": None,
                }
            )
            res.lines.append(
                InvoiceLine(
                    provider, day, key_id, dict(keys[key_id].account), upstream, tt, n, cents / 100
                )
            )
        buckets.append(
            {
                "starting_at": f"{day.isoformat()}T00:00:00Z",
                "ending_at": f"{(day + dt.timedelta(days=1)).isoformat()}T00:00:00Z",
                "results": results,
            }
        )
    files = _write_pages(buckets, out_dir, "cost_report_page_{:03d}.json", openai=False)
    res.files[provider] = [str((out_dir / f).relative_to(rel_root)) for f in files]
    _assign_files(res.lines, buckets, files, out_dir, rel_root, key="starting_at")
    res.notes[provider] = {
        "rounding": "amount is cents as a decimal string, rounded half-up to 0.01 cent",
        "default_workspace": "workspace_id null = the organisation's default workspace",
    }
    return res


# --------------------------------------------------------------------------- FOCUS

FOCUS_COLUMNS = (
    "BillingAccountId",
    "BillingAccountName",
    "SubAccountId",
    "SubAccountName",
    "BillingPeriodStart",
    "BillingPeriodEnd",
    "ChargePeriodStart",
    "ChargePeriodEnd",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "BilledCost",
    "EffectiveCost",
    "ListCost",
    "ContractedCost",
    "ListUnitPrice",
    "ContractedUnitPrice",
    "BillingCurrency",
    "ProviderName",
    "PublisherName",
    "InvoiceIssuerName",
    "ServiceCategory",
    "ServiceName",
    "SkuId",
    "SkuPriceId",
    "SkuMeter",
    "ConsumedQuantity",
    "ConsumedUnit",
    "PricingQuantity",
    "PricingUnit",
    "RegionId",
    "ResourceId",
    "ResourceType",
    "Tags",
)
_FOCUS_METER = {
    "input": "Input Tokens",
    "cache_read": "Cache Read Input Tokens",
    "cache_write": "Cache Write Input Tokens",
    "output": "Output Tokens",
}


@dataclass(frozen=True, slots=True)
class FocusStyle:
    """How one provider's FOCUS export looks."""

    provider_name: str
    issuer: str
    service: str
    billing_account: str
    region: str
    iso_ts: bool  # 'YYYY-MM-DDTHH:MM:SSZ' or 'YYYY-MM-DD HH:MM:SS'
    null: str  # how empty values are spelled: '' or 'NULL'
    places: str = "0.00000001"  # cost rounding of each row (AWS: 8 dp, GCP: 6 dp)

    def resource_id(self, provider: str, account: str, upstream: str, publisher: str) -> str:
        if self.provider_name == "AWS":
            return f"arn:aws:bedrock:{self.region}::foundation-model/{upstream}"
        if self.provider_name == "Google Cloud":
            return (
                f"projects/{account}/locations/{self.region}/publishers/"
                f"{publisher.lower()}/models/{upstream}"
            )
        return f"{provider}/{upstream}"


def focus_style(provider: str, index: int) -> FocusStyle:
    if provider == "bedrock":
        return FocusStyle(
            "AWS",
            "Amazon Web Services, Inc.",
            "Amazon Bedrock",
            "998877665544",
            "us-east-1",
            True,
            "",
        )
    if provider == "vertex":
        return FocusStyle(
            "Google Cloud",
            "Google LLC",
            "Vertex AI",
            "01A2B3-C4D5E6-F7A8B9",
            "us-central1",
            False,
            "NULL",
            "0.000001",
        )
    # Anything else alternates the two spellings so both paths stay exercised.
    return FocusStyle(
        provider,
        provider,
        provider,
        f"acct-{provider}",
        "global",
        index % 2 == 0,
        "NULL" if index % 2 else "",
    )


def _publisher(upstream: str, model_slug: str | None) -> str:
    org = (model_slug or upstream).split("/")[0].split(".")[0].lower()
    return {
        "anthropic": "Anthropic",
        "google": "Google",
        "meta-llama": "Meta",
        "openai": "OpenAI",
        "mistralai": "Mistral AI",
    }.get(org, org.capitalize())


@dataclass(slots=True)
class FocusExtra:
    """A non-usage or correction row to append to a FOCUS file."""

    key_id: str
    charge_day: dt.date
    billing_month: str  # YYYY-MM of the file it goes in
    category: str  # Credit | Usage (with charge_class Correction) | Adjustment | Tax
    charge_class: str | None
    usd: Decimal
    description: str
    upstream_model: str | None = None
    token_type: str | None = None
    quantity: int | None = None


def write_focus(
    config: LedgerConfig,
    provider: str,
    meter: UsageMeter,
    book: ProviderPriceBook,
    start: dt.date,
    end: dt.date,
    out_dir: Path,
    rel_root: Path,
    index: int,
    extras: Iterable[FocusExtra] = (),
) -> InvoiceSet:
    keys, lines = _lines_for(config, meter, provider, book)
    style = focus_style(provider, index)
    slug_of = {(ep.provider, ep.upstream_model): m.id for m in config.models for ep in m.endpoints}
    months: dict[str, list[list[str]]] = defaultdict(list)
    res = InvoiceSet()
    for day in _daterange(start, end):
        months.setdefault(f"{day:%Y-%m}", [])
    n = style.null

    def ts(d: dt.date) -> str:
        return f"{d.isoformat()}T00:00:00Z" if style.iso_ts else f"{d.isoformat()} 00:00:00"

    def period(month: str) -> tuple[str, str]:
        first = parse_month(month)
        return ts(first), ts(add_months(first, 1))

    def account_cols(key_id: str) -> tuple[str, str, str, str]:
        acc = keys[key_id].account
        sub = acc.get("sub_account_id") or acc.get("project_id") or n
        billing = acc.get("billing_account_id") or style.billing_account
        return billing, "Acme Corp", sub, (f"acme-{sub}" if sub != n else n)

    def row(
        key_id,
        charge_day,
        month,
        category,
        cclass,
        billed,
        listc,
        desc,
        upstream,
        tt,
        qty,
        unit_list,
        unit_contracted,
    ) -> list[str]:
        bp_start, bp_end = period(month)
        billing, billing_name, sub, sub_name = account_cols(key_id)
        slug = slug_of.get((provider, upstream)) if upstream else None
        publisher = _publisher(upstream, slug) if upstream else n
        acc_label = keys[key_id].account.get("sub_account_id", "")
        tags = {"byok-key": key_id, "cost-center": "ai-platform"}
        return [
            billing,
            billing_name,
            sub,
            sub_name,
            bp_start,
            bp_end,
            ts(charge_day),
            ts(charge_day + dt.timedelta(days=1)),
            category,
            cclass or n,
            desc,
            "Usage-Based" if category == "Usage" else "One-Time",
            plain(billed),
            plain(billed),
            plain(listc),
            plain(billed),
            plain(unit_list) if unit_list is not None else n,
            plain(unit_contracted) if unit_contracted is not None else n,
            "USD",
            style.provider_name,
            publisher if upstream else style.provider_name,
            style.issuer,
            "AI and Machine Learning",
            style.service,
            f"{provider}:{upstream}:{tt}" if upstream else n,
            f"{provider}:{upstream}:{tt}:std" if upstream else n,
            _FOCUS_METER[tt] if tt else n,
            str(qty) if qty is not None else n,
            "Tokens" if qty is not None else n,
            plain(Decimal(qty) / MILLION) if qty is not None else n,
            "1M Tokens" if qty is not None else n,
            style.region,
            style.resource_id(provider, acc_label, upstream, publisher) if upstream else n,
            "Foundation Model" if upstream else n,
            json.dumps(tags, separators=(",", ":")) if (index + charge_day.day) % 5 else n,
        ]

    for day, key_id, upstream, tt, qty, list_usd, billed in lines:
        month = f"{day:%Y-%m}"
        billed_q = _q(billed, style.places)
        list_q = _q(list_usd, style.places)
        unit = book.unit_prices(provider, upstream, day)[tt]
        months[month].append(
            row(
                key_id,
                day,
                month,
                "Usage",
                None,
                billed_q,
                list_q,
                f"{upstream} {_FOCUS_METER[tt]}",
                upstream,
                tt,
                qty,
                unit,
                unit * book.discount_factor(key_id),
            )
        )
        res.lines.append(
            InvoiceLine(
                provider,
                day,
                key_id,
                dict(keys[key_id].account),
                upstream,
                tt,
                qty,
                billed_q,
                billing_month=month,
            )
        )
    for ex in extras:
        usd = _q(ex.usd, style.places)
        months.setdefault(ex.billing_month, [])
        months[ex.billing_month].append(
            row(
                ex.key_id,
                ex.charge_day,
                ex.billing_month,
                ex.category,
                ex.charge_class,
                usd,
                usd if ex.category != "Credit" else Decimal(0),
                ex.description,
                ex.upstream_model,
                ex.token_type,
                ex.quantity,
                None,
                None,
            )
        )
        res.lines.append(
            InvoiceLine(
                provider,
                ex.charge_day,
                ex.key_id,
                dict(keys[ex.key_id].account),
                ex.upstream_model,
                ex.token_type,
                ex.quantity,
                usd,
                category=ex.category,
                charge_class=ex.charge_class,
                billing_month=ex.billing_month,
            )
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for month in sorted(months):
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(FOCUS_COLUMNS)
        w.writerows(months[month])
        name = f"focus_{month}.csv"
        (out_dir / name).write_text(buf.getvalue(), encoding="utf-8")
        files.append(str((out_dir / name).relative_to(rel_root)))
        for ln in res.lines:
            if ln.billing_month == month:
                ln.file = files[-1]
    res.files[provider] = files
    res.notes[provider] = {
        "timestamps": "YYYY-MM-DDTHH:MM:SSZ" if style.iso_ts else "YYYY-MM-DD HH:MM:SS",
        "empty_values": "literal NULL" if style.null == "NULL" else "empty string",
        "rounding": f"BilledCost/ListCost per row rounded half-up to {style.places} USD",
        "discount_pct": {k: book.discount_pct.get(k, Decimal(0)) for k in sorted(keys)},
    }
    return res


def write_all(
    config: LedgerConfig,
    meter: UsageMeter,
    book: ProviderPriceBook,
    start: dt.date,
    end: dt.date,
    invoices_dir: Path,
    rel_root: Path,
    focus_extras: dict[str, list[FocusExtra]] | None = None,
) -> InvoiceSet:
    """Every provider with at least one BYOK key gets its native export; returns every line
    written (amounts as written) for the ground-truth manifest."""
    total = InvoiceSet()
    focus_index = 0
    byok_providers = {k.provider for k in config.byok_keys}
    for p in config.providers:
        if p.id not in byok_providers:
            continue
        # Every writer bills the same inputs; FOCUS exports also vary by their index.
        args = (config, p.id, meter, book, start, end, invoices_dir / p.id, rel_root)
        if p.invoice_format == "openai_costs":
            part = write_openai_costs(*args)
        elif p.invoice_format == "anthropic_cost_report":
            part = write_anthropic_cost_report(*args)
        else:
            part = write_focus(*args, focus_index, (focus_extras or {}).get(p.id, ()))
            focus_index += 1
        total.lines.extend(part.lines)
        total.files.update(part.files)
        total.notes.update(part.notes)
    return total
