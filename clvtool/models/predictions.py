"""From the per-customer summary to fitted models and prediction columns (PRODUCT §5.2, §5.3).

Every closed form is evaluated once per distinct (frequency, recency, T) row and expanded back; a fit
that fails leaves the prediction columns empty with a message, never NaN.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from clvtool.io.schema import CUSTOMER_ID
from clvtool.metrics.columns import PREDICTION_COLUMNS
from clvtool.models.bgnbd import bgnbd_expected, bgnbd_expected_factors, bgnbd_p_alive, fit_bgnbd
from clvtool.models.clv import (
    DAYS_PER_MONTH,
    TIME_UNIT_DAYS,
    discounted_purchases,
    expected_purchases_function,
)
from clvtool.models.fitting import FitResult, compress
from clvtool.models.gamma_gamma import fit_gamma_gamma, gamma_gamma_mean
from clvtool.models.mbgnbd import fit_mbgnbd, mbgnbd_expected, mbgnbd_expected_factors, mbgnbd_p_alive
from clvtool.models.pareto_nbd import fit_pareto_nbd, pareto_nbd_expected, pareto_nbd_p_alive


@dataclass(frozen=True)
class PurchaseModel:
    fit: Callable[..., FitResult]
    p_alive: Callable[..., np.ndarray]
    expected: Callable[..., np.ndarray]
    title: str
    # `expected` as p_alive * alive[..., pair] with `alive` per distinct (x, T) pair, when the model
    # has that form (see bgnbd_expected_factors): sums over the horizon are then taken per pair.
    expected_factors: Callable[..., tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None


MODELS: Mapping[str, PurchaseModel] = {
    "bgnbd": PurchaseModel(fit_bgnbd, bgnbd_p_alive, bgnbd_expected, "BG/NBD", bgnbd_expected_factors),
    "pareto": PurchaseModel(fit_pareto_nbd, pareto_nbd_p_alive, pareto_nbd_expected, "Pareto/NBD"),
    "mbgnbd": PurchaseModel(fit_mbgnbd, mbgnbd_p_alive, mbgnbd_expected, "MBG/NBD", mbgnbd_expected_factors),
}


@dataclass
class Predictions:
    """Fitted models and per-customer predictions (customer_id + PREDICTION_COLUMNS, nulls when unknown)."""

    model: FitResult | None
    spend_model: FitResult | None
    columns: pl.DataFrame
    horizon_months: int
    warnings: list[str] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        return self.model is not None and self.model.converged and bool(self.model.params)


def fit_purchase_model(
    name: str, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray, time_unit: str
) -> FitResult:
    """Fit one purchase model on the distinct rows with weights (the same numbers as per customer)."""
    x, t_x, big_t, w, _ = compress(frequency, recency, T)
    return MODELS[name].fit(x, t_x, big_t, weights=w, time_unit=time_unit)


def _empty(customers: pl.Series) -> pl.DataFrame:
    return pl.DataFrame({CUSTOMER_ID: customers}).with_columns(
        [pl.lit(None, pl.Float64).alias(c) for c in PREDICTION_COLUMNS]
    )


def predict_customers(
    summary: pl.DataFrame,
    *,
    model: str = "bgnbd",
    time_unit: str = "week",
    horizon_months: int = 12,
    discount_rate: float = 0.10,
) -> Predictions:
    """Fit `model` and Gamma-Gamma on the summary (frequency, recency, T, monetary_value, revenue,
    historic_clv) and predict p_alive, expected orders over the horizon and the discounted CLV."""
    warnings: list[str] = []
    ids = summary[CUSTOMER_ID]
    everyone = summary["frequency"].null_count() == 0
    known_mask = None if everyone else summary["frequency"].is_not_null().to_numpy()
    known = summary if everyone else summary.filter(pl.col("frequency").is_not_null())
    if known.height == 0 or int(known["frequency"].sum()) == 0:
        warnings.append(
            "no repeat customers: the purchase model cannot be fitted, prediction columns are empty"
        )
        return Predictions(None, None, _empty(ids), horizon_months, warnings)
    f = _floats(known["frequency"])
    monetary = _floats(known["monetary_value"].fill_null(0.0))
    spec = MODELS[model]
    # The spend model does not depend on the purchase model: it is fitted, and each customer's margin
    # per purchase computed, in a second thread beside the compression, fit and predictions of the
    # purchase model (NumPy, SciPy and Polars release the GIL); each fit is deterministic.
    with ThreadPoolExecutor(max_workers=1) as pool:
        spend_job = pool.submit(_spend, f, monetary, _value_ratio(known))
        r = _floats(known["recency"])
        big_t = _floats(known["T"])
        x, t_x, tt, w, inverse = compress(f, r, big_t, key=_day_key(known))
        fit = spec.fit(x, t_x, tt, weights=w, time_unit=time_unit)
        rows = None
        if fit.converged and fit.params:
            rows = _purchase_predictions(
                model, fit.params, x, t_x, tt, time_unit, horizon_months, discount_rate
            )
        spend_fit, clv = spend_job.result()
    if rows is None:
        warnings.append(f"{spec.title} fit failed ({fit.message}); prediction columns are empty")
        return Predictions(fit, None, _empty(ids), horizon_months, warnings)
    p_alive_rows, expected_rows, discounted_rows = rows
    if clv is None:
        warnings.append(f"Gamma-Gamma spend fit failed ({spend_fit.message}); predicted_clv is empty")
    else:
        clv *= np.take(discounted_rows, inverse, mode="clip")  # margin per purchase * discounted orders

    def column(values: np.ndarray | None) -> pl.Series:
        """Values of the known customers placed in summary row order; null for the others."""
        if values is not None and known_mask is None:
            return _finite(values)
        full = np.full(summary.height, np.nan)
        if values is not None:
            full[known_mask] = values
        return _finite(full)

    columns = pl.DataFrame(
        {
            CUSTOMER_ID: ids,
            "p_alive": column(np.take(p_alive_rows, inverse, mode="clip")),
            "expected_orders": column(np.take(expected_rows, inverse, mode="clip")),
            "predicted_clv": column(clv),
        }
    )
    return Predictions(fit, spend_fit, columns, horizon_months, warnings)


def _spend(
    frequency: np.ndarray, monetary: np.ndarray, value_ratio: float
) -> tuple[FitResult, np.ndarray | None]:
    """The Gamma-Gamma fit and, when its mean spend is finite (q > 1), each customer's margin per
    purchase: the expected spend per purchase times the value ratio (None otherwise)."""
    fit = fit_gamma_gamma(frequency, monetary)
    if not (fit.converged and fit.params and fit.params.get("q", 0) > 1):
        return fit, None
    margin = gamma_gamma_mean(fit.params, frequency, monetary)
    margin *= value_ratio
    return fit, margin


def _purchase_predictions(
    model: str,
    params: Mapping[str, float],
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    time_unit: str,
    horizon_months: int,
    discount_rate: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """P(alive), expected orders over the horizon and discounted expected orders of each distinct row.

    The model is evaluated once at the end of every month of the horizon (and at the horizon of the
    expected orders, unless that is the last month to the bit). A model with `expected_factors` is
    evaluated per distinct (x, T) pair and the discounted sum taken there, then scaled by P(alive).
    """
    spec = MODELS[model]
    months = np.arange(horizon_months + 1, dtype=np.float64)
    units_per_month = DAYS_PER_MONTH / TIME_UNIT_DAYS[time_unit]
    horizon_units = horizon_months * DAYS_PER_MONTH / TIME_UNIT_DAYS[time_unit]
    last_month = months.size > 0 and horizon_units == months[-1] * units_per_month
    if spec.expected_factors is not None:
        times = months * units_per_month
        if not last_month:
            times = np.append(times, horizon_units)
        p_alive, alive, pair = spec.expected_factors(params, times[:, None], x, t_x, T)
        by_month = alive[: months.size]
        per_pair = discounted_purchases(lambda _months: by_month, horizon_months, discount_rate)
        expected = p_alive * np.take(alive[-1], pair, mode="clip")
        discounted = p_alive * np.take(per_pair, pair, mode="clip")
        return p_alive, expected, discounted
    p_alive = spec.p_alive(params, x, t_x, T)
    cumulative = expected_purchases_function(model, params, x, t_x, T, time_unit=time_unit)
    by_month = cumulative(months)
    if last_month:
        expected = by_month[-1].copy()
    else:
        expected = spec.expected(params, np.array([horizon_units]), x, t_x, T).reshape(-1)
    discounted = discounted_purchases(lambda _months: by_month, horizon_months, discount_rate)
    return p_alive, expected, discounted


def _floats(values: pl.Series) -> np.ndarray:
    """A column as a float64 array (cast by Polars; no copy when it already is one in one chunk)."""
    return np.asarray(values.cast(pl.Float64).to_numpy(), dtype=np.float64)


def _day_key(known: pl.DataFrame) -> np.ndarray | None:
    """(frequency, recency, T) in whole days packed into one int64, when the summary has the days.

    recency and T are day counts over the unit (`last_order - first_order` and `tenure_days` of
    customers with a purchase), so the packed key is equal and ordered exactly as the three floats.
    Each part gets the bits its largest value needs: a narrow key sorts faster in `compress`.
    """
    if not {"first_order", "last_order", "tenure_days"} <= set(known.columns):
        return None
    days = known.select(
        pl.col("frequency").cast(pl.Int64).alias("x"),
        (pl.col("last_order") - pl.col("first_order")).dt.total_days().cast(pl.Int64).alias("r"),
        pl.col("tenure_days").cast(pl.Int64).alias("t"),
    )
    bounds = days.select(
        pl.all().null_count().name.suffix("_nulls"),
        pl.all().min().name.suffix("_min"),
        pl.all().max().name.suffix("_max"),
    ).row(0, named=True)
    limit = 1 << 21
    parts = ("x", "r", "t")
    if not all(
        bounds[f"{c}_nulls"] == 0 and bounds[f"{c}_min"] >= 0 and bounds[f"{c}_max"] < limit for c in parts
    ):
        return None
    r_bits, t_bits = (int(bounds[f"{c}_max"]).bit_length() for c in ("r", "t"))
    return (
        days.select((pl.col("x") * (1 << (r_bits + t_bits))) + (pl.col("r") * (1 << t_bits)) + pl.col("t"))
        .to_series()
        .to_numpy()
    )


def _value_ratio(customers: pl.DataFrame) -> float:
    """Margin per unit of revenue: historic value over revenue of all customers (margin_rate or 1 − cost share)."""
    revenue = float(customers["revenue"].sum())
    value = float(customers["historic_clv"].sum())
    return value / revenue if revenue > 0 else 1.0


def _finite(values: np.ndarray) -> pl.Series:
    """A Float64 series with every non-finite value as null."""
    series = pl.Series(values, dtype=pl.Float64)
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.sum(values)):  # a finite sum: no NaN or infinity anywhere
            return series
    return series.set(~series.is_finite(), None) if series.len() else series


def fit_summary(fit: FitResult | None) -> dict | None:
    """The JSON shape of a fitted model (PRODUCT §5.2): name, params, std_errors, log_likelihood, …"""
    if fit is None:
        return None
    return {
        "name": fit.name,
        "params": dict(fit.params),
        "std_errors": dict(fit.std_errors),
        "log_likelihood": fit.log_likelihood,
        "customers": fit.customers,
        "converged": fit.converged,
        "time_unit": fit.time_unit,
    }
