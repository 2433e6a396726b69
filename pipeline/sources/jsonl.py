"""Newline-delimited JSON logs read by DuckDB with ONE validation, generated from a field table.

Every line of every file of a load becomes exactly one row of ONE streaming `read_json`, whose
fields are read as raw `JSON` values (so a wrong type is visible instead of being coerced;
`native` fields excepted) and numbered by `WITH ORDINALITY`. The acceptance rule (`ok_sql`)
and the typed values are generated from the spec's `Field` table; only refused rows go
through the CASE that names their reason code (`_checks`). There is no second, Python-side
rule set that could disagree: the only work done in Python is
- per file: a scan for lines over `MAX_LINE` (an mmap, about one page per MiB) and the sha256
  fingerprint (in threads, while DuckDB reads), and
- for a file that has refused rows only: `locate`, which maps row ordinals back to physical
  line numbers, takes the raw text (cut at `MAX_RAW`) and names lines DuckDB could not parse at
  all (`not_json`, `not_utf8`, `line_too_long`, `torn_line`, `not_object`).

A file holding a line over `MAX_LINE` is read through a copy with that line replaced by `0` (a
valid non-object, so line numbers stay aligned): DuckDB never holds a 50 MB line.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import mmap
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import duckdb

MAX_RAW = 64 * 1024  # raw text kept per quarantined line
MAX_LINE = 1 << 20  # a line longer than 1 MiB is quarantined (line_too_long)
MONEY_MAX = Decimal(10) ** 9  # per-record bound on any USD amount: |usd| <= 10^9
TOKENS_MAX = 10**12  # per-record bound on any token count
MS_MAX = 10**9  # durations in milliseconds (about 11.6 days)
_BLANK = b" \t\n\r\x0b\x0c"  # a line of only these is not a record (DuckDB skips it too)

# RFC 3339 with a mandatory offset; the naive form is recognised to name it.
TS_RE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})"
NAIVE_TS_RE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}([Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?)?"


@dataclass(frozen=True)
class Field:
    """One field of a JSON record and its rule.

    kind: str | enum | int | num | bool | money | ts | obj | list_str | list_obj | native.
    `native` is read with DuckDB's own typed conversion (`native_type`), for informational
    fields where the speed matters more than refusing a number written as text.
    `lo`/`hi` bound int, num and money values; `choices` are an enum's values; `children` the
    fields of an obj (or of each element of a list_obj)."""

    name: str
    kind: str
    required: bool = False
    lo: int | Decimal | None = None
    hi: int | Decimal | None = None
    choices: tuple[str, ...] = ()
    children: tuple[Field, ...] = ()
    native_type: str = ""


@dataclass(frozen=True)
class JsonlSpec:
    """How to read one kind of JSONL log: the source name and the field table."""

    source: str  # name in raw.rejected_records.source / raw.load_manifest.source
    fields: tuple[Field, ...]
    extra_checks: tuple[tuple[str, str], ...] = ()  # (SQL condition over f_<name>, reason)


@dataclass
class Reject:
    """One quarantined line: where it is, its reason code, a readable error and its text."""

    file: str
    line: int | None
    reason: str
    error: str
    raw_text: str
    torn: bool = False


@dataclass
class FileScan:
    """What the Python side learned about one input file (no parsing)."""

    path: Path
    bytes: int = 0
    fingerprint: str = ""
    long_lines: list[int] = field(default_factory=list)  # 1-based physical lines > MAX_LINE


# --------------------------------------------------------------------------- SQL generation


def _q(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _num_checks(v: str, path: str, lo: object, hi: object, integer: bool) -> list[tuple[str, str]]:
    s = f"CAST({v} AS VARCHAR)"
    d = f"TRY_CAST({s} AS DOUBLE)"
    is_float_lit = f"(contains({s}, '.') OR contains({s}, 'e') OR contains({s}, 'E'))"
    out = [
        (
            f"{v} IS NOT NULL AND left({s}, 1) NOT IN ('-','0','1','2','3','4','5','6','7','8','9')",
            f"wrong_type:{path}",
        ),
        (f"{v} IS NOT NULL AND coalesce(NOT isfinite({d}), true)", f"non_finite:{path}"),
    ]
    if integer:
        out.append((f"{is_float_lit} AND abs({d}) <= {hi}", f"wrong_type:{path}"))
        out.append((f"{is_float_lit}", f"out_of_range:{path}"))
        val = f"TRY_CAST({s} AS HUGEINT)"
        out.append(
            (f"coalesce({val} < {lo} OR {val} > {hi}, {v} IS NOT NULL)", f"out_of_range:{path}")
        )
    else:
        out.append((f"{d} < {lo} OR {d} > {hi}", f"out_of_range:{path}"))
    return out


def _checks(f: Field, v: str, path: str) -> list[tuple[str, str]]:
    """(condition, reason) pairs for field `f` whose JSON text is the SQL expression `v`
    (SQL NULL when absent or JSON null). Evaluated in order; NULL conditions count as false.
    Leaves are JSON text checked by their first character (no re-parsing); objects and lists
    of objects are read natively by DuckDB as STRUCTs of JSON leaves."""
    s = f"CAST({v} AS VARCHAR)"
    out: list[tuple[str, str]] = []
    if f.required:
        out.append((f"{v} IS NULL", f"missing:{path}"))
    k = f.kind
    if k in ("str", "enum", "money", "ts"):
        out.append((f"left({s}, 1) <> '\"'", f"wrong_type:{path}"))
        txt = _text(v)
        if k == "str" and f.required:
            out.append((f"{txt} = ''", f"missing:{path}"))
        if k == "enum":
            out.append(
                (f"{txt} NOT IN ({', '.join(_q(c) for c in f.choices)})", f"bad_value:{path}")
            )
        if k == "money":
            dec = f"TRY_CAST({txt} AS DECIMAL(38, 9))"
            out.append(
                (
                    f"{dec} IS NULL AND lower(trim({txt})) IN ('nan', '-nan', '+nan', 'snan', "
                    "'inf', '+inf', '-inf', 'infinity', '+infinity', '-infinity')",
                    f"non_finite:{path}",
                )
            )
            out.append(
                (f"{dec} IS NULL AND TRY_CAST({txt} AS DOUBLE) IS NOT NULL", f"out_of_range:{path}")
            )
            out.append((f"{dec} IS NULL", f"bad_value:{path}"))
            out.append((f"{dec} < {f.lo} OR {dec} > {f.hi}", f"out_of_range:{path}"))
        if k == "ts":
            out.append(
                (
                    f"NOT regexp_full_match({txt}, '{TS_RE}') AND "
                    f"regexp_full_match({txt}, '{NAIVE_TS_RE}')",
                    "naive_timestamp",
                )
            )
            out.append(
                (
                    f"NOT regexp_full_match({txt}, '{TS_RE}') OR "
                    f"TRY_CAST({txt} AS TIMESTAMPTZ) IS NULL",
                    f"bad_timestamp:{path}",
                )
            )
    elif k == "int":
        out += _num_checks(v, path, f.lo, f.hi, integer=True)
    elif k == "num":
        out += _num_checks(v, path, f.lo, f.hi, integer=False)
    elif k == "bool":
        out.append((f"{s} NOT IN ('true', 'false')", f"wrong_type:{path}"))
    elif k == "obj":
        for c in f.children:
            out += _checks(c, f"{v}.{c.name}", f"{path}.{c.name}")
    elif k == "list_str":
        out.append(
            (
                f"NOT list_bool_and(list_transform({v}, "
                "lambda x: left(CAST(x AS VARCHAR), 1) = '\"'))",
                f"wrong_type:{path}[]",
            )
        )
    elif k == "list_obj":
        for c in f.children:
            for cond, reason in _checks(c, f"e.{c.name}", f"{path}[].{c.name}"):
                out.append(
                    (
                        f"list_bool_or(list_transform({v}, lambda e: coalesce({cond}, false)))",
                        reason,
                    )
                )
    elif k == "native":
        pass
    else:  # pragma: no cover - a programming error in a field table
        raise ValueError(f"unknown field kind {k!r} for {path}")
    return out


def _text(v: str) -> str:
    """The value of a JSON string: its text between the quotes, unescaped only if needed."""
    s = f"CAST({v} AS VARCHAR)"
    return (
        f"(CASE WHEN contains({s}, '\\') THEN {v}->>'$' ELSE substr({s}, 2, strlen({s}) - 2) END)"
    )


def read_type(f: Field) -> str:
    """The column type given to read_json: JSON leaves inside native STRUCT/LIST containers."""
    if f.kind == "native":
        return f.native_type
    if f.kind == "obj":
        return "STRUCT(" + ", ".join(f"{c.name} {read_type(c)}" for c in f.children) + ")"
    if f.kind == "list_obj":
        return "STRUCT(" + ", ".join(f"{c.name} {read_type(c)}" for c in f.children) + ")[]"
    if f.kind == "list_str":
        return "JSON[]"
    return "JSON"


def sql_type(f: Field) -> str:
    """DuckDB type of a field's loaded value."""
    scalar = {
        "str": "VARCHAR",
        "enum": "VARCHAR",
        "int": "BIGINT",
        "num": "DOUBLE",
        "bool": "BOOLEAN",
        "money": "DECIMAL(38, 9)",
        "ts": "TIMESTAMP",
        "list_str": "VARCHAR[]",
    }
    if f.kind in scalar:
        return scalar[f.kind]
    if f.kind == "native":
        return f.native_type
    inner = "STRUCT(" + ", ".join(f"{c.name} {sql_type(c)}" for c in f.children) + ")"
    return inner + ("[]" if f.kind == "list_obj" else "")


