"""Settings: built-in defaults, the YAML file, CLVTOOL_* environment variables and flags, merged.

Precedence (PRODUCT §2): flag > environment > config file > default. The file is found as
--config > $CLVTOOL_CONFIG > ./clvtool.yaml. `resolve_settings` is pure: it takes the pieces and
returns one frozen Settings; discovery and reading live in `load_settings`.
"""

from __future__ import annotations

import copy
import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clvtool.errors import ConfigError, FlagError
from clvtool.io.schema import DEFAULT_EXCLUDE_STATUSES

ENV_PREFIX = "CLVTOOL_"
CONFIG_ENV = "CLVTOOL_CONFIG"
DEFAULT_CONFIG_NAME = "clvtool.yaml"

# Every key with its default. `None` defaults take their type from KEY_TYPES.
DEFAULTS: dict[str, dict[str, Any]] = {
    "transactions": {
        "path": None,
        "preset": None,
        "columns": {},
        "date_format": None,
        "timezone": "UTC",
        "delimiter": None,
        "decimal_comma": False,
        "encoding": "utf-8",
        "exclude_statuses": list(DEFAULT_EXCLUDE_STATUSES),
    },
    "spend": {"path": None, "preset": None, "columns": {}},
    "customers": {"path": None, "columns": {}},
    "analysis": {
        "period": "month",
        "margin_rate": 1.0,
        "churn_days": "auto",
        "cac_mode": "channel",
        "channel_aliases": {},
        "left_censor_days": 30,
        "segments": {},  # custom RFM map {segment: ["R,FM", ...]}; empty = the standard 11 segments
        "segment_actions": {},  # suggested action per segment name
    },
    "model": {
        "purchase_model": "bgnbd",
        "time_unit": "week",
        "horizon_months": 12,
        "discount_rate": 0.10,
    },
    "output": {"float_precision": 2},
}

CHOICES: dict[str, tuple[Any, ...]] = {
    "transactions.preset": (None, "shopify", "stripe", "woocommerce"),
    "spend.preset": (None, "google-ads", "meta-ads"),
    "analysis.period": ("month", "week", "quarter"),
    "analysis.cac_mode": ("channel", "blended"),
    "model.purchase_model": ("bgnbd", "pareto", "mbgnbd", "none"),
    "model.time_unit": ("day", "week", "month"),
}

KEY_TYPES: dict[str, tuple[type, ...]] = {
    "transactions.path": (str, list),
    "transactions.date_format": (str,),
    "transactions.delimiter": (str,),
    "spend.path": (str,),
    "customers.path": (str,),
    "analysis.churn_days": (str, int, float),
    "analysis.segments": (dict,),
}

# Config keys that command-line options set, for messages about a bad option value.
FLAG_NAMES = {
    "analysis.period": "--period",
    "analysis.cac_mode": "--cac-mode",
    "model.purchase_model": "--model",
    "model.horizon_months": "--horizon",
    "model.discount_rate": "--discount-rate",
    "spend.path": "--spend",
    "customers.path": "--customers",
}

TIME_UNIT_DAYS = {"day": 1.0, "week": 7.0, "month": 365.25 / 12}


@dataclass(frozen=True)
class InputSettings:
    """How one input (transactions, spend or customers) is read."""

    path: str | list[str] | None = None
    preset: str | None = None
    columns: Mapping[str, str] = field(default_factory=dict)
    date_format: str | None = None
    timezone: str = "UTC"
    delimiter: str | None = None
    decimal_comma: bool = False
    encoding: str = "utf-8"
    exclude_statuses: tuple[str, ...] = DEFAULT_EXCLUDE_STATUSES


@dataclass(frozen=True)
class AnalysisSettings:
    period: str = "month"
    margin_rate: float = 1.0
    churn_days: str | float = "auto"
    cac_mode: str = "channel"
    channel_aliases: Mapping[str, str] = field(default_factory=dict)
    left_censor_days: int = 30
    segments: Mapping[str, Any] = field(default_factory=dict)
    segment_actions: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelSettings:
    purchase_model: str = "bgnbd"
    time_unit: str = "week"
    horizon_months: int = 12
    discount_rate: float = 0.10

    @property
    def unit_days(self) -> float:
        """Length of the model time unit in days."""
        return TIME_UNIT_DAYS[self.time_unit]


