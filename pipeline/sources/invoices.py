"""Provider invoices and the platform statement in their native formats, normalised into rows
of `staging.invoice_lines` (FOCUS column names plus `x_` join keys), one file at a time.

Layout: `<invoices>/<provider id>/` holds that provider's exports in its `invoice_format`
(`openai_costs` and `anthropic_cost_report`: one API response page per `*.json` file; `focus`:
`*.csv` or `*.parquet`); `<invoices>/_platform/` holds the `openrouter_activity` statement
(`*.json` pages `{"data": [...]}` or `*.csv` with the same columns).

The seam is `parse_file(conn, invoice_file, cfg, target) -> ParsedFile`: it fills the DuckDB
TEMP table `target` (the `staging.invoice_lines` columns) with every line of ONE file, or raises
`InvoiceError` carrying the reason code, the file, the line and the raw text, and then nothing
of that file may be used (all or nothing per file). FOCUS files go to
`pipeline.sources.focus.parse_focus_file` (one streaming DuckDB pass).

Money is parsed from the file's text as Decimal (JSON via `parse_float=Decimal`, CSV as
strings), never through a float, and refused when not finite or beyond `MAX_AMOUNT`. A bucket
that spans several UTC days is spread over them in proportion to the time in each, exactly to
the nanodollar (largest remainder), never booked on its first day.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from routing_core.config import LedgerConfig, Provider

PLATFORM_DIR = "_platform"
NANO = Decimal("0.000000001")
NULLS = {"", "null", "none", "nan", "n/a"}
# No real invoice line is a quadrillion dollars; the bound keeps every SUM inside DECIMAL(38,9).
MAX_AMOUNT = Decimal(10) ** 15
MAX_COUNT = 10**12
RAW_TEXT_LIMIT = 64 * 1024
DAY = dt.timedelta(days=1)

INVOICE_COLUMNS: list[tuple[str, pa.DataType]] = [
    ("day", pa.date32()),
    ("BilledCost", pa.decimal128(38, 9)),
    ("EffectiveCost", pa.decimal128(38, 9)),
    ("ListCost", pa.decimal128(38, 9)),
    ("BillingCurrency", pa.string()),
    ("ChargePeriodStart", pa.timestamp("us")),
    ("ChargePeriodEnd", pa.timestamp("us")),
    ("BillingPeriodStart", pa.timestamp("us")),
    ("BillingPeriodEnd", pa.timestamp("us")),
    ("ChargeCategory", pa.string()),
    ("ChargeClass", pa.string()),
    ("ChargeDescription", pa.string()),
    ("ProviderName", pa.string()),
    ("BillingAccountId", pa.string()),
    ("SubAccountId", pa.string()),
    ("ResourceId", pa.string()),
    ("ServiceName", pa.string()),
    ("SkuMeter", pa.string()),
    ("ConsumedQuantity", pa.decimal128(38, 9)),
    ("ConsumedUnit", pa.string()),
    ("Tags", pa.string()),
    ("x_Provider", pa.string()),
    ("x_Account", pa.string()),
    ("x_ProjectId", pa.string()),
    ("x_ApiKeyId", pa.string()),
    ("x_WorkspaceId", pa.string()),
    ("x_SubAccountId", pa.string()),
    ("x_BillingAccountId", pa.string()),
    ("x_UpstreamModel", pa.string()),
    ("x_Model", pa.string()),
    ("x_TokenType", pa.string()),
    ("x_ServiceTier", pa.string()),
    ("x_StatementProvider", pa.string()),
    ("x_ByokUsageInference", pa.decimal128(38, 9)),
    ("x_Requests", pa.int64()),
    ("x_ByokRequests", pa.int64()),
    ("x_SourceFile", pa.string()),
    ("x_SourceLine", pa.int64()),
    ("x_SourceLocator", pa.string()),
    # The cost reconciliation compares with usage: BilledCost, except committed usage (billed $0,
    # covered by a commitment) at its EffectiveCost (pipeline/sources/focus.py).
    ("x_UsageCost", pa.decimal128(38, 9)),
]
INVOICE_SCHEMA = pa.schema(INVOICE_COLUMNS)


class InvoiceError(ValueError):
    """A file that cannot be loaded. The message names file and line; `reason` is a short code
    (e.g. `invalid_json`, `short_row`, `amount_out_of_range`, `unknown_currency`), `line` the
    1-based line (CSV) or item ordinal (JSON), `raw_text` the offending text when known, and
    `days` the UTC days the file was about (set by `parse_file`)."""

    def __init__(
        self,
        message: str,
        *,
        reason: str = "malformed",
        line: int | None = None,
        raw_text: str | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.line = line
        self.raw_text = raw_text[:RAW_TEXT_LIMIT] if raw_text is not None else None
        self.days: list[dt.date] = []


@dataclass(frozen=True)
class InvoiceFile:
    """One file found under the invoices folder, with what it is supposed to be."""

    path: Path
    provider: str  # provider id, or _platform for the statement
    source: str  # invoices | statement
    fmt: str  # openai_costs | anthropic_cost_report | focus | openrouter_activity
    provider_cfg: Provider | None = None
    problem: str | None = None  # set when the file cannot be one of ours (name, folder)


@dataclass(frozen=True)
class FileCounts:
    """What a parser reports beside the rows it wrote: input lines (CSV data rows, JSON items)
    and the lines it kept out of scope (FOCUS: non-LLM services) with their BilledCost."""

    lines: int
    out_of_scope: int = 0
    out_of_scope_usd: Decimal = Decimal(0)


@dataclass
class ParsedFile:
    """One file parsed whole: its lines are in the TEMP table `table`."""

    file: InvoiceFile
    table: str
    lines: int
    rows: int
    out_of_scope: int = 0
    out_of_scope_usd: Decimal = Decimal(0)
    first_day: dt.date | None = None
    last_day: dt.date | None = None
    # (day, account) pairs the file covers; account None = every account of the provider.
    coverage: list[tuple[dt.date, str | None]] = field(default_factory=list)


# --------------------------------------------------------------------------- small parsers


def _null(v: Any) -> Any:
    if v is None or (isinstance(v, str) and v.strip().lower() in NULLS):
        return None
    return v.strip() if isinstance(v, str) else v


_NOT_FINITE = {"nan", "-nan", "inf", "-inf", "+inf", "infinity", "-infinity", "+infinity"}


def _money(v: Any, where: str, what: str, line: int | None = None) -> Decimal | None:
    if isinstance(v, str) and v.strip().lower() in _NOT_FINITE:  # never a null spelling here
        raise InvoiceError(
            f"{where}: {what} {v!r} is not a finite amount", reason="amount_not_finite", line=line
        )
    v = _null(v)
    if v is None:
        return None
    if isinstance(v, bool):
        raise InvoiceError(
            f"{where}: {what} is a boolean, not an amount", reason="bad_amount", line=line
        )
    if isinstance(v, float):  # only from Parquet float columns; repr is the shortest exact text
        v = repr(v)
    if not isinstance(v, (str, int, Decimal)):
        raise InvoiceError(
            f"{where}: {what} {v!r} is not a decimal amount", reason="bad_amount", line=line
        )
    try:
        d = Decimal(str(v))
    except InvalidOperation:
        raise InvoiceError(
            f"{where}: {what} {v!r} is not a decimal amount", reason="bad_amount", line=line
        ) from None
    if not d.is_finite():
        raise InvoiceError(
            f"{where}: {what} {v!r} is not a finite amount", reason="amount_not_finite", line=line
        )
    if abs(d) >= MAX_AMOUNT:
        raise InvoiceError(
            f"{where}: {what} {v!r} is out of range (an invoice line is below $10^15): "
            "the export is corrupt; fetch it again",
            reason="amount_out_of_range",
            line=line,
        )
    return d.quantize(NANO)


def _ts(v: Any, where: str, what: str, line: int | None = None) -> dt.datetime | None:
    v = _null(v)
    if v is None:
        return None
    if isinstance(v, dt.datetime):
        t = v
    elif isinstance(v, dt.date):
        t = dt.datetime(v.year, v.month, v.day)
    elif isinstance(v, str):
        text = v.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        if text.endswith(" UTC"):
            text = text[:-4] + "+00:00"
        try:
            t = dt.datetime.fromisoformat(text)
        except ValueError:
            raise InvoiceError(
                f"{where}: {what} {v!r} is not a timestamp", reason="bad_timestamp", line=line
            ) from None
    else:
        raise InvoiceError(
            f"{where}: {what} {v!r} is not a timestamp", reason="bad_timestamp", line=line
        )
    if t.tzinfo is not None:
        t = t.astimezone(dt.UTC).replace(tzinfo=None)
    return t


def _unix(v: Any, where: str, what: str) -> dt.datetime:
    if isinstance(v, bool) or not isinstance(v, (int, Decimal)):
        raise InvoiceError(
            f"{where}: {what} must be Unix seconds, got {v!r}", reason="bad_timestamp"
        )
    try:
        if not Decimal(v).is_finite() or Decimal(v) != int(v):
            raise ValueError
        return dt.datetime.fromtimestamp(int(v), dt.UTC).replace(tzinfo=None)
    except (ValueError, OverflowError, OSError):
        raise InvoiceError(
            f"{where}: {what} {v!r} is not a Unix time in seconds", reason="bad_timestamp"
        ) from None


def _usd(currency: Any, where: str, line: int | None = None) -> str:
    raw = _null(currency)
    if raw is not None and not isinstance(raw, str):
        raise InvoiceError(
            f"{where}: currency {raw!r} is not a currency code",
            reason="unknown_currency",
            line=line,
        )
    cur = (raw or "USD").upper()
    if cur != "USD":
        raise InvoiceError(
            f"{where}: currency {cur} is not USD; the ledger keeps USD only and never sums "
            "currencies: export this invoice in USD (or convert it with an explicit rate first)",
            reason="unknown_currency",
            line=line,
        )
    return cur


def _count(v: Any, where: str, what: str, line: int | None = None) -> int | None:
    v = _null(v)
    if v is None:
        return None
    ok = not isinstance(v, bool) and isinstance(v, (int, str, Decimal))
    n = None
    if ok:
        try:
            d = Decimal(str(v))
            if d.is_finite() and d == d.to_integral_value() and 0 <= d <= MAX_COUNT:
                n = int(d)
        except InvalidOperation:
            n = None
    if n is None:
        raise InvoiceError(
            f"{where}: {what} {v!r} is not a count between 0 and 10^12",
            reason="bad_count",
            line=line,
        )
    return n


def account_label(ids: dict[str, str | None]) -> str | None:
    """Canonical text of the identifiers present, e.g. `project_id=p1;api_key_id=k1`."""
    parts = [f"{k}={v}" for k, v in ids.items() if v is not None]
    return ";".join(parts) if parts else None


def _text(v: Any, where: str, what: str, line: int | None = None) -> str | None:
    v = _null(v)
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, (int, Decimal)) and not isinstance(v, bool):
        return str(v)
    raise InvoiceError(f"{where}: {what} {v!r} is not text", reason="bad_type", line=line)


def _row(**kw: Any) -> dict[str, Any]:
    row = {name: None for name, _ in INVOICE_COLUMNS}
    row.update(kw)
    row["day"] = row["ChargePeriodStart"].date()
    ids = {
        "project_id": row["x_ProjectId"],
        "api_key_id": row["x_ApiKeyId"],
        "workspace_id": row["x_WorkspaceId"],
        "sub_account_id": row["x_SubAccountId"],
        "billing_account_id": row["x_BillingAccountId"],
    }
    row["x_Account"] = account_label(ids)
    if row["EffectiveCost"] is None:
        row["EffectiveCost"] = row["BilledCost"]
    if row["x_UsageCost"] is None:
        row["x_UsageCost"] = row["BilledCost"]
    return row


# --------------------------------------------------------------------------- exact spread

_SPREAD_COLUMNS = ("BilledCost", "EffectiveCost", "ListCost", "ConsumedQuantity", "x_UsageCost")


def split_exact(amount: Decimal, weights: list[int]) -> list[Decimal]:
    """`amount` (a multiple of 1e-9) split in proportion to `weights` (positive integers) by
    the largest remainder at 1e-9: the parts sum to `amount` exactly, each within a nanodollar
    of its exact share; ties go to the earlier part. Negative amounts split like their
    absolute value, with the sign kept."""
    total = sum(weights)
    if total <= 0 or any(w <= 0 for w in weights):
        raise ValueError(f"weights must be positive, got {weights}")
    nanos = int(amount.quantize(NANO).scaleb(9))
    sign, n = (-1 if nanos < 0 else 1), abs(nanos)
    base = [n * w // total for w in weights]
    order = sorted(range(len(weights)), key=lambda i: (-(n * weights[i] % total), i))
    for i in order[: n - sum(base)]:
        base[i] += 1
    return [Decimal(sign * b).scaleb(-9).quantize(NANO) for b in base]


def day_parts(start: dt.datetime, end: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
    """[start, end) cut at UTC midnights."""
    parts = []
    t = start
    while t < end:
        nxt = min(dt.datetime.combine(t.date() + DAY, dt.time()), end)
        parts.append((t, nxt))
        t = nxt
    return parts


def spread(row: dict[str, Any]) -> list[dict[str, Any]]:
    """A line whose charge period spans several UTC days as one line per day, each with its
    part of the period and of every amount (exact, largest remainder); else the line itself."""
    start, end = row["ChargePeriodStart"], row["ChargePeriodEnd"]
    if end is None or end <= dt.datetime.combine(start.date() + DAY, dt.time()):
        return [row]
    parts = day_parts(start, end)
    # Exact integer microseconds: float seconds can lose one and move a nanodollar.
    weights = [(b - a) // dt.timedelta(microseconds=1) for a, b in parts]
    shares = {c: split_exact(row[c], weights) for c in _SPREAD_COLUMNS if row[c] is not None}
    out = []
    loc = row["x_SourceLocator"] or f"line {row['x_SourceLine']}"
    for k, (a, b) in enumerate(parts):
        part = dict(row)
        part.update({c: v[k] for c, v in shares.items()})
        part["ChargePeriodStart"], part["ChargePeriodEnd"], part["day"] = a, b, a.date()
        part["x_SourceLocator"] = f"{loc} (day {k + 1} of {len(parts)})"
        out.append(part)
    return out


# --------------------------------------------------------------------------- JSON pages


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    if not data.strip():
        raise InvoiceError(f"{path}: empty file", reason="empty_file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raw = data.splitlines()[line - 1].decode("utf-8", "replace") if data else None
        raise InvoiceError(
            f"{path}: line {line}: not UTF-8 text ({e.reason} at byte {e.start})",
            reason="not_utf8",
            line=line,
            raw_text=raw,
        ) from None


def _load_json(path: Path) -> Any:
    text = _read_text(path)
    try:
        # NaN / Infinity (bare words json accepts) become non-finite Decimals, refused where used.
        return json.loads(text, parse_float=Decimal, parse_constant=Decimal)
    except json.JSONDecodeError as e:
        lines = text.splitlines()
        raw = lines[e.lineno - 1] if 0 < e.lineno <= len(lines) else None
        truncated = e.pos >= len(text.rstrip())
        raise InvoiceError(
            f"{path}: line {e.lineno}: invalid JSON: {e.msg}"
            + (" (the file is cut short: fetch it again)" if truncated else ""),
            reason="truncated" if truncated else "invalid_json",
            line=e.lineno,
            raw_text=raw,
        ) from None
    except (RecursionError, ValueError) as e:  # nesting too deep, a 5,000-digit number
        raise InvoiceError(f"{path}: unreadable JSON: {e}", reason="invalid_json") from None


def _item_text(v: Any) -> str:
    try:
        return json.dumps(v, default=str)
    except (TypeError, ValueError):
        return repr(v)


def _pages_data(doc: Any, path: Path) -> list[Any]:
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise InvoiceError(
            f"{path}: expected an API page object with a 'data' list",
            reason="not_a_page",
            line=1,
            raw_text=_item_text(doc)[:2000],
        )
    return doc["data"]


def _buckets(path: Path) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """(index, locator, bucket) for each time bucket of a cost API page (OpenAI, Anthropic)."""
    for i, bucket in enumerate(_pages_data(_load_json(path), path)):
        loc = f"{path}: data[{i}]"
        if not isinstance(bucket, dict):
            raise InvoiceError(
                f"{loc}: a bucket must be an object", reason="bad_type", raw_text=_item_text(bucket)
            )
        yield i, loc, bucket


def _results(
    bucket: dict[str, Any], loc_b: str, counter: list[int]
) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """(index, locator, result) for each result object of a bucket; counts items in `counter`."""
    results = bucket.get("results")
    if results is None:
        return
    if not isinstance(results, list):
        raise InvoiceError(
            f"{loc_b}: results must be a list", reason="bad_type", raw_text=_item_text(results)
        )
    for j, r in enumerate(results):
        counter[0] += 1
        loc = f"{loc_b}.results[{j}]"
        if not isinstance(r, dict):
            raise InvoiceError(
                f"{loc}: a result must be an object",
                reason="bad_type",
                line=counter[0],
                raw_text=_item_text(r),
            )
        yield j, loc, r


def _period(start: dt.datetime, end: dt.datetime | None, loc: str) -> None:
    if end is not None and end <= start:
        raise InvoiceError(
            f"{loc}: bucket ends ({end:%Y-%m-%dT%H:%M}) before or when it starts "
            f"({start:%Y-%m-%dT%H:%M})",
            reason="bucket_period",
        )


def _bucket_days(start: dt.datetime, end: dt.datetime | None) -> list[dt.date]:
    if end is None:
        return [start.date()]
    return sorted({a.date() for a, _ in day_parts(start, end)})


class _Page:
    """Shared state of one API page parse: item count and the UTC days its buckets cover."""

    def __init__(self) -> None:
        self.items = [0]
        self.days: set[dt.date] = set()


# --------------------------------------------------------------------------- openai_costs

_OPENAI_TOKEN = {
    "input": "input",
    "output": "output",
    "cached input": "cache_read",
    "cached_input": "cache_read",
    "cache read": "cache_read",
}


def parse_openai_costs(
    path: Path, provider: str, page: _Page | None = None
) -> Iterator[dict[str, Any]]:
    """OpenAI Costs API page: buckets in Unix seconds UTC, `amount.value` in dollars. A bucket
    spanning several UTC days is spread over them."""
    page = page or _Page()
    for i, loc_b, bucket in _buckets(path):
        start = _unix(bucket.get("start_time"), loc_b, "start_time")
        end = (
            _unix(bucket.get("end_time"), loc_b, "end_time")
            if bucket.get("end_time") is not None
            else None
        )
        _period(start, end, loc_b)
        page.days.update(_bucket_days(start, end))
        for j, loc, r in _results(bucket, loc_b, page.items):
            n = page.items[0]
            try:
                amount = r.get("amount")
                if not isinstance(amount, dict):
                    raise InvoiceError(
                        f"{loc}: amount must be an object with value and currency",
                        reason="bad_amount",
                    )
                cost = _money(amount.get("value"), loc, "amount.value")
                if cost is None:
                    raise InvoiceError(f"{loc}: amount.value is missing", reason="missing_amount")
                item = _text(r.get("line_item"), loc, "line_item")
                model, token = item, None
                if item and ", " in item:
                    model, suffix = item.rsplit(", ", 1)
                    token = _OPENAI_TOKEN.get(suffix.strip().lower(), suffix.strip().lower())
                low = (item or "").lower()
                category = (
                    "Credit" if "credit" in low else "Tax" if low.startswith("tax") else "Usage"
                )
                row = _row(
                    BilledCost=cost,
                    BillingCurrency=_usd(amount.get("currency"), loc),
                    ChargePeriodStart=start,
                    ChargePeriodEnd=end,
                    ChargeCategory=category,
                    ChargeDescription=item,
                    ProviderName="OpenAI",
                    SkuMeter=item,
                    ConsumedQuantity=_money(r.get("quantity"), loc, "quantity"),
                    ConsumedUnit=_text(r.get("quantity_unit"), loc, "quantity_unit"),
                    x_Provider=provider,
                    x_ProjectId=_text(r.get("project_id"), loc, "project_id"),
                    x_ApiKeyId=_text(r.get("api_key_id"), loc, "api_key_id"),
                    x_UpstreamModel=model if category == "Usage" else None,
                    x_TokenType=token,
                    x_SourceFile=str(path),
                    x_SourceLine=n,
                    x_SourceLocator=f"data[{i}].results[{j}]",
                )
            except InvoiceError as e:
                e.line, e.raw_text = n, _item_text(r)[:RAW_TEXT_LIMIT]
                raise
            yield from spread(row)


# --------------------------------------------------------------------------- anthropic

_ANTHROPIC_TOKEN = {
    "uncached_input_tokens": "input",
    "output_tokens": "output",
    "cache_read_input_tokens": "cache_read",
    "cache_creation.ephemeral_5m_input_tokens": "cache_write",
    "cache_creation.ephemeral_1h_input_tokens": "cache_write",
    "cache_creation_input_tokens": "cache_write",
}


def parse_anthropic_cost_report(
    path: Path, provider: str, page: _Page | None = None
) -> Iterator[dict[str, Any]]:
    """Anthropic Admin API cost report page: `amount` is a decimal string in cents. A bucket
    spanning several UTC days is spread over them."""
    page = page or _Page()
    for i, loc_b, bucket in _buckets(path):
        start = _ts(bucket.get("starting_at"), loc_b, "starting_at")
        if start is None:
            raise InvoiceError(f"{loc_b}: starting_at is missing", reason="missing_field")
        end = _ts(bucket.get("ending_at"), loc_b, "ending_at")
        _period(start, end, loc_b)
        page.days.update(_bucket_days(start, end))
        for j, loc, r in _results(bucket, loc_b, page.items):
            n = page.items[0]
            try:
                raw = r.get("amount")
                if isinstance(raw, (Decimal, int, float)) and not isinstance(raw, bool):
                    raise InvoiceError(
                        f"{loc}: amount must be a decimal string in cents, got a number",
                        reason="bad_amount",
                    )
                cents = _money(raw, loc, "amount")
                if cents is None:
                    raise InvoiceError(f"{loc}: amount is missing", reason="missing_amount")
                cost_type = _text(r.get("cost_type"), loc, "cost_type")
                token = _text(r.get("token_type"), loc, "token_type")
                desc = _text(r.get("description"), loc, "description")
                low = f"{cost_type or ''} {desc or ''}".lower()
                category = "Credit" if "credit" in low else "Tax" if "tax" in low else "Usage"
                row = _row(
                    BilledCost=(cents / 100).quantize(NANO),
                    BillingCurrency=_usd(r.get("currency"), loc),
                    ChargePeriodStart=start,
                    ChargePeriodEnd=end,
                    ChargeCategory=category,
                    ChargeDescription=desc,
                    ProviderName="Anthropic",
                    SkuMeter=token or cost_type,
                    x_Provider=provider,
                    # The cost report writes null for the organisation's default workspace.
                    x_WorkspaceId=_text(r.get("workspace_id"), loc, "workspace_id") or "default",
                    x_UpstreamModel=(
                        _text(r.get("model"), loc, "model") if category == "Usage" else None
                    ),
                    x_TokenType=_ANTHROPIC_TOKEN.get(token or "", token),
                    x_ServiceTier=_text(r.get("service_tier"), loc, "service_tier"),
                    x_SourceFile=str(path),
                    x_SourceLine=n,
                    x_SourceLocator=f"data[{i}].results[{j}]",
                )
            except InvoiceError as e:
                e.line, e.raw_text = n, _item_text(r)[:RAW_TEXT_LIMIT]
                raise
            yield from spread(row)


# --------------------------------------------------------------------------- CSV


def csv_records(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """(line, record) for each data row of a CSV file, strictly: every row must have exactly
    the header's columns (a short row is a file cut mid-row, or a broken export); a last line
    without its newline is accepted only when it is complete. `line` is the row's first line
    (a quoted value may span several)."""
    text = _read_text(path)
    ends_clean = text.endswith(("\n", "\r"))
    lines = text.splitlines()
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if not header or not any(h.strip() for h in header):
            raise InvoiceError(f"{path}: empty CSV (no header line)", reason="empty_file", line=1)
        header = [h.strip() for h in header]
        dup = sorted({h for h in header if header.count(h) > 1})
        if dup:
            raise InvoiceError(
                f"{path}: line 1: column(s) {dup} appear twice", reason="bad_header", line=1
            )
        prev_end = reader.line_num
        for values in reader:
            end, line = reader.line_num, prev_end + 1
            if not values:  # a blank line is no data row
                prev_end = end
                continue
            if len(values) != len(header):
                last = end >= len(lines) and not ends_clean
                raw = "\n".join(lines[prev_end:end])
                if last and len(values) < len(header):
                    raise InvoiceError(
                        f"{path}: line {line}: the file is cut short in the middle of a row "
                        f"({len(values)} of {len(header)} columns, no final newline): fetch "
                        "the export again",
                        reason="truncated",
                        line=line,
                        raw_text=raw,
                    )
                raise InvoiceError(
                    f"{path}: line {line}: {len(values)} columns where the header has "
                    f"{len(header)}: the export is broken; fetch it again",
                    reason="short_row" if len(values) < len(header) else "wrong_column_count",
                    line=line,
                    raw_text=raw,
                )
            prev_end = end
            yield line, dict(zip(header, values, strict=True))
    except csv.Error as e:
        line = reader.line_num
        raise InvoiceError(
            f"{path}: line {line}: invalid CSV: {e}",
            reason="truncated" if not ends_clean and line >= len(lines) else "invalid_csv",
            line=line,
            raw_text=lines[line - 1] if 0 < line <= len(lines) else None,
        ) from None


# --------------------------------------------------------------------------- statement

_STATEMENT_REQUIRED = ("date", "model", "provider_name", "usage")


def parse_openrouter_activity(path: Path, cfg: LedgerConfig) -> Iterator[dict[str, Any]]:
    """Platform statement rows: `usage` = platform credits charged that day (shared-capacity
    credits plus BYOK fees); `byok_usage_inference` = upstream cost of BYOK inference, billed by
    the provider on the customer's account (informational, not platform money)."""
    names = {}
    for p in cfg.providers:
        names[p.id.lower()] = p.id
        if p.statement_name:
            names[p.statement_name.lower()] = p.id
    records: Iterator[tuple[int, Any]]
    if path.suffix.lower() == ".csv":
        records, json_page = csv_records(path), False
    elif path.suffix.lower() == ".json":
        records, json_page = enumerate(_pages_data(_load_json(path), path), start=1), True
    else:
        raise InvoiceError(
            f"{path}: unknown statement file type (expected .json or .csv)", reason="unknown_file"
        )
    for line, rec in records:
        loc = f"{path}: " + (f"data[{line - 1}]" if json_page else f"line {line}")
        try:
            yield _statement_row(rec, loc, line, path, cfg, names, json_page)
        except InvoiceError as e:
            e.line, e.raw_text = line, e.raw_text or _item_text(rec)
            raise


