"""Shared machinery of the models: distinct summary rows, maximum likelihood, Hessian standard errors.

Every model writes its total log-likelihood and its gradient with respect to the *logarithms* of its
parameters; :func:`maximise` does the rest: L-BFGS-B on the log scale from a start scaled to the data,
a Newton polish with the Hessian, the convergence verdict and the standard errors (delta method:
SE(theta) = theta * SE(log theta), exact at the optimum where the gradient vanishes).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.linalg import LinAlgError, cho_factor, cho_solve, eigvalsh
from scipy.optimize import minimize

__all__ = [
    "LOG_BOUND",
    "FitResult",
    "Objective",
    "compress",
    "failed_fit",
    "maximise",
    "per_distinct_row",
]

# Log-parameters are kept within +-LOG_BOUND of their start (a factor of 6.6e7 either way); an
# estimate on that bound means the likelihood keeps rising towards a degenerate model.
LOG_BOUND = 18.0
HESSIAN_STEP = 1e-4  # central-difference step of the gradient, on the log scale
# Converged when the Newton step would raise the log-likelihood by less than this per customer.
GAIN_TOLERANCE = 1e-9
_POLISH_STEPS = 6

Objective = Callable[[np.ndarray], tuple[float, np.ndarray]]
"""Log-parameters -> (total log-likelihood, its gradient with respect to the log-parameters)."""


@dataclass(frozen=True)
class FitResult:
    """A fitted model: natural-scale parameters, standard errors, log-likelihood in the inputs' time unit."""

    name: str  # "bgnbd" | "pareto" | "mbgnbd" | "gamma_gamma"
    params: dict[str, float]  # empty when nothing could be estimated
    std_errors: dict[str, float | None]  # None where the Hessian is singular; never NaN
    log_likelihood: float | None  # total over customers; None when no parameters were estimated
    customers: int  # customers fitted (sum of weights)
    converged: bool
    message: str  # what the optimiser reported, or why the fit failed
    time_unit: str = "week"
    iterations: int = 0  # optimiser iterations, Newton steps included


def dot(a: np.ndarray, b: np.ndarray) -> float:
    """sum(a * b) by NumPy's own loop: the same float however many threads BLAS would use."""
    return float(np.einsum("i,i->", a, b))


