"""The project's docs stand alone: README.md, docs/*.md, every --help text and every
user-facing string in the packages never cite the internal specification ("SPEC", "§") and
never point to a file the repository does not have; docs/marts.md documents every mart."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from byok_ledger.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
PACKAGES = ["byok_ledger", "pipeline", "routing_core", "simulator", "reports", "gateway"]
SPEC_REF = re.compile(r"\bSPEC\b|§")
# In code (benchmarks), SPEC can be an ordinary word (an argparse metavar): only citations count.
SPEC_CITATION = re.compile(r"\bSPEC\s*§|§|SPEC\.md|\bSPEC's\b|\(SPEC\b")
# Repository paths written in prose or code spans: docs/x.md, bench/x.py, sql/a/b.sql, ...
REPO_PATH = re.compile(
    r"(?<![\w/.-])((?:docs|bench|sql|examples|tests|pipeline|routing_core|simulator|reports|"
    r"byok_ledger|gateway)/[\w./-]*\.(?:md|py|sql|yaml|yml|j2|html|toml))\b"
)
MD_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _lines(path: Path):
    yield from enumerate(path.read_text(encoding="utf-8").splitlines(), 1)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_docs_cite_no_spec(doc: Path):
    hits = [f"{doc.name}:{n}: {line.strip()}" for n, line in _lines(doc) if SPEC_REF.search(line)]
    assert not hits, "docs must explain, not cite the spec:\n" + "\n".join(hits)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_docs_point_only_to_files_the_repo_has(doc: Path):
    missing = []
    for n, line in _lines(doc):
        for target in MD_LINK.findall(line):
            if re.match(r"^[a-z]+:", target) or target.startswith("#"):
                continue  # a web address or an anchor in the same page
            path = (doc.parent / target.split("#", 1)[0]).resolve()
            if not path.exists():
                missing.append(f"{doc.name}:{n}: link to {target}")
        for target in REPO_PATH.findall(line):
            if "*" in target or "YYYY" in target or "<" in target:
                continue
            if not (REPO / target).exists() and not (doc.parent / target).exists():
                missing.append(f"{doc.name}:{n}: {target}")
    assert not missing, "docs point to files the repo does not have:\n" + "\n".join(missing)


def test_help_texts_cite_no_spec():
    parser = build_parser()
    texts = [parser.format_help()]
    for action in parser._actions:
        for sub in getattr(action, "choices", None) or {}:
            texts.append(action.choices[sub].format_help())
    hits = [t for t in texts if SPEC_REF.search(t)]
    assert not hits, hits[0] if hits else ""


def _user_strings(path: Path):
    """String constants that are not docstrings (messages, help texts, report text). Under
    pipeline/defs/ docstrings count too: Dagster shows them as asset and check descriptions."""
    ui = path.is_relative_to(REPO / "pipeline" / "defs")
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and (ui or id(node) not in docstrings)
        ):
            yield node.lineno, node.value


def test_user_facing_strings_cite_no_spec():
    hits = []
    for pkg in PACKAGES:
        for path in sorted((REPO / pkg).rglob("*.py")) if (REPO / pkg).is_dir() else []:
            for line, text in _user_strings(path):
                if SPEC_REF.search(text):
                    hits.append(f"{path.relative_to(REPO)}:{line}: {text[:80]!r}")
    templates = sorted((REPO / "reports" / "templates").glob("*"))
    for path in templates:
        for n, line in _lines(path):
            if SPEC_REF.search(line):
                hits.append(f"{path.relative_to(REPO)}:{n}")
    assert not hits, "user-facing strings cite the spec:\n" + "\n".join(hits)


def test_example_configs_and_benchmarks_cite_no_spec():
    files = sorted((REPO / "examples").rglob("*.yaml")) + sorted((REPO / "bench").glob("*.py"))
    hits = [
        f"{path.relative_to(REPO)}:{n}"
        for path in files
        for n, line in _lines(path)
        if SPEC_CITATION.search(line)
    ]
    assert not hits, "cites the spec: " + ", ".join(hits)


def test_marts_doc_covers_every_mart():
    created = set()
    for path in (REPO / "sql").rglob("*.sql"):
        created |= set(
            re.findall(
                r"CREATE (?:OR REPLACE )?TABLE (?:IF NOT EXISTS )?marts\.(\w+)",
                path.read_text(),
                re.I,
            )
        )
    assert {"split_billing_daily", "alerts", "budget_status", "non_usage_charges"} <= created
    text = (REPO / "docs" / "marts.md").read_text(encoding="utf-8")
    headed = set(re.findall(r"^## `marts\.(\w+)`", text, re.M))
    assert created <= headed, f"docs/marts.md has no section for {sorted(created - headed)}"
