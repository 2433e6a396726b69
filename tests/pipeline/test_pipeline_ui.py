"""`byok-ledger ui` as the README runs it: the Dagster UI on the instance `byok-ledger run` wrote,
serving the `byok_ledger` code location over HTTP on loopback, the run's history visible, and
partitions starting at the first day with logs (or `pipeline.start_date`). Bounded in time; the
UI and its code server are stopped at the end."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from pipeline_testkit import REPO, Ledger

QUERY = """
{
  repositoriesOrError { ... on RepositoryConnection { nodes { name location { name } } } }
  runsOrError { ... on Runs { results { runId status } } }
  assetNodes { assetKey { path } }
  assetNodeOrError(assetKey: {path: ["staging", "requests"]}) { ... on AssetNode { partitionKeys } }
  instance { daemonHealth { daemonStatus(daemonType: "SCHEDULER") { healthy } } }
  schedulesOrError(repositorySelector: {repositoryLocationName: "byok_ledger",
                                        repositoryName: "__repository__"}) {
    ... on Schedules { results { name } }
  }
}
"""


def _env() -> dict[str, str]:
    drop = ("DAGSTER_HOME", "BYOK_LEDGER_CONFIG")
    return {k: v for k, v in os.environ.items() if k not in drop}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _graphql(port: int) -> dict:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": QUERY}).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())["data"]


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "byok_ledger.cli", *args]


def test_ui_serves_the_runs_history_and_assets_of_the_config(acme_day: Ledger) -> None:
    text = acme_day.config.read_text()
    acme_day.config.write_text(text.replace("pipeline:\n", "pipeline:\n  start_date: 2026-02-27\n"))
    run = subprocess.run(
        _cli("run", "--config", str(acme_day.config)),
        capture_output=True,
        text=True,
        env=_env(),
        cwd=REPO,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    run_id = next(ln.split()[1] for ln in run.stdout.splitlines() if ln.startswith("run "))

    port = _free_port()
    log = acme_day.root / "ui.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            _cli("ui", "--config", str(acme_day.config), "--port", str(port), "--daemon"),
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_env(),
            cwd=acme_day.root,  # any folder: the README's command must not depend on it
        )
    try:
        data = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            try:
                data = _graphql(port)
                scheduler = data["instance"]["daemonHealth"]["daemonStatus"]["healthy"]
                if data["assetNodes"] and scheduler:
                    break
            except OSError:
                pass
            time.sleep(1)
        assert data and data["assetNodes"], log.read_text()
        # --daemon: the scheduler daemon runs beside the UI, on the same instance.
        assert data["instance"]["daemonHealth"]["daemonStatus"]["healthy"], log.read_text()
        [repo] = data["repositoriesOrError"]["nodes"]
        assert repo["location"]["name"] == "byok_ledger"
        keys = {"/".join(n["assetKey"]["path"]) for n in data["assetNodes"]}
        assert {"staging/requests", "marts/split_billing_daily", "marts/alerts"} <= keys
        runs = {r["runId"]: r["status"] for r in data["runsOrError"]["results"]}
        assert runs.get(run_id) == "SUCCESS", runs
        partitions = data["assetNodeOrError"]["partitionKeys"]
        assert partitions[0] == "2026-02-27"  # pipeline.start_date, not 2026-01-01
        schedules = {s["name"] for s in data["schedulesOrError"]["results"]}
        assert schedules == {"ledger_daily_schedule"}
        home = acme_day.duckdb.parent / ".dagster"
        assert (home / "workspace.yaml").is_file()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert code == 0, log.read_text()
    # The UI, its code server and the daemon are gone too (nothing serves the port).
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0


def test_ui_partitions_start_at_the_first_day_with_logs(acme_day: Ledger, tmp_path: Path) -> None:
    """Without pipeline.start_date the code location (as Dagster loads it for the UI, the
    daemon and run workers) starts its partitions at the first day with request logs."""
    code = (
        "from pipeline.defs.partitions import daily_partitions as p; "
        "print(p.start.date(), p.timezone)"
    )
    env = {**_env(), "BYOK_LEDGER_CONFIG": str(acme_day.config)}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["2026-03-02", "UTC"]


def test_ui_refuses_a_bad_port_and_a_missing_config(tmp_path: Path) -> None:
    proc = subprocess.run(
        _cli("ui", "--config", str(tmp_path / "nope.yaml")),
        capture_output=True,
        text=True,
        env=_env(),
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 2 and "nope.yaml" in proc.stderr
    led = Ledger(tmp_path)
    proc = subprocess.run(
        _cli("ui", "--config", str(led.config), "--port", "70000"),
        capture_output=True,
        text=True,
        env=_env(),
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 2 and "--port 70000" in proc.stderr
