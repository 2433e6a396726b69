"""Organisation-wide FOCUS 1.0–1.3 exports (AWS Data Exports, Azure Cost Management, Google
Cloud's FOCUS view; CSV, gzipped CSV or Parquet) read by DuckDB in one streaming pass: every
row checked in SQL, only the lines of the provider's LLM services kept for the ledger, every
other line counted (lines and BilledCost) as out of scope.

A file is all or nothing: the first problem of any row (short or long row, cut-off file,
amount that is not a finite decimal within range, unknown currency or charge category,
unreadable timestamp) raises `InvoiceError` naming file, line, column and a reason code, and
nothing of the file is kept.

Scope (per provider, `providers[].focus_scope` in ledger.yaml overrides it): a line is in scope
when its `ServiceName` matches one of the LLM service names (case-insensitive, `*` matches any
text), or its `ServiceCategory` is one of the service categories and its `ServiceSubcategory`
(FOCUS 1.1+) is empty or one of the subcategories. Tax, credits, purchases and corrections of
an in-scope service are in scope and keep their own `ChargeCategory`; a line of no service (an
organisation-wide tax line) is out of scope.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from pipeline.sql import load_sql, run_sql

from .invoices import INVOICE_COLUMNS, FileCounts, InvoiceError

# Default scope. Service names as the clouds write them in their FOCUS exports: AWS uses the
# product name (Bedrock's third-party models bill as "<model> (Amazon Bedrock Edition)");
# Google Cloud the billing service; Azure books Azure OpenAI under the Cognitive Services
# account's service, "Azure AI Services".
DEFAULT_SERVICE_NAMES: tuple[str, ...] = (
    "Amazon Bedrock",
    "AmazonBedrock",
    "* (Amazon Bedrock Edition)",
    "Vertex AI",
    "Gemini API",
    "Generative Language API",
    "Azure OpenAI",
    "Azure OpenAI Service",
    "Azure AI Services",
    "Azure AI Foundry",
    "Azure AI Foundry Models",
    "Foundry Models",
)
DEFAULT_SERVICE_CATEGORIES: tuple[str, ...] = ("AI and Machine Learning",)
# FOCUS 1.1+ splits 'AI and Machine Learning' into subcategories; only generative AI is LLM
# spend (not SageMaker-style 'Machine Learning', 'Bots' or 'Natural Language Processing').
DEFAULT_SERVICE_SUBCATEGORIES: tuple[str, ...] = ("Generative AI",)

# Canonical column -> the names FOCUS versions give it, the newest first (1.3 renamed
# ProviderName to ServiceProviderName; both may be present: the first non-null wins).
COLUMN_SOURCES: dict[str, tuple[str, ...]] = {
    "BilledCost": ("BilledCost",),
    "EffectiveCost": ("EffectiveCost",),
    "ListCost": ("ListCost",),
    "BillingCurrency": ("BillingCurrency",),
    "ChargePeriodStart": ("ChargePeriodStart",),
    "ChargePeriodEnd": ("ChargePeriodEnd",),
    "BillingPeriodStart": ("BillingPeriodStart",),
    "BillingPeriodEnd": ("BillingPeriodEnd",),
    "ChargeCategory": ("ChargeCategory",),
    "ChargeClass": ("ChargeClass",),
    "ChargeDescription": ("ChargeDescription",),
    "ProviderName": ("ServiceProviderName", "ProviderName"),
    "BillingAccountId": ("BillingAccountId",),
    "SubAccountId": ("SubAccountId",),
    "ResourceId": ("ResourceId",),
    "ServiceName": ("ServiceName",),
    "ServiceCategory": ("ServiceCategory",),
    "ServiceSubcategory": ("ServiceSubcategory",),
    "SkuMeter": ("SkuMeter",),
    "ConsumedQuantity": ("ConsumedQuantity",),
    "ConsumedUnit": ("ConsumedUnit",),
    "Tags": ("Tags",),
    "CommitmentDiscountId": ("CommitmentDiscountId",),
    "CommitmentDiscountStatus": ("CommitmentDiscountStatus",),
    "x_Model": ("x_Model",),
}
REQUIRED = ("BilledCost", "BillingCurrency", "ChargePeriodStart", "ChargeCategory")
SCOPE_COLUMNS = ("ServiceName", "ServiceCategory")
MAX_COLUMNS = 2_000
MAX_HEADER_BYTES = 1 << 20
# Day parts one file's multi-day lines may spread into (a month-long line is 31 of them):
# beyond it the file is hostile or broken, not a bill.
MAX_SPREAD_PARTS = 5_000_000

# Row problem found in SQL -> (InvoiceError reason code, what is wrong with the value).
_PROBLEMS = {
    "missing_value": ("missing_field", "is empty; every FOCUS line needs it"),
    "not_a_number": ("bad_amount", "is not a decimal amount"),
    "not_finite": ("amount_not_finite", "is not a finite amount"),
    "out_of_range": (
        "amount_out_of_range",
        "is out of range (an invoice line is below $10^15): the export is corrupt; fetch it again",
    ),
    "unknown_currency": (
        "unknown_currency",
        "is not USD; the ledger keeps USD only and never sums currencies: export this invoice "
        "in USD (or convert it with an explicit rate first)",
    ),
    "not_a_timestamp": ("bad_timestamp", "is not a timestamp (e.g. 2026-03-02T00:00:00Z)"),
    "timestamp_out_of_range": ("bad_timestamp", "is not a date between 2000 and 2100"),
    "end_before_start": ("bad_timestamp", "is before ChargePeriodStart"),
    "period_too_long": ("bad_timestamp", "is more than 400 days after ChargePeriodStart"),
    "unknown_charge_category": (
        "bad_category",
        "is not a FOCUS ChargeCategory (Usage, Purchase, Tax, Credit, Adjustment)",
    ),
    "unknown_charge_class": (
        "bad_charge_class",
        "is not a FOCUS ChargeClass (empty or Correction)",
    ),
    "tags_not_json_object": ("bad_tags", "is not a JSON object"),
}


def _error(
    path: Path, reason: str, message: str, line: int | None = None, raw: str | None = None
) -> InvoiceError:
    where = f"{path}: line {line}" if line is not None else f"{path}"
    return InvoiceError(f"{where}: {message}", reason=reason, line=line, raw_text=raw)


@dataclass(frozen=True, slots=True)
class FocusScope:
    """Which lines of an export belong to one provider's LLM services (see the module doc).
    `None` for a criterion means it is not used (subcategories: no restriction)."""

    service_names: tuple[str, ...] | None = DEFAULT_SERVICE_NAMES
    service_categories: tuple[str, ...] | None = DEFAULT_SERVICE_CATEGORIES
    service_subcategories: tuple[str, ...] | None = DEFAULT_SERVICE_SUBCATEGORIES

    @classmethod
    def of(cls, provider_cfg: Any) -> FocusScope:
        """The provider's `focus_scope` from ledger.yaml, else the default."""
        cfg = getattr(provider_cfg, "focus_scope", None)
        if cfg is None:
            return cls()

        def tup(v: Sequence[str] | None) -> tuple[str, ...] | None:
            return tuple(v) if v is not None else None

        return cls(
            tup(cfg.service_names), tup(cfg.service_categories), tup(cfg.service_subcategories)
        )

    def params(self) -> dict[str, Any]:
        """The scope as the bound parameters of sql/staging/focus_rows.sql: service names as one
        anchored regular expression over the lower-cased name (`*` = any text), categories and
        subcategories lower-cased."""
        names = [".*".join(re.escape(part) for part in n.lower().split("*"))
                 for n in self.service_names or ()]  # fmt: skip
        return {
            "name_regex": "|".join(f"(?:{n})" for n in names) if names else r"[^\s\S]",
            "categories": [c.lower() for c in self.service_categories or ()],
            "subcategories": [c.lower() for c in self.service_subcategories or ()],
            "any_subcategory": self.service_subcategories is None,
        }


