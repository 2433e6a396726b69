"""A re-run of `byok-ledger run` with nothing new says so in one line and exits 0 without
launching Dagster; each kind of change (logs, invoices, config, DuckDB file, code version,
webhook, --force) forces a real run."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pipeline_testkit import REPO, Ledger, acme_day_requests, request

from pipeline import run_record
from routing_core.config import load_config

DAY = "2026-03-02"
ACME_WEBHOOK = "  webhook_url: http://127.0.0.1:8788/hooks/byok-ledger\n"


def _run(led: Ledger, *args: str) -> subprocess.CompletedProcess:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DAGSTER_HOME", "BYOK_LEDGER_CONFIG", "ACME_ALERT_WEBHOOK")
    }
    return subprocess.run(
        [sys.executable, "-m", "byok_ledger.cli", "run", "--config", str(led.config), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )


def _skipped(proc: subprocess.CompletedProcess) -> bool:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return "nothing changed since run" in proc.stdout


@pytest.fixture
def quiet_day(ledger: Ledger) -> Ledger:
    """Acme's day with invoices and no alert webhook (alerts are recorded, nothing to retry)."""
    text = ledger.config.read_text()
    assert ACME_WEBHOOK in text
    ledger.config.write_text(text.replace(ACME_WEBHOOK, ""))
    ledger.write_requests(DAY, acme_day_requests())
    ledger.add_invoices("acme_2026-03-02")
    return ledger


def _record(led: Ledger) -> dict:
    return json.loads((led.duckdb.parent / ".dagster" / run_record.RECORD_NAME).read_text())


