"""The `predict` command's views: parameters with standard errors, fit figures, holdout validation."""

from __future__ import annotations

from typing import Any

import polars as pl

from clvtool.metrics.holdout import PredictReport

TITLES = {"bgnbd": "BG/NBD", "pareto": "Pareto/NBD", "mbgnbd": "MBG/NBD", "gamma_gamma": "Gamma-Gamma"}


def parameter_table(report: PredictReport) -> pl.DataFrame:
    """model, parameter, estimate, std_error: one row per parameter of both models."""
    rows = []
    for fit in (report.model, report.spend_model):
        if not fit:
            continue
        for name, value in fit["params"].items():
            rows.append((fit["name"], name, value, fit["std_errors"].get(name)))
    return pl.DataFrame(
        rows,
        schema={"model": pl.String, "parameter": pl.String, "estimate": pl.Float64, "std_error": pl.Float64},
        orient="row",
    )


def _num(value: Any, places: int = 4) -> str:
    return "" if value is None else f"{value:,.{places}f}"


def predict_view(report: PredictReport) -> Any:
    """Fit summaries and, with a holdout, the validation tables, as one Rich renderable."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    parts: list[Any] = []
    for fit in (report.model, report.spend_model):
        if not fit:
            continue
        unit = f", time unit {fit['time_unit']}" if fit.get("time_unit") else ""
        ll = _num(fit["log_likelihood"], 2)
        title = f"{TITLES.get(fit['name'], fit['name'])} · {fit['customers']:,} customers · log-likelihood {ll}{unit}"
        parts.append(Text(title, style="bold"))
        table = Table(box=None, header_style="bold", pad_edge=False)
        for col in ("parameter", "estimate", "std. error"):
            table.add_column(col, justify="left" if col == "parameter" else "right")
        for name, value in fit["params"].items():
            table.add_row(Text(name), Text(_num(value)), Text(_num(fit["std_errors"].get(name))))
        parts += [table, Text("")]
    cal = report.calibration
    parts.append(Text(f"calibration {cal['start']} … {cal['end']}"))
    hold = report.holdout
    if hold:
        base = hold["baseline"]
        parts.append(
            Text(
                f"holdout {hold['start']} … {hold['end']}: actual {hold['actual_total']:,} repeat purchases, "
                f"predicted {hold['predicted_total']:,.1f} (MAE {hold['mae']:.3f}, RMSE {hold['rmse']:.3f}); "
                f"naive rate baseline {base['predicted_total']:,.1f} (MAE {base['mae']:.3f}, RMSE {base['rmse']:.3f})"
            )
        )
        table = Table(
            title="mean holdout purchases by calibration frequency",
            title_justify="left",
            box=None,
            header_style="bold",
            pad_edge=False,
        )
        for col in ("frequency", "customers", "actual", "predicted", "baseline"):
            table.add_column(col, justify="right")
        for row in hold["by_frequency"]:
            table.add_row(
                Text(row["frequency"]),
                Text(f"{row['customers']:,}"),
                Text(_num(row["actual"], 3)),
                Text(_num(row["predicted"], 3)),
                Text(_num(row["baseline"], 3)),
            )
        parts.append(table)
    return Group(*parts)
