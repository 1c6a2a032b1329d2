"""Acquisition economics (PRODUCT §4.2): spend allocated to the customers it won.

A new customer of channel c in period m is one whose first order falls in m. Channel mode gives each of
them spend(c, m) / new(c, m); blended mode gives every new customer of m the period's total spend over
all its new customers. Spend that finds no customer is unallocated, listed with its reason, never
divided by zero. Money is summed in integer cents so allocated + unallocated = total exactly.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

import polars as pl

from clvtool.io.schema import CUSTOMER_ID
from clvtool.metrics.periods import period_index, period_label

CHANNEL_KEY = "channel_key"
PIDX = "period_index"
_EPOCH = dt.date(1970, 1, 1)

REASON_NO_CUSTOMERS = "no new customers of this channel in this period"
REASON_NO_CHANNEL = "no customer was ever acquired through this channel"
REASON_NO_PERIOD_CUSTOMERS = "no new customers at all in this period"
REASON_OUT_OF_RANGE = "outside the transactions' date range"


@dataclass
class Acquisition:
    """The allocation and everything needed to explain it."""

    customers: pl.DataFrame  # customer_id, cac, left_censored: one row per customer given, in their order
    cells: pl.DataFrame  # channel, period, spend, new_customers, cac (allocated cells and spend-less cells)
    unallocated: pl.DataFrame  # channel, period, spend, reason
    totals: dict[str, float | int | None]
    mode: str
    notes: list[str] = field(default_factory=list)


def channel_key(expr: pl.Expr) -> pl.Expr:
    """Channels match case-insensitively after trimming."""
    return expr.str.strip_chars().str.to_lowercase()


def _aliased_key(expr: pl.Expr, aliases: Mapping[str, str]) -> pl.Expr:
    key = channel_key(expr)
    if not aliases:
        return key
    lowered = {k.strip().lower(): v.strip().lower() for k, v in aliases.items()}
    return key.replace(lowered)


def _cents(expr: pl.Expr) -> pl.Expr:
    return (expr * 100).round(0).cast(pl.Int64)


def allocate_spend(
    customers: pl.DataFrame,
    spend: pl.DataFrame,
    *,
    period: str,
    mode: str,
    data_start: dt.date,
    as_of: dt.date,
    aliases: Mapping[str, str] | None = None,
    left_censor_days: int = 30,
) -> Acquisition:
    """Allocate spend (date, channel, spend) to customers (customer_id, channel, first_order)."""
    aliases = aliases or {}
    new = customers.select(
        CUSTOMER_ID,
        pl.col("channel"),
        channel_key(pl.col("channel")).alias(CHANNEL_KEY),
        period_index(pl.col("first_order"), period).alias(PIDX),
        (pl.col("first_order") < pl.lit(data_start + dt.timedelta(days=left_censor_days))).alias(
            "left_censored"
        ),
    )
    lo = _scalar_period(data_start, period)
    hi = _scalar_period(as_of, period)
    spend_cells = (
        spend.with_columns(
            _aliased_key(pl.col("channel"), aliases).alias(CHANNEL_KEY),
            period_index(pl.col("date"), period).alias(PIDX),
            _cents(pl.col("spend")).alias("cents"),
        )
        .group_by(CHANNEL_KEY, PIDX)
        .agg(pl.col("cents").sum(), pl.col("channel").min().alias("spend_channel"), pl.col("date").min())
    )
    new_cells = new.group_by(CHANNEL_KEY, PIDX).agg(pl.len().alias("new_customers"))
    names = _display_names(new, spend_cells)
    in_range = (pl.col(PIDX) >= lo) & (pl.col(PIDX) <= hi)
    known_channels = new.select(CHANNEL_KEY).unique()

    if mode == "blended":
        period_new = new_cells.group_by(PIDX).agg(pl.col("new_customers").sum())
        period_spend = spend_cells.filter(in_range).group_by(PIDX).agg(pl.col("cents").sum())
        rate = period_spend.join(period_new, on=PIDX, how="inner").select(
            PIDX, (pl.col("cents").cast(pl.Float64) / 100 / pl.col("new_customers")).alias("cac")
        )
        per_customer = new.join(rate, on=PIDX, how="left", maintain_order="left")
        allocated_spend = spend_cells.filter(in_range).join(period_new, on=PIDX, how="semi")
        lost = spend_cells.join(allocated_spend, on=[CHANNEL_KEY, PIDX], how="anti").with_columns(
            pl.when(~in_range)
            .then(pl.lit(REASON_OUT_OF_RANGE))
            .otherwise(pl.lit(REASON_NO_PERIOD_CUSTOMERS))
            .alias("reason")
        )
    else:
        matched = spend_cells.filter(in_range).join(new_cells, on=[CHANNEL_KEY, PIDX], how="inner")
        rate = matched.select(
            CHANNEL_KEY, PIDX, (pl.col("cents").cast(pl.Float64) / 100 / pl.col("new_customers")).alias("cac")
        )
        per_customer = new.join(rate, on=[CHANNEL_KEY, PIDX], how="left", maintain_order="left")
        allocated_spend = matched.select(CHANNEL_KEY, PIDX, "cents")
        lost = spend_cells.join(matched, on=[CHANNEL_KEY, PIDX], how="anti").with_columns(
            pl.when(~in_range)
            .then(pl.lit(REASON_OUT_OF_RANGE))
            .when(pl.col(CHANNEL_KEY).is_in(known_channels[CHANNEL_KEY].implode()))
            .then(pl.lit(REASON_NO_CUSTOMERS))
            .otherwise(pl.lit(REASON_NO_CHANNEL))
            .alias("reason")
        )
    per_customer = per_customer.with_columns(pl.col("cac").fill_null(0.0)).select(
        CUSTOMER_ID, "cac", "left_censored"
    )
    total = int(spend_cells["cents"].sum() or 0)
    allocated = int(allocated_spend["cents"].sum() or 0)
    unallocated = int(lost["cents"].sum() or 0)
    assert allocated + unallocated == total, "allocation must reconcile to the cent"

    cells = _period_cells(spend_cells, new_cells, names, period)
    lost_table = (
        lost.join(names, on=CHANNEL_KEY, how="left")
        .select(
            pl.col("display").alias("channel"),
            period_label(pl.col("date"), period).alias("period"),
            (pl.col("cents").cast(pl.Float64) / 100).alias("spend"),
            "reason",
            PIDX,
        )
        .sort(PIDX, "channel")
        .drop(PIDX)
    )
    n_new = new.height
    paid_keys = spend_cells.filter(pl.col("cents") > 0)[CHANNEL_KEY].unique()
    paid_new = new.filter(pl.col(CHANNEL_KEY).is_in(paid_keys.implode())).height
    paid_spend = int(
        spend_cells.filter(pl.col(CHANNEL_KEY).is_in(new[CHANNEL_KEY].unique().implode()))["cents"].sum() or 0
    )
    notes = []
    if n_new == 0:
        notes.append("no new customers in the data: CAC is empty (nothing to divide the spend by)")
    totals: dict[str, float | int | None] = {
        "spend": total / 100,
        "allocated": allocated / 100,
        "unallocated": unallocated / 100,
        "new_customers": n_new,
        "blended_cac": (total / 100 / n_new) if n_new else None,
        "paid_cac": (paid_spend / 100 / paid_new) if paid_new else None,
    }
    return Acquisition(per_customer, cells, lost_table, totals, mode, notes)


def _scalar_period(day: dt.date, period: str) -> int:
    return int(pl.select(period_index(pl.lit(day), period)).item())


def _display_names(new: pl.DataFrame, spend_cells: pl.DataFrame) -> pl.DataFrame:
    """channel_key -> the name shown: the customers' spelling when known, else the spend file's."""
    from_customers = new.group_by(CHANNEL_KEY).agg(pl.col("channel").min().alias("display"))
    from_spend = spend_cells.group_by(CHANNEL_KEY).agg(pl.col("spend_channel").min().alias("display"))
    return pl.concat([from_customers, from_spend.join(from_customers, on=CHANNEL_KEY, how="anti")])


def _period_cells(
    spend_cells: pl.DataFrame, new_cells: pl.DataFrame, names: pl.DataFrame, period: str
) -> pl.DataFrame:
    """Per channel and period: spend, new customers and CAC (null where either side is missing)."""
    joined = spend_cells.join(new_cells, on=[CHANNEL_KEY, PIDX], how="full", coalesce=True)
    with_date = joined.with_columns(
        pl.coalesce(pl.col("date"), _period_start(pl.col(PIDX), period)).alias("date"),
        pl.col("cents").fill_null(0),
        pl.col("new_customers").fill_null(0),
    )
    return (
        with_date.join(names, on=CHANNEL_KEY, how="left")
        .select(
            pl.col("display").alias("channel"),
            period_label(pl.col("date"), period).alias("period"),
            (pl.col("cents").cast(pl.Float64) / 100).alias("spend"),
            pl.col("new_customers").cast(pl.Int64),
            pl.when((pl.col("new_customers") > 0) & (pl.col("cents") > 0))
            .then(pl.col("cents").cast(pl.Float64) / 100 / pl.col("new_customers"))
            .when(pl.col("new_customers") > 0)
            .then(0.0)
            .otherwise(None)
            .alias("cac"),
            PIDX,
        )
        .sort("channel", PIDX)
        .drop(PIDX)
    )


def _period_start(pidx: pl.Expr, period: str) -> pl.Expr:
    """First day of a period from its integer index (inverse of period_index)."""
    if period == "month":
        return pl.date(pidx // 12, pidx % 12 + 1, 1)
    if period == "quarter":
        return pl.date(pidx // 4, (pidx % 4) * 3 + 1, 1)
    return (pidx * 7 + 4).cast(pl.Date)


def payback_days(order_rows: pl.LazyFrame, customers: pl.DataFrame) -> pl.DataFrame:
    """customer_id -> days from the first order until cumulative value >= cac (null if never; 0 if cac 0).

    `order_rows` is metrics.customers.order_frame (day, value per order); `customers` has customer_id,
    first_order (the first purchase, as in the customers table) and cac. Value accumulates per day over
    all the customer's orders; payback is the first day on or after first_order where it reaches cac.
    """
    first_day = pl.col("first_order").cast(pl.Int32)
    daily = (
        order_rows.group_by(CUSTOMER_ID, "day")
        .agg(pl.col("value").sum())
        .with_columns(pl.col("value").cum_sum().over(CUSTOMER_ID, order_by="day").alias("cum_value"))
        .join(customers.lazy().select(CUSTOMER_ID, "cac", first_day.alias("first_day")), on=CUSTOMER_ID)
        .with_columns(
            pl.when((pl.col("cum_value") >= pl.col("cac") - 1e-9) & (pl.col("day") >= pl.col("first_day")))
            .then(pl.col("day"))
            .otherwise(None)
            .alias("hit")
        )
    )
    reached = daily.group_by(CUSTOMER_ID).agg(
        pl.col("hit").min(), pl.col("cac").max(), pl.col("first_day").min()
    )
    return reached.select(
        CUSTOMER_ID,
        pl.when(pl.col("cac") <= 0)
        .then(0)
        .otherwise(pl.col("hit") - pl.col("first_day"))
        .cast(pl.Int64)
        .alias("payback_days"),
    ).collect()


def no_spend() -> Acquisition:
    """The acquisition of a run without a spend file: nothing spent, nothing allocated, CAC unknown."""
    cells = pl.DataFrame(
        schema={
            "channel": pl.String,
            "period": pl.String,
            "spend": pl.Float64,
            "new_customers": pl.Int64,
            "cac": pl.Float64,
        }
    )
    lost = pl.DataFrame(
        schema={"channel": pl.String, "period": pl.String, "spend": pl.Float64, "reason": pl.String}
    )
    customers = pl.DataFrame(schema={CUSTOMER_ID: pl.String, "cac": pl.Float64, "left_censored": pl.Boolean})
    totals: dict[str, float | int | None] = dict.fromkeys(
        ("spend", "allocated", "unallocated", "new_customers", "blended_cac", "paid_cac")
    )
    return Acquisition(
        customers, cells, lost, totals, "none", ["no spend file: CAC, LTV:CAC and ROAS are empty"]
    )


def _median_payback(payback: pl.Expr) -> pl.Expr:
    """Median days to payback, where 'never' counts as longer than any number (null if it is the median)."""
    never = 10**9
    med = payback.fill_null(never).sort().gather((pl.len() - 1) // 2)
    return pl.when(med.first() < never).then(med.first()).otherwise(None)


def channel_summary(customers: pl.DataFrame, acq: Acquisition) -> pl.DataFrame:
    """Per channel: spend, unallocated spend, new customers, CAC, value, LTV:CAC, payback, repeat rate, ROAS.

    `customers` is the customers table with cac, net_value and payback_days. CAC is the allocated spend
    per new customer (the mean of the customers' cac); spend is everything spent on the channel.
    """
    per_channel = (
        customers.with_columns(channel_key(pl.col("channel")).alias(CHANNEL_KEY))
        .group_by(CHANNEL_KEY)
        .agg(
            pl.col("channel").min(),
            pl.len().alias("new_customers"),
            pl.when(pl.col("cac").count() > 0).then(pl.col("cac").sum()).alias("allocated"),
            pl.col("historic_clv").mean().alias("mean_historic_clv"),
            _median_payback(pl.col("payback_days")).alias("median_payback_days"),
            (pl.col("orders") >= 2).mean().alias("repeat_rate"),
            pl.col("revenue").sum(),
            pl.when(pl.col("net_value").count() > 0).then(pl.col("net_value").sum()).alias("net_value"),
        )
    )
    spend = (
        acq.cells.with_columns(channel_key(pl.col("channel")).alias(CHANNEL_KEY))
        .group_by(CHANNEL_KEY)
        .agg(pl.col("channel").min().alias("spend_channel"), pl.col("spend").sum())
    )
    lost = (
        acq.unallocated.with_columns(channel_key(pl.col("channel")).alias(CHANNEL_KEY))
        .group_by(CHANNEL_KEY)
        .agg(pl.col("spend").sum().alias("unallocated"))
    )
    table = (
        per_channel.join(spend, on=CHANNEL_KEY, how="full", coalesce=True)
        .join(lost, on=CHANNEL_KEY, how="left")
        .with_columns(
            pl.coalesce("channel", "spend_channel").alias("channel"),
            pl.col("spend").fill_null(0.0),
            pl.col("unallocated").fill_null(0.0),
            pl.col("new_customers").fill_null(0).cast(pl.Int64),
        )
    )
    cac = pl.when(pl.col("new_customers") > 0).then(pl.col("allocated") / pl.col("new_customers"))
    return (
        table.with_columns(cac.alias("cac"))
        .select(
            "channel",
            "spend",
            "unallocated",
            "new_customers",
            "cac",
            "mean_historic_clv",
            pl.when(pl.col("cac") > 0).then(pl.col("mean_historic_clv") / pl.col("cac")).alias("ltv_cac"),
            "median_payback_days",
            "repeat_rate",
            "revenue",
            pl.when(pl.col("spend") > 0).then(pl.col("revenue") / pl.col("spend")).alias("roas"),
            "net_value",
        )
        .sort(["spend", "channel"], descending=[True, False])
    )
