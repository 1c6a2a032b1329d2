"""Gamma-Gamma spend model (Fader, Hardie & Lee 2005, "RFM and CLV"; Colombo & Jiang 1999).

Each purchase's value z ~ Gamma(shape p, rate nu) with nu ~ Gamma(shape q, rate gamma) per customer,
independent of the purchase process. A customer with x repeat purchases of mean value mbar contributes

    log f = lgamma(p x + q) - lgamma(p x) - lgamma(q) + q log(gamma) + (p x - 1) log(mbar)
            + p x log(x) - (p x + q) log(gamma + x mbar)

(the density of the mean of x values). Only customers with x > 0 and mbar > 0 are fitted. Sums of
log(mbar) and x log(x) are precomputed and the gamma functions evaluated once per distinct x, so
one evaluation costs a single log over the customers; the gradient is analytic.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import digamma, gammaln, polygamma

from clvtool.models.fitting import FitResult, dot, failed_fit, fit_result, levels, maximise, positive_params

__all__ = ["GammaGammaLikelihood", "fit_gamma_gamma", "gamma_gamma_log_likelihood", "gamma_gamma_mean"]

PARAMS = ("p", "q", "gamma")


_CHUNK = 1 << 18  # customers per block: long NumPy calls (see `GammaGammaLikelihood._sums`)


class GammaGammaLikelihood:
    """Total Gamma-Gamma log-likelihood with its analytic gradient w.r.t. log p, log q, log gamma."""

    def __init__(self, x: np.ndarray, mbar: np.ndarray, weights: np.ndarray):
        self.ux, ix = levels(x)
        self.level_weight = np.bincount(ix, weights=weights, minlength=self.ux.size)
        self.x = x
        self.xm = x * mbar
        self.w = weights
        self.wx = weights * x
        self.total = float(weights.sum())
        log_m = np.log(mbar)
        self.sum_log_m = dot(weights, log_m)
        self.sum_x_log_m = dot(self.wx, log_m)
        self.sum_x_log_x = dot(self.wx, np.log(x))

    def __call__(self, u: np.ndarray) -> tuple[float, np.ndarray]:
        """(log-likelihood, gradient w.r.t. log p, log q, log gamma) at log-parameters u."""
        p, q, gamma = np.exp(u)
        ux, lw = self.ux, self.level_weight
        px = p * ux
        w_log_sum, wx_log_sum, w_inv, wx_inv = self._sums(gamma)
        ll = (
            lw @ (gammaln(px + q) - gammaln(px))
            - self.total * gammaln(q)
            + self.total * q * np.log(gamma)
            + p * self.sum_x_log_m
            - self.sum_log_m
            + p * self.sum_x_log_x
            - p * wx_log_sum
            - q * w_log_sum
        )
        psi = digamma(px + q)
        g_p = lw @ (ux * (psi - digamma(px))) + self.sum_x_log_m + self.sum_x_log_x - wx_log_sum
        g_q = lw @ psi - self.total * digamma(q) + self.total * np.log(gamma) - w_log_sum
        g_gamma = self.total * q / gamma - p * wx_inv - q * w_inv
        grad = np.array([g_p * p, g_q * q, g_gamma * gamma])
        self._last = (np.asarray(u, dtype=np.float64).tobytes(), grad)
        return float(ll), grad.copy()

    def hessian(self, u: np.ndarray) -> np.ndarray:
        """Hessian of the log-likelihood w.r.t. log p, log q, log gamma at u (analytic):
        theta theta' * H_theta + diag(gradient on the log scale), theta = (p, q, gamma)."""
        theta = np.exp(u)
        p, q, gamma = theta
        ux, lw = self.ux, self.level_weight
        px = p * ux
        last = getattr(self, "_last", None)  # the gradient of the last evaluation, if it was at u
        grad = last[1] if last is not None and last[0] == np.asarray(u, np.float64).tobytes() else self(u)[1]
        w_inv, wx_inv, w_inv2, wx_inv2 = self._inverse_sums(gamma)
        t_end = polygamma(1, px + q)
        t_x = t_end - polygamma(1, px)
        h = np.empty((3, 3))
        h[0, 0] = lw @ (ux * ux * t_x)
        h[0, 1] = h[1, 0] = lw @ (ux * t_end)
        h[1, 1] = lw @ t_end - self.total * polygamma(1, q)
        h[0, 2] = h[2, 0] = -wx_inv
        h[1, 2] = h[2, 1] = self.total / gamma - w_inv
        h[2, 2] = -self.total * q / gamma**2 + p * wx_inv2 + q * w_inv2
        return theta[:, None] * theta[None, :] * h + np.diag(grad)

    def _blocks(self, gamma: float) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """(w, w x, s, spare) per block of customers in a fixed order, s = gamma + x mbar; s and spare
        are reused buffers the caller may overwrite."""
        n = self.xm.size
        buffers = np.empty((2, min(_CHUNK, n)))
        for start in range(0, n, _CHUNK):
            stop = min(start + _CHUNK, n)
            s, spare = (buf[: stop - start] for buf in buffers)
            np.add(self.xm[start:stop], gamma, out=s)
            yield self.w[start:stop], self.wx[start:stop], s, spare

    def _inverse_sums(self, gamma: float) -> tuple[float, float, float, float]:
        """Sums of w / s, w x / s, w / s^2 and w x / s^2 with s = gamma + x mbar."""
        w_inv = wx_inv = w_inv2 = wx_inv2 = 0.0
        for w, wx, inv, inv2 in self._blocks(gamma):
            np.divide(1.0, inv, out=inv)
            np.multiply(inv, inv, out=inv2)
            w_inv += dot(w, inv)
            wx_inv += dot(wx, inv)
            w_inv2 += dot(w, inv2)
            wx_inv2 += dot(wx, inv2)
        return w_inv, wx_inv, w_inv2, wx_inv2

    def _sums(self, gamma: float) -> tuple[float, float, float, float]:
        """Sums of w log s, w x log s, w / s and w x / s with s = gamma + x mbar."""
        w_log_sum = wx_log_sum = w_inv = wx_inv = 0.0
        for w, wx, total, log_total in self._blocks(gamma):
            np.log(total, out=log_total)
            w_log_sum += dot(w, log_total)
            wx_log_sum += dot(wx, log_total)
            np.divide(1.0, total, out=total)
            w_inv += dot(w, total)
            wx_inv += dot(wx, total)
        return w_log_sum, wx_log_sum, w_inv, wx_inv


