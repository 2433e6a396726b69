"""Real headless Chromium (Debian's package) for the report tests: run it on a page, find
script errors. A missing Chromium FAILS the calling test (never skips): install it."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
]


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        exe = shutil.which(name) or (
            f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None
        )
        if exe:
            return exe
    pytest.fail(
        "Chromium is not installed, so the report cannot be checked in a real browser: "
        "install Debian's package (apt-get install -y chromium); .ci/run does this."
    )


def run_chromium(tmp: Path, page: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    return subprocess.run(
        [chromium(), *FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )


RENDERED = re.compile(r'id="render-check"[^>]*>render-check: ok<')


def script_errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "Uncaught" in line]
