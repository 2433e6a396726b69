"""The `ledger.yaml` configuration (docs/config.md): pydantic models, a Decimal-safe YAML loader,
and the cross-reference checks that turn a typo into an error instead of a silent policy hole.

`load_config(path)` returns a validated, frozen `LedgerConfig` or raises `ConfigError`
listing every problem with its key path.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from routing_core.schema import ACCOUNT_IDS

# --------------------------------------------------------------------------- errors


class ConfigProblem(BaseModel):
    """One problem in a config file: where and what."""

    model_config = ConfigDict(frozen=True)
    path: str  # dotted key path, e.g. byok_keys[2].filters.models
    message: str

    def __str__(self) -> str:
        return f"{self.path or '<root>'}: {self.message}"


class ConfigError(Exception):
    """Raised by `load_config` with every problem found (not just the first)."""

    def __init__(self, file: str | Path, problems: list[ConfigProblem]):
        self.file = str(file)
        self.problems = problems
        lines = "\n".join(f"  {self.file}: {p}" for p in problems)
        super().__init__(f"{len(problems)} problem(s) in {self.file}:\n{lines}")


class ConfigNotFoundError(ConfigError, FileNotFoundError):
    """The config file does not exist: a config problem (callers catching `ConfigError` see
    it) that is also still a `FileNotFoundError` for callers that catch that."""

    def __init__(self, file: str | Path):
        super().__init__(file, [ConfigProblem(path="", message="config file not found")])

    def __str__(self) -> str:
        return f"config file not found: {self.file}"


# --------------------------------------------------------------------------- money


# Every amount must fit the ledger's DECIMAL(38,9) with room to add millions of them: a
# trillion dollars and nine decimal places. 1e400 is a finite Decimal, and it used to pass
# check-config and then crash the router when it priced a request.
MAX_MONEY = Decimal(10) ** 12
MONEY_PLACES = 9
# USD per 1M tokens: a dollar a token is already absurd; more is a typo (a missing dot).
MAX_PRICE = Decimal(1_000_000)


def _to_decimal(value: Any) -> Any:
    """Money arrives as a YAML number (already Decimal via our loader) or a string. It must be
    finite, at most MAX_MONEY and carry at most MONEY_PLACES decimal places."""
    if isinstance(value, bool):
        raise ValueError("expected a decimal amount, got a boolean")
    if isinstance(value, float):
        # Only reachable when a caller builds the config in Python with floats.
        raise ValueError("money must be a decimal string or number, never a float")
    if isinstance(value, int):
        d = Decimal(value)
    elif isinstance(value, Decimal):
        d = value
    elif isinstance(value, str):
        try:
            d = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"{value!r} is not a decimal amount") from None
    else:
        raise ValueError(f"expected a decimal amount, got {type(value).__name__}")
    if not d.is_finite():
        raise ValueError(f"{value!r} is not a finite decimal amount")
    if abs(d) > MAX_MONEY:
        raise ValueError(f"{value} is out of range (amounts are at most {MAX_MONEY:,})")
    if d != 0 and d.as_tuple().exponent < -MONEY_PLACES:  # type: ignore[operator]
        raise ValueError(
            f"{value} has more than {MONEY_PLACES} decimal places (the ledger keeps nanodollars)"
        )
    return d


Money = Annotated[Decimal, BeforeValidator(_to_decimal), Field(ge=0)]
Pct = Annotated[Decimal, BeforeValidator(_to_decimal), Field(ge=0, le=1000)]
PriceUsd = Annotated[Decimal, BeforeValidator(_to_decimal), Field(ge=0, le=MAX_PRICE)]


def _seconds(default: float, *, le: float, positive: bool = False) -> Any:
    """A duration in seconds: finite (a YAML `.inf` or `1e400` is refused) and bounded."""
    if positive:
        return Field(default=default, gt=0, le=le, allow_inf_nan=False)
    return Field(default=default, ge=0, le=le, allow_inf_nan=False)


HOUR, DAY = 3_600.0, 86_400.0


def _enum_guard(allowed: tuple[str, ...]):
    """YAML 1.1 turns bare off/no/yes into booleans; say so instead of a vague type error."""

    def check(value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError(
                f"got the boolean {str(value).lower()} where one of {', '.join(allowed)} was "
                "expected (YAML 1.1 reads bare yes/no/on/off as booleans: quote the value)"
            )
        return value

    return BeforeValidator(check)


def _enum(*values: str):
    return Annotated[Literal[values], _enum_guard(values)]  # type: ignore[valid-type]


ApiKind = _enum("openai", "anthropic")
InvoiceFormat = _enum("openai_costs", "anthropic_cost_report", "focus")
DataCollection = _enum("allow", "deny")
KeyTier = _enum("prioritized", "fallback")
SharedFallback = _enum("allow", "never_for_key_models", "never_for_provider")
Reset = _enum("daily", "weekly", "monthly", "none")
Period = _enum("daily", "weekly", "monthly")
ByokMode = _enum("preferred", "strict")
ZdrMode = _enum("required", "preferred", "any")
BudgetScope = _enum("api_key", "environment", "member", "workload", "byok_key", "provider")
DataClass = _enum(
    "public", "internal", "confidential", "regulated", "proprietary_code", "legal", "financial"
)
Capability = _enum("tools", "json", "vision", "reasoning", "streaming")

_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:/\-]*$"
Id = Annotated[str, Field(min_length=1, max_length=200, pattern=_ID)]
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# Shapes of real provider secrets: if one of these is in the file, refuse to load it.
_SECRET_SHAPES = re.compile(
    r"(sk-[A-Za-z0-9_\-]{8,}|sk-ant-|AKIA[0-9A-Z]{12,}|AIza[0-9A-Za-z_\-]{20,})"
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- sections


class Paths(_Model):
    logs: Path = Path("data/logs")
    invoices: Path = Path("data/invoices")
    duckdb: Path = Path("data/ledger.duckdb")
    reports: Path = Path("data/reports")


ScopeText = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^\S(.*\S)?$")]
ScopeList = Annotated[list[ScopeText], Field(min_length=1, max_length=500)]


class FocusScope(_Model):
    """Which lines of an organisation-wide FOCUS export are this provider's LLM services (the
    rest is counted out of scope). A line is in scope when its ServiceName matches one of
    `service_names` (case-insensitive, `*` = any text), or its ServiceCategory is one of
    `service_categories` and its ServiceSubcategory is empty or one of
    `service_subcategories` (omitted: any). An omitted list is not used."""

    service_names: ScopeList | None = None
    service_categories: ScopeList | None = None
    service_subcategories: ScopeList | None = None

    @model_validator(mode="after")
    def _something_in_scope(self) -> FocusScope:
        if self.service_names is None and self.service_categories is None:
            raise ValueError(
                "focus_scope needs service_names or service_categories (or both): with neither, "
                "no line of the export would be in scope"
            )
        if self.service_subcategories is not None and self.service_categories is None:
            raise ValueError(
                "service_subcategories only narrows service_categories: set service_categories"
            )
        return self


class Provider(_Model):
    id: Id
    api: ApiKind
    base_url: str
    invoice_format: InvoiceFormat
    data_collection: DataCollection = "allow"
    statement_name: str | None = None
    timeout_s: float = _seconds(30.0, le=HOUR, positive=True)
    focus_scope: FocusScope | None = None

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not re.match(r"^https?://", v):
            raise ValueError("base_url must start with http:// or https://")
        return v.rstrip("/")

    @model_validator(mode="after")
    def _scope_needs_focus(self) -> Provider:
        if self.focus_scope is not None and self.invoice_format != "focus":
            raise ValueError(
                f"focus_scope applies to FOCUS exports only, and invoice_format is "
                f"{self.invoice_format}: remove focus_scope or set invoice_format: focus"
            )
        return self


class PriceChange(_Model):
    """A price that applies from `date` (UTC day, inclusive) on."""

    date: dt.date
    input: PriceUsd
    output: PriceUsd
    cached_input: PriceUsd | None = None
    cache_write: PriceUsd | None = None


class Price(_Model):
    """USD per 1M tokens."""

    input: PriceUsd
    output: PriceUsd
    cached_input: PriceUsd | None = None  # default: same as input
    cache_write: PriceUsd | None = None  # default: same as input
    effective_from: list[PriceChange] = Field(default_factory=list)

    @field_validator("effective_from")
    @classmethod
    def _sorted(cls, v: list[PriceChange]) -> list[PriceChange]:
        dates = [c.date for c in v]
        if len(set(dates)) != len(dates):
            raise ValueError("effective_from has two changes on the same date")
        return sorted(v, key=lambda c: c.date)


class Endpoint(_Model):
    provider: Id
    upstream_model: str = Field(min_length=1)
    price: Price
    zdr: bool = False
    supports: list[Capability] = Field(default_factory=list)
    context_length: int = Field(default=128_000, gt=0, le=100_000_000)


class ModelDef(_Model):
    id: Id
    endpoints: list[Endpoint] = Field(min_length=1)


class SharedCapacity(_Model):
    providers: list[Id] = Field(default_factory=list)
    price_markup_pct: Pct = Decimal("0")


class Platform(_Model):
    name: str = "OpenRouter"
    byok_fee_pct: Pct = Decimal("5")
    byok_free_allowance_usd: Money = Decimal("0")
    statement_format: _enum("openrouter_activity") = "openrouter_activity"  # type: ignore[valid-type]


class KeyFilters(_Model):
    models: list[Id] | None = None
    api_keys: list[Id] | None = None
    members: list[Id] | None = None
    # Extension: restrict a key to router API keys of these environments.
    environments: list[str] | None = None


class ByokKey(_Model):
    id: Id
    provider: Id
    secret_env: str
    tier: KeyTier = "prioritized"
    order: int = Field(default=0, ge=-1_000_000, le=1_000_000)
    shared_fallback: SharedFallback = "allow"
    filters: KeyFilters = Field(default_factory=KeyFilters)
    account: dict[str, str] = Field(default_factory=dict)
    zdr: bool | None = None
    disabled: bool = False
    # Negotiated discount the router assumes when estimating this account's provider bill.
    provider_discount_pct: Pct = Decimal("0")

    @field_validator("secret_env")
    @classmethod
    def _env_name(cls, v: str) -> str:
        if _SECRET_SHAPES.search(v):
            raise ValueError(
                "this looks like a secret written inline; put the secret in an environment "
                "variable and write that variable's name here"
            )
        if not _ENV_NAME.match(v):
            raise ValueError(f"{v!r} is not an environment variable name (A-Z, 0-9, _)")
        return v

    @field_validator("account")
    @classmethod
    def _account_keys(cls, v: dict[str, str]) -> dict[str, str]:
        allowed = set(ACCOUNT_IDS)
        unknown = set(v) - allowed
        if unknown:
            raise ValueError(
                f"unknown account identifier(s) {sorted(unknown)}; use {sorted(allowed)}"
            )
        return {k: str(x) for k, x in v.items()}


class Limit(_Model):
    usd: Money
    reset: Reset = "monthly"
    include_byok: bool = False


class ApiKey(_Model):
    id: Id
    secret_sha256: str
    environment: str = Field(min_length=1)
    app: str = Field(min_length=1)
    owner: Id | None = None
    limit: Limit | None = None
    guardrail: Id | None = None
    default_workload: Id | None = None

    @field_validator("secret_sha256")
    @classmethod
    def _sha(cls, v: str) -> str:
        if _SECRET_SHAPES.search(v):
            raise ValueError(
                "this looks like a secret written inline; write its SHA-256 hex digest"
            )
        if not _SHA256.match(v):
            raise ValueError("secret_sha256 must be 64 lowercase hex characters (a SHA-256 digest)")
        return v


class Member(_Model):
    id: Id
    name: str | None = None
    guardrail: Id | None = None


class GuardrailBudget(_Model):
    usd: Money
    reset: Reset = "monthly"


class Guardrail(_Model):
    id: Id
    allowed_models: list[Id] | None = None
    ignored_models: list[Id] = Field(default_factory=list)
    allowed_providers: list[Id] | None = None
    ignored_providers: list[Id] = Field(default_factory=list)
    enforce_zdr: bool = False
    budget: GuardrailBudget | None = None


class Workload(_Model):
    id: Id
    data_class: DataClass = "internal"
    allowed_models: list[Id] | None = None
    allowed_providers: list[Id] | None = None
    byok: ByokMode = "preferred"
    shared_fallback: bool = True
    zdr: ZdrMode = "any"
    model_fallbacks: list[Id] = Field(default_factory=list)
    max_attempts: int = Field(default=4, ge=1, le=20)
    deadline_s: float = _seconds(60.0, le=DAY, positive=True)
    # Extension: capabilities every endpoint must support for this workload (e.g. tools).
    requires: list[Capability] = Field(default_factory=list)
    description: str | None = None


class Budget(_Model):
    id: Id
    scope: BudgetScope
    match: str = Field(min_length=1)
    usd: Money
    period: Period = "monthly"
    thresholds_pct: list[int] = Field(default_factory=lambda: [50, 80, 100])

    @field_validator("thresholds_pct")
    @classmethod
    def _thresholds(cls, v: list[int]) -> list[int]:
        if not v or any(t <= 0 or t > 1000 for t in v):
            raise ValueError("thresholds_pct must be a non-empty list of percentages in 1..1000")
        return sorted(set(v))


class Alerts(_Model):
    webhook_url: str | None = None
    # A Slack webhook URL is a secret: name the environment variable that holds it instead.
    webhook_url_env: str | None = Field(
        default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$", max_length=128
    )
    min_impact_usd: Money = Decimal("25")
    baseline_days: int = Field(default=28, ge=7, le=365)
    sensitivity: float = Field(default=4.0, gt=0, le=1_000, allow_inf_nan=False)

    @model_validator(mode="after")
    def _one_webhook_source(self) -> Alerts:
        if self.webhook_url and self.webhook_url_env:
            raise ValueError(
                "set webhook_url or webhook_url_env (the name of the environment "
                "variable holding the URL), not both"
            )
        return self


class RouterSettings(_Model):
    """Execution tuning (extension; all optional)."""

    cooldown_s: float = _seconds(60.0, le=7 * DAY)
    rate_limit_cooldown_s: float = _seconds(5.0, le=DAY)
    idempotency_ttl_s: float = _seconds(86_400.0, le=30 * DAY, positive=True)
    backoff_base_s: float = _seconds(0.05, le=HOUR)
    backoff_max_s: float = _seconds(2.0, le=HOUR)
    max_retry_after_s: float = _seconds(10.0, le=DAY)
    default_max_output_tokens: int = Field(default=4096, gt=0, le=10_000_000)
    # Where budget counters and reservations live: this process (`memory`) or a Redis
    # shared by every gateway worker and replica (`redis://host:port/db`, `rediss://`).
    state: str = "memory"
    state_prefix: str = Field(default="byok-ledger", min_length=1, max_length=100)
    # How long an in-flight reservation holds budget before a dead replica's hold expires
    # (None: the longest workload deadline plus 60 s).
    reservation_ttl_s: float | None = _seconds(None, le=DAY, positive=True)  # type: ignore[arg-type]
    # The HTTP gateway's bounds (byok-ledger serve).
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024, le=1024 * 1024 * 1024)
    max_concurrent_per_key: int = Field(default=256, ge=1, le=100_000)

    @field_validator("state")
    @classmethod
    def _state_url(cls, v: str) -> str:
        if v == "memory":
            return v
        if v.startswith(("redis://", "rediss://", "unix://")):
            userinfo = v.split("://", 1)[1].split("/", 1)[0].rpartition("@")[0]
            if ":" in userinfo:
                raise ValueError(
                    "router.state must not carry a password (secrets never go in this "
                    "file): put it in the environment variable BYOK_LEDGER_STATE_PASSWORD"
                )
            return v
        raise ValueError(
            "router.state must be 'memory' or a Redis URL (redis://host:6379/0, rediss://..., "
            "unix:///path/redis.sock)"
        )


class PipelineSettings(_Model):
    """Reconciliation and check tuning (extension; all optional)."""

    rerun_window_days: int = Field(default=7, ge=0, le=90)
    # First daily partition (UTC day); None: the first day with request logs.
    start_date: dt.date | None = Field(
        default=None, ge=dt.date(2000, 1, 1), le=dt.date(2100, 12, 31)
    )
    # A cell is matched within max(usd, pct % of expected): cell-scale amounts are small, so a
    # wide dollar floor would hide real discrepancies (issue 9).
    variance_tolerance_pct: Pct = Decimal("1")
    variance_tolerance_usd: Money = Decimal("0.01")
    max_rejected_pct: Pct = Decimal("1")
    # Above max_rejected_pct a run stops only once this many lines are quarantined: one garbled
    # line on a quiet day is quarantined and reported (the check warns), it does not stop the
    # ledger.
    min_rejected_lines: int = Field(default=3, ge=1, le=1_000_000_000)


# --------------------------------------------------------------------------- root


class LedgerConfig(_Model):
    paths: Paths = Field(default_factory=Paths)
    providers: list[Provider] = Field(min_length=1)
    models: list[ModelDef] = Field(min_length=1)
    shared_capacity: SharedCapacity = Field(default_factory=SharedCapacity)
    platform: Platform = Field(default_factory=Platform)
    byok_keys: list[ByokKey] = Field(default_factory=list)
    api_keys: list[ApiKey] = Field(min_length=1)
    members: list[Member] = Field(default_factory=list)
    guardrails: list[Guardrail] = Field(default_factory=list)
    workloads: list[Workload] = Field(default_factory=list)
    budgets: list[Budget] = Field(default_factory=list)
    alerts: Alerts = Field(default_factory=Alerts)
    router: RouterSettings = Field(default_factory=RouterSettings)
    pipeline: PipelineSettings = Field(default_factory=PipelineSettings)

    # Set by load_config: the file this came from (paths are relative to its folder).
    source: Path | None = None

    @model_validator(mode="after")
    def _cross_references(self) -> LedgerConfig:
        problems = list(_cross_reference_problems(self))
        if problems:
            raise _CrossRefError(problems)
        return self

    # Convenience lookups (dicts are cheap; the router builds its own hot-path indexes).
    def provider(self, pid: str) -> Provider:
        return next(p for p in self.providers if p.id == pid)

    def api_key(self, kid: str) -> ApiKey:
        return next(k for k in self.api_keys if k.id == kid)

    def workload(self, wid: str) -> Workload:
        return next(w for w in self.workloads if w.id == wid)

    def resolve(self, p: Path) -> Path:
        """A `paths` entry made absolute against the config file's folder."""
        base = self.source.parent if self.source else Path.cwd()
        return p if p.is_absolute() else (base / p).resolve()

    @property
    def logs_dir(self) -> Path:
        return self.resolve(self.paths.logs)

    @property
    def invoices_dir(self) -> Path:
        return self.resolve(self.paths.invoices)

    @property
    def duckdb_path(self) -> Path:
        return self.resolve(self.paths.duckdb)

    @property
    def reports_dir(self) -> Path:
        return self.resolve(self.paths.reports)