def value_sql(f: Field, v: str) -> str:
    """SQL for the typed value of a field (TRY_ casts: computed for every row, kept only for
    rows whose reason is NULL)."""
    s = f"CAST({v} AS VARCHAR)"
    k = f.kind
    if k in ("str", "enum"):
        return _text(v)
    if k == "int":
        return f"TRY_CAST({s} AS BIGINT)"
    if k == "num":
        return f"TRY_CAST({s} AS DOUBLE)"
    if k == "bool":
        return f"({s} = 'true')"
    if k == "money":
        return f"TRY_CAST({_text(v)} AS DECIMAL(38, 9))"
    if k == "ts":
        return f"(TRY_CAST({_text(v)} AS TIMESTAMPTZ) AT TIME ZONE 'UTC')"
    if k == "list_str":
        return f"list_transform({v}, lambda x: {_text('x')})"
    if k == "native":
        return v
    if k == "obj":
        inner = ", ".join(f"{c.name} := {value_sql(c, f'{v}.{c.name}')}" for c in f.children)
        return f"CASE WHEN {v} IS NOT NULL THEN struct_pack({inner}) END"
    if k == "list_obj":
        inner = ", ".join(f"{c.name} := {value_sql(c, f'e.{c.name}')}" for c in f.children)
        return f"list_transform({v}, lambda e: struct_pack({inner}))"
    raise ValueError(f"unknown field kind {k!r}")  # pragma: no cover


