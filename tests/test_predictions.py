"""predict_customers (clvtool.models.predictions) against the model functions customer by customer."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from clvtool.models.clv import DAYS_PER_MONTH, customer_clv
from clvtool.models.gamma_gamma import gamma_gamma_mean
from clvtool.models.predictions import MODELS, _day_key, predict_customers
from clvtool.models.simulate import SampleParams, simulate_sample


def _summary(n: int, seed: int, *, days: bool) -> pl.DataFrame:
    """Simulated BG/NBD customers with recency and T in whole days (as the summary has them)."""
    truth = simulate_sample(SampleParams(customers=n, seed=seed)).truth
    rng = np.random.default_rng(seed)
    x = truth["x"].to_numpy()
    t_days = np.ceil(truth["T"].to_numpy() * 7).astype(np.int64)
    rec_days = np.minimum(np.floor(truth["t_x"].to_numpy() * 7), t_days).astype(np.int64)
    monetary = np.where(x > 0, rng.gamma(6.0, 1.0, n) * 15.0 / rng.gamma(3.7, 1.0, n), np.nan)
    frame = pl.DataFrame(
        {
            "customer_id": truth["customer_id"],
            "frequency": x,
            "recency": rec_days / 7,
            "T": t_days / 7,
            "monetary_value": monetary,
            "revenue": (x + 1) * 20.0,
            "historic_clv": (x + 1) * 12.0,
        }
    ).with_columns(pl.col("monetary_value").fill_nan(None))
    if days:
        as_of = dt.date(2024, 12, 31)
        first = [as_of - dt.timedelta(days=int(d)) for d in t_days]
        last = [f + dt.timedelta(days=int(r)) for f, r in zip(first, rec_days, strict=True)]
        frame = frame.with_columns(
            pl.Series("first_order", first), pl.Series("last_order", last), pl.Series("tenure_days", t_days)
        )
    # A few customers without a summary (no purchase in the window): null predictions.
    every_97th = pl.int_range(pl.len()) % 97 == 5
    return frame.with_columns(
        pl.when(every_97th).then(None).otherwise(pl.col("frequency")).alias("frequency")
    )


@pytest.mark.parametrize(
    ("model", "days", "horizon"),
    [
        ("bgnbd", False, 12),
        ("bgnbd", True, 12),
        ("bgnbd", True, 11),
        ("bgnbd", False, 0),
        ("mbgnbd", True, 12),
        ("mbgnbd", False, 11),
        ("pareto", True, 12),
        ("pareto", False, 11),
    ],
)
def test_predictions_match_the_model_functions(model, days, horizon):
    summary = _summary(4000, 7, days=days)
    result = predict_customers(summary, model=model, horizon_months=horizon, discount_rate=0.1)
    assert result.usable and not result.warnings
    cols = result.columns
    assert cols["customer_id"].equals(summary["customer_id"])
    known = summary["frequency"].is_not_null()
    for name in ("p_alive", "expected_orders", "predicted_clv"):
        assert cols[name].is_null().equals(~known), name
    k = summary.filter(known)
    f = k["frequency"].to_numpy().astype(float)
    r, T = k["recency"].to_numpy(), k["T"].to_numpy()
    m = k["monetary_value"].fill_null(0.0).to_numpy()
    params = result.model.params
    spec = MODELS[model]
    ratio = float(k["historic_clv"].sum()) / float(k["revenue"].sum())
    margin = gamma_gamma_mean(result.spend_model.params, f, m) * ratio
    expected = {
        "p_alive": spec.p_alive(params, f, r, T),
        "expected_orders": spec.expected(params, horizon * DAYS_PER_MONTH / 7, f, r, T),
        "predicted_clv": customer_clv(model, params, f, r, T, margin, horizon_months=horizon),
    }
    for name, values in expected.items():
        np.testing.assert_allclose(
            cols.filter(known)[name].to_numpy(), values, rtol=1e-12, atol=1e-300, err_msg=name
        )


def test_day_key_orders_as_the_summary_and_is_narrow():
    summary = _summary(3000, 3, days=True).filter(pl.col("frequency").is_not_null())
    key = _day_key(summary)
    assert key is not None and int(key.max()) < 1 << 40
    rows = list(zip(summary["frequency"], summary["recency"], summary["T"], strict=True))
    order = np.argsort(key, kind="stable")
    assert [rows[i] for i in order] == sorted(rows)
    assert _day_key(summary.with_columns(pl.lit(None, pl.Int64).alias("tenure_days"))) is None
