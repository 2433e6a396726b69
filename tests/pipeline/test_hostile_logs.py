"""Hostile inputs against log ingestion: request logs, outcome events and OpenRouter generation
records. Each case puts ONE hostile line among good neighbours and asserts its exact fate
(loaded / duplicate / quarantined with its reason code), that every neighbour still loads, that
the money of the good lines is exactly what is staged, and that the file's manifest row
accounts for every line. A Hypothesis test mixes good and hostile lines across files and days,
and compares the whole-file read with the same lines read one per file."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pipeline_testkit import Ledger, outcome, request

from pipeline import loads
from pipeline.loads import DayRange
from routing_core.config import load_config

DAY = "2026-10-26"
RANGE = loads.DayRange(dt.date(2026, 10, 26), dt.date(2026, 10, 26))
GOOD_USD = ["1.01", "2.02", "3.03", "4.04"]


def _good(i: int, day: str = DAY) -> dict[str, Any]:
    return request(f"good-{i}", f"{day}T1{i % 10}:00:00.000Z", provider_usd=GOOD_USD[i % 4])


def _line(rec: dict[str, Any] | str | bytes) -> bytes:
    if isinstance(rec, bytes):
        return rec
    if isinstance(rec, str):
        return rec.encode()
    return json.dumps(rec).encode()


def _bad(**changes: Any) -> dict[str, Any]:
    """A good record 'x' with some fields replaced (None deletes)."""
    rec = request("x", f"{DAY}T12:00:00.000Z", provider_usd="5.55")
    for key, value in changes.items():
        parts = key.split(".")
        target = rec
        for p in parts[:-1]:
            target = target[p]
        if value is _DELETE:
            del target[parts[-1]]
        else:
            target[parts[-1]] = value
    return rec


_DELETE = object()


def _write(path: Path, lines: list[bytes], end: bytes = b"\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\n".join(lines) + end)
    return path


def _load(ledger: Ledger, days: loads.DayRange = RANGE) -> dict[str, int]:
    cfg = load_config(ledger.config)
    conn = duckdb.connect(str(ledger.duckdb))
    try:
        stats = loads.load_requests(conn, cfg, days)
        loads.load_outcomes(conn, cfg, days)
    finally:
        conn.close()
    return stats


def _manifest_ok(ledger: Ledger) -> list[tuple]:
    rows = ledger.query(
        "SELECT file, lines, loaded, duplicates, quarantined FROM raw.load_manifest "
        "QUALIFY row_number() OVER (PARTITION BY file ORDER BY loaded_at DESC) = 1"
    )
    for file, lines, loaded, dups, quar in rows:
        assert lines == loaded + dups + quar, file
    return rows


BIG = 50 << 20

# (id, hostile line, position, fate, reason) — fate: loaded | duplicate | quarantined
REQUEST_CASES: list[tuple[str, Any, str, str, str | None]] = [
    ("duration_ms_na", _bad(duration_ms="n/a"), "middle", "quarantined", "wrong_type:duration_ms"),
    ("first_line_list", "[1,2,3]", "first", "quarantined", "not_object"),
    ("first_line_number", "42", "first", "quarantined", "not_object"),
    ("first_line_string", '"hello"', "first", "quarantined", "not_object"),
    ("first_line_null", "null", "first", "quarantined", "not_object"),
    ("empty_object", "{}", "middle", "quarantined", "missing:schema_version"),
    (
        "tokens_1e20",
        json.dumps(_bad()).replace('"input_tokens": 100', '"input_tokens": 100000000000000000000'),
        "middle",
        "quarantined",
        "out_of_range:usage.input_tokens",
    ),
    (
        "tokens_1e13",
        _bad(**{"usage.input_tokens": 10**13}),
        "middle",
        "quarantined",
        "out_of_range:usage.input_tokens",
    ),
    (
        "tokens_negative",
        _bad(**{"usage.output_tokens": -5}),
        "middle",
        "quarantined",
        "out_of_range:usage.output_tokens",
    ),
    (
        "tokens_fraction",
        _bad(**{"usage.output_tokens": 1.5}),
        "middle",
        "quarantined",
        "wrong_type:usage.output_tokens",
    ),
    (
        "tokens_string",
        _bad(**{"usage.input_tokens": "100"}),
        "middle",
        "quarantined",
        "wrong_type:usage.input_tokens",
    ),
    ("usage_missing", _bad(usage=_DELETE), "middle", "quarantined", "missing:usage"),
    ("usage_string", _bad(usage="lots"), "middle", "quarantined", "missing:usage.input_tokens"),
    (
        "valid_line_50mb",
        json.dumps(_bad(app="a" * BIG)),
        "middle",
        "quarantined",
        "line_too_long",
    ),
    (
        "valid_line_2mb",
        json.dumps(_bad(app="a" * (2 << 20))),
        "middle",
        "quarantined",
        "line_too_long",
    ),
    (
        "usd_nan",
        _bad(**{"cost.provider_usd": "NaN"}),
        "middle",
        "quarantined",
        "non_finite:cost.provider_usd",
    ),
    (
        "usd_infinity",
        _bad(**{"cost.provider_usd": "Infinity"}),
        "middle",
        "quarantined",
        "non_finite:cost.provider_usd",
    ),
    (
        "usd_1e400",
        _bad(**{"cost.provider_usd": "1e400"}),
        "middle",
        "quarantined",
        "out_of_range:cost.provider_usd",
    ),
    (
        "usd_negative",
        _bad(**{"cost.provider_usd": "-1"}),
        "middle",
        "quarantined",
        "out_of_range:cost.provider_usd",
    ),
    (
        "usd_29_nines",
        _bad(**{"cost.provider_usd": "99999999999999999999999999999"}),
        "middle",
        "quarantined",
        "out_of_range:cost.provider_usd",
    ),
    (
        "usd_over_bound",
        _bad(**{"cost.platform_fee_usd": "1000000000.000000001"}),
        "middle",
        "quarantined",
        "out_of_range:cost.platform_fee_usd",
    ),
    (
        "usd_float",
        _bad(**{"cost.provider_usd": 0.5}),
        "middle",
        "quarantined",
        "wrong_type:cost.provider_usd",
    ),
    (
        "usd_bool",
        _bad(**{"cost.provider_usd": True}),
        "middle",
        "quarantined",
        "wrong_type:cost.provider_usd",
    ),
    (
        "usd_words",
        _bad(**{"cost.provider_usd": "twelve"}),
        "middle",
        "quarantined",
        "bad_value:cost.provider_usd",
    ),
    (
        "usd_missing",
        _bad(**{"cost.provider_usd": _DELETE}),
        "middle",
        "quarantined",
        "missing:cost.provider_usd",
    ),
    ("app_number", _bad(app=123), "middle", "quarantined", "wrong_type:app"),
    ("zdr_string", _bad(zdr="yes"), "middle", "quarantined", "wrong_type:zdr"),
    (
        "duration_inf",
        json.dumps(_bad()).replace('"duration_ms": 150.0', '"duration_ms": 1e400'),
        "middle",
        "quarantined",
        "non_finite:duration_ms",
    ),
    ("schema_2", _bad(schema_version=2), "middle", "quarantined", "out_of_range:schema_version"),
    ("status_maybe", _bad(status="maybe"), "middle", "quarantined", "bad_value:status"),
    ("credential_bad", _bad(credential="stolen"), "middle", "quarantined", "bad_value:credential"),
    ("no_request_id", _bad(request_id=_DELETE), "middle", "quarantined", "missing:request_id"),
    ("empty_request_id", _bad(request_id=""), "middle", "quarantined", "missing:request_id"),
    ("numeric_request_id", _bad(request_id=123), "middle", "quarantined", "wrong_type:request_id"),
    ("naive_ts", _bad(ts=f"{DAY}T12:00:00"), "middle", "quarantined", "naive_timestamp"),
    ("impossible_ts", _bad(ts="2026-02-30T00:00:00Z"), "middle", "quarantined", "bad_timestamp:ts"),
    ("infinity_ts", _bad(ts="infinity"), "middle", "quarantined", "bad_timestamp:ts"),
    ("far_ts", _bad(ts="2026-09-01T00:00:00Z"), "middle", "quarantined", "misfiled_far"),
    (
        "attempt_not_object",
        _bad(attempts=[1]),
        "middle",
        "loaded",
        None,
    ),
    (
        "attempt_http_string",
        _bad(attempts=[{"status": "ok", "http_status": "200"}]),
        "middle",
        "loaded",
        None,
    ),
    (
        "requested_models_mixed",
        _bad(requested_models=["a", 1]),
        "middle",
        "loaded",
        None,
    ),
    (
        "usage_source_bad",
        _bad(usage_source="guess"),
        "middle",
        "quarantined",
        "bad_value:usage_source",
    ),
    ("ttfb_negative", _bad(ttfb_ms=-1), "middle", "quarantined", "out_of_range:ttfb_ms"),
    (
        "invalid_json",
        b'{"schema_version": 1, "request_id": "x",, }',
        "middle",
        "quarantined",
        "not_json",
    ),
    (
        "not_utf8",
        b'{"schema_version": 1, "request_id": "\xff\xfe"}',
        "middle",
        "quarantined",
        "not_utf8",
    ),
    (
        "raw_nul",
        b'{"schema_version": 1, "request_id": "a\x00b"}',
        "middle",
        "quarantined",
        "not_json",
    ),
    ("bom", b"\xef\xbb\xbf" + json.dumps(_bad()).encode(), "middle", "quarantined", "not_json"),
    (
        "torn_last",
        b'{"schema_version": 1, "request_id": "x", "ts": "2026-10-2',
        "torn",
        "quarantined",
        "torn_line",
    ),
    # loaded: informational fields read with DuckDB's own conversion (docs/log-contract.md)
    ("offset_ts", _bad(ts="2026-10-26T03:00:00+05:00"), "middle", "loaded", None),
    ("prior_day_ts", _bad(ts="2026-10-25T23:59:00Z"), "middle", "loaded", None),
    (
        "new_fields",
        _bad(usage_source="clamped", ttfb_ms=12.5, stream=True),
        "middle",
        "loaded",
        None,
    ),
    ("escaped_text", _bad(app='web\\"chat\u00e9'), "middle", "loaded", None),
    ("exponent_usd", _bad(**{"cost.provider_usd": "5.55e0"}), "middle", "loaded", None),
    ("blank_lines_around", b"   \n\t\n", "middle", "blank", None),
    # duplicates:
    ("identical_copy", _good(1), "middle", "duplicate", None),
    (
        "conflicting_copy",
        request("good-1", f"{DAY}T11:00:00.000Z", provider_usd="999"),
        "last",
        "quarantined",
        "conflicting_duplicate",
    ),
]


@pytest.mark.parametrize(
    ("line", "position", "fate", "reason"),
    [c[1:] for c in REQUEST_CASES],
    ids=[c[0] for c in REQUEST_CASES],
)
def test_hostile_request_line(ledger: Ledger, line: Any, position: str, fate: str, reason: str):
    goods = [_good(i) for i in range(4)]
    good_lines = [_line(g) for g in goods]
    hostile = _line(line)
    if position == "first":
        lines, end = [hostile, *good_lines], b"\n"
    elif position == "last":
        lines, end = [*good_lines, hostile], b"\n"
    elif position == "torn":
        lines, end = [*good_lines, hostile], b""
    else:
        lines, end = [*good_lines[:2], hostile, *good_lines[2:]], b"\n"
    path = _write(ledger.logs / "requests" / f"dt={DAY}" / "router-a.jsonl", lines, end)
    hostile_line = lines.index(hostile) + 1

    stats = _load(ledger)

    ids = {r[0] for r in ledger.query("SELECT request_id FROM staging.requests")}
    assert {f"good-{i}" for i in range(4)} <= ids  # every neighbour loads
    staged = ledger.query("SELECT coalesce(sum(provider_usd), 0) FROM staging.requests")[0][0]
    good_sum = sum(Decimal(u) for u in GOOD_USD)
    rejected = ledger.query("SELECT file, line, reason, raw_text FROM raw.rejected_records")
    (manifest,) = _manifest_ok(ledger)
    if fate == "blank":  # whitespace-only lines are not records and are not counted
        assert manifest[1:] == (4, 4, 0, 0)
        assert staged == good_sum and rejected == []
        return
    assert manifest[1] == 5
    if fate == "quarantined":
        assert ids == {f"good-{i}" for i in range(4)}
        assert staged == good_sum
        assert [(f, ln, rs) for f, ln, rs, _ in rejected] == [(str(path), hostile_line, reason)]
        assert len(rejected[0][3]) <= 64 * 1024
        assert manifest[2:] == (4, 0, 1)
        assert stats["rejected"] == 1
    elif fate == "duplicate":
        assert staged == good_sum and rejected == []
        assert manifest[2:] == (4, 1, 0)
    else:
        assert "x" in ids and rejected == []
        assert staged == good_sum + Decimal("5.55")
        assert manifest[2:] == (5, 0, 0)


def test_a_byte_order_mark_at_the_start_of_a_file_is_an_encoding_marker(ledger: Ledger):
    path = ledger.logs / "requests" / f"dt={DAY}" / "router-a.jsonl"
    _write(path, [b"\xef\xbb\xbf" + _line(_good(1)), _line(_good(2))])
    _load(ledger)
    assert ledger.query("SELECT request_id FROM staging.requests ORDER BY 1") == [
        ("good-1",),
        ("good-2",),
    ]
    assert _manifest_ok(ledger)[0][1:] == (2, 2, 0, 0)


def test_offset_timestamp_is_converted_to_utc_and_reported_under_its_utc_day(ledger: Ledger):
    _write(
        ledger.logs / "requests" / f"dt={DAY}" / "router-a.jsonl",
        [
            _line(
                _bad(ts="2026-10-26T03:00:00+05:00", usage_source="clamped", ttfb_ms=7, stream=True)
            )
        ],
    )
    _load(ledger)
    assert ledger.query(
        "SELECT day, file_day, ts, usage_source, ttfb_ms, stream FROM staging.requests"
    ) == [
        (
            dt.date(2026, 10, 25),
            dt.date(2026, 10, 26),
            dt.datetime(2026, 10, 25, 22, 0),
            "clamped",
            7.0,
            True,
        )
    ]


def test_misfiled_record_rerun_both_days_in_either_order(ledger: Ledger):
    """A record of the 25th found in the 26th's folder is owned by the 26th's load but reported
    under the 25th; re-running either day in any order neither loses nor duplicates it."""
    d25, d26 = "2026-10-25", "2026-10-26"
    _write(ledger.logs / "requests" / f"dt={d25}" / "a.jsonl", [_line(_good(1, d25))])
    _write(
        ledger.logs / "requests" / f"dt={d26}" / "a.jsonl",
        [_line(_good(2, d26)), _line(_bad(request_id="late", ts=f"{d25}T23:00:00Z"))],
    )
    r25 = loads.DayRange(dt.date(2026, 10, 25), dt.date(2026, 10, 25))
    r26 = loads.DayRange(dt.date(2026, 10, 26), dt.date(2026, 10, 26))
    want = [
        (dt.date(2026, 10, 25), "good-1"),
        (dt.date(2026, 10, 25), "late"),
        (dt.date(2026, 10, 26), "good-2"),
    ]
    for order in ([r25, r26, r25], [r26, r25, r26, r26], [r26, r26]):
        ledger.duckdb.unlink(missing_ok=True)
        for r in order:
            _load(ledger, r)
        got = ledger.query("SELECT day, request_id FROM staging.requests ORDER BY 1, 2")
        expect = want if r25 in order else [w for w in want if w[1] != "good-1"]
        assert got == expect
        _manifest_ok(ledger)
    # the 26th's load says one of its records belongs to a day outside its run
    assert _load(ledger, r26)["reported_outside_range"] == 1


def test_conflicting_copy_in_another_folder_is_decided_the_same_in_either_order(ledger: Ledger):
    """Same request_id, different content, in the 25th (its own day) and the 26th: the copy
    filed under its own UTC day wins whichever day is loaded first; the other is quarantined
    and its file's manifest says so."""
    d25, d26 = "2026-10-25", "2026-10-26"
    own = request("r", f"{d25}T23:00:00.000Z", provider_usd="1.00")
    other = request("r", f"{d25}T23:00:00.000Z", provider_usd="7.00")
    _write(ledger.logs / "requests" / f"dt={d25}" / "a.jsonl", [_line(own)])
    p26 = _write(ledger.logs / "requests" / f"dt={d26}" / "a.jsonl", [_line(other)])
    r25 = loads.DayRange(dt.date(2026, 10, 25), dt.date(2026, 10, 25))
    r26 = loads.DayRange(dt.date(2026, 10, 26), dt.date(2026, 10, 26))
    for order in ([r25, r26], [r26, r25]):
        ledger.duckdb.unlink(missing_ok=True)
        for r in order:
            _load(ledger, r)
        assert ledger.query("SELECT request_id, provider_usd FROM staging.requests") == [
            ("r", Decimal("1"))
        ]
        assert ledger.query("SELECT file, line, reason FROM raw.rejected_records") == [
            (str(p26), 1, "conflicting_duplicate")
        ]
        rows = {r[0]: r[1:] for r in _manifest_ok(ledger)}
        assert rows[str(p26)] == (1, 0, 0, 1)


