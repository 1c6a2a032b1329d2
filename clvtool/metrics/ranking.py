"""Ranking customers by a metric: rank, share of the metric's total, running share, ABC class."""

from __future__ import annotations

import polars as pl

from clvtool.io.schema import CUSTOMER_ID

PARETO_A = 0.80  # A: the customers that make the first 80 % of the total
PARETO_B = 0.95  # B: the next 15 %; C: the rest


def rank_customers(customers: pl.DataFrame, sort: str, *, descending: bool, share_of: str) -> pl.DataFrame:
    """Sort by `sort` (ties by customer_id, nulls last), number the rows, and add the share columns.

    Shares are of `share_of`, clipped at zero (a customer cannot hold a negative share). A customer is
    class A while the running share before it is below 80 %, B below 95 %, else C. Works on the small
    per-customer frame, after collect.
    """
    if customers[CUSTOMER_ID].is_sorted():  # a stable sort by the metric keeps id order in ties
        ordered = customers.sort(sort, descending=descending, nulls_last=True, maintain_order=True)
    else:
        ordered = customers.sort(
            [sort, CUSTOMER_ID], descending=[descending, False], nulls_last=True, maintain_order=True
        )
    positive = pl.col(share_of).fill_null(0).clip(lower_bound=0).cast(pl.Float64)
    total = positive.sum()
    share = pl.when(total > 0).then(positive / total).otherwise(0.0)
    ranked = ordered.with_columns(
        pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("rank"),
        share.alias("share"),
    ).with_columns(pl.col("share").cum_sum().alias("cumulative_share"))
    before = pl.col("cumulative_share") - pl.col("share")
    klass = (
        pl.when(pl.col("share") <= 0)
        .then(pl.lit("C"))
        .when(before < PARETO_A - 1e-12)
        .then(pl.lit("A"))
        .when(before < PARETO_B - 1e-12)
        .then(pl.lit("B"))
        .otherwise(pl.lit("C"))
    )
    return ranked.with_columns(klass.alias("pareto_class"))
