"""Fast, fault-tolerant loading of newline-delimited JSON logs into a DuckDB TEMP table.

The fast path is one strict `read_json` over every file with explicit column types. A file that
fails it (bad JSON, a torn last line, a wrong type) or holds rows that fail the contract check
is re-read line by line in Python: good lines go on (through a cleaned copy, read by DuckDB with
the same types), bad ones are returned as rejects with file, line and error. So a malformed line
costs only its own file a slower pass and never stops the good lines.

Why not `ignore_errors=true`: DuckDB then yields an all-NULL row for a bad line, without a line
number, which cannot be quarantined with "file and line".
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

MAX_RAW = 2000


@dataclass(frozen=True)
class JsonlSpec:
    """How to read one kind of JSONL log."""

    source: str  # name in raw.rejected_records.source
    columns: dict[str, str]  # JSON key -> DuckDB type (explicit: no sniffing)
    invalid_sql: str  # SQL boolean over the read columns: true = the row breaks the contract
    check_line: Callable[[Any], str | None]  # Python twin of invalid_sql: error text or None
    typed_sql: str = ""  # typed columns computed once in the read (invalid_sql may use them)


@dataclass
class Reject:
    file: str
    line: int
    error: str
    raw_text: str
    torn: bool = False


@dataclass
class LoadResult:
    files: int = 0
    lines_read: int = 0
    rejects: list[Reject] = field(default_factory=list)


def _columns_sql(spec: JsonlSpec) -> str:
    inner = ", ".join(f"'{k}': '{v}'" for k, v in spec.columns.items())
    return "{" + inner + "}"


# The dt=YYYY-MM-DD folder of each row's file is its day (SPEC §6 file layout).
_DAY_OF_FILENAME = "CAST(regexp_extract(filename, 'dt=([0-9]{4}-[0-9]{2}-[0-9]{2})', 1) AS DATE)"


def _read_sql(spec: JsonlSpec, nfiles_param: str = "$files") -> str:
    return (
        f"SELECT * FROM read_json({nfiles_param}, format='newline_delimited', "
        f"columns={_columns_sql(spec)}, filename=true, hive_partitioning=false, "
        f"maximum_object_size=16777216)"
    )


def load_jsonl(
    conn: duckdb.DuckDBPyConnection,
    spec: JsonlSpec,
    files: Sequence[Path],
    target: str,
    day_of_file: Callable[[Path], str],
) -> LoadResult:
    """Create TEMP table `target` with the spec's columns plus `filename` and `day` (the folder
    day) from the good lines of `files`; return line counts and the rejects."""
    result = LoadResult(files=len(files))
    cols = ", ".join(f"{k} {v}" for k, v in spec.columns.items())
    conn.execute(f"CREATE OR REPLACE TEMP TABLE {target} ({cols}, filename VARCHAR, day DATE)")
    if not files:
        return result
    day_case = _DAY_OF_FILENAME
    names = [str(f) for f in files]

    slow: list[Path] = []
    try:
        conn.execute(
            f"INSERT INTO {target} SELECT *, {day_case} FROM ({_read_sql(spec)})", {"files": names}
        )
    except duckdb.Error:
        # Find the files the strict read chokes on; the others load on the fast path.
        good: list[str] = []
        for f in files:
            try:
                conn.execute(f"SELECT count(*) FROM ({_read_sql(spec)})", {"files": [str(f)]})
                good.append(str(f))
            except duckdb.Error:
                slow.append(f)
        if good:
            conn.execute(
                f"INSERT INTO {target} SELECT *, {day_case} FROM ({_read_sql(spec)})",
                {"files": good},
            )
    # Files with rows that parse but break the contract also take the line-by-line pass.
    bad_files = conn.execute(
        f"SELECT DISTINCT filename FROM {target} WHERE {spec.invalid_sql}"
    ).fetchall()
    if bad_files:
        bad = [r[0] for r in bad_files]
        conn.execute(f"DELETE FROM {target} WHERE filename IN (SELECT unnest($b))", {"b": bad})
        slow.extend(Path(b) for b in bad)

    for f in slow:
        _slow_path(conn, spec, f, target, day_of_file(f), result)

    result.lines_read = conn.execute(f"SELECT count(*) FROM {target}").fetchone()[0] + len(
        result.rejects
    )
    return result


def create_source_macro(conn: duckdb.DuckDBPyConnection, spec: JsonlSpec, name: str) -> None:
    """TEMP table macro `name(files)`: the spec's typed columns read strictly from `files`,
    plus `filename` and `_invalid` (true when the row breaks the contract). The column types
    and the check are constants of the spec, never user data."""
    typed = f", {spec.typed_sql}" if spec.typed_sql else ""
    conn.execute(
        f"CREATE OR REPLACE TEMP MACRO {name}(files) AS TABLE "
        f"SELECT *, coalesce(({spec.invalid_sql}), true) AS _invalid "
        f"FROM (SELECT *{typed} "
        f"FROM read_json(files, format='newline_delimited', columns={_columns_sql(spec)}, "
        "filename=true, hive_partitioning=false, maximum_object_size=16777216))"
    )


def count_lines(path: Path) -> int:
    """Non-empty-terminated line count of a file, streamed (no full read into memory)."""
    n, last = 0, b"\n"
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 24):
            n += chunk.count(b"\n")
            last = chunk[-1:]
    return n + (1 if last != b"\n" else 0)


def clean_file(spec: JsonlSpec, path: Path) -> tuple[Path, list[Reject], int]:
    """Validate `path` line by line: a temp file with the good lines (caller deletes it), the
    rejects with their line numbers, and the number of non-blank lines read."""
    data = path.read_bytes()
    lines = data.split(b"\n")
    ends_with_newline = data.endswith(b"\n")
    if ends_with_newline:
        lines = lines[:-1]
    rejects: list[Reject] = []
    read = 0
    fd, clean = tempfile.mkstemp(suffix=".jsonl", prefix="byok-clean-")
    with os.fdopen(fd, "wb") as out:
        for i, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            read += 1
            last_unterminated = i == len(lines) and not ends_with_newline
            text = raw.decode("utf-8", errors="replace")
            try:
                obj = json.loads(raw)
            except ValueError as e:
                prefix = "torn last line (unterminated write): " if last_unterminated else ""
                rejects.append(
                    Reject(
                        str(path),
                        i,
                        f"{prefix}invalid JSON: {e}",
                        text[:MAX_RAW],
                        torn=last_unterminated,
                    )
                )
                continue
            err = spec.check_line(obj)
            if err:
                rejects.append(Reject(str(path), i, err, text[:MAX_RAW]))
                continue
            out.write(raw.rstrip(b"\r") + b"\n")
    return Path(clean), rejects, read


def _slow_path(
    conn: duckdb.DuckDBPyConnection,
    spec: JsonlSpec,
    path: Path,
    target: str,
    day: str,
    result: LoadResult,
) -> None:
    """Line-by-line pass over one file: rejects recorded, good lines loaded via a clean copy."""
    clean, rejects, _ = clean_file(spec, path)
    result.rejects.extend(rejects)
    try:
        conn.execute(
            f"INSERT INTO {target} SELECT * EXCLUDE (filename), $orig, CAST($day AS DATE) "
            f"FROM ({_read_sql(spec)})",
            {"files": [str(clean)], "orig": str(path), "day": day},
        )
    except duckdb.Error as e:  # a type our Python check let through: say where
        raise ValueError(f"{path}: could not load after line-by-line validation: {e}") from e
    finally:
        clean.unlink(missing_ok=True)
