"""The `customers` table: summary (§4.1) plus ranking, with column selection and sorting rules."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from clvtool.config import Settings
from clvtool.errors import UsageError
from clvtool.io.schema import CUSTOMER_ID
from clvtool.metrics.acquisition import Acquisition, allocate_spend, payback_days
from clvtool.metrics.customers import CUSTOMER_COLUMNS, customer_summary, order_frame
from clvtool.metrics.ranking import rank_customers

RANK_COLUMNS = ("rank", "share", "cumulative_share", "pareto_class")
ACQUISITION_COLUMNS = ("cac", "net_value", "payback_days", "left_censored")
# Column order of the customers table: summary, acquisition, then the ranking.
METRIC_COLUMNS = (
    *CUSTOMER_COLUMNS[: CUSTOMER_COLUMNS.index("historic_clv")],
    "cac",
    "historic_clv",
    "net_value",
    "payback_days",
    "left_censored",
)
DEFAULT_VALUE_METRIC = "historic_clv"
# What a terminal table shows when --columns is not given: the full table rarely fits a screen.
TERMINAL_COLUMNS = (
    "rank",
    "customer_id",
    "channel",
    "cohort",
    "orders",
    "revenue",
    "historic_clv",
    "pareto_class",
    "cumulative_share",
    "days_since_last",
)


def parse_sort(spec: str | None, available: list[str], schema: pl.Schema) -> tuple[str, bool]:
    """'revenue', 'revenue:asc' or 'revenue:desc' -> (column, descending).

    Numbers sort descending by default (best first); text and dates ascending.
    """
    if not spec:
        return DEFAULT_VALUE_METRIC, True
    name, _, direction = spec.partition(":")
    name = name.strip()
    if name not in available:
        raise UsageError(f"--sort {name!r} is not a column; choose one of {', '.join(available)}.")
    if direction not in ("", "asc", "desc"):
        raise UsageError(f"--sort {spec!r}: the direction after ':' must be asc or desc.")
    descending = schema[name].is_numeric() if not direction else direction == "desc"
    return name, descending


def select_columns(spec: str | None, available: list[str]) -> list[str]:
    """--columns a,b,c -> validated list (all columns when not given)."""
    if not spec:
        return available
    wanted = [c.strip() for c in spec.split(",") if c.strip()]
    unknown = [c for c in wanted if c not in available]
    if unknown:
        raise UsageError(f"--columns: unknown column {unknown[0]!r}; available: {', '.join(available)}.")
    return wanted


def empty_summary(period: str) -> pl.DataFrame:
    """A customers table with no rows but every column typed (header-only input)."""
    empty = pl.DataFrame(
        schema={
            "customer_id": pl.String,
            "date": pl.Date,
            "amount": pl.Float64,
            "order_id": pl.String,
            "channel": pl.String,
            "_seq": pl.UInt32,
        }
    )
    return customer_summary(empty.lazy(), as_of=dt.date(1970, 1, 1), period=period).collect()


@dataclass
class CustomerMetrics:
    """The per-customer frame (every column but the ranking) and the spend allocation behind it."""

    frame: pl.DataFrame
    acquisition: Acquisition | None


def customer_metrics(
    tx: pl.DataFrame,
    settings: Settings,
    *,
    as_of: dt.date | None,
    channels: pl.DataFrame | None = None,
    spend: pl.DataFrame | None = None,
    data_start: dt.date | None = None,
) -> CustomerMetrics:
    """Summary (§4.1) plus acquisition columns (§4.2): cac, net_value, payback_days, left_censored.

    Without spend the acquisition columns are present but empty, so the table's shape never changes.
    """
    analysis = settings.analysis
    if as_of is None or tx.height == 0:
        summary = empty_summary(analysis.period)
    else:
        summary = customer_summary(
            tx.lazy(),
            as_of=as_of,
            margin_rate=analysis.margin_rate,
            unit_days=settings.model.unit_days,
            period=analysis.period,
            channels=channels.lazy() if channels is not None else None,
        ).collect()
    start = data_start or summary["first_order"].min() or dt.date(1970, 1, 1)
    acq = None
    if spend is not None and as_of is not None:
        acq = allocate_spend(
            summary,
            spend,
            period=analysis.period,
            mode=analysis.cac_mode,
            data_start=start,
            as_of=as_of,
            aliases=analysis.channel_aliases,
            left_censor_days=analysis.left_censor_days,
        )
        payback = payback_days(order_frame(tx.lazy(), margin_rate=analysis.margin_rate), acq.customers)
        summary = (
            summary.join(acq.customers.select(CUSTOMER_ID, "cac"), on=CUSTOMER_ID, how="left")
            .join(payback, on=CUSTOMER_ID, how="left")
            .with_columns((pl.col("historic_clv") - pl.col("cac")).alias("net_value"))
        )
    else:
        summary = summary.with_columns(
            pl.lit(None, pl.Float64).alias("cac"),
            pl.lit(None, pl.Int64).alias("payback_days"),
            pl.lit(None, pl.Float64).alias("net_value"),
        )
    censor_end = start + dt.timedelta(days=analysis.left_censor_days)
    summary = summary.with_columns((pl.col("first_order") < censor_end).alias("left_censored"))
    return CustomerMetrics(summary.select(METRIC_COLUMNS), acq)


def customers_table(metrics: pl.DataFrame, *, sort: str | None = None) -> pl.DataFrame:
    """Every column of the customers table, ranked by the sort metric (PRODUCT §4.1)."""
    summary = metrics
    available = [*METRIC_COLUMNS, *RANK_COLUMNS]
    column, descending = parse_sort(sort, available, summary.schema | {"rank": pl.Int64()})
    if column in RANK_COLUMNS:  # the ranking itself: best first
        column, descending = DEFAULT_VALUE_METRIC, True
    # Rank, shares and classes always run from the best customer by the metric down; the sort
    # direction only changes the order rows are listed in. Text and date columns rank by value.
    share_of = column if summary.schema[column].is_numeric() else DEFAULT_VALUE_METRIC
    ranked = rank_customers(summary, share_of, descending=True, share_of=share_of)
    if (column, descending) != (share_of, True):
        ranked = ranked.sort(
            [column, "rank"], descending=[descending, False], nulls_last=True, maintain_order=True
        )
    return ranked.select(available)