def _as_vector(name: str, values: ArrayLike) -> np.ndarray:
    """A 1-D float64 copy of `values`; ValueError when it is not numeric."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric: {exc}") from None
    if array.ndim > 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    return np.atleast_1d(array)


def _check_summary(x: np.ndarray, t_x: np.ndarray, T: np.ndarray, w: np.ndarray) -> None:
    """Raise ValueError for summaries no customer can have (negative, non-finite, t_x > T, ...)."""
    _check_values(x, t_x, T, w)
    _check_rows(x, t_x, T)


def _check_values(x: np.ndarray, t_x: np.ndarray, T: np.ndarray, w: np.ndarray) -> None:
    """ValueError unless every value is finite and not negative (the first failing array is named)."""
    arrays = (("frequency", x), ("recency", t_x), ("T", T), ("weights", w))
    if all(_finite_non_negative(values) for _, values in arrays):
        return
    for name, values in arrays:
        if not np.all(np.isfinite(values)):
            raise ValueError(f"{name} has missing or non-finite values")
        if np.any(values < 0):
            raise ValueError(f"{name} must not be negative")


def _finite_non_negative(values: np.ndarray) -> bool:
    """True when every value is finite and >= 0: two reductions, no temporary (NaN makes min NaN)."""
    return values.size == 0 or bool(values.min() >= 0 and values.max() < np.inf)


def _check_rows(x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> None:
    """ValueError for rows no customer can have: fractional x, t_x > T, or t_x > 0 without a repeat.

    Each condition is about one (x, t_x, T) row, so it may be checked on the distinct rows only.
    """
    if np.any(x != np.floor(x)):
        raise ValueError("frequency must be whole numbers of repeat purchases")
    if np.any(t_x > T):
        raise ValueError("recency must not exceed T (time from first purchase to the as-of date)")
    if np.any((x == 0) & (t_x != 0)):
        raise ValueError("recency must be 0 for customers with frequency 0")


def positive_params(params: Mapping[str, float], names: Sequence[str]) -> tuple[float, ...]:
    """The named parameters as floats; ValueError unless each is present, positive and finite."""
    values = []
    for name in names:
        if name not in params:
            raise ValueError(f"missing parameter {name!r}")
        value = float(params[name])
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"parameter {name} must be positive and finite, got {value!r}")
        values.append(value)
    return tuple(values)


def compress(
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    weights: ArrayLike | None = None,
    *,
    key: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (x, t_x, T) rows sorted by x, t_x, T, their summed weights, and each input row's index.

    Returns ``(x, t_x, T, weights, inverse)`` with ``x[inverse] == frequency`` etc. Weights default
    to one per customer. Raises ValueError for impossible summaries (negative values, t_x > T, ...).
    `key`, when given, is one integer per row that is equal exactly when (x, t_x, T) are and orders
    rows as they do (for example x, recency and T in whole days packed into bits): one sort then
    replaces the three-key one.
    """
    x = _as_vector("frequency", frequency)
    t_x = _as_vector("recency", recency)
    big_t = _as_vector("T", T)
    w = np.ones(1) if weights is None else _as_vector("weights", weights)
    try:
        x, t_x, big_t, w_full = np.broadcast_arrays(x, t_x, big_t, w)
    except ValueError:
        raise ValueError("frequency, recency, T and weights must have the same length") from None
    x, t_x, big_t = (np.ascontiguousarray(a) for a in (x, t_x, big_t))
    _check_values(x, t_x, big_t, w)  # the unbroadcast weights: the same values, no copy of ones
    if x.size == 0:
        empty = np.zeros(0)
        return empty, empty.copy(), empty.copy(), empty.copy(), np.zeros(0, dtype=np.int64)
    unit = weights is None
    if key is not None:
        key = np.asarray(key)
        if key.shape != x.shape:
            raise ValueError("key must have one value per row")
    if _strictly_increasing(x, t_x, big_t, key):  # already distinct and in order (e.g. compressed before)
        _check_rows(x, t_x, big_t)
        counts = np.ones(x.size) if unit else np.array(w_full, dtype=np.float64)
        return x, t_x, big_t, counts, np.arange(x.size, dtype=np.int64)
    first = np.empty(x.size, dtype=bool)
    first[0] = True
    group = np.empty(x.size, dtype=np.int64)
    sorted_key = _sort_key(key) if key is not None else None
    if sorted_key is not None:
        order, group = sorted_key  # the sorted key; its buffer then takes the group numbers
        np.not_equal(group[1:], group[:-1], out=first[1:])
    elif key is not None:
        order = np.argsort(key, kind="stable")
        ks = key[order]
        np.not_equal(ks[1:], ks[:-1], out=first[1:])
        del ks
    else:
        order = np.lexsort((big_t, t_x, x))
        xs, ts, bs = x[order], t_x[order], big_t[order]
        first[1:] = (xs[1:] != xs[:-1]) | (ts[1:] != ts[:-1]) | (bs[1:] != bs[:-1])
        del xs, ts, bs
    starts = np.flatnonzero(first)
    representative = order[starts]  # the first input row of each distinct row
    ux, ut, uT = x[representative], t_x[representative], big_t[representative]
    _check_rows(ux, ut, uT)
    group[0] = 0  # group numbers: cumsum(first) - 1, with first[0] True
    np.cumsum(first[1:], out=group[1:])
    inverse = np.empty(x.size, dtype=np.int64)
    inverse[order] = group
    if unit:
        counts = np.diff(starts, append=x.size).astype(np.float64)  # rows per distinct row
    else:
        w_full = np.ascontiguousarray(w_full, dtype=np.float64)
        counts = np.bincount(group, weights=w_full[order], minlength=starts.size)
    return ux, ut, uT, counts, inverse


