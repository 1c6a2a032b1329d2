"""Synthetic customer bases from BG/NBD purchases and Gamma-Gamma spend (`clvtool sample`).

The generator follows Fader, Hardie & Lee (2005), "Counting your customers the easy way: an
alternative to the Pareto/NBD model", and the ``beta_geometric_nbd_model`` generator of the
lifetimes library (``lifetimes/generate_data.py``):

* a customer is acquired with a first (trial) purchase at time 0; it is not counted in ``x``;
* while active, repeat purchases follow a Poisson process with rate ``lam`` per week,
  ``lam ~ Gamma(shape r, rate alpha)``;
* the customer can become inactive only *immediately after a repeat purchase*, with probability
  ``p_drop ~ Beta(a, b)``. There is no dropout after the trial purchase (that is the MBG/NBD
  variant), so the number of repeat purchases before dropout is Geometric(p_drop) on {1, 2, ...};
* spend per purchase is ``z ~ Gamma(shape p, rate nu)`` with ``nu ~ Gamma(shape q, rate gamma)``
  per customer, for every purchase including the first.

Everything is vectorised over customers; the only Python loop runs over purchase rounds
(round k draws the k-th repeat purchase of every customer still active).
"""

from __future__ import annotations

import datetime
import json
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from clvtool.io.files import atomic_write

__all__ = [
    "DEFAULT_CHANNELS",
    "ChannelSpec",
    "SampleData",
    "SampleParams",
    "expected_repeat_purchases",
    "simulate_repeat_purchases",
    "simulate_sample",
    "write_sample",
]

DAYS_PER_WEEK = 7.0
SPEND_NOISE_SIGMA = 0.15  # sigma of the log of the multiplicative spend noise (mean-one lognormal)
DISPLAY_CHANNEL = "display"  # channel with spend but no customers (unallocated spend)
DISPLAY_SPEND = 500.0  # currency per month of display spend
REPEAT_CHANNELS = ("email", "direct")  # channels of repeat orders, drawn with probability 0.5 each
FILE_NAMES = ("transactions.csv", "marketing_spend.csv", "customers.csv", "params.json")
_EPOCH = date(1970, 1, 1)


@dataclass(frozen=True)
class ChannelSpec:
    """An acquisition channel: its share of new customers and its mean cost per acquisition."""

    name: str  # channel label, e.g. "paid_search"
    weight: float  # relative share of new customers (normalised over all channels)
    cac: float  # mean acquisition cost per customer, in currency; 0 = organic (no spend rows)


DEFAULT_CHANNELS: tuple[ChannelSpec, ...] = (
    ChannelSpec("organic", 0.30, 0.0),
    ChannelSpec("paid_search", 0.30, 25.0),
    ChannelSpec("paid_social", 0.25, 40.0),
    ChannelSpec("affiliate", 0.15, 60.0),
)