def ok_sql(f: Field, v: str, vv: str | None) -> str:
    """SQL true when field `f` (JSON text `v`, typed value `vv` when computed) is acceptable.
    This is the acceptance rule; `_checks` only names the reason of a row it refuses."""
    s = f"CAST({v} AS VARCHAR)"
    k = f.kind
    absent = "false" if f.required else f"{v} IS NULL"
    if k == "str":
        good = f"left({s}, 1) = '\"'" + (f" AND {s} <> '\"\"'" if f.required else "")
    elif k == "enum":
        good = f"{s} IN ({', '.join(_q(json.dumps(c)) for c in f.choices)})"
    elif k == "int":
        val = vv or f"TRY_CAST({s} AS BIGINT)"
        good = (
            f"coalesce({val} BETWEEN {f.lo} AND {f.hi}, false) AND NOT contains({s}, '.') "
            f"AND NOT contains({s}, 'e') AND NOT contains({s}, 'E')"
        )
    elif k == "num":
        good = f"coalesce(TRY_CAST({s} AS DOUBLE) BETWEEN {f.lo} AND {f.hi}, false)"
    elif k == "bool":
        good = f"{s} IN ('true', 'false')"
    elif k == "money":
        val = vv or f"TRY_CAST({_text(v)} AS DECIMAL(38, 9))"
        good = f"left({s}, 1) = '\"' AND coalesce({val} BETWEEN {f.lo} AND {f.hi}, false)"
    elif k == "ts":
        val = vv or f"TRY_CAST({_text(v)} AS TIMESTAMPTZ)"
        good = f"regexp_full_match({s}, '\"{TS_RE}\"') AND {val} IS NOT NULL"
    elif k == "list_str":
        good = (
            f"coalesce(list_bool_and(list_transform({v}, "
            "lambda x: left(CAST(x AS VARCHAR), 1) = '\"')), true)"
        )
    elif k == "obj":
        return (
            "("
            + " AND ".join(
                ok_sql(c, f"{v}.{c.name}", f"{vv}.{c.name}" if vv else None) for c in f.children
            )
            + ")"
        )
    elif k == "native":
        return "true"
    elif k == "list_obj":
        inner = " AND ".join(ok_sql(c, f"e.{c.name}", None) for c in f.children)
        good = f"coalesce(list_bool_and(list_transform({v}, lambda e: {inner})), true)"
    else:  # pragma: no cover
        raise ValueError(f"unknown field kind {k!r}")
    return f"({absent} OR ({v} IS NOT NULL AND {good}))"


