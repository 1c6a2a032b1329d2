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