def test_symlink_outside_the_logs_path_is_refused(ledger: Ledger, tmp_path: Path):
    outside = _write(tmp_path / "elsewhere" / "secret.jsonl", [_line(_good(1))])
    folder = ledger.logs / "requests" / f"dt={DAY}"
    _write(folder / "router-a.jsonl", [_line(_good(2))])
    (folder / "evil.jsonl").symlink_to(outside)
    stats = _load(ledger)
    assert ledger.query("SELECT request_id FROM staging.requests") == [("good-2",)]
    assert ledger.query(
        "SELECT status, reason, lines FROM raw.load_manifest WHERE file LIKE '%evil.jsonl'"
    ) == [("refused", "symlink_outside_paths", 0)]
    (err,) = ledger.query(
        "SELECT reason, error FROM raw.rejected_records WHERE file LIKE '%evil.jsonl'"
    )
    assert err[0] == "symlink_outside_paths" and "outside the configured logs path" in err[1]
    assert stats["refused_files"] == 1


# --------------------------------------------------------------------------- outcomes

OUTCOME_CASES: list[tuple[str, Any, str, str | None]] = [
    (
        "score_high",
        {**outcome("x", f"{DAY}T10:00:00Z", True, request_id="r"), "score": "high"},
        "quarantined",
        "wrong_type:score",
    ),
    (
        "score_inf",
        json.dumps(outcome("x", f"{DAY}T10:00:00Z", True, request_id="r")).replace(
            '"score": null', '"score": 1e400'
        ),
        "quarantined",
        "non_finite:score",
    ),
    (
        "accepted_yes",
        {**outcome("x", f"{DAY}T10:00:00Z", True, request_id="r"), "accepted": "yes"},
        "quarantined",
        "wrong_type:accepted",
    ),
    ("no_target", outcome("x", f"{DAY}T10:00:00Z", True), "quarantined", "missing:request_id"),
    (
        "naive_ts",
        outcome("x", f"{DAY}T10:00:00", True, request_id="r"),
        "quarantined",
        "naive_timestamp",
    ),
    ("list_line", "[1]", "quarantined", "not_object"),
    ("invalid_json", "{nope", "quarantined", "not_json"),
    ("good_one", outcome("x", f"{DAY}T10:00:00+02:00", True, request_id="r"), "loaded", None),
    ("identical", outcome("e1", f"{DAY}T10:01:00Z", True, request_id="r1"), "duplicate", None),
    (
        "conflict",
        outcome("e1", f"{DAY}T10:01:00Z", False, request_id="r1"),
        "quarantined",
        "conflicting_duplicate",
    ),
]


