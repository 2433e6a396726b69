"""Helpers for the simulator tests: small simulation runs, manifest and log readers, acme
config variants (imported by the test modules; pyproject.toml puts this folder on pytest's pythonpath)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from routing_core.config import LedgerConfig, _DecimalLoader, parse_config
from simulator.run import run_simulation

ROOT = Path(__file__).resolve().parents[2]
ACME = ROOT / "examples" / "acme" / "ledger.yaml"


def small_run(out: Path, **kw: Any):
    args = dict(days=3, requests_per_day=60, seed=11, progress=False)
    args.update(kw)
    return run_simulation(ACME, out, **args)


def manifest(result) -> dict[str, Any]:
    return json.loads(result.manifest_path.read_text(), parse_float=Decimal)


def acme_data() -> dict[str, Any]:
    return yaml.load(ACME.read_text(), Loader=_DecimalLoader)  # noqa: S506


def config_from(data: dict[str, Any]) -> LedgerConfig:
    return parse_config(data)


def log_lines(logs: Path, kind: str = "requests") -> list[tuple[Path, int, bytes]]:
    out = []
    for p in sorted((logs / kind).glob("dt=*/*.jsonl")):
        for i, raw in enumerate(p.read_bytes().split(b"\n"), start=1):
            if raw:
                out.append((p, i, raw))
    return out
