"""The JSONL request log: SPEC §6 layout, one file per writer, whole lines under
concurrency, torn last line tolerated, and a writer killed mid-write loses nothing else."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from routing_core.request_log import RequestLog, default_writer_id, read_jsonl, read_records


def rec(i: int, ts: str = "2026-11-20T12:00:00.000Z") -> dict:
    return {"request_id": f"r{i}", "ts": ts, "cost": {"list_usd": "0.000001000"}}


def test_layout_by_utc_day_and_writer(tmp_path):
    with RequestLog(tmp_path, "w1") as log:
        log.write_request(rec(1, "2026-11-20T23:59:59.999Z"))
        log.write_request(rec(2, "2026-11-21T00:00:00.000Z"))
        log.write_outcome({"event_id": "e1", "ts": "2026-11-21T01:00:00.000Z"})
    assert (tmp_path / "requests/dt=2026-11-20/w1.jsonl").read_text().count("\n") == 1
    assert (tmp_path / "requests/dt=2026-11-21/w1.jsonl").exists()
    assert (tmp_path / "outcomes/dt=2026-11-21/w1.jsonl").exists()
    assert [r["request_id"] for r in read_records(tmp_path)] == ["r1", "r2"]
    assert [r["event_id"] for r in read_records(tmp_path, "outcomes")] == ["e1"]
    assert list(read_records(tmp_path, days=["2026-11-21"]))[0]["request_id"] == "r2"


def test_appends_never_truncate_and_writers_are_separate(tmp_path):
    with RequestLog(tmp_path, "w1") as log:
        log.write_request(rec(1))
    with RequestLog(tmp_path, "w1") as log:  # reopen: append, not truncate
        log.write_request(rec(2))
    with RequestLog(tmp_path, "w2") as log:
        log.write_request(rec(3))
    files = sorted(p.name for p in (tmp_path / "requests/dt=2026-11-20").iterdir())
    assert files == ["w1.jsonl", "w2.jsonl"]
    assert sorted(r["request_id"] for r in read_records(tmp_path)) == ["r1", "r2", "r3"]


def test_default_writer_id_is_unique_per_process_and_call():
    a, b = default_writer_id(), default_writer_id()
    assert a != b and f"-{os.getpid()}-" in a


def test_torn_last_line_is_skipped_and_bad_lines_reported(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_bytes(b'{"a": 1}\nnot json\n{"a": 2}\n{"a": 3, "b": "tor')
    errors: list[str] = []
    assert [r["a"] for r in read_jsonl(p, errors)] == [1, 2]
    assert len(errors) == 1 and ":2:" in errors[0]


def test_threads_never_interleave_lines(tmp_path):
    log = RequestLog(tmp_path, "w")
    pad = "x" * 3000  # bigger than a pipe buffer chunk: a torn write would show

    def worker(t: int) -> None:
        for i in range(200):
            log.write_request(
                {"request_id": f"{t}-{i}", "ts": "2026-11-20T00:00:00.000Z", "pad": pad}
            )

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    errors: list[str] = []
    got = list(read_records(tmp_path, errors=errors))
    assert errors == [] and len(got) == 800
    assert len({r["request_id"] for r in got}) == 800


def test_survives_sigkill_mid_write(tmp_path):
    """A writer process is killed while appending big records in a loop: every complete line
    parses and the reader skips the torn tail (if any)."""
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
        from routing_core.request_log import RequestLog
        log = RequestLog({str(tmp_path)!r}, "victim")
        pad = "y" * 200_000
        i = 0
        print("ready", flush=True)
        while True:
            log.write_request({{"request_id": f"r{{i}}", "ts": "2026-11-20T00:00:00.000Z",
                               "pad": pad}})
            i += 1
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"ready"
    path = tmp_path / "requests/dt=2026-11-20/victim.jsonl"
    deadline = time.monotonic() + 10
    while (not path.exists() or path.stat().st_size < 5_000_000) and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL

    data = path.read_bytes()
    complete = data.count(b"\n")
    assert complete >= 20
    errors: list[str] = []
    got = list(read_jsonl(path, errors))
    assert errors == []
    assert len(got) == complete  # every complete line parses; only a torn tail is dropped
    assert [r["request_id"] for r in got] == [f"r{i}" for i in range(complete)]
