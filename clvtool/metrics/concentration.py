"""Concentration of a per-customer metric (PRODUCT §4.4): top shares, customers for 80 %, Gini, deciles.

Every figure uses the metric clipped at zero: a customer with a zero, negative or missing value holds no
share, and such customers are counted in `non_positive`. Customers are ordered by the metric, largest
first, ties by customer_id. Shares at a fraction of customers that falls between two customers (the top
1 % of 150 customers) are read off the Lorenz curve by linear interpolation. When no customer has a
positive value every share is None and the headline says so. Works on the small per-customer frame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from clvtool.errors import UsageError
from clvtool.io.schema import CUSTOMER_ID
from clvtool.metrics.columns import FRACTION_DECIMALS
from clvtool.metrics.ranking import ranked_order

BY_CHOICES = ("revenue", "historic_clv", "total_clv", "net_value")
TOP_PERCENTS = (1, 5, 10, 20)
PARETO_SHARE = 0.80
DECILES = 10
LORENZ_MAX_POINTS = 1001  # the curve kept for drawing; exact when there are at most 1000 customers
_EPS = 1e-12

LABELS = {
    "revenue": "revenue",
    "historic_clv": "historic CLV",
    "total_clv": "total CLV",
    "net_value": "net value",
}

_MISSING = {
    "total_clv": "needs predictions; run with a purchase model (model.purchase_model other than none)",
    "net_value": "needs acquisition costs; configure a marketing spend file (spend: path)",
}


@dataclass(frozen=True)
class ParetoResult:
    """Concentration figures of one metric; fractions are 0..1, money in the input currency."""

    by: str
    customers: int
    total: float  # sum of the clipped values
    top_shares: dict[str, float | None]  # "1", "5", "10", "20" (percent of customers) -> share of total
    customers_for_80: int | None  # fewest customers (largest first) whose values make 80 % of the total
    fraction_for_80: float | None  # customers_for_80 / customers
    gini: float | None
    bottom_80_share_of_total: float | None
    bottom_80_share_of_spend: float | None  # None without acquisition costs
    non_positive: int  # customers whose value is zero, negative or missing (clipped to zero)
    deciles: pl.DataFrame  # decile (1 = top), customers, total, share, cumulative_share, mean; 10 rows
    lorenz: pl.DataFrame  # population_share, value_share: from (0, 0) to (1, 1), poorest customers first

    @property
    def defined(self) -> bool:
        """False when no customer has a positive value (shares would divide by zero)."""
        return self.total > 0

    @property
    def label(self) -> str:
        return LABELS.get(self.by, self.by)

    def headline(self) -> str:
        """'the top 20 % of customers bring 61 % of revenue; 34 % of customers make 80 %'."""
        if self.customers == 0:
            return f"no customers: the concentration of {self.label} is undefined"
        if not self.defined:
            return (
                f"no customer has a positive {self.label}: concentration is undefined "
                f"({self.non_positive:,} customers at zero or below)"
            )
        top = self.top_shares["20"]
        assert top is not None and self.fraction_for_80 is not None
        return (
            f"the top 20 % of customers bring {percent(top)} of {self.label}; "
            f"{percent(self.fraction_for_80)} of customers make 80 %"
        )

    def to_json(self, money_decimals: int | None = None) -> dict[str, Any]:
        """The JSON section of `pareto` (keys fixed: part of the public interface).

        With `money_decimals`, money is rounded to it and fractions to FRACTION_DECIMALS.
        """
        money = _rounder(money_decimals)
        fraction = _rounder(FRACTION_DECIMALS if money_decimals is not None else None)
        deciles = [
            {
                "decile": row["decile"],
                "customers": row["customers"],
                "total": money(row["total"]),
                "share": fraction(row["share"]),
                "cumulative_share": fraction(row["cumulative_share"]),
                "mean": money(row["mean"]),
            }
            for row in self.deciles.iter_rows(named=True)
        ]
        return {
            "by": self.by,
            "customers": self.customers,
            "total": money(self.total),
            "top_shares": {k: fraction(v) for k, v in self.top_shares.items()},
            "customers_for_80": self.customers_for_80,
            "fraction_for_80": fraction(self.fraction_for_80),
            "gini": fraction(self.gini),
            "bottom_80": {
                "share_of_total": fraction(self.bottom_80_share_of_total),
                "share_of_spend": fraction(self.bottom_80_share_of_spend),
            },
            "non_positive": self.non_positive,
            "deciles": deciles,
        }


def _rounder(decimals: int | None) -> Callable[[float | None], float | None]:
    def keep(value: float | None) -> float | None:
        return value

    def rounded(value: float | None) -> float | None:
        return None if value is None else round(value, decimals) + 0.0  # + 0.0: no negative zero

    return keep if decimals is None else rounded


def percent(fraction: float) -> str:
    """0.614 -> '61 %'; below 1 % one decimal: 0.004 -> '0.4 %'."""
    value = fraction * 100
    return f"{value:.1f} %" if 0 < value < 1 else f"{value:.0f} %"


def _check(customers: pl.DataFrame, by: str) -> None:
    if by not in BY_CHOICES:
        raise UsageError(f"--by {by!r} is not supported; choose one of {', '.join(BY_CHOICES)}.")
    if by not in customers.columns:
        raise UsageError(f"--by {by} {_MISSING.get(by, 'is not a column of the customers table')}.")


def gini(values: np.ndarray) -> float | None:
    """Gini coefficient of non-negative values (0 = equal, (n-1)/n = one holds all); None if total is 0."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    n = x.size
    total = float(x.sum())
    if n == 0 or total <= 0:
        return None
    ranks = np.arange(1, n + 1, dtype=np.float64)
    g = float(2.0 * np.dot(ranks, x) / (n * total) - (n + 1) / n)
    return min(max(g, 0.0), 1.0)


