"""`byok-ledger ui` as a typed function: the Dagster UI (dagster-webserver) on the same instance
that `byok-ledger run`, `demo` and the schedule use, with the code location `byok_ledger`
loaded for the given `ledger.yaml`. Optionally the Dagster daemon beside it (it runs the
schedule). Both are child processes; Ctrl-C (or SIGTERM) stops them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from pipeline.instance import LOCATION_NAME, prepare_instance, write_workspace
from pipeline.settings import CONFIG_ENV
from routing_core.config import load_config

# The folder holding the `pipeline` package: the code location's working directory.
CODE_ROOT = Path(__file__).resolve().parent.parent


def ui_command(workspace: Path, host: str, port: int) -> list[str]:
    """The dagster-webserver command line for a workspace file."""
    return [
        sys.executable,
        "-m",
        "dagster_webserver",
        "-w",
        str(workspace),
        "-h",
        host,
        "-p",
        str(port),
    ]


def daemon_command(workspace: Path) -> list[str]:
    """The dagster-daemon command line for a workspace file (runs schedules and sensors)."""
    return [sys.executable, "-m", "dagster._daemon", "run", "-w", str(workspace)]


def serve_ui(
    config_file: str | Path,
    host: str = "127.0.0.1",
    port: int = 3000,
    *,
    daemon: bool = False,
) -> int:
    """Run the UI (and the daemon when asked) until interrupted; return an exit code."""
    path = Path(config_file).resolve()
    cfg = load_config(path)  # a ConfigError is reported by byok_ledger.cli.main
    if not 1 <= port <= 65535:
        print(f"byok-ledger ui: --port {port} is not a TCP port (1-65535)", file=sys.stderr)
        return 2
    home = prepare_instance(cfg)
    workspace = write_workspace(home, CODE_ROOT)
    env = {**os.environ, "DAGSTER_HOME": str(home), CONFIG_ENV: str(path)}
    shown = f"[{host}]" if ":" in host else host
    print(
        f"byok-ledger ui: Dagster UI on http://{shown}:{port}  (code location {LOCATION_NAME})\n"
        f"  config   {path}\n  instance {home}\n"
        + ("  daemon   running (schedules and sensors)\n" if daemon else "")
        + "  Ctrl-C stops it",
        flush=True,
    )
    procs = [subprocess.Popen(ui_command(workspace, host, port), env=env, cwd=CODE_ROOT)]
    if daemon:
        procs.append(subprocess.Popen(daemon_command(workspace), env=env, cwd=CODE_ROOT))

    def _stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        while all(p.poll() is None for p in procs):
            time.sleep(0.2)
        code = next(p.returncode for p in procs if p.returncode is not None)
        print(f"byok-ledger ui: a Dagster process exited with status {code}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
