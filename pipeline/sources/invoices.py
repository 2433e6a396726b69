"""Provider invoices and the platform statement in their native formats (SPEC §7), normalised
into rows of `staging.invoice_lines` (FOCUS column names plus `x_` join keys).

Layout: `<invoices>/<provider id>/` holds that provider's exports in its `invoice_format`
(`openai_costs` and `anthropic_cost_report`: one API response page per `*.json` file; `focus`:
`*.csv` or `*.parquet`); `<invoices>/_platform/` holds the `openrouter_activity` statement
(`*.json` pages `{"data": [...]}` or `*.csv` with the same columns).

Money is parsed from the file's text as Decimal (JSON via `parse_float=Decimal`, CSV as
strings), never through a float. A file this module cannot read, or a line it cannot
understand, raises `InvoiceError` naming the file and the line: invoices are few and each one
matters, so a broken one blocks the load instead of being skipped.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pyarrow as pa

from routing_core.config import LedgerConfig

PLATFORM_DIR = "_platform"
NANO = Decimal("0.000000001")
NULLS = {"", "null", "none", "nan", "n/a"}

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
]
INVOICE_SCHEMA = pa.schema(INVOICE_COLUMNS)
CATEGORIES = {c.lower(): c for c in ("Usage", "Purchase", "Tax", "Credit", "Adjustment")}


class InvoiceError(ValueError):
    """An invoice or statement file that cannot be loaded; the message names file and line."""


# --------------------------------------------------------------------------- small parsers


def _null(v: Any) -> Any:
    if v is None or (isinstance(v, str) and v.strip().lower() in NULLS):
        return None
    return v.strip() if isinstance(v, str) else v


def _money(v: Any, where: str, what: str) -> Decimal | None:
    v = _null(v)
    if v is None:
        return None
    if isinstance(v, bool):
        raise InvoiceError(f"{where}: {what} is a boolean, not an amount")
    if isinstance(v, float):  # only from Parquet float columns; repr is the shortest exact text
        v = repr(v)
    try:
        d = Decimal(str(v))
    except InvalidOperation:
        raise InvoiceError(f"{where}: {what} {v!r} is not a decimal amount") from None
    if not d.is_finite():
        raise InvoiceError(f"{where}: {what} {v!r} is not a finite amount")
    return d.quantize(NANO)


def _ts(v: Any, where: str, what: str) -> dt.datetime | None:
    v = _null(v)
    if v is None:
        return None
    if isinstance(v, dt.datetime):
        t = v
    elif isinstance(v, dt.date):
        t = dt.datetime(v.year, v.month, v.day)
    else:
        text = str(v).strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        if text.endswith(" UTC"):
            text = text[:-4] + "+00:00"
        try:
            t = dt.datetime.fromisoformat(text)
        except ValueError:
            raise InvoiceError(f"{where}: {what} {v!r} is not a timestamp") from None
    if t.tzinfo is not None:
        t = t.astimezone(dt.UTC).replace(tzinfo=None)
    return t


def _unix(v: Any, where: str, what: str) -> dt.datetime:
    if isinstance(v, bool) or not isinstance(v, (int, Decimal)):
        raise InvoiceError(f"{where}: {what} must be Unix seconds, got {v!r}")
    return dt.datetime.fromtimestamp(int(v), dt.UTC).replace(tzinfo=None)


def _usd(currency: Any, where: str) -> str:
    cur = (_null(currency) or "USD").upper()
    if cur != "USD":
        raise InvoiceError(
            f"{where}: currency {cur} is not USD; the ledger keeps USD only and never sums "
            "currencies: export this invoice in USD (or convert it with an explicit rate first)"
        )
    return cur


def account_label(ids: dict[str, str | None]) -> str | None:
    """Canonical text of the identifiers present, e.g. `project_id=p1;api_key_id=k1`."""
    parts = [f"{k}={v}" for k, v in ids.items() if v is not None]
    return ";".join(parts) if parts else None


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
    return row


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
    except UnicodeDecodeError as e:
        raise InvoiceError(f"{path}: not UTF-8 text: {e}") from None
    except json.JSONDecodeError as e:
        raise InvoiceError(f"{path}: line {e.lineno}: invalid JSON: {e.msg}") from None


def _pages_data(doc: Any, path: Path) -> list[Any]:
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise InvoiceError(f"{path}: expected an API page object with a 'data' list")
    return doc["data"]


def _buckets(path: Path) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """(index, locator, bucket) for each time bucket of a cost API page (OpenAI, Anthropic)."""
    for i, bucket in enumerate(_pages_data(_load_json(path), path)):
        loc = f"{path}: data[{i}]"
        if not isinstance(bucket, dict):
            raise InvoiceError(f"{loc}: a bucket must be an object")
        yield i, loc, bucket


def _results(bucket: dict[str, Any], loc_b: str) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """(index, locator, result) for each result object of a bucket."""
    for j, r in enumerate(bucket.get("results") or []):
        loc = f"{loc_b}.results[{j}]"
        if not isinstance(r, dict):
            raise InvoiceError(f"{loc}: a result must be an object")
        yield j, loc, r


# --------------------------------------------------------------------------- openai_costs

_OPENAI_TOKEN = {
    "input": "input",
    "output": "output",
    "cached input": "cache_read",
    "cached_input": "cache_read",
    "cache read": "cache_read",
}


def parse_openai_costs(path: Path, provider: str) -> Iterator[dict[str, Any]]:
    """OpenAI Costs API page: daily buckets (Unix seconds UTC), `amount.value` in dollars."""
    n = 0
    for i, loc_b, bucket in _buckets(path):
        start = _unix(bucket.get("start_time"), loc_b, "start_time")
        end = (
            _unix(bucket.get("end_time"), loc_b, "end_time")
            if bucket.get("end_time") is not None
            else None
        )
        for j, loc, r in _results(bucket, loc_b):
            n += 1
            amount = r.get("amount")
            if not isinstance(amount, dict):
                raise InvoiceError(f"{loc}: amount must be an object with value and currency")
            cost = _money(amount.get("value"), loc, "amount.value")
            if cost is None:
                raise InvoiceError(f"{loc}: amount.value is missing")
            item = _null(r.get("line_item"))
            model, token = item, None
            if item and ", " in item:
                model, suffix = item.rsplit(", ", 1)
                token = _OPENAI_TOKEN.get(suffix.strip().lower(), suffix.strip().lower())
            low = (item or "").lower()
            category = "Credit" if "credit" in low else "Tax" if low.startswith("tax") else "Usage"
            yield _row(
                BilledCost=cost,
                BillingCurrency=_usd(amount.get("currency"), loc),
                ChargePeriodStart=start,
                ChargePeriodEnd=end,
                ChargeCategory=category,
                ChargeDescription=item,
                ProviderName="OpenAI",
                SkuMeter=item,
                ConsumedQuantity=_money(r.get("quantity"), loc, "quantity"),
                ConsumedUnit=_null(r.get("quantity_unit")),
                x_Provider=provider,
                x_ProjectId=_null(r.get("project_id")),
                x_ApiKeyId=_null(r.get("api_key_id")),
                x_UpstreamModel=model if category == "Usage" else None,
                x_TokenType=token,
                x_SourceFile=str(path),
                x_SourceLine=n,
                x_SourceLocator=f"data[{i}].results[{j}]",
            )


# --------------------------------------------------------------------------- anthropic

_ANTHROPIC_TOKEN = {
    "uncached_input_tokens": "input",
    "output_tokens": "output",
    "cache_read_input_tokens": "cache_read",
    "cache_creation.ephemeral_5m_input_tokens": "cache_write",
    "cache_creation.ephemeral_1h_input_tokens": "cache_write",
    "cache_creation_input_tokens": "cache_write",
}


def parse_anthropic_cost_report(path: Path, provider: str) -> Iterator[dict[str, Any]]:
    """Anthropic Admin API cost report page: `amount` is a decimal string in cents."""
    n = 0
    for i, loc_b, bucket in _buckets(path):
        start = _ts(bucket.get("starting_at"), loc_b, "starting_at")
        if start is None:
            raise InvoiceError(f"{loc_b}: starting_at is missing")
        end = _ts(bucket.get("ending_at"), loc_b, "ending_at")
        for j, loc, r in _results(bucket, loc_b):
            n += 1
            raw = r.get("amount")
            if isinstance(raw, Decimal):
                raise InvoiceError(f"{loc}: amount must be a decimal string in cents, got a number")
            cents = _money(raw, loc, "amount")
            if cents is None:
                raise InvoiceError(f"{loc}: amount is missing")
            cost_type = _null(r.get("cost_type"))
            token = _null(r.get("token_type"))
            desc = _null(r.get("description"))
            low = f"{cost_type or ''} {desc or ''}".lower()
            category = "Credit" if "credit" in low else "Tax" if "tax" in low else "Usage"
            yield _row(
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
                x_WorkspaceId=_null(r.get("workspace_id")) or "default",
                x_UpstreamModel=_null(r.get("model")) if category == "Usage" else None,
                x_TokenType=_ANTHROPIC_TOKEN.get(token or "", token),
                x_ServiceTier=_null(r.get("service_tier")),
                x_SourceFile=str(path),
                x_SourceLine=n,
                x_SourceLocator=f"data[{i}].results[{j}]",
            )


# --------------------------------------------------------------------------- focus

_FOCUS_TOKEN = {
    "input tokens": "input",
    "output tokens": "output",
    "cache read input tokens": "cache_read",
    "cache write input tokens": "cache_write",
}
_FOCUS_REQUIRED = ("BilledCost", "BillingCurrency", "ChargePeriodStart", "ChargeCategory")


def focus_model(resource_id: str | None, known: set[str]) -> str | None:
    """Upstream model from a FOCUS ResourceId: what follows `foundation-model/` or `models/`
    (model names may hold a `/`), else the last path segment."""
    if not resource_id:
        return None
    del known  # the caller falls back to x_Model / Tags.model when this is not a known model
    for marker in ("foundation-model/", "models/"):
        if marker in resource_id:
            return resource_id.rsplit(marker, 1)[1].rstrip("/") or None
    return resource_id.rstrip("/").rsplit("/", 1)[-1]


def _focus_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except Exception as e:  # pyarrow raises several types for a broken file
            raise InvoiceError(f"{path}: not a readable Parquet file: {e}") from None
        for i, rec in enumerate(table.to_pylist(), start=1):
            yield i, rec
        return
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames:
                raise InvoiceError(f"{path}: empty CSV (no header line)")
            for rec in reader:
                yield reader.line_num, rec
    except UnicodeDecodeError as e:
        raise InvoiceError(f"{path}: not UTF-8 text: {e}") from None
    except csv.Error as e:
        raise InvoiceError(f"{path}: invalid CSV: {e}") from None


def parse_focus(path: Path, provider: str, known_models: set[str]) -> Iterator[dict[str, Any]]:
    """FOCUS 1.0–1.3 rows (CSV or Parquet)."""
    first = True
    for line, rec in _focus_records(path):
        loc = f"{path}: line {line}"
        if first:
            missing = [c for c in _FOCUS_REQUIRED if c not in rec]
            if missing:
                raise InvoiceError(f"{path}: not a FOCUS export: missing column(s) {missing}")
            first = False
        cost = _money(rec.get("BilledCost"), loc, "BilledCost")
        if cost is None:
            raise InvoiceError(f"{loc}: BilledCost is empty")
        start = _ts(rec.get("ChargePeriodStart"), loc, "ChargePeriodStart")
        if start is None:
            raise InvoiceError(f"{loc}: ChargePeriodStart is empty")
        cat_raw = _null(rec.get("ChargeCategory"))
        category = CATEGORIES.get(str(cat_raw).lower()) if cat_raw else None
        if category is None:
            raise InvoiceError(f"{loc}: unknown ChargeCategory {cat_raw!r}")
        cls = _null(rec.get("ChargeClass"))
        tags_raw = _null(rec.get("Tags"))
        tags: dict[str, Any] = {}
        if isinstance(tags_raw, dict):
            tags = tags_raw
        elif tags_raw:
            try:
                parsed = json.loads(tags_raw)
                tags = parsed if isinstance(parsed, dict) else {}
            except ValueError:
                raise InvoiceError(f"{loc}: Tags is not a JSON object: {tags_raw!r}") from None
        resource = _null(rec.get("ResourceId"))
        fallback = _null(rec.get("x_Model")) or _null(tags.get("model"))
        model = focus_model(resource, known_models)
        if model is None or (model not in known_models and fallback in known_models):
            model = fallback
        sub = _null(rec.get("SubAccountId"))
        billing = _null(rec.get("BillingAccountId"))
        meter = _null(rec.get("SkuMeter"))
        yield _row(
            BilledCost=cost,
            EffectiveCost=_money(rec.get("EffectiveCost"), loc, "EffectiveCost"),
            ListCost=_money(rec.get("ListCost"), loc, "ListCost"),
            BillingCurrency=_usd(rec.get("BillingCurrency"), loc),
            ChargePeriodStart=start,
            ChargePeriodEnd=_ts(rec.get("ChargePeriodEnd"), loc, "ChargePeriodEnd"),
            BillingPeriodStart=_ts(rec.get("BillingPeriodStart"), loc, "BillingPeriodStart"),
            BillingPeriodEnd=_ts(rec.get("BillingPeriodEnd"), loc, "BillingPeriodEnd"),
            ChargeCategory=category,
            ChargeClass="Correction" if cls and str(cls).lower() == "correction" else cls,
            ChargeDescription=_null(rec.get("ChargeDescription")),
            ProviderName=_null(rec.get("ProviderName")) or _null(rec.get("ServiceProviderName")),
            BillingAccountId=billing,
            SubAccountId=sub,
            ResourceId=resource,
            ServiceName=_null(rec.get("ServiceName")),
            SkuMeter=meter,
            ConsumedQuantity=_money(rec.get("ConsumedQuantity"), loc, "ConsumedQuantity"),
            ConsumedUnit=_null(rec.get("ConsumedUnit")),
            Tags=json.dumps(tags, sort_keys=True) if tags else None,
            x_Provider=provider,
            # SPEC §7: SubAccountId identifies the account; BillingAccountId only without it.
            x_SubAccountId=sub,
            x_BillingAccountId=billing if sub is None else None,
            x_UpstreamModel=model if category == "Usage" else None,
            x_TokenType=_FOCUS_TOKEN.get(str(meter).lower(), "other") if meter else None,
            x_SourceFile=str(path),
            x_SourceLine=line,
        )


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
    if path.suffix.lower() == ".csv":
        records = list(_focus_records(path))
        locator = None
    elif path.suffix.lower() == ".json":
        data = _pages_data(_load_json(path), path)
        records = list(enumerate(data, start=1))
        locator = "data[{}]"
    else:
        raise InvoiceError(f"{path}: unknown statement file type (expected .json or .csv)")
    for line, rec in records:
        loc = f"{path}: " + (f"data[{line - 1}]" if locator else f"line {line}")
        if not isinstance(rec, dict):
            raise InvoiceError(f"{loc}: a statement row must be an object")
        missing = [c for c in _STATEMENT_REQUIRED if c not in rec]
        if missing:
            raise InvoiceError(f"{loc}: not an openrouter_activity row: missing {missing}")
        day = _ts(rec.get("date"), loc, "date")
        if day is None:
            raise InvoiceError(f"{loc}: date is empty")
        day = dt.datetime(day.year, day.month, day.day)
        usage = _money(rec.get("usage"), loc, "usage")
        if usage is None:
            raise InvoiceError(f"{loc}: usage is empty")
        pname = _null(rec.get("provider_name"))
        model = _null(rec.get("model"))

        def _int(key: str, rec: dict = rec, loc: str = loc) -> int | None:
            v = _null(rec.get(key))
            try:
                return int(v) if v is not None else None
            except (TypeError, ValueError):
                raise InvoiceError(f"{loc}: {key} {v!r} is not an integer") from None

        yield _row(
            BilledCost=usage,
            BillingCurrency="USD",
            ChargePeriodStart=day,
            ChargePeriodEnd=day + dt.timedelta(days=1),
            ChargeCategory="Usage",
            ChargeDescription=f"{model} via {pname}",
            ProviderName=cfg.platform.name,
            ResourceId=_null(rec.get("endpoint_id")),
            SkuMeter="credits",
            x_Provider=PLATFORM_DIR,
            x_UpstreamModel=_null(rec.get("model_permaslug")) or model,
            x_Model=model,
            x_StatementProvider=names.get(str(pname).lower()) if pname else None,
            x_ByokUsageInference=_money(
                rec.get("byok_usage_inference"), loc, "byok_usage_inference"
            ),
            x_Requests=_int("requests"),
            x_ByokRequests=_int("byok_requests"),
            x_SourceFile=str(path),
            x_SourceLine=line,
            x_SourceLocator=f"data[{line - 1}]" if locator else None,
        )


# --------------------------------------------------------------------------- discovery


def read_invoices(cfg: LedgerConfig, invoices_dir: Path) -> list[dict[str, Any]]:
    """Every invoice and statement line under `invoices_dir` (all days; the caller filters)."""
    rows: list[dict[str, Any]] = []
    if not invoices_dir.is_dir():
        return rows
    providers = {p.id: p for p in cfg.providers}
    known = {e.upstream_model for m in cfg.models for e in m.endpoints}
    for folder in sorted(p for p in invoices_dir.iterdir() if p.is_dir()):
        if folder.name.startswith("."):
            continue
        if folder.name != PLATFORM_DIR and folder.name not in providers:
            raise InvoiceError(
                f"{folder}: folder names no provider of the config (known: "
                f"{', '.join(sorted(providers))}, and {PLATFORM_DIR} for the statement)"
            )
        for f in sorted(folder.rglob("*")):
            if not f.is_file() or f.name.startswith("."):
                continue
            suffix = f.suffix.lower()
            if folder.name == PLATFORM_DIR:
                rows.extend(parse_openrouter_activity(f, cfg))
                continue
            fmt = providers[folder.name].invoice_format
            if fmt == "focus" and suffix in (".csv", ".parquet"):
                rows.extend(parse_focus(f, folder.name, known))
            elif fmt == "openai_costs" and suffix == ".json":
                rows.extend(parse_openai_costs(f, folder.name))
            elif fmt == "anthropic_cost_report" and suffix == ".json":
                rows.extend(parse_anthropic_cost_report(f, folder.name))
            else:
                expected = ".csv or .parquet" if fmt == "focus" else ".json"
                raise InvoiceError(
                    f"{f}: unknown invoice file for provider {folder.name!r} "
                    f"(invoice_format {fmt} expects {expected})"
                )
    return rows


def invoice_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Rows as an Arrow table with the exact `staging.invoice_lines` types (Decimal kept)."""
    return pa.Table.from_pylist(rows, schema=INVOICE_SCHEMA)
