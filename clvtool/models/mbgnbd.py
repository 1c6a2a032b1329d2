"""MBG/NBD purchase model (Batislam, Denizel & Filiztekin 2007; Hoppe & Wagner 2007).

The BG/NBD with one change: a customer can also drop out right after the *first* purchase, so a
customer with no repeat purchase may be inactive. Per-customer likelihood, in log-sum-exp form:

    log L = lgamma(r + x) - lgamma(r) + r log(alpha)
            + logaddexp(lbeta(a, b + x + 1) - lbeta(a, b) - (r + x) log(alpha + T),
                        lbeta(a + 1, b + x) - lbeta(a, b) - (r + x) log(alpha + t_x))

Fitted by the shared `BetaGeometricLikelihood` of `bgnbd.py` (analytic gradient). The alive-customer
expectation is the BG/NBD one with b + 1 (the posterior of p is Beta(a, b + x + 1)), so the closed
forms reuse its Euler-transformed hypergeometric.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import expit

from clvtool.models.bgnbd import (
    BetaGeometricLikelihood,
    alive_expected,
    alive_expected_pairs,
    fit_beta_geometric,
    horizon_array,
    summary_arrays,
    unpack,
)
from clvtool.models.fitting import FitResult, compress

__all__ = [
    "fit_mbgnbd",
    "mbgnbd_expected",
    "mbgnbd_expected_factors",
    "mbgnbd_log_likelihood",
    "mbgnbd_p_alive",
    "mbgnbd_unconditional",
]


def fit_mbgnbd(
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    time_unit: str = "week",
) -> FitResult:
    """Fit the MBG/NBD to per-customer frequency, recency and T (in `time_unit`); never raises for data."""
    return fit_beta_geometric("mbgnbd", frequency, recency, T, weights, time_unit, modified=True)


def mbgnbd_log_likelihood(
    params: Mapping[str, float], frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> float:
    """Total MBG/NBD log-likelihood of the customers at `params`."""
    values = unpack(params)
    x, t_x, big_t, w, _ = compress(frequency, recency, T)
    if w.size == 0:
        return 0.0
    ll, _ = BetaGeometricLikelihood(x, t_x, big_t, w, modified=True)(np.log(values))
    return ll


def mbgnbd_p_alive(params: Mapping[str, float], x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> np.ndarray:
    """P(alive at T | x, t_x, T) = 1 / (1 + a/(b+x) ((alpha+T)/(alpha+t_x))^(r+x)), also for x = 0."""
    r, alpha, a, b = unpack(params)
    x, t_x, big_t = summary_arrays(x, t_x, T)
    log_odds = np.log(a) - np.log(b + x) + (r + x) * (np.log(alpha + big_t) - np.log(alpha + t_x))
    return expit(-log_odds)


def mbgnbd_expected(
    params: Mapping[str, float], t: ArrayLike, x: ArrayLike, t_x: ArrayLike, T: ArrayLike
) -> np.ndarray:
    """E[purchases in (T, T + t] | x, t_x, T]; t in the model time unit."""
    r, alpha, a, b = unpack(params)
    t = horizon_array(t)
    x, t_x, big_t = summary_arrays(x, t_x, T)
    return mbgnbd_p_alive(params, x, t_x, big_t) * alive_expected(r, alpha, a, b + 1.0, t, x, big_t)


def mbgnbd_expected_factors(
    params: Mapping[str, float], t: ArrayLike, x: ArrayLike, t_x: ArrayLike, T: ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`mbgnbd_expected` as ``p_alive * alive[..., pair]`` (see `bgnbd_expected_factors`)."""
    r, alpha, a, b = unpack(params)
    t = horizon_array(t)
    x, t_x, big_t = summary_arrays(x, t_x, T)
    alive, pair = alive_expected_pairs(r, alpha, a, b + 1.0, t, x, big_t)
    return mbgnbd_p_alive(params, x, t_x, big_t), alive, pair


def mbgnbd_unconditional(params: Mapping[str, float], t: ArrayLike) -> np.ndarray:
    """E[X(t)] = b / (a - 1) [1 - (alpha / (alpha + t))^r 2F1(r, b + 1; a + b; t / (alpha + t))]."""
    return mbgnbd_expected(params, t, 0.0, 0.0, 0.0)