@dataclass(frozen=True)
class FocusResult(FileCounts):
    """What one FOCUS file gave (the invoice loader's `FileCounts`: data rows read, lines out
    of scope and their BilledCost) plus the rows kept for the ledger and their days."""

    loaded: int = 0
    first_day: dt.date | None = None
    last_day: dt.date | None = None
    columns: tuple[str, ...] = ()  # the FOCUS columns the ledger found and read


def duckdb_type(t: pa.DataType) -> str:
    """The DuckDB type of one INVOICE_COLUMNS Arrow type."""
    if pa.types.is_decimal(t):
        return f"DECIMAL({t.precision}, {t.scale})"
    if pa.types.is_timestamp(t):
        return "TIMESTAMP"
    if pa.types.is_date(t):
        return "DATE"
    if pa.types.is_int64(t):
        return "BIGINT"
    if pa.types.is_string(t):
        return "VARCHAR"
    raise TypeError(f"no DuckDB type for {t}")


def create_target(conn: duckdb.DuckDBPyConnection, target: str) -> None:
    """(Re)create TEMP `target` with exactly the columns of staging.invoice_lines."""
    cols = ", ".join(f'"{n}" {duckdb_type(t)}' for n, t in INVOICE_COLUMNS)
    conn.execute(f"CREATE OR REPLACE TEMP TABLE {_ident(target)} ({cols})")


