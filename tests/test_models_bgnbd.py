"""BG/NBD engine (clvtool.models.bgnbd) against Fader, Hardie & Lee (2005), simulation and quadrature."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import integrate
from scipy.special import betaln

from clvtool.models.bgnbd import (
    bgnbd_expected,
    bgnbd_log_likelihood,
    bgnbd_p_alive,
    bgnbd_unconditional,
    fit_bgnbd,
)
from clvtool.models.simulate import SampleParams, expected_repeat_purchases, simulate_sample

PAPER = {"r": 0.2426, "alpha": 4.414, "a": 0.793, "b": 2.426}


@pytest.fixture(scope="module")
def cdnow(request) -> dict[str, np.ndarray]:
    """The published CDNOW calibration summary (weeks): ID, x, t_x, T, zbar."""
    path = request.path.parent / "data" / "cdnow" / "summary_paper.csv"
    data = np.genfromtxt(path, delimiter=",", names=True)
    return {name: data[name] for name in data.dtype.names}


def _no_nan(result) -> None:
    values = [*result.params.values(), *(v for v in result.std_errors.values() if v is not None)]
    if result.log_likelihood is not None:
        values.append(result.log_likelihood)
    assert all(math.isfinite(v) for v in values), result


def test_cdnow_fit_matches_paper(cdnow):
    fit = fit_bgnbd(cdnow["x"], cdnow["t_x"], cdnow["T"])
    assert fit.converged, fit.message
    assert fit.name == "bgnbd" and fit.customers == 2357 and fit.time_unit == "week"
    for name, value in PAPER.items():
        assert fit.params[name] == pytest.approx(value, rel=0.01), name
    assert fit.log_likelihood == pytest.approx(-9582.43, abs=0.05)
    # Standard errors: regression values of our observed-information Hessian (not from a publication).
    assert fit.std_errors["r"] == pytest.approx(0.0126, rel=0.05)
    assert fit.std_errors["alpha"] == pytest.approx(0.378, rel=0.05)
    assert fit.std_errors["a"] == pytest.approx(0.186, rel=0.05)
    assert fit.std_errors["b"] == pytest.approx(0.705, rel=0.05)
    _no_nan(fit)


def test_log_likelihood_at_paper_parameters(cdnow):
    ll = bgnbd_log_likelihood(PAPER, cdnow["x"], cdnow["t_x"], cdnow["T"])
    assert ll == pytest.approx(-9582.43, abs=0.05)


def test_weights_equal_repeated_rows(cdnow):
    x, t_x, T = cdnow["x"][:300], cdnow["t_x"][:300], cdnow["T"][:300]
    doubled = fit_bgnbd(np.tile(x, 2), np.tile(t_x, 2), np.tile(T, 2))
    weighted = fit_bgnbd(x, t_x, T, weights=np.full(x.size, 2.0))
    assert doubled.log_likelihood == pytest.approx(weighted.log_likelihood, rel=1e-10)
    for name in PAPER:
        assert doubled.params[name] == pytest.approx(weighted.params[name], rel=1e-5)


def test_conditional_expectation_paper_example():
    # FHL 2005: customer with x = 2, t_x = 30.43, T = 38.86 expects 1.226 purchases in the next 39 weeks.
    assert float(bgnbd_expected(PAPER, 39.0, 2, 30.43, 38.86)) == pytest.approx(1.226, abs=5e-4)


def test_unconditional_matches_simulator_formula():
    t = np.array([0.0, 1.0, 13.0, 39.0, 78.0, 520.0])
    ours = bgnbd_unconditional(PAPER, t)
    theirs = expected_repeat_purchases(t, **PAPER)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15)
    assert float(bgnbd_unconditional(PAPER, 0.0)) == 0.0


def _expected_by_quadrature(params, t, x, t_x, T) -> float:
    """E[purchases in (T, T+t]] = P(alive) E_p[(1 - (1 + p t/(alpha+T))^-(r+x)) / p], p ~ Beta(a, b+x)."""
    r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
    theta = t / (alpha + T)

    def integrand(p: float) -> float:
        growth = -math.expm1(-(r + x) * math.log1p(p * theta)) / p
        return math.exp((a - 1) * math.log(p) + (b + x - 1) * math.log1p(-p) - betaln(a, b + x)) * growth

    with warnings.catch_warnings():  # quad may warn that 1e-11 is out of reach; 1e-7 is checked
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        value = integrate.quad(integrand, 0, 1, limit=400, epsabs=0, epsrel=1e-11, points=[1e-6, 1e-3, 0.5])[
            0
        ]
    return float(bgnbd_p_alive(params, x, t_x, T)) * value


@pytest.mark.parametrize(
    "params",
    [
        PAPER,
        {"r": 2.0, "alpha": 0.5, "a": 3.0, "b": 0.2},  # r - a integer: scipy's hyp2f1 fails near z = 1
        {"r": 0.3, "alpha": 20.0, "a": 1.0, "b": 0.4},  # a = 1: removable singularity
        {"r": 0.8, "alpha": 3.0, "a": 1.5, "b": 6.0},
    ],
)
@pytest.mark.parametrize(
    ("x", "t_x", "T"), [(0, 0.0, 10.0), (3, 20.0, 52.0), (150, 40.0, 52.0), (400, 700.0, 1000.0)]
)
@pytest.mark.parametrize("t", [1.0, 52.0, 5000.0])
def test_conditional_expectation_against_quadrature(params, x, t_x, T, t):
    ours = float(bgnbd_expected(params, t, x, t_x, T))
    assert math.isfinite(ours)
    assert ours == pytest.approx(_expected_by_quadrature(params, t, x, t_x, T), rel=1e-7, abs=1e-12)


def test_closed_forms_finite_for_extreme_inputs():
    x = np.array([0, 1, 100, 300, 900, 300])
    t_x = np.array([0.0, 0.5, 50.0, 299.0, 1000.0, 1.0])
    T = np.array([1e-6, 1.0, 5000.0, 300.0, 1000.0, 1e5])
    for params in (PAPER, {"r": 5.0, "alpha": 0.01, "a": 0.05, "b": 50.0}):
        alive = bgnbd_p_alive(params, x, t_x, T)
        assert np.all(np.isfinite(alive)) and np.all((alive >= 0) & (alive <= 1))
        for t in (0.5, 52.0, 1e6):
            e = bgnbd_expected(params, t, x, t_x, T)
            assert np.all(np.isfinite(e)) and np.all(e >= 0)
        assert math.isfinite(bgnbd_log_likelihood(params, x, t_x, T))


def test_p_alive_properties():
    assert float(bgnbd_p_alive(PAPER, 0, 0.0, 30.0)) == 1.0
    recent = float(bgnbd_p_alive(PAPER, 5, 29.0, 30.0))
    stale = float(bgnbd_p_alive(PAPER, 5, 2.0, 30.0))
    assert 0 < stale < recent < 1


def test_recovers_simulated_parameters():
    # The continuous-time truth avoids the day-rounding bias of PRODUCT §8.
    truth = simulate_sample(SampleParams(customers=30_000, seed=123)).truth
    fit = fit_bgnbd(truth["x"].to_numpy(), truth["t_x"].to_numpy(), truth["T"].to_numpy())
    assert fit.converged, fit.message
    for name, value in {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}.items():
        se = fit.std_errors[name]
        assert se is not None and se > 0
        assert abs(fit.params[name] - value) < 4 * se, (name, fit.params[name], se)


def test_all_zero_frequency_fails_cleanly():
    fit = fit_bgnbd(np.zeros(50), np.zeros(50), np.linspace(1, 50, 50))
    assert not fit.converged
    assert "frequency 0" in fit.message
    assert fit.params == {} and fit.log_likelihood is None
    _no_nan(fit)


def test_identical_customers_do_not_crash():
    fit = fit_bgnbd(np.full(200, 2.0), np.full(200, 10.0), np.full(200, 20.0))
    _no_nan(fit)
    assert fit.message
    if not fit.converged:
        assert all(v is None for v in fit.std_errors.values())


def test_empty_input():
    fit = fit_bgnbd([], [], [])
    assert not fit.converged and fit.customers == 0 and fit.params == {}


@pytest.mark.parametrize(
    ("x", "t_x", "T"),
    [
        ([1], [1.0], [-1.0]),
        ([-1], [0.0], [1.0]),
        ([1], [5.0], [2.0]),
        ([0], [1.0], [2.0]),
        ([1.5], [1.0], [2.0]),
        ([1], [float("nan")], [2.0]),
        ([1, 2], [1.0], [2.0, 3.0, 4.0]),
    ],
)
def test_invalid_summaries_raise(x, t_x, T):
    with pytest.raises(ValueError):
        fit_bgnbd(x, t_x, T)


def test_invalid_parameters_raise():
    with pytest.raises(ValueError, match="alpha"):
        bgnbd_p_alive({"r": 1.0, "alpha": -1.0, "a": 1.0, "b": 1.0}, 1, 1.0, 2.0)
    with pytest.raises(ValueError, match="missing"):
        bgnbd_unconditional({"r": 1.0}, 1.0)
    with pytest.raises(ValueError, match="horizon"):
        bgnbd_expected(PAPER, -1.0, 1, 1.0, 2.0)


def test_many_customers_match_one_by_one():
    # Above 1,000 customers the alive part is evaluated once per distinct (x, T): same numbers.
    rng = np.random.default_rng(0)
    n = 1500
    x = rng.integers(0, 20, n).astype(float)
    T = rng.integers(0, 100, n) / 7
    t_x = np.where(x > 0, T * rng.random(n), 0.0)
    horizons = np.array([[1.0], [52.0]])
    together = bgnbd_expected(PAPER, horizons, x, t_x, T)
    assert together.shape == (2, n)
    one_by_one = [
        [float(bgnbd_expected(PAPER, h, x[i], t_x[i], T[i])) for i in range(n)] for h in (1.0, 52.0)
    ]
    np.testing.assert_allclose(together, one_by_one, rtol=1e-13, atol=0)


@pytest.mark.parametrize("modified", [False, True])
def test_likelihood_blocks_and_row_order_do_not_change_it(monkeypatch, modified):
    """Blocks of rows, and rows that are not sorted (pairs found by value), give the same numbers."""
    from clvtool.models import bgnbd
    from clvtool.models.fitting import compress

    rng = np.random.default_rng(8)
    n = 5000
    x = rng.integers(0, 12, n).astype(float)
    T = rng.integers(1, 300, n) / 7
    t_x = np.where(x > 0, np.floor(T * 7 * rng.random(n)) / 7, 0.0)
    ux, ut, uT, w, _ = compress(x, t_x, T)
    u = np.log([0.3, 5.0, 0.8, 2.5])
    whole = bgnbd.BetaGeometricLikelihood(ux, ut, uT, w, modified=modified)(u)
    monkeypatch.setattr(bgnbd, "_CHUNK", 97)
    blocks = bgnbd.BetaGeometricLikelihood(ux, ut, uT, w, modified=modified)(u)
    order = rng.permutation(ux.size)
    shuffled = bgnbd.BetaGeometricLikelihood(ux[order], ut[order], uT[order], w[order], modified=modified)
    assert shuffled.pair_starts is None
    for ll, grad in (blocks, shuffled(u)):
        assert ll == pytest.approx(whole[0], rel=1e-13)
        np.testing.assert_allclose(grad, whole[1], rtol=1e-9, atol=1e-9 * np.abs(whole[1]).max())


@pytest.mark.parametrize("modified", [False, True])
@pytest.mark.parametrize(
    "params",
    [PAPER, {"r": 1.0, "alpha": 39.0, "a": 1.0, "b": 1.0}, {"r": 3.0, "alpha": 0.2, "a": 2.0, "b": 0.5}],
)
def test_analytic_hessian_matches_central_differences(cdnow, modified, params):
    from clvtool.models import bgnbd
    from clvtool.models.fitting import _hessian, _safe, compress

    x, t_x, T, w, _ = compress(cdnow["x"], cdnow["t_x"], cdnow["T"])
    likelihood = bgnbd.BetaGeometricLikelihood(x, t_x, T, w, modified=modified)
    u = np.log([params[k] for k in ("r", "alpha", "a", "b")])
    by_differences = -_hessian(lambda v: _safe(likelihood, v), u)
    analytic = likelihood.hessian(u)
    np.testing.assert_allclose(analytic, analytic.T, rtol=0, atol=0)
    np.testing.assert_allclose(analytic, by_differences, rtol=1e-5, atol=1e-7 * np.abs(by_differences).max())
    assert np.array_equal(likelihood(u)[1], likelihood(u)[1])  # the remembered gradient is not shared
