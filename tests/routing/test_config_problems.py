"""Config validation: every kind of problem is reported with its key path (all of them, not
just the first), money is never parsed through float, and the acme example is valid."""

from __future__ import annotations

import copy
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from routing_core.config import ConfigError, load_config

ACME = Path(__file__).resolve().parents[2] / "examples" / "acme" / "ledger.yaml"
SHA = "0" * 64

BASE = {
    "providers": [
        {"id": "p1", "api": "openai", "base_url": "http://127.0.0.1:1", "invoice_format": "focus"},
    ],
    "models": [
        {
            "id": "m1",
            "endpoints": [
                {"provider": "p1", "upstream_model": "u", "price": {"input": "1", "output": "2"}}
            ],
        },
    ],
    "byok_keys": [{"id": "k1", "provider": "p1", "secret_env": "K1_KEY"}],
    "api_keys": [{"id": "a1", "secret_sha256": SHA, "environment": "prod", "app": "x"}],
    "members": [{"id": "alice"}],
    "guardrails": [{"id": "g"}],
    "workloads": [{"id": "w"}],
}


def problems_of(tmp_path: Path, data: dict | str) -> dict[str, str]:
    f = tmp_path / "ledger.yaml"
    f.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ConfigError) as e:
        load_config(f)
    assert e.value.file == str(f)
    return {p.path: p.message for p in e.value.problems}


def with_(**changes) -> dict:
    d = copy.deepcopy(BASE)
    for path, value in changes.items():
        node = d
        parts = path.split("__")
        for part in parts[:-1]:
            node = node[int(part)] if part.isdigit() else node[part]
        last = parts[-1]
        if last.isdigit():
            node[int(last)] = value
        else:
            node[last] = value
    return d


def test_acme_example_is_valid() -> None:
    cfg = load_config(ACME)
    assert len(cfg.models) == 10 and len(cfg.byok_keys) == 10 and len(cfg.api_keys) == 9
    price = cfg.models[0].endpoints[0].price
    assert isinstance(price.input, Decimal)


def test_base_is_valid(tmp_path: Path) -> None:
    f = tmp_path / "ok.yaml"
    f.write_text(yaml.safe_dump(BASE))
    assert load_config(f).byok_keys[0].id == "k1"


@pytest.mark.parametrize(
    ("changes", "path", "fragment"),
    [
        ({"byok_keys__0__provider": "nope"}, "byok_keys[0].provider", "unknown provider 'nope'"),
        (
            {"models__0__endpoints__0__provider": "px"},
            "models[0].endpoints[0].provider",
            "unknown provider",
        ),
        (
            {"byok_keys__0__filters": {"models": ["m1", "m9"]}},
            "byok_keys[0].filters.models[1]",
            "unknown model 'm9'",
        ),
        (
            {"byok_keys__0__filters": {"api_keys": ["zz"]}},
            "byok_keys[0].filters.api_keys[0]",
            "unknown API key",
        ),
        (
            {"byok_keys__0__filters": {"members": ["bob"]}},
            "byok_keys[0].filters.members[0]",
            "unknown member",
        ),
        (
            {"byok_keys__0__filters": {"environments": ["qa"]}},
            "byok_keys[0].filters.environments[0]",
            "unknown environment",
        ),
        ({"api_keys__0__guardrail": "gx"}, "api_keys[0].guardrail", "unknown guardrail"),
        ({"api_keys__0__owner": "zed"}, "api_keys[0].owner", "unknown member"),
        ({"members__0__guardrail": "gx"}, "members[0].guardrail", "unknown guardrail"),
        (
            {"workloads__0__model_fallbacks": ["m1", "m7"]},
            "workloads[0].model_fallbacks[1]",
            "unknown model",
        ),
        (
            {"guardrails__0__allowed_providers": ["p9"]},
            "guardrails[0].allowed_providers[0]",
            "unknown provider",
        ),
        (
            {"shared_capacity": {"providers": ["p1", "p3"]}},
            "shared_capacity.providers[1]",
            "unknown provider",
        ),
    ],
)
def test_unknown_ids(tmp_path: Path, changes: dict, path: str, fragment: str) -> None:
    problems = problems_of(tmp_path, with_(**changes))
    assert path in problems, problems
    assert fragment in problems[path]


def test_duplicate_ids(tmp_path: Path) -> None:
    d = with_()
    d["byok_keys"].append(dict(d["byok_keys"][0]))
    d["api_keys"].append(dict(d["api_keys"][0]))
    problems = problems_of(tmp_path, d)
    assert "duplicate id 'k1'" in problems["byok_keys[1].id"]
    assert "duplicate id 'a1'" in problems["api_keys[1].id"]


def test_fallback_tier_with_never_for_provider(tmp_path: Path) -> None:
    problems = problems_of(
        tmp_path,
        with_(
            byok_keys__0={
                "id": "k1",
                "provider": "p1",
                "secret_env": "K",
                "tier": "fallback",
                "shared_fallback": "never_for_provider",
            }
        ),
    )
    assert "contradicts" in problems["byok_keys[0].shared_fallback"]