class _CrossRefError(ValueError):
    def __init__(self, problems: list[ConfigProblem]):
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


def _dupes(items: Iterable[Any], section: str) -> Iterable[ConfigProblem]:
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        if item.id is None:
            continue
        if item.id in seen:
            yield ConfigProblem(
                path=f"{section}[{i}].id",
                message=f"duplicate id {item.id!r} (first at {section}[{seen[item.id]}])",
            )
        else:
            seen[item.id] = i


def _cross_reference_problems(c: LedgerConfig) -> Iterable[ConfigProblem]:
    for section in (
        "providers",
        "models",
        "byok_keys",
        "api_keys",
        "members",
        "guardrails",
        "workloads",
        "budgets",
    ):
        yield from _dupes(getattr(c, section), section)

    providers = {p.id for p in c.providers}
    models = {m.id for m in c.models}
    keys = {k.id for k in c.byok_keys}
    api_keys = {k.id for k in c.api_keys}
    members = {m.id for m in c.members}
    guardrails = {g.id for g in c.guardrails}
    workloads = {w.id for w in c.workloads}
    environments = {k.environment for k in c.api_keys}

    def unknown(
        path: str, value: str | None, known: set[str], what: str
    ) -> Iterable[ConfigProblem]:
        if value is not None and value not in known:
            hint = f"; known: {', '.join(sorted(known))}" if len(known) <= 12 else ""
            yield ConfigProblem(path=path, message=f"unknown {what} {value!r}{hint}")

    def unknown_list(path: str, values: list[str] | None, known: set[str], what: str):
        for j, v in enumerate(values or []):
            yield from unknown(f"{path}[{j}]", v, known, what)

    for i, m in enumerate(c.models):
        seen_ep: set[str] = set()
        for j, ep in enumerate(m.endpoints):
            yield from unknown(
                f"models[{i}].endpoints[{j}].provider", ep.provider, providers, "provider"
            )
            if ep.provider in seen_ep:
                yield ConfigProblem(
                    path=f"models[{i}].endpoints[{j}].provider",
                    message=f"model {m.id!r} lists provider {ep.provider!r} twice",
                )
            seen_ep.add(ep.provider)
    yield from unknown_list(
        "shared_capacity.providers", c.shared_capacity.providers, providers, "provider"
    )

    for i, k in enumerate(c.byok_keys):
        p = f"byok_keys[{i}]"
        yield from unknown(f"{p}.provider", k.provider, providers, "provider")
        yield from unknown_list(f"{p}.filters.models", k.filters.models, models, "model")
        yield from unknown_list(f"{p}.filters.api_keys", k.filters.api_keys, api_keys, "API key")
        yield from unknown_list(f"{p}.filters.members", k.filters.members, members, "member")
        yield from unknown_list(
            f"{p}.filters.environments", k.filters.environments, environments, "environment"
        )
        if k.tier == "fallback" and k.shared_fallback == "never_for_provider":
            yield ConfigProblem(
                path=f"{p}.shared_fallback",
                message="a fallback-tier key is only tried after shared capacity, so "
                "never_for_provider (which removes shared capacity) contradicts it; use "
                "tier: prioritized or another shared_fallback",
            )
        if k.shared_fallback == "never_for_key_models" and not k.filters.models:
            yield ConfigProblem(
                path=f"{p}.shared_fallback",
                message="never_for_key_models needs filters.models (the models it protects)",
            )
        if k.filters.models and k.provider in providers:
            for j, mid in enumerate(k.filters.models):
                model = next((m for m in c.models if m.id == mid), None)
                if model and all(ep.provider != k.provider for ep in model.endpoints):
                    yield ConfigProblem(
                        path=f"{p}.filters.models[{j}]",
                        message=f"model {mid!r} has no endpoint on provider {k.provider!r}",
                    )

    for i, a in enumerate(c.api_keys):
        yield from unknown(f"api_keys[{i}].owner", a.owner, members, "member")
        yield from unknown(f"api_keys[{i}].guardrail", a.guardrail, guardrails, "guardrail")
        yield from unknown(
            f"api_keys[{i}].default_workload", a.default_workload, workloads, "workload"
        )
    for i, m in enumerate(c.members):
        yield from unknown(f"members[{i}].guardrail", m.guardrail, guardrails, "guardrail")
    for i, g in enumerate(c.guardrails):
        p = f"guardrails[{i}]"
        yield from unknown_list(f"{p}.allowed_models", g.allowed_models, models, "model")
        yield from unknown_list(f"{p}.ignored_models", g.ignored_models, models, "model")
        yield from unknown_list(
            f"{p}.allowed_providers", g.allowed_providers, providers, "provider"
        )
        yield from unknown_list(
            f"{p}.ignored_providers", g.ignored_providers, providers, "provider"
        )
    for i, w in enumerate(c.workloads):
        p = f"workloads[{i}]"
        yield from unknown_list(f"{p}.allowed_models", w.allowed_models, models, "model")
        yield from unknown_list(
            f"{p}.allowed_providers", w.allowed_providers, providers, "provider"
        )
        yield from unknown_list(f"{p}.model_fallbacks", w.model_fallbacks, models, "model")

    scope_known = {
        "api_key": (api_keys, "API key"),
        "environment": (environments, "environment"),
        "member": (members, "member"),
        "workload": (workloads, "workload"),
        "byok_key": (keys, "BYOK key"),
        "provider": (providers, "provider"),
    }
    for i, b in enumerate(c.budgets):
        if b.scope not in scope_known:
            continue  # reported as a field error
        known, what = scope_known[b.scope]
        yield from unknown(f"budgets[{i}].match", b.match, known, what)