def _sort_key(key: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(stable argsort of an integer key, the sorted key) by one sort of (key - min) << b | row index.

    The row index in the low bits makes the order stable and a plain value sort (much faster than an
    argsort) returns it. None when the key is not integer or its range and the row count need more
    than 63 bits.
    """
    if key.dtype.kind not in "iu":
        return None
    n = key.size
    shift = max(n - 1, 1).bit_length()
    low, high = int(key.min()), int(key.max())
    if low >= 0 and high.bit_length() + shift <= 63:
        low = 0  # no subtraction needed
    if (high - low).bit_length() + shift > 63:
        return None
    order = np.arange(n, dtype=np.int64)
    if low:
        packed = np.subtract(key, key.dtype.type(low), dtype=np.int64)
        packed <<= shift
    else:
        packed = np.left_shift(key, shift, dtype=np.int64)
    packed |= order
    packed.sort()
    np.bitwise_and(packed, (1 << shift) - 1, out=order)
    packed >>= shift
    return order, packed


def _strictly_increasing(
    x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray, key: np.ndarray | None = None
) -> bool:
    """True when the (x, t_x, T) rows are in strictly increasing lexicographic order.

    With a `key` (ordered as the rows) one comparison of neighbours suffices. The first rows are
    looked at first, so unsorted input is rejected without a pass over all of it.
    """
    head = 64
    if x.size > head and not _strictly_increasing(
        x[:head], t_x[:head], big_t[:head], None if key is None else key[:head]
    ):
        return False
    if key is not None:
        return bool(np.all(key[1:] > key[:-1]))
    dx, dt, dT = np.diff(x), np.diff(t_x), np.diff(big_t)
    return bool(np.all((dx > 0) | ((dx == 0) & ((dt > 0) | ((dt == 0) & (dT > 0))))))


def per_distinct_row(
    func: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray],
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
) -> np.ndarray:
    """Evaluate ``func(x, t_x, T)`` once per distinct summary row and expand it to every customer.

    ``func`` returns an array whose last axis runs over the distinct rows it was given (leading
    axes, e.g. one per horizon, are kept); the result's last axis runs over the input customers.
    """
    x, t_x, big_t, _, inverse = compress(frequency, recency, T)
    values = np.asarray(func(x, t_x, big_t), dtype=np.float64)
    return np.take(values, inverse, axis=-1)


def levels(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values and, for every element, the index of its value (as ``np.unique``)."""
    values = np.asarray(values)
    small = _small_whole_levels(values)
    if small is not None:
        return small
    unique, inverse = np.unique(values, return_inverse=True)
    return unique, inverse.reshape(values.shape)


def _small_whole_levels(values: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """`levels` of many whole numbers >= 0 in a short range (counts, level codes) without a sort."""
    if values.size < 1024 or values.dtype.kind not in "iuf":
        return None
    head = values.ravel()[:64]
    if values.dtype.kind == "f" and not np.all(head == np.floor(head)):
        return None
    low, high = values.min(), values.max()
    if not (low >= 0 and high - low <= 4 * values.size):  # also False for NaN
        return None
    codes = values.astype(np.intp)
    if values.dtype.kind == "f" and not np.all(np.equal(values, codes)):
        return None
    codes -= int(low)
    present = np.zeros(int(high - low) + 1, dtype=bool)
    present[codes] = True
    position = np.cumsum(present, dtype=np.intp)
    position -= 1
    unique = (np.flatnonzero(present) + int(low)).astype(values.dtype)
    return unique, position[codes].reshape(values.shape)


@dataclass(frozen=True)
class _Optimum:
    """Where the optimiser stopped, with the verdict and the Hessian of -LL on the log scale."""

    log_params: np.ndarray
    log_likelihood: float
    converged: bool
    message: str
    hessian: np.ndarray | None
    iterations: int
    at_bound: tuple[tuple[int, bool], ...] = ()  # (parameter index, True if at the upper bound)
    start: np.ndarray | None = None


def _hessian(objective: Objective, u: np.ndarray) -> np.ndarray | None:
    """Hessian of the negative log-likelihood on the log scale, by central differences of the gradient."""
    k = u.size
    hess = np.empty((k, k))
    for j in range(k):
        step = np.zeros(k)
        step[j] = HESSIAN_STEP
        _, g_plus = objective(u + step)
        _, g_minus = objective(u - step)
        hess[:, j] = -(g_plus - g_minus) / (2.0 * HESSIAN_STEP)
    if not np.all(np.isfinite(hess)):
        return None
    return 0.5 * (hess + hess.T)


def _newton_step(hess: np.ndarray | None, grad: np.ndarray) -> np.ndarray | None:
    """The Newton step H^-1 g for maximising, or None when H (of -LL) is not positive definite."""
    if hess is None:
        return None
    try:
        factor = cho_factor(hess)
    except LinAlgError:
        return None
    step = cho_solve(factor, grad)
    return step if np.all(np.isfinite(step)) else None


def _safe(objective: Objective, u: np.ndarray) -> tuple[float, np.ndarray]:
    """The objective with non-finite values replaced by -inf and a zero gradient."""
    with np.errstate(all="ignore"):
        ll, grad = objective(u)
    if not (np.isfinite(ll) and np.all(np.isfinite(grad))):
        return -np.inf, np.zeros_like(u)
    return float(ll), np.asarray(grad, dtype=np.float64)


def maximise(
    objective: Objective,
    start: np.ndarray,
    total_weight: float,
    hessian: Callable[[np.ndarray], np.ndarray] | None = None,
) -> _Optimum:
    """Maximise the log-likelihood over log-parameters within +-LOG_BOUND of `start`; Newton polish.

    `hessian`, when given, is the analytic Hessian of the log-likelihood on the log scale; otherwise
    it is taken by central differences of the gradient (two evaluations per parameter).
    """
    start = np.asarray(start, dtype=np.float64)
    lower, upper = start - LOG_BOUND, start + LOG_BOUND
    scale = max(float(total_weight), 1.0)
    penalty = 1e10  # returned (per customer) where the likelihood is not finite: the line search backs off

    last: dict[bytes, tuple[float, np.ndarray]] = {}

    def evaluate(u: np.ndarray) -> tuple[float, np.ndarray]:
        """`_safe(objective, u)`, remembering the last point (L-BFGS-B stops where it evaluated last)."""
        point = np.asarray(u, dtype=np.float64).tobytes()
        if point not in last:
            last.clear()
            last[point] = _safe(objective, u)
        return last[point]

    def negative_mean(u: np.ndarray) -> tuple[float, np.ndarray]:
        ll, grad = evaluate(u)
        if not np.isfinite(ll):
            return penalty, np.zeros_like(u)
        return -ll / scale, -grad / scale

    result = minimize(
        negative_mean,
        start,
        jac=True,
        method="L-BFGS-B",
        bounds=list(zip(lower, upper, strict=True)),
        options={"maxiter": 2000, "maxcor": 20, "ftol": 1e-13, "gtol": 1e-8},
    )
    u = np.clip(np.asarray(result.x, dtype=np.float64), lower, upper)
    iterations = int(result.nit)
    ll, grad = evaluate(u)
    if not np.isfinite(ll):
        return _Optimum(
            u, ll, False, "the likelihood is not finite at the estimate", None, iterations, (), start
        )

    def curvature(v: np.ndarray) -> np.ndarray | None:
        """The Hessian of -LL at v, None when it is not finite."""
        if hessian is None:
            return _hessian(lambda p: _safe(objective, p), v)
        with np.errstate(all="ignore"):
            hess = -np.asarray(hessian(v), dtype=np.float64)
        return 0.5 * (hess + hess.T) if np.all(np.isfinite(hess)) else None

    tolerance = GAIN_TOLERANCE * scale
    hess = curvature(u)
    gain = np.inf
    for _ in range(_POLISH_STEPS):
        step = _newton_step(hess, grad)
        if step is None:
            break
        gain = 0.5 * float(grad @ step)
        if gain <= tolerance * 1e-3:
            break
        moved = False
        for shrink in 0.5 ** np.arange(30):
            candidate = np.clip(u + shrink * step, lower, upper)
            ll_new, grad_new = _safe(objective, candidate)
            if np.isfinite(ll_new) and ll_new >= ll:
                u, ll, grad, moved = candidate, ll_new, grad_new, True
                break
        iterations += 1
        if not moved:
            break
        if gain > 1e3 * tolerance:  # a long step: the curvature may have changed
            hess = curvature(u)
    step = _newton_step(hess, grad)
    gain = 0.5 * float(grad @ step) if step is not None else np.inf

    at_bound = tuple(
        (int(i), bool(u[i] >= upper[i] - 1e-6))
        for i in np.flatnonzero((u <= lower + 1e-6) | (u >= upper - 1e-6))
    )
    if at_bound:
        message = "no finite maximum"
        converged = False
    elif hess is None:
        message = "the Hessian of the log-likelihood could not be computed at the estimate"
        converged = False
    elif step is None:
        message = "the log-likelihood is not concave at the estimate (not a maximum)"
        converged = False
    elif gain > tolerance:
        message = (
            f"stopped before the maximum ({result.message}); the log-likelihood can still rise by {gain:.3g}"
        )
        converged = False
    else:
        message = "converged"
        converged = True
    return _Optimum(u, ll, converged, message, hess, iterations, at_bound, start)


def standard_errors(
    names: Sequence[str], params: np.ndarray, hessian: np.ndarray | None
) -> dict[str, float | None]:
    """Delta-method standard errors SE(theta) = theta * SE(log theta) from the log-scale Hessian of -LL.

    All None when the Hessian is missing, not positive definite or numerically singular.
    """
    empty: dict[str, float | None] = dict.fromkeys(names)
    if hessian is None or not np.all(np.isfinite(hessian)):
        return empty
    eigenvalues = eigvalsh(hessian)
    if eigenvalues[0] <= 1e-12 * max(float(eigenvalues[-1]), 1e-300):
        return empty
    try:
        factor = cho_factor(hessian)
    except LinAlgError:
        return empty
    variance = np.diag(cho_solve(factor, np.eye(len(names))))
    errors: dict[str, float | None] = {}
    for name, value, var in zip(names, params, variance, strict=True):
        se = float(value * np.sqrt(var)) if var > 0 else float("nan")
        errors[name] = se if np.isfinite(se) else None
    return errors


def failed_fit(name: str, customers: float, message: str, time_unit: str) -> FitResult:
    """A fit that estimated nothing: no parameters, converged False, the reason in `message`."""
    return FitResult(
        name=name,
        params={},
        std_errors={},
        log_likelihood=None,
        customers=round(customers),
        converged=False,
        message=message,
        time_unit=time_unit,
    )


DRIFT = 8.0  # log-distance from the start (a factor of 3,000) beyond which an imprecise estimate is suspect


def _drifting(
    names: Sequence[str], params: np.ndarray, errors: dict[str, float | None], optimum: _Optimum
) -> list[str]:
    """Parameters that wandered far from the start with a standard error larger than the estimate."""
    if optimum.start is None:
        return []
    out = []
    for i, name in enumerate(names):
        far = abs(optimum.log_params[i] - optimum.start[i]) > DRIFT
        se = errors.get(name)
        if far and (se is None or se > params[i]):
            out.append(f"{name} -> {'infinity' if optimum.log_params[i] > optimum.start[i] else '0'}")
    return out


def fit_result(
    name: str,
    names: Sequence[str],
    optimum: _Optimum,
    customers: float,
    time_unit: str,
) -> FitResult:
    """Package an optimum as a FitResult; an estimate on the search bound is reported with converged False."""
    params = np.exp(optimum.log_params)
    if not (np.all(np.isfinite(params)) and np.isfinite(optimum.log_likelihood)):
        return failed_fit(name, customers, optimum.message, time_unit)
    message = optimum.message
    if optimum.at_bound:
        limits = ", ".join(f"{names[i]} -> {'infinity' if up else '0'}" for i, up in optimum.at_bound)
        message = (
            f"no finite maximum: the likelihood keeps rising as {limits}; the data cannot identify "
            "the model (too few customers, too few repeat purchases or too little variety among them)"
        )
    converged = optimum.converged
    errors = standard_errors(names, params, optimum.hessian if converged else None)
    drifting = _drifting(names, params, errors, optimum)
    if drifting and not optimum.at_bound:
        converged = False
        errors = dict.fromkeys(names)
        message = (
            f"no finite maximum: the likelihood is flat as {', '.join(drifting)}; the data cannot "
            "identify the model (too few customers, too few repeat purchases or too little variety)"
        )
    elif converged and all(v is None for v in errors.values()):
        message = "converged, but the Hessian is singular: no standard errors"
    return FitResult(
        name=name,
        params={n: float(v) for n, v in zip(names, params, strict=True)},
        std_errors=errors,
        log_likelihood=float(optimum.log_likelihood),
        customers=round(customers),
        converged=converged,
        message=message,
        time_unit=time_unit,
        iterations=optimum.iterations,
    )