def _top_curve(desc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(fraction of customers, cumulative amount) from the largest down, starting at (0, 0)."""
    n = desc.size
    xs = np.arange(n + 1, dtype=np.float64) / max(n, 1)
    ys = np.concatenate(([0.0], np.cumsum(desc)))
    return xs, ys


def _lorenz(desc: np.ndarray, total: float) -> pl.DataFrame:
    """Lorenz curve points, poorest first; at most LORENZ_MAX_POINTS (linear interpolation beyond)."""
    asc = desc[::-1]
    n = asc.size
    xs = np.arange(n + 1, dtype=np.float64) / max(n, 1)
    cum = np.concatenate(([0.0], np.cumsum(asc)))
    ys = cum / cum[-1] if total > 0 else np.zeros_like(cum)
    if n + 1 > LORENZ_MAX_POINTS:
        grid = np.linspace(0.0, 1.0, LORENZ_MAX_POINTS)
        ys = np.interp(grid, xs, ys)
        xs = grid
    return pl.DataFrame({"population_share": xs, "value_share": ys})


def _deciles(ordered: pl.DataFrame, total: float) -> pl.DataFrame:
    """Ten groups of customers by rank (decile 1 = the largest values); sizes differ by at most one."""
    n = ordered.height
    skeleton = pl.DataFrame({"decile": list(range(1, DECILES + 1))}, schema={"decile": pl.Int64})
    if n:
        groups = (
            ordered.with_columns(
                (pl.int_range(0, pl.len(), dtype=pl.Int64) * DECILES // n + 1).alias("decile")
            )
            .group_by("decile")
            .agg(pl.len().cast(pl.Int64).alias("customers"), pl.col("__x").sum().alias("total"))
        )
        table = skeleton.join(groups, on="decile", how="left")
    else:
        table = skeleton.with_columns(
            pl.lit(None, dtype=pl.Int64).alias("customers"), pl.lit(None, dtype=pl.Float64).alias("total")
        )
    share = pl.col("total") / total if total > 0 else pl.lit(None, dtype=pl.Float64)
    return (
        table.with_columns(pl.col("customers").fill_null(0), pl.col("total").fill_null(0.0))
        .sort("decile")
        .with_columns(share.alias("share"))
        .with_columns(
            pl.col("share").cum_sum().alias("cumulative_share"),
            pl.when(pl.col("customers") > 0)
            .then(pl.col("total") / pl.col("customers").cast(pl.Float64))
            .otherwise(None)
            .alias("mean"),
        )
        .select("decile", "customers", "total", "share", "cumulative_share", "mean")
    )


def concentration(
    customers: pl.DataFrame, by: str = "revenue", spend_total: float | None = None
) -> ParetoResult:
    """Concentration of `by` over the customers table (one row per customer).

    The bottom 80 %'s share of acquisition spend uses the `cac` column when present, over `spend_total`
    (all spend, allocated or not) when given, else over the sum of cac.
    """
    _check(customers, by)
    raw = pl.col(by).cast(pl.Float64)
    has_cac = "cac" in customers.columns
    values = customers.select(
        pl.col(CUSTOMER_ID),
        # Amounts below a billionth of the currency unit are zero (and keep subnormals out of divisions).
        pl.when(raw.fill_null(0.0) < 1e-9).then(0.0).otherwise(raw).alias("__x"),
        (raw.is_null() | (raw <= 0)).alias("__non_positive"),
        *([pl.col("cac").cast(pl.Float64).fill_null(0.0).alias("__cac")] if has_cac else []),
    )
    # Largest first, ties by customer_id (the order of the cac curve among equal values).
    ordered = values[ranked_order(values, "__x", descending=True)]
    n = ordered.height
    desc = ordered["__x"].to_numpy().astype(np.float64, copy=False)
    xs, cum = _top_curve(desc)
    total = float(cum[-1]) if n else 0.0
    non_positive = int(ordered["__non_positive"].sum()) if n else 0

    top_shares: dict[str, float | None] = {str(p): None for p in TOP_PERCENTS}
    customers_for_80 = fraction_for_80 = bottom_total = None
    if n and total > 0:
        shares = cum / total
        for p in TOP_PERCENTS:
            top_shares[str(p)] = float(np.interp(p / 100, xs, shares))
        customers_for_80 = int(np.searchsorted(shares, PARETO_SHARE - _EPS, side="left"))
        fraction_for_80 = customers_for_80 / n
        bottom_total = 1.0 - float(np.interp(0.20, xs, shares))

    bottom_spend = None
    if has_cac and n:
        _, cac_cum = _top_curve(ordered["__cac"].to_numpy().astype(np.float64, copy=False))
        denominator = float(spend_total) if spend_total is not None else float(cac_cum[-1])
        if denominator > 0:
            bottom_spend = (float(cac_cum[-1]) - float(np.interp(0.20, xs, cac_cum))) / denominator

    return ParetoResult(
        by=by,
        customers=n,
        total=total,
        top_shares=top_shares,
        customers_for_80=customers_for_80,
        fraction_for_80=fraction_for_80,
        gini=gini(desc),
        bottom_80_share_of_total=bottom_total,
        bottom_80_share_of_spend=bottom_spend,
        non_positive=non_positive,
        deciles=_deciles(ordered, total),
        lorenz=_lorenz(desc, total),
    )