# The cross-reference checks read attributes; when field validation fails, pydantic never
# builds the model, so they run on this tolerant view of the raw YAML instead. Anything of
# the wrong type reads as absent: its field error is already reported.
_RAW_SECTIONS = {
    "providers": {},
    "models": {"endpoints": ("list", {"provider": None})},
    "byok_keys": {
        "provider": None,
        "tier": "prioritized",
        "shared_fallback": "allow",
        "filters": (
            "obj",
            {"models": None, "api_keys": None, "members": None, "environments": None},
        ),
    },
    "api_keys": {"owner": None, "guardrail": None, "default_workload": None, "environment": None},
    "members": {"guardrail": None},
    "guardrails": {
        "allowed_models": None,
        "ignored_models": None,
        "allowed_providers": None,
        "ignored_providers": None,
    },
    "workloads": {"allowed_models": None, "allowed_providers": None, "model_fallbacks": None},
    "budgets": {"scope": None, "match": None},
}


class _Raw:
    """Attribute access over a raw YAML mapping, with defaults for missing/ill-typed keys."""

    def __init__(self, data: Any, fields: dict[str, Any]):
        data = data if isinstance(data, dict) else {}
        self.id = _raw_scalar(data.get("id"))
        for name, spec in fields.items():
            value = data.get(name)
            if isinstance(spec, tuple) and spec[0] == "list":
                items = value if isinstance(value, list) else []
                setattr(self, name, [_Raw(v, spec[1]) for v in items])
            elif isinstance(spec, tuple) and spec[0] == "obj":
                setattr(self, name, _Raw(value, spec[1]))
            elif isinstance(value, list):
                setattr(self, name, [_raw_scalar(v) for v in value])
            elif value is None or isinstance(value, str):
                setattr(self, name, spec if value is None else value)
            else:
                setattr(self, name, spec)


