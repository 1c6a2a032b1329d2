"""Engine tests of clvtool.config: validation, YAML, CLVTOOL_* variables, --set, precedence, discovery."""

from __future__ import annotations

from pathlib import Path

import pytest

from clvtool.config import (
    DEFAULTS,
    InputSettings,
    Settings,
    env_overrides,
    find_config,
    load_settings,
    read_config_file,
    resolve_settings,
    set_overrides,
    validate_config,
)
from clvtool.errors import ClvError, ConfigError
from clvtool.io.schema import DEFAULT_EXCLUDE_STATUSES


def write_yaml(directory: Path, text: str, name: str = "clvtool.yaml") -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


# --- validate_config ------------------------------------------------------------------------


def test_valid_config_passes_through():
    data = {
        "transactions": {
            "path": ["a.csv", "b.csv"],
            "columns": {"customer_id": "buyer", "date": "when"},
            "date_format": "%d/%m/%Y",
            "timezone": "Europe/Berlin",
            "delimiter": ";",
            "decimal_comma": True,
            "encoding": "latin-1",
            "exclude_statuses": ["test"],
        },
        "analysis": {
            "margin_rate": 0.4,
            "churn_days": 90,
            "channel_aliases": {"Facebook Ads": "paid_social"},
        },
        "model": {"purchase_model": "pareto", "time_unit": "day", "horizon_months": 6, "discount_rate": 0.08},
        "output": {"float_precision": 3},
        "spend": None,  # an empty section is allowed
    }
    clean = validate_config(data, "f.yaml")
    assert clean == {k: v for k, v in data.items() if v is not None}


def test_none_and_empty_mapping_are_empty_configs():
    assert validate_config(None, "f.yaml") == {}
    assert validate_config({}, "f.yaml") == {}


def test_integer_is_accepted_for_a_float_key():
    assert validate_config({"analysis": {"margin_rate": 1}}, "f.yaml") == {"analysis": {"margin_rate": 1}}


def test_unknown_key_names_it_and_suggests_the_closest_valid_one():
    with pytest.raises(ConfigError) as info:
        validate_config({"analysis": {"margn_rate": 0.3}}, "clvtool.yaml")
    message = str(info.value)
    assert "'analysis.margn_rate'" in message
    assert "Did you mean 'analysis.margin_rate'?" in message
    assert message.startswith("clvtool.yaml: ")


@pytest.mark.parametrize(
    ("section", "key", "suggestion"),
    [
        ("model", "horizon_month", "model.horizon_months"),
        ("transactions", "timezon", "transactions.timezone"),
        ("transactions", "decimal-comma", "transactions.decimal_comma"),
        ("output", "float_precission", "output.float_precision"),
        ("analysis", "cac-mode", "analysis.cac_mode"),
    ],
)
def test_unknown_key_suggestions(section, key, suggestion):
    with pytest.raises(ConfigError) as info:
        validate_config({section: {key: 1}}, "f.yaml")
    assert f"'{section}.{key}'" in str(info.value)
    assert f"'{suggestion}'" in str(info.value)


def test_unknown_section_names_it_and_suggests_the_closest_valid_one():
    with pytest.raises(ConfigError) as info:
        validate_config({"analysys": {"margin_rate": 0.3}}, "f.yaml")
    assert "'analysys'" in str(info.value)
    assert "Did you mean 'analysis'?" in str(info.value)


def test_unknown_section_far_from_anything_lists_the_valid_sections():
    with pytest.raises(ConfigError) as info:
        validate_config({"zzz": {}}, "f.yaml")
    for section in DEFAULTS:
        assert section in str(info.value)


@pytest.mark.parametrize(
    ("section", "key", "value", "type_name"),
    [
        ("analysis", "margin_rate", "x", "str"),
        ("analysis", "margin_rate", True, "bool"),
        ("analysis", "margin_rate", [0.3], "list"),
        ("model", "horizon_months", 1.5, "float"),
        ("model", "horizon_months", "12", "str"),
        ("model", "horizon_months", False, "bool"),
        ("transactions", "decimal_comma", "yes", "str"),
        ("transactions", "decimal_comma", 1, "int"),
        ("transactions", "exclude_statuses", "test", "str"),
        ("transactions", "columns", ["amount"], "list"),
        ("transactions", "timezone", 1, "int"),
        ("transactions", "path", 3, "int"),
        ("analysis", "churn_days", True, "bool"),
        ("output", "float_precision", 2.5, "float"),
    ],
)
def test_wrong_types(section, key, value, type_name):
    with pytest.raises(ConfigError) as info:
        validate_config({section: {key: value}}, "f.yaml")
    message = str(info.value)
    assert f"{section}.{key}" in message
    assert type_name in message


