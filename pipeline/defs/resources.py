"""Resources: `ledger` (the `ledger.yaml` of the active `pipeline.settings`), `duckdb` (a
`DuckDBResource` on the config's `paths.duckdb`) and `alert_delivery` (how the alert assets
deliver: by default to the config's webhook). Assets use DuckDB connections only inside their
body; a run keeps one open for all its steps (one writer process per DuckDB file)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
from dagster._utils.backoff import backoff
from dagster_duckdb import DuckDBResource
from pydantic import PrivateAttr

from pipeline.settings import current, get_config
from routing_core.config import LedgerConfig


class LedgerDuckDB(DuckDBResource):
    """`DuckDBResource` that creates the database's folder on first use (not at import) and,
    inside a run, opens the file once and hands every step the same connection (opening a
    DuckDB file costs tens of milliseconds, and a run has ~20 steps). The connection closes
    when the run's resources are torn down. Steps of one run never overlap: the ledger job
    runs in process, one step at a time (the file has one writer)."""

    _in_run: bool = PrivateAttr(default=False)
    _shared: Any = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._in_run = self.database != ":memory:"

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._shared is not None:
            self._shared.close()
            self._shared = None
        self._in_run = False

    @contextlib.contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        if self.database != ":memory:":
            Path(self.database).parent.mkdir(parents=True, exist_ok=True)
        if not self._in_run:
            with super().get_connection() as conn:
                yield conn
            return
        if self._shared is None:
            self._shared = backoff(
                fn=duckdb.connect,
                retry_on=(RuntimeError, duckdb.IOException),
                kwargs={
                    "database": self.database,
                    "read_only": False,
                    "config": {"custom_user_agent": "dagster", **self.connection_config},
                },
                max_retries=10,
            )
        conn = self._shared
        try:
            yield conn
        except BaseException:
            # A step that failed inside a transaction must not leave it open for the next.
            with contextlib.suppress(duckdb.Error):
                conn.execute("ROLLBACK")
            raise


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