def _spend_inputs(frequency: ArrayLike, monetary_value: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Frequency and mean spend as equal-length float arrays; ValueError for invalid arguments."""
    x = np.atleast_1d(np.asarray(frequency, dtype=np.float64))
    m = np.atleast_1d(np.asarray(monetary_value, dtype=np.float64))
    if x.ndim > 1 or m.ndim > 1:
        raise ValueError("frequency and monetary_value must be one-dimensional")
    try:
        x, m = np.broadcast_arrays(x, m)
    except ValueError:
        raise ValueError("frequency and monetary_value must have the same length") from None
    if not _whole_non_negative(x):
        raise ValueError("frequency must be finite whole numbers, not negative")
    if np.isnan(m.sum()) and np.any(np.isnan(m)):  # a sum that is not NaN has no NaN in it
        raise ValueError("monetary_value has missing values")
    return x, m


def _whole_non_negative(x: np.ndarray) -> bool:
    """True when every value is a finite whole number >= 0 (checked in blocks: no large temporary)."""
    if x.size == 0:
        return True
    if not (x.min() >= 0 and x.max() < np.inf):  # also False for NaN
        return False
    buffer = np.empty(min(x.size, 1 << 16))
    for start in range(0, x.size, buffer.size):
        block = x[start : start + buffer.size]
        if not np.array_equal(np.floor(block, out=buffer[: block.size]), block):
            return False
    return True


def fit_gamma_gamma(frequency: ArrayLike, monetary_value: ArrayLike) -> FitResult:
    """Fit the Gamma-Gamma to customers with frequency > 0 and monetary_value > 0; the rest are left out."""
    x, m = _spend_inputs(frequency, monetary_value)
    keep = (x > 0) & (m > 0) & np.isfinite(m)
    n = int(keep.sum())
    name = "gamma_gamma"
    if n < 2:
        return failed_fit(
            name, n, f"{n} repeat customer(s) with a positive mean spend: too few to fit the spend model", ""
        )
    x, m = x[keep], m[keep]
    w = np.ones(n)
    if np.ptp(m) == 0:
        return failed_fit(
            name, n, "every repeat customer has the same mean spend: the spend model cannot be estimated", ""
        )
    likelihood = GammaGammaLikelihood(x, m, w)
    mean = float(m.mean())
    start = np.log([1.0, 3.0, 2.0 * mean])  # population mean p gamma / (q - 1) = mean spend
    optimum = maximise(likelihood, start, float(n), hessian=likelihood.hessian)
    result = fit_result(name, PARAMS, optimum, float(n), "")
    if result.converged and result.params["q"] <= 1.0:
        return replace(result, message="converged, but q <= 1: the model's mean spend is infinite")
    return result


def gamma_gamma_log_likelihood(
    params: Mapping[str, float], frequency: ArrayLike, monetary_value: ArrayLike
) -> float:
    """Total Gamma-Gamma log-likelihood of the customers with frequency > 0 and monetary_value > 0."""
    p, q, gamma = _unpack(params)
    x, m = _spend_inputs(frequency, monetary_value)
    keep = (x > 0) & (m > 0) & np.isfinite(m)
    if not keep.any():
        return 0.0
    ll, _ = GammaGammaLikelihood(x[keep], m[keep], np.ones(int(keep.sum())))(np.log([p, q, gamma]))
    return ll


def _unpack(params: Mapping[str, float]) -> tuple[float, float, float]:
    """(p, q, gamma); ValueError unless all are positive and finite."""
    return positive_params(params, PARAMS)  # type: ignore[return-value]


def gamma_gamma_mean(params: Mapping[str, float], x: ArrayLike, mbar: ArrayLike) -> np.ndarray:
    """E[spend per purchase | x, mbar] = p (gamma + x mbar) / (p x + q - 1), in the currency of mbar.

    Customers with x = 0 or a mean spend that is not positive get the population mean p gamma / (q - 1).
    Raises ValueError when q <= 1 (the model's mean spend is then infinite).
    """
    p, q, gamma = _unpack(params)
    if q <= 1.0:
        raise ValueError(f"q = {q:g} <= 1: the Gamma-Gamma mean spend is infinite")
    x, m = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(mbar, dtype=np.float64))
    if x.size and not (x.min() >= 0 and x.max() < np.inf):  # also True for NaN
        raise ValueError("frequency must be finite and not negative")
    use = x > 0
    use &= np.isfinite(m)
    use &= m > 0
    xu = np.where(use, x, 0.0)
    mean = np.where(use, m, 0.0)
    # p * (gamma + xu * mu) / (p * xu + q - 1), in place (customer-length arrays are costly to create).
    np.multiply(xu, mean, out=mean)
    np.add(gamma, mean, out=mean)
    np.multiply(p, mean, out=mean)
    np.multiply(p, xu, out=xu)
    xu += q
    xu -= 1.0
    np.divide(mean, xu, out=mean)
    return mean if mean.ndim else mean[()]