@pytest.mark.parametrize(
    ("line", "fate", "reason"), [c[1:] for c in OUTCOME_CASES], ids=[c[0] for c in OUTCOME_CASES]
)
def test_hostile_outcome_line(ledger: Ledger, line: Any, fate: str, reason: str | None):
    goods = [outcome(f"e{i}", f"{DAY}T10:0{i}:00Z", True, request_id=f"r{i}") for i in range(1, 4)]
    lines = [_line(goods[0]), _line(goods[1]), _line(line), _line(goods[2])]
    path = _write(ledger.logs / "outcomes" / f"dt={DAY}" / "app-1.jsonl", lines)
    _load(ledger)
    ids = {r[0] for r in ledger.query("SELECT event_id FROM staging.outcomes")}
    assert {"e1", "e2", "e3"} <= ids
    rejected = ledger.query("SELECT file, line, reason FROM raw.rejected_records")
    (manifest,) = [m for m in _manifest_ok(ledger) if "outcomes" in m[0]]
    if fate == "quarantined":
        assert rejected == [(str(path), 3, reason)] and ids == {"e1", "e2", "e3"}
        assert manifest[1:] == (4, 3, 0, 1)
    elif fate == "duplicate":
        assert rejected == [] and manifest[1:] == (4, 3, 1, 0)
    else:
        assert rejected == [] and ids == {"e1", "e2", "e3", "x"}
        assert manifest[1:] == (4, 4, 0, 0)