def _raw_scalar(v: Any) -> str | None:
    return v if isinstance(v, str) else None


class _RawConfig:
    def __init__(self, data: dict[str, Any]):
        for section, fields in _RAW_SECTIONS.items():
            items = data.get(section)
            setattr(
                self, section, [_Raw(v, fields) for v in items] if isinstance(items, list) else []
            )
        sc = data.get("shared_capacity")
        sc_providers = sc.get("providers") if isinstance(sc, dict) else None
        self.shared_capacity = _Raw({"providers": sc_providers}, {"providers": None})


def _raw_cross_reference_problems(data: dict[str, Any], reported: list[ConfigProblem]):
    """Cross-reference problems of a config whose fields did not validate, minus those at
    (or under) a path that already has a field error."""
    taken = [p.path for p in reported]

    def covered(path: str) -> bool:
        return any(path == t or path.startswith((t + ".", t + "[")) for t in taken)

    try:
        found = list(_cross_reference_problems(_RawConfig(data)))  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001 - best effort on a broken file; field errors stand
        return []
    return [p for p in found if not covered(p.path)]


# --------------------------------------------------------------------------- loading


class _DecimalLoader(yaml.SafeLoader):
    """SafeLoader that builds floats as Decimal from their source text: money never
    passes through binary floating point."""


