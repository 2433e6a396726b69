"""Hostile config files: every number finite and in range, YAML aliases bounded, unreadable
files refused, each with exit 2 and a message that names the place, never a traceback.

A price of 1e400 used to pass check-config and then crash the router when it priced a request;
a 'billion laughs' file hung check-config; a non-UTF-8 byte gave a traceback and exit 1."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from routing_core.config import ConfigError, load_config

ACME = Path(__file__).resolve().parents[2] / "examples" / "acme" / "ledger.yaml"
ACME_TEXT = ACME.read_text(encoding="utf-8")


def _acme_with(old: str, new: str) -> str:
    assert ACME_TEXT.count(old) >= 1, f"the example no longer contains {old!r}"
    return ACME_TEXT.replace(old, new, 1)


def _problems(tmp_path: Path, text: str | bytes) -> dict[str, str]:
    f = tmp_path / "ledger.yaml"
    if isinstance(text, bytes):
        f.write_bytes(text)
    else:
        f.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_config(f)
    return {p.path: p.message for p in e.value.problems}


def _cli(*args: str, timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "byok_ledger.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


PRICE = 'price: { input: "2.00", cached_input: "0.50", output: "8.00" }'

# (case id, (old, new) edit of the example, key path that must be named, words in the message)
NUMBER_CASES = [
    (
        "price_1e400_string",
        (PRICE, PRICE.replace('"2.00"', '"1e400"')),
        ".price.input",
        "out of range",
    ),
    (
        "price_1e400_yaml_float",
        (PRICE, PRICE.replace('"2.00"', "1.0e400")),
        ".price.input",
        "out of range",
    ),
    (
        "price_negative",
        (PRICE, PRICE.replace('"2.00"', '"-1"')),
        ".price.input",
        "greater than or equal",
    ),
    ("price_nan_string", (PRICE, PRICE.replace('"2.00"', '"NaN"')), ".price.input", "finite"),
    (
        "price_infinity_string",
        (PRICE, PRICE.replace('"2.00"', '"Infinity"')),
        ".price.input",
        "finite",
    ),
    (
        "price_ten_decimals",
        (PRICE, PRICE.replace('"2.00"', '"0.0000000001"')),
        ".price.input",
        "decimal places",
    ),
    (
        "price_above_a_dollar_a_token",
        (PRICE, PRICE.replace('"8.00"', '"2000000"')),
        ".price.output",
        "less than or equal",
    ),
    ("price_bool", (PRICE, PRICE.replace('"2.00"', "yes")), ".price.input", "boolean"),
    (
        "price_list",
        (PRICE, PRICE.replace('"2.00"', "[1, 2]")),
        ".price.input",
        "expected a decimal",
    ),
    (
        "fee_pct_huge",
        ('byok_free_allowance_usd: "100"', 'byok_free_allowance_usd: "1e13"'),
        "platform.byok_free_allowance_usd",
        "out of range",
    ),
    ("limit_usd_nan", ('limit: { usd: "6000"', 'limit: { usd: "nan"'), ".limit.usd", "finite"),
    (
        "limit_usd_1e30",
        ('limit: { usd: "6000"', 'limit: { usd: "1e30"'),
        ".limit.usd",
        "out of range",
    ),
    (
        "guardrail_budget_negative",
        ('budget: { usd: "3000"', 'budget: { usd: "-5"'),
        ".budget.usd",
        "greater than or equal",
    ),
    ("deadline_inf_string", ("deadline_s: 30", 'deadline_s: "inf"'), ".deadline_s", "finite"),
    ("deadline_1e400_float", ("deadline_s: 30", "deadline_s: 1.0e400"), ".deadline_s", "finite"),
    (
        "deadline_a_century",
        ("deadline_s: 30", "deadline_s: 3153600000"),
        ".deadline_s",
        "less than or equal",
    ),
    ("deadline_zero", ("deadline_s: 30", "deadline_s: 0"), ".deadline_s", "greater than"),
    (
        "context_length_1e30",
        ("context_length: 1047576", "context_length: 1000000000000000000000000000000"),
        ".context_length",
        "less than or equal",
    ),
    (
        "context_length_string",
        ("context_length: 1047576", 'context_length: "lots"'),
        ".context_length",
        "integer",
    ),
]


@pytest.mark.parametrize(
    ("edit", "where", "words"),
    [pytest.param(e, w, m, id=i) for i, e, w, m in NUMBER_CASES],
)
def test_out_of_range_numbers_are_refused_with_their_key_path(
    tmp_path: Path, edit: tuple[str, str], where: str, words: str
) -> None:
    problems = _problems(tmp_path, _acme_with(*edit))
    hits = {p: m for p, m in problems.items() if p.endswith(where)}
    assert hits, f"no problem at *{where}: {problems}"
    assert any(words in m for m in hits.values()), hits


def test_timeouts_and_router_settings_are_finite(tmp_path: Path) -> None:
    text = ACME_TEXT + "\nrouter:\n  cooldown_s: .inf\n"
    problems = _problems(tmp_path, text)
    assert any("finite" in m for m in problems.values()), problems
    text = ACME_TEXT + '\nrouter:\n  idempotency_ttl_s: "1e400"\n  backoff_max_s: -1\n'
    problems = _problems(tmp_path, text)
    assert (
        "router.idempotency_ttl_s" in problems and "finite" in problems["router.idempotency_ttl_s"]
    )
    assert "router.backoff_max_s" in problems


def test_the_example_itself_stays_valid() -> None:
    cfg = load_config(ACME)
    assert cfg.models and all(e.price.input >= 0 for m in cfg.models for e in m.endpoints)


BOMB = "\n".join(
    [f'l0: &l0 ["{"lol" * 3}"' + ', "lol"' * 8 + "]"]
    + [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, 10)]
)


def test_billion_laughs_is_refused_in_well_under_a_second(tmp_path: Path) -> None:
    f = tmp_path / "bomb.yaml"
    f.write_text(BOMB)
    t0 = time.perf_counter()
    with pytest.raises(ConfigError) as e:
        load_config(f)
    took = time.perf_counter() - t0
    assert took < 1.0, f"took {took:.2f} s"
    (problem,) = e.value.problems
    assert "aliases expand" in problem.message and problem.path.startswith("line ")


def test_billion_laughs_through_check_config_exits_2_fast(tmp_path: Path) -> None:
    f = tmp_path / "bomb.yaml"
    f.write_text(BOMB)
    t0 = time.perf_counter()
    r = _cli("check-config", str(f))
    assert r.returncode == 2, r.stderr
    assert time.perf_counter() - t0 < 10  # includes the interpreter start
    assert "aliases expand" in r.stdout and "Traceback" not in r.stderr


def test_a_modest_alias_use_still_loads(tmp_path: Path) -> None:
    # Aliases are legitimate YAML: sharing one filter list between keys must keep working.
    data = yaml.safe_load(ACME_TEXT)
    assert data["byok_keys"], "the example has BYOK keys"
    text = ACME_TEXT.replace("byok_keys:", "x_anchor_holder: &shared [a]\nbyok_keys:", 1)
    problems = _problems(tmp_path, text)  # the extra key is unknown, but nothing explodes
    assert problems == {"x_anchor_holder": problems["x_anchor_holder"]}


UNREADABLE = [
    ("recursive_alias", "a: &a [*a]\n", "recursive alias"),
    ("non_utf8_byte", b'paths:\n  logs: "\xff\xfe"\n', "not UTF-8"),
    ("nul_byte", b"paths: \x00\x01", "not allowed in YAML"),
    ("deep_nesting", "a: " + "[" * 50_000, "nested too deeply"),
    ("empty_file", "", "must be a YAML mapping"),
    ("a_list_not_a_mapping", "- 1\n- 2\n", "must be a YAML mapping"),
    ("a_scalar", "42\n", "must be a YAML mapping"),
    ("tab_indentation", "paths:\n\tlogs: x\n", "invalid YAML"),
    ("unclosed_quote", 'paths:\n  logs: "abc\n', "invalid YAML"),
    ("inf_yaml_float", ACME_TEXT.replace('"2.00"', ".inf", 1), "not a finite number"),
]


@pytest.mark.parametrize(("text", "words"), [pytest.param(t, w, id=i) for i, t, w in UNREADABLE])
def test_unreadable_files_exit_2_with_a_message(
    tmp_path: Path, text: str | bytes, words: str
) -> None:
    problems = _problems(tmp_path, text)
    assert any(words in m for m in problems.values()), problems


def test_non_utf8_names_line_and_column_through_the_cli(tmp_path: Path) -> None:
    f = tmp_path / "ledger.yaml"
    f.write_bytes(b'paths:\n  logs: "\xff"\n')
    r = _cli("check-config", str(f))
    assert r.returncode == 2
    assert "line 2, column 10" in r.stdout and "not UTF-8" in r.stdout
    assert "Traceback" not in r.stderr


def test_directory_and_oversized_file_are_refused(tmp_path: Path) -> None:
    r = _cli("check-config", str(tmp_path))
    assert r.returncode == 2 and "is a directory" in (r.stdout + r.stderr)
    big = tmp_path / "big.yaml"
    big.write_text("# padding\n" * 600_000)
    problems = _problems(tmp_path, big.read_text())
    assert any("too large" in m for m in problems.values()), problems
