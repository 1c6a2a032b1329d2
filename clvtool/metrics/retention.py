"""Churn thresholds, churn status, repeat purchase rate and churn rate (PRODUCT §4.3).

Thresholds come from the gaps between consecutive purchase days of repeat customers: `churned` after
the 80th percentile of those gaps, `at_risk` after the 40th (linear quantiles, days). A number in
`analysis.churn_days` overrides the churn threshold; `at_risk` is then half of it.
The gap computation is one window (`LAG` over customer, ordered by day) and two plain aggregates over
the order frame (SQL-portable, STYLE habit 2); everything else works on the small per-customer frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from clvtool.errors import ConfigError
from clvtool.io.schema import CUSTOMER_ID

CHURNED_QUANTILE = 0.80
AT_RISK_QUANTILE = 0.40
AT_RISK_FRACTION_OF_OVERRIDE = 0.5  # with a configured churn_days, at_risk starts at half of it

ACTIVE = "active"
AT_RISK = "at_risk"
CHURNED = "churned"
STATUSES = (ACTIVE, AT_RISK, CHURNED)


@dataclass(frozen=True)
class Thresholds:
    """Days since the last order after which a customer is at risk / churned (strictly more than)."""

    at_risk_days: float | None  # None when auto found no repeat customer to learn from
    churned_days: float | None
    source: str  # "auto" (percentiles of gaps) or "config" (analysis.churn_days)
    gaps_used: int  # gaps between consecutive purchase days behind the auto thresholds (0 for config)

    @property
    def defined(self) -> bool:
        return self.at_risk_days is not None and self.churned_days is not None

    def describe(self) -> str:
        """One sentence for stderr or a report: the thresholds and where they came from."""
        if not self.defined:
            return "churn thresholds: undefined (no repeat customers); set analysis.churn_days to a number of days."
        days = f"at risk after {self.at_risk_days:,.4g} days, churned after {self.churned_days:,.4g} days"
        if self.source == "config":
            return f"churn thresholds: {days} without an order (analysis.churn_days)"
        return (
            f"churn thresholds: {days} without an order (40th and 80th percentiles of {self.gaps_used:,} gaps "
            "between orders of repeat customers)"
        )

    def to_json(self) -> dict[str, object]:
        return {
            "at_risk_days": self.at_risk_days,
            "churned_days": self.churned_days,
            "source": self.source,
            "gaps_used": self.gaps_used,
        }


@dataclass(frozen=True)
class RetentionSummary:
    """The headline retention numbers, computed once and shared by every command that prints them."""

    customers: int
    repeat_customers: int
    repeat_rate: float | None  # repeat_customers / customers; None without customers
    active: int
    at_risk: int
    churned: int
    churn_rate: float | None  # churned / customers; None without customers or without thresholds
    thresholds: Thresholds

    def to_json(self) -> dict[str, object]:
        return {
            "customers": self.customers,
            "repeat_customers": self.repeat_customers,
            "repeat_rate": self.repeat_rate,
            "active": self.active,
            "at_risk": self.at_risk,
            "churned": self.churned,
            "churn_rate": self.churn_rate,
            "thresholds": self.thresholds.to_json(),
        }


def parse_churn_days(churn_days: str | float | int) -> float | None:
    """'auto' -> None; a positive number (or its text) -> float days; anything else is a ConfigError."""
    if isinstance(churn_days, str):
        text = churn_days.strip().lower()
        if text == "auto":
            return None
        try:
            value = float(text)
        except ValueError:
            raise ConfigError(
                f"analysis.churn_days is {churn_days!r}; use 'auto' or a number of days such as 90."
            ) from None
    elif isinstance(churn_days, bool):
        raise ConfigError("analysis.churn_days must be 'auto' or a number of days such as 90.")
    else:
        value = float(churn_days)
    if not value > 0 or value == float("inf"):
        raise ConfigError(f"analysis.churn_days is {churn_days!r}; use 'auto' or a positive number of days.")
    return value


def purchase_gaps(orders: pl.LazyFrame) -> pl.LazyFrame:
    """Days between consecutive purchase days of each customer (one row per gap, column `gap`, Int32).

    Same-day purchases are one purchase day (as in PRODUCT §5.1), so every gap is at least 1 day.
    One-time buyers contribute no gap.
    """
    days = orders.filter(pl.col("is_purchase") == 1).select(CUSTOMER_ID, "day").unique()
    previous = pl.col("day").shift(1).over(CUSTOMER_ID, order_by="day")
    return (
        days.with_columns((pl.col("day") - previous).alias("gap"))
        .filter(pl.col("gap").is_not_null())
        .select(pl.col("gap").cast(pl.Int32))
    )


def churn_thresholds(orders: pl.LazyFrame, churn_days: str | float | int = "auto") -> Thresholds:
    """Thresholds in days from the order frame (`customers.order_frame`), or from the configured number."""
    if parse_churn_days(churn_days) is not None:
        return thresholds_from_gaps(pl.Series("gap", [], pl.Int32), churn_days)
    return thresholds_from_gaps(purchase_gaps(orders).collect()["gap"], churn_days)


def thresholds_from_gaps(gaps: pl.Series, churn_days: str | float | int = "auto") -> Thresholds:
    """Thresholds from the gaps between purchase days (`purchase_gaps`), or from the configured number."""
    override = parse_churn_days(churn_days)
    if override is not None:
        return Thresholds(override * AT_RISK_FRACTION_OF_OVERRIDE, override, "config", 0)
    if gaps.len() == 0:
        return Thresholds(None, None, "auto", 0)
    days = gaps.cast(pl.Float64)
    return Thresholds(
        float(days.quantile(AT_RISK_QUANTILE, interpolation="linear")),
        float(days.quantile(CHURNED_QUANTILE, interpolation="linear")),
        "auto",
        gaps.len(),
    )


def status_expr(thresholds: Thresholds, days_since_last: str = "days_since_last") -> pl.Expr:
    """active / at_risk / churned from days since the last order; null when thresholds are undefined."""
    if not thresholds.defined:
        return pl.lit(None, dtype=pl.String)
    days = pl.col(days_since_last)
    return (
        pl.when(days.is_null())
        .then(pl.lit(None, dtype=pl.String))
        .when(days > thresholds.churned_days)
        .then(pl.lit(CHURNED))
        .when(days > thresholds.at_risk_days)
        .then(pl.lit(AT_RISK))
        .otherwise(pl.lit(ACTIVE))
    )


def churn_status(customers: pl.DataFrame, thresholds: Thresholds) -> pl.DataFrame:
    """The customers frame with a `status` column (String) added or replaced."""
    return customers.with_columns(status_expr(thresholds).alias("status"))


def repeat_rate(customers: pl.DataFrame) -> float | None:
    """Customers with at least two orders (purchases) / customers; None without customers."""
    if customers.height == 0:
        return None
    repeat = customers.select((pl.col("orders").fill_null(0) >= 2).sum()).item()
    return int(repeat) / customers.height


def churn_rate(customers: pl.DataFrame) -> float | None:
    """Churned customers / customers, from a frame with `status`; None without customers or statuses."""
    if customers.height == 0 or customers["status"].null_count() == customers.height:
        return None
    churned = customers.select((pl.col("status") == CHURNED).sum()).item()
    return int(churned) / customers.height


def retention_summary(customers: pl.DataFrame, thresholds: Thresholds) -> RetentionSummary:
    """Repeat rate, status counts and churn rate in one pass over the per-customer frame."""
    with_status = customers if "status" in customers.columns else churn_status(customers, thresholds)
    counts = with_status.select(
        (pl.col("orders").fill_null(0) >= 2).sum().alias("repeat"),
        *[(pl.col("status") == s).sum().alias(s) for s in STATUSES],
    ).row(0, named=True)
    n = with_status.height
    return RetentionSummary(
        customers=n,
        repeat_customers=int(counts["repeat"]),
        repeat_rate=int(counts["repeat"]) / n if n else None,
        active=int(counts[ACTIVE]),
        at_risk=int(counts[AT_RISK]),
        churned=int(counts[CHURNED]),
        churn_rate=int(counts[CHURNED]) / n if n and thresholds.defined else None,
        thresholds=thresholds,
    )
