"""Per-customer summary (PRODUCT §4.1) and model statistics (§5.1) from the canonical frame.

Three aggregation levels, all plain group-bys (SQL-portable, STYLE habit 2):
rows -> orders (customer, order) -> purchase days (customer, day) -> customers.
Dates are integer day numbers (days since 1970-01-01) until the final frame.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from clvtool.io.schema import AMOUNT, CHANNEL, COST, CUSTOMER_ID, DATE, ORDER_ID, SEQ
from clvtool.metrics.periods import period_label

UNATTRIBUTED = "unattributed"

# Column order of the customers table (PRODUCT §4.1); later metrics insert theirs by name.
CUSTOMER_COLUMNS: tuple[str, ...] = (
    "customer_id",
    "channel",
    "cohort",
    "first_order",
    "last_order",
    "orders",
    "revenue",
    "refunds",
    "aov",
    "days_since_last",
    "tenure_days",
    "frequency",
    "recency",
    "T",
    "historic_clv",
)

_DAY = "day"
_ORDER = "order_key"
_KEY = "__first_key"


def _day(expr: pl.Expr) -> pl.Expr:
    return expr.cast(pl.Int32)


def order_lines(tx: pl.LazyFrame, *, margin_rate: float) -> pl.LazyFrame:
    """Rows with day number, value (margin) and refund part; one order key per order."""
    value = pl.col(AMOUNT) * margin_rate
    if COST in tx.collect_schema():
        value = pl.when(pl.col(COST).is_not_null()).then(pl.col(AMOUNT) - pl.col(COST)).otherwise(value)
    order_key = pl.coalesce(pl.col(ORDER_ID), pl.concat_str(pl.lit("\x00row"), pl.col(SEQ).cast(pl.String)))
    return tx.with_columns(
        _day(pl.col(DATE)).alias(_DAY),
        value.alias("value"),
        pl.when(pl.col(AMOUNT) < 0).then(-pl.col(AMOUNT)).otherwise(0.0).alias("refund"),
        order_key.alias(_ORDER),
    )


def orders(lines: pl.LazyFrame) -> pl.LazyFrame:
    """One row per (customer, order): the order frame later metrics (cohorts, payback) build on.

    Columns: customer_id, order_key, day (Int32 days since 1970-01-01, the order's first day), net
    (money after refunds), refund (refunded money, positive), value (margin), first_seq (reading order),
    order_channel, is_purchase (Int32 1/0).

    An order is a purchase when it is not fully refunded: net > 0, or a zero-value order with no
    refund (PRODUCT §4.1).
    """
    grouped = lines.group_by(CUSTOMER_ID, _ORDER).agg(
        pl.col(_DAY).min(),
        pl.col(AMOUNT).sum().alias("net"),
        pl.col("refund").sum(),
        pl.col("value").sum(),
        pl.col(SEQ).min().alias("first_seq"),
        pl.col(CHANNEL).min().alias("order_channel"),
    )
    purchase = (pl.col("net") > 0) | ((pl.col("net") == 0) & (pl.col("refund") == 0))
    return grouped.with_columns(purchase.cast(pl.Int32).alias("is_purchase"))


def order_frame(tx: pl.LazyFrame, *, margin_rate: float = 1.0) -> pl.LazyFrame:
    """The order frame (see `orders`) straight from the canonical transactions."""
    return orders(order_lines(tx, margin_rate=margin_rate))


def first_order_channel(order_frame: pl.LazyFrame) -> pl.LazyFrame:
    """customer_id -> channel of the first purchase (first order of any kind when none)."""
    key = (
        (1 - pl.col("is_purchase")).cast(pl.Int64) * 10**17
        + (pl.col(_DAY).cast(pl.Int64) + 100_000) * 10**10
        + pl.col("first_seq").cast(pl.Int64)
    )
    keyed = order_frame.with_columns(key.alias(_KEY))
    first = keyed.group_by(CUSTOMER_ID).agg(pl.col(_KEY).min())
    return first.join(keyed.select(CUSTOMER_ID, _KEY, "order_channel"), on=[CUSTOMER_ID, _KEY]).select(
        CUSTOMER_ID, pl.col("order_channel").alias(CHANNEL)
    )


def customer_summary(
    tx: pl.LazyFrame,
    *,
    as_of: dt.date,
    margin_rate: float = 1.0,
    unit_days: float = 7.0,
    period: str = "month",
    channels: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """The per-customer table of PRODUCT §4.1 (before ranking), plus `monetary_value` for the models.

    Money in the input currency; days as integers; frequency, recency and T in model time units of
    `unit_days` days. `channels` (customer_id, channel) overrides first-order attribution.
    """
    return summary_from_orders(
        order_frame(tx, margin_rate=margin_rate),
        as_of=as_of,
        unit_days=unit_days,
        period=period,
        channels=channels,
    )


def summary_from_orders(
    order_rows: pl.LazyFrame,
    *,
    as_of: dt.date,
    unit_days: float = 7.0,
    period: str = "month",
    channels: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """customer_summary from an order frame that is already built (see `order_frame`)."""
    per_day = (
        order_rows.group_by(CUSTOMER_ID, _DAY)
        .agg(
            pl.col("is_purchase").max().alias("__pday"),
            pl.col("is_purchase").sum().alias("orders"),
            pl.col("net").sum(),
            pl.col("refund").sum(),
            pl.col("value").sum(),
        )
        .with_columns(pl.when(pl.col("__pday") == 1).then(pl.col(_DAY)).otherwise(None).alias("__pd"))
        .with_columns(pl.col("__pd").min().over(CUSTOMER_ID).alias("__first_pd"))
        .with_columns(
            # Spend per purchase day (PRODUCT §5.1): the day's net amount; the first day kept apart.
            pl.when(pl.col("__pday") == 1).then(pl.col("net")).otherwise(0.0).alias("__pnet"),
            pl.when(pl.col(_DAY) == pl.col("__first_pd")).then(pl.col("net")).otherwise(0.0).alias("__fnet"),
        )
    )
    per_customer = per_day.group_by(CUSTOMER_ID).agg(
        pl.col("__pday").sum().alias("__purchase_days"),
        pl.col("orders").sum(),
        pl.col("net").sum().alias("revenue"),
        pl.col("refund").sum().alias("refunds"),
        pl.col("value").sum().alias("historic_clv"),
        pl.col("__pd").min().alias("__first_p"),
        pl.col("__pd").max().alias("__last_p"),
        pl.col(_DAY).min().alias("__first_any"),
        pl.col(_DAY).max().alias("__last_any"),
        pl.col("__pnet").sum(),
        pl.col("__fnet").sum(),
    )
    attribution = first_order_channel(order_rows)
    out = per_customer.join(attribution, on=CUSTOMER_ID, how="left")
    if channels is not None:
        out = out.join(
            channels.select(CUSTOMER_ID, pl.col(CHANNEL).alias("__override")),
            on=CUSTOMER_ID,
            how="left",
        ).with_columns(pl.coalesce("__override", CHANNEL).alias(CHANNEL))
    as_of_day = (as_of - dt.date(1970, 1, 1)).days
    first = pl.coalesce("__first_p", "__first_any")
    last = pl.coalesce("__last_p", "__last_any")
    has_purchase = pl.col("__purchase_days") > 0
    unit = float(unit_days)
    first_date = first.cast(pl.Date)
    return out.select(
        pl.col(CUSTOMER_ID),
        pl.col(CHANNEL).fill_null(UNATTRIBUTED),
        period_label(first_date, period).alias("cohort"),
        first_date.alias("first_order"),
        last.cast(pl.Date).alias("last_order"),
        pl.col("orders").cast(pl.Int64),
        # Money sums rounded to 1e-9: parallel float sums differ in the last bits between runs, and
        # everything downstream (shares, fits, output) must be identical for identical inputs.
        pl.col("revenue").round(9),
        pl.col("refunds").round(9),
        pl.when(pl.col("orders") > 0)
        .then(pl.col("revenue") / pl.col("orders").cast(pl.Float64))
        .otherwise(None)
        .alias("aov"),
        (pl.lit(as_of_day) - last).cast(pl.Int64).alias("days_since_last"),
        (pl.lit(as_of_day) - first).cast(pl.Int64).alias("tenure_days"),
        pl.when(has_purchase).then(pl.col("__purchase_days") - 1).cast(pl.Int64).alias("frequency"),
        pl.when(has_purchase)
        .then((pl.col("__last_p") - pl.col("__first_p")).cast(pl.Float64) / unit)
        .alias("recency"),
        pl.when(has_purchase)
        .then((pl.lit(as_of_day) - pl.col("__first_p")).cast(pl.Float64) / unit)
        .alias("T"),
        pl.col("historic_clv").round(9),
        # Gamma-Gamma input: mean spend over repeat purchase days (first excluded); null for x = 0.
        pl.when(pl.col("__purchase_days") > 1)
        .then(
            ((pl.col("__pnet") - pl.col("__fnet")) / (pl.col("__purchase_days") - 1).cast(pl.Float64)).round(
                9
            )
        )
        .alias("monetary_value"),
    ).sort(CUSTOMER_ID)  # a fixed order: sums and fits downstream then repeat to the last bit
