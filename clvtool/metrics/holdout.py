"""Calibration/holdout validation (PRODUCT §5.4): actual repeat purchases in the holdout, error measures.

Actual purchases are counted as in §5.1: purchase days (same-day purchases merged) after the calibration
end up to the holdout end, per calibration customer. The naive baseline predicts each customer's
calibration repeat rate (frequency / T) times the holdout length.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from clvtool.io.schema import CUSTOMER_ID

FREQUENCY_GROUPS = ("0", "1", "2", "3", "4", "5", "6", "7+")


def holdout_actuals(
    orders: pl.DataFrame, customers: pl.Series, *, after: dt.date, until: dt.date
) -> pl.DataFrame:
    """customer_id, actual: purchase days in (after, until] of each customer in `customers` (0 if none).

    `orders` is the order frame (metrics.customers.order_frame) of all data up to `until`.
    """
    lo = (after - dt.date(1970, 1, 1)).days
    hi = (until - dt.date(1970, 1, 1)).days
    counted = (
        orders.lazy()
        .filter((pl.col("is_purchase") == 1) & (pl.col("day") > lo) & (pl.col("day") <= hi))
        .group_by(CUSTOMER_ID)
        .agg(pl.col("day").n_unique().alias("actual"))
        .collect()
    )
    base = pl.DataFrame({CUSTOMER_ID: customers})
    return base.join(counted, on=CUSTOMER_ID, how="left").with_columns(
        pl.col("actual").fill_null(0).cast(pl.Int64)
    )


@dataclass(frozen=True)
class ErrorSummary:
    predicted_total: float
    mae: float
    rmse: float


def errors(actual: np.ndarray, predicted: np.ndarray) -> ErrorSummary:
    """Total predicted, per-customer mean absolute and root-mean-square error."""
    diff = predicted - actual
    n = max(len(actual), 1)
    return ErrorSummary(
        predicted_total=float(predicted.sum()),
        mae=float(np.abs(diff).sum() / n),
        rmse=float(np.sqrt((diff**2).sum() / n)),
    )


def naive_rate(frequency: np.ndarray, T: np.ndarray, horizon: float) -> np.ndarray:
    """Baseline: the calibration repeat rate (frequency / T per time unit) times the holdout length."""
    rate = np.divide(frequency, T, out=np.zeros_like(T, dtype=float), where=T > 0)
    return rate * horizon


def by_frequency(
    frequency: np.ndarray, actual: np.ndarray, predicted: np.ndarray, baseline: np.ndarray
) -> list[dict]:
    """Mean actual vs predicted holdout purchases by calibration frequency 0 … 6 and 7+."""
    groups = np.minimum(frequency, 7).astype(int)
    rows = []
    for g, label in enumerate(FREQUENCY_GROUPS):
        mask = groups == g
        n = int(mask.sum())
        rows.append(
            {
                "frequency": label,
                "customers": n,
                "actual": float(actual[mask].mean()) if n else None,
                "predicted": float(predicted[mask].mean()) if n else None,
                "baseline": float(baseline[mask].mean()) if n else None,
            }
        )
    return rows


@dataclass
class PredictReport:
    """Everything `predict` prints: the fits, the calibration window and, with a holdout, the validation."""

    model: dict | None
    spend_model: dict | None
    calibration: dict
    holdout: dict | None
    warnings: list[str]

    def to_json(self) -> dict:
        return {
            "model": self.model,
            "spend_model": self.spend_model,
            "calibration": self.calibration,
            "holdout": self.holdout,
        }


def predict_report(
    tx: pl.DataFrame,
    *,
    data_start: dt.date,
    as_of: dt.date,
    calibration_end: dt.date,
    model: str,
    time_unit: str,
    unit_days: float,
    horizon_months: int,
    discount_rate: float,
    margin_rate: float = 1.0,
) -> PredictReport:
    """Fit on transactions up to `calibration_end`; when that is before `as_of`, predict the holdout."""
    from clvtool.metrics.customers import build_orders, summarise
    from clvtool.models.predictions import MODELS, fit_summary, predict_customers

    calibration = tx.filter(pl.col("date") <= calibration_end)
    summary = summarise(
        calibration, as_of=calibration_end, margin_rate=margin_rate, unit_days=unit_days
    ).frame
    del calibration
    predictions = predict_customers(
        summary, model=model, time_unit=time_unit, horizon_months=horizon_months, discount_rate=discount_rate
    )
    fit = predictions.model
    spend = predictions.spend_model
    report = PredictReport(
        model=fit_summary(fit),
        spend_model=_spend_summary(spend),
        calibration={
            "start": data_start.isoformat(),
            "end": calibration_end.isoformat(),
        },
        holdout=None,
        warnings=list(predictions.warnings),
    )
    if calibration_end >= as_of or not predictions.usable:
        return report
    known = summary.filter(pl.col("frequency").is_not_null())
    orders = build_orders(tx, margin_rate=margin_rate)
    actual = holdout_actuals(orders, known[CUSTOMER_ID], after=calibration_end, until=as_of)[
        "actual"
    ].to_numpy()
    length = (as_of - calibration_end).days / unit_days
    f = known["frequency"].to_numpy().astype(np.float64)
    r = known["recency"].to_numpy().astype(np.float64)
    big_t = known["T"].to_numpy().astype(np.float64)
    predicted = _expected_per_row(MODELS[model].expected, fit.params, length, f, r, big_t)
    baseline = naive_rate(f, big_t, length)
    model_err = errors(actual.astype(np.float64), predicted)
    base_err = errors(actual.astype(np.float64), baseline)
    report.holdout = {
        "start": (calibration_end + dt.timedelta(days=1)).isoformat(),
        "end": as_of.isoformat(),
        "actual_total": int(actual.sum()),
        "predicted_total": model_err.predicted_total,
        "mae": model_err.mae,
        "rmse": model_err.rmse,
        "by_frequency": by_frequency(f, actual.astype(np.float64), predicted, baseline),
        "baseline": {
            "predicted_total": base_err.predicted_total,
            "mae": base_err.mae,
            "rmse": base_err.rmse,
        },
    }

    return report


def _expected_per_row(expected, params, length: float, f, r, big_t) -> np.ndarray:
    """Conditional expected purchases in (T, T + length], evaluated once per distinct row."""
    from clvtool.models.fitting import per_distinct_row

    return per_distinct_row(
        lambda x, t_x, tt: expected(params, np.array([length]), x, t_x, tt).reshape(-1), f, r, big_t
    )


def _spend_summary(fit) -> dict | None:
    if fit is None:
        return None
    return {
        "name": "gamma_gamma",
        "params": dict(fit.params),
        "std_errors": dict(fit.std_errors),
        "log_likelihood": fit.log_likelihood,
        "customers": fit.customers,
    }
