"""pipeline.sql finds the SQL in a checkout (sql/ beside the package) or, installed, in the
copy the wheel carries (pipeline/_sql/), and says what to do when neither exists."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.sql import SQL_DIR, find_sql_dir, load_sql

REPO = Path(__file__).resolve().parents[2]


def test_checkout_uses_the_repo_sql_folder():
    assert SQL_DIR == REPO / "sql"
    assert "marts.split_billing_daily" in load_sql("marts/split_billing_daily")


def test_installed_layout_uses_the_packaged_copy(tmp_path):
    pkg = tmp_path / "site-packages" / "pipeline"
    (pkg / "_sql" / "marts").mkdir(parents=True)
    assert find_sql_dir(pkg) == pkg / "_sql"


def test_checkout_wins_over_a_stale_packaged_copy(tmp_path):
    pkg = tmp_path / "pipeline"
    (pkg / "_sql" / "marts").mkdir(parents=True)
    (tmp_path / "sql" / "marts").mkdir(parents=True)
    assert find_sql_dir(pkg) == tmp_path / "sql"


def test_neither_is_a_clear_error(tmp_path):
    pkg = tmp_path / "pipeline"
    pkg.mkdir()
    with pytest.raises(FileNotFoundError, match="reinstall byok-ledger"):
        find_sql_dir(pkg)


def test_unknown_sql_name_names_the_file():
    with pytest.raises(FileNotFoundError, match="no_such_query.sql"):
        load_sql("marts/no_such_query")