def _ident(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"not a plain table name: {name!r}")
    return name


# --------------------------------------------------------------------------- header


def _is_gzip(path: Path) -> bool:
    return path.name.lower().endswith(".gz")


def _is_parquet(path: Path) -> bool:
    return path.suffix.lower() == ".parquet"


def _csv_header(path: Path) -> list[str]:
    opener: Any = gzip.open if _is_gzip(path) else open
    try:
        with opener(path, "rb") as fh:
            first = fh.readline(MAX_HEADER_BYTES + 1)
    except (OSError, EOFError) as e:
        raise _error(path, "unreadable", f"cannot read the file: {e}") from None
    if not first.strip():
        raise _error(path, "empty_file", "empty CSV (no header line)", 1)
    if len(first) > MAX_HEADER_BYTES:
        raise _error(path, "bad_header", "the header line is over 1 MiB", 1)
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise _error(path, "not_utf8", f"the header is not UTF-8 text ({e.reason})", 1) from None
    try:
        return next(csv.reader([text.rstrip("\r\n")]))
    except (csv.Error, StopIteration) as e:
        raise _error(path, "bad_header", f"unreadable CSV header ({e})", 1, text) from None


def _parquet_columns(conn: duckdb.DuckDBPyConnection, path: Path) -> list[tuple[str, str]]:
    try:
        rows = conn.execute(
            "SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet($p))",
            {"p": str(path)},
        ).fetchall()
    except duckdb.Error as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise _error(path, "unreadable_parquet", f"not a readable Parquet file ({first})") from None
    return [(str(n), str(t)) for n, t in rows]


_ALIASES = {a.lower() for aliases in COLUMN_SOURCES.values() for a in aliases}


def resolve_columns(path: Path, header: Sequence[str]) -> dict[str, list[int]]:
    """Canonical column -> positions in `header` (aliases in COLUMN_SOURCES order). Names match
    case-insensitively; a missing needed column or a repeated one is an `InvoiceError`."""
    if len(header) > MAX_COLUMNS:
        raise _error(path, "bad_header", f"{len(header)} columns (at most {MAX_COLUMNS})", 1)
    pos: dict[str, int] = {}
    for i, name in enumerate(header):
        key = name.strip().lower()
        if key in pos and key in _ALIASES:
            raise _error(
                path,
                "bad_header",
                f"column {name.strip()}: the header names it twice, so which one holds the "
                "value is ambiguous; fix the export",
                1,
            )
        pos.setdefault(key, i)
    found = {
        canon: [pos[a.lower()] for a in aliases if a.lower() in pos]
        for canon, aliases in COLUMN_SOURCES.items()
    }
    shown = ", ".join(header[:12]) + (", …" if len(header) > 12 else "")
    missing = [c for c in REQUIRED if not found[c]]
    if missing:
        raise _error(
            path,
            "missing_column",
            f"column {missing[0]}: not a FOCUS export the ledger can read: no "
            f"{', '.join(missing)} column (found: {shown})",
            1,
        )
    if not any(found[c] for c in SCOPE_COLUMNS):
        raise _error(
            path,
            "missing_column",
            "column ServiceName: neither ServiceName nor ServiceCategory is present, so the LLM "
            "lines of this organisation-wide export cannot be told from the rest of the bill "
            f"(found: {shown})",
            1,
        )
    return {c: p for c, p in found.items() if p}