def test_a_rerun_with_nothing_new_is_one_line_and_each_change_forces_a_run(quiet_day: Ledger):
    led = quiet_day
    first = _run(led)
    assert not _skipped(first) and "succeeded" in first.stdout
    rec = _record(led)
    # The record holds hashes, sizes and times: no secret, not even the webhook URL.
    assert set(rec["inputs"]) >= {"config", "code", "logs", "invoices", "duckdb", "webhook"}

    again = _run(led)
    assert _skipped(again)
    lines = again.stdout.strip().splitlines()
    assert len(lines) == 1, again.stdout
    assert rec["run_id"] in lines[0] and "0 days re-materialized" in lines[0]
    # Same days spelled out: still the same run.
    assert _skipped(_run(led, "--start", DAY, "--end", DAY))
    # Other days are not the days recorded.
    other = _run(led, "--start", "2026-03-01", "--end", DAY)
    assert not _skipped(other) and "days changed" in other.stdout
    assert not _skipped(_run(led)) and _skipped(_run(led))

    # --force runs anyway, and records again.
    forced = _run(led, "--force")
    assert not _skipped(forced) and "running again: --force" in forced.stdout
    assert _skipped(_run(led))

    # A new request log line (a file grows).
    led.write_requests(DAY, [request("r-new", f"{DAY}T23:00:00.000Z")], name="router-2")
    changed = _run(led)
    assert not _skipped(changed) and "request logs changed" in changed.stdout
    assert led.query("SELECT sum(requests) FROM marts.split_billing_daily") == [(9,)]
    assert _skipped(_run(led))

    # A log rewritten in place with the same size and its old modification time.
    log = led.logs / "requests" / f"dt={DAY}" / "router-2.jsonl"
    st = log.stat()
    text = log.read_text()
    log.write_text(text.replace("r-new", "r-nex"))
    os.utime(log, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert log.stat().st_size == st.st_size
    changed = _run(led)
    assert not _skipped(changed) and "request logs changed" in changed.stdout
    assert _skipped(_run(led))

    # An invoice or statement file changes.
    invoice = next(p for p in sorted(led.invoices.rglob("*")) if p.is_file())
    invoice.write_bytes(invoice.read_bytes() + b"\n")
    changed = _run(led)
    assert not _skipped(changed) and "invoices or statements changed" in changed.stdout
    assert _skipped(_run(led))

    # The config's content changes (here only a comment: any byte counts).
    led.config.write_text(led.config.read_text() + "\n# edited\n")
    changed = _run(led)
    assert not _skipped(changed) and "config changed" in changed.stdout
    assert _skipped(_run(led))

    # The DuckDB ledger is deleted: everything is rebuilt.
    led.duckdb.unlink()
    changed = _run(led)
    assert not _skipped(changed) and "DuckDB file changed" in changed.stdout
    assert led.query("SELECT sum(requests) FROM marts.split_billing_daily") == [(9,)]
    assert _skipped(_run(led))

    # An unreadable record never skips.
    (led.duckdb.parent / ".dagster" / run_record.RECORD_NAME).write_text("{not json")
    assert not _skipped(_run(led))
    assert _skipped(_run(led))


def test_a_failed_run_leaves_no_record(quiet_day: Ledger):
    led = quiet_day
    assert not _skipped(_run(led))
    assert _skipped(_run(led))
    # A log file of garbage: the blocking rejected-rate check fails the run, which leaves no
    # record, and the same input runs (and fails) again instead of being skipped.
    bad = led.write_requests(DAY, [], name="router-9", tail="not json\n" * 50)
    assert bad.stat().st_size > 0
    failed = _run(led)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert not (led.duckdb.parent / ".dagster" / run_record.RECORD_NAME).exists()
    again = _run(led)
    assert again.returncode == 1 and "nothing changed" not in again.stdout


def test_undelivered_alerts_to_a_configured_webhook_are_retried_not_skipped(ledger: Ledger):
    """Acme's webhook (127.0.0.1:8788) is not listening here: the alerts wait in the ledger, so
    a re-run must run to retry them."""
    ledger.write_requests(DAY, acme_day_requests())
    ledger.add_invoices("acme_2026-03-02")  # cells off: a reconciliation alert to deliver
    text = ledger.config.read_text()
    assert ACME_WEBHOOK in text and 'min_impact_usd: "20"' in text
    ledger.config.write_text(text.replace('min_impact_usd: "20"', 'min_impact_usd: "0.01"'))
    first = _run(ledger)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "check alerts_delivered on marts/alerts failed" in first.stdout, first.stdout
    assert not _skipped(_run(ledger))


def _code_tree(root: Path) -> None:
    for pkg in ("pipeline", "routing_core", "byok_ledger"):
        shutil.copytree(
            REPO / pkg, root / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    shutil.copytree(REPO / "sql", root / "sql")


def test_the_code_version_follows_every_python_and_sql_file(tmp_path: Path):
    _code_tree(tmp_path)
    base = run_record.code_version(tmp_path)
    assert base == run_record.code_version(tmp_path)
    (tmp_path / "pipeline" / "loads.py").write_text(
        (tmp_path / "pipeline" / "loads.py").read_text() + "\n# changed\n"
    )
    after_py = run_record.code_version(tmp_path)
    sql = next((tmp_path / "sql").rglob("*.sql"))
    sql.write_text(sql.read_text() + "\n-- changed\n")
    after_sql = run_record.code_version(tmp_path)
    assert len({base, after_py, after_sql}) == 3


def test_a_different_code_version_or_webhook_is_a_difference(quiet_day: Ledger):
    led = quiet_day
    cfg = load_config(led.config)
    day = dt.date.fromisoformat(DAY)
    inputs = run_record.RunInputs.of(cfg, led.config, day, day)
    home = led.root / "home"
    home.mkdir()
    run_record.save(home, inputs, led.duckdb, "run-1")
    assert run_record.differences(run_record.load(home), inputs, led.duckdb) == []
    rec = run_record.load(home)
    rec["inputs"]["code"] = "0" * 64
    assert run_record.differences(rec, inputs, led.duckdb) == ["code version"]
    hooked = run_record.RunInputs.of(
        cfg, led.config, day, day, webhook_url="http://127.0.0.1:1/x?token=secret"
    )
    assert run_record.differences(run_record.load(home), hooked, led.duckdb) == ["alert webhook"]
    assert "secret" not in json.dumps(hooked.__dict__)
    tomorrow = run_record.RunInputs.of(cfg, led.config, day, day, today=dt.date(2099, 1, 1))
    assert run_record.differences(run_record.load(home), tomorrow, led.duckdb) == ["the UTC date"]
    # A record of another format is no record.
    rec["format"] = 0
    run_record.record_path(home).write_text(json.dumps(rec))
    assert run_record.load(home) is None


def test_the_recorded_webhook_is_the_one_alert_delivery_would_use(
    quiet_day: Ledger, monkeypatch: pytest.MonkeyPatch
):
    """run_record resolves the webhook without importing the alert modules; it must make the
    same choice as `resolve_webhook_url` (config URL, else the named environment variable)."""
    import hashlib

    from pipeline.alerts.evaluation import resolve_webhook_url

    cfg = load_config(quiet_day.config)
    env_cfg = cfg.model_copy(
        update={"alerts": cfg.alerts.model_copy(update={"webhook_url_env": "P2_TEST_HOOK"})}
    )
    url_cfg = cfg.model_copy(
        update={"alerts": cfg.alerts.model_copy(update={"webhook_url": "http://127.0.0.1:9/h"})}
    )
    monkeypatch.delenv("P2_TEST_HOOK", raising=False)
    for c in (cfg, env_cfg, url_cfg):
        url = resolve_webhook_url(c.alerts)[0]
        expected = hashlib.sha256(url.encode()).hexdigest() if url else "none"
        assert run_record._webhook(c, None) == expected
    monkeypatch.setenv("P2_TEST_HOOK", " http://127.0.0.1:9/from-env ")
    url = resolve_webhook_url(env_cfg.alerts)[0]
    assert url == "http://127.0.0.1:9/from-env"
    assert run_record._webhook(env_cfg, None) == hashlib.sha256(url.encode()).hexdigest()
    assert run_record._webhook(cfg, "http://x") == hashlib.sha256(b"http://x").hexdigest()


def test_the_input_fingerprint_survives_symlink_loops_and_dangling_links(tmp_path: Path):
    logs = tmp_path / "logs"
    (logs / "requests" / f"dt={DAY}").mkdir(parents=True)
    log = logs / "requests" / f"dt={DAY}" / "r.jsonl"
    log.write_text("{}\n")
    (logs / "loop").symlink_to(logs)
    (logs / "dangling").symlink_to(tmp_path / "nowhere")
    first = run_record._tree(logs)
    assert first == run_record._tree(logs)
    (logs / "dangling").unlink()
    assert run_record._tree(logs) != first  # a removed entry is a change
    assert run_record._tree(tmp_path / "missing") != run_record._tree(logs)
