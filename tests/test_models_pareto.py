"""Pareto/NBD engine (clvtool.models.pareto_nbd): published fit, stable likelihood, closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate

from clvtool.models.pareto_nbd import (
    ParetoLikelihood,
    fit_pareto_nbd,
    log_j,
    pareto_nbd_expected,
    pareto_nbd_log_likelihood,
    pareto_nbd_p_alive,
    pareto_nbd_unconditional,
)

PAPER = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}


@pytest.fixture(scope="module")
def cdnow(request) -> dict[str, np.ndarray]:
    path = request.path.parent / "data" / "cdnow" / "summary_paper.csv"
    data = np.genfromtxt(path, delimiter=",", names=True)
    return {name: data[name] for name in data.dtype.names}


def test_cdnow_fit_matches_paper(cdnow):
    fit = fit_pareto_nbd(cdnow["x"], cdnow["t_x"], cdnow["T"])
    assert fit.converged, fit.message
    assert fit.name == "pareto" and fit.customers == 2357
    for name, value in {"r": 0.553, "alpha": 10.58, "s": 0.606, "beta": 11.67}.items():
        assert fit.params[name] == pytest.approx(value, rel=0.01), name
    assert fit.log_likelihood == pytest.approx(-9594.98, abs=0.05)
    for name, se in {"r": 0.0476, "alpha": 0.843, "s": 0.187, "beta": 6.21}.items():
        assert fit.std_errors[name] == pytest.approx(se, rel=0.05), name


def test_log_likelihood_at_paper_parameters(cdnow):
    ll = pareto_nbd_log_likelihood(PAPER, cdnow["x"], cdnow["t_x"], cdnow["T"])
    assert ll == pytest.approx(-9594.98, abs=0.05)


def _log_j_quad(m: float, n: float, A: float, B: float) -> float:
    """log of integral_0^inf (A+w)^-m (B+w)^-n dw, by quadrature over y = log w, scaled by its maximum."""

    def log_f(y: float) -> float:
        return y - m * np.logaddexp(math.log(A), y) - n * np.logaddexp(math.log(B), y)

    k = m + n - 1
    lo = min(math.log(A), math.log(B)) - 60.0
    hi = max(math.log(A), math.log(B)) + 60.0 / min(k, 1.0)
    top = max(log_f(y) for y in np.linspace(lo, hi, 4001))
    value = integrate.quad(
        lambda y: math.exp(log_f(y) - top),
        lo,
        hi,
        points=[math.log(A), math.log(B)],
        limit=1000,
        epsabs=0,
        epsrel=1e-12,
    )[0]
    return math.log(value) + top


@pytest.mark.parametrize(
    ("m", "n", "A", "B"),
    [
        (1.5, 1.6, 10.0, 11.0),  # close scales: hypergeometric series
        (0.553, 1.606, 10.578, 11.669),
        (300.5, 1.6, 10.0, 11.0),  # x in the hundreds
        (2.5, 1.6, 100.0, 0.01),  # scales 10^4 apart: quadrature branch
        (0.3, 0.9, 0.001, 10.0),
        (400.2, 3.0, 0.5, 200.0),
        (1.0, 1.0, 1.0, 1e-6),
    ],
)
def test_tail_integral_against_quadrature(m, n, A, B):
    value, grads = log_j(m, n, A, B, gradient=True)
    assert float(value) == pytest.approx(_log_j_quad(m, n, A, B), rel=1e-9, abs=1e-9)
    # The analytic gradient agrees with central differences of the value.
    for i, base in enumerate((m, n, A, B)):
        h = 1e-6 * base
        args_plus = [m, n, A, B]
        args_minus = [m, n, A, B]
        args_plus[i] += h
        args_minus[i] -= h
        numeric = (
            float(log_j(*args_plus, gradient=False)[0]) - float(log_j(*args_minus, gradient=False)[0])
        ) / (2 * h)
        assert float(grads[i]) == pytest.approx(numeric, rel=1e-5, abs=1e-6)


def test_gradient_matches_finite_differences(cdnow):
    x, t_x, T = cdnow["x"], cdnow["t_x"], cdnow["T"]
    likelihood = ParetoLikelihood(x, t_x, T, np.ones(x.size))
    for params in ([0.5, 15.0, 0.7, 8.0], [1.0, 0.5, 2.0, 300.0]):  # the second uses the quadrature branch
        u = np.log(params)
        _, grad = likelihood(u)
        h = 1e-6
        numeric = [(likelihood(u + h * e)[0] - likelihood(u - h * e)[0]) / (2 * h) for e in np.eye(4)]
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-3)


def test_stable_for_hundreds_of_purchases():
    x = np.array([0, 5, 200, 500, 900])
    t_x = np.array([0.0, 30.0, 38.0, 77.0, 10.0])
    T = np.array([39.0, 39.0, 39.0, 78.0, 5000.0])
    for params in (
        PAPER,
        {"r": 0.2, "alpha": 100.0, "s": 2.0, "beta": 0.01},
        {"r": 3.0, "alpha": 0.01, "s": 0.1, "beta": 80},
    ):
        ll = pareto_nbd_log_likelihood(params, x, t_x, T)
        assert math.isfinite(ll)
        alive = pareto_nbd_p_alive(params, x, t_x, T)
        assert np.all(np.isfinite(alive)) and np.all((alive >= 0) & (alive <= 1))
        expected = pareto_nbd_expected(params, 52.0, x, t_x, T)
        assert np.all(np.isfinite(expected)) and np.all(expected >= 0)


def test_p_alive_known_values():
    # alpha = beta closed form: P(alive) = 1 / (1 + s/(r+s+x) [((alpha+T)/(alpha+t_x))^(r+s+x) - 1]).
    params = {"r": 0.7, "alpha": 5.0, "s": 0.9, "beta": 5.0}
    x, t_x, T = 3, 10.0, 40.0
    k = 0.7 + 0.9 + x
    expected = 1.0 / (1.0 + 0.9 / k * (((5.0 + T) / (5.0 + t_x)) ** k - 1.0))
    assert float(pareto_nbd_p_alive(params, x, t_x, T)) == pytest.approx(expected, rel=1e-12)
    assert float(pareto_nbd_p_alive(params, 3, 40.0, 40.0)) == pytest.approx(1.0)


def test_closed_forms():
    # E[X(t)] = r beta / (alpha (s - 1)) [1 - (beta / (beta + t))^(s - 1)]
    t = 39.0
    r, alpha, s, beta = PAPER.values()
    expected = r * beta / (alpha * (s - 1)) * (1 - (beta / (beta + t)) ** (s - 1))
    assert float(pareto_nbd_unconditional(PAPER, t)) == pytest.approx(expected, rel=1e-12)
    # s = 1 is the logarithmic limit.
    limit = pareto_nbd_unconditional({"r": 1.0, "alpha": 2.0, "s": 1.0, "beta": 3.0}, 6.0)
    assert float(limit) == pytest.approx(1.0 / 2.0 * 3.0 * math.log(3.0), rel=1e-12)
    # A customer observed at T = 0 with no purchase is the population average.
    assert float(pareto_nbd_expected(PAPER, t, 0, 0.0, 0.0)) == pytest.approx(expected, rel=1e-10)


def _simulate_pareto(n: int, params: dict[str, float], seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    lam = rng.gamma(params["r"], 1 / params["alpha"], n)
    mu = rng.gamma(params["s"], 1 / params["beta"], n)
    T = rng.uniform(20, 80, n)
    alive_until = np.minimum(rng.exponential(1 / mu), T)
    x = rng.poisson(lam * alive_until)
    t_x = np.where(x > 0, alive_until * rng.beta(np.maximum(x, 1), 1.0), 0.0)
    return x.astype(float), t_x, T


def test_recovers_simulated_parameters():
    truth = {"r": 0.55, "alpha": 10.5, "s": 0.6, "beta": 12.0}
    fit = fit_pareto_nbd(*_simulate_pareto(40_000, truth, seed=4))
    assert fit.converged, fit.message
    for name, value in truth.items():
        se = fit.std_errors[name]
        assert se is not None and abs(fit.params[name] - value) < 4 * se, (name, fit.params[name], se)


def test_degenerate_data_fails_cleanly():
    zero = fit_pareto_nbd(np.zeros(30), np.zeros(30), np.full(30, 10.0))
    assert not zero.converged and zero.params == {} and "frequency 0" in zero.message
    same = fit_pareto_nbd(np.full(100, 2.0), np.full(100, 10.0), np.full(100, 20.0))
    assert same.message
    values = [*same.params.values(), *(v for v in same.std_errors.values() if v is not None)]
    assert all(math.isfinite(v) for v in values)
    assert same.log_likelihood is None or math.isfinite(same.log_likelihood)