@dataclass(frozen=True)
class SampleParams:
    """Simulation inputs; BG/NBD time unit = week (alpha is a rate per week); money in currency."""

    customers: int = 2000  # number of customers acquired over the window
    start: datetime.date = date(2024, 1, 1)  # first day of the observation window
    end: datetime.date = date(2025, 12, 31)  # inclusive last day of the observation window
    r: float = 0.243  # BG/NBD: shape of the Gamma of purchase rates
    alpha: float = 4.414  # BG/NBD: rate of that Gamma, per week (mean rate r/alpha per week)
    a: float = 0.793  # BG/NBD: Beta(a, b) of the dropout probability
    b: float = 2.426
    p: float = 6.25  # Gamma-Gamma: shape of spend per purchase
    q: float = 3.74  # Gamma-Gamma: shape of the Gamma of nu
    gamma: float = 15.44  # Gamma-Gamma: rate of the Gamma of nu (currency)
    seed: int = 42  # seed of numpy.random.default_rng
    channels: tuple[ChannelSpec, ...] = field(default=DEFAULT_CHANNELS)

    def __post_init__(self) -> None:
        """Validate the parameters; raises ValueError with the offending field."""
        object.__setattr__(self, "channels", tuple(self.channels))
        for name in ("start", "end"):
            value = getattr(self, name)
            if isinstance(value, datetime.datetime):
                object.__setattr__(self, name, value.date())
            elif not isinstance(value, date):
                raise ValueError(f"{name} must be a date, got {value!r}")
        if isinstance(self.customers, bool) or int(self.customers) != self.customers:
            raise ValueError(f"customers must be an integer, got {self.customers!r}")
        if self.customers < 1:
            raise ValueError(f"customers must be at least 1, got {self.customers}")
        if self.end < self.start:
            raise ValueError(f"end ({self.end}) is before start ({self.start})")
        for name in ("r", "alpha", "a", "b", "p", "q", "gamma"):
            value = float(getattr(self, name))
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive finite number, got {value!r}")
        if not self.channels:
            raise ValueError("at least one acquisition channel is required")
        names = [c.name for c in self.channels]
        if len(set(names)) != len(names):
            raise ValueError(f"channel names must be unique, got {names}")
        for c in self.channels:
            if not c.name or c.name != c.name.strip():
                raise ValueError(f"channel name must be non-empty and trimmed, got {c.name!r}")
            if c.name == DISPLAY_CHANNEL:
                raise ValueError(f"channel name {DISPLAY_CHANNEL!r} is reserved for the spend-only channel")
            if not (np.isfinite(c.weight) and c.weight >= 0):
                raise ValueError(f"channel {c.name!r}: weight must be >= 0, got {c.weight!r}")
            if not (np.isfinite(c.cac) and c.cac >= 0):
                raise ValueError(f"channel {c.name!r}: cac must be >= 0, got {c.cac!r}")
        if sum(c.weight for c in self.channels) <= 0:
            raise ValueError("channel weights must not all be zero")


@dataclass
class SampleData:
    """Simulated tables (money in currency, pl.Date dates) and the continuous-time truth (weeks)."""

    transactions: pl.DataFrame  # customer_id, order_id, order_date, amount, channel
    spend: pl.DataFrame  # date (first of month), channel, spend
    customers: pl.DataFrame  # customer_id, channel, signup_date
    truth: pl.DataFrame  # customer_id, x, t_x, T (weeks), lam (per week), p_drop, nu
    params: dict  # JSON-serialisable description of the simulation


def expected_repeat_purchases(
    t: float | np.ndarray, r: float, alpha: float, a: float, b: float
) -> np.ndarray:
    """BG/NBD E[X(t)]: expected repeat purchases in (0, t] weeks after the trial purchase."""
    from scipy.special import hyp2f1

    t = np.asarray(t, dtype=np.float64)
    z = t / (alpha + t)
    bracket = 1.0 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1.0, z)
    return (a + b - 1.0) / (a - 1.0) * bracket