# --------------------------------------------------------------------------- reading


def _src_sql(
    conn: duckdb.DuckDBPyConnection, path: Path, *, parallel: bool = True
) -> tuple[str, dict[str, list[int]]]:
    """The `src` CTE for `path`: `line`, `_short_row` / `_long_row` (the row has fewer / more
    values than the header) and every canonical column as VARCHAR (or NULL)."""
    if _is_parquet(path):
        cols = _parquet_columns(conn, path)
        found = resolve_columns(path, [n for n, _ in cols])

        def ref(i: int) -> str:
            name, typ = cols[i]
            quoted = '"' + name.replace('"', '""') + '"'
            if typ.upper().startswith(("MAP", "STRUCT")):
                return f"to_json({quoted})::VARCHAR"
            return f"{quoted}::VARCHAR"

        source = "read_parquet($path, file_row_number = true)"
        exprs = ["file_row_number + 1 AS line", "false AS _short_row", "false AS _long_row"]
    else:
        header = _csv_header(path)
        found = resolve_columns(path, header)
        n = len(header)

        def ref(i: int) -> str:
            return f"_c{i}"

        # Our own positional names: no header text ever reaches the SQL. One column more than
        # the header, rows padded with NULL and no text read as NULL (nullstr is a byte no
        # export holds): a value in the extra column is a long row, a NULL last column a short
        # one. (DuckDB alone drops a row's empty trailing values silently.)
        columns = ", ".join(f"'_c{i}': 'VARCHAR'" for i in range(n + 1))
        source = (
            f"read_csv($path, columns = {{{columns}}}, header = true, auto_detect = false, "
            "delim = ',', quote = '\"', escape = '\"', strict_mode = true, "
            "null_padding = true, nullstr = '\x01', compression = 'auto'"
            f"{'' if parallel else ', parallel = false'}) WITH ORDINALITY"
        )
        exprs = [
            "ordinality + 1 AS line",  # the header is line 1
            f"_c{n - 1} IS NULL AS _short_row",
            f"_c{n} IS NOT NULL AS _long_row",
        ]
    for canon in COLUMN_SOURCES:
        refs = [ref(i) for i in found.get(canon, [])]
        if not refs:
            exprs.append(f"NULL::VARCHAR AS {canon}")
        elif len(refs) == 1:
            exprs.append(f"{refs[0]} AS {canon}")
        else:
            exprs.append(f"coalesce({', '.join(f'_focus_null({r})' for r in refs)}) AS {canon}")
    return f"WITH src AS (SELECT {', '.join(exprs)} FROM {source})", found


_CSV_LINE = re.compile(r"CSV Error on Line: (\d+)")
_CSV_ORIGINAL = re.compile(r"Original Line: ?(.*)")
_CSV_COUNT = re.compile(r"Expected Number of Columns: (\d+) Found: (\d+)")


def _csv_problem(path: Path, err: duckdb.Error) -> InvoiceError:
    """DuckDB's CSV reader error as an InvoiceError with the line and its text."""
    text = str(err)
    m = _CSV_LINE.search(text)
    line = int(m.group(1)) if m else None
    o = _CSV_ORIGINAL.search(text)
    raw = o.group(1) if o else None
    low = text.lower()
    count = _CSV_COUNT.search(text)
    if count:
        # The reader declares one column more than the header (see _src_sql).
        want, got = int(count.group(1)) - 1, int(count.group(2))
        return _error(
            path,
            "short_row" if got < want else "long_row",
            f"{got} values where the header has {want} columns (a row cut short, or a stray "
            "delimiter); nothing of this file is loaded: fetch the export again",
            line,
            raw,
        )
    if "unterminated quote" in low:
        return _error(
            path,
            "truncated",
            "a quoted value never ends (the file is cut off mid-row); nothing of this file is "
            "loaded: fetch the export again",
            line,
            raw,
        )
    if "unicode" in low or "utf-8" in low:
        return _error(path, "not_utf8", "not UTF-8 text", line, raw)
    if "maximum line size" in low:
        return _error(
            path,
            "line_too_long",
            "a row is over 2 MB, which no billing line is (a broken or hostile export)",
            line,
            raw,
        )
    # DuckDB's first lines are the position and the row itself; the reason follows.
    detail = [
        ln.strip()
        for ln in text.splitlines()
        if ln.strip() and not ln.startswith(("Invalid Input Error", "Original Line"))
    ]
    why = detail[0][:300] if detail else type(err).__name__
    return _error(path, "invalid_csv", f"unreadable CSV: {why}", line, raw)


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as fh:
        fh.seek(0, 2)
        if fh.tell() == 0:
            return True
        fh.seek(-1, 2)
        return fh.read(1) == b"\n"


