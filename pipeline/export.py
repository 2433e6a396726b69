"""`byok-ledger export`: one month of the ledger for other tools.

- `focus`: the allocated, reconciled ledger as FOCUS 1.2 rows (the FinOps Foundation's
  open cost-and-usage format), one file, CSV or Parquet by the suffix of `--out`. Each split
  billing row becomes one FOCUS row per billing layer (provider usage on a BYOK key, its share
  of the provider's correction lines, the platform's BYOK fee, platform credits spent on
  shared capacity), the invoices' credits, tax and adjustments follow as their own charge
  categories, and the allocation dimensions (API key, environment, app, workload, member) are
  in `Tags`. The SQL is `sql/export/focus_rows.sql`.
- `parquet`: every table of the `marts` schema as `<mart>.parquet` in the `--out` folder,
  restricted to the month.

Money stays DECIMAL(38,9) end to end (Parquet DECIMAL, plain decimal text in CSV), times
are UTC. An export never overwrites what it did not write: beside each output it keeps a
manifest with the SHA-256 of every file, and an existing path is replaced only when it still
matches that manifest. Re-running an export of the same ledger writes the same bytes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from pipeline.sql import load_sql
from routing_core.calendar import month_bounds
from routing_core.config import LedgerConfig

FORMATS = ("focus", "parquet")
FOCUS_SUFFIXES = (".csv", ".parquet")
MANIFEST_TOOL = "byok-ledger export"
DIR_MANIFEST = "manifest.json"
BATCH_ROWS = 65_536

# FOCUS 1.2 columns we fill, in file order: (name, FOCUS feature level). The x_ columns after
# them are our extensions (FOCUS reserves the x_ prefix for those).
FOCUS_COLUMNS: tuple[tuple[str, str], ...] = (
    ("BilledCost", "Mandatory"),
    ("BillingAccountId", "Mandatory"),
    ("BillingAccountName", "Mandatory"),
    ("BillingCurrency", "Mandatory"),
    ("BillingPeriodEnd", "Mandatory"),
    ("BillingPeriodStart", "Mandatory"),
    ("ChargeCategory", "Mandatory"),
    ("ChargeClass", "Mandatory"),
    ("ChargeDescription", "Mandatory"),
    ("ChargePeriodEnd", "Mandatory"),
    ("ChargePeriodStart", "Mandatory"),
    ("ContractedCost", "Mandatory"),
    ("EffectiveCost", "Mandatory"),
    ("InvoiceIssuerName", "Mandatory"),
    ("ListCost", "Mandatory"),
    ("PricingQuantity", "Mandatory"),
    ("PricingUnit", "Mandatory"),
    ("ProviderName", "Mandatory"),
    ("PublisherName", "Mandatory"),
    ("ServiceCategory", "Mandatory"),
    ("ServiceSubcategory", "Recommended"),
    ("ServiceName", "Mandatory"),
    ("ChargeFrequency", "Recommended"),
    ("ConsumedQuantity", "Conditional"),
    ("ConsumedUnit", "Conditional"),
    ("SubAccountId", "Conditional"),
    ("SubAccountName", "Conditional"),
    ("SkuId", "Conditional"),
    ("Tags", "Conditional"),
    ("PricingCategory", "Conditional"),
    ("SkuPriceId", "Conditional"),
)
# The other FOCUS 1.2 Cost and Usage columns, present (so the file has the whole 1.2 header a
# FinOps tool expects) and null: they describe commitments, capacity reservations, regions,
# resources, virtual currencies and invoice ids, none of which an LLM API bill has here.
FOCUS_NULL_COLUMNS: tuple[tuple[str, str], ...] = (
    ("AvailabilityZone", "VARCHAR"),
    ("BillingAccountType", "VARCHAR"),
    ("CapacityReservationId", "VARCHAR"),
    ("CapacityReservationStatus", "VARCHAR"),
    ("CommitmentDiscountCategory", "VARCHAR"),
    ("CommitmentDiscountId", "VARCHAR"),
    ("CommitmentDiscountName", "VARCHAR"),
    ("CommitmentDiscountQuantity", "DECIMAL(38, 9)"),
    ("CommitmentDiscountStatus", "VARCHAR"),
    ("CommitmentDiscountType", "VARCHAR"),
    ("CommitmentDiscountUnit", "VARCHAR"),
    ("ContractedUnitPrice", "DECIMAL(38, 9)"),
    ("InvoiceId", "VARCHAR"),
    ("ListUnitPrice", "DECIMAL(38, 9)"),
    ("PricingCurrency", "VARCHAR"),
    ("PricingCurrencyContractedUnitPrice", "DECIMAL(38, 9)"),
    ("PricingCurrencyEffectiveCost", "DECIMAL(38, 9)"),
    ("PricingCurrencyListUnitPrice", "DECIMAL(38, 9)"),
    ("RegionId", "VARCHAR"),
    ("RegionName", "VARCHAR"),
    ("ResourceId", "VARCHAR"),
    ("ResourceName", "VARCHAR"),
    ("ResourceType", "VARCHAR"),
    ("SkuMeter", "VARCHAR"),
    ("SkuPriceDetails", "VARCHAR"),
    ("SubAccountType", "VARCHAR"),
)
FOCUS_EXTENSIONS: tuple[str, ...] = (
    "x_Day",
    "x_BillingLayer",
    "x_LedgerStatus",
    "x_Attribution",
    "x_Credential",
    "x_ByokKeyId",
    "x_Provider",
    "x_Account",
    "x_Model",
    "x_UpstreamModel",
    "x_ApiKeyId",
    "x_Environment",
    "x_App",
    "x_Workload",
    "x_MemberId",
    "x_Requests",
    "x_EstimatedCost",
    "x_SourceFile",
    "x_SourceLine",
)
FOCUS_MONEY = ("BilledCost", "ContractedCost", "EffectiveCost", "ListCost", "x_EstimatedCost")
FOCUS_QUANTITIES = ("PricingQuantity", "ConsumedQuantity")
FOCUS_TIMES = ("BillingPeriodEnd", "BillingPeriodStart", "ChargePeriodEnd", "ChargePeriodStart")
CHARGE_CATEGORIES = ("Usage", "Purchase", "Tax", "Credit", "Adjustment")

# How the marts are cut to one month: by their day column, else by the period they cover.
_DATE_COLUMNS = ("day", "period")


class ExportError(Exception):
    """A refused export: the message says which path or month and what to do."""


@dataclass
class ExportResult:
    """What an export wrote: each file with its row count."""

    format: str
    month: str
    out: Path
    files: dict[str, int] = field(default_factory=dict)
    billed_cost_usd: Decimal | None = None

    def summary(self) -> str:
        rows = sum(self.files.values())
        text = f"exported {self.month} as {self.format} to {self.out}: {len(self.files)} file(s), {rows} row(s)"
        if self.billed_cost_usd is not None:
            text += f", BilledCost total {self.billed_cost_usd} USD"
        return text


def export_month(config: LedgerConfig, month: str, fmt: str, out: Path) -> ExportResult:
    """Export `month` (YYYY-MM) of the ledger in `config` as `fmt` (focus | parquet) to `out`."""
    try:
        start, end = month_bounds(month)
    except ValueError:
        raise ExportError(f"--month {month!r} is not YYYY-MM (e.g. 2026-11)") from None
    if fmt not in FORMATS:
        raise ExportError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    out = Path(out)
    conn = _connect(config.duckdb_path)
    try:
        if fmt == "focus":
            return _export_focus(conn, config, month, start, end, out)
        return _export_marts(conn, config.duckdb_path, month, start, end, out)
    except duckdb.Error as e:
        raise ExportError(
            f"reading the ledger {config.duckdb_path} failed ({e}); re-run `byok-ledger run "
            "--config FILE` so its marts are complete"
        ) from None
    finally:
        conn.close()


# --- reading the ledger ------------------------------------------------------------------


def _connect(path: Path) -> duckdb.DuckDBPyConnection:
    if not Path(path).is_file():
        raise ExportError(
            f"no ledger database at {path}: run `byok-ledger run --config FILE` first"
        )
    try:
        conn = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as e:
        raise ExportError(
            f"cannot open the ledger database {path} read-only ({e}); if a pipeline run is "
            "writing it, export when the run has finished"
        ) from None
    conn.execute(
        "SET TimeZone = 'UTC'"
    ).fetchall()  # FOCUS times are UTC whatever the machine's zone
    return conn


def _tables(conn: duckdb.DuckDBPyConnection) -> dict[str, dict[str, str]]:
    """marts table -> {column: type}."""
    rows = conn.execute(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'marts' ORDER BY table_name, ordinal_position"
    ).fetchall()
    out: dict[str, dict[str, str]] = {}
    for table, column, dtype in rows:
        out.setdefault(table, {})[column] = dtype
    return out


def _require(tables: dict[str, dict[str, str]], names: tuple[str, ...], db: Path) -> None:
    missing = [n for n in names if n not in tables]
    if missing:
        raise ExportError(
            f"{db} has no {', '.join('marts.' + m for m in missing)}: run `byok-ledger run "
            "--config FILE` for the month first"
        )


def _data_range(conn: duckdb.DuckDBPyConnection) -> str:
    first, last = conn.execute(
        "SELECT min(day), max(day) FROM marts.split_billing_daily"
    ).fetchall()[0]
    return f"{first}..{last}" if first else "nothing yet"


# --- FOCUS -------------------------------------------------------------------------------


def _export_focus(
    conn: duckdb.DuckDBPyConnection,
    config: LedgerConfig,
    month: str,
    start: dt.date,
    end: dt.date,
    out: Path,
) -> ExportResult:
    suffix = out.suffix.lower()
    if suffix not in FOCUS_SUFFIXES:
        raise ExportError(
            f"--out {out}: a FOCUS export is one file ending in .csv or .parquet "
            "(the suffix picks the format)"
        )
    tables = _tables(conn)
    _require(
        tables,
        ("split_billing_daily", "reconciliation_daily", "non_usage_charges"),
        config.duckdb_path,
    )
    names = {p.id: p.statement_name or p.id for p in config.providers}
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE _export_names (provider VARCHAR, name VARCHAR)"
    ).fetchall()
    if names:
        conn.executemany("INSERT INTO _export_names VALUES (?, ?)", sorted(names.items()))
    params = {
        "start": start,
        "end": end,
        "billing_start": dt.datetime.combine(start, dt.time(), dt.UTC),
        "billing_end": dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), dt.UTC),
        "platform": config.platform.name,
    }
    rows = load_sql("export/focus_rows").rstrip().rstrip(";")
    select = [f'"{c}"' for c, _ in FOCUS_COLUMNS]
    select += [f'CAST(NULL AS {t}) AS "{c}"' for c, t in FOCUS_NULL_COLUMNS]
    select += [f'"{c}"' for c in FOCUS_EXTENSIONS]
    query = f"SELECT {', '.join(select)} FROM ({rows})"
    n, total = conn.execute(f"SELECT count(*), sum(BilledCost) FROM ({query})", params).fetchall()[
        0
    ]
    if not n:
        raise ExportError(
            f"no ledger rows in {month} (the ledger covers {_data_range(conn)}); pick a month "
            "with data or run the pipeline for it"
        )
    if suffix == ".csv":
        # ISO 8601 UTC text for the FOCUS date/time columns, and decimals as plain decimal text
        # (DuckDB's 0.000000000; Arrow's CSV writer would print 0E-9).
        times = [f"strftime({c}, '%Y-%m-%dT%H:%M:%SZ') AS {c}" for c in FOCUS_TIMES]
        decimals = [
            f'CAST("{c}" AS VARCHAR) AS "{c}"'
            for c in (*FOCUS_MONEY, *FOCUS_QUANTITIES)
            + tuple(c for c, t in FOCUS_NULL_COLUMNS if t.startswith("DECIMAL"))
        ]
        query = f"SELECT * REPLACE ({', '.join(times + decimals)}) FROM ({query})"
    reader = conn.sql(query, params=params).to_arrow_reader(BATCH_ROWS)
    guard = _FileGuard(out, "focus", month)
    with guard.writing() as tmp:
        rows = _write(reader, tmp, suffix)
    result = ExportResult("focus", month, out, {out.name: rows}, billed_cost_usd=total)
    guard.commit(result)
    return result


# --- marts as Parquet --------------------------------------------------------------------


def _month_filter(table: str, columns: dict[str, str]) -> str:
    """SQL condition keeping the rows of the month ($start..$end) for one mart."""
    for col in _DATE_COLUMNS:
        if columns.get(col) == "DATE":
            return f'"{col}" BETWEEN $start AND $end'
    if columns.get("period_start") == "DATE" and columns.get("period_end") == "DATE":
        return "period_start <= $end AND period_end >= $start"
    if table == "alerts" and "period" in columns:
        # alert periods read "<kind>:<first day>" (monthly:2026-11-01, day:2026-11-20)
        return "try_cast(split_part(period, ':', 2) AS DATE) BETWEEN $start AND $end"
    return "true"


def _export_marts(
    conn: duckdb.DuckDBPyConnection,
    db: Path,
    month: str,
    start: dt.date,
    end: dt.date,
    out: Path,
) -> ExportResult:
    tables = _tables(conn)
    _require(tables, ("split_billing_daily",), db)
    n = conn.execute(
        "SELECT count(*) FROM marts.split_billing_daily WHERE day BETWEEN $start AND $end",
        {"start": start, "end": end},
    ).fetchall()[0][0]
    if not n:
        raise ExportError(
            f"no ledger rows in {month} (the ledger covers {_data_range(conn)}); pick a month "
            "with data or run the pipeline for it"
        )
    guard = _DirGuard(out, "parquet", month)
    result = ExportResult("parquet", month, out)
    params = {"start": start, "end": end}
    produced: dict[str, Path] = {}
    try:
        for table in sorted(tables):
            cols = tables[table]
            # JSON columns travel as text (Parquet has no JSON type every reader knows).
            select = ", ".join(
                f'CAST("{c}" AS VARCHAR) AS "{c}"' if t == "JSON" else f'"{c}"'
                for c, t in cols.items()
            )
            cond = _month_filter(table, cols)
            order = ", ".join(f'"{c}"' for c in cols if cols[c] != "JSON")
            q = f'SELECT {select} FROM marts."{table}" WHERE {cond} ORDER BY {order}'
            used = {k: v for k, v in params.items() if f"${k}" in q}
            reader = conn.sql(q, params=used or None).to_arrow_reader(BATCH_ROWS)
            tmp = guard.temp_path(f"{table}.parquet")
            result.files[f"{table}.parquet"] = _write(reader, tmp, ".parquet")
            produced[f"{table}.parquet"] = tmp
    except BaseException:
        for tmp in produced.values():
            tmp.unlink(missing_ok=True)
        raise
    guard.commit(result, produced)
    return result


# --- writing -----------------------------------------------------------------------------


def _write(reader: pa.RecordBatchReader, path: Path, suffix: str) -> int:
    rows = 0
    if suffix == ".parquet":
        with pq.ParquetWriter(str(path), reader.schema, compression="zstd") as w:
            for batch in reader:
                w.write_batch(batch)
                rows += batch.num_rows
        return rows
    with pa_csv.CSVWriter(str(path), reader.schema) as w:
        for batch in reader:
            w.write_batch(batch)
            rows += batch.num_rows
    return rows


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _read_manifest(path: Path) -> dict[str, Any] | None:
    """Our manifest at `path`, or None when there is none or it is not ours."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or data.get("tool") != MANIFEST_TOOL:
        return None
    if not isinstance(data.get("files"), dict):
        return None
    return data