def simulate_repeat_purchases(
    rng: np.random.Generator, lam: np.ndarray, p_drop: np.ndarray, T: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Draw BG/NBD repeat purchases in (0, T) weeks: owner, time; x and t_x (weeks) per customer.

    ``owner`` and ``time`` have one entry per repeat purchase, ordered by round (k-th repeat
    purchase of every customer, then the (k+1)-th, ...), so the times of one customer increase.
    ``lam`` is per week; ``T`` is each customer's observation length in weeks after the trial.
    """
    lam = np.asarray(lam, dtype=np.float64)
    p_drop = np.asarray(p_drop, dtype=np.float64)
    T = np.broadcast_to(np.asarray(T, dtype=np.float64), lam.shape)
    n = lam.shape[0]
    x = np.zeros(n, dtype=np.int64)
    t_x = np.zeros(n, dtype=np.float64)
    owners: list[np.ndarray] = []
    times: list[np.ndarray] = []
    active = np.arange(n, dtype=np.int64)
    clock = np.zeros(n, dtype=np.float64)  # time of the last purchase of each active customer
    while active.size:
        with np.errstate(divide="ignore"):  # lam == 0 (underflow) gives an infinite gap
            clock = clock + rng.standard_exponential(active.size) / lam[active]
        inside = clock < T[active]
        active = active[inside]
        clock = clock[inside]
        if not active.size:
            break
        owners.append(active)
        times.append(clock)
        x[active] += 1
        t_x[active] = clock
        # BG/NBD: dropout possible only right after a repeat purchase (never after the trial).
        stays = rng.random(active.size) >= p_drop[active]
        active = active[stays]
        clock = clock[stays]
    owner = np.concatenate(owners) if owners else np.zeros(0, dtype=np.int64)
    time = np.concatenate(times) if times else np.zeros(0, dtype=np.float64)
    return owner, time, x, t_x


def _month_starts(first: date, last: date) -> list[date]:
    """First days of every calendar month from the month of `first` to that of `last`."""
    months = []
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        months.append(date(year, month, 1))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def _previous_month(day: date) -> date:
    """First day of the month before the month of `day`."""
    return date(day.year - 1, 12, 1) if day.month == 1 else date(day.year, day.month - 1, 1)


def _ids(prefix: str, n: int, width: int) -> pl.Expr:
    """Expression for ids prefix + zero-padded 1..n (in row order) of the given digit width."""
    return pl.lit(prefix) + pl.int_range(1, n + 1, dtype=pl.Int64).cast(pl.String).str.zfill(width)


def _labels(codes: pl.Expr, names: list[str]) -> pl.Expr:
    """Map integer codes 0..k-1 to the string labels `names`."""
    return codes.replace_strict(list(range(len(names))), names, return_dtype=pl.String)


def _dates(start: date, day_index: np.ndarray) -> pl.Series:
    """pl.Date series for day offsets from `start`."""
    offset = (start - _EPOCH).days
    return pl.Series((day_index + offset).astype(np.int32)).cast(pl.Date)


def _cents(values: np.ndarray) -> np.ndarray:
    """Round money to cents."""
    return np.round(values, 2)


def simulate_sample(params: SampleParams) -> SampleData:
    """Simulate a customer base, its orders (currency) and monthly marketing spend from `params`."""
    rng = np.random.default_rng(params.seed)
    n = int(params.customers)
    n_days = (params.end - params.start).days + 1  # window [start 00:00, end + 1 day 00:00)
    channels = list(params.channels)
    channel_names = [c.name for c in channels]
    weights = np.array([c.weight for c in channels], dtype=np.float64)
    weights = weights / weights.sum()

    # Customers, numbered in order of acquisition. Acquisition time in days since start.
    acquired = np.sort(rng.uniform(0.0, n_days, size=n))
    channel = rng.choice(len(channels), size=n, p=weights).astype(np.int64)
    lam = rng.gamma(params.r, 1.0 / params.alpha, size=n)  # per week
    p_drop = rng.beta(params.a, params.b, size=n)
    nu = rng.gamma(params.q, 1.0 / params.gamma, size=n)
    T = (n_days - acquired) / DAYS_PER_WEEK  # weeks to the end of the `end` day

    owner, t_repeat, x, t_x = simulate_repeat_purchases(rng, lam, p_drop, T)
    n_repeat = owner.size

    # All purchases: the trial purchases (time 0) first, then the repeat purchases by round.
    cust = np.concatenate([np.arange(n, dtype=np.int64), owner])
    t_all = np.concatenate([np.zeros(n), t_repeat])
    del t_repeat
    day = np.floor(acquired[cust] + DAYS_PER_WEEK * t_all).astype(np.int64)
    np.minimum(day, n_days - 1, out=day)  # guards a floating-point round-up at the very end
    amount = rng.gamma(params.p, 1.0, size=cust.size) / nu[cust]
    amount = np.maximum(_cents(amount), 0.01)
    repeat_channel = len(channels) + (rng.random(n_repeat) >= 0.5).astype(np.int64)
    order_channel = np.concatenate([channel, repeat_channel])
    all_channel_names = [*channel_names, *REPEAT_CHANNELS]

    cid_width = max(6, len(str(n)))
    oid_width = max(7, len(str(cust.size)))
    signup_day = np.floor(acquired).astype(np.int64)

    tx = (
        pl.DataFrame(
            {
                "cust": cust,
                "day": day,
                "t": t_all,
                "amount": amount,
                "code": order_channel.astype(np.int64),
            }
        )
        .sort(["day", "cust", "t"])
        .select(
            customer_id=pl.lit("C") + (pl.col("cust") + 1).cast(pl.String).str.zfill(cid_width),
            order_id=_ids("O", cust.size, oid_width),
            order_date=pl.col("day").cast(pl.Int32) + (params.start - _EPOCH).days,
            amount=pl.col("amount"),
            channel=_labels(pl.col("code"), all_channel_names),
        )
        .with_columns(pl.col("order_date").cast(pl.Date))
    )
    del cust, t_all, day, amount, order_channel

    customers = pl.DataFrame({"code": channel, "signup_date": _dates(params.start, signup_day)}).select(
        customer_id=_ids("C", n, cid_width),
        channel=_labels(pl.col("code"), channel_names),
        signup_date=pl.col("signup_date"),
    )
    truth = pl.DataFrame(
        {
            "customer_id": customers["customer_id"],
            "x": x,
            "t_x": t_x,
            "T": T,
            "lam": lam,
            "p_drop": p_drop,
            "nu": nu,
        }
    )

    spend, spend_info = _simulate_spend(rng, params, channel, signup_day, n_days)
    notes = [
        "BG/NBD convention (Fader, Hardie & Lee 2005; lifetimes generate_data): the first order "
        "is a trial at time 0 not counted in x; a customer can drop out only immediately after a "
        "repeat purchase, with probability p_drop; no dropout after the first order.",
        "Acquisition times are uniform in continuous time over [start, end + 1 day); purchase "
        "times are converted to calendar dates by flooring to the day, so several purchases of a "
        "customer can share a date.",
        "truth (not written to files) holds the continuous-time x, t_x and T in weeks, T measured "
        "to the end of the `end` day, computed before rounding to days.",
        "Each order amount ~ Gamma(shape p, rate nu) for every order including the first, "
        "rounded to cents with a floor of 0.01.",
        "The first order's channel is the acquisition channel; repeat orders have channel "
        "'email' or 'direct' with probability 0.5 each, so attribution must use the first order.",
        "Monthly spend per paid channel = new customers of that channel and month x cac x "
        f"lognormal noise (sigma {SPEND_NOISE_SIGMA}, mean 1), rounded to cents.",
        f"Channel '{DISPLAY_CHANNEL}' has spend of {DISPLAY_SPEND:.2f} in each of the months "
        f"{', '.join(spend_info['display_months'])} but never acquires a customer "
        "(unallocated spend).",
    ]
    if spend_info["pre_start_channel"] is not None:
        notes.append(
            f"Channel '{spend_info['pre_start_channel']}' has spend of "
            f"{spend_info['pre_start_spend']:.2f} in {spend_info['pre_start_month']}, the month "
            "before start, outside the range of the transactions (unallocated spend)."
        )
    else:
        notes.append("No paid channel, so no spend row before start was written.")

    customers_by_channel = dict(
        zip(channel_names, np.bincount(channel, minlength=len(channels)).tolist(), strict=True)
    )
    total_spend = float(spend["spend"].sum()) if spend.height else 0.0
    info = {
        "generator": "clvtool.models.simulate.simulate_sample",
        "generation": (
            "Customers acquired uniformly over the window with channels drawn from the channel "
            "weights; repeat purchases from the BG/NBD process (lam ~ Gamma(r, rate alpha) per "
            "week, p_drop ~ Beta(a, b)); order amounts from the Gamma-Gamma model (nu ~ "
            "Gamma(q, rate gamma), amount ~ Gamma(p, rate nu)); monthly spend per paid channel "
            "from new customers x cac x noise. numpy.random.default_rng(seed); the random "
            "stream is reproducible for the same numpy version."
        ),
        "numpy_version": np.__version__,
        "time_unit": "week",
        "seed": params.seed,
        "customers": n,
        "start": params.start.isoformat(),
        "end": params.end.isoformat(),
        "window_days": n_days,
        "window_weeks": n_days / DAYS_PER_WEEK,
        "models": {"purchase": "bgnbd", "spend": "gamma_gamma"},
        "r": params.r,
        "alpha": params.alpha,
        "a": params.a,
        "b": params.b,
        "p": params.p,
        "q": params.q,
        "gamma": params.gamma,
        "channels": [asdict(c) for c in channels],
        "repeat_order_channels": list(REPEAT_CHANNELS),
        "spend_noise_sigma": SPEND_NOISE_SIGMA,
        "counts": {
            "customers": n,
            "customers_by_channel": customers_by_channel,
            "transactions": int(tx.height),
            "repeat_transactions": int(n_repeat),
            "repeat_customers": int(np.count_nonzero(x)),
            "spend_rows": int(spend.height),
            "total_spend": round(total_spend, 2),
            "unallocated_spend": spend_info["unallocated"],
        },
        "files": list(FILE_NAMES),
        "notes": notes,
    }
    return SampleData(transactions=tx, spend=spend, customers=customers, truth=truth, params=info)


def _simulate_spend(
    rng: np.random.Generator,
    params: SampleParams,
    channel: np.ndarray,
    signup_day: np.ndarray,
    n_days: int,
) -> tuple[pl.DataFrame, dict]:
    """Monthly spend (currency) per paid channel, plus the deliberate unallocated rows."""
    months = _month_starts(params.start, params.end)
    n_months = len(months)
    # Month index of every day of the window, then of every customer's signup day.
    day_dates = [params.start + datetime.timedelta(days=i) for i in range(n_days)]
    month_of_day = np.array(
        [(d.year - params.start.year) * 12 + d.month - params.start.month for d in day_dates],
        dtype=np.int64,
    )
    month = month_of_day[signup_day]
    k = len(params.channels)
    new = np.bincount(channel * n_months + month, minlength=k * n_months).reshape(k, n_months)

    paid = [i for i, c in enumerate(params.channels) if c.cac > 0]
    sigma = SPEND_NOISE_SIGMA
    noise = rng.lognormal(-0.5 * sigma**2, sigma, size=(len(paid), n_months))
    rows_date: list[date] = []
    rows_channel: list[str] = []
    rows_spend: list[float] = []
    for j, i in enumerate(paid):
        spec = params.channels[i]
        values = _cents(new[i] * spec.cac * noise[j])
        rows_date.extend(months)
        rows_channel.extend([spec.name] * n_months)
        rows_spend.extend(values.tolist())

    # (a) a channel with spend that never acquires anyone: first, middle and last month.
    display_idx = sorted({0, (n_months - 1) // 2, n_months - 1})
    display_months = [months[i] for i in display_idx]
    for m in display_months:
        rows_date.append(m)
        rows_channel.append(DISPLAY_CHANNEL)
        rows_spend.append(DISPLAY_SPEND)
    unallocated = DISPLAY_SPEND * len(display_months)

    # (b) spend in the month before start, outside the data range.
    pre_channel = None
    pre_spend = 0.0
    pre_month = _previous_month(params.start)
    if paid:
        names = [params.channels[i].name for i in paid]
        i = paid[names.index("paid_search")] if "paid_search" in names else paid[0]
        spec = params.channels[i]
        weights = np.array([c.weight for c in params.channels], dtype=np.float64)
        expected_new = params.customers * weights[i] / weights.sum() / n_months
        pre_channel = spec.name
        pre_spend = round(spec.cac * max(1.0, expected_new), 2)
        rows_date.append(pre_month)
        rows_channel.append(pre_channel)
        rows_spend.append(pre_spend)
        unallocated += pre_spend

    spend = pl.DataFrame(
        {"date": rows_date, "channel": rows_channel, "spend": rows_spend},
        schema={"date": pl.Date, "channel": pl.String, "spend": pl.Float64},
    ).sort(["date", "channel"])
    info = {
        "display_months": [m.isoformat() for m in display_months],
        "pre_start_channel": pre_channel,
        "pre_start_month": pre_month.isoformat(),
        "pre_start_spend": pre_spend,
        "unallocated": {
            "total": round(unallocated, 2),
            "display_channel": DISPLAY_CHANNEL,
            "display_months": [m.isoformat() for m in display_months],
            "display_spend": round(DISPLAY_SPEND * len(display_months), 2),
            "before_start_channel": pre_channel,
            "before_start_month": pre_month.isoformat() if pre_channel else None,
            "before_start_spend": pre_spend,
        },
    }
    return spend, info


def write_sample(data: SampleData, out_dir: Path) -> list[Path]:
    """Write transactions.csv, marketing_spend.csv, customers.csv and params.json into out_dir; return the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / name for name in FILE_NAMES]
    frames = (data.transactions, data.spend, data.customers)
    for frame, path in zip(frames, paths[:3], strict=True):
        atomic_write(path, frame.write_csv(float_precision=2).encode("utf-8"))
    text = json.dumps(data.params, sort_keys=True, indent=2) + "\n"
    atomic_write(paths[3], text.encode("utf-8"))
    return paths