def _raw_line(path: Path, line: int) -> str | None:
    """Text of physical line `line` of a CSV (for the refusal record), cut at the raw limit."""
    if _is_parquet(path):
        return None
    opener: Any = gzip.open if _is_gzip(path) else open
    try:
        with opener(path, "rb") as fh:
            for i, data in enumerate(fh, start=1):
                if i == line:
                    return data[: 64 * 1024].decode("utf-8", "replace").rstrip("\r\n")
    except (OSError, EOFError):
        return None
    return None


def is_contract_commitment_dataset(header: Sequence[str]) -> bool:
    """FOCUS 1.3's Contract Commitment dataset (the terms of each commitment, no charges), which
    exports write beside the cost-and-usage file: ContractCommitment* columns, no BilledCost."""
    names = {h.strip().lower() for h in header}
    return "contractcommitmentid" in names and "billedcost" not in names


def _count_contract_commitments(conn: duckdb.DuckDBPyConnection, path: Path) -> FocusResult:
    """Its rows, all out of scope at $0: the ledger takes commitments from the cost-and-usage
    file (Purchase lines and commitment-covered usage), never from their terms."""
    source = (
        "read_parquet($path)"
        if _is_parquet(path)
        else "read_csv($path, all_varchar = true, header = true, strict_mode = true, "
        "null_padding = false)"
    )
    try:
        (n,) = conn.execute(f"SELECT count(*) FROM {source}", {"path": str(path)}).fetchone()
    except duckdb.InvalidInputException as e:
        if _is_parquet(path):
            raise _error(path, "unreadable_parquet", "unreadable Parquet data") from None
        raise _csv_problem(path, e) from None
    return FocusResult(lines=int(n), out_of_scope=int(n), out_of_scope_usd=Decimal(0))


