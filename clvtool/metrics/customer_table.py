"""The `customers` table: summary (§4.1) plus ranking, with column selection and sorting rules."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import polars as pl

from clvtool.config import Settings
from clvtool.errors import UsageError
from clvtool.frames import OrderedFrame
from clvtool.io.schema import CUSTOMER_ID
from clvtool.metrics.acquisition import Acquisition, allocate_spend, payback_days
from clvtool.metrics.columns import PREDICTION_COLUMNS
from clvtool.metrics.customers import CUSTOMER_COLUMNS, build_orders, summarise
from clvtool.metrics.ranking import ranking
from clvtool.metrics.retention import (
    RetentionSummary,
    Thresholds,
    churn_status,
    retention_summary,
    thresholds_from_gaps,
)
from clvtool.metrics.segments import (
    SMALL_SAMPLE,
    SegmentMap,
    default_segment_map,
    parse_segment_map,
    rfm_scores,
)

if TYPE_CHECKING:
    from clvtool.models.predictions import Predictions

RANK_COLUMNS = ("rank", "share", "cumulative_share", "pareto_class")
ACQUISITION_COLUMNS = ("cac", "net_value", "payback_days", "left_censored")
# Column order of the customers table: summary, churn status, acquisition, segments, then the ranking.
METRIC_COLUMNS = (
    *CUSTOMER_COLUMNS[: CUSTOMER_COLUMNS.index("historic_clv")],
    "status",
    "cac",
    "historic_clv",
    "net_value",
    "payback_days",
    "left_censored",
    "p_alive",
    "expected_orders",
    "predicted_clv",
    "total_clv",
    "net_clv",
    "rfm",
    "segment",
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


@dataclass
class CustomerMetrics:
    """Per-customer metrics and what was computed on the way, for every command to reuse."""

    frame: pl.DataFrame  # METRIC_COLUMNS plus monetary_value (model input)
    order_rows: Callable[[], pl.DataFrame]  # builds the order frame (metrics.customers.build_orders)
    acquisition: Acquisition | None
    retention: RetentionSummary
    segment_map: SegmentMap
    warnings: list[str]
    predictions: Predictions | None = None

    @functools.cached_property
    def orders(self) -> pl.DataFrame:
        """The order frame, built on first use: only cohorts and payback need it."""
        return self.order_rows()

    @property
    def default_sort(self) -> str:
        """total_clv when a model could be fitted, else historic_clv (PRODUCT §4.1)."""
        usable = self.predictions is not None and self.predictions.usable
        return (
            "total_clv"
            if usable and self.frame["total_clv"].null_count() < self.frame.height
            else "historic_clv"
        )


def customer_metrics(
    tx: pl.DataFrame,
    settings: Settings,
    *,
    as_of: dt.date | None,
    channels: pl.DataFrame | None = None,
    spend: pl.DataFrame | None = None,
    data_start: dt.date | None = None,
    predict: bool = True,
) -> CustomerMetrics:
    """Summary (§4.1), churn status (§4.3), acquisition (§4.2) and RFM segments (§4.5) per customer.

    Without spend the acquisition columns are present but empty, so the table's shape never changes.
    """
    analysis = settings.analysis
    segment_map = (
        parse_segment_map(analysis.segments, analysis.segment_actions)
        if analysis.segments
        else default_segment_map()
    )
    if as_of is None or tx.height == 0:
        tx = _EMPTY_TX
        as_of = as_of or dt.date(1970, 1, 1)
    built = summarise(
        tx,
        as_of=as_of,
        margin_rate=analysis.margin_rate,
        unit_days=settings.model.unit_days,
        period=analysis.period,
        channels=channels,
    )
    summary, gaps = built.frame, built.gaps
    del built
    cached: list[pl.DataFrame] = []

    def order_rows() -> pl.DataFrame:
        if not cached:
            cached.append(build_orders(tx, margin_rate=analysis.margin_rate))
        return cached[0]

    start = data_start or summary["first_order"].min() or dt.date(1970, 1, 1)
    acq = None
    if spend is not None:
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
        cac = acq.customers["cac"]  # the summary's rows, in its order (allocate_spend keeps them)
        payback = payback_days(order_rows().lazy(), summary.select(CUSTOMER_ID, "first_order", cac))
        summary = (
            summary.with_columns(cac)
            .join(payback, on=CUSTOMER_ID, how="left", maintain_order="left")
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
    predictions = None
    model = settings.model
    # Churn status and RFM need only days, orders and revenue: they are found in a second thread
    # while the models fit.
    rfm_input = summary.select(CUSTOMER_ID, "days_since_last", "orders", "revenue")

    def status(gaps: pl.Series) -> tuple[Thresholds, pl.Series]:
        thresholds = thresholds_from_gaps(gaps, analysis.churn_days)
        return thresholds, churn_status(rfm_input.select("days_since_last"), thresholds)["status"]

    with ThreadPoolExecutor(max_workers=1) as pool:
        status_job = pool.submit(status, gaps)
        rfm_job = pool.submit(rfm_scores, rfm_input, segment_map)
        if predict and model.purchase_model != "none" and summary.height:
            from clvtool.models.predictions import predict_customers

            predictions = predict_customers(
                summary,
                model=model.purchase_model,
                time_unit=model.time_unit,
                horizon_months=model.horizon_months,
                discount_rate=model.discount_rate,
            )
            # Prediction columns come in summary row order.
            summary = summary.with_columns(predictions.columns.select(PREDICTION_COLUMNS))
        else:
            summary = summary.with_columns(pl.lit(None, pl.Float64).alias(c) for c in PREDICTION_COLUMNS)
        rfm = rfm_job.result().drop(rfm_input.columns)
        thresholds, status_column = status_job.result()
    del gaps
    summary = summary.with_columns(
        status_column,
        (pl.col("historic_clv") + pl.col("predicted_clv")).alias("total_clv"),
    ).with_columns((pl.col("total_clv") - pl.col("cac")).alias("net_clv"))
    scored = pl.concat([summary, rfm], how="horizontal")
    warnings = []
    if 0 < scored.height < SMALL_SAMPLE:
        warnings.append(
            f"only {scored.height} customers: RFM quintiles are defined but say little with fewer than {SMALL_SAMPLE}"
        )
    frame = scored.select(*METRIC_COLUMNS, "monetary_value")
    return CustomerMetrics(
        frame, order_rows, acq, retention_summary(frame, thresholds), segment_map, warnings, predictions
    )


_EMPTY_TX = pl.DataFrame(
    schema={
        "customer_id": pl.String,
        "date": pl.Date,
        "amount": pl.Float64,
        "order_id": pl.String,
        "channel": pl.String,
        "_seq": pl.UInt32,
    }
)


def customers_table(
    metrics: pl.DataFrame, *, sort: str | None = None, default: str = DEFAULT_VALUE_METRIC
) -> pl.DataFrame:
    """Every column of the customers table, ranked by the sort metric (PRODUCT §4.1).

    `default` is the value metric used without --sort and for ranking by text or date columns.
    """
    return ranked_table(metrics, sort=sort, default=default).collect()


def ranked_table(
    metrics: pl.DataFrame, *, sort: str | None = None, default: str = DEFAULT_VALUE_METRIC
) -> OrderedFrame:
    """customers_table as an OrderedFrame: the rows are put in order only as they are written."""
    summary = metrics.drop("monetary_value", strict=False)
    available = [*METRIC_COLUMNS, *RANK_COLUMNS]
    column, descending = parse_sort(sort, available, summary.schema | {"rank": pl.Int64()})
    if not sort or column in RANK_COLUMNS:  # the ranking itself: best first
        column, descending = default, True
    # Rank, shares and classes always run from the best customer by the metric down; the sort
    # direction only changes the order rows are listed in. Text and date columns rank by value.
    share_of = column if summary.schema[column].is_numeric() else default
    ranks = ranking(summary, share_of, descending=True, share_of=share_of)
    ranked = OrderedFrame.of(summary, ranks.order, ranks.columns)
    if (column, descending) != (share_of, True):
        # Stable: rows that tie on the column stay in rank order.
        ranked = ranked.sort(column, descending=descending)
    return ranked.select(available)