def _statement_row(
    rec: Any,
    loc: str,
    line: int,
    path: Path,
    cfg: LedgerConfig,
    names: dict[str, str],
    json_page: bool,
) -> dict[str, Any]:
    if not isinstance(rec, dict):
        raise InvoiceError(f"{loc}: a statement row must be an object", reason="bad_type")
    missing = [c for c in _STATEMENT_REQUIRED if c not in rec]
    if missing:
        raise InvoiceError(
            f"{loc}: not an openrouter_activity row: missing {missing}", reason="missing_field"
        )
    day = _ts(rec.get("date"), loc, "date")
    if day is None:
        raise InvoiceError(f"{loc}: date is empty", reason="missing_field")
    day = dt.datetime(day.year, day.month, day.day)
    usage = _money(rec.get("usage"), loc, "usage")
    if usage is None:
        raise InvoiceError(f"{loc}: usage is empty", reason="missing_amount")
    pname = _text(rec.get("provider_name"), loc, "provider_name")
    model = _text(rec.get("model"), loc, "model")
    return _row(
        BilledCost=usage,
        BillingCurrency=_usd(rec.get("currency"), loc),
        ChargePeriodStart=day,
        ChargePeriodEnd=day + DAY,
        ChargeCategory="Usage",
        ChargeDescription=f"{model} via {pname}",
        ProviderName=cfg.platform.name,
        ResourceId=_text(rec.get("endpoint_id"), loc, "endpoint_id"),
        SkuMeter="credits",
        x_Provider=PLATFORM_DIR,
        x_UpstreamModel=_text(rec.get("model_permaslug"), loc, "model_permaslug") or model,
        x_Model=model,
        x_StatementProvider=names.get(str(pname).lower()) if pname else None,
        x_ByokUsageInference=_money(rec.get("byok_usage_inference"), loc, "byok_usage_inference"),
        x_Requests=_count(rec.get("requests"), loc, "requests"),
        x_ByokRequests=_count(rec.get("byok_requests"), loc, "byok_requests"),
        x_SourceFile=str(path),
        x_SourceLine=line,
        x_SourceLocator=f"data[{line - 1}]" if json_page else None,
    )


