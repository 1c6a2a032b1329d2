"""MBG/NBD engine (clvtool.models.mbgnbd): CDNOW fit, closed forms, simulated recovery."""

from __future__ import annotations

import math

import numpy as np
import pytest

from clvtool.models.bgnbd import bgnbd_expected
from clvtool.models.mbgnbd import (
    fit_mbgnbd,
    mbgnbd_expected,
    mbgnbd_log_likelihood,
    mbgnbd_p_alive,
    mbgnbd_unconditional,
)
from clvtool.models.simulate import simulate_repeat_purchases

PUBLISHED = {"r": 0.525, "alpha": 6.183, "a": 0.891, "b": 1.614}  # lifetimes' MBG/NBD test on CDNOW


@pytest.fixture(scope="module")
def cdnow(request) -> dict[str, np.ndarray]:
    path = request.path.parent / "data" / "cdnow" / "summary_paper.csv"
    data = np.genfromtxt(path, delimiter=",", names=True)
    return {name: data[name] for name in data.dtype.names}


def test_cdnow_fit(cdnow):
    fit = fit_mbgnbd(cdnow["x"], cdnow["t_x"], cdnow["T"])
    assert fit.converged, fit.message
    assert fit.name == "mbgnbd"
    for name, value in PUBLISHED.items():
        assert fit.params[name] == pytest.approx(value, rel=0.01), name
    assert all(v is not None and v > 0 for v in fit.std_errors.values())
    assert fit.log_likelihood == pytest.approx(
        mbgnbd_log_likelihood(fit.params, cdnow["x"], cdnow["t_x"], cdnow["T"])
    )


def test_unconditional_closed_form():
    # Batislam et al. (2007): E[X(t)] = b/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b+1; a+b; t/(alpha+t))].
    from scipy.special import hyp2f1

    r, alpha, a, b = PUBLISHED.values()
    for t in (1.0, 39.0, 78.0):
        expected = b / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b + 1, a + b, t / (alpha + t)))
        assert float(mbgnbd_unconditional(PUBLISHED, t)) == pytest.approx(expected, rel=1e-10)


def test_p_alive_and_expectation():
    # Unlike the BG/NBD, a customer without repeat purchases may have dropped out.
    assert float(mbgnbd_p_alive(PUBLISHED, 0, 0.0, 30.0)) < 1.0
    x, t_x, T = 2, 30.43, 38.86
    alive = float(mbgnbd_p_alive(PUBLISHED, x, t_x, T))
    assert alive == pytest.approx(
        1 / (1 + 0.891 / (1.614 + 2) * ((6.183 + T) / (6.183 + t_x)) ** (0.525 + 2)), rel=1e-12
    )
    assert 0 < float(mbgnbd_expected(PUBLISHED, 39.0, x, t_x, T)) < 3
    # With a very small dropout probability both models agree.
    sticky = {"r": 0.5, "alpha": 6.0, "a": 0.01, "b": 50.0}
    assert float(mbgnbd_expected(sticky, 39.0, 5, 30.0, 38.0)) == pytest.approx(
        float(bgnbd_expected(sticky, 39.0, 5, 30.0, 38.0)), rel=0.01
    )


def test_extreme_inputs_finite():
    x = np.array([0, 300, 800])
    t_x = np.array([0.0, 50.0, 999.0])
    T = np.array([1e-3, 5000.0, 1000.0])
    assert np.all(np.isfinite(mbgnbd_expected(PUBLISHED, 1e4, x, t_x, T)))
    assert math.isfinite(mbgnbd_log_likelihood(PUBLISHED, x, t_x, T))


def test_recovers_simulated_parameters():
    truth = {"r": 0.5, "alpha": 6.0, "a": 0.9, "b": 1.6}
    rng = np.random.default_rng(11)
    n = 40_000
    lam = rng.gamma(truth["r"], 1 / truth["alpha"], n)
    p = rng.beta(truth["a"], truth["b"], n)
    T = rng.uniform(20, 80, n)
    # MBG/NBD: a customer may also drop out right after the first purchase.
    active = rng.random(n) >= p
    x = np.zeros(n)
    t_x = np.zeros(n)
    _, _, x_a, t_a = simulate_repeat_purchases(rng, lam[active], p[active], T[active])
    x[active], t_x[active] = x_a, t_a
    fit = fit_mbgnbd(x, t_x, T)
    assert fit.converged, fit.message
    for name, value in truth.items():
        se = fit.std_errors[name]
        assert se is not None and abs(fit.params[name] - value) < 4 * se, (name, fit.params[name], se)


def test_all_zero_frequency():
    fit = fit_mbgnbd(np.zeros(10), np.zeros(10), np.arange(1.0, 11.0))
    assert not fit.converged and fit.params == {} and fit.log_likelihood is None
