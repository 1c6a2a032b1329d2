"""Discounted CLV (clvtool.models.clv, PRODUCT §5.3)."""

from __future__ import annotations

import numpy as np
import pytest

from clvtool.models.bgnbd import bgnbd_expected
from clvtool.models.clv import (
    DAYS_PER_MONTH,
    customer_clv,
    discounted_purchases,
    monthly_discount_rate,
    predicted_clv,
)

BG = {"r": 0.2426, "alpha": 4.414, "a": 0.793, "b": 2.426}


def test_constant_rate_by_hand():
    # 2 purchases a month, margin 10, 12 months, 10 % a year: sum_i 20 / 1.1^(i/12).
    value = predicted_clv(lambda months: 2.0 * months, 10.0, 12, 0.10)
    assert float(value) == pytest.approx(sum(20.0 / 1.1 ** (i / 12) for i in range(1, 13)), rel=1e-12)


def test_monthly_rate_and_edges():
    assert (1 + monthly_discount_rate(0.10)) ** 12 == pytest.approx(1.10, rel=1e-14)
    assert monthly_discount_rate(0.0) == 0.0
    assert float(predicted_clv(lambda m: 3.0 * m, 5.0, 0, 0.1)) == 0.0
    assert float(predicted_clv(lambda m: 3.0 * m, 5.0, 6, 0.0)) == pytest.approx(90.0)
    with pytest.raises(ValueError):
        monthly_discount_rate(-1.0)
    with pytest.raises(ValueError):
        predicted_clv(lambda m: m, 1.0, -1, 0.1)
    with pytest.raises(ValueError):
        predicted_clv(lambda m: m[:-1], 1.0, 12, 0.1)
    with pytest.raises(ValueError):
        predicted_clv(lambda m: m * np.nan, 1.0, 12, 0.1)


def test_per_customer_margins_broadcast():
    months = np.arange(13.0)
    cumulative = np.stack([months, 2 * months], axis=1)  # two customers
    value = predicted_clv(lambda m: cumulative, np.array([10.0, 1.0]), 12, 0.1)
    one = sum(1 / 1.1 ** (i / 12) for i in range(1, 13))
    np.testing.assert_allclose(value, [10 * one, 2 * one], rtol=1e-12)


def test_customer_clv_matches_direct_computation():
    x = np.array([0, 2, 2, 7, 0])
    t_x = np.array([0.0, 30.43, 30.43, 36.0, 0.0])
    T = np.array([38.86, 38.86, 38.86, 38.86, 10.0])
    margin = np.array([5.0, 10.0, 20.0, 8.0, 1.0])
    value = customer_clv("bgnbd", BG, x, t_x, T, margin, horizon_months=12, annual_discount_rate=0.1)
    weeks = DAYS_PER_MONTH / 7.0
    for i in range(x.size):
        cumulative = [float(bgnbd_expected(BG, m * weeks, x[i], t_x[i], T[i])) for m in range(13)]
        expected = margin[i] * sum(
            (cumulative[m] - cumulative[m - 1]) / 1.1 ** (m / 12) for m in range(1, 13)
        )
        assert value[i] == pytest.approx(expected, rel=1e-10)
    assert value[1] * 2 == pytest.approx(value[2])
    per_row = discounted_purchases(lambda m: bgnbd_expected(BG, m[:, None] * weeks, x, t_x, T), 12, 0.1)
    np.testing.assert_allclose(value, margin * per_row, rtol=1e-12)


@pytest.mark.parametrize("model", ["bgnbd", "mbgnbd", "pareto"])
def test_every_model_gives_finite_clv(model):
    params = BG if model != "pareto" else {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}
    value = customer_clv(
        model, params, [0, 1, 300], [0.0, 5.0, 38.0], [1.0, 39.0, 39.0], 10.0, time_unit="week"
    )
    assert np.all(np.isfinite(value)) and np.all(value >= 0)
    with pytest.raises(ValueError, match="time unit"):
        customer_clv(model, params, [1], [1.0], [2.0], 1.0, time_unit="fortnight")
