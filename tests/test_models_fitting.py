"""Shared model machinery (clvtool.models.fitting): distinct rows, the optimiser's verdicts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from clvtool.models.fitting import FitResult, compress, maximise, per_distinct_row


def test_compress_round_trip():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 4, 5000).astype(float)
    t_x = np.where(x > 0, rng.integers(0, 5, 5000) / 7, 0.0)
    T = t_x + rng.integers(0, 3, 5000) / 7
    ux, ut, uT, w, inverse = compress(x, t_x, T)
    np.testing.assert_array_equal(ux[inverse], x)
    np.testing.assert_array_equal(ut[inverse], t_x)
    np.testing.assert_array_equal(uT[inverse], T)
    assert w.sum() == 5000
    assert len({(a, b, c) for a, b, c in zip(ux, ut, uT, strict=True)}) == ux.size  # distinct
    keys = list(zip(ux, ut, uT, strict=True))
    assert keys == sorted(keys)


def test_compress_with_a_packed_day_key_gives_the_same_rows():
    """A key packing (x, recency days, T days) replaces the three-key sort with identical results."""
    rng = np.random.default_rng(3)
    x = rng.integers(0, 6, 4000)
    rec = np.where(x > 0, rng.integers(0, 300, 4000), 0)
    T = rec + rng.integers(0, 200, 4000)
    key = (x << 42) + (rec << 21) + T
    plain = compress(x.astype(float), rec / 7, T / 7)
    keyed = compress(x.astype(float), rec / 7, T / 7, key=key)
    for a, b in zip(plain, keyed, strict=True):
        np.testing.assert_array_equal(a, b)


def test_compress_weights_and_empty():
    _, _, _, w, _ = compress([1, 1, 2], [1.0, 1.0, 2.0], [3.0, 3.0, 3.0], weights=[0.5, 2.0, 1.0])
    np.testing.assert_array_equal(w, [2.5, 1.0])
    empty = compress([], [], [])
    assert all(a.size == 0 for a in empty)


def test_per_distinct_row_evaluates_once_per_row():
    calls = []

    def func(x, t_x, T):
        calls.append(x.size)
        return np.stack([x + t_x + T, 2 * T])

    out = per_distinct_row(func, [1, 1, 0, 1], [2.0, 2.0, 0.0, 3.0], [5.0, 5.0, 5.0, 5.0])
    assert calls == [3]
    np.testing.assert_array_equal(out, [[8.0, 8.0, 5.0, 9.0], [10.0, 10.0, 10.0, 10.0]])


def test_maximise_quadratic_and_standard_errors():
    from clvtool.models.fitting import fit_result

    # log-likelihood -0.5 * sum(((u - c) / s)^2): maximum at c, Hessian diag(1/s^2).
    c = np.array([0.5, -1.0])
    s = np.array([0.1, 0.2])

    def objective(u):
        return float(-0.5 * np.sum(((u - c) / s) ** 2)), -(u - c) / s**2

    optimum = maximise(objective, np.zeros(2), 1.0)
    assert optimum.converged
    np.testing.assert_allclose(optimum.log_params, c, atol=1e-8)
    result = fit_result("test", ("a", "b"), optimum, 1.0, "week")
    assert isinstance(result, FitResult)
    # Delta method: SE(theta) = theta * SE(log theta).
    assert result.std_errors["a"] == pytest.approx(math.exp(0.5) * 0.1, rel=1e-6)
    assert result.std_errors["b"] == pytest.approx(math.exp(-1.0) * 0.2, rel=1e-6)


def test_maximise_reports_a_likelihood_without_maximum():
    from clvtool.models.fitting import fit_result

    def objective(u):  # rises for ever as u[0] grows
        return float(u[0] - 0.5 * u[1] ** 2), np.array([1.0, -u[1]])

    result = fit_result("test", ("a", "b"), maximise(objective, np.zeros(2), 1.0), 1.0, "week")
    assert not result.converged
    assert "a -> infinity" in result.message
    assert result.std_errors == {"a": None, "b": None}
    assert all(math.isfinite(v) for v in result.params.values())


def test_non_finite_likelihood_is_a_failure_not_nan():
    from clvtool.models.fitting import fit_result

    def objective(u):
        return float("nan"), np.full(2, np.nan)

    result = fit_result("test", ("a", "b"), maximise(objective, np.zeros(2), 1.0), 1.0, "week")
    assert not result.converged and result.params == {} and result.log_likelihood is None


def test_compress_of_distinct_sorted_rows_is_the_identity():
    rng = np.random.default_rng(5)
    x = rng.integers(0, 5, 3000).astype(float)
    t_x = np.where(x > 0, rng.integers(0, 50, 3000) / 7, 0.0)
    T = t_x + rng.integers(0, 30, 3000) / 7
    once = compress(x, t_x, T)
    again = compress(once[0], once[1], once[2], once[3])
    for a, b in zip(once[:4], again[:4], strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(again[4], np.arange(once[0].size))


@pytest.mark.parametrize("dtype", [np.int64, np.uint64, np.int32])
@pytest.mark.parametrize("weighted", [False, True])
def test_compress_with_a_narrow_key_sorts_key_and_row_together(dtype, weighted):
    """A key that leaves room for the row number is sorted as one value: same rows, same order."""
    rng = np.random.default_rng(11)
    n = 6000
    x = rng.integers(0, 6, n)
    rec = np.where(x > 0, rng.integers(0, 60, n), 0)
    T = rec + rng.integers(0, 40, n)
    key = ((x << 12) + (rec << 6) + T).astype(dtype)
    weights = rng.random(n) if weighted else None
    plain = compress(x.astype(float), rec / 7, T / 7, weights)
    keyed = compress(x.astype(float), rec / 7, T / 7, weights, key=key)
    for a, b in zip(plain, keyed, strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


def test_compress_checks_every_row_not_only_the_first_of_each():
    x = np.ones(5000)
    t_x = np.ones(5000)
    T = np.full(5000, 2.0)
    t_x[4321] = 3.0  # one customer with t_x > T among thousands of valid ones
    with pytest.raises(ValueError, match="recency must not exceed T"):
        compress(x, t_x, T)
    x[17] = 0.5
    with pytest.raises(ValueError, match="whole numbers"):
        compress(x, t_x, T, key=np.arange(5000))
    with pytest.raises(ValueError, match="weights must not be negative"):
        compress([1, 2], [1.0, 1.0], [2.0, 2.0], weights=[1.0, -1.0])
    with pytest.raises(ValueError, match="T has missing"):
        compress([1, 2], [1.0, 1.0], [2.0, np.inf])


@pytest.mark.parametrize(
    "values",
    [
        np.random.default_rng(1).integers(0, 90, 5000).astype(float),
        np.random.default_rng(2).integers(3, 90_000, 5000),
        np.random.default_rng(3).integers(0, 5, 5000).astype(float) / 7,
        np.r_[np.random.default_rng(4).integers(0, 9, 3000).astype(float), 0.5],
        np.random.default_rng(5).random(2000),
    ],
)
def test_levels_match_numpy_unique(values):
    from clvtool.models.fitting import levels

    unique, inverse = levels(values)
    expected_unique, expected_inverse = np.unique(values, return_inverse=True)
    assert unique.dtype == expected_unique.dtype and inverse.dtype == expected_inverse.dtype
    np.testing.assert_array_equal(unique, expected_unique)
    np.testing.assert_array_equal(inverse, expected_inverse)


def test_maximise_does_not_evaluate_the_optimum_twice():
    c = np.array([0.3, -0.7])
    points = []

    def objective(u):
        points.append(u.tobytes())
        return float(-0.5 * np.sum((u - c) ** 2)), -(u - c)

    optimum = maximise(objective, np.zeros(2), 1.0)
    assert optimum.converged
    assert len(points) == len(set(points))  # every point once: the end of L-BFGS-B is remembered