@dataclass(frozen=True)
class OutputSettings:
    float_precision: int = 2


@dataclass(frozen=True)
class Settings:
    transactions: InputSettings = field(default_factory=InputSettings)
    spend: InputSettings = field(default_factory=InputSettings)
    customers: InputSettings = field(default_factory=InputSettings)
    analysis: AnalysisSettings = field(default_factory=AnalysisSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    output: OutputSettings = field(default_factory=OutputSettings)
    config_path: str | None = None


def _suggest(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.5)
    return f" Did you mean '{close[0]}'?" if close else f" Valid keys: {', '.join(options)}."


def _check_value(dotted: str, value: Any, where: str) -> Any:
    section, key = dotted.split(".", 1)
    default = DEFAULTS[section][key]
    if dotted in CHOICES:
        if value not in CHOICES[dotted]:
            valid = ", ".join(str(c) for c in CHOICES[dotted] if c is not None)
            raise ConfigError(f"{dotted} = {value!r} is not one of: {valid}.", source=where)
        return value
    if value is None:
        if default is not None:
            raise ConfigError(
                f"{dotted} needs a value (default: {default!r}); set one or remove the key.", source=where
            )
        return value
    expected: tuple[type, ...]
    if dotted in KEY_TYPES:
        expected = KEY_TYPES[dotted]
    elif isinstance(default, bool):
        expected = (bool,)
    elif isinstance(default, float):
        expected = (int, float)
    elif isinstance(default, int):
        expected = (int,)
    else:
        expected = (type(default),)
    ok = isinstance(value, expected) and not (isinstance(value, bool) and bool not in expected)
    if not ok:
        names = " or ".join(t.__name__ for t in expected)
        raise ConfigError(
            f"{dotted} must be {names}, got {type(value).__name__} {value!r}; fix the value.",
            source=where,
        )
    if (
        isinstance(default, dict)
        and dotted != "analysis.segments"
        and not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
    ):
        raise ConfigError(f"{dotted} must map names to names (text: text).", source=where)
    if key == "timezone":
        _check_timezone(dotted, value, where)
    if dotted == "analysis.segments" and value:
        from clvtool.metrics.segments import parse_segment_map

        try:
            parse_segment_map(value)
        except ConfigError as exc:
            raise ConfigError(str(exc), source=where) from None
    return value


def _check_timezone(dotted: str, value: Any, where: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"{dotted} = {value!r} is not a known time zone; use an IANA name such as UTC or Europe/Berlin.",
            source=where,
        ) from None


def validate_config(data: Any, where: str) -> dict[str, dict[str, Any]]:
    """Check a parsed config mapping against DEFAULTS; unknown keys name the closest valid one."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("the top level must be a mapping of sections.", source=where)
    clean: dict[str, dict[str, Any]] = {}
    for section, body in data.items():
        if section not in DEFAULTS:
            raise ConfigError(
                f"unknown section '{section}'.{_suggest(str(section), list(DEFAULTS))}",
                source=where,
            )
        if body is None:
            continue
        if not isinstance(body, dict):
            raise ConfigError(f"section '{section}' must be a mapping of keys.", source=where)
        for key, value in body.items():
            if key not in DEFAULTS[section]:
                options = [f"{section}.{k}" for k in DEFAULTS[section]]
                raise ConfigError(
                    f"unknown key '{section}.{key}'.{_suggest(f'{section}.{key}', options)}",
                    source=where,
                )
            clean.setdefault(section, {})[key] = _check_value(f"{section}.{key}", value, where)
    return clean


def parse_scalar(text: str) -> Any:
    """Parse an environment or --set value as a YAML scalar or flow collection (safe loader)."""
    import yaml

    try:
        return yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        return text


def _dotted_to_nested(dotted: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    nested: dict[str, dict[str, Any]] = {}
    for key, value in dotted.items():
        section, name = key.split(".", 1)
        nested.setdefault(section, {})[name] = value
    return nested


def env_overrides(environ: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Settings from CLVTOOL_<SECTION>_<KEY> variables, e.g. CLVTOOL_ANALYSIS_MARGIN_RATE=0.4."""
    dotted: dict[str, Any] = {}
    options = [f"{ENV_PREFIX}{s}_{k}".upper() for s in DEFAULTS for k in DEFAULTS[s]]
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name == CONFIG_ENV:
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        section, _, key = rest.partition("_")
        if section not in DEFAULTS or key not in DEFAULTS[section]:
            raise ConfigError(f"unknown environment variable {name}.{_suggest(name, options)}")
        dotted[f"{section}.{key}"] = parse_scalar(environ[name])
    return validate_config(_dotted_to_nested(dotted), "environment")


def set_overrides(assignments: list[str]) -> dict[str, dict[str, Any]]:
    """Settings from repeated `--set section.key=value` flags."""
    dotted: dict[str, Any] = {}
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep or "." not in key:
            raise ConfigError(
                f"--set {item!r} must look like section.key=value, e.g. analysis.margin_rate=0.4."
            )
        dotted[key.strip()] = parse_scalar(value)
    return validate_config(_dotted_to_nested(dotted), "--set")


def read_config_file(path: Path) -> dict[str, dict[str, Any]]:
    """Read and validate a YAML config with the safe loader (no Python object tags)."""
    import yaml

    where = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            "config file not found; check the path or unset CLVTOOL_CONFIG.", source=where
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config ({exc}); save it as UTF-8 text.", source=where) from None
    try:
        data = yaml.safe_load(text)
    except yaml.constructor.ConstructorError as exc:
        tag = getattr(exc, "problem", "") or "an unsupported tag"
        raise ConfigError(
            f"refused {tag.strip()}: only plain YAML values are allowed; remove the tag.",
            source=where,
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{at}{problem}; fix the YAML syntax.", source=where) from None
    return validate_config(data, where)


def find_config(flag: str | None, environ: Mapping[str, str], cwd: Path) -> Path | None:
    """Discovery order: --config > $CLVTOOL_CONFIG > ./clvtool.yaml."""
    if flag:
        return Path(flag)
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV])
    local = cwd / DEFAULT_CONFIG_NAME
    return local if local.is_file() else None


