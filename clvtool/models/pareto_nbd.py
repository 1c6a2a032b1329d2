"""Pareto/NBD purchase model (Schmittlein, Morrison & Colombo 1987; Fader & Hardie 2005 note 009).

While alive a customer buys at Poisson rate lambda ~ Gamma(r, rate alpha) and dies after an
exponential lifetime with rate mu ~ Gamma(s, rate beta), all per time unit of the inputs.

Stable likelihood. The published form subtracts two Gauss hypergeometric terms (A0), which cancel,
overflow or fail for x in the hundreds. Integrating the death time instead gives a sum of two
*positive* tail integrals,

    L / C = s * J(r + x, s + 1; t_x) + (r + x) * J(r + x + 1, s; T),
    C = Gamma(r + x) alpha^r beta^s / Gamma(r),
    J(m, n; tau) = integral_tau^inf (alpha + u)^-m (beta + u)^-n du,

(the second term is (alpha+T)^-(r+x) (beta+T)^-s - s J(r+x, s+1; T) integrated by parts), so
log L = log C + logaddexp(log s + log J1, log(r + x) + log J2). With k = m + n - 1 = r + s + x:

    alpha >= beta:  J = A^-k / k * (B/A)^(1-n) * 2F1(m, 1; k+1; (alpha-beta)/A)
    alpha <  beta:  J = A^-k / k * (B/A)^(-n)  * 2F1(n, 1; k+1; (beta-alpha)/B)
    with A = alpha + tau, B = beta + tau

(Euler's integral, then Euler's or Pfaff's transformation): each 2F1 has b = 1, an argument in [0, 1)
and is bounded, so everything is taken in logs and nothing overflows. J depends on (x, tau) only, so
it is computed once per distinct (x, t_x) and (x, T) pair.

Gradient: the elementary parts are differentiated analytically, d log 2F1 / dz analytically
(contiguous function a/c 2F1(a+1, 2; c+1; z)), and d log 2F1 / da, / dc by central differences
(relative step 1e-5) -- a careful numerical gradient of the stable likelihood.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import digamma, gammaln

from clvtool.models.bgnbd import horizon_array, softplus_and_weight, summary_arrays
from clvtool.models.fitting import (
    FitResult,
    compress,
    failed_fit,
    fit_result,
    levels,
    maximise,
    positive_params,
)

__all__ = [
    "ParetoLikelihood",
    "fit_pareto_nbd",
    "pareto_nbd_expected",
    "pareto_nbd_log_likelihood",
    "pareto_nbd_p_alive",
    "pareto_nbd_unconditional",
]

PARAMS = ("r", "alpha", "s", "beta")


_Parts = tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None]
"""log J and, if asked, its derivatives w.r.t. (m, n, A, B)."""


@dataclass(frozen=True)
class _Tail:
    """log J(m, n; tau) on a set of (x, tau) pairs and its derivatives w.r.t. r, alpha, s, beta."""

    value: np.ndarray
    grad: np.ndarray | None  # shape (4, pairs): d log J / d(r, alpha, s, beta)


def _hyp_b1(
    a: np.ndarray, c: np.ndarray, z: np.ndarray | float, gradient: bool = True
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray] | None]:
    """log 2F1(a, 1; c; z) and its derivatives w.r.t. a, c, z, for 0 <= z <= 1/2 and c > a > 0.

    Power series sum_j (a)_j / (c)_j z^j: every term is positive and at most z^j, so it converges
    geometrically; the derivatives are summed alongside (d/da of term j is term j * sum_i<j 1/(a+i)).
    """
    a, c, z = (np.array(v, dtype=np.float64).ravel() for v in np.broadcast_arrays(a, c, z))
    total = np.ones(a.shape)
    sum_a = np.zeros(a.shape)
    sum_c = np.zeros(a.shape)
    sum_z = np.zeros(a.shape)
    term = np.ones(a.shape)
    inv_a = np.zeros(a.shape)
    inv_c = np.zeros(a.shape)
    active = np.arange(a.size)
    for j in range(200):
        if not active.size:
            break
        aj, cj = a[active] + j, c[active] + j
        step = aj / cj
        slope = (j + 1.0) * term * step  # d/dz of the next term
        term = term * step * z[active]
        total[active] += term
        if gradient:
            inv_a = inv_a + 1.0 / aj
            inv_c = inv_c + 1.0 / cj
            sum_a[active] += term * inv_a
            sum_c[active] -= term * inv_c
            sum_z[active] += slope
        keep = term > 1e-17 * total[active]
        active, term, inv_a, inv_c = active[keep], term[keep], inv_a[keep], inv_c[keep]
    log_f = np.log(total)
    if not gradient:
        return log_f, None
    return log_f, (sum_a / total, sum_c / total, sum_z / total)


def _log_j_hyp(m: np.ndarray, n: np.ndarray, A: np.ndarray, B: np.ndarray, gradient: bool) -> _Parts:
    """log J(m, n; A, B) = log of integral_0^inf (A+w)^-m (B+w)^-n dw when |A-B| <= max(A, B) / 2.

    Returns the value and, with `gradient`, its derivatives w.r.t. m, n, A, B.
    """
    k = m + n - 1.0
    ge = A >= B
    log_a, log_b = np.log(A), np.log(B)
    hyp_a = np.where(ge, m, n)
    z = np.where(ge, (A - B) / A, (B - A) / B)
    power = np.where(ge, 1.0 - n, -n)
    c = k + 1.0
    log_f, derivs = _hyp_b1(hyp_a, c, z, gradient)
    value = -np.log(k) - k * log_a + power * (log_b - log_a) + log_f
    if derivs is None:
        return value, None
    d_a, d_c, d_z = derivs
    d_m = -1.0 / k - log_a + d_c + np.where(ge, d_a, 0.0)
    d_n = -1.0 / k - log_b + d_c + np.where(ge, 0.0, d_a)
    d_big_a = (-k - power) / A + d_z * np.where(ge, B / A**2, -1.0 / B)
    d_big_b = power / B + d_z * np.where(ge, -1.0 / A, A / B**2)
    return value, (d_m, d_n, d_big_a, d_big_b)


_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(8)
_MAX_PANELS = 240
_CHUNK_NODES = 2_000_000


def _drop_point(
    phi: Callable[[np.ndarray], np.ndarray], inside: np.ndarray, outside: np.ndarray, level: np.ndarray
) -> np.ndarray:
    """Where the concave `phi` falls to `level` between `inside` (above it) and `outside`, by bisection."""
    low_end = phi(outside) >= level  # the whole side stays above the level
    a, b = inside.copy(), outside.copy()
    for _ in range(60):
        mid = 0.5 * (a + b)
        above = phi(mid) >= level
        a = np.where(above, mid, a)
        b = np.where(above, b, mid)
    return np.where(low_end, outside, b)


def _log_j_split(m: np.ndarray, n: np.ndarray, A: np.ndarray, B: np.ndarray, gradient: bool) -> _Parts:
    """log J(m, n; A, B) when the scales differ by more than a factor 2 (where 2F1 near z = 1 is unreliable).

    With S1 < S2 the two scales, p1, p2 their exponents, D = S2 - S1 and e0 = S1 / D < 1:
        J = D^-k [ integral_e0^1 e^-p1 (1 + e)^-p2 de + 2^-p2 2F1(p2, 1; k+1; 1/2) / k ],
    the second part being J(p1, p2; D, 2D). In y = log e the first integrand is exp(phi), phi concave;
    it is integrated where phi is within 40 of its maximum, by a composite 8-point Gauss-Legendre rule
    on panels over which phi changes by at most 0.7. All sums are taken in logs.
    """
    swap = A > B
    p1, p2 = np.where(swap, n, m), np.where(swap, m, n)
    s1, s2 = np.where(swap, B, A), np.where(swap, A, B)
    k = p1 + p2 - 1.0
    delta = s2 - s1
    y_lo = np.log(s1) - np.log(delta)  # log e0 < 0
    lam = 1.0 - p1

    def phi(y: np.ndarray) -> np.ndarray:
        return lam * y - p2 * np.logaddexp(0.0, y)

    # phi'(y) = lam - p2 sigmoid(y): the maximum is where sigmoid(y) = lam / p2, clipped to [y_lo, 0].
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.clip(lam / p2, 1e-300, 1.0 - 1e-16)
        mode = np.clip(np.log(ratio) - np.log1p(-ratio), y_lo, 0.0)
    mode = np.where(lam <= 0, y_lo, mode)
    level = phi(mode) - 40.0
    lo = _drop_point(phi, mode, y_lo, level)
    hi = _drop_point(phi, mode, np.zeros_like(mode), level)
    slope = np.maximum(np.abs(lam - p2 / (1.0 + np.exp(-lo))), np.abs(lam - p2 / (1.0 + np.exp(-hi))))
    span = np.maximum(hi - lo, 0.0)
    panels_each = np.ceil(span * np.maximum(slope, 1e-12) / 0.7)
    panels_each = np.maximum(panels_each, np.ceil(span))  # panels no wider than 1
    panels = int(min(_MAX_PANELS, max(1.0, float(panels_each.max()))))
    step = span / panels
    offsets = (np.arange(panels)[:, None] + (_GL_NODES[None, :] + 1.0) / 2.0).ravel()
    log_weights = np.log(np.tile(_GL_WEIGHTS / 2.0, panels))

    size = lo.size
    log_i = np.empty(size)
    mean_y = np.empty(size)
    mean_l1p = np.empty(size)
    chunk = max(1, _CHUNK_NODES // offsets.size)
    for start in range(0, size, chunk):
        sl = slice(start, start + chunk)
        y = lo[sl, None] + step[sl, None] * offsets[None, :]
        l1p = np.logaddexp(0.0, y)  # log(1 + e^y)
        log_f = lam[sl, None] * y - p2[sl, None] * l1p + log_weights[None, :]
        top = log_f.max(axis=1, keepdims=True)
        prob = np.exp(log_f - top)
        total = prob.sum(axis=1)
        with np.errstate(divide="ignore"):
            log_i[sl] = np.log(total) + top[:, 0] + np.log(step[sl])
        if gradient:
            mean_y[sl] = (prob * y).sum(axis=1) / total
            mean_l1p[sl] = (prob * l1p).sum(axis=1) / total
    log_hyp, hyp_derivs = _hyp_b1(p2, k + 1.0, 0.5, gradient)
    log_q = -p2 * np.log(2.0) - np.log(k) + log_hyp
    log_bracket = np.logaddexp(log_i, log_q)
    log_delta = np.log(delta)
    value = -k * log_delta + log_bracket
    if not gradient:
        return value, None
    share_i = np.exp(log_i - log_bracket)  # I / (I + Q)
    share_q = 1.0 - share_i
    assert hyp_derivs is not None
    d_a, d_c, _ = hyp_derivs
    d_p1 = -log_delta - share_i * mean_y + share_q * (-1.0 / k + d_c)
    d_p2 = -log_delta - share_i * mean_l1p + share_q * (-np.log(2.0) - 1.0 / k + d_a + d_c)
    # d/d e0 of the integral is minus the integrand at e0; e0 = S1 / D, D = S2 - S1.
    edge = -np.exp(phi(y_lo) - y_lo - log_bracket)  # (dI/de0) / (I + Q); de = e dy
    d_s1 = k / delta + edge * s2 / delta**2
    d_s2 = -k / delta - edge * s1 / delta**2
    d_m = np.where(swap, d_p2, d_p1)
    d_n = np.where(swap, d_p1, d_p2)
    d_big_a = np.where(swap, d_s2, d_s1)
    d_big_b = np.where(swap, d_s1, d_s2)
    return value, (d_m, d_n, d_big_a, d_big_b)


def log_j(
    m: ArrayLike, n: ArrayLike, A: ArrayLike, B: ArrayLike, *, gradient: bool
) -> tuple[np.ndarray, list[np.ndarray] | None]:
    """log of integral_0^inf (A+w)^-m (B+w)^-n dw (m, n > 0, m + n > 1), with d/d(m, n, A, B) if asked."""
    m, n, A, B = (np.asarray(v, dtype=np.float64) for v in np.broadcast_arrays(m, n, A, B))
    split = np.abs(A - B) > 0.5 * np.maximum(A, B)
    value = np.empty(A.shape)
    grads = [np.empty(A.shape) for _ in range(4)] if gradient else None
    for mask, func in ((~split, _log_j_hyp), (split, _log_j_split)):
        if not mask.any():
            continue
        v, g = func(m[mask], n[mask], A[mask], B[mask], gradient)
        value[mask] = v
        if grads is not None and g is not None:
            for out, part in zip(grads, g, strict=True):
                out[mask] = part
    return value, grads


def log_tail(
    r: float,
    alpha: float,
    s: float,
    beta: float,
    x: np.ndarray,
    tau: np.ndarray,
    *,
    late: bool,
    gradient: bool,
) -> _Tail:
    """log J(r+x, s+1; tau) (late=False, used at t_x) or log J(r+x+1, s; tau) (late=True, used at T)."""
    x, tau = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(tau, dtype=np.float64))
    m = r + x + (1.0 if late else 0.0)
    n = np.full(x.shape, s if late else s + 1.0)
    value, grads = log_j(m, n, alpha + tau, beta + tau, gradient=gradient)
    if grads is None:
        return _Tail(value, None)
    d_m, d_n, d_a, d_b = grads  # m = r + x (+1), n = s (+1), A = alpha + tau, B = beta + tau
    return _Tail(value, np.stack([d_m, d_a, d_n, d_b]))


def _pairs(x: np.ndarray, tau: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (x, tau) pairs (as two arrays) and each row's pair index."""
    ux, ix = levels(x)
    ut, it = levels(tau)
    key = ix.astype(np.int64) * ut.size + it
    keys, inverse = levels(key)
    return ux[keys // ut.size], ut[keys % ut.size], inverse


class ParetoLikelihood:
    """Total Pareto/NBD log-likelihood on distinct rows, with its log-scale gradient (see module doc).

    log L = log C + e2 + softplus(e1 - e2), e1 = log s + log J(t_x), e2 = log(r + x) + log J(T): the
    tail integrals are evaluated per distinct (x, t_x) and (x, T) pair, only the softplus per row.
    """

    def __init__(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, weights: np.ndarray):
        self.w = weights
        self.ux, self.ix = levels(x)
        self.level_weight = np.bincount(self.ix, weights=weights, minlength=self.ux.size)
        self.total = float(weights.sum())
        self.early_x, self.early_tau, self.i_early = _pairs(x, t_x)
        self.late_x, self.late_tau, self.i_late = _pairs(x, T)
        self.late_weight = np.bincount(self.i_late, weights=weights, minlength=self.late_x.size)

    def __call__(self, u: np.ndarray) -> tuple[float, np.ndarray]:
        """(log-likelihood, gradient w.r.t. log r, log alpha, log s, log beta) at log-parameters u."""
        r, alpha, s, beta = np.exp(u)
        early = log_tail(r, alpha, s, beta, self.early_x, self.early_tau, late=False, gradient=True)
        late = log_tail(r, alpha, s, beta, self.late_x, self.late_tau, late=True, gradient=True)
        lw = self.level_weight
        log_rx = np.log(r + self.ux)
        const = gammaln(r + self.ux) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
        d = np.log(s) + early.value[self.i_early] - log_rx[self.ix] - late.value[self.i_late]
        softplus, pi = softplus_and_weight(d)  # pi: posterior weight of "died after the last purchase"
        w = self.w
        ll = float(lw @ (const + log_rx) + self.late_weight @ late.value + w @ softplus)

        wpi = w * pi
        pair_early = np.bincount(self.i_early, weights=wpi, minlength=self.early_x.size)
        pair_late = self.late_weight - np.bincount(self.i_late, weights=wpi, minlength=self.late_x.size)
        level_late = lw - np.bincount(self.ix, weights=wpi, minlength=self.ux.size)
        assert early.grad is not None and late.grad is not None
        grad = early.grad @ pair_early + late.grad @ pair_late  # d/d(r, alpha, s, beta)
        grad[0] += lw @ (digamma(r + self.ux) - digamma(r) + np.log(alpha)) + level_late @ (
            1.0 / (r + self.ux)
        )
        grad[1] += r * self.total / alpha
        grad[2] += self.total * np.log(beta) + wpi.sum() / s
        grad[3] += s * self.total / beta
        return ll, grad * np.array([r, alpha, s, beta])


def _start_values(x: np.ndarray, T: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Log-scale start: r = s = 1, alpha from the mean purchase rate, beta = mean T."""
    rate = float(w @ x) / max(float(w @ T), 1e-300)
    mean_t = max(float(w @ T) / max(float(w.sum()), 1.0), 1e-3)
    alpha = 1.0 / rate if rate > 0 else mean_t
    return np.log([1.0, alpha, 1.0, mean_t])


def fit_pareto_nbd(
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    time_unit: str = "week",
) -> FitResult:
    """Fit the Pareto/NBD to per-customer frequency, recency and T (in `time_unit`); never raises for data."""
    x, t_x, big_t, w, _ = compress(frequency, recency, T, weights)
    customers = float(w.sum())
    name = "pareto"
    if customers <= 0:
        return failed_fit(name, 0, "no customers to fit", time_unit)
    keep = w > 0
    x, t_x, big_t, w = x[keep], t_x[keep], big_t[keep], w[keep]
    if not np.any(x > 0):
        return failed_fit(
            name,
            customers,
            "no repeat purchases (every customer has frequency 0): the purchase rate cannot be estimated",
            time_unit,
        )
    if not np.any(big_t > 0):
        return failed_fit(name, customers, "every customer has T = 0: no time observed", time_unit)
    likelihood = ParetoLikelihood(x, t_x, big_t, w)
    optimum = maximise(likelihood, _start_values(x, big_t, w), customers)
    return fit_result(name, PARAMS, optimum, customers, time_unit)


def pareto_nbd_log_likelihood(
    params: Mapping[str, float], frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> float:
    """Total Pareto/NBD log-likelihood of the customers at `params`."""
    values = _unpack(params)
    x, t_x, big_t, w, _ = compress(frequency, recency, T)
    if w.size == 0:
        return 0.0
    ll, _ = ParetoLikelihood(x, t_x, big_t, w)(np.log(values))
    return ll


# --- closed forms ------------------------------------------------------------------------------


def _unpack(params: Mapping[str, float]) -> tuple[float, float, float, float]:
    """(r, alpha, s, beta); ValueError unless all are positive and finite."""
    return positive_params(params, PARAMS)  # type: ignore[return-value]


def _one_minus_power_over(c: float, log_base: np.ndarray) -> np.ndarray:
    """(1 - exp(-c * log_base)) / c, with its limit log_base at c = 0."""
    if c == 0.0:
        return np.asarray(log_base, dtype=np.float64)
    return -np.expm1(-c * log_base) / c


def pareto_nbd_p_alive(params: Mapping[str, float], x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> np.ndarray:
    """P(alive at T | x, t_x, T) = (alpha+T)^-(r+x) (beta+T)^-s / (L / C), in logs."""
    r, alpha, s, beta = _unpack(params)
    x, t_x, big_t = summary_arrays(x, t_x, T)
    early = log_tail(r, alpha, s, beta, x, t_x, late=False, gradient=False).value
    late = log_tail(r, alpha, s, beta, x, big_t, late=True, gradient=False).value
    log_alive = -(r + x) * np.log(alpha + big_t) - s * np.log(beta + big_t)
    log_total = np.logaddexp(np.log(s) + early, np.log(r + x) + late)
    return np.minimum(np.exp(log_alive - log_total), 1.0)


def pareto_nbd_expected(
    params: Mapping[str, float], t: ArrayLike, x: ArrayLike, t_x: ArrayLike, T: ArrayLike
) -> np.ndarray:
    """E[purchases in (T, T + t] | x, t_x, T]; t in the model time unit.

    = P(alive) (r+x)(beta+T) / ((alpha+T)(s-1)) [1 - ((beta+T) / (beta+T+t))^(s-1)], s = 1 as the limit.
    """
    r, alpha, s, beta = _unpack(params)
    t = horizon_array(t)
    x, t_x, big_t = summary_arrays(x, t_x, T)
    alive = pareto_nbd_p_alive(params, x, t_x, big_t)
    rate = (r + x) / (alpha + big_t)  # posterior mean purchase rate
    lifetime = (beta + big_t) * _one_minus_power_over(s - 1.0, np.log1p(t / (beta + big_t)))
    return alive * rate * lifetime


def pareto_nbd_unconditional(params: Mapping[str, float], t: ArrayLike) -> np.ndarray:
    """E[X(t)] = r beta / (alpha (s-1)) [1 - (beta / (beta + t))^(s-1)], repeat purchases in (0, t]."""
    r, alpha, s, beta = _unpack(params)
    t = horizon_array(t)
    return r / alpha * beta * _one_minus_power_over(s - 1.0, np.log1p(t / beta))