def test_mapping_values_must_be_text():
    with pytest.raises(ConfigError) as info:
        validate_config({"transactions": {"columns": {"amount": 3}}}, "f.yaml")
    assert "transactions.columns" in str(info.value)


@pytest.mark.parametrize(
    ("dotted", "value"),
    [
        ("analysis.period", "year"),
        ("analysis.period", "Month"),
        ("analysis.cac_mode", "average"),
        ("model.purchase_model", "xgboost"),
        ("model.time_unit", "hour"),
        ("transactions.preset", "magento"),
        ("spend.preset", "tiktok"),
    ],
)
def test_choices(dotted, value):
    section, key = dotted.split(".")
    with pytest.raises(ConfigError) as info:
        validate_config({section: {key: value}}, "f.yaml")
    assert dotted in str(info.value)
    assert repr(value) in str(info.value)


def test_choices_accept_their_values():
    data = {
        "analysis": {"period": "quarter", "cac_mode": "blended"},
        "model": {"purchase_model": "none", "time_unit": "month"},
        "transactions": {"preset": "shopify"},
        "spend": {"preset": "meta-ads"},
    }
    assert validate_config(data, "f.yaml") == data


def test_optional_keys_accept_null():
    data = {"transactions": {"preset": None, "date_format": None, "delimiter": None, "path": None}}
    assert validate_config(data, "f.yaml") == data


@pytest.mark.parametrize(
    ("section", "key"),
    [("transactions", "timezone"), ("transactions", "encoding"), ("analysis", "margin_rate")],
)
def test_null_for_a_key_that_needs_a_value_is_an_error(section, key):
    """timezone: null / encoding: null reach the reader as None and crash it with TypeError/AttributeError."""
    with pytest.raises(ConfigError) as info:
        validate_config({section: {key: None}}, "f.yaml")
    assert f"{section}.{key}" in str(info.value)


def test_unknown_time_zone_is_a_config_error():
    """An unknown zone otherwise reaches Polars and escapes load_transactions as a ComputeError."""
    with pytest.raises(ConfigError) as info:
        validate_config({"transactions": {"timezone": "Mars/Olympus"}}, "f.yaml")
    assert "transactions.timezone" in str(info.value)
    assert "Mars/Olympus" in str(info.value)


@pytest.mark.parametrize("data", [[1, 2], "analysis", 3])
def test_top_level_must_be_a_mapping(data):
    with pytest.raises(ConfigError):
        validate_config(data, "f.yaml")


def test_section_must_be_a_mapping():
    with pytest.raises(ConfigError) as info:
        validate_config({"analysis": [1]}, "f.yaml")
    assert "analysis" in str(info.value)


# --- read_config_file -----------------------------------------------------------------------


def test_read_config_file(tmp_path):
    path = write_yaml(
        tmp_path,
        "transactions:\n"
        "  columns: {customer_id: buyer, date: order_date}\n"
        "  decimal_comma: true\n"
        "  exclude_statuses: [Test, ' Refunded ']\n"
        "analysis:\n"
        "  margin_rate: 0.35\n"
        "  period: week\n"
        "model:\n"
        "  discount_rate: 0.08\n",
    )
    assert read_config_file(path) == {
        "transactions": {
            "columns": {"customer_id": "buyer", "date": "order_date"},
            "decimal_comma": True,
            "exclude_statuses": ["Test", " Refunded "],
        },
        "analysis": {"margin_rate": 0.35, "period": "week"},
        "model": {"discount_rate": 0.08},
    }


def test_the_example_config_in_the_repository_is_valid():
    example = Path(__file__).resolve().parent.parent / "config.example.yaml"
    clean = read_config_file(example)
    settings = resolve_settings(clean, {}, {})
    assert isinstance(settings, Settings)


def test_unknown_key_in_a_file_names_the_file_and_suggests(tmp_path):
    path = write_yaml(tmp_path, "analysis:\n  margn_rate: 0.3\n")
    with pytest.raises(ConfigError) as info:
        read_config_file(path)
    message = str(info.value)
    assert str(path) in message
    assert "'analysis.margn_rate'" in message
    assert "'analysis.margin_rate'" in message


