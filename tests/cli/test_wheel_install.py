"""The built wheel carries everything the product reads at run time (the SQL under sql/ and
the report templates): build it from a copy of the checkout, install it into a fresh
virtualenv (dependencies reused from this environment, nothing downloaded for them), and run
simulate -> run -> report -> export from a folder far from any checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _packages() -> list[str]:
    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    include = data["tool"]["setuptools"]["packages"]["find"]["include"]
    return sorted({p.rstrip("*") for p in include})


def _copy_checkout(dest: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "_sql", "*.egg-info")
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md"):
        shutil.copy(REPO / name, dest / name)
    (dest / "examples" / "acme").mkdir(parents=True)
    shutil.copy(REPO / "examples" / "acme" / "ledger.yaml", dest / "examples" / "acme")
    for name in [*_packages(), "sql"]:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, dest / name, ignore=ignore)


def _packaged_example(site: Path) -> str:
    return str(site / "byok_ledger" / "_examples" / "acme" / "ledger.yaml")


def _env() -> dict[str, str]:
    drop = ("DAGSTER_HOME", "BYOK_LEDGER_CONFIG", "BYOK_LEDGER_START", "PYTHONPATH")
    return {k: v for k, v in os.environ.items() if k not in drop}


def _run(cmd: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=_env(), timeout=timeout)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout}\n{proc.stderr}"
    return proc


def test_wheel_ships_sql_and_templates_and_runs_the_pipeline(tmp_path: Path):
    src = tmp_path / "src"
    src.mkdir()
    _copy_checkout(src)
    dist = tmp_path / "dist"
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(src)],
        tmp_path,
    )
    [wheel] = list(dist.glob("byok_ledger-*.whl"))

    import zipfile

    names = set(zipfile.ZipFile(wheel).namelist())
    sql_files = sorted(
        p.relative_to(REPO / "sql").as_posix() for p in (REPO / "sql").rglob("*.sql")
    )
    assert sql_files and all(f"pipeline/_sql/{f}" in names for f in sql_files)
    assert any(n.startswith("reports/templates/") for n in names)

    # A fresh virtualenv whose dependencies come from this environment's site-packages.
    fresh = tmp_path / "fresh"
    venv.EnvBuilder(with_pip=False).create(fresh)
    py = fresh / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    (site / "_deps_from_dev_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(py),
            "install",
            "--no-deps",
            "--no-index",
            "-q",
            str(wheel),
        ],
        tmp_path,
    )

    work = tmp_path / "elsewhere"
    work.mkdir()
    where = _run(
        [
            str(py),
            "-c",
            "import pipeline, pipeline.sql as s, reports; print(pipeline.__file__); print(s.SQL_DIR)",
        ],
        work,
    ).stdout.split()
    assert all(Path(p).is_relative_to(site) for p in where), where
    assert where[1].endswith("pipeline/_sql")

    assert "byok_ledger/_examples/acme/ledger.yaml" in names
    cli = str(fresh / "bin" / "byok-ledger")
    # Every subcommand's module imports from the wheel, and the default config is found.
    _run(
        [
            str(py),
            "-c",
            "import importlib; from byok_ledger.cli import HANDLERS, DEFAULT_CONFIG; "
            "[importlib.import_module(h.split(':')[0]) for h in HANDLERS.values()]; "
            "import pathlib; assert pathlib.Path(DEFAULT_CONFIG).is_file(), DEFAULT_CONFIG",
        ],
        work,
    )
    _run([cli, "check-config", _packaged_example(site)], work)
    config = work / "acme.yaml"
    shutil.copy(REPO / "examples" / "acme" / "ledger.yaml", config)
    _run(
        [
            cli,
            "simulate",
            "--config",
            str(config),
            "--out",
            "sim",
            "--start",
            "2026-10-30",
            "--days",
            "3",
            "--requests-per-day",
            "30",
            "--quiet",
        ],
        work,
    )
    run = _run([cli, "run", "--config", "sim/ledger.yaml"], work)
    assert "succeeded" in run.stdout
    report = _run([cli, "report", "--config", "sim/ledger.yaml", "--month", "2026-10"], work)
    assert Path(report.stdout.split()[0]).is_file()
    _run(
        [
            cli,
            "export",
            "--config",
            "sim/ledger.yaml",
            "--month",
            "2026-10",
            "--format",
            "focus",
            "--out",
            "oct.parquet",
        ],
        work,
    )
    assert (work / "oct.parquet").stat().st_size > 0
