"""Discounted customer lifetime value over a horizon of months (PRODUCT §5.3).

    predicted_clv = sum over months i = 1..H of margin per purchase
                    * (E[purchases by month i] - E[purchases by month i - 1]) / (1 + d_month)^i,
    d_month = (1 + annual_discount_rate)^(1/12) - 1,  month = 365.25 / 12 days.

Expected purchases are the purchase model's conditional expectation E[purchases in (T, T + t]];
the margin per purchase is usually the Gamma-Gamma expected spend times a margin fraction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
from numpy.typing import ArrayLike

from clvtool.models.bgnbd import bgnbd_expected
from clvtool.models.fitting import per_distinct_row
from clvtool.models.mbgnbd import mbgnbd_expected
from clvtool.models.pareto_nbd import pareto_nbd_expected

__all__ = [
    "DAYS_PER_MONTH",
    "TIME_UNIT_DAYS",
    "customer_clv",
    "discounted_purchases",
    "expected_purchases_function",
    "monthly_discount_rate",
    "predicted_clv",
]

DAYS_PER_MONTH = 365.25 / 12
TIME_UNIT_DAYS = {"day": 1.0, "week": 7.0, "month": DAYS_PER_MONTH, "year": 365.25}
_EXPECTED = {"bgnbd": bgnbd_expected, "pareto": pareto_nbd_expected, "mbgnbd": mbgnbd_expected}

CumulativePurchases = Callable[[np.ndarray], np.ndarray]
"""Month indices (0..H, shape (H+1,)) -> expected purchases by then, shape (H+1,) or (H+1, customers)."""


def monthly_discount_rate(annual_discount_rate: float) -> float:
    """d_month = (1 + d)^(1/12) - 1; ValueError unless d is finite and > -1."""
    d = float(annual_discount_rate)
    if not (np.isfinite(d) and d > -1.0):
        raise ValueError(
            f"annual discount rate must be finite and greater than -1, got {annual_discount_rate!r}"
        )
    return float(np.expm1(np.log1p(d) / 12.0))


def _horizon(horizon_months: int) -> int:
    """The horizon as a non-negative int; ValueError otherwise."""
    if isinstance(horizon_months, bool) or int(horizon_months) != horizon_months or horizon_months < 0:
        raise ValueError(f"horizon_months must be a whole number >= 0, got {horizon_months!r}")
    return int(horizon_months)


def discounted_purchases(
    expected_cumulative: CumulativePurchases, horizon_months: int = 12, annual_discount_rate: float = 0.10
) -> np.ndarray:
    """Discounted expected purchases: sum over i = 1..H of (E[by i] - E[by i-1]) / (1 + d_month)^i."""
    horizon = _horizon(horizon_months)
    d_month = monthly_discount_rate(annual_discount_rate)
    months = np.arange(horizon + 1, dtype=np.float64)
    cumulative = np.asarray(expected_cumulative(months), dtype=np.float64)
    if cumulative.ndim == 0 or cumulative.shape[0] != horizon + 1:
        raise ValueError(f"expected_cumulative must return {horizon + 1} rows (months 0..{horizon})")
    if not _all_finite(cumulative):
        raise ValueError("expected_cumulative returned missing or non-finite values")
    factors = np.exp(-months[1:] * np.log1p(d_month))  # 1 / (1 + d_month)^i
    # sum_i factor_i (E[by i] - E[by i-1]), month after month into one array (no (H, n) differences).
    total = np.zeros(cumulative.shape[1:])
    step = np.empty(cumulative.shape[1:])
    for i, factor in enumerate(factors, start=1):
        np.subtract(cumulative[i], cumulative[i - 1], out=step)
        step *= factor
        total += step
    return total


def _all_finite(values: np.ndarray) -> bool:
    """True when no value is NaN or infinite; a finite sum proves it without a mask of the array."""
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(values.sum()):
            return True
    return bool(np.all(np.isfinite(values)))


def predicted_clv(
    expected_cumulative: CumulativePurchases,
    margin_per_purchase: ArrayLike,
    horizon_months: int = 12,
    annual_discount_rate: float = 0.10,
) -> np.ndarray:
    """Discounted CLV (PRODUCT §5.3) in the currency of `margin_per_purchase`, per customer."""
    margin = np.asarray(margin_per_purchase, dtype=np.float64)
    if not np.all(np.isfinite(margin)):
        raise ValueError("margin_per_purchase has missing or non-finite values")
    return margin * discounted_purchases(expected_cumulative, horizon_months, annual_discount_rate)


def expected_purchases_function(
    model: str,
    params: Mapping[str, float],
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    *,
    time_unit: str = "week",
) -> CumulativePurchases:
    """months -> E[purchases in (T, T + months]] of each (x, t_x, T) row, shape (months, rows)."""
    if model not in _EXPECTED:
        raise ValueError(f"unknown purchase model {model!r}; expected one of {', '.join(_EXPECTED)}")
    if time_unit not in TIME_UNIT_DAYS:
        raise ValueError(f"unknown time unit {time_unit!r}; expected one of {', '.join(TIME_UNIT_DAYS)}")
    expected = _EXPECTED[model]
    units_per_month = DAYS_PER_MONTH / TIME_UNIT_DAYS[time_unit]

    def cumulative(months: np.ndarray) -> np.ndarray:
        t = np.asarray(months, dtype=np.float64)[:, None] * units_per_month
        return expected(params, t, x, t_x, T)

    return cumulative


def customer_clv(
    model: str,
    params: Mapping[str, float],
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    margin_per_purchase: ArrayLike,
    *,
    horizon_months: int = 12,
    annual_discount_rate: float = 0.10,
    time_unit: str = "week",
) -> np.ndarray:
    """Predicted CLV of every customer; the purchase model is evaluated once per distinct (x, t_x, T)."""

    def per_row(x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray) -> np.ndarray:
        cumulative = expected_purchases_function(model, params, x, t_x, big_t, time_unit=time_unit)
        return discounted_purchases(cumulative, horizon_months, annual_discount_rate)

    purchases = per_distinct_row(per_row, frequency, recency, T)
    margin = np.asarray(margin_per_purchase, dtype=np.float64)
    if not np.all(np.isfinite(margin)):
        raise ValueError("margin_per_purchase has missing or non-finite values")
    return margin * purchases