# libyaml's parser (PyYAML's C extension) composes a config ~10x faster than the pure-Python
# one; the constructors (the Decimal one included) are the same Python code, so money still
# never passes through float. Without the extension, the pure-Python loader is used.
_FastDecimalLoader: type[yaml.SafeLoader]
if getattr(yaml, "__with_libyaml__", False):

    class _CDecimalLoader(yaml.CSafeLoader):  # type: ignore[misc, name-defined]
        """CSafeLoader with `_DecimalLoader`'s Decimal float constructor."""

    _FastDecimalLoader = _CDecimalLoader  # type: ignore[assignment]
else:  # pragma: no cover - PyYAML built without libyaml
    _FastDecimalLoader = _DecimalLoader


def _construct_decimal(loader: yaml.SafeLoader, node: yaml.Node) -> Decimal:
    text = loader.construct_scalar(node).replace("_", "")  # type: ignore[arg-type]
    try:
        return Decimal(text)
    except InvalidOperation:  # .inf / .nan
        raise yaml.constructor.ConstructorError(
            None, None, f"{text!r} is not a finite number", node.start_mark
        ) from None


_DecimalLoader.add_constructor("tag:yaml.org,2002:float", _construct_decimal)
if _FastDecimalLoader is not _DecimalLoader:
    _FastDecimalLoader.add_constructor("tag:yaml.org,2002:float", _construct_decimal)


