"""A day is streamed straight into staging (no TEMP copy), a file with refused, blank or torn
lines read a second time for those lines only; a duplicate id (in the load, or already loaded
from another folder) rolls the stream back and takes the full path. Either way the tables are
exactly what the full path alone builds."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import duckdb
import pytest
from pipeline_testkit import Ledger, outcome, request

from pipeline import loads
from pipeline.sources import accounting
from routing_core.config import load_config

DAY = "2026-10-26"
RANGE = loads.DayRange(dt.date(2026, 10, 26), dt.date(2026, 10, 26))


def _good(i: int, day: str = DAY, rid: str | None = None) -> bytes:
    rec = request(rid or f"r-{i}", f"{day}T1{i % 10}:00:00.000Z", provider_usd=f"{i}.5")
    return json.dumps(rec).encode()


CASES: dict[str, dict[str, bytes]] = {
    "clean": {"a.jsonl": b"\n".join(_good(i) for i in range(4)) + b"\n", "b.jsonl": b""},
    "bad_line": {"a.jsonl": _good(1) + b"\n{not json\n" + _good(2) + b"\n"},
    "bad_last_line": {"a.jsonl": _good(1) + b"\n" + _good(2) + b'\n{"schema_version": 2}\n'},
    "blank_line": {"a.jsonl": _good(1) + b"\n   \n" + _good(2) + b"\n"},
    "torn_tail": {"a.jsonl": _good(1) + b'\n{"schema_version": 1, "req'},
    "unterminated_good": {"a.jsonl": _good(1) + b"\n" + _good(2)},
    "bad_first_line": {"a.jsonl": b'{"schema_version": 1}\n' + _good(1) + b"\n"},
    "bom_at_start": {"a.jsonl": b"\xef\xbb\xbf" + _good(1) + b"\n" + _good(2) + b"\n"},
    "bom_mid_file": {"a.jsonl": _good(1) + b"\n\xef\xbb\xbf" + _good(2) + b"\n"},
    "misfiled_far": {"a.jsonl": _good(1) + b"\n" + _good(2, day="2026-10-20") + b"\n"},
    "not_utf8_and_array": {"a.jsonl": b"\xff\xfe\n[1, 2]\n" + _good(3) + b"\n\t\n"},
    "bad_in_both_files": {
        "a.jsonl": _good(1) + b"\n{}\n",
        "b.jsonl": b"null\n" + _good(2) + b"\n" + _good(3) + b'\n{"schema_version": 1, "re',
    },
    "dup_in_file": {"a.jsonl": _good(1) + b"\n" + _good(1) + b"\n"},
    "dup_across_files": {"a.jsonl": _good(1) + b"\n", "b.jsonl": _good(1) + b"\n"},
    "conflict": {"a.jsonl": _good(1) + b"\n", "b.jsonl": _good(2, rid="r-1") + b"\n"},
}


def _fill(ledger: Ledger, files: dict[str, bytes]) -> None:
    folder = ledger.logs / "requests" / f"dt={DAY}"
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)


def _load(ledger: Ledger, run_id: str = "run-1", **config: Any) -> dict[str, int]:
    conn = duckdb.connect(str(ledger.duckdb), config=config)
    try:
        return loads.load_requests(conn, load_config(ledger.config), RANGE, run_id=run_id)
    finally:
        conn.close()


def _spy_stream(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """What each `stream_clean_load` call returned (True: the stream path loaded the day)."""
    calls: list[bool] = []
    real = accounting.stream_clean_load

    def spy(*a: Any, **k: Any) -> bool:
        calls.append(ok := real(*a, **k))
        return ok

    monkeypatch.setattr(accounting, "stream_clean_load", spy)
    return calls


def _tables(ledger: Ledger) -> dict[str, list[tuple]]:
    out = {k: v for k, v in ledger.snapshot().items() if k.startswith(("staging.", "raw."))}
    out["manifest"] = ledger.query(
        "SELECT run_id, source, file, bytes, fingerprint, lines, loaded, duplicates, quarantined, "
        "status, reason, first_day, last_day FROM raw.load_manifest ORDER BY file"
    )
    return out


def _relocated(tables: dict[str, list[tuple]], old: Path, new: Path) -> dict[str, Any]:
    return json.loads(json.dumps(tables, default=str).replace(str(old), str(new)))


@pytest.mark.parametrize("case", sorted(CASES))
def test_streamed_or_not_the_tables_equal_the_full_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
):
    (tmp_path / "s").mkdir()
    (tmp_path / "f").mkdir()
    streamed, full = Ledger(tmp_path / "s"), Ledger(tmp_path / "f")
    for led in (streamed, full):
        _fill(led, CASES[case])
    calls = _spy_stream(monkeypatch)
    s_stats = _load(streamed)
    # which path ran: the stream unless an id is seen twice
    assert calls == [case not in ("dup_in_file", "dup_across_files", "conflict")]
    monkeypatch.setattr(accounting, "stream_clean_load", lambda *a, **k: False)
    f_stats = _load(full)
    assert s_stats == f_stats
    assert _relocated(_tables(streamed), streamed.root, full.root) == _relocated(
        _tables(full), full.root, full.root
    )


def test_an_id_loaded_from_another_folder_takes_the_full_path(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
):
    prev = "2026-10-25"
    folder = ledger.logs / "requests" / f"dt={prev}"
    folder.mkdir(parents=True)
    (folder / "a.jsonl").write_bytes(_good(1, day=prev) + b"\n")
    conn = duckdb.connect(str(ledger.duckdb))
    try:
        loads.load_requests(
            conn, load_config(ledger.config), loads.DayRange(dt.date(2026, 10, 25), RANGE.end)
        )
    finally:
        conn.close()
    _fill(ledger, {"a.jsonl": _good(1, day=prev) + b"\n" + _good(2) + b"\n"})
    stats = _load(ledger, "run-2")
    # r-1 (reported 10-25, filed under 10-26) loses to its copy in its own day's folder.
    assert stats["duplicates_dropped"] == 1 and stats["loaded"] == 1
    assert ledger.query("SELECT request_id, file_day FROM staging.requests ORDER BY 1") == [
        ("r-1", dt.date(2026, 10, 25)),
        ("r-2", dt.date(2026, 10, 26)),
    ]


def test_outcomes_stream_when_clean(ledger: Ledger, monkeypatch: pytest.MonkeyPatch):
    ledger.write_outcomes(
        DAY,
        [outcome(f"e-{i}", f"{DAY}T08:0{i}:00.000Z", i % 2 == 0, request_id="r") for i in range(3)],
    )

    def boom(*_a: Any, **_k: Any) -> None:
        raise AssertionError("the full path ran for a clean day")

    monkeypatch.setattr(accounting, "read_jsonl_files", boom)
    conn = duckdb.connect(str(ledger.duckdb))
    try:
        stats = loads.load_outcomes(conn, load_config(ledger.config), RANGE)
    finally:
        conn.close()
    assert stats["loaded"] == stats["lines_read"] == 3
    assert ledger.query(
        "SELECT event_id, accepted, source_record FROM staging.outcomes ORDER BY 1"
    ) == [("e-0", True, 1), ("e-1", False, 2), ("e-2", True, 3)]


def test_a_file_that_cannot_be_hashed_mid_stream_rolls_back_to_the_full_path(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
):
    _fill(ledger, CASES["clean"])

    def unreadable(path: Path) -> tuple[str, int]:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(accounting, "fingerprint_and_lines", unreadable)
    stats = _load(ledger)
    assert stats["loaded"] == stats["rows"] == 4
    assert ledger.query("SELECT count(*), count(DISTINCT request_id) FROM staging.requests") == [
        (4, 4)
    ]


@pytest.mark.parametrize("with_bad_lines", [False, True])
def test_a_file_several_read_buffers_long_keeps_every_line_number(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, with_bad_lines: bool
):
    """On a file three DuckDB read buffers long (about 16 MB each), read on a connection with
    four threads, clean or with refused and blank lines spread through it, the stream path
    loads it and every row's record number and every quarantined line's number are the file's
    own (the read numbers its lines as it goes)."""
    pad = "x" * 700
    lines: list[bytes] = []
    for i in range(40_000):
        if with_bad_lines and i % 4_999 == 17:
            lines.append(b'{"schema_version": 1, "request_id": 7}')  # refused: wrong type
        elif with_bad_lines and i % 6_007 == 5:
            lines.append(b"   ")  # blank: not a record
        else:
            rec = request(f"r-{i}", f"{DAY}T0{i % 10}:00:00.000Z", provider_usd="0.25")
            rec["app"] = pad
            lines.append(json.dumps(rec).encode())
    data = b"\n".join(lines) + b"\n"
    assert len(data) > 40 << 20
    ledger = Ledger(tmp_path)
    _fill(ledger, {"a.jsonl": data})
    calls = _spy_stream(monkeypatch)
    stats = _load(ledger, threads=4)
    assert calls == [True]  # the stream path loaded it (a misnumbered read falls back)
    # Record numbers count non-blank lines; each good line's id names its physical line.
    expected, bad_lines, n = {}, [], 0
    for i, line in enumerate(lines):
        if line.strip():
            n += 1
            if b'"request_id": 7' in line:
                bad_lines.append(i + 1)
            else:
                expected[f"r-{i}"] = n
    assert stats["loaded"] == len(expected) and stats["rejected"] == len(bad_lines)
    got = dict(ledger.query("SELECT request_id, source_record FROM staging.requests"))
    assert got == expected
    assert [r[0] for r in ledger.query("SELECT line FROM raw.rejected_records ORDER BY 1")] == (
        bad_lines
    )
