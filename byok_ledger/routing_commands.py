"""`byok-ledger check-config` and `byok-ledger explain` (README.md, docs/routing.md): validate a `ledger.yaml`
with every problem named by file, key path and line; dry-run the routing plan of a request.
"""

from __future__ import annotations

import argparse
import json
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from routing_core.config import ConfigError, LedgerConfig, load_config
from routing_core.planning import Planner
from routing_core.routes import Plan, RouteRequest

EXIT_CONFIG = 2


# --------------------------------------------------------------------------- line numbers


def _line_index(path: Path) -> dict[str, int]:
    """Key path (as config.py spells it: `a.b[2].c`) -> 1-based line of that node, from
    the YAML node tree (no values are constructed, so this works on invalid configs).

    Each node is visited once (an aliased node is indexed under its first path), iteratively:
    a "billion laughs" file or a deeply nested one stays linear and never recurses."""
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except (OSError, ValueError, yaml.YAMLError):  # ValueError: not UTF-8
        return {}
    out: dict[str, int] = {}
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, str]] = [(root, "")] if root is not None else []
    while stack:
        node, prefix = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                key = f"{prefix}.{k.value}" if prefix else str(k.value)
                out.setdefault(key, k.start_mark.line + 1)
                stack.append((v, key))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                key = f"{prefix}[{i}]"
                out.setdefault(key, item.start_mark.line + 1)
                stack.append((item, key))
    return out


def _line_of(index: dict[str, int], key_path: str) -> int | None:
    """Line of the key path, or of its nearest existing parent (a missing key is
    reported at the mapping that should hold it)."""
    p = key_path
    while p:
        if p in index:
            return index[p]
        cut = max(p.rfind("."), p.rfind("["))
        if cut <= 0:
            break
        p = p[:cut]
    return index.get(p)


def format_problems(err: ConfigError) -> list[str]:
    """`FILE: key.path: message (line N)` for every problem."""
    needs_lines = any(p.path and not p.path.startswith("line ") for p in err.problems)
    index = _line_index(Path(err.file)) if needs_lines else {}
    lines = []
    for p in err.problems:
        where = p.path or "<root>"
        line = _line_of(index, p.path) if p.path and not p.path.startswith("line ") else None
        suffix = f" (line {line})" if line else ""
        lines.append(f"{err.file}: {where}: {p.message}{suffix}")
    return lines


def _load(file: str) -> LedgerConfig | int:
    try:
        return load_config(file)
    except FileNotFoundError:
        print(f"{file}: <root>: file not found", file=sys.stderr)
        return EXIT_CONFIG
    except ConfigError as e:
        for line in format_problems(e):
            print(line)
        print(f"{len(e.problems)} problem(s) in {e.file}", file=sys.stderr)
        return EXIT_CONFIG


# --------------------------------------------------------------------------- check-config


def check_config(args: argparse.Namespace) -> int:
    """Validate `args.file`: 0 and a one-line summary when valid, else every problem and 2."""
    cfg = _load(args.file)
    if isinstance(cfg, int):
        return cfg
    Planner(cfg)  # building the indexes must work too
    print(
        f"{args.file}: OK: {len(cfg.providers)} providers, {len(cfg.models)} models, "
        f"{len(cfg.byok_keys)} BYOK keys, {len(cfg.api_keys)} API keys, "
        f"{len(cfg.members)} members, {len(cfg.guardrails)} guardrails, "
        f"{len(cfg.workloads)} workloads, {len(cfg.budgets)} budgets"
    )
    return 0


# --------------------------------------------------------------------------- explain


def request_from_args(args: argparse.Namespace) -> RouteRequest:
    """The `RouteRequest` an `explain` command line describes."""

    def tup(v: list[str] | None) -> tuple[str, ...] | None:
        return tuple(v) if v else None

    return RouteRequest(
        api_key_id=args.api_key,
        models=tuple(args.model or ()),
        workload=args.workload,
        member_id=args.member,
        zdr=bool(args.zdr),
        provider_only=tup(getattr(args, "provider_only", None)),
        provider_order=tup(getattr(args, "provider_order", None)),
        provider_ignore=tuple(getattr(args, "provider_ignore", None) or ()),
        allow_fallbacks=not getattr(args, "no_fallbacks", False),
        requires=tuple(getattr(args, "require", None) or ()),
        data_collection=getattr(args, "data_collection", None),
        max_price_input=_money(getattr(args, "max_price_input", None)),
        max_price_output=_money(getattr(args, "max_price_output", None)),
        estimated_input_tokens=getattr(args, "input_tokens", 0) or 0,
    )


def _money(value: str | None) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(value)
    except InvalidOperation:
        raise SystemExit(f"error: {value!r} is not a decimal amount") from None


def plan_json(plan: Plan) -> dict[str, Any]:
    """Exactly the documented `explain --json` shape (docs/routing.md; no extra keys)."""
    return plan.to_dict()


def _table(rows: list[list[str]], header: list[str]) -> list[str]:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*header).rstrip(), fmt.format(*("-" * w for w in widths)).rstrip()]
    out += [fmt.format(*r).rstrip() for r in rows]
    return out


def render_plan(plan: Plan, req: RouteRequest) -> str:
    """The human-readable plan: attempts in order, exclusions with reasons, the error."""
    lines = [f"plan for API key {req.api_key_id}, models {', '.join(req.models)}"]
    lines.append("")
    if plan.attempts:
        lines.append(
            f"attempts (tried in this order; at most {plan.max_attempts} within "
            f"{plan.deadline_s:g}s):"
        )
        rows = [
            [
                str(i),
                a.model,
                a.provider,
                a.credential,
                a.key_id or "-",
                a.tier,
                "yes" if a.zdr else "no",
                a.upstream_model,
            ]
            for i, a in enumerate(plan.attempts, 1)
        ]
        lines += _table(
            rows, ["#", "model", "provider", "credential", "key", "tier", "zdr", "upstream"]
        )
    else:
        lines.append("attempts: none")
    lines.append("")
    if plan.excluded:
        lines.append("excluded:")
        rows = [
            [
                e.model,
                e.provider or "-",
                e.credential or "-",
                e.key_id or "-",
                e.reason,
                e.detail,
            ]
            for e in plan.excluded
        ]
        lines += _table(rows, ["model", "provider", "credential", "key", "reason", "detail"])
    else:
        lines.append("excluded: none")
    if plan.error is not None:
        lines.append("")
        lines.append(f"error {plan.error.code}: {plan.error.message}")
    return "\n".join(lines)


def explain(args: argparse.Namespace) -> int:
    """Dry run of the routing plan. Exit 0 whenever the config loads (even when nothing is
    eligible: the plan says so), 2 when the config is invalid."""
    cfg = _load(args.config)
    if isinstance(cfg, int):
        return cfg
    req = request_from_args(args)
    plan = Planner(cfg).plan(req)
    if args.json:
        print(json.dumps(plan_json(plan)))
    else:
        print(render_plan(plan, req))
    return 0