def _loc_to_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and part.startswith(("function-", "literal[")):
            continue  # pydantic's internal validator names
        else:
            out += f".{part}" if out else str(part)
    return out


_UNKNOWN_KEY = "unknown key (typo? unknown keys are refused so a policy is never silently ignored)"
_INTERNAL_FIELDS = ("source",)


def parse_config(data: Any, source: str | Path = "<memory>") -> LedgerConfig:
    """Validate an already-parsed YAML document."""
    if not isinstance(data, dict):
        raise ConfigError(
            source, [ConfigProblem(path="", message="the file must be a YAML mapping")]
        )
    data = _floats_for_non_money(data)
    # `source` is a field only so load_config can remember the file; as a YAML key it is
    # unknown like any other (docs/config.md), not a way to move where relative paths resolve.
    internal = [ConfigProblem(path=k, message=_UNKNOWN_KEY) for k in _INTERNAL_FIELDS if k in data]
    data = {k: v for k, v in data.items() if k not in _INTERNAL_FIELDS}
    try:
        cfg = LedgerConfig.model_validate(data)
    except ValidationError as e:
        problems: list[ConfigProblem] = list(internal)
        for err in e.errors():
            ctx = err.get("ctx") or {}
            inner = ctx.get("error")
            if isinstance(inner, _CrossRefError):
                problems.extend(inner.problems)
                continue
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = _UNKNOWN_KEY
            elif err["type"] == "missing":
                msg = "required key is missing"
            msg = msg.removeprefix("Value error, ")
            problems.append(ConfigProblem(path=_loc_to_path(err["loc"]), message=msg))
        if not any(
            isinstance((err.get("ctx") or {}).get("error"), _CrossRefError) for err in e.errors()
        ):
            problems.extend(_raw_cross_reference_problems(data, problems))
        raise ConfigError(source, problems) from None
    if internal:
        raise ConfigError(source, internal)
    if isinstance(source, Path) or (isinstance(source, str) and source != "<memory>"):
        cfg = cfg.model_copy(update={"source": Path(source).resolve()})
    return cfg


