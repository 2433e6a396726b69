"""The record of the last successful `byok-ledger run`, so that a re-run with nothing new can say
so and exit without launching Dagster.

After a run succeeds (no failed blocking check, and no alert left waiting for a webhook that
is configured), `<instance folder>/byok-ledger-last-run.json` keeps what the run read and
wrote. The next run compares, before importing Dagster:

- the days asked for (after defaulting to the days in the logs), and today's UTC date
  (budget status and forecasts depend on the calendar);
- the config file's bytes (sha256);
- the code: the sha256 of every `.py` and `.sql` file of the packages the run executes, and the
  versions of Python, Dagster, DuckDB, pydantic and PyYAML;
- every file under `paths.logs` and `paths.invoices` (statements included): its path, size,
  modification time, change time and inode. The change time (ctime) cannot be set back by a
  program, so a file rewritten in place with the same size and a restored mtime still counts as
  changed;
- the webhook URL alerts go to (as a sha256, never the URL: it may hold a token);
- the DuckDB file as the run left it (size, modification time, inode): a deleted, replaced or
  otherwise modified ledger forces a run.

Any difference forces a real run, and the run first deletes the record, so a run that crashes
or fails leaves none. `--force` runs regardless. The record holds no secret: paths, sizes,
times and hashes only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from routing_core.config import LedgerConfig

RECORD_NAME = "byok-ledger-last-run.json"
FORMAT = 1
_REPO = Path(__file__).resolve().parent.parent
_CODE_PACKAGES = ("pipeline", "routing_core", "byok_ledger")
_DISTRIBUTIONS = ("dagster", "dagster-duckdb", "duckdb", "pydantic", "pyyaml")


def code_version(repo: Path = _REPO) -> str:
    """A sha256 over every `.py`/`.sql` file of the packages a run executes under `repo` (the
    checkout's `sql/` folder too; a wheel carries it inside `pipeline/`) and the versions of
    the libraries the results depend on."""
    h = hashlib.sha256()
    h.update(sys.version.encode())
    for dist in _DISTRIBUTIONS:
        try:
            version = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            version = "-"
        h.update(f"\0{dist}={version}".encode())
    roots = [repo / p for p in (*_CODE_PACKAGES, "sql")]
    for root in (r for r in roots if r.is_dir()):
        files = sorted(
            p for ext in ("*.py", "*.sql") for p in root.rglob(ext) if "__pycache__" not in p.parts
        )
        for f in files:
            h.update(f"\0{f.relative_to(root.parent)}\0".encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def _tree(root: Path) -> str:
    """A sha256 of every file under `root` by path, size, mtime, ctime and inode (or that
    `root` is missing). Reads no file contents: cheap for a year of logs."""
    h = hashlib.sha256()
    if not root.is_dir():
        h.update(b"missing" if not root.exists() else b"not a folder")
        return h.hexdigest()
    stack = [root]
    seen: set[tuple[int, int]] = set()  # folders by (device, inode): a symlink loop ends
    entries: list[str] = []
    while stack:
        folder = stack.pop()
        try:
            st = folder.stat()
        except OSError:  # removed meanwhile
            entries.append(f"{folder.relative_to(root)}\0gone")
            continue
        if (st.st_dev, st.st_ino) in seen:
            continue
        seen.add((st.st_dev, st.st_ino))
        try:
            it = os.scandir(folder)
        except OSError as err:  # unreadable: recorded as such (the run itself will say why)
            entries.append(f"{folder.relative_to(root)}\0unreadable {err.errno}")
            continue
        with it:
            for e in it:
                if e.is_dir(follow_symlinks=True):
                    stack.append(Path(e.path))
                    continue
                try:
                    st = os.stat(e.path)
                except OSError:  # a dangling link or a file removed meanwhile: still a change
                    entries.append(f"{Path(e.path).relative_to(root)}\0gone")
                    continue
                entries.append(
                    f"{Path(e.path).relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}"
                    f"\0{st.st_ctime_ns}\0{st.st_ino}"
                )
    for line in sorted(entries):
        h.update(line.encode("utf-8", "surrogateescape") + b"\n")
    return h.hexdigest()


def _file_state(path: Path) -> str:
    """Size, mtime and inode of a file (DuckDB's ledger), or "missing"."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return "missing"
    wal = path.with_name(path.name + ".wal")
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}:wal={wal.exists()}"


def _webhook(cfg: LedgerConfig, override: str | None) -> str:
    """The sha256 of the URL alerts would be delivered to, or "none". The same choice as
    `pipeline.alerts.evaluation.resolve_webhook_url`, without importing the alert modules
    (0.5 s of a re-run that does nothing else)."""
    alerts = cfg.alerts
    url = override or alerts.webhook_url
    if not url and alerts.webhook_url_env:
        url = os.environ.get(alerts.webhook_url_env, "").strip() or None
    return hashlib.sha256(url.encode()).hexdigest() if url else "none"


@dataclass(frozen=True)
class RunInputs:
    """Everything a run's result depends on, as comparable strings (see the module text)."""

    start: str
    end: str
    today: str
    config: str
    code: str
    logs: str
    invoices: str
    webhook: str

    @classmethod
    def of(
        cls,
        cfg: LedgerConfig,
        config_file: Path,
        start: dt.date,
        end: dt.date,
        *,
        webhook_url: str | None = None,
        today: dt.date | None = None,
    ) -> RunInputs:
        today = today or dt.datetime.now(dt.UTC).date()
        return cls(
            start=start.isoformat(),
            end=end.isoformat(),
            today=today.isoformat(),
            config=hashlib.sha256(config_file.read_bytes()).hexdigest(),
            code=code_version(),
            logs=_tree(cfg.logs_dir),
            invoices=_tree(cfg.invoices_dir),
            webhook=_webhook(cfg, webhook_url),
        )


# What each field is called when it differs (the line a forced run prints).
_LABELS = {
    "start": "days",
    "end": "days",
    "today": "the UTC date",
    "config": "config",
    "code": "code version",
    "logs": "request logs",
    "invoices": "invoices or statements",
    "webhook": "alert webhook",
    "duckdb": "DuckDB file",
}


def record_path(home: Path) -> Path:
    return home / RECORD_NAME


def load(home: Path) -> dict[str, Any] | None:
    """The last successful run's record, or None (missing, unreadable or another format: a
    record that cannot be read never skips a run)."""
    try:
        data = json.loads(record_path(home).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return None
    return data


def differences(record: dict[str, Any] | None, inputs: RunInputs, duckdb_path: Path) -> list[str]:
    """What changed since the record (in words, each once); empty: nothing did."""
    if record is None:
        return ["no successful run recorded"]
    now = {**inputs.__dict__, "duckdb": _file_state(duckdb_path)}
    was = record.get("inputs")
    if not isinstance(was, dict):
        return ["no successful run recorded"]
    changed: list[str] = []
    for key, value in now.items():
        if was.get(key) != value and _LABELS[key] not in changed:
            changed.append(_LABELS[key])
    return changed


def forget(home: Path) -> None:
    """Delete the record (a run is starting: until it succeeds, nothing may be skipped)."""
    record_path(home).unlink(missing_ok=True)


def save(home: Path, inputs: RunInputs, duckdb_path: Path, run_id: str) -> None:
    """Write the record of a successful run (atomically: a reader sees the old or the new)."""
    data = {
        "format": FORMAT,
        "run_id": run_id,
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "inputs": {**inputs.__dict__, "duckdb": _file_state(duckdb_path)},
    }
    path = record_path(home)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)