def reason_sql(spec: JsonlSpec) -> str:
    """Each row's reason code, NULL when loadable. Acceptance is the AND of every field's
    `ok_sql` (and the spec's extra checks); only refused rows go through the CASE that names
    the first broken rule."""
    pairs: list[tuple[str, str]] = []
    for f in spec.fields:
        pairs += _checks(f, f"f_{f.name}", f.name)
    pairs += list(spec.extra_checks)
    whens = "\n".join(f"  WHEN {c} THEN {_q(r)}" for c, r in pairs)
    return f"CASE WHEN _ok THEN NULL ELSE CASE\n{whens}\n  ELSE 'invalid' END END"


def _ok_all(spec: JsonlSpec) -> str:
    parts = [ok_sql(f, f"f_{f.name}", f"v_{f.name}") for f in spec.fields]
    parts += [f"NOT coalesce({c}, false)" for c, _ in spec.extra_checks]
    return " AND ".join(parts)


def read_sql(spec: JsonlSpec) -> str:
    """SELECT over `read_json($files)` with one row per non-blank line: `line_no` (ordinal over
    all the files, in list order), `reason`, the `v_<name>` typed values, and `filename` /
    `file_day` from TEMP `_load_files` (read path -> original path, dt= folder day)."""
    cols = "{" + ", ".join(f"{_q(f.name)}: {_q(read_type(f))}" for f in spec.fields) + "}"
    renamed = ", ".join(f'"{f.name}" AS f_{f.name}' for f in spec.fields)
    values = ", ".join(f"{value_sql(f, 'f_' + f.name)} AS v_{f.name}" for f in spec.fields)
    vnames = ", ".join(f"v_{f.name}" for f in spec.fields)
    return (
        f"SELECT line_no, {reason_sql(spec)} AS reason, {vnames}, orig AS filename, file_day\n"
        f"FROM (SELECT *, {_ok_all(spec)} AS _ok FROM (\n"
        f"SELECT *, {values}\n"
        f"FROM (SELECT r.ordinality AS line_no, lf.orig, lf.file_day, {renamed} "
        f"FROM read_json($files, format='newline_delimited', columns={cols}, "
        "ignore_errors=true, filename=true, hive_partitioning=false, "
        "maximum_object_size=16777216) WITH ORDINALITY AS r "
        "JOIN _load_files lf ON lf.read_path = r.filename)))"
    )


# --------------------------------------------------------------------------- files