def resolve_settings(
    file: Mapping[str, Mapping[str, Any]],
    env: Mapping[str, Mapping[str, Any]],
    flags: Mapping[str, Mapping[str, Any]],
    config_path: str | None = None,
) -> Settings:
    """Merge the layers (later wins: defaults, file, env, flags) into Settings. Pure."""
    merged = copy.deepcopy(DEFAULTS)
    for layer in (file, env, flags):
        for section, body in layer.items():
            for key, value in body.items():
                merged[section][key] = value
    t, s, c = merged["transactions"], merged["spend"], merged["customers"]
    reader_keys = ("date_format", "timezone", "delimiter", "decimal_comma", "encoding")
    shared = {k: t[k] for k in reader_keys}
    analysis = dict(merged["analysis"])
    return Settings(
        transactions=InputSettings(
            **{k: v for k, v in t.items() if k != "exclude_statuses"},
            exclude_statuses=tuple(str(x).strip().lower() for x in t["exclude_statuses"] or ()),
        ),
        spend=InputSettings(**s, **shared),
        customers=InputSettings(**c, **shared),
        analysis=AnalysisSettings(**analysis),
        model=ModelSettings(**merged["model"]),
        output=OutputSettings(**merged["output"]),
        config_path=config_path,
    )


def load_settings(
    config_flag: str | None,
    flags: Mapping[str, Mapping[str, Any]] | None = None,
    set_items: list[str] | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Settings:
    """Find and read the config, read the environment, and merge with the flags."""
    environ = os.environ if environ is None else environ
    path = find_config(config_flag, environ, cwd or Path.cwd())
    file_layer = read_config_file(path) if path else {}
    flag_layer: dict[str, dict[str, Any]] = {}
    try:
        from_flags = validate_config(dict(flags or {}), "")
    except ConfigError as exc:
        message = str(exc)
        for dotted, flag in FLAG_NAMES.items():
            message = message.replace(dotted, flag)
        raise FlagError(message) from None
    for layer in (from_flags, set_overrides(set_items or [])):
        for section, body in layer.items():
            flag_layer.setdefault(section, {}).update(body)
    return resolve_settings(file_layer, env_overrides(environ), flag_layer, str(path) if path else None)
