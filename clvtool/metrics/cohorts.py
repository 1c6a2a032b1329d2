"""Cohort matrices (PRODUCT §4.3): cohort = calendar period of the first order, column k = k periods later.

Metrics per cell (cohort m, column k):
- retention: share of the cohort's customers with a purchase in period m+k (fraction 0..1);
- active: number of the cohort's customers with a purchase in period m+k;
- revenue / value: the cohort's net revenue / value (margin) of the orders placed in period m+k (totals);
- cumulative-value: the cohort's value from period m to m+k per cohort customer (money per customer);
- cumulative-value-minus-cac: cumulative-value minus the cohort's mean acquisition cost (crosses zero at
  payback); needs a per-customer `cac` column.

Cells a cohort has not reached by the as-of date are null, never zero; the as-of period itself counts as
reached (it may be partial). The weighted-average row of column k is the customer-weighted mean of that
column over the cohorts that reached k. The heavy part is two plain group-bys over the order frame
(customer-period, then cohort-period; SQL-portable, STYLE habit 2); the grid, cumulative sums and the
pivot run on the small cohort-by-period result after collect.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import polars as pl

from clvtool.errors import UsageError
from clvtool.io.schema import CUSTOMER_ID
from clvtool.metrics.periods import PERIODS, period_index, period_label

RETENTION = "retention"
ACTIVE = "active"
REVENUE = "revenue"
VALUE = "value"
CUMULATIVE_VALUE = "cumulative-value"
CUMULATIVE_VALUE_MINUS_CAC = "cumulative-value-minus-cac"
METRICS = (RETENTION, ACTIVE, REVENUE, VALUE, CUMULATIVE_VALUE, CUMULATIVE_VALUE_MINUS_CAC)

AVERAGE_LABEL = "weighted average"

# The unit each metric's cells are in, for captions and number formatting.
METRIC_UNITS: dict[str, str] = {
    RETENTION: "fraction",
    ACTIVE: "count",
    REVENUE: "money",
    VALUE: "money",
    CUMULATIVE_VALUE: "money",
    CUMULATIVE_VALUE_MINUS_CAC: "money",
}

_IDX = "cohort_index"
_K = "period"


@dataclass(frozen=True)
class CohortResult:
    """One cohort matrix in long and wide form, with the weighted-average row."""

    period: str  # month | week | quarter
    metric: str  # one of METRICS
    as_of_period: str  # label of the period holding the as-of date (the last reached column of a row)
    long: pl.DataFrame  # cohort, customers, period, value: reached cells only, by cohort then period
    wide: pl.DataFrame  # cohort, customers, "0", "1", ...: null where the cohort has not reached k
    average: pl.DataFrame  # period, value, cohorts, customers: per k, over the cohorts that reached k

    @property
    def unit(self) -> str:
        return METRIC_UNITS[self.metric]

    def average_row(self) -> pl.DataFrame:
        """The weighted-average row in the columns of `wide` (cohort = 'weighted average')."""
        values = dict(zip(self.average[_K].to_list(), self.average["value"].to_list(), strict=True))
        row: dict[str, Any] = {"cohort": AVERAGE_LABEL, "customers": int(self.wide["customers"].sum())}
        schema: dict[str, pl.DataType] = {"cohort": pl.String(), "customers": pl.Int64()}
        for name in self.wide.columns[2:]:
            row[name] = values.get(int(name))
            schema[name] = pl.Float64()
        return pl.DataFrame([row], schema=schema)

    def to_json(self) -> dict[str, Any]:
        """{"period", "metric", "as_of_period", "cells": long records, "average": per-column records}."""
        return {
            "period": self.period,
            "metric": self.metric,
            "as_of_period": self.as_of_period,
            "cells": self.long.to_dicts(),
            "average": self.average.to_dicts(),
        }


def _check(period: str, metric: str, customers: pl.DataFrame) -> None:
    if period not in PERIODS:
        raise UsageError(f"--period {period!r} is not a period; choose one of {', '.join(PERIODS)}.")
    if metric not in METRICS:
        raise UsageError(f"--metric {metric!r} is not a cohort metric; choose one of {', '.join(METRICS)}.")
    if metric == CUMULATIVE_VALUE_MINUS_CAC and "cac" not in customers.columns:
        raise UsageError(
            f"--metric {metric} needs the acquisition cost of each customer; configure a marketing spend "
            "file (spend: path) or choose --metric cumulative-value."
        )


def _members(customers: pl.DataFrame, period: str, with_cac: bool) -> pl.DataFrame:
    """customer_id, cohort index and label, and cac (missing cac counts as 0) of every customer."""
    first = pl.col("first_order")
    columns = [
        pl.col(CUSTOMER_ID),
        period_index(first, period).cast(pl.Int64).alias(_IDX),
        period_label(first, period).alias("cohort"),
    ]
    if with_cac:
        columns.append(pl.col("cac").cast(pl.Float64).fill_null(0.0).alias("cac"))
    return customers.filter(first.is_not_null()).select(columns)


def _as_of_index(as_of: dt.date, period: str) -> tuple[int, str]:
    row = pl.select(
        period_index(pl.lit(as_of), period).cast(pl.Int64).alias("i"),
        period_label(pl.lit(as_of), period).alias("label"),
    ).row(0)
    return int(row[0]), str(row[1])


def cohort_cells(orders: pl.LazyFrame, members: pl.DataFrame, period: str, as_of_index: int) -> pl.DataFrame:
    """Per (cohort index, k): active customers, revenue (net) and value of the period's orders.

    Two plain group-bys over the order frame. Orders dated before the customer's first purchase (a
    refunded order can be) count in column 0, so cohort totals reconcile with the customers table.
    """
    order_period = period_index(pl.col("day").cast(pl.Date), period).cast(pl.Int64)
    per_customer = (
        orders.join(members.lazy().select(CUSTOMER_ID, _IDX), on=CUSTOMER_ID, how="inner")
        .with_columns(pl.max_horizontal(order_period - pl.col(_IDX), pl.lit(0, dtype=pl.Int64)).alias(_K))
        .filter(pl.col(_K) <= pl.lit(as_of_index) - pl.col(_IDX))
        .group_by(CUSTOMER_ID, _IDX, _K)
        .agg(
            pl.col("is_purchase").max().alias("__bought"),
            pl.col("net").sum().alias("__revenue"),
            pl.col("value").sum().alias("__value"),
        )
    )
    return (
        per_customer.group_by(_IDX, _K)
        .agg(
            pl.col("__bought").sum().cast(pl.Int64).alias("active"),
            pl.col("__revenue").sum().alias("revenue"),
            pl.col("__value").sum().alias("value"),
        )
        .collect()
    )


def _grid(sizes: pl.DataFrame, as_of_index: int) -> pl.DataFrame:
    """Every reached (cohort, k): k from 0 to the as-of period."""
    reach = pl.lit(as_of_index, dtype=pl.Int64) - pl.col(_IDX)
    return (
        sizes.filter(reach >= 0)
        .with_columns(pl.int_ranges(0, reach + 1, dtype=pl.Int64).alias(_K))
        .explode(_K)
    )


def _metric_expr(metric: str) -> pl.Expr:
    customers = pl.col("customers").cast(pl.Float64)
    if metric == RETENTION:
        return pl.col("active").cast(pl.Float64) / customers
    if metric == ACTIVE:
        return pl.col("active")
    if metric == REVENUE:
        return pl.col("revenue")
    if metric == VALUE:
        return pl.col("value")
    cumulative = pl.col("value").cum_sum().over(_IDX, order_by=_K) / customers
    if metric == CUMULATIVE_VALUE:
        return cumulative
    return cumulative - pl.col("cac_total") / customers


def _wide(long: pl.DataFrame, columns: int) -> pl.DataFrame:
    names = [str(k) for k in range(columns)]
    if long.height == 0:
        return pl.DataFrame(schema={"cohort": pl.String, "customers": pl.Int64})
    wide = long.with_columns(pl.col(_K).cast(pl.String)).pivot(
        on=_K, index=["cohort", "customers"], values="value", maintain_order=True
    )
    return wide.select("cohort", "customers", *names)


def _average(long: pl.DataFrame) -> pl.DataFrame:
    """Customer-weighted mean of each column over the cohorts that reached it."""
    weight = pl.col("customers").cast(pl.Float64)
    return (
        long.group_by(_K)
        .agg(
            ((pl.col("value").cast(pl.Float64) * weight).sum() / weight.sum()).alias("value"),
            pl.len().cast(pl.Int64).alias("cohorts"),
            pl.col("customers").sum().cast(pl.Int64).alias("customers"),
        )
        .sort(_K)
    )


def cohort_matrix(
    orders: pl.LazyFrame,
    customers: pl.DataFrame,
    *,
    period: str,
    metric: str,
    as_of: dt.date,
) -> CohortResult:
    """The cohort matrix of `metric` by `period` from the order frame and the per-customer summary.

    `orders` is `customers.order_frame(...)`; `customers` needs customer_id and first_order (Date), and
    `cac` for cumulative-value-minus-cac. Every customer of the summary belongs to the cohort of the
    period of its first order.
    """
    _check(period, metric, customers)
    with_cac = metric == CUMULATIVE_VALUE_MINUS_CAC
    members = _members(customers, period, with_cac)
    as_of_index, as_of_label = _as_of_index(as_of, period)
    sizes = (
        members.group_by(_IDX, "cohort")
        .agg(
            pl.len().cast(pl.Int64).alias("customers"),
            *([pl.col("cac").sum().alias("cac_total")] if with_cac else []),
        )
        .sort(_IDX)
    )
    cells = cohort_cells(orders, members, period, as_of_index)
    grid = (
        _grid(sizes, as_of_index)
        .join(cells, on=[_IDX, _K], how="left")
        .with_columns(
            pl.col("active").fill_null(0),
            pl.col("revenue").fill_null(0.0),
            pl.col("value").fill_null(0.0),
        )
        .sort(_IDX, _K)
    )
    long = grid.select("cohort", "customers", pl.col(_K), _metric_expr(metric).alias("value"), _IDX).sort(
        _IDX, _K
    )
    columns = int(as_of_index - sizes[_IDX].min() + 1) if sizes.height else 0
    long = long.drop(_IDX)
    return CohortResult(
        period=period,
        metric=metric,
        as_of_period=as_of_label,
        long=long,
        wide=_wide(long, max(columns, 0)),
        average=_average(long),
    )