# --------------------------------------------------------------------------- OpenRouter

GEN = {
    "id": "gen-x",
    "total_cost": 0.5,
    "upstream_inference_cost": 0.25,
    "created_at": f"{DAY}T10:15:00.123456+00:00",
    "model": "openai/gpt-4.1",
    "provider_name": "OpenAI",
    "latency": 1250,
    "native_tokens_prompt": 1000,
    "native_tokens_completion": 300,
    "native_tokens_reasoning": 0,
    "native_tokens_cached": 0,
    "is_byok": False,
}

GEN_CASES: list[tuple[str, Any, str, str | None]] = [
    ("good", {"data": GEN}, "loaded", None),
    (
        "nan_literal",
        json.dumps(GEN).replace('"total_cost": 0.5', '"total_cost": NaN'),
        "quarantined",
        "not_json",
    ),
    (
        "infinity_literal",
        json.dumps(GEN).replace('"total_cost": 0.5', '"total_cost": Infinity'),
        "quarantined",
        "not_json",
    ),
    ("cost_1e400", {**GEN, "total_cost": "1e400"}, "quarantined", "out_of_range:total_cost"),
    (
        "cost_negative",
        {**GEN, "upstream_inference_cost": -1},
        "quarantined",
        "out_of_range:upstream_inference_cost",
    ),
    ("cost_nan_string", {**GEN, "total_cost": "NaN"}, "quarantined", "non_finite:total_cost"),
    ("cost_bool", {**GEN, "total_cost": True}, "quarantined", "wrong_type:total_cost"),
    (
        "tokens_1e20",
        json.dumps(GEN).replace('"native_tokens_prompt": 1000', '"native_tokens_prompt": 1e20'),
        "quarantined",
        "out_of_range:native_tokens_prompt",
    ),
    (
        "tokens_string",
        {**GEN, "native_tokens_completion": "300"},
        "quarantined",
        "wrong_type:native_tokens_completion",
    ),
    (
        "naive_created_at",
        {**GEN, "created_at": f"{DAY}T10:15:00"},
        "quarantined",
        "naive_timestamp",
    ),
    ("no_id", {k: v for k, v in GEN.items() if k != "id"}, "quarantined", "missing:id"),
    ("byok_string", {**GEN, "is_byok": "yes"}, "quarantined", "wrong_type:is_byok"),
    ("list_line", "[1, 2]", "quarantined", "not_object"),
    (
        "far_created_at",
        {**GEN, "created_at": "2026-01-01T00:00:00Z"},
        "quarantined",
        "misfiled_far",
    ),
]


