"""Test kit for the gateway: a small config whose providers are loopback fakes, written to a
real ledger.yaml, and the real `byok-ledger serve` started on a free port in a subprocess."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from routing_core.config import LedgerConfig, parse_config
from routing_core.request_log import read_records
from routing_core.schema import RequestRecord

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable

SECRETS = {
    "app": "sk-gw-app-3b1f0c",
    "lim": "sk-gw-lim-9d2e11",
    "guard": "sk-gw-guard-77aa01",
    "strict": "sk-gw-strict-5c5c5c",
    "pool": "sk-gw-pool-123abc",
}


def sha(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


BASE: dict[str, Any] = {
    "providers": [
        {
            "id": "p1",
            "api": "openai",
            "base_url": "http://127.0.0.1:9/v1",
            "invoice_format": "focus",
            "timeout_s": 2,
        },
        {
            "id": "p2",
            "api": "anthropic",
            "base_url": "http://127.0.0.1:9",
            "invoice_format": "focus",
            "timeout_s": 2,
        },
    ],
    "models": [
        {
            "id": "m/a",
            "endpoints": [
                {
                    "provider": "p1",
                    "upstream_model": "a-1",
                    "price": {"input": "1", "output": "2"},
                    "supports": ["tools"],
                },
                {
                    "provider": "p2",
                    "upstream_model": "a-2",
                    "price": {"input": "1", "output": "3"},
                    "zdr": True,
                    "supports": ["tools"],
                },
            ],
        },
        {
            "id": "m/b",
            "endpoints": [
                {
                    "provider": "p1",
                    "upstream_model": "b-1",
                    "price": {"input": "0.5", "output": "1"},
                }
            ],
        },
        {
            "id": "m/c",
            "endpoints": [
                {"provider": "p2", "upstream_model": "c-2", "price": {"input": "2", "output": "4"}}
            ],
        },
    ],
    "shared_capacity": {"providers": ["p1", "p2"]},
    "byok_keys": [
        {"id": "k1", "provider": "p1", "secret_env": "GWT_K1", "order": 1},
        {"id": "k2", "provider": "p2", "secret_env": "GWT_K2", "order": 1},
    ],
    "guardrails": [{"id": "only-b", "allowed_models": ["m/b"]}],
    "members": [{"id": "alice"}, {"id": "bob"}],
    "api_keys": [
        {"id": "app", "secret_sha256": sha(SECRETS["app"]), "environment": "prod", "app": "t"},
        {
            "id": "lim",
            "secret_sha256": sha(SECRETS["lim"]),
            "environment": "prod",
            "app": "t",
            "limit": {"usd": "0.000001", "reset": "monthly", "include_byok": True},
        },
        {
            "id": "guard",
            "secret_sha256": sha(SECRETS["guard"]),
            "environment": "prod",
            "app": "t",
            "guardrail": "only-b",
        },
        {
            "id": "strict",
            "secret_sha256": sha(SECRETS["strict"]),
            "environment": "prod",
            "app": "legal",
        },
        {
            "id": "pool",
            "secret_sha256": sha(SECRETS["pool"]),
            "environment": "prod",
            "app": "t",
            "limit": {"usd": "0.5", "reset": "monthly", "include_byok": True},
        },
    ],
    "workloads": [
        {"id": "w", "max_attempts": 4, "deadline_s": 30},
        {"id": "legal", "byok": "strict", "zdr": "required", "max_attempts": 4, "deadline_s": 30},
    ],
}


def config_data(**overrides: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    for k, v in overrides.items():
        data[k] = copy.deepcopy(v)
    return data


def write_config(
    folder: Path, base_urls: dict[str, str], router: dict[str, Any] | None = None, **overrides: Any
) -> tuple[Path, LedgerConfig]:
    """A ledger.yaml under `folder` whose providers point at `base_urls`."""
    data = config_data(**overrides)
    for p in data["providers"]:
        if p["id"] in base_urls:
            p["base_url"] = base_urls[p["id"]]
    data["paths"] = {
        "logs": "logs",
        "invoices": "invoices",
        "duckdb": "ledger.duckdb",
        "reports": "reports",
    }
    if router:
        data["router"] = router
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "ledger.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path, parse_config(copy.deepcopy(data))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`byok-ledger serve` in a subprocess."""

    def __init__(self, config: Path, env: dict[str, str], workers: int = 1) -> None:
        self.config = config
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.stderr_path = config.parent / f"serve-{self.port}.stderr"
        self._stderr = self.stderr_path.open("wb")
        self.proc = subprocess.Popen(
            [
                PY,
                "-m",
                "byok_ledger.cli",
                "serve",
                "--config",
                str(config),
                "--port",
                str(self.port),
                "--workers",
                str(workers),
            ],
            cwd=ROOT,
            env=full_env,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
            start_new_session=True,
        )
        self._wait_ready()

    def _wait_ready(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited early: {self.stderr()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/readyz", timeout=1.0).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"serve not ready after {timeout_s}s: {self.stderr()}")

    def stderr(self) -> str:
        if not self._stderr.closed:
            self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")[-4000:]

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self._stderr.close()
        return self.proc.returncode


def records(logs: Path) -> list[dict]:
    """Every request record under `logs`, each validated against the log contract."""
    out = list(read_records(logs))
    for rec in out:
        RequestRecord.model_validate(rec)
    return out


def record_of(logs: Path, request_id: str, wait_s: float = 5.0) -> dict:
    """The one record with this request id (waits for the writer briefly)."""
    deadline = time.monotonic() + wait_s
    while True:
        found = [r for r in records(logs) if r["request_id"] == request_id]
        if found or time.monotonic() > deadline:
            assert len(found) == 1, f"{len(found)} records for {request_id}"
            return found[0]
        time.sleep(0.05)


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))