# --------------------------------------------------------------------------- discovery

_EXPECTED = {
    "focus": (".csv", ".parquet", ".gz"),  # .csv.gz: AWS Data Exports compress by default
    "openai_costs": (".json",),
    "anthropic_cost_report": (".json",),
    "openrouter_activity": (".json", ".csv"),
}


def discover(cfg: LedgerConfig, invoices_dir: Path) -> list[InvoiceFile]:
    """Every file under `invoices_dir`, sorted, each with its provider and format. A file that
    cannot be an invoice of ours (unknown folder, wrong extension) comes back with `problem`
    set: the loader refuses it (named in the manifest) and loads the others."""
    found: list[InvoiceFile] = []
    if not invoices_dir.is_dir():
        return found
    providers = {p.id: p for p in cfg.providers}
    for folder in sorted(p for p in invoices_dir.iterdir() if p.is_dir()):
        if folder.name.startswith("."):
            continue
        known = folder.name == PLATFORM_DIR or folder.name in providers
        for f in sorted(folder.rglob("*")):
            if not f.is_file() or any(part.startswith(".") for part in f.relative_to(folder).parts):
                continue
            if not known:
                found.append(
                    InvoiceFile(
                        f,
                        folder.name,
                        "invoices",
                        "unknown",
                        problem=f"{folder}: folder names no provider of the config (known: "
                        f"{', '.join(sorted(providers))}, and {PLATFORM_DIR} for the statement)",
                    )
                )
                continue
            pcfg = providers.get(folder.name)
            fmt = pcfg.invoice_format if pcfg else "openrouter_activity"
            source = "invoices" if pcfg else "statement"
            problem = None
            if f.suffix.lower() not in _EXPECTED[fmt]:
                problem = (
                    f"{f}: unknown invoice file for provider {folder.name!r} "
                    f"(invoice_format {fmt} expects {' or '.join(_EXPECTED[fmt])})"
                )
            found.append(InvoiceFile(f, folder.name, source, fmt, pcfg, problem))
    return found


