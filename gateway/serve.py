"""`byok-ledger serve`: the gateway app on uvicorn (uvloop + httptools when installed),
one or more worker processes.

Each worker process builds its own router and writes its own log file (writer id
`gateway-<host>-<pid>-<random>`), so workers never share a file. With `--workers` above 1,
budgets are only shared between the workers when `router.state` is a Redis URL: the
command refuses `memory` there, because N private counters would let spend overshoot a
limit N-fold. SIGINT/SIGTERM stop accepting connections, let requests in flight finish
(up to `GRACEFUL_S`), then close the log files and connection pools.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from routing_core.config import load_config

GRACEFUL_S = 30


class ServeError(Exception):
    """A `serve` setting that cannot work (exit 2 with this message)."""


def serve(config: str | os.PathLike[str], host: str, port: int, workers: int) -> int:
    """Validate the config, then run the gateway until interrupted."""
    import uvicorn

    from gateway.app import CONFIG_ENV
    from gateway.metrics import MULTIPROC_ENV

    path = Path(config).resolve()
    cfg = load_config(path)  # a ConfigError is reported by the CLI (exit 2)
    if workers < 1 or workers > 64:
        raise ServeError("--workers must be between 1 and 64")
    if not 0 <= port <= 65535:
        raise ServeError("--port must be between 0 and 65535")
    if workers > 1 and cfg.router.state == "memory":
        raise ServeError(
            f"--workers {workers} needs shared budget state: set router.state to a Redis URL "
            f"(e.g. redis://127.0.0.1:6379/0) in {path}, or run one worker"
        )
    if cfg.router.state != "memory":
        # Reach the budget store before starting workers: a plain message instead of a
        # startup traceback from every worker.
        from routing_core.state_redis import RedisState

        try:
            RedisState(cfg.router.state, prefix=cfg.router.state_prefix).close()
        except ConnectionError as e:
            raise ServeError(str(e)) from None
    os.environ[CONFIG_ENV] = str(path)
    metrics_dir = None
    if workers > 1:
        # Workers sum their Prometheus counters through files in one folder, so any
        # worker answering /metrics reports the whole server (removed at exit).
        metrics_dir = tempfile.mkdtemp(prefix="byok-gateway-metrics-")
        os.environ[MULTIPROC_ENV] = metrics_dir
    try:
        _run(uvicorn, host, port, workers)
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _run(uvicorn: Any, host: str, port: int, workers: int) -> None:
    uvicorn.run(
        "gateway.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers if workers > 1 else None,
        loop="auto",
        # uvicorn's httptools protocol with one write per response (gateway/protocol.py);
        # an import path, so --workers processes import it themselves
        http="gateway.protocol:CoalescingHttpToolsProtocol",
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=GRACEFUL_S,
        backlog=4096,
        server_header=False,
        # no X-Forwarded-For rewriting: the gateway never reads the client address, and the
        # middleware runs on every request
        proxy_headers=False,
        date_header=False,
    )


def serve_command(args: object) -> int:
    """The CLI handler: `byok-ledger serve --config FILE [--host] [--port] [--workers]`."""
    import sys

    try:
        return serve(
            args.config,  # type: ignore[attr-defined]
            args.host,  # type: ignore[attr-defined]
            args.port,  # type: ignore[attr-defined]
            args.workers,  # type: ignore[attr-defined]
        )
    except ServeError as e:
        print(f"byok-ledger serve: {e}", file=sys.stderr)
        return 2
