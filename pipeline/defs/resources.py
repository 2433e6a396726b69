"""Resources: `ledger` (the `ledger.yaml`, path from `BYOK_LEDGER_CONFIG`, default the Acme
example) and `duckdb` (a `DuckDBResource` on the config's `paths.duckdb`). Assets open DuckDB
connections only inside their body and close them (one writer process per DuckDB file)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_duckdb import DuckDBResource

from pipeline.settings import config_path, get_config
from routing_core.config import LedgerConfig

MEMORY_ENV = "BYOK_LEDGER_MEMORY_LIMIT"


class LedgerDuckDB(DuckDBResource):
    """`DuckDBResource` that creates the database's folder on first use (not at import)."""

    @contextlib.contextmanager
    def get_connection(self):
        if self.database != ":memory:":
            Path(self.database).parent.mkdir(parents=True, exist_ok=True)
        with super().get_connection() as conn:
            yield conn


class LedgerConfigResource(dg.ConfigurableResource):
    """The validated `ledger.yaml` the pipeline runs with."""

    path: str

    def config(self) -> LedgerConfig:
        return get_config(self.path)


def build_resources(path: str | Path | None = None) -> dict[str, Any]:
    """Resources for a config file (default: `$BYOK_LEDGER_CONFIG` or the Acme example)."""
    p = Path(path).resolve() if path else config_path()
    cfg = get_config(p)
    return {
        "ledger": LedgerConfigResource(path=str(p)),
        "duckdb": LedgerDuckDB(
            database=str(cfg.duckdb_path),
            connection_config={
                # Bounded memory for 10M-request days; DuckDB spills beyond it.
                "memory_limit": os.environ.get(MEMORY_ENV) or "1500MB",
                "preserve_insertion_order": False,
            },
        ),
    }


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources=build_resources())