# Non-money floats (timeouts, sensitivity) are fine as float; our loader makes every YAML
# float a Decimal, so convert those few fields back before validation.
_FLOAT_FIELDS = {
    ("providers", "*", "timeout_s"),
    ("workloads", "*", "deadline_s"),
    ("alerts", "sensitivity"),
    ("router", "cooldown_s"),
    ("router", "rate_limit_cooldown_s"),
    ("router", "idempotency_ttl_s"),
    ("router", "backoff_base_s"),
    ("router", "backoff_max_s"),
    ("router", "max_retry_after_s"),
}


def _floats_for_non_money(data: dict[str, Any]) -> dict[str, Any]:
    def walk(node: Any, path: tuple[str, ...]) -> Any:
        if isinstance(node, dict):
            return {k: walk(v, (*path, str(k))) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, (*path, "*")) for v in node]
        if isinstance(node, Decimal) and path in _FLOAT_FIELDS:
            return float(node)
        return node

    return walk(data, ())


def load_config(path: str | Path) -> LedgerConfig:
    """Read and validate a `ledger.yaml`. Raises `ConfigError` (every problem, with key paths);
    a missing file is `ConfigNotFoundError`, both a `ConfigError` and a `FileNotFoundError`."""
    p = Path(path)
    text = _read_text(p)
    root: yaml.Node | None = None
    try:
        # One parse: the node tree is checked for alias bombs and duplicate keys, then built.
        loader = _FastDecimalLoader(text)
        try:
            root = loader.get_single_node()
            _check_alias_expansion(root)
            data = loader.construct_document(root) if root is not None else None
        finally:
            loader.dispose()
    except _AliasBomb as e:
        raise ConfigError(p, [ConfigProblem(path=e.where, message=str(e))]) from None
    except RecursionError:  # PyYAML's parser recurses once per nesting level
        problem = ConfigProblem(path="", message="nested too deeply to be a config file")
        raise ConfigError(p, [problem]) from None
    except yaml.reader.ReaderError as e:  # a character YAML forbids (NUL, other controls)
        line = text.count("\n", 0, e.position) + 1
        problem = ConfigProblem(
            path=f"line {line}",
            message=f"invalid YAML: character #x{e.character:04x} is not "
            "allowed in YAML (is this a binary file?)",
        )
        raise ConfigError(p, [problem]) from None
    except yaml.YAMLError as e:
        if "maximum nesting depth" in str(getattr(e, "problem", "")):  # libyaml's depth bound
            problem = ConfigProblem(path="", message="nested too deeply to be a config file")
            raise ConfigError(p, [problem]) from None
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"
        # str(e) repeats the marks as `in "<unicode string>"` plus source excerpts: say the
        # problem and its context in one line instead (the file is already named).
        detail = getattr(e, "problem", None) or str(e)
        context, cmark = getattr(e, "context", None), getattr(e, "context_mark", None)
        if context:
            detail += f" ({context}" + (f" at line {cmark.line + 1}" if cmark else "") + ")"
        problem = ConfigProblem(path=where, message=f"invalid YAML: {detail}")
        raise ConfigError(p, [problem]) from None
    dupes = _duplicate_key_problems(root)
    try:
        cfg = parse_config(data, p)
    except ConfigError as e:
        raise ConfigError(p, dupes + e.problems) from None
    if dupes:
        raise ConfigError(p, dupes)
    return cfg