def _bind(sql: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The `$name` parameters the statement uses (outside `--` comments), from `params`."""
    code = "\n".join(line.split("--", 1)[0] for line in sql.splitlines())
    used = set(re.findall(r"\$([A-Za-z_][A-Za-z0-9_]*)", code))
    return {k: params[k] for k in used}


def parse_focus_file(
    conn: duckdb.DuckDBPyConnection,
    path: Path,
    provider_id: str,
    provider_cfg: Any,
    known_models: set[str] | Sequence[str],
    target: str,
    *,
    source_file: str | None = None,
) -> FocusResult:
    """Read one FOCUS export into TEMP `target` (created fresh with INVOICE_COLUMNS): its
    in-scope lines only. Raises `InvoiceError` (file, line, column, reason code, raw text) for
    the first problem of any row; `target` is then left empty."""
    path = Path(path)
    create_target(conn, target)
    run_sql(conn, "staging/focus_macros")
    params = {"path": str(path), **FocusScope.of(provider_cfg).params()}
    header = (
        [n for n, _ in _parquet_columns(conn, path)] if _is_parquet(path) else _csv_header(path)
    )
    if is_contract_commitment_dataset(header):
        return _count_contract_commitments(conn, path)
    src, found = _src_sql(conn, path)
    sql = f"CREATE OR REPLACE TEMP TABLE _focus_rows AS {src}\n{load_sql('staging/focus_rows')}"
    try:
        try:
            try:
                conn.execute(sql, _bind(sql, params)).fetchall()
            except duckdb.Error as e:
                # DuckDB's parallel reader cannot pad rows of a file with quoted line breaks;
                # such a file (rare) is read on one thread.
                if "quoted new lines" not in str(e):
                    raise
                src, found = _src_sql(conn, path, parallel=False)
                sql = f"CREATE OR REPLACE TEMP TABLE _focus_rows AS {src}\n"
                sql += load_sql("staging/focus_rows")
                conn.execute(sql, _bind(sql, params)).fetchall()
        except duckdb.InvalidInputException as e:
            if _is_parquet(path):
                first = str(e).splitlines()[0]
                raise _error(
                    path, "unreadable_parquet", f"unreadable Parquet data ({first})"
                ) from None
            raise _csv_problem(path, e) from None
        except duckdb.IOException as e:
            raise _error(path, "unreadable", str(e).splitlines()[0]) from None
        lines, loaded, oos_usd, first_day, last_day, last_line = conn.execute(
            """SELECT count(*), count(*) FILTER (WHERE in_scope),
                      coalesce(sum(billed) FILTER (WHERE NOT in_scope), 0),
                      min(day) FILTER (WHERE in_scope), max(day) FILTER (WHERE in_scope),
                      max(line)
               FROM _focus_rows"""
        ).fetchone()
        if not _is_parquet(path) and not _is_gzip(path) and not _ends_with_newline(path):
            last = int(last_line or 1)
            raise _error(
                path,
                "truncated",
                "the file does not end with a line break, so its last row may be cut off "
                "mid-value; nothing of this file is loaded: fetch the export again",
                last,
                _raw_line(path, last),
            )
        bad = conn.execute(
            "SELECT line, problem FROM _focus_rows WHERE problem IS NOT NULL ORDER BY line LIMIT 1"
        ).fetchone()
        if bad is not None:
            line, (code, column, value) = bad
            if code in ("short_row", "long_row"):
                fewer = "fewer" if code == "short_row" else "more"
                raise _error(
                    path,
                    code,
                    f"{fewer} values than the header's {len(header)} columns (a row cut "
                    "short, or a stray or missing delimiter); nothing of this file is loaded: "
                    "fetch the export again",
                    int(line),
                    _raw_line(path, int(line)),
                )
            reason, explain = _PROBLEMS[code]
            if code == "out_of_range" and column.endswith(("Start", "End")):
                reason, explain = _PROBLEMS["timestamp_out_of_range"]
            shown = f" {value[:80]!r}" if value is not None else ""
            raise _error(
                path,
                reason,
                f"column {column}: {column}{shown} {explain}",
                int(line),
                _raw_line(path, int(line)),
            )
        (parts,) = conn.execute(
            """SELECT coalesce(sum(date_diff('day', start_ts::DATE,
                                             (end_ts - INTERVAL 1 MICROSECOND)::DATE) + 1), 0)
               FROM _focus_rows
               WHERE in_scope AND end_ts > start_ts::DATE + INTERVAL 1 DAY"""
        ).fetchone()
        if parts > MAX_SPREAD_PARTS:
            raise _error(
                path,
                "too_many_days",
                f"its multi-day lines would spread into {parts:,} daily lines (at most "
                f"{MAX_SPREAD_PARTS:,}): not a bill; fetch the export again",
            )
        ins = load_sql("staging/focus_invoice_lines")
        insert = f"INSERT INTO {_ident(target)} BY NAME {ins}"
        params = {
            "provider": provider_id,
            "file": source_file if source_file is not None else str(path),
            "known": sorted(known_models),
        }
        conn.execute(insert, _bind(insert, params)).fetchall()
    except InvoiceError:
        conn.execute(f"DELETE FROM {_ident(target)}")
        raise
    finally:
        conn.execute("DROP TABLE IF EXISTS _focus_rows")
    return FocusResult(
        lines=int(lines),
        out_of_scope=int(lines) - int(loaded),
        out_of_scope_usd=Decimal(oos_usd),
        loaded=int(loaded),
        first_day=first_day,
        last_day=last_day,
        columns=tuple(c for c in COLUMN_SOURCES if c in found),
    )