@pytest.mark.parametrize(
    ("line", "fate", "reason"), [c[1:] for c in GEN_CASES], ids=[c[0] for c in GEN_CASES]
)
def test_hostile_generation_record(ledger: Ledger, line: Any, fate: str, reason: str | None):
    goods = [{**GEN, "id": f"gen-{i}", "total_cost": f"0.0{i}"} for i in range(1, 4)]
    lines = [_line(goods[0]), _line(line), _line(goods[1]), _line(goods[2])]
    path = _write(ledger.logs / "openrouter_generations" / f"dt={DAY}" / "g.jsonl", lines)
    _load(ledger)
    ids = {r[0] for r in ledger.query("SELECT request_id FROM staging.requests")}
    assert {"gen-1", "gen-2", "gen-3"} <= ids
    credits = ledger.query("SELECT sum(platform_credits_usd) FROM staging.requests")[0][0]
    rejected = ledger.query("SELECT file, line, reason FROM raw.rejected_records")
    (manifest,) = _manifest_ok(ledger)
    if fate == "quarantined":
        assert rejected == [(str(path), 2, reason)]
        assert credits == Decimal("0.06") and manifest[1:] == (4, 3, 0, 1)
    else:
        assert rejected == [] and credits == Decimal("0.56") and manifest[1:] == (4, 4, 0, 0)