# A ledger.yaml is a few hundred lines; anything this large is not one (and would only be
# slow to refuse later).
MAX_CONFIG_BYTES = 5 * 1024 * 1024
# YAML aliases let a tiny file describe an exponentially large document ("billion laughs"):
# PyYAML shares the aliased nodes, but validating them walks every expansion. A real config
# expands to a few thousand nodes.
MAX_EXPANDED_NODES = 200_000


def _read_text(p: Path) -> str:
    """The file's text, or a ConfigError that says why it cannot be read (never a traceback)."""
    try:
        if p.is_dir():
            raise ConfigError(p, [ConfigProblem(path="", message="is a directory, not a file")])
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ConfigNotFoundError(p) from None
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise ConfigError(p, [ConfigProblem(path="", message=f"cannot read: {reason}")]) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(
            p,
            [
                ConfigProblem(
                    path="",
                    message=f"{len(raw):,} bytes is too large for a config file "
                    f"(at most {MAX_CONFIG_BYTES:,})",
                )
            ],
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        col = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        raise ConfigError(
            p,
            [
                ConfigProblem(
                    path=f"line {line}, column {col}",
                    message=f"not UTF-8 text (byte 0x{raw[e.start]:02x}); save the file as UTF-8",
                )
            ],
        ) from None


class _AliasBomb(ValueError):
    def __init__(self, where: str, size: int):
        self.where = where
        if size < 0:
            super().__init__("a YAML alias refers to a node that contains it (a recursive alias)")
            return
        super().__init__(
            f"YAML aliases expand this document to more than {MAX_EXPANDED_NODES:,} nodes "
            f"({size:,} or more); a config never needs that many (a 'billion laughs' file?)"
        )


def _check_alias_expansion(root: yaml.Node | None) -> None:
    """Refuse a document (its composed node tree) whose aliases expand past MAX_EXPANDED_NODES,
    in time linear in the file: composing shares aliased nodes, and sizes are memoised per
    node."""
    if root is None:
        return
    sizes: dict[int, int] = {}
    visiting: set[int] = set()
    # Iterative post-order walk: deep nesting must not hit Python's recursion limit.
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if id(node) in sizes:
            continue
        if isinstance(node, yaml.MappingNode):
            children = [c for kv in node.value for c in kv]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        else:
            sizes[id(node)] = 1
            continue
        if not done:
            if id(node) in visiting:  # an alias to its own ancestor: infinitely large
                mark = node.start_mark
                raise _AliasBomb(f"line {mark.line + 1}, column {mark.column + 1}", -1)
            visiting.add(id(node))
            stack.append((node, True))
            stack.extend((c, False) for c in children if id(c) not in sizes)
            continue
        visiting.discard(id(node))
        size = 1 + sum(sizes.get(id(c), 1) for c in children)
        if size > MAX_EXPANDED_NODES:
            mark = node.start_mark
            raise _AliasBomb(f"line {mark.line + 1}, column {mark.column + 1}", size)
        sizes[id(node)] = size


def _duplicate_key_problems(root: yaml.Node | None) -> list[ConfigProblem]:
    """YAML keeps only the last of two equal keys in a mapping: a repeated `filters:` or
    `zdr:` would silently drop a policy, so report it (over the composed node tree)."""
    problems: list[ConfigProblem] = []

    def walk(node: yaml.Node | None, prefix: str) -> None:
        if isinstance(node, yaml.MappingNode):
            first: dict[str, int] = {}
            for k, v in node.value:
                name = str(k.value)
                path = f"{prefix}.{name}" if prefix else name
                if name in first and name != "<<":
                    problems.append(
                        ConfigProblem(
                            path=path,
                            message=f"duplicate key {name!r} (first on line {first[name]}, again on "
                            f"line {k.start_mark.line + 1}): YAML keeps only the last value",
                        )
                    )
                first.setdefault(name, k.start_mark.line + 1)
                walk(v, path)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, f"{prefix}[{i}]")

    walk(root, "")
    return problems