@pytest.mark.parametrize(
    "template",
    [
        'analysis: !!python/object/apply:os.system ["echo pwned > {target}"]\n',
        '!!python/object/apply:os.system ["echo pwned > {target}"]\n',
        'model:\n  horizon_months: !!python/object/apply:os.system ["echo pwned > {target}"]\n',
        'analysis: !!python/object/new:os.system ["echo pwned > {target}"]\n',
        "analysis: !!python/name:os.system\n",
    ],
)
def test_python_tags_are_refused_and_nothing_runs(tmp_path, template):
    target = tmp_path / "pwned.txt"
    path = write_yaml(tmp_path, template.format(target=target))
    with pytest.raises(ConfigError) as info:
        read_config_file(path)
    assert str(path) in str(info.value)
    assert "tag" in str(info.value)
    assert not target.exists()


def test_python_tags_are_refused_through_load_settings(tmp_path):
    target = tmp_path / "pwned.txt"
    write_yaml(tmp_path, f'analysis: !!python/object/apply:os.system ["echo pwned > {target}"]\n')
    with pytest.raises(ConfigError):
        load_settings(None, environ={}, cwd=tmp_path)
    assert not target.exists()


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("analysis:\n  margin_rate: [unclosed\n", None),
        ("analysis:\n\tmargin_rate: 1\n", 2),
        ("analysis:\n  margin_rate: 1\n margin: 2\n", 3),
    ],
)
def test_yaml_syntax_error_is_a_config_error(tmp_path, text, line):
    path = write_yaml(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        read_config_file(path)
    assert str(path) in str(info.value)
    if line is not None:
        assert f"line {line}" in str(info.value)


def test_missing_config_file(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        read_config_file(path)
    assert str(path) in str(info.value)
    assert "not found" in str(info.value)


def test_config_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "clvtool.yaml"
    path.write_bytes("analysis:\n  period: Mär\n".encode("latin-1"))
    with pytest.raises(ConfigError) as info:
        read_config_file(path)
    assert str(path) in str(info.value)


def test_config_path_that_is_a_directory(tmp_path):
    with pytest.raises(ConfigError) as info:
        read_config_file(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_empty_config_file_is_an_empty_config(tmp_path):
    assert read_config_file(write_yaml(tmp_path, "")) == {}
    assert read_config_file(write_yaml(tmp_path, "# only a comment\n")) == {}


# --- environment and --set ------------------------------------------------------------------


def test_env_overrides_parse_yaml_scalars():
    env = {
        "CLVTOOL_ANALYSIS_MARGIN_RATE": "0.4",
        "CLVTOOL_MODEL_HORIZON_MONTHS": "6",
        "CLVTOOL_TRANSACTIONS_DECIMAL_COMMA": "true",
        "CLVTOOL_TRANSACTIONS_EXCLUDE_STATUSES": "[test, Refunded]",
        "CLVTOOL_TRANSACTIONS_DATE_FORMAT": "%d/%m/%Y",
        "CLVTOOL_TRANSACTIONS_TIMEZONE": "Europe/Berlin",
        "CLVTOOL_ANALYSIS_CHURN_DAYS": "90",
        "CLVTOOL_CONFIG": "ignored-here.yaml",
        "HOME": "/root",
        "CLVTOOLX": "not ours",
    }
    assert env_overrides(env) == {
        "analysis": {"margin_rate": 0.4, "churn_days": 90},
        "model": {"horizon_months": 6},
        "transactions": {
            "decimal_comma": True,
            "exclude_statuses": ["test", "Refunded"],
            "date_format": "%d/%m/%Y",
            "timezone": "Europe/Berlin",
        },
    }


def test_no_clvtool_variables_means_no_overrides():
    assert env_overrides({"PATH": "/bin", "CLVTOOL_CONFIG": "x.yaml"}) == {}


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [
        ("CLVTOOL_ANALYSIS_MARGN_RATE", "CLVTOOL_ANALYSIS_MARGIN_RATE"),
        ("CLVTOOL_MODEL_HORIZON", "CLVTOOL_MODEL_HORIZON_MONTHS"),
        ("CLVTOOL_TRANSACTION_TIMEZONE", "CLVTOOL_TRANSACTIONS_TIMEZONE"),
    ],
)
def test_unknown_clvtool_variable_is_an_error_with_a_suggestion(name, suggestion):
    with pytest.raises(ConfigError) as info:
        env_overrides({name: "1"})
    assert name in str(info.value)
    assert suggestion in str(info.value)


@pytest.mark.parametrize("name", ["CLVTOOL_FOO", "CLVTOOL_", "CLVTOOL_ANALYSIS"])
def test_unknown_clvtool_variable_is_an_error(name):
    with pytest.raises(ConfigError) as info:
        env_overrides({name: "1"})
    assert name in str(info.value)


def test_env_values_are_type_checked():
    with pytest.raises(ConfigError) as info:
        env_overrides({"CLVTOOL_ANALYSIS_MARGIN_RATE": "forty percent"})
    assert "analysis.margin_rate" in str(info.value)
    assert "environment" in str(info.value)
    with pytest.raises(ConfigError):
        env_overrides({"CLVTOOL_ANALYSIS_PERIOD": "fortnight"})


def test_set_overrides():
    items = ["analysis.margin_rate=0.4", "model.horizon_months=6", "transactions.delimiter=;"]
    assert set_overrides(items) == {
        "analysis": {"margin_rate": 0.4},
        "model": {"horizon_months": 6},
        "transactions": {"delimiter": ";"},
    }
    assert set_overrides(["analysis.channel_aliases={Facebook Ads: paid_social}"]) == {
        "analysis": {"channel_aliases": {"Facebook Ads": "paid_social"}}
    }
    assert set_overrides([]) == {}


@pytest.mark.parametrize("item", ["analysis.margin_rate", "margin_rate=0.4", "=0.4"])
def test_malformed_set_is_an_error(item):
    with pytest.raises(ConfigError) as info:
        set_overrides([item])
    assert "section.key=value" in str(info.value)


def test_set_with_unknown_key_suggests():
    with pytest.raises(ConfigError) as info:
        set_overrides(["analysis.margn_rate=0.3"])
    assert "'analysis.margin_rate'" in str(info.value)


def test_set_values_are_type_checked():
    with pytest.raises(ConfigError) as info:
        set_overrides(["model.horizon_months=soon"])
    assert "model.horizon_months" in str(info.value)


# --- resolve_settings (pure) ----------------------------------------------------------------


def test_defaults():
    settings = resolve_settings({}, {}, {})
    assert settings.transactions == InputSettings()
    assert settings.transactions.exclude_statuses == DEFAULT_EXCLUDE_STATUSES
    assert settings.transactions.timezone == "UTC"
    assert settings.transactions.encoding == "utf-8"
    assert settings.analysis.margin_rate == 1.0
    assert settings.analysis.period == "month"
    assert settings.model.purchase_model == "bgnbd"
    assert settings.model.horizon_months == 12
    assert settings.model.discount_rate == 0.10
    assert settings.output.float_precision == 2
    assert settings.config_path is None


def test_layers_later_wins_key_by_key():
    file = {"analysis": {"margin_rate": 0.3, "period": "week"}, "model": {"horizon_months": 24}}
    env = {"analysis": {"margin_rate": 0.5}}
    flags = {"model": {"horizon_months": 3}}
    settings = resolve_settings(file, env, flags, config_path="x.yaml")
    assert settings.analysis.margin_rate == 0.5  # env over file
    assert settings.analysis.period == "week"  # file over default, untouched by env
    assert settings.model.horizon_months == 3  # flag over file
    assert settings.config_path == "x.yaml"


def test_resolve_does_not_mutate_defaults_or_inputs():
    file = {"transactions": {"exclude_statuses": ["Test"]}}
    resolve_settings(file, {}, {})
    assert file == {"transactions": {"exclude_statuses": ["Test"]}}
    assert resolve_settings({}, {}, {}).transactions.exclude_statuses == DEFAULT_EXCLUDE_STATUSES


def test_exclude_statuses_are_trimmed_and_lower_cased():
    settings = resolve_settings({"transactions": {"exclude_statuses": ["Test", " Refunded "]}}, {}, {})
    assert settings.transactions.exclude_statuses == ("test", "refunded")


def test_reader_options_are_shared_with_spend_and_customers():
    file = {
        "transactions": {"timezone": "Europe/Berlin", "decimal_comma": True, "encoding": "latin-1"},
        "spend": {"path": "spend.csv"},
    }
    settings = resolve_settings(file, {}, {})
    for section in (settings.spend, settings.customers):
        assert section.timezone == "Europe/Berlin"
        assert section.decimal_comma is True
        assert section.encoding == "latin-1"
    assert settings.spend.path == "spend.csv"


# --- load_settings: precedence and discovery ------------------------------------------------


@pytest.fixture
def margin_file(tmp_path):
    return write_yaml(tmp_path, "analysis:\n  margin_rate: 0.3\n", name="conf.yaml")


def test_precedence_default(tmp_path):
    assert load_settings(None, environ={}, cwd=tmp_path).analysis.margin_rate == 1.0


def test_precedence_file_over_default(tmp_path, margin_file):
    assert load_settings(str(margin_file), environ={}, cwd=tmp_path).analysis.margin_rate == 0.3


def test_precedence_env_over_file(tmp_path, margin_file):
    env = {"CLVTOOL_ANALYSIS_MARGIN_RATE": "0.5"}
    assert load_settings(str(margin_file), environ=env, cwd=tmp_path).analysis.margin_rate == 0.5


def test_precedence_flag_over_env_and_file(tmp_path, margin_file):
    env = {"CLVTOOL_ANALYSIS_MARGIN_RATE": "0.5"}
    flags = {"analysis": {"margin_rate": 0.9}}
    settings = load_settings(str(margin_file), flags=flags, environ=env, cwd=tmp_path)
    assert settings.analysis.margin_rate == 0.9
    settings = load_settings(
        str(margin_file), set_items=["analysis.margin_rate=0.7"], environ=env, cwd=tmp_path
    )
    assert settings.analysis.margin_rate == 0.7


def test_precedence_is_per_key(tmp_path):
    path = write_yaml(
        tmp_path, "analysis:\n  margin_rate: 0.3\n  period: week\nmodel:\n  horizon_months: 24\n"
    )
    env = {"CLVTOOL_MODEL_HORIZON_MONTHS": "6", "CLVTOOL_ANALYSIS_PERIOD": "quarter"}
    settings = load_settings(str(path), flags={"analysis": {"period": "month"}}, environ=env, cwd=tmp_path)
    assert settings.analysis.margin_rate == 0.3  # file
    assert settings.model.horizon_months == 6  # env
    assert settings.analysis.period == "month"  # flag
    assert settings.model.time_unit == "week"  # default


def test_invalid_flags_and_env_are_config_errors(tmp_path):
    with pytest.raises(ConfigError):
        load_settings(None, flags={"analysis": {"margn_rate": 0.9}}, environ={}, cwd=tmp_path)
    with pytest.raises(ConfigError):
        load_settings(None, environ={"CLVTOOL_NOPE": "1"}, cwd=tmp_path)


def test_find_config_flag_first(tmp_path):
    write_yaml(tmp_path, "{}\n")
    env = {"CLVTOOL_CONFIG": str(tmp_path / "env.yaml")}
    assert find_config("flag.yaml", env, tmp_path) == Path("flag.yaml")


def test_find_config_env_second(tmp_path):
    write_yaml(tmp_path, "{}\n")
    env = {"CLVTOOL_CONFIG": str(tmp_path / "env.yaml")}
    assert find_config(None, env, tmp_path) == tmp_path / "env.yaml"


def test_find_config_local_file_third(tmp_path):
    write_yaml(tmp_path, "{}\n")
    assert find_config(None, {}, tmp_path) == tmp_path / "clvtool.yaml"
    assert find_config(None, {"CLVTOOL_CONFIG": ""}, tmp_path) == tmp_path / "clvtool.yaml"


def test_find_config_none(tmp_path):
    assert find_config(None, {}, tmp_path) is None
    (tmp_path / "clvtool.yaml").mkdir()  # a directory of that name is not a config file
    assert find_config(None, {}, tmp_path) is None


def test_discovery_through_load_settings(tmp_path):
    flag = write_yaml(tmp_path, "analysis:\n  margin_rate: 0.1\n", name="flag.yaml")
    env_file = write_yaml(tmp_path, "analysis:\n  margin_rate: 0.2\n", name="env.yaml")
    write_yaml(tmp_path, "analysis:\n  margin_rate: 0.3\n")  # ./clvtool.yaml
    env = {"CLVTOOL_CONFIG": str(env_file)}

    settings = load_settings(str(flag), environ=env, cwd=tmp_path)
    assert (settings.analysis.margin_rate, settings.config_path) == (0.1, str(flag))
    settings = load_settings(None, environ=env, cwd=tmp_path)
    assert (settings.analysis.margin_rate, settings.config_path) == (0.2, str(env_file))
    settings = load_settings(None, environ={}, cwd=tmp_path)
    assert (settings.analysis.margin_rate, settings.config_path) == (0.3, str(tmp_path / "clvtool.yaml"))
    (tmp_path / "elsewhere").mkdir()
    settings = load_settings(None, environ={}, cwd=tmp_path / "elsewhere")
    assert (settings.analysis.margin_rate, settings.config_path) == (1.0, None)


def test_config_named_by_env_must_exist(tmp_path):
    env = {"CLVTOOL_CONFIG": str(tmp_path / "missing.yaml")}
    with pytest.raises(ConfigError) as info:
        load_settings(None, environ=env, cwd=tmp_path)
    assert "missing.yaml" in str(info.value)
    assert "CLVTOOL_CONFIG" in str(info.value)


def test_config_errors_are_clv_errors():
    assert issubclass(ConfigError, ClvError)
    with pytest.raises(ClvError):
        validate_config({"nope": {}}, "f.yaml")
