"""Re-running a day whose log files did not change reads nothing: every file gets a manifest row
with status `unchanged` and its last load's counts, and the staged rows, quarantine and load
stats stay as they were. Any change (a new, removed, grown or rewritten file) reloads the days."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import duckdb
import pytest
from pipeline_testkit import Ledger, outcome, request

from pipeline import loads
from pipeline.sources import accounting, jsonl
from routing_core.config import load_config

DAY = "2026-10-26"
RANGE = loads.DayRange(dt.date(2026, 10, 26), dt.date(2026, 10, 26))


def _good(i: int) -> dict[str, Any]:
    return request(f"r-{i}", f"{DAY}T1{i % 10}:00:00.000Z", provider_usd=f"{i}.25")


def _write(path: Path, lines: list[bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


def _load(ledger: Ledger, run_id: str, what: str = "requests") -> dict[str, int]:
    cfg = load_config(ledger.config)
    conn = duckdb.connect(str(ledger.duckdb))
    try:
        fn = loads.load_requests if what == "requests" else loads.load_outcomes
        return fn(conn, cfg, RANGE, run_id=run_id)
    finally:
        conn.close()


def _state(ledger: Ledger) -> dict[str, list[tuple]]:
    snap = ledger.snapshot()
    return {k: v for k, v in snap.items() if k.startswith(("staging.", "raw."))}


def _manifest(ledger: Ledger, run_id: str) -> list[tuple]:
    return ledger.query(
        "SELECT file, lines, loaded, duplicates, quarantined, status, first_day, last_day "
        "FROM raw.load_manifest WHERE run_id = ? ORDER BY file",
        [run_id],
    )


def _no_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_a: Any, **_k: Any) -> None:
        raise AssertionError("a log file was read although nothing changed")

    monkeypatch.setattr(jsonl, "load_files", boom)
    monkeypatch.setattr(accounting, "load_files", boom)


def test_a_rerun_with_nothing_new_reads_nothing_and_keeps_every_table(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
):
    folder = ledger.logs / "requests" / f"dt={DAY}"
    _write(folder / "a.jsonl", [json.dumps(_good(i)).encode() for i in range(3)])
    _write(
        folder / "b.jsonl",
        [json.dumps(_good(3)).encode(), b"not json", json.dumps(_good(3)).encode()],
    )
    (folder / "b.jsonl").open("ab").write(b'{"schema_version": 1, "request_id": "torn')
    first = _load(ledger, "run-1")
    before = _state(ledger)
    assert first["torn"] == 1 and first["rejected"] == 2 and first["duplicates_dropped"] == 1
    _no_reading(monkeypatch)
    again = _load(ledger, "run-2")
    assert again == first  # the same totals, torn line included
    assert _state(ledger) == before
    one, two = _manifest(ledger, "run-1"), _manifest(ledger, "run-2")
    assert [r[:5] + r[6:] for r in two] == [r[:5] + r[6:] for r in one]
    assert [r[5] for r in one] == ["loaded", "loaded"]
    assert [r[5] for r in two] == ["unchanged", "unchanged"]
    # ...and a third run still finds them unchanged (an `unchanged` row is a successful load).
    assert _load(ledger, "run-3") == first
    assert [r[5] for r in _manifest(ledger, "run-3")] == ["unchanged", "unchanged"]


@pytest.mark.parametrize("change", ["grown", "rewritten", "added", "removed"])
def test_any_change_reloads_the_day(ledger: Ledger, change: str):
    folder = ledger.logs / "requests" / f"dt={DAY}"
    a = _write(folder / "a.jsonl", [json.dumps(_good(i)).encode() for i in range(3)])
    b = _write(folder / "b.jsonl", [json.dumps(_good(7)).encode()])
    _load(ledger, "run-1")
    if change == "grown":  # e.g. a torn last line completed by its writer
        a.open("ab").write(json.dumps(_good(4)).encode() + b"\n")
    elif change == "rewritten":  # same size, other content
        a.write_bytes(a.read_bytes().replace(b"1.25", b"9.25"))
    elif change == "added":
        _write(folder / "c.jsonl", [json.dumps(_good(8)).encode()])
    else:
        b.unlink()
    stats = _load(ledger, "run-2")
    rows = ledger.query("SELECT request_id, CAST(provider_usd AS VARCHAR) FROM staging.requests")
    expected = {
        "grown": {"r-0", "r-1", "r-2", "r-4", "r-7"},
        "rewritten": {"r-0", "r-1", "r-2", "r-7"},
        "added": {"r-0", "r-1", "r-2", "r-7", "r-8"},
        "removed": {"r-0", "r-1", "r-2"},
    }[change]
    assert {r[0] for r in rows} == expected
    assert stats["loaded"] == stats["rows"] == len(expected)
    statuses = {r[5] for r in _manifest(ledger, "run-2")}
    assert statuses == {"loaded"}
    if change == "rewritten":
        assert dict(rows)["r-1"] == "9.250000000"
    assert ledger.query("SELECT sum(lines_read) FROM raw.load_stats WHERE source = 'requests'") == [
        (len(expected),)
    ]


def test_a_previously_refused_file_is_never_unchanged(ledger: Ledger, tmp_path: Path):
    outside = _write(tmp_path / "elsewhere" / "x.jsonl", [json.dumps(_good(1)).encode()])
    link = ledger.logs / "requests" / f"dt={DAY}" / "a.jsonl"
    link.parent.mkdir(parents=True)
    link.symlink_to(outside)
    assert _load(ledger, "run-1")["refused_files"] == 1
    assert _load(ledger, "run-2")["refused_files"] == 1
    assert [r[5] for r in _manifest(ledger, "run-2")] == ["refused"]
    link.unlink()
    _write(link, [json.dumps(_good(1)).encode()])
    third = _load(ledger, "run-3")
    assert third["loaded"] == 1 and [r[5] for r in _manifest(ledger, "run-3")] == ["loaded"]


def test_outcomes_rerun_with_nothing_new_reads_nothing(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
):
    ledger.write_outcomes(
        DAY, [outcome(f"e-{i}", f"{DAY}T08:0{i}:00.000Z", True, request_id="r-1") for i in range(3)]
    )
    first = _load(ledger, "run-1", "outcomes")
    before = _state(ledger)
    _no_reading(monkeypatch)
    assert _load(ledger, "run-2", "outcomes") == first
    assert _state(ledger) == before
    assert [r[5] for r in _manifest(ledger, "run-2")] == ["unchanged"]