def known_models(cfg: LedgerConfig) -> set[str]:
    """Every upstream model name the config routes to."""
    return {e.upstream_model for m in cfg.models for e in m.endpoints}


def _row_parser(f: InvoiceFile, cfg: LedgerConfig, page: _Page) -> Iterator[dict[str, Any]]:
    if f.problem:
        raise InvoiceError(f.problem, reason="unknown_file")
    if f.fmt == "openai_costs":
        return parse_openai_costs(f.path, f.provider, page)
    if f.fmt == "anthropic_cost_report":
        return parse_anthropic_cost_report(f.path, f.provider, page)
    return parse_openrouter_activity(f.path, cfg)


def create_target(conn: duckdb.DuckDBPyConnection, target: str) -> None:
    """An empty TEMP table with exactly the `staging.invoice_lines` columns."""
    conn.execute(
        f"CREATE OR REPLACE TEMP TABLE {target} AS SELECT * FROM staging.invoice_lines LIMIT 0"
    )


def parse_file(
    conn: duckdb.DuckDBPyConnection, f: InvoiceFile, cfg: LedgerConfig, target: str
) -> ParsedFile:
    """Parse ONE file whole into the TEMP table `target` (created here, empty, with the
    `staging.invoice_lines` columns). Raises `InvoiceError` (reason, line, raw text and the
    days the file was about in `.days`) when any part of it cannot be read; then `target`
    must not be used.

    FOCUS files go to `pipeline.sources.focus.parse_focus_file(conn, path, provider_id,
    provider_cfg, known_models, target) -> FileCounts` (one streaming DuckDB pass; the one
    FOCUS validation): it fills `target` and raises `InvoiceError` the same way."""
    create_target(conn, target)
    page = _Page()
    rows: list[dict[str, Any]] = []
    try:
        if f.fmt == "focus" and not f.problem:
            from .focus import parse_focus_file  # focus.py imports this module

            counts = parse_focus_file(
                conn, f.path, f.provider, f.provider_cfg, known_models(cfg), target
            )
        else:
            for row in _row_parser(f, cfg, page):
                rows.append(row)
            lines = (
                page.items[0]
                if f.fmt in ("openai_costs", "anthropic_cost_report")
                else len({r["x_SourceLine"] for r in rows})
            )
            counts = FileCounts(lines=lines)
            if rows:
                tbl = invoice_table(rows)
                conn.register("_inv_arrow", tbl)
                try:
                    conn.execute(f"INSERT INTO {target} BY NAME SELECT * FROM _inv_arrow")
                finally:
                    conn.unregister("_inv_arrow")
    except InvoiceError as e:
        # A file that is no invoice of ours (unknown folder or extension) covers no day.
        if not f.problem:
            e.days = sorted({r["day"] for r in rows} | page.days) or guess_days(f.path)
        raise
    except (OSError, RecursionError, MemoryError) as e:
        err = InvoiceError(f"{f.path}: cannot read the file: {e}", reason="unreadable")
        err.days = sorted({r["day"] for r in rows} | page.days) or guess_days(f.path)
        raise err from None
    except Exception as e:  # a parser bug must refuse this file, not stop every other one
        err = InvoiceError(
            f"{f.path}: the {f.fmt} parser failed ({type(e).__name__}: {e}); this is a bug "
            "in byok-ledger: report it with the file",
            reason="parser_error",
        )
        err.days = sorted({r["day"] for r in rows} | page.days) or guess_days(f.path)
        raise err from e
    return _summarise(conn, f, target, counts, page)


