"""Every flag of every subcommand has help text; `./dev --help` lists the subcommands and
nothing else; no help text cites a spec section or a document the repository lacks."""

from __future__ import annotations

import argparse
import re
import subprocess
from pathlib import Path

import pytest

from byok_ledger.cli import HANDLERS, build_parser

REPO = Path(__file__).resolve().parents[2]


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    [action] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def test_every_subcommand_is_dispatched():
    assert set(_subparsers()) == set(HANDLERS)


@pytest.mark.parametrize("name", sorted(_subparsers()))
def test_every_flag_has_help(name):
    sub = _subparsers()[name]
    missing = [
        a.option_strings or [a.dest]
        for a in sub._actions
        if not isinstance(a, argparse._HelpAction) and not (a.help or "").strip()
    ]
    assert not missing, f"{name}: no help text for {missing}"


def _all_help() -> str:
    parser = build_parser()
    return parser.format_help() + "".join(p.format_help() for p in _subparsers().values())


def test_help_cites_no_spec_and_only_docs_that_exist():
    text = _all_help()
    assert "SPEC" not in text and "§" not in text
    for doc in re.findall(r"docs/[\w.-]+\.md", text):
        assert (REPO / doc).is_file(), f"help text points to {doc}, which the repo lacks"


def test_dev_help_lists_the_subcommands_without_a_stray_line():
    proc = subprocess.run(
        [str(REPO / "dev"), "--help"], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "set -euo pipefail" not in out and "#!/" not in out
    listed = {m for m in re.findall(r"^    ([a-z][a-z-]+)", out, re.M)}
    assert set(HANDLERS) <= listed, set(HANDLERS) - listed
    assert "./dev test" in out