def scan_file(path: Path, fingerprint: bool = True) -> FileScan:
    """Bytes, the lines over MAX_LINE and (unless `fingerprint` is false) the sha256, over an
    mmap (no copy into Python). The long-line scan jumps a MAX_LINE window at a time, so it
    costs about one page per MiB; the sha256 reads every byte (see `fingerprint_of`)."""
    out = FileScan(path)
    with path.open("rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        out.bytes = size
        if size == 0:
            out.fingerprint = hashlib.sha256(b"").hexdigest()
            return out
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as m:
            if fingerprint:
                out.fingerprint = hashlib.sha256(m).hexdigest()
            # A window of MAX_LINE + 1 bytes without a newline is a long line.
            start = 0
            while start + MAX_LINE < size:
                nl = m.rfind(b"\n", start, start + MAX_LINE + 1)
                if nl >= 0:
                    start = nl + 1
                    continue
                out.long_lines.append(_line_number(m, start))
                nl = m.find(b"\n", start)
                if nl < 0:
                    break
                start = nl + 1
    return out


def fingerprint_of(path: Path) -> str:
    """sha256 of a file's bytes (hashlib releases the GIL: runs beside DuckDB's read)."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def fingerprint_and_lines(path: Path) -> tuple[str, int]:
    """sha256 of a file's bytes and its number of physical lines (an unterminated last line
    counts), in one pass: hashlib releases the GIL, the count is a memchr-speed scan, so it
    runs beside DuckDB's read (which releases it too)."""
    h = hashlib.sha256()
    lines, last = 0, b"\n"
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 22):
            h.update(chunk)
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return h.hexdigest(), lines + (last != b"\n")


def _line_number(m: mmap.mmap, offset: int) -> int:
    n, pos = 1, 0
    while True:
        nl = m.find(b"\n", pos, offset)
        if nl < 0:
            return n
        n, pos = n + 1, nl + 1


def without_long_lines(path: Path) -> Path:
    """A temp copy of `path` with every line over MAX_LINE replaced by `0` (caller deletes)."""
    fd, name = tempfile.mkstemp(suffix=".jsonl", prefix="byok-long-")
    with os.fdopen(fd, "wb") as out:
        for _, length, prefix, _end in iter_lines(path, MAX_LINE + 1):
            out.write(b"0\n" if length > MAX_LINE else prefix + b"\n")
    return Path(name)


def iter_lines(path: Path, keep: int) -> Iterator[tuple[int, int, bytes, bool]]:
    """(1-based line, byte length, first `keep` bytes, unterminated) of every physical line,
    streamed in chunks: a 50 MB line is never held in memory whole."""
    with path.open("rb") as fh:
        lineno, length, prefix = 1, 0, bytearray()
        while chunk := fh.read(1 << 22):
            pos = 0
            while True:
                nl = chunk.find(b"\n", pos)
                part = chunk[pos:] if nl < 0 else chunk[pos:nl]
                if len(prefix) < keep:
                    prefix += part[: keep - len(prefix)]
                length += len(part)
                if nl < 0:
                    break
                yield lineno, length, bytes(prefix), False
                lineno, length, prefix = lineno + 1, 0, bytearray()
                pos = nl + 1
        if length:
            yield lineno, length, bytes(prefix), True


REASON_TEXT = {
    "not_json": "not valid JSON",
    "not_utf8": "not valid UTF-8",
    "not_object": "a JSON value that is not an object",
    "line_too_long": f"line longer than {MAX_LINE} bytes (1 MiB); not read",
    "torn_line": "torn last line (an unterminated write, e.g. a writer crashed mid-line)",
    "naive_timestamp": "ts has no UTC offset (write RFC 3339 with Z or +HH:MM)",
    "conflicting_duplicate": "same id as a kept record but different content",
    "misfiled_far": "ts is more than one day away from its dt= folder",
    "symlink_outside_paths": "a symlink that leads outside the configured logs path",
    "unreadable_file": "the file could not be read",
    "unreadable_record": "a value could not be converted to its column type (e.g. a nested "
    "number written as text that is not a number)",
}


def explain(reason: str) -> str:
    """A readable sentence for a reason code (`kind:field`)."""
    if reason in REASON_TEXT:
        return REASON_TEXT[reason]
    kind, _, path = reason.partition(":")
    what = {
        "missing": "missing or empty (required)",
        "wrong_type": "wrong JSON type",
        "out_of_range": "out of range",
        "non_finite": "not a finite number",
        "bad_value": "not an allowed value",
        "bad_timestamp": "not an RFC 3339 timestamp",
    }.get(kind, kind)
    return f"{path}: {what}"


