"""The pipeline's settings as one value: which `ledger.yaml`, where the daily partitions start
and end, DuckDB's memory limit. Callers pass them in (`activate(settings_for(path, ...))`)
before the Dagster definitions are imported; only a process that Dagster itself starts on the
code location (`dagster-webserver`, `dagster-daemon`, `dg dev`, a run worker) has no caller, and
for it `current()` reads them once from the environment (`BYOK_LEDGER_CONFIG`, the file
`byok-ledger ui` and docs/deploy.md set). Also a cached, validated load of the config."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, replace
from pathlib import Path

from routing_core.config import LedgerConfig, load_config

CONFIG_ENV = "BYOK_LEDGER_CONFIG"
MEMORY_ENV = "BYOK_LEDGER_MEMORY_LIMIT"
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = REPO_ROOT / "examples" / "acme" / "ledger.yaml"
DEFAULT_MEMORY_LIMIT = "1500MB"

_cache: dict[tuple[str, float], LedgerConfig] = {}
_active: PipelineSettings | None = None


@dataclass(frozen=True)
class PipelineSettings:
    """What the code location is built with (frozen: Dagster definitions are static)."""

    config_path: Path
    partition_start: dt.date
    # Partitions run up to today (UTC) plus this many days: 1 makes today's incomplete day a
    # partition, so a run can load the day so far.
    partition_end_offset: int = 1
    # DuckDB spills to disk beyond this (bounded memory for 10M-request days).
    memory_limit: str = DEFAULT_MEMORY_LIMIT

    def covers(self, start: dt.date, end: dt.date, today: dt.date | None = None) -> bool:
        """Whether every day of start..end is a partition of these settings."""
        today = today or dt.datetime.now(dt.UTC).date()
        last = today + dt.timedelta(days=self.partition_end_offset - 1)
        return self.partition_start <= start and end <= last


def get_config(path: str | Path | None = None) -> LedgerConfig:
    """Load (and cache by path and modification time) the ledger config (default: the one
    the active settings name)."""
    p = Path(path).resolve() if path else current().config_path
    key = (str(p), p.stat().st_mtime if p.exists() else 0.0)
    if key not in _cache:
        if len(_cache) > 16:  # one process rarely sees more than a couple of configs
            _cache.clear()
        _cache[key] = load_config(p)
    return _cache[key]


def first_log_day(cfg: LedgerConfig) -> dt.date | None:
    """The first UTC day with request logs (or OpenRouter generations), if any."""
    from pipeline.sources.logs import days_with_logs

    days = days_with_logs(cfg.logs_dir)
    return dt.date.fromisoformat(days[0]) if days else None


def settings_for(
    config_path: str | Path,
    start: dt.date | None = None,
    end: dt.date | None = None,
    *,
    memory_limit: str | None = None,
    today: dt.date | None = None,
) -> PipelineSettings:
    """Settings for a config, wide enough for a run over start..end.

    Partitions start at `pipeline.start_date`, or else at the first day with request logs
    (today when there are none); without `start_date`, a run that starts earlier moves the
    start back to its first day. They end today + 1 or at `end`, whichever is later."""
    path = Path(config_path).resolve()
    cfg = get_config(path)
    today = today or dt.datetime.now(dt.UTC).date()
    first = cfg.pipeline.start_date or first_log_day(cfg) or start or today
    if start is not None and cfg.pipeline.start_date is None:
        first = min(first, start)
    offset = 1 if end is None else max(1, (end - today).days + 1)
    return PipelineSettings(
        config_path=path,
        partition_start=first,
        partition_end_offset=offset,
        memory_limit=memory_limit or DEFAULT_MEMORY_LIMIT,
    )


def from_environment() -> PipelineSettings:
    """For a process Dagster starts on the code location: `$BYOK_LEDGER_CONFIG` (default the
    Acme example) and `$BYOK_LEDGER_MEMORY_LIMIT`."""
    raw = os.environ.get(CONFIG_ENV)
    path = Path(raw) if raw else DEFAULT_CONFIG
    if raw and not path.is_absolute() and not path.exists() and (REPO_ROOT / path).exists():
        path = REPO_ROOT / path
    return settings_for(path, memory_limit=os.environ.get(MEMORY_ENV) or None)


def activate(settings: PipelineSettings) -> PipelineSettings:
    """Use these settings in this process. Call before importing `pipeline.definitions`: the
    partitions are fixed when the definitions load (a later call changes only the config and
    memory limit that resources read)."""
    global _active
    _active = settings
    return settings


def current() -> PipelineSettings:
    """The active settings (from the environment, once, when no caller activated any)."""
    global _active
    if _active is None:
        _active = from_environment()
    return _active


def with_config(settings: PipelineSettings, config_path: str | Path) -> PipelineSettings:
    """The same partitions on another config file (tests, benchmarks)."""
    return replace(settings, config_path=Path(config_path).resolve())