def _summarise(
    conn: duckdb.DuckDBPyConnection, f: InvoiceFile, target: str, counts: FileCounts, page: _Page
) -> ParsedFile:
    n, first, last = conn.execute(f"SELECT count(*), min(day), max(day) FROM {target}").fetchone()
    coverage: list[tuple[dt.date, str | None]]
    if f.fmt in ("openai_costs", "anthropic_cost_report", "openrouter_activity"):
        # API pages cover the whole organisation for every day of their buckets (an empty
        # bucket is an arrived $0); the statement covers the platform for the days it lists.
        days = page.days or {
            d for (d,) in conn.execute(f"SELECT DISTINCT day FROM {target}").fetchall()
        }
        coverage = [(d, None) for d in sorted(days)]
    else:
        # A FOCUS export covers the accounts present in it, on every day of its charge span
        # (first to last day of its lines); correction lines cover only their own day.
        coverage = [
            (d, a)
            for d, a in conn.execute(
                f"""
                WITH span AS (SELECT min(day) AS a, max(day) AS b FROM {target}
                              WHERE ChargeClass IS DISTINCT FROM 'Correction'),
                named AS (SELECT DISTINCT x_Account AS account FROM {target}
                          WHERE ChargeClass IS DISTINCT FROM 'Correction'
                            AND x_Account IS NOT NULL),
                -- lines without any account id (a credit, tax) widen nothing, unless no line
                -- names an account: then the export covers the whole provider (NULL)
                acc AS (SELECT account FROM named
                        UNION ALL SELECT NULL WHERE NOT EXISTS (SELECT 1 FROM named)),
                days AS (SELECT CAST(unnest(generate_series(a, b, INTERVAL 1 DAY)) AS DATE) AS day
                         FROM span WHERE a IS NOT NULL)
                SELECT day, account FROM days, acc
                UNION
                SELECT DISTINCT day, x_Account FROM {target} WHERE ChargeClass = 'Correction'
                ORDER BY 1, 2 NULLS FIRST
                """
            ).fetchall()
        ]
    days = [d for d, _ in coverage]
    return ParsedFile(
        file=f,
        table=target,
        lines=counts.lines,
        rows=int(n),
        out_of_scope=counts.out_of_scope,
        out_of_scope_usd=counts.out_of_scope_usd,
        first_day=min([first, *days]) if first or days else None,
        last_day=max([last, *days]) if last or days else None,
        coverage=coverage,
    )