def _classify_unparsed(prefix: bytes, length: int, unterminated: bool) -> str:
    """Why a line DuckDB read as an all-NULL row is bad (only called for rejected rows)."""
    if length > MAX_LINE:
        return "line_too_long"
    try:
        text = prefix.decode("utf-8")
    except UnicodeDecodeError:
        return "not_utf8"
    try:
        obj = json.loads(text)
    except ValueError:
        return "torn_line" if unterminated else "not_json"
    if not isinstance(obj, dict):
        return "not_object"
    if obj.get("schema_version") is not None:  # DuckDB read the object as all-NULL
        return "unreadable_record"
    return ""


def locate(path: Path, bad: dict[int, str], source_name: str | None = None) -> list[Reject]:
    """Rejects for the rows `bad` {ordinal: reason} of `path`: physical line, raw text (cut at
    MAX_RAW), and for rows DuckDB could not parse, the precise reason."""
    out: list[Reject] = []
    ordinal = 0
    name = source_name or str(path)
    for lineno, length, prefix, unterminated in iter_lines(path, max(MAX_RAW, MAX_LINE + 1)):
        if length <= MAX_LINE and not prefix.strip(_BLANK):
            continue
        ordinal += 1
        reason = bad.get(ordinal)
        if reason is None:
            continue
        raw = prefix[:MAX_RAW].decode("utf-8", errors="replace")
        if reason.startswith("missing:schema_version") or reason == "unparsed":
            reason = _classify_unparsed(prefix, length, unterminated) or reason
        torn = reason == "torn_line"
        out.append(Reject(name, lineno, reason, explain(reason), raw, torn))
    return out