def test_non_decimal_price(tmp_path: Path) -> None:
    problems = problems_of(
        tmp_path, with_(models__0__endpoints__0__price={"input": "1,5", "output": "2"})
    )
    assert "not a decimal" in problems["models[0].endpoints[0].price.input"]


def test_yaml_float_prices_become_exact_decimals(tmp_path: Path) -> None:
    text = (
        yaml.safe_dump(BASE)
        .replace("input: '1'", "input: 0.1")
        .replace("output: '2'", "output: 0.30")
    )
    assert "input: 0.1" in text
    f = tmp_path / "f.yaml"
    f.write_text(text)
    price = load_config(f).models[0].endpoints[0].price
    assert price.input == Decimal("0.1") and price.output == Decimal("0.30")


def test_the_fast_yaml_loader_keeps_every_digit_of_a_yaml_float(tmp_path: Path) -> None:
    """load_config parses with libyaml (CSafeLoader) when PyYAML has it; its floats must still
    be Decimals of the source text, never a float on the way (a float keeps 17 digits: the
    30-digit value below would come back as 0.12345678901234568)."""
    from routing_core import config

    assert yaml.__with_libyaml__ and issubclass(config._FastDecimalLoader, yaml.CSafeLoader)
    loader = config._FastDecimalLoader("a: 0.123456789012345678901234567891\nb: 1_000.5\n")
    try:
        data = loader.get_single_data()
    finally:
        loader.dispose()
    assert data == {"a": Decimal("0.123456789012345678901234567891"), "b": Decimal("1000.5")}
    assert all(type(v) is Decimal for v in data.values())
    text = (
        yaml.safe_dump(BASE)
        .replace("input: '1'", "input: 123456.123456789")
        .replace("output: '2'", "output: 1_000.000000001")
    )
    f = tmp_path / "f.yaml"
    f.write_text(text)
    price = load_config(f).models[0].endpoints[0].price
    assert price.input == Decimal("123456.123456789")
    assert price.output == Decimal("1000.000000001")


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"byok_keys__0__secret_env": "sk-proj-abcdefghijklmnop"}, "byok_keys[0].secret_env"),
        ({"api_keys__0__secret_sha256": "sk-ant-api03-xyz"}, "api_keys[0].secret_sha256"),
    ],
)
def test_inline_secret(tmp_path: Path, changes: dict, path: str) -> None:
    problems = problems_of(tmp_path, with_(**changes))
    assert "secret written inline" in problems[path]


def test_yaml_boolean_where_an_enum_is_expected(tmp_path: Path) -> None:
    text = yaml.safe_dump(BASE, sort_keys=False).replace(
        "invoice_format: focus", "invoice_format: focus\n  data_collection: no"
    )
    problems = problems_of(tmp_path, text)
    msg = problems["providers[0].data_collection"]
    assert "boolean false" in msg and "quote the value" in msg


def test_unknown_key(tmp_path: Path) -> None:
    d = with_()
    d["workloads"][0]["shared_fallbak"] = False
    d["tops"] = 1
    problems = problems_of(tmp_path, d)
    assert "unknown key" in problems["workloads[0].shared_fallbak"]
    assert "unknown key" in problems["tops"]


def test_every_problem_at_once_including_cross_references(tmp_path: Path) -> None:
    d = with_(byok_keys__0__provider="ghost", api_keys__0__guardrail="nope")
    d["models"][0]["endpoints"][0]["price"]["input"] = "abc"  # a field error...
    d["members"][0]["extra"] = 1
    problems = problems_of(tmp_path, d)
    # ...does not hide the cross-reference problems elsewhere in the file.
    assert set(problems) >= {
        "models[0].endpoints[0].price.input",
        "members[0].extra",
        "byok_keys[0].provider",
        "api_keys[0].guardrail",
    }


def test_missing_required_and_invalid_yaml(tmp_path: Path) -> None:
    d = with_()
    del d["byok_keys"][0]["secret_env"]
    problems = problems_of(tmp_path, d)
    assert problems["byok_keys[0].secret_env"] == "required key is missing"
    problems = problems_of(tmp_path, "providers: [\n  - id: x\n")
    ((where, msg),) = problems.items()
    assert where.startswith("line ") and "invalid YAML" in msg
    assert msg.endswith("(while parsing a flow node at line 2)") and "<unicode string>" not in msg


def test_duplicate_yaml_keys_are_reported(tmp_path: Path) -> None:
    text = yaml.safe_dump(BASE, sort_keys=False).replace(
        "  secret_env: K1_KEY", "  secret_env: K1_KEY\n  disabled: true\n  disabled: false"
    )
    assert text.count("disabled:") == 2
    problems = problems_of(tmp_path, text)
    msg = problems["byok_keys[0].disabled"]
    assert "duplicate key 'disabled'" in msg and "keeps only the last" in msg
    # reported together with field errors elsewhere
    problems = problems_of(tmp_path, text.replace("environment: prod", "environment: 7\n  envx: 1"))
    assert "byok_keys[0].disabled" in problems and "api_keys[0].envx" in problems