_DAY_RE = re.compile(r"(?<!\d)(20\d\d)-(\d\d)-(\d\d)(?!\d)")
_MONTH_RE = re.compile(r"(?<!\d)(20\d\d)-(\d\d)(?![\d-])")


def guess_days(path: Path) -> list[dt.date]:
    """The days a file was about when none of it could be parsed: bucket times in its text
    (`"start_time": <unix>`, `"starting_at"`, `"date"` / ISO dates), else a date in its name
    (`YYYY-MM-DD` = that day, `YYYY-MM` = that month), else none."""
    days: set[dt.date] = set()
    try:
        head = path.read_bytes()[: 4 * 1024 * 1024].decode("utf-8", "replace")
    except OSError:
        head = ""
    for m in re.finditer(r'"start_time"\s*:\s*(\d{9,11})', head):
        days.add(dt.datetime.fromtimestamp(int(m.group(1)), dt.UTC).date())
    for m in _DAY_RE.finditer(head):
        with _suppress():
            days.add(dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3))))
    if days:
        return sorted(days)
    name = path.name
    for m in _DAY_RE.finditer(name):
        with _suppress():
            days.add(dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3))))
    if not days:
        for m in _MONTH_RE.finditer(name):
            with _suppress():
                first = dt.date(int(m.group(1)), int(m.group(2)), 1)
                nxt = (first + dt.timedelta(days=32)).replace(day=1)
                days.update(first + dt.timedelta(days=i) for i in range((nxt - first).days))
    return sorted(days)


def _suppress() -> contextlib.suppress:
    return contextlib.suppress(ValueError)


def read_invoices(cfg: LedgerConfig, invoices_dir: Path) -> list[dict[str, Any]]:
    """Every invoice and statement line under `invoices_dir` (all days) as dicts, through the
    same `parse_file` the loader uses, raising `InvoiceError` at the first file that cannot
    be read (tests and quick looks; the loader refuses that file and goes on)."""
    from pipeline.sql import run_sql

    rows: list[dict[str, Any]] = []
    with duckdb.connect() as conn:
        run_sql(conn, "schema/create_tables")
        for f in discover(cfg, invoices_dir):
            parse_file(conn, f, cfg, "_read_one")
            cur = conn.execute("SELECT * FROM _read_one ORDER BY x_SourceLine, ChargePeriodStart")
            cols = [d[0] for d in cur.description]
            rows.extend(dict(zip(cols, r, strict=True)) for r in cur.fetchall())
    return rows


def invoice_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Rows as an Arrow table with the exact `staging.invoice_lines` types (Decimal kept)."""
    return pa.Table.from_pylist(rows, schema=INVOICE_SCHEMA)
