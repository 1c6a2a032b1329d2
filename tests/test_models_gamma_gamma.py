"""Gamma-Gamma spend model (clvtool.models.gamma_gamma) against Fader, Hardie & Lee (2005) and simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from clvtool.models.gamma_gamma import fit_gamma_gamma, gamma_gamma_log_likelihood, gamma_gamma_mean

PAPER = {"p": 6.25, "q": 3.74, "gamma": 15.44}


@pytest.fixture(scope="module")
def cdnow(request) -> dict[str, np.ndarray]:
    path = request.path.parent / "data" / "cdnow" / "summary_paper.csv"
    data = np.genfromtxt(path, delimiter=",", names=True)
    return {name: data[name] for name in data.dtype.names}


def test_cdnow_fit_matches_paper(cdnow):
    fit = fit_gamma_gamma(cdnow["x"], cdnow["zbar"])
    assert fit.converged, fit.message
    assert fit.name == "gamma_gamma" and fit.customers == 946
    for name, value in PAPER.items():
        assert fit.params[name] == pytest.approx(value, rel=0.01), name
    assert all(v is not None and v > 0 for v in fit.std_errors.values())
    assert fit.log_likelihood == pytest.approx(
        gamma_gamma_log_likelihood(fit.params, cdnow["x"], cdnow["zbar"])
    )


def test_zero_and_negative_spend_excluded(cdnow):
    x, m = cdnow["x"].copy(), cdnow["zbar"].copy()
    base = fit_gamma_gamma(x, m)
    extra_x = np.r_[x, [3, 5, 2]]
    extra_m = np.r_[m, [0.0, -12.5, float("inf")]]
    fit = fit_gamma_gamma(extra_x, extra_m)
    assert fit.customers == 946
    for name in PAPER:
        assert fit.params[name] == pytest.approx(base.params[name], rel=1e-9)


def test_mean_spend():
    p, q, gamma = PAPER.values()
    population = p * gamma / (q - 1)
    means = gamma_gamma_mean(PAPER, [0, 1, 4, 2], [0.0, 20.0, 35.5, -3.0])
    assert means[0] == pytest.approx(population)
    assert means[1] == pytest.approx(p * (gamma + 20.0) / (p + q - 1))
    assert means[2] == pytest.approx(p * (gamma + 4 * 35.5) / (4 * p + q - 1))
    assert means[3] == pytest.approx(population)  # a mean spend that is not positive gets the population mean
    # It is a weighted average of the population mean and the customer's own mean.
    assert population < means[1] < 20.0 or 20.0 < means[1] < population
    with pytest.raises(ValueError, match="q"):
        gamma_gamma_mean({"p": 2.0, "q": 0.9, "gamma": 3.0}, [1], [10.0])


def test_recovers_simulated_parameters():
    rng = np.random.default_rng(5)
    n = 20_000
    truth = {"p": 6.0, "q": 4.0, "gamma": 15.0}
    nu = rng.gamma(truth["q"], 1 / truth["gamma"], n)
    x = rng.integers(1, 8, n).astype(float)
    # The mean of x Gamma(p, nu) spends is Gamma(p x, rate x nu).
    m = rng.gamma(truth["p"] * x, 1.0) / (x * nu)
    fit = fit_gamma_gamma(x, m)
    assert fit.converged, fit.message
    for name, value in truth.items():
        se = fit.std_errors[name]
        assert se is not None and abs(fit.params[name] - value) < 4 * se, (name, fit.params[name], se)


def test_degenerate_inputs():
    none = fit_gamma_gamma([0, 0, 0], [0.0, 0.0, 0.0])
    assert not none.converged and none.params == {} and none.customers == 0
    same = fit_gamma_gamma([2] * 50, [10.0] * 50)
    assert not same.converged and "same mean spend" in same.message
    with pytest.raises(ValueError):
        fit_gamma_gamma([-1, 2], [1.0, 2.0])
    with pytest.raises(ValueError):
        fit_gamma_gamma([1, 2], [1.0, float("nan")])
    for result in (none, same):
        assert all(math.isfinite(v) for v in result.params.values())


def test_likelihood_in_blocks_gives_the_same_numbers(monkeypatch):
    from clvtool.models import gamma_gamma

    rng = np.random.default_rng(2)
    x = rng.integers(1, 9, 3000).astype(float)
    m = rng.gamma(3.0, 10.0, 3000)
    w = rng.integers(1, 4, 3000).astype(float)
    u = np.log([5.0, 3.0, 12.0])
    ll, grad = gamma_gamma.GammaGammaLikelihood(x, m, w)(u)
    monkeypatch.setattr(gamma_gamma, "_CHUNK", 101)
    ll_blocks, grad_blocks = gamma_gamma.GammaGammaLikelihood(x, m, w)(u)
    assert ll_blocks == pytest.approx(ll, rel=1e-13)
    np.testing.assert_allclose(grad_blocks, grad, rtol=1e-9, atol=1e-9 * np.abs(grad).max())


@pytest.mark.parametrize(
    "params", [PAPER, {"p": 1.0, "q": 3.0, "gamma": 80.0}, {"p": 20.0, "q": 1.5, "gamma": 2.0}]
)
def test_analytic_hessian_matches_central_differences(cdnow, params):
    from clvtool.models.fitting import _hessian, _safe
    from clvtool.models.gamma_gamma import GammaGammaLikelihood

    keep = cdnow["x"] > 0
    likelihood = GammaGammaLikelihood(cdnow["x"][keep], cdnow["zbar"][keep], np.ones(int(keep.sum())))
    u = np.log([params[k] for k in ("p", "q", "gamma")])
    by_differences = -_hessian(lambda v: _safe(likelihood, v), u)
    analytic = likelihood.hessian(u)
    np.testing.assert_allclose(analytic, analytic.T, rtol=0, atol=0)
    np.testing.assert_allclose(analytic, by_differences, rtol=1e-5, atol=1e-7 * np.abs(by_differences).max())
