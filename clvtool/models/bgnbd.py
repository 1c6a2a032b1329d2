"""BG/NBD purchase model (Fader, Hardie & Lee 2005, "Counting your customers the easy way").

While active a customer buys at Poisson rate lambda ~ Gamma(r, rate alpha) per time unit and, right
after each *repeat* purchase, drops out with probability p ~ Beta(a, b). Inputs are the customer
summaries x = frequency (repeat purchases), t_x = recency and T = age, all in the model time unit.

Likelihood of one customer, written as a log-sum-exp of two terms so it never overflows:

    log L = lgamma(r + x) - lgamma(r) + r log(alpha)
            + logaddexp(lbeta(a, b + x) - lbeta(a, b) - (r + x) log(alpha + T),
                        [x > 0] (lbeta(a + 1, b + x - 1) - lbeta(a, b) - (r + x) log(alpha + t_x)))

The MBG/NBD (`mbgnbd.py`) differs only in the Beta arguments, so both share `BetaGeometricLikelihood`.
The gradient is analytic (digamma functions); identical summary rows are evaluated once, with a weight.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1, polygamma

from clvtool.models.fitting import (
    FitResult,
    compress,
    dot,
    failed_fit,
    fit_result,
    levels,
    maximise,
    positive_params,
)

__all__ = [
    "BetaGeometricLikelihood",
    "bgnbd_expected",
    "bgnbd_expected_factors",
    "bgnbd_log_likelihood",
    "bgnbd_p_alive",
    "bgnbd_unconditional",
    "fit_bgnbd",
]

PARAMS = ("r", "alpha", "a", "b")
_NEAR_SINGULAR = 1e-4  # |a - 1| or |a + b + x - 1| below this: interpolate in a (removable singularity)
_SHIFT = 1e-3


def softplus_and_weight(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log(1 + e^d) and e^d / (1 + e^d), without overflow."""
    e = np.exp(-np.minimum(np.abs(d), 600.0))  # clipped: subnormal results make exp and log1p slow
    softplus = np.maximum(d, 0.0) + np.log1p(e)
    weight = np.where(d >= 0, 1.0, e) / (1.0 + e)
    return softplus, weight


def trigamma(v: ArrayLike) -> np.ndarray:
    """The derivative of digamma."""
    return polygamma(1, v)


_CHUNK = 1 << 15  # rows per block of the per-row loop: its temporaries stay in the CPU cache