def missing_rows(
    conn: duckdb.DuckDBPyConnection,
    spec: JsonlSpec,
    path: Path,
    file_day: dt.date,
    loaded: set[int],
) -> tuple[int, list[Reject]] | None:
    """(records, rejects) of a file whose rows `loaded` (record numbers) are already known:
    one pass over its lines in Python numbers the records (blank lines skipped, as DuckDB
    does), the records not loaded are copied to a small temp file (after a blank first line,
    so none of them sits at the start of a file) and only those are validated again by the
    same SQL for their reasons. None if that read does not refuse each of them exactly once
    (the caller then reads the whole file the full way)."""
    keep = max(MAX_RAW, MAX_LINE + 1)
    found: list[tuple[int, int, int, bytes, bool]] = []  # ordinal, line, length, text, torn
    ordinal = 0
    for lineno, length, prefix, unterminated in iter_lines(path, keep):
        if length <= MAX_LINE and not prefix.strip(_BLANK):
            continue
        ordinal += 1
        if ordinal not in loaded:
            found.append((ordinal, lineno, length, prefix, unterminated))
    if not found:
        return ordinal, []
    fd, name = tempfile.mkstemp(suffix=".jsonl", prefix="byok-missing-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(b"\n")
            for *_, prefix, _ in found:
                out.write(prefix + b"\n")
        conn.execute("INSERT INTO _load_files VALUES (?, ?, ?)", [name, str(path), file_day])
        rows = conn.execute(
            f"SELECT line_no, reason FROM ({read_sql(spec)}) ORDER BY line_no", {"files": [name]}
        ).fetchall()
        conn.execute("DELETE FROM _load_files WHERE read_path = ?", [name])
    finally:
        Path(name).unlink(missing_ok=True)
    if [r[0] for r in rows] != list(range(1, len(found) + 1)) or any(r[1] is None for r in rows):
        return None
    out_rejects = []
    for (_, lineno, length, prefix, unterminated), (_, reason) in zip(found, rows, strict=True):
        raw = prefix[:MAX_RAW].decode("utf-8", errors="replace")
        if reason.startswith("missing:schema_version") or reason == "unparsed":
            reason = _classify_unparsed(prefix, length, unterminated) or reason
        torn = reason == "torn_line"
        out_rejects.append(Reject(str(path), lineno, reason, explain(reason), raw, torn))
    return ordinal, out_rejects


def day_of(value: str) -> dt.date | None:
    """The date of a dt=YYYY-MM-DD folder name, or None."""
    try:
        return dt.date.fromisoformat(value.removeprefix("dt="))
    except ValueError:
        return None


def paths_inside(root: Path, files: Sequence[Path]) -> tuple[list[Path], list[Path]]:
    """(files whose real path is under `root`'s real path, files that lead outside it)."""
    real_root = root.resolve()
    inside, outside = [], []
    for f in files:
        try:
            f.resolve().relative_to(real_root)
        except (ValueError, OSError, RuntimeError):
            outside.append(f)
            continue
        inside.append(f)
    return inside, outside


def load_files(
    conn: duckdb.DuckDBPyConnection,
    spec: JsonlSpec,
    files: list[tuple[FileScan, dt.date]],
    target: str,
) -> None:
    """Append every row of `files` to TEMP table `target` in ONE streaming statement, and
    build TEMP `_offsets` (filename, first line_no) so that a row's record number in its file
    is `line_no - first_no + 1`. Files with lines over MAX_LINE are read through a copy with
    those lines replaced by `0`. If the reader did not number a file's rows contiguously (it
    always has), the files are read again one statement each."""
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE _load_files (read_path VARCHAR, orig VARCHAR, file_day DATE)"
    )
    conn.execute("CREATE OR REPLACE TEMP TABLE _offsets (filename VARCHAR, first_no BIGINT)")
    if not files:
        return
    copies: list[Path] = []
    rows = []
    for scan, day in files:
        read_from = scan.path
        if scan.long_lines:
            read_from = without_long_lines(scan.path)
            copies.append(read_from)
        rows.append((str(read_from), str(scan.path), day))
    conn.executemany("INSERT INTO _load_files VALUES (?, ?, ?)", rows)
    sql = f"INSERT INTO {target} {read_sql(spec)}"
    try:
        conn.execute(sql, {"files": [r[0] for r in rows]})
        spans = conn.execute(
            f"SELECT filename, min(line_no), max(line_no), count(*) FROM {target} GROUP BY 1"
        ).fetchall()
        if all(hi - lo + 1 == n for _, lo, hi, n in spans):
            conn.executemany(
                "INSERT INTO _offsets VALUES (?, ?)", [(f, lo) for f, lo, _, _ in spans]
            )
            return
        conn.execute(f"DELETE FROM {target}")  # pragma: no cover - defensive
        for read_path, orig, _day in rows:  # pragma: no cover
            before = conn.execute(f"SELECT coalesce(max(line_no), 0) FROM {target}").fetchone()[0]
            conn.execute(sql, {"files": [read_path]})
            conn.execute(
                f"UPDATE {target} SET line_no = line_no + $b WHERE filename = $o",
                {"b": before, "o": orig},
            )
            conn.execute("INSERT INTO _offsets VALUES (?, ?)", [orig, before + 1])
    finally:
        for c in copies:
            c.unlink(missing_ok=True)


def rejects_of(conn: duckdb.DuckDBPyConnection, target: str) -> list[Reject]:
    """The located rejects of every file in `target` (only files with bad rows are re-read)."""
    bad: dict[str, dict[int, str]] = {}
    for filename, rec, reason in conn.execute(
        f"SELECT t.filename, t.line_no - o.first_no + 1, t.reason FROM {target} t "
        "JOIN _offsets o USING (filename) WHERE t.reason IS NOT NULL"
    ).fetchall():
        bad.setdefault(filename, {})[int(rec)] = reason
    out: list[Reject] = []
    for filename in sorted(bad):
        out.extend(locate(Path(filename), bad[filename]))
    return out


def create_target(conn: duckdb.DuckDBPyConnection, spec: JsonlSpec, target: str) -> None:
    """TEMP table for `load_files`: the read's columns plus filename and file_day."""
    cols = ", ".join(f"v_{f.name} {sql_type(f)}" for f in spec.fields)
    conn.execute(
        f"CREATE OR REPLACE TEMP TABLE {target} (line_no BIGINT, reason VARCHAR, {cols}, "
        "filename VARCHAR, file_day DATE)"
    )
