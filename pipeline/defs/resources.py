"""Resources: `ledger` (the `ledger.yaml` of the active `pipeline.settings`), `duckdb` (a
`DuckDBResource` on the config's `paths.duckdb`) and `alert_delivery` (how the alert assets
deliver: by default to the config's webhook). Assets open DuckDB connections only inside
their body and close them (one writer process per DuckDB file)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_duckdb import DuckDBResource

from pipeline.settings import current, get_config
from routing_core.config import LedgerConfig


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


class AlertDeliveryResource(dg.ConfigurableResource):
    """Where and how the alert assets deliver. `webhook_url` None: the config's
    `alerts.webhook_url` or the variable `alerts.webhook_url_env` names (read at delivery)."""

    webhook_url: str | None = None
    max_attempts: int = 3
    backoff_base_s: float = 0.5


def build_resources(
    path: str | Path | None = None,
    memory_limit: str | None = None,
    alert_delivery: AlertDeliveryResource | None = None,
) -> dict[str, Any]:
    """Resources for a config file (default: the active settings' config)."""
    settings = current()
    p = Path(path).resolve() if path else settings.config_path
    cfg = get_config(p)
    return {
        "ledger": LedgerConfigResource(path=str(p)),
        "duckdb": LedgerDuckDB(
            database=str(cfg.duckdb_path),
            connection_config={
                # Bounded memory for 10M-request days; DuckDB spills beyond it.
                "memory_limit": memory_limit or settings.memory_limit,
                "preserve_insertion_order": False,
            },
        ),
        "alert_delivery": alert_delivery or AlertDeliveryResource(),
    }


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(resources=build_resources())
