"""`simulate` / `demo --out`: never delete or overwrite data they did not create.

`simulate --out DIR` used to delete an existing logs/, invoices/ and DuckDB file in DIR without
asking, and with `--out ../x` it deleted first and then failed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from simulator.out_dir import MARKER, OutDirError, prepare_out_dir

ACME = Path(__file__).resolve().parents[2] / "examples" / "acme" / "ledger.yaml"


def _simulate(out: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "byok_ledger.cli", "simulate", "--config", str(ACME), "--out", out,
         "--days", "1", "--requests-per-day", "20"],
        cwd=cwd, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_a_folder_with_someone_elses_data_is_refused_and_left_untouched(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    precious = tmp_path / "logs" / "prod.jsonl"
    precious.write_text("a line someone needs\n")
    (tmp_path / "ledger.duckdb").write_bytes(b"not ours")
    with pytest.raises(OutDirError) as e:
        prepare_out_dir(tmp_path)
    assert "not empty" in str(e.value) and "never deletes data it did not create" in str(e.value)
    assert precious.read_text() == "a line someone needs\n"
    assert (tmp_path / "ledger.duckdb").read_bytes() == b"not ours"
    assert not (tmp_path / MARKER).exists()


def test_our_folder_with_a_foreign_file_is_refused(tmp_path: Path) -> None:
    prepare_out_dir(tmp_path)
    (tmp_path / "logs").mkdir()
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(OutDirError) as e:
        prepare_out_dir(tmp_path)
    assert "notes.txt" in str(e.value)
    assert (tmp_path / "logs").is_dir(), "nothing is removed when the folder is refused"


def test_a_rerun_replaces_only_what_it_wrote_and_keeps_reports(tmp_path: Path) -> None:
    prepare_out_dir(tmp_path)
    (tmp_path / "logs" / "requests").mkdir(parents=True)
    (tmp_path / "logs" / "requests" / "old.jsonl").write_text("{}\n")
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "2026-11.html").write_text("<html>")
    prepare_out_dir(tmp_path)
    assert not (tmp_path / "logs").exists()
    assert (tmp_path / "reports" / "2026-11.html").read_text() == "<html>"
    assert (tmp_path / MARKER).is_file()


def test_a_symlinked_logs_folder_is_unlinked_never_emptied(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.jsonl").write_text("{}\n")
    out = tmp_path / "out"
    prepare_out_dir(out)
    (out / "logs").symlink_to(elsewhere, target_is_directory=True)
    prepare_out_dir(out)
    assert not (out / "logs").exists()
    assert (elsewhere / "keep.jsonl").read_text() == "{}\n"


def test_a_file_is_not_a_folder(tmp_path: Path) -> None:
    f = tmp_path / "x"
    f.write_text("data")
    with pytest.raises(OutDirError, match="is a file"):
        prepare_out_dir(f)
    assert f.read_text() == "data"


def test_cli_refuses_with_exit_2_and_a_relative_out_works(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "thesis.tex").write_text("years of work")
    r = _simulate("../busy", work)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "did not create" in r.stderr and "Traceback" not in r.stderr
    assert (busy / "thesis.tex").read_text() == "years of work"
    assert sorted(os.listdir(busy)) == ["thesis.tex"]

    r = _simulate("../fresh", work)
    assert r.returncode == 0, r.stdout + r.stderr
    fresh = tmp_path / "fresh"
    assert (fresh / MARKER).is_file() and (fresh / "ledger.yaml").is_file()
    assert any((fresh / "logs" / "requests").rglob("*.jsonl"))
    r = _simulate("../fresh", work)  # its own folder: re-running is fine
    assert r.returncode == 0, r.stdout + r.stderr
