"""The Dagster instance of a ledger: one folder that `byok-ledger run`, `demo`, `ui` and the
schedule's daemon share, so the UI shows every run's history.

Where: `$DAGSTER_HOME` when set (a deployment's choice, e.g. a PostgreSQL `dagster.yaml`), else
`<folder of paths.duckdb>/.dagster`. A missing `dagster.yaml` there is written with the local
defaults (SQLite storage inside the folder, telemetry off, one run at a time), and
`workspace.yaml` names the code location `byok_ledger`."""

from __future__ import annotations

import os
from pathlib import Path

from routing_core.config import LedgerConfig

LOCATION_NAME = "byok_ledger"

# Same settings as the repository's dagster.yaml (tests/pipeline/test_pipeline_defs.py keeps
# them equal); written here so an installed package needs no file from the repository.
DEFAULT_INSTANCE_YAML = """\
# Dagster instance for byok-ledger, written by byok-ledger (run, demo, ui) when missing.
# Storage: SQLite files in this folder (one machine). For PostgreSQL see docs/deploy.md.
telemetry:
  enabled: false
retention:
  schedule:
    purge_after_days: 90
# The DuckDB ledger file has one writer: one pipeline run at a time.
run_queue:
  max_concurrent_runs: 1
"""


def instance_dir(cfg: LedgerConfig) -> Path:
    """`$DAGSTER_HOME`, or `.dagster` beside the config's DuckDB file."""
    home = os.environ.get("DAGSTER_HOME")
    return Path(home).resolve() if home else (cfg.duckdb_path.parent / ".dagster").resolve()


def prepare_instance(cfg: LedgerConfig) -> Path:
    """Create the instance folder and its `dagster.yaml` if missing; return the folder.
    An existing `dagster.yaml` (e.g. PostgreSQL storage) is never overwritten."""
    home = instance_dir(cfg)
    home.mkdir(parents=True, exist_ok=True)
    yaml_file = home / "dagster.yaml"
    if not yaml_file.exists():
        tmp = yaml_file.with_suffix(".yaml.tmp")
        tmp.write_text(DEFAULT_INSTANCE_YAML)
        tmp.replace(yaml_file)
    return home


def workspace_yaml(working_directory: Path) -> str:
    """A workspace loading `pipeline.definitions` as the `byok_ledger` code location."""
    return (
        "load_from:\n"
        "  - python_module:\n"
        "      module_name: pipeline.definitions\n"
        "      attribute: defs\n"
        f"      location_name: {LOCATION_NAME}\n"
        f"      working_directory: {_yaml_str(str(working_directory))}\n"
    )


def write_workspace(home: Path, working_directory: Path) -> Path:
    """Write `<home>/workspace.yaml` (always: it follows the installed code)."""
    path = home / "workspace.yaml"
    path.write_text(workspace_yaml(working_directory))
    return path


def _yaml_str(text: str) -> str:
    """A double-quoted YAML scalar (paths may hold spaces, colons or quotes)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