def _manifest(result: ExportResult, hashes: dict[str, str]) -> str:
    body = {
        "tool": MANIFEST_TOOL,
        "format": result.format,
        "month": result.month,
        "billed_cost_usd": None if result.billed_cost_usd is None else str(result.billed_cost_usd),
        "files": {
            name: {"rows": result.files[name], "sha256": hashes[name]}
            for name in sorted(result.files)
        },
    }
    return json.dumps(body, indent=2, sort_keys=True) + "\n"


def _atomic_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _refuse(path: Path, why: str) -> ExportError:
    return ExportError(
        f"--out {path} {why}; an export never overwrites data it did not write: choose a new "
        "path, or move that one away yourself"
    )


class _FileGuard:
    """One output file plus its manifest `<file>.manifest.json`."""

    def __init__(self, out: Path, fmt: str, month: str) -> None:
        self.out = out
        self.manifest = out.with_name(out.name + ".manifest.json")
        if not out.parent.is_dir():
            raise ExportError(f"--out {out}: the folder {out.parent} does not exist")
        if out.is_dir():
            raise _refuse(out, "is a folder (a FOCUS export is one file)")
        if self.manifest.exists() and _read_manifest(self.manifest) is None:
            raise _refuse(self.manifest, "exists and is not an export manifest")
        if out.exists():
            ours = _read_manifest(self.manifest)
            entry = (ours or {}).get("files", {}).get(out.name)
            if not isinstance(entry, dict) or entry.get("sha256") != _sha256(out):
                raise _refuse(out, "already exists and is not an unchanged earlier export")
        self._tmp: Path | None = None

    def writing(self) -> _TempFile:
        return _TempFile(self)

    def commit(self, result: ExportResult) -> None:
        assert self._tmp is not None
        digest = _sha256(self._tmp)
        os.chmod(self._tmp, 0o644)
        os.replace(self._tmp, self.out)
        _atomic_text(self.manifest, _manifest(result, {self.out.name: digest}))