# --------------------------------------------------------------------------- property

# Hostile lines whose fate does not depend on where they sit (a UTF-8 byte order mark is an
# encoding marker at the start of a file and not JSON anywhere else; big lines are slow).
HOSTILE = [
    c
    for c in REQUEST_CASES
    if c[3] == "quarantined"
    and c[2] == "middle"
    and c[0] not in ("valid_line_50mb", "valid_line_2mb", "far_ts", "bom")
]


@st.composite
def _mix(draw: st.DrawFn) -> list[tuple[str, str, list[tuple[bytes, str | None]]]]:
    """Files across two days; each line a good record (unique id, its usd) or a hostile one."""
    files = []
    n = 0
    for day in ("2026-10-25", "2026-10-26"):
        for name in draw(st.sampled_from([["a"], ["a", "b"]])):
            lines = []
            for _ in range(draw(st.integers(1, 5))):
                if draw(st.booleans()):
                    n += 1
                    usd = f"{draw(st.integers(0, 10**6))}.{draw(st.integers(0, 999)):03d}"
                    hour = draw(st.integers(0, 23))
                    rec = request(f"p{n}", f"{day}T{hour:02d}:00:00.000Z", provider_usd=usd)
                    lines.append((_line(rec), usd))
                else:
                    case = draw(st.sampled_from(HOSTILE))
                    lines.append((_line(case[1]), None))
            files.append((day, name, lines))
    return files


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(mix=_mix())
def test_random_mixes_load_exactly_the_good_lines_whole_file_or_line_by_line(
    ledger: Ledger, mix: list[tuple[str, str, list[tuple[bytes, str | None]]]]
):
    both = loads.DayRange(dt.date(2026, 10, 25), dt.date(2026, 10, 26))
    good = {}
    for layout in ("whole", "per_line"):
        for sub in ("requests",):
            root = ledger.logs / sub
            if root.exists():
                for p in sorted(root.rglob("*.jsonl")):
                    p.unlink()
        ledger.duckdb.unlink(missing_ok=True)
        for day, name, lines in mix:
            folder = ledger.logs / "requests" / f"dt={day}"
            if layout == "whole":
                _write(folder / f"{name}.jsonl", [ln for ln, _ in lines])
            else:
                for i, (ln, _) in enumerate(lines):
                    _write(folder / f"{name}-{i:03d}.jsonl", [ln])
        _load(ledger, both)
        expect_ids = set()
        expect_usd = Decimal(0)
        for _day, _name, lines in mix:
            for ln, usd in lines:
                if usd is not None:
                    expect_ids.add(json.loads(ln)["request_id"])
                    expect_usd += Decimal(usd)
        got = dict(ledger.query("SELECT request_id, provider_usd FROM staging.requests"))
        assert set(got) == expect_ids
        assert sum(got.values(), Decimal(0)) == expect_usd
        rows = _manifest_ok(ledger)
        total = sum(len(lines) for _d, _n, lines in mix)
        assert sum(r[1] for r in rows) == total
        assert sum(r[4] for r in rows) == total - len(expect_ids)
        good[layout] = got
    assert good["whole"] == good["per_line"]


