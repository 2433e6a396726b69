"""Append-only JSONL request records and outcome events (docs/log-contract.md).

Layout: `<logs>/requests/dt=YYYY-MM-DD/<writer>.jsonl` and `<logs>/outcomes/dt=.../<writer>.jsonl`
(UTC day of the record's `ts`). Each process writes its own file (writer id default
`<hostname>-<pid>-<random>`), opened with O_APPEND and kept open per day; every record is
one `os.write` of one complete line, so a crash loses at most the line being written and
concurrent threads never interleave bytes. Readers skip a torn last line.

The writer takes plain dicts whose values are already JSON-ready (Decimal money as
strings, `ts` as `schema.format_ts`): the hot path is one `json.dumps` and one syscall.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from routing_core.schema import OUTCOMES_DIR, REQUESTS_DIR

_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)


def default_writer_id() -> str:
    """`<hostname>-<pid>-<random>`: unique per process, readable in a directory listing."""
    host = "".join(c if c.isalnum() or c in "-_" else "_" for c in socket.gethostname()) or "host"
    return f"{host}-{os.getpid()}-{secrets.token_hex(3)}"


class RequestLog:
    """One process's log writer. Thread-safe; one open file descriptor per (kind, day)."""

    def __init__(self, logs_dir: str | os.PathLike[str], writer_id: str | None = None):
        self.logs_dir = Path(logs_dir)
        self.writer_id = writer_id or default_writer_id()
        if "/" in self.writer_id or self.writer_id in ("", ".", ".."):
            raise ValueError(f"writer id {self.writer_id!r} must be a plain file name")
        self._fds: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def path(self, kind: str, day: str) -> Path:
        """The file records of `kind` (`requests`|`outcomes`) for UTC day `day` go to."""
        return self.logs_dir / kind / f"dt={day}" / f"{self.writer_id}.jsonl"

    def _fd(self, kind: str, day: str) -> int:
        fd = self._fds.get((kind, day))
        if fd is not None:
            return fd
        with self._lock:
            fd = self._fds.get((kind, day))
            if fd is None:
                p = self.path(kind, day)
                p.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(p, _FLAGS, 0o644)
                self._fds[(kind, day)] = fd
            return fd

    def _append(self, kind: str, record: dict[str, Any]) -> None:
        # `ts` is RFC 3339 UTC ("YYYY-MM-DDT..."): its first 10 characters are the day.
        self.write_line(kind, record["ts"][:10], json.dumps(record, separators=(",", ":")))

    def write_line(self, kind: str, day: str, line: str) -> None:
        """Append one already-encoded JSON object (no newline) to `kind`'s file of UTC
        `day` (YYYY-MM-DD): one os.write of the whole line."""
        data = (line + "\n").encode()
        fd = self._fd(kind, day)
        n = os.write(fd, data)
        while n < len(data):  # only on a full disk or a signal; finish the line
            n += os.write(fd, data[n:])

    def write_request(self, record: dict[str, Any]) -> None:
        """Append one request record (a dict in `schema.REQUEST_FIELDS` shape)."""
        self._append(REQUESTS_DIR, record)

    def write_outcome(self, event: dict[str, Any]) -> None:
        """Append one outcome event (a dict in `schema.OUTCOME_FIELDS` shape)."""
        self._append(OUTCOMES_DIR, event)

    def close(self) -> None:
        with self._lock:
            fds, self._fds = self._fds, {}
        for fd in fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> RequestLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_jsonl(
    path: str | os.PathLike[str], errors: list[str] | None = None
) -> Iterator[dict[str, Any]]:
    """Every complete record of one JSONL file. A last line without its newline (a writer
    killed mid-write) is skipped silently; any other unreadable line is skipped and, when
    `errors` is given, described there as `file:line: problem`."""
    data = Path(path).read_bytes()
    if not data:
        return
    lines = data.split(b"\n")
    torn = lines.pop()  # b"" when the file ends with a newline
    for i, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw)
        except ValueError as e:
            if errors is not None:
                errors.append(f"{path}:{i}: not JSON ({e})")
            continue
        if isinstance(rec, dict):
            yield rec
        elif errors is not None:
            errors.append(f"{path}:{i}: not a JSON object")
    del torn


def log_files(
    logs_dir: str | os.PathLike[str], kind: str = REQUESTS_DIR, days: Iterable[str] | None = None
) -> list[Path]:
    """The JSONL files of one kind, optionally only these UTC days (YYYY-MM-DD), sorted."""
    root = Path(logs_dir) / kind
    if not root.is_dir():
        return []
    if days is None:
        return sorted(root.glob("dt=*/*.jsonl"))
    out: list[Path] = []
    for d in sorted(set(days)):
        out.extend(sorted((root / f"dt={d}").glob("*.jsonl")))
    return out


def read_records(
    logs_dir: str | os.PathLike[str],
    kind: str = REQUESTS_DIR,
    days: Iterable[str] | None = None,
    errors: list[str] | None = None,
) -> Iterator[dict[str, Any]]:
    """Every complete record of one kind under a logs folder (see `read_jsonl`)."""
    for p in log_files(logs_dir, kind, days):
        yield from read_jsonl(p, errors)
