"""`clvtool predict` and the prediction columns of `customers` (issue 5) through the CLI."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from clvtool.cli import app

CAL_END = "1997-09-30"


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def ok(result):
    assert result.exit_code == 0, (result.exit_code, result.stderr, result.exception)
    assert "Traceback" not in result.output
    return result


def no_nan(obj) -> bool:
    if isinstance(obj, dict):
        return all(no_nan(v) for v in obj.values())
    if isinstance(obj, list):
        return all(no_nan(v) for v in obj)
    return not (isinstance(obj, float) and not math.isfinite(obj))


@pytest.fixture(scope="module")
def cdnow_report(cdnow_path_module: Path) -> dict:
    result = ok(run("predict", str(cdnow_path_module), "--calibration-end", CAL_END, "-f", "json"))
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def cdnow_path_module() -> Path:
    return Path(__file__).parent / "data" / "cdnow" / "transactions.csv"


def test_predict_json_keys_are_fixed(cdnow_report: dict) -> None:
    assert set(cdnow_report) == {"model", "spend_model", "calibration", "holdout"}
    assert set(cdnow_report["model"]) == {
        "name", "params", "std_errors", "log_likelihood", "customers", "converged", "time_unit",
    }  # fmt: skip
    assert set(cdnow_report["spend_model"]) == {"name", "params", "std_errors", "log_likelihood", "customers"}
    assert set(cdnow_report["spend_model"]["params"]) == {"p", "q", "gamma"}
    assert set(cdnow_report["calibration"]) == {"start", "end"}
    assert set(cdnow_report["holdout"]) == {
        "start", "end", "actual_total", "predicted_total", "mae", "rmse", "by_frequency", "baseline",
    }  # fmt: skip
    assert set(cdnow_report["holdout"]["baseline"]) == {"predicted_total", "mae", "rmse"}
    assert no_nan(cdnow_report)


def test_predict_reproduces_the_published_cdnow_fit(cdnow_report: dict) -> None:
    model = cdnow_report["model"]
    assert model["name"] == "bgnbd" and model["converged"] is True and model["time_unit"] == "week"
    assert model["customers"] == 2357
    published = {"r": 0.2426, "alpha": 4.414, "a": 0.793, "b": 2.426}
    for name, value in published.items():
        assert model["params"][name] == pytest.approx(value, rel=0.01), name
        assert model["std_errors"][name] is not None and model["std_errors"][name] > 0
    assert model["log_likelihood"] == pytest.approx(-9582.43, abs=0.05)
    spend = cdnow_report["spend_model"]
    assert spend["customers"] == 946
    for name, value in {"p": 6.25, "q": 3.74, "gamma": 15.44}.items():
        assert spend["params"][name] == pytest.approx(value, rel=0.01), name
    assert cdnow_report["calibration"] == {"start": "1997-01-01", "end": CAL_END}


def test_predict_holdout_on_cdnow(cdnow_report: dict) -> None:
    hold = cdnow_report["holdout"]
    assert hold["start"] == "1997-10-01" and hold["end"] == "1998-06-30"
    assert hold["actual_total"] == 1882  # published: 1,882 repeat purchases in the 39-week holdout
    # The model's total is in the published range and it beats the naive rate on both error measures.
    assert 1500 < hold["predicted_total"] < 1900
    assert hold["mae"] < hold["baseline"]["mae"] and hold["rmse"] < hold["baseline"]["rmse"]
    groups = hold["by_frequency"]
    assert [g["frequency"] for g in groups] == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert sum(g["customers"] for g in groups) == 2357
    assert groups[0]["customers"] == 1411  # customers with x = 0 in the published summary
    actual_total = sum(g["customers"] * g["actual"] for g in groups)
    assert actual_total == pytest.approx(1882)


def test_holdout_days_equals_the_calibration_end(cdnow_path_module: Path, cdnow_report: dict) -> None:
    # 1998-06-30 minus 273 days is 1997-09-30.
    result = ok(run("predict", str(cdnow_path_module), "--holdout", "273", "-f", "json"))
    assert json.loads(result.stdout) == cdnow_report


@pytest.mark.parametrize(
    "model,names", [("pareto", {"r", "alpha", "s", "beta"}), ("mbgnbd", {"r", "alpha", "a", "b"})]
)
def test_other_models(cdnow_path_module: Path, model: str, names: set[str]) -> None:
    result = ok(
        run("predict", str(cdnow_path_module), "--calibration-end", CAL_END, "--model", model, "-f", "json")
    )
    report = json.loads(result.stdout)
    assert report["model"]["name"] == model and set(report["model"]["params"]) == names
    if model == "pareto":
        assert report["model"]["log_likelihood"] == pytest.approx(-9594.98, abs=0.05)
        assert report["model"]["params"]["s"] == pytest.approx(0.606, rel=0.01)


@pytest.mark.parametrize("fmt", ["csv", "tsv", "markdown", "jsonl", "table"])
def test_predict_every_format(cdnow_path_module: Path, fmt: str) -> None:
    result = ok(run("predict", str(cdnow_path_module), "--calibration-end", CAL_END, "-f", fmt))
    assert "r" in result.stdout and "gamma" in result.stdout
    if fmt == "csv":
        rows = pl.read_csv(result.stdout.encode())
        assert rows.columns == ["model", "parameter", "estimate", "std_error"]
        assert rows.height == 7
    if fmt == "table":
        assert "1,882" in result.stdout and "7+" in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["--calibration-end", "1996-12-31"],  # before all data
        ["--calibration-end", "1998-07-31"],  # after all data: no holdout
        ["--calibration-end", CAL_END, "--holdout", "30"],  # both
        ["--calibration-end", "not-a-date"],
        ["--model", "weibull"],
    ],
)
def test_bad_calibration_is_a_usage_error(cdnow_path_module: Path, args: list[str]) -> None:
    result = run("predict", str(cdnow_path_module), *args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


def write(name: str, text: str) -> str:
    Path(name).write_text(text, encoding="utf-8")
    return name


def test_single_purchases_only_warns_and_leaves_columns_empty() -> None:
    rows = "\n".join(f"c{i},2024-01-{i + 1:02d},{10 + i}" for i in range(20))
    name = write("once.csv", "customer_id,date,amount\n" + rows + "\n")
    result = ok(run("customers", name, "-f", "json"))
    assert "warning" in result.stderr and "repeat" in result.stderr
    records = json.loads(result.stdout)
    assert len(records) == 20
    assert all(r["predicted_clv"] is None and r["p_alive"] is None for r in records)
    assert no_nan(records)
    report = ok(run("predict", name, "-f", "json"))
    assert report.stdout.strip() and no_nan(json.loads(report.stdout))


def test_identical_statistics_for_everyone_never_give_nan() -> None:
    rows = []
    for i in range(30):
        rows += [f"c{i},2024-01-01,10", f"c{i},2024-02-01,10", f"c{i},2024-03-01,10"]
    name = write("same.csv", "customer_id,date,amount\n" + "\n".join(rows) + "\n")
    result = ok(run("customers", name, "-f", "json"))
    assert no_nan(json.loads(result.stdout))
    ok(run("predict", name, "-f", "json"))


def test_extreme_frequency_customers_stay_finite() -> None:
    start = dt.date(2023, 1, 1)
    rows = [f"heavy,{start + dt.timedelta(days=d)},5" for d in range(0, 600, 2)]  # 300 purchase days
    for i in range(60):
        rows += [
            f"c{i},{start + dt.timedelta(days=i)},20",
            f"c{i},{start + dt.timedelta(days=i + 40 + i % 7)},15",
        ]
    rows += [f"o{i},{start + dt.timedelta(days=3 * i)},12" for i in range(80)]
    name = write("heavy.csv", "customer_id,date,amount\n" + "\n".join(rows) + "\n")
    for model in ("bgnbd", "pareto", "mbgnbd"):
        result = ok(
            run("customers", name, "--model", model, "-f", "json", "--set", "model.horizon_months=12")
        )
        records = json.loads(result.stdout)
        assert no_nan(records)
        heavy = next(r for r in records if r["customer_id"] == "heavy")
        assert heavy["frequency"] == 299
        if heavy["expected_orders"] is not None:
            assert 0 <= heavy["p_alive"] <= 1 and heavy["expected_orders"] >= 0


def test_customers_with_predictions_rank_by_total_clv(cdnow_path_module: Path) -> None:
    result = ok(run("customers", str(cdnow_path_module), "--as-of", CAL_END, "-f", "csv"))
    table = pl.read_csv(result.stdout.encode(), schema_overrides={"customer_id": pl.String})
    assert table["predicted_clv"].null_count() == 0
    assert (table["total_clv"] - table["historic_clv"] - table["predicted_clv"]).abs().max() < 0.011
    assert table["total_clv"].to_list() == sorted(table["total_clv"].to_list(), reverse=True)
    assert table["rank"].to_list() == list(range(1, 2358))
    assert table["p_alive"].min() >= 0 and table["p_alive"].max() <= 1


def test_horizon_zero_predicts_nothing(cdnow_path_module: Path) -> None:
    result = ok(
        run(
            "customers",
            str(cdnow_path_module),
            "--as-of",
            CAL_END,
            "-f",
            "csv",
            "--set",
            "model.horizon_months=0",
        )
    )
    table = pl.read_csv(result.stdout.encode())
    assert table["predicted_clv"].abs().max() == 0
    assert table["expected_orders"].abs().max() == 0


def test_no_predict_leaves_prediction_columns_empty(cdnow_path_module: Path) -> None:
    result = ok(run("customers", str(cdnow_path_module), "--no-predict", "-f", "json"))
    records = json.loads(result.stdout)
    assert all(r["predicted_clv"] is None and r["total_clv"] is None for r in records)
    values = [r["historic_clv"] for r in records]
    assert values == sorted(values, reverse=True)  # default sort falls back to historic_clv


def test_predictions_with_and_without_the_day_key_agree() -> None:
    """predict_customers packs whole days into one key; without the day columns it sorts three keys."""
    import polars as pl

    from clvtool.config import resolve_settings
    from clvtool.io.transactions import load_transactions
    from clvtool.metrics.customer_table import customer_metrics
    from clvtool.models.predictions import predict_customers

    settings = resolve_settings({}, {}, {})
    sample = Path(__file__).resolve().parents[1] / "sample_data" / "transactions.csv"
    tx = load_transactions([str(sample)], settings.transactions)
    frame = customer_metrics(tx.frame, settings, as_of=tx.as_of, predict=False).frame
    keyed = predict_customers(frame)
    plain = predict_customers(frame.drop("first_order", "last_order", "tenure_days"))
    assert keyed.model is not None and plain.model is not None
    assert keyed.model.params == plain.model.params
    assert keyed.columns.equals(plain.columns)
    assert keyed.columns["p_alive"].null_count() < keyed.columns.height
    assert pl.Series(frame["customer_id"]).equals(keyed.columns["customer_id"])