class BetaGeometricLikelihood:
    """Total log-likelihood and analytic log-scale gradient of the BG/NBD or MBG/NBD on distinct rows.

    log L = const(x) + e1 + softplus(e2 - e1) with e1 the "still alive" term; the e1 part is summed
    per distinct x and T, so only softplus(e2 - e1) is evaluated per row (and only for rows that have
    a second term: x > 0 for the BG/NBD, every row for the MBG/NBD). Its argument
    d = c(x) - (r + x) log(alpha + t_x) + (r + x) log(alpha + T) has a part per distinct (x, t_x)
    pair; the rows are processed in blocks of `_CHUNK` with reused buffers, and every sum is taken
    in a fixed order (deterministic, whatever the thread count).
    """

    def __init__(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, weights: np.ndarray, *, modified: bool):
        self.w = weights
        self.ux, ix = levels(x)
        self.level_weight = np.bincount(ix, weights=weights, minlength=self.ux.size)
        self.total = float(weights.sum())
        self.uT, iT = levels(T)
        self.utx, itx = levels(t_x)
        self.weight_T = np.bincount(iT, weights=weights, minlength=self.uT.size)
        self.weight_x_T = np.bincount(iT, weights=weights * x, minlength=self.uT.size)
        # BG/NBD: the "dropped out after the last purchase" term needs a repeat purchase.
        self.second = np.ones(self.ux.size, dtype=bool) if modified else self.ux > 0
        rows = self.second[ix]
        ix2, itx2 = ix[rows], itx[rows]
        self.iT2 = iT[rows]
        self.x2, self.w2 = x[rows], weights[rows]
        # Beta offsets: term 1 = B(a, b + x + d1), term 2 = B(a + 1, b + x + d2), both over B(a, b).
        self.d1, self.d2 = (1.0, 0.0) if modified else (0.0, -1.0)
        # Distinct (x, t_x) pairs of the rows: runs when the rows are sorted (as `compress` returns them).
        n = ix2.size
        pair_start = np.ones(n, dtype=bool)
        pair_start[1:] = (ix2[1:] != ix2[:-1]) | (itx2[1:] != itx2[:-1])
        self.pair_starts: np.ndarray | None = np.flatnonzero(pair_start)
        if np.all(ix2[1:] >= ix2[:-1]) and np.all((itx2[1:] >= itx2[:-1]) | pair_start[1:]):
            self.pair = np.cumsum(pair_start) - 1
            self.pair_ix, self.pair_itx = ix2[self.pair_starts], itx2[self.pair_starts]
        else:  # unsorted rows: pairs by value, sums by bincount
            codes, self.pair = levels(ix2.astype(np.int64) * self.utx.size + itx2)
            self.pair_ix, self.pair_itx = codes // self.utx.size, codes % self.utx.size
            self.pair_starts = None
        self.pair_x = self.ux[self.pair_ix]

    def __call__(self, u: np.ndarray) -> tuple[float, np.ndarray]:
        """(log-likelihood, gradient w.r.t. log r, log alpha, log a, log b) at log-parameters u."""
        r, alpha, a, b = np.exp(u)
        ux, second, lw = self.ux, self.second, self.level_weight
        # Per distinct x.
        const = gammaln(r + ux) - gammaln(r) + r * np.log(alpha)
        lbeta_ab = betaln(a, b)
        c1 = betaln(a, b + ux + self.d1) - lbeta_ab
        b2 = np.where(second, b + ux + self.d2, 1.0)  # placeholder where the term is absent
        c2 = np.where(second, betaln(a + 1.0, b2) - lbeta_ab, 0.0)
        # Per distinct T and t_x.
        log_at = np.log(alpha + self.uT)
        log_atx = np.log(alpha + self.utx)
        inv_at = 1.0 / (alpha + self.uT)
        inv_atx = 1.0 / (alpha + self.utx)
        rate_T = r * self.weight_T + self.weight_x_T  # sum of w (r + x) per distinct T
        # Per distinct (x, t_x) pair with a second term.
        rx_pair = r + self.pair_x
        log_atx_pair = log_atx[self.pair_itx]
        d_pair = (c2 - c1)[self.pair_ix] - rx_pair * log_atx_pair
        # Per row: d = d_pair + (r + x) log(alpha + T), log L gets softplus(d), pi = sigmoid(d) is the
        # posterior weight of "dropped out"; wpi is w pi per pair.
        softplus_sum, wpi_log_at, wpi_rx_inv_at, wpi = self._rows(r, d_pair, log_at, inv_at)
        ll = float(lw @ (const + c1) - rate_T @ log_at + softplus_sum)

        # sum of w pi log((alpha + t_x) / (alpha + T)) and of w pi (r + x) (1/(alpha + t_x) - 1/(alpha + T))
        wpi_log_ratio = dot(wpi, log_atx_pair) - wpi_log_at
        wpi_rx_inv_diff = dot(wpi * rx_pair, inv_atx[self.pair_itx]) - wpi_rx_inv_at
        g_r = lw @ (digamma(r + ux) - digamma(r) + np.log(alpha)) - self.weight_T @ log_at - wpi_log_ratio
        g_alpha = r * self.total / alpha - rate_T @ inv_at - wpi_rx_inv_diff
        level_pi = np.bincount(self.pair_ix, weights=wpi, minlength=ux.size)
        level_1 = lw - level_pi
        da1, db1, da2, db2 = self._beta_gradients(a, b, b2)
        g_a = level_1 @ da1 + level_pi @ da2
        g_b = level_1 @ db1 + level_pi @ db2
        grad = np.array([g_r * r, g_alpha * alpha, g_a * a, g_b * b])
        self._last = (np.asarray(u, dtype=np.float64).tobytes(), ll, grad)
        return ll, grad.copy()

    def _beta_gradients(
        self, a: float, b: float, b2: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """d/da and d/db of lbeta(a, b + x + d1) - lbeta(a, b) and of lbeta(a + 1, b2) - lbeta(a, b)."""
        psi_ab = digamma(a + b)
        base_a = digamma(a) - psi_ab
        base_b = digamma(b) - psi_ab
        end1 = digamma(a + b + self.ux + self.d1)
        da1 = digamma(a) - end1 - base_a
        db1 = digamma(b + self.ux + self.d1) - end1 - base_b
        end2 = digamma(a + 1.0 + b2)
        da2 = np.where(self.second, digamma(a + 1.0) - end2 - base_a, 0.0)
        db2 = np.where(self.second, digamma(b2) - end2 - base_b, 0.0)
        return da1, db1, da2, db2

    def hessian(self, u: np.ndarray) -> np.ndarray:
        """Hessian of the log-likelihood w.r.t. log r, log alpha, log a, log b at u (analytic).

        With theta = exp(u): H_u = theta theta' * H_theta + diag(theta * gradient_theta). Per row,
        softplus(d) contributes w [pi (1 - pi) d_i d_j + pi d_ij] with d_r = -L, d_alpha = -(r + x) M,
        d_ralpha = -M, d_alphaalpha = (r + x) N, d_a and d_b per distinct x (L = log((alpha + t_x) /
        (alpha + T)), M = 1/(alpha + t_x) - 1/(alpha + T), N = 1/(alpha + t_x)^2 - 1/(alpha + T)^2).
        """
        last = getattr(self, "_last", None)
        if last is not None and last[0] == np.asarray(u, dtype=np.float64).tobytes():
            grad = last[2]
        else:
            grad = self(u)[1]
        theta = np.exp(u)
        r, alpha, a, b = theta
        ux, second, lw = self.ux, self.second, self.level_weight
        lbeta_ab = betaln(a, b)
        c1 = betaln(a, b + ux + self.d1) - lbeta_ab
        b2 = np.where(second, b + ux + self.d2, 1.0)
        c2 = np.where(second, betaln(a + 1.0, b2) - lbeta_ab, 0.0)
        log_at = np.log(alpha + self.uT)
        inv_at = 1.0 / (alpha + self.uT)
        rate_T = r * self.weight_T + self.weight_x_T
        log_atx_pair = np.log(alpha + self.utx)[self.pair_itx]
        inv_atx_pair = (1.0 / (alpha + self.utx))[self.pair_itx]
        d_pair = (c2 - c1)[self.pair_ix] - (r + self.pair_x) * log_atx_pair
        sums, per_pair = self._hessian_rows(r, d_pair, log_at, inv_at, log_atx_pair, inv_atx_pair)
        s_ll, s_lm, s_mm, s_m, s_n = sums
        pi_x, q_x, ql_x, qm_x = (np.bincount(self.pair_ix, weights=v, minlength=ux.size) for v in per_pair)
        da1, db1, da2, db2 = self._beta_gradients(a, b, b2)
        # Second derivatives of lbeta(a, b + x + d1) - lbeta(a, b) and lbeta(a + 1, b2) - lbeta(a, b).
        t_ab = trigamma(a + b)
        t_end1 = trigamma(a + b + ux + self.d1)
        daa1 = dab1 = t_ab - t_end1
        dbb1 = trigamma(b + ux + self.d1) - t_end1 - trigamma(b) + t_ab
        t_end2 = trigamma(a + 1.0 + b2)
        daa2 = np.where(second, trigamma(a + 1.0) - t_end2 - trigamma(a) + t_ab, 0.0)
        dab2 = np.where(second, t_ab - t_end2, 0.0)
        dbb2 = np.where(second, trigamma(b2) - t_end2 - trigamma(b) + t_ab, 0.0)
        d_a, d_b = da2 - da1, db2 - db1  # derivatives of d (per distinct x)
        level_1 = lw - pi_x
        h = np.empty((4, 4))
        h[0, 0] = lw @ (trigamma(r + ux) - trigamma(r)) + s_ll
        h[0, 1] = self.total / alpha - self.weight_T @ inv_at + s_lm - s_m
        h[1, 1] = -r * self.total / alpha**2 + rate_T @ (inv_at * inv_at) + s_mm + s_n
        h[0, 2], h[0, 3] = -(d_a @ ql_x), -(d_b @ ql_x)
        h[1, 2], h[1, 3] = -(d_a @ qm_x), -(d_b @ qm_x)
        h[2, 2] = level_1 @ daa1 + pi_x @ daa2 + q_x @ (d_a * d_a)
        h[2, 3] = level_1 @ dab1 + pi_x @ dab2 + q_x @ (d_a * d_b)
        h[3, 3] = level_1 @ dbb1 + pi_x @ dbb2 + q_x @ (d_b * d_b)
        h = np.triu(h) + np.triu(h, 1).T
        return theta[:, None] * theta[None, :] * h + np.diag(grad)

    def _hessian_rows(
        self,
        r: float,
        d_pair: np.ndarray,
        log_at: np.ndarray,
        inv_at: np.ndarray,
        log_atx_pair: np.ndarray,
        inv_atx_pair: np.ndarray,
    ) -> tuple[tuple[float, float, float, float, float], tuple[np.ndarray, ...]]:
        """Row sums of q L^2, q L (r+x) M, q (r+x)^2 M^2, w pi M and w pi (r+x) N (q = w pi (1 - pi)),
        and w pi, q, q L and q (r+x) M summed per (x, t_x) pair."""
        n = self.x2.size
        per_row = np.empty((4, n))  # w pi, q, q L, q (r + x) M
        size = min(_CHUNK, n)
        buffers = np.empty((5, size))
        positive = np.empty(size, dtype=bool)
        s_ll = s_lm = s_mm = s_m = s_n = 0.0
        for start in range(0, n, _CHUNK):
            stop = min(start + _CHUNK, n)
            log_t, inv_t, rx, d, tmp = (buf[: stop - start] for buf in buffers)
            pos = positive[: stop - start]
            wpi, q, ql, qm = (v[start:stop] for v in per_row)
            iT, w, pair = self.iT2[start:stop], self.w2[start:stop], self.pair[start:stop]
            np.take(log_at, iT, out=log_t, mode="clip")
            np.take(inv_at, iT, out=inv_t, mode="clip")
            np.add(self.x2[start:stop], r, out=rx)
            np.take(d_pair, pair, out=d, mode="clip")
            np.add(d, np.multiply(rx, log_t, out=tmp), out=d)
            # pi = where(d >= 0, 1, e) / (1 + e) and 1 - pi = where(d >= 0, e, 1) / (1 + e), e = exp(-|d|)
            np.copysign(d, -1.0, out=wpi)
            np.maximum(wpi, -600.0, out=wpi)
            np.exp(wpi, out=wpi)
            np.greater_equal(d, 0.0, out=pos)
            np.add(wpi, 1.0, out=tmp)
            np.copyto(q, wpi)
            np.copyto(q, 1.0, where=~pos)
            np.divide(q, tmp, out=q)
            np.copyto(wpi, 1.0, where=pos)
            np.divide(wpi, tmp, out=wpi)
            np.multiply(w, wpi, out=wpi)
            np.multiply(wpi, q, out=q)
            lr = d  # L = log(alpha + t_x) - log(alpha + T)
            np.subtract(np.take(log_atx_pair, pair, out=lr, mode="clip"), log_t, out=lr)
            np.take(inv_atx_pair, pair, out=tmp, mode="clip")
            np.add(tmp, inv_t, out=log_t)  # 1/(alpha + t_x) + 1/(alpha + T)
            m = np.subtract(tmp, inv_t, out=inv_t)  # M
            np.multiply(q, lr, out=ql)
            s_ll += dot(ql, lr)
            rxm = np.multiply(rx, m, out=tmp)
            np.multiply(q, rxm, out=qm)
            s_lm += dot(ql, rxm)
            s_mm += dot(qm, rxm)
            s_m += dot(wpi, m)
            n_row = np.multiply(m, log_t, out=log_t)  # N = M (1/(alpha + t_x) + 1/(alpha + T))
            s_n += dot(np.multiply(wpi, rx, out=rx), n_row)
        if self.pair_starts is None:
            per_pair = tuple(np.bincount(self.pair, weights=v, minlength=self.pair_x.size) for v in per_row)
        elif n:
            per_pair = tuple(np.add.reduceat(v, self.pair_starts) for v in per_row)
        else:
            per_pair = tuple(np.zeros(0) for _ in per_row)
        return (s_ll, s_lm, s_mm, s_m, s_n), per_pair

    def _rows(
        self, r: float, d_pair: np.ndarray, log_at: np.ndarray, inv_at: np.ndarray
    ) -> tuple[float, float, float, np.ndarray]:
        """Sums over the rows of w softplus(d), w pi log(alpha + T) and w pi (r + x) / (alpha + T), and
        w pi summed per (x, t_x) pair; the operations of `softplus_and_weight`, block by block."""
        n = self.x2.size
        wpi = np.empty(n)
        size = min(_CHUNK, n)
        buffers = np.empty((4, size))
        positive = np.empty(size, dtype=bool)
        softplus_sum = wpi_log_at = wpi_rx_inv_at = 0.0
        for start in range(0, n, _CHUNK):
            stop = min(start + _CHUNK, n)
            log_t, rx, d, tmp = (buf[: stop - start] for buf in buffers)
            pos = positive[: stop - start]
            e = wpi[start:stop]
            iT, w = self.iT2[start:stop], self.w2[start:stop]
            np.take(log_at, iT, out=log_t, mode="clip")
            np.add(self.x2[start:stop], r, out=rx)
            np.take(d_pair, self.pair[start:stop], out=d, mode="clip")
            np.add(d, np.multiply(rx, log_t, out=tmp), out=d)
            # e = exp(-min(|d|, 600)), softplus = max(d, 0) + log1p(e), pi = where(d >= 0, 1, e) / (1 + e)
            np.copysign(d, -1.0, out=e)
            np.maximum(e, -600.0, out=e)  # subnormal results make exp and log1p slow
            np.exp(e, out=e)
            np.greater_equal(d, 0.0, out=pos)
            np.maximum(d, 0.0, out=d)
            np.add(d, np.log1p(e, out=tmp), out=d)
            softplus_sum += dot(w, d)
            np.add(e, 1.0, out=tmp)
            np.copyto(e, 1.0, where=pos)
            np.divide(e, tmp, out=e)
            np.multiply(w, e, out=e)  # w pi
            wpi_log_at += dot(e, log_t)
            np.take(inv_at, iT, out=tmp, mode="clip")
            wpi_rx_inv_at += dot(np.multiply(e, rx, out=rx), tmp)
        if self.pair_starts is None:
            per_pair = np.bincount(self.pair, weights=wpi, minlength=d_pair.size)
        else:
            per_pair = np.add.reduceat(wpi, self.pair_starts) if n else np.zeros(0)
        return softplus_sum, wpi_log_at, wpi_rx_inv_at, per_pair


def start_values(x: np.ndarray, T: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Log-scale start: r = 1 and alpha = T / x averaged over customers (so r / alpha is the mean rate)."""
    rate = float(w @ x) / max(float(w @ T), 1e-300)
    alpha = 1.0 / rate if rate > 0 else max(float(w @ T) / max(float(w.sum()), 1.0), 1.0)
    return np.log([1.0, alpha, 1.0, 1.0])


def fit_beta_geometric(
    name: str,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    weights: ArrayLike | None,
    time_unit: str,
    *,
    modified: bool,
) -> FitResult:
    """Maximum-likelihood fit of the BG/NBD (modified=False) or MBG/NBD (modified=True)."""
    x, t_x, big_t, w, _ = compress(frequency, recency, T, weights)
    customers = float(w.sum())
    if customers <= 0:
        return failed_fit(name, 0, "no customers to fit", time_unit)
    if not np.any(x[w > 0] > 0):
        return failed_fit(
            name,
            customers,
            "no repeat purchases (every customer has frequency 0): the purchase rate cannot be estimated",
            time_unit,
        )
    if not np.any(big_t[w > 0] > 0):
        return failed_fit(name, customers, "every customer has T = 0: no time observed", time_unit)
    keep = w > 0
    likelihood = BetaGeometricLikelihood(x[keep], t_x[keep], big_t[keep], w[keep], modified=modified)
    optimum = maximise(
        likelihood, start_values(x[keep], big_t[keep], w[keep]), customers, hessian=likelihood.hessian
    )
    return fit_result(name, PARAMS, optimum, customers, time_unit)


def fit_bgnbd(
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    time_unit: str = "week",
) -> FitResult:
    """Fit the BG/NBD to per-customer frequency, recency and T (in `time_unit`); never raises for data."""
    return fit_beta_geometric("bgnbd", frequency, recency, T, weights, time_unit, modified=False)


def bgnbd_log_likelihood(
    params: Mapping[str, float], frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> float:
    """Total BG/NBD log-likelihood of the customers at `params`."""
    r, alpha, a, b = unpack(params)
    x, t_x, big_t, w, _ = compress(frequency, recency, T)
    if w.size == 0:
        return 0.0
    ll, _ = BetaGeometricLikelihood(x, t_x, big_t, w, modified=False)(np.log([r, alpha, a, b]))
    return ll


# --- closed forms ------------------------------------------------------------------------------


def unpack(params: Mapping[str, float]) -> tuple[float, float, float, float]:
    """(r, alpha, a, b) from a parameter mapping; ValueError unless all are positive and finite."""
    return positive_params(params, PARAMS)  # type: ignore[return-value]


def summary_arrays(x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x, t_x, T as broadcast float arrays; ValueError for impossible summaries."""
    arrays = [np.asarray(v, dtype=np.float64) for v in (x, t_x, T)]
    x, t_x, big_t = np.broadcast_arrays(*arrays)
    for name, values in (("frequency", x), ("recency", t_x), ("T", big_t)):
        if not np.all(np.isfinite(values)) or np.any(values < 0):
            raise ValueError(f"{name} must be finite and not negative")
    if np.any(t_x > big_t):
        raise ValueError("recency must not exceed T")
    return x, t_x, big_t


def horizon_array(t: ArrayLike) -> np.ndarray:
    """The prediction horizon as a float array; ValueError unless finite and >= 0."""
    t = np.asarray(t, dtype=np.float64)
    if not np.all(np.isfinite(t)) or np.any(t < 0):
        raise ValueError("the horizon t must be finite and not negative")
    return t


_SERIES_TERMS = 60
_DEDUPE_ABOVE = 1000  # customers; below this, evaluating every row is cheaper than finding pairs


def _tail_series(A: float, eps: float, C: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """V = C (2F1(A, eps; C; z) - 1) / eps by its power series, and where it converged.

    v_1 = A z, v_(j+1) = v_j (A + j)(eps + j) z / ((C + j)(j + 1)): no division by eps or C, so the
    removable singularities at a = 1 and a + b + x = 1 cost no accuracy. The terms still being
    summed are kept in compact arrays; a sum is written back when it converges, and the arrays are
    compacted when a quarter of their sums have.
    """
    total = np.zeros(z.shape)
    term = A * z
    total += term
    active = np.flatnonzero(term != 0)
    done = np.ones(z.shape, dtype=bool)
    done[active] = False
    t_act, total_act, z_act, C_act = term[active], total[active], z[active], C[active]
    live = np.ones(active.size, dtype=bool)  # not converged yet (the others are computed, unused)
    n_live = active.size
    with np.errstate(all="ignore"):
        for j in range(1, _SERIES_TERMS):
            if not n_live:
                break
            ratio = (A + j) * (eps + j) * z_act / ((C_act + j) * (j + 1.0))
            t_act = t_act * ratio
            total_act += t_act
            size = np.abs(ratio)
            small = (size < 0.9) & (np.abs(t_act) <= 1e-17 * np.abs(total_act) * (1.0 - size))
            small |= t_act == 0
            small &= live
            finished = int(np.count_nonzero(small))
            if not finished:
                continue
            total[active[small]] = total_act[small]
            done[active[small]] = True
            live &= ~small
            n_live -= finished
            if 4 * n_live < 3 * active.size:
                active, t_act, total_act, z_act, C_act = (
                    v[live] for v in (active, t_act, total_act, z_act, C_act)
                )
                live = np.ones(n_live, dtype=bool)
    total[active[live]] = total_act[live]
    return total, done


def _alive_expected_raw(
    r: float, alpha: float, a: float, b: float, t: np.ndarray, x: np.ndarray, T: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(a+b+x-1)/(a-1) * [1 - (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z)], z = t/(alpha+T+t), and its trust.

    Euler's transformation of the published 2F1(r+x, b+x; a+b+x-1; z) * (1-z)^(r+x): its parameters
    stay small while x grows, so it stays finite for x in the hundreds and any T. Written as
    C (1 - (1-z)^eps) / eps - (1-z)^eps V with eps = a - 1, C = a+b+x-1 and V from `_tail_series`;
    where the series is slow (z near 1, small C) scipy's hyp2f1 gives V, which is untrusted near the
    removable singularities and where c - a - b is an integer (scipy fails there).
    """
    eps = a - 1.0
    C = a + b + x - 1.0
    A = a + b - 1.0 - r
    log_1mz = -np.log1p(t / (alpha + T))  # log(1 - z)
    z = -np.expm1(log_1mz)
    V, done = _tail_series(A, eps, C, z)
    trusted = done.copy()
    slow = ~done
    if slow.any():
        hyp = hyp2f1(A, eps, C[slow], z[slow])
        V[slow] = C[slow] * (hyp - 1.0) / eps if eps != 0 else np.nan
        excess = x[slow] + r - a + 1.0  # c - a - b of the transformed 2F1
        trusted[slow] = (
            np.isfinite(V[slow])
            & (abs(eps) >= _NEAR_SINGULAR)
            & (np.abs(C[slow]) >= _NEAR_SINGULAR)
            & (np.abs(excess - np.round(excess)) > 1e-6)
        )
    growth = -np.expm1(eps * log_1mz) / eps if eps != 0 else -log_1mz  # (1 - (1-z)^eps) / eps
    value = C * growth - np.exp(eps * log_1mz) * V
    return value, trusted


def alive_expected(
    r: float, alpha: float, a: float, b: float, t: ArrayLike, x: ArrayLike, T: ArrayLike
) -> np.ndarray:
    """Expected purchases in (T, T + t] of a customer known to be alive, BG/NBD posterior (Beta(a, b+x) etc.).

    Where the hypergeometric cannot be trusted (see `_alive_expected_raw`) the value is interpolated
    (cubic, from a -+ 1e-3 and a -+ 2e-3): it is analytic in a.
    """
    t, x, T = np.asarray(t, np.float64), np.asarray(x, np.float64), np.asarray(T, np.float64)
    if x.ndim == 1 and T.ndim <= 1 and (t.ndim == 0 or t.shape[-1] == 1) and x.size > _DEDUPE_ABOVE:
        # The value depends on (x, T) and t only, not on t_x: evaluate each distinct (x, T) once.
        values, pair = alive_expected_pairs(r, alpha, a, b, t, x, T)
        return np.take(values, pair, axis=-1)
    return _alive_expected_rows(r, alpha, a, b, t, x, T)


def alive_expected_pairs(
    r: float, alpha: float, a: float, b: float, t: np.ndarray, x: np.ndarray, T: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """`alive_expected` of each distinct (x, T) pair (t along the leading axes, the pairs along the
    last one) and each customer's pair; x and T one-dimensional, t of shape () or (..., 1)."""
    x, T = np.broadcast_arrays(np.asarray(x, np.float64), np.asarray(T, np.float64))
    ux, ix = levels(x)
    uT, iT = levels(T)
    pairs, pair = levels(ix.astype(np.int64) * uT.size + iT)
    values = _alive_expected_rows(r, alpha, a, b, t, ux[pairs // uT.size], uT[pairs % uT.size])
    return values, pair


def _alive_expected_rows(
    r: float, alpha: float, a: float, b: float, t: np.ndarray, x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """`alive_expected` element by element, with the interpolation fallback."""
    t, x, T = np.broadcast_arrays(t, x, T)
    shape = t.shape
    t, x, T = (np.array(v, dtype=np.float64).ravel() for v in (t, x, T))
    with np.errstate(all="ignore"):
        value, trusted = _alive_expected_raw(r, alpha, a, b, t, x, T)
        if trusted.all():
            return value.reshape(shape)
        bad = ~trusted
        tn, xn, Tn = t[bad], x[bad], T[bad]
        for shift in (_SHIFT, 1.37 * _SHIFT, 0.71 * _SHIFT):
            shifted = [_alive_expected_raw(r, alpha, a + k * shift, b, tn, xn, Tn) for k in (-2, -1, 1, 2)]
            if all(ok.all() for _, ok in shifted):
                break
        v = [val for val, _ in shifted]
        value[bad] = (2.0 / 3.0) * (v[1] + v[2]) - (1.0 / 6.0) * (v[0] + v[3])
    return value.reshape(shape)


def bgnbd_p_alive(params: Mapping[str, float], x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> np.ndarray:
    """P(alive at T | x, t_x, T); 1 for x = 0 (no dropout before the first repeat purchase)."""
    r, alpha, a, b = unpack(params)
    x, t_x, big_t = summary_arrays(x, t_x, T)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_odds = (
            np.log(a)
            - np.log(np.maximum(b + x - 1.0, 1e-300))
            + (r + x) * (np.log(alpha + big_t) - np.log(alpha + t_x))
        )
    return np.where(x > 0, expit(-log_odds), 1.0)


def bgnbd_expected(
    params: Mapping[str, float], t: ArrayLike, x: ArrayLike, t_x: ArrayLike, T: ArrayLike
) -> np.ndarray:
    """E[purchases in (T, T + t] | x, t_x, T] (Fader, Hardie & Lee 2005, eq. 10); t in the model unit."""
    r, alpha, a, b = unpack(params)
    t = horizon_array(t)
    x, t_x, big_t = summary_arrays(x, t_x, T)
    return _times(bgnbd_p_alive(params, x, t_x, big_t), alive_expected(r, alpha, a, b, t, x, big_t))


def bgnbd_expected_factors(
    params: Mapping[str, float], t: ArrayLike, x: ArrayLike, t_x: ArrayLike, T: ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`bgnbd_expected` as ``p_alive * alive[..., pair]``: P(alive) of each customer, the alive
    expectation of each distinct (x, T) pair (t along the leading axes) and each customer's pair.

    Sums over t (a discounted CLV) can then be taken per pair; x, t_x and T one-dimensional.
    """
    r, alpha, a, b = unpack(params)
    t = horizon_array(t)
    x, t_x, big_t = summary_arrays(x, t_x, T)
    alive, pair = alive_expected_pairs(r, alpha, a, b, t, x, big_t)
    return bgnbd_p_alive(params, x, t_x, big_t), alive, pair


def _times(p_alive: np.ndarray, alive: np.ndarray) -> np.ndarray:
    """p_alive * alive, written into `alive` when it has the result's shape (it is a fresh array)."""
    if (
        alive.ndim
        and alive.flags.writeable
        and np.broadcast_shapes(p_alive.shape, alive.shape) == alive.shape
    ):
        return np.multiply(p_alive, alive, out=alive)
    return p_alive * alive


def bgnbd_unconditional(params: Mapping[str, float], t: ArrayLike) -> np.ndarray:
    """E[X(t)]: expected repeat purchases in (0, t] after the first purchase (FHL 2005, eq. 9)."""
    r, alpha, a, b = unpack(params)
    t = horizon_array(t)
    return alive_expected(r, alpha, a, b, t, 0.0, 0.0)