def test_an_unconvertible_informational_value_reads_as_null(ledger: Ledger):
    """attempts/account/requested_models use DuckDB's conversion: documented leniency, no money."""
    bad = _bad(attempts=[{"status": "ok", "http_status": "n/a"}])
    _write(
        ledger.logs / "requests" / f"dt={DAY}" / "router-a.jsonl",
        [_line(_good(1)), _line(bad), _line(_good(2))],
    )
    _load(ledger)
    assert ledger.query(
        "SELECT request_id, attempts[1].status, attempts[1].http_status FROM staging.requests "
        "WHERE request_id = 'x'"
    ) == [("x", "ok", None)]
    assert ledger.query("SELECT count(*) FROM raw.rejected_records") == [(0,)]
    assert _manifest_ok(ledger)[0][1:] == (3, 3, 0, 0)


def test_the_line_accounting_check_fails_naming_the_file_whose_lines_do_not_add_up(
    ledger: Ledger,
):
    """The blocking check reads raw.load_manifest: a manifest row that loses a line (here
    edited by hand, as a bug would) fails it, and the failure names the file."""
    from pipeline.defs.ingest.checks import EVERY_REQUEST_LINE, _accounting

    path = _write(
        ledger.logs / "requests" / f"dt={DAY}" / "router-a.jsonl", [_line(_good(1)), b"{bad"]
    )
    _load(ledger)
    d = dt.date.fromisoformat(DAY)
    sources = ("requests", "openrouter_generations")
    with duckdb.connect(str(ledger.duckdb)) as conn:
        ok = _accounting(conn, DayRange(d, d), EVERY_REQUEST_LINE, sources)
        assert ok.passed and ok.metadata["files"].value == 1
        conn.execute("UPDATE raw.load_manifest SET quarantined = 0")
        bad = _accounting(conn, DayRange(d, d), EVERY_REQUEST_LINE, sources)
    assert not bad.passed
    assert str(path) in bad.description