class _TempFile:
    def __init__(self, guard: _FileGuard) -> None:
        self.guard = guard

    def __enter__(self) -> Path:
        fd, tmp = tempfile.mkstemp(
            dir=self.guard.out.parent, prefix=f".{self.guard.out.name}.", suffix=".tmp"
        )
        os.close(fd)
        self.guard._tmp = Path(tmp)
        return self.guard._tmp

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is not None and self.guard._tmp is not None:
            self.guard._tmp.unlink(missing_ok=True)


class _DirGuard:
    """An output folder holding our files and `manifest.json`."""

    def __init__(self, out: Path, fmt: str, month: str) -> None:
        self.out = out
        self.manifest = out / DIR_MANIFEST
        self.previous: dict[str, Any] = {}
        if out.exists() and not out.is_dir():
            raise _refuse(out, "is a file (a Parquet export is a folder of files)")
        if out.is_dir():
            present = sorted(p.name for p in out.iterdir())
            if present:
                ours = _read_manifest(self.manifest)
                if ours is None:
                    raise _refuse(out, "is a folder with files that no export manifest lists")
                listed = ours["files"]
                for name in present:
                    if name == DIR_MANIFEST:
                        continue
                    entry = listed.get(name)
                    path = out / name
                    if (
                        not isinstance(entry, dict)
                        or not path.is_file()
                        or entry.get("sha256") != _sha256(path)
                    ):
                        raise _refuse(
                            out,
                            f"holds {name}, which is not an unchanged file of an earlier export",
                        )
                self.previous = listed
        elif not out.parent.is_dir():
            raise ExportError(f"--out {out}: the folder {out.parent} does not exist")
        out.mkdir(exist_ok=True)

    def temp_path(self, name: str) -> Path:
        fd, tmp = tempfile.mkstemp(dir=self.out, prefix=f".{name}.", suffix=".tmp")
        os.close(fd)
        return Path(tmp)

    def commit(self, result: ExportResult, produced: dict[str, Path]) -> None:
        hashes = {}
        for name, tmp in produced.items():
            hashes[name] = _sha256(tmp)
            os.chmod(tmp, 0o644)
            os.replace(tmp, self.out / name)
        for stale in set(self.previous) - set(produced):  # a mart that no longer exists
            (self.out / stale).unlink(missing_ok=True)
        _atomic_text(self.manifest, _manifest(result, hashes))


def iter_focus_columns() -> Iterator[str]:
    """Every column of a FOCUS export, in file order."""
    yield from (name for name, _ in FOCUS_COLUMNS)
    yield from (name for name, _ in FOCUS_NULL_COLUMNS)
    yield from FOCUS_EXTENSIONS