def test_a_duckdb_file_from_the_previous_version_still_loads(ledger: Ledger):
    """Tables created by the previous schema (no reason column, no provenance columns) gain
    them on the next load, and an old-style row is replaced, not duplicated, by a re-load."""
    from pipeline_testkit import FIXTURES

    conn = duckdb.connect(str(ledger.duckdb))
    conn.execute((FIXTURES / "logs" / "create_tables_before_reason_codes.sql").read_text())
    conn.execute(
        "INSERT INTO raw.rejected_records VALUES (DATE '2026-10-20', 'requests', 'f', 1, 'e', "
        "'raw', false)"
    )
    conn.close()
    _write(ledger.logs / "requests" / f"dt={DAY}" / "router-a.jsonl", [_line(_good(1)), b"{"])
    for _ in range(2):  # the second load replaces the first
        _load(ledger)
        assert ledger.query("SELECT request_id, file_day FROM staging.requests") == [
            ("good-1", dt.date(2026, 10, 26))
        ]
    assert ledger.query("SELECT line, reason FROM raw.rejected_records ORDER BY day") == [
        (1, None),  # the old row keeps its NULL reason
        (2, "not_json"),
    ]
    assert len(_manifest_ok(ledger)) == 1


def test_an_empty_file_and_a_file_of_blank_lines_count_zero_lines(ledger: Ledger):
    folder = ledger.logs / "requests" / f"dt={DAY}"
    folder.mkdir(parents=True)
    (folder / "empty.jsonl").write_bytes(b"")
    (folder / "blank.jsonl").write_bytes(b"\n \n\t\n")
    _write(folder / "router-a.jsonl", [_line(_good(1))])
    stats = _load(ledger)
    rows = {Path(r[0]).name: r[1:] for r in _manifest_ok(ledger)}
    assert rows == {
        "empty.jsonl": (0, 0, 0, 0),
        "blank.jsonl": (0, 0, 0, 0),
        "router-a.jsonl": (1, 1, 0, 0),
    }
    assert stats["files"] == 3 and stats["lines_read"] == 1


def test_manifest_records_bytes_sha256_run_id_and_days(ledger: Ledger):
    import hashlib

    path = _write(
        ledger.logs / "requests" / f"dt={DAY}" / "router-a.jsonl",
        [_line(_good(1)), _line(_bad(request_id="late", ts="2026-10-25T23:00:00Z"))],
    )
    cfg = load_config(ledger.config)
    conn = duckdb.connect(str(ledger.duckdb))
    try:
        loads.load_requests(conn, cfg, RANGE, run_id="run-123")
    finally:
        conn.close()
    data = path.read_bytes()
    assert ledger.query(
        "SELECT run_id, bytes, fingerprint, first_day, last_day, status FROM raw.load_manifest"
    ) == [
        (
            "run-123",
            len(data),
            hashlib.sha256(data).hexdigest(),
            dt.date(2026, 10, 25),
            dt.date(2026, 10, 26),
            "loaded",
        )
    ]
