"""Engine tests of the cohort matrices (PRODUCT §4.3) against hand-computed numbers."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import pytest

from clvtool.errors import UsageError
from clvtool.io.schema import SEQ
from clvtool.io.transactions import CANONICAL_TYPES
from clvtool.metrics.cohorts import AVERAGE_LABEL, CohortResult, cohort_matrix
from clvtool.metrics.customers import customer_summary, order_frame

D = dt.date
AS_OF = D(2024, 3, 15)

# Three monthly cohorts. f's February order is fully refunded (not a purchase), so f's cohort is March
# (first purchase) and that order's net 0 counts in column 0.
ROWS = [
    ("a", D(2024, 1, 5), 10.0, "a1"),
    ("a", D(2024, 2, 10), 20.0, "a2"),
    ("a", D(2024, 3, 1), 5.0, "a3"),
    ("b", D(2024, 1, 20), 30.0, "b1"),
    ("c", D(2024, 1, 25), 8.0, "c1"),
    ("c", D(2024, 3, 10), 12.0, "c2"),
    ("d", D(2024, 2, 2), 40.0, "d1"),
    ("d", D(2024, 2, 20), 10.0, "d2"),
    ("e", D(2024, 3, 3), 7.0, "e1"),
    ("f", D(2024, 2, 14), 50.0, "f1"),
    ("f", D(2024, 2, 16), -50.0, "f1"),
    ("f", D(2024, 3, 5), 25.0, "f2"),
]


def tx(rows: list[tuple[str, dt.date, float, str | None]]) -> pl.LazyFrame:
    """Canonical transactions from (customer_id, date, amount, order_id) rows, in order."""
    cols = ("customer_id", "date", "amount", "order_id")
    frame = pl.DataFrame(rows, schema={c: CANONICAL_TYPES[c] for c in cols}, orient="row")
    return frame.with_columns(
        pl.lit(None, dtype=pl.String).alias("channel"),
        pl.int_range(0, pl.len(), dtype=pl.UInt32).alias(SEQ),
    ).lazy()


def matrix(
    metric: str,
    *,
    rows: list[tuple[str, dt.date, float, str | None]] = ROWS,
    period: str = "month",
    as_of: dt.date = AS_OF,
    margin_rate: float = 1.0,
    cac: dict[str, float | None] | None = None,
) -> CohortResult:
    lf = tx(rows)
    customers = customer_summary(lf, as_of=as_of, margin_rate=margin_rate, period=period).collect()
    if cac is not None:
        customers = customers.with_columns(
            pl.col("customer_id").replace_strict(cac, return_dtype=pl.Float64, default=None).alias("cac")
        )
    return cohort_matrix(
        order_frame(lf, margin_rate=margin_rate), customers, period=period, metric=metric, as_of=as_of
    )


def cells(result: CohortResult) -> dict[str, list[Any]]:
    """cohort -> the row of k cells (None where not reached)."""
    return {row[0]: list(row[2:]) for row in result.wide.iter_rows()}


def approx_rows(actual: dict[str, list[Any]], expected: dict[str, list[Any]]) -> None:
    assert list(actual) == list(expected)
    for cohort, row in expected.items():
        got = actual[cohort]
        assert len(got) == len(row), cohort
        for g, e in zip(got, row, strict=True):
            if e is None:
                assert g is None, (cohort, got)
            else:
                assert g == pytest.approx(e), (cohort, got)


def test_retention_matrix_by_hand() -> None:
    result = matrix("retention")
    assert result.wide.columns == ["cohort", "customers", "0", "1", "2"]
    assert result.wide["customers"].to_list() == [3, 1, 2]
    approx_rows(
        cells(result),
        {
            "2024-01": [1.0, 1 / 3, 2 / 3],
            "2024-02": [1.0, 0.0, None],
            "2024-03": [1.0, None, None],
        },
    )
    assert result.as_of_period == "2024-03"
    assert result.unit == "fraction"


def test_active_matrix_by_hand() -> None:
    result = matrix("active")
    assert cells(result) == {"2024-01": [3, 1, 2], "2024-02": [1, 0, None], "2024-03": [2, None, None]}


def test_revenue_matrix_by_hand() -> None:
    approx_rows(
        cells(matrix("revenue")),
        {"2024-01": [48.0, 20.0, 17.0], "2024-02": [50.0, 0.0, None], "2024-03": [32.0, None, None]},
    )


def test_value_uses_margin_not_revenue() -> None:
    approx_rows(
        cells(matrix("value", margin_rate=0.5)),
        {"2024-01": [24.0, 10.0, 8.5], "2024-02": [25.0, 0.0, None], "2024-03": [16.0, None, None]},
    )


def test_cumulative_value_is_per_customer_and_carries_forward() -> None:
    approx_rows(
        cells(matrix("cumulative-value")),
        {"2024-01": [16.0, 68 / 3, 85 / 3], "2024-02": [50.0, 50.0, None], "2024-03": [16.0, None, None]},
    )


def test_cumulative_value_minus_cac_subtracts_the_cohort_mean_cac() -> None:
    cac = {"a": 10.0, "b": 10.0, "c": 10.0, "d": 30.0, "e": 0.0, "f": None}  # missing cac counts as 0
    approx_rows(
        cells(matrix("cumulative-value-minus-cac", cac=cac)),
        {
            "2024-01": [6.0, 68 / 3 - 10, 85 / 3 - 10],
            "2024-02": [20.0, 20.0, None],
            "2024-03": [16.0, None, None],
        },
    )


def test_cumulative_value_minus_cac_without_cac_is_a_clear_error() -> None:
    with pytest.raises(UsageError, match="acquisition cost"):
        matrix("cumulative-value-minus-cac")


def test_unreached_cells_are_null_but_reached_empty_cells_are_zero() -> None:
    result = matrix("revenue")
    row_feb = cells(result)["2024-02"]
    assert row_feb[1] == 0.0  # reached (March), no orders: zero
    assert row_feb[2] is None  # April is after the as-of date: blank
    assert result.wide["2"].null_count() == 2


def test_weighted_average_uses_only_cohorts_that_reached_the_column() -> None:
    result = matrix("retention")
    avg = {row["period"]: row for row in result.average.iter_rows(named=True)}
    assert avg[0]["value"] == pytest.approx(1.0)
    assert avg[1]["value"] == pytest.approx((1 + 0) / (3 + 1))  # Jan and Feb cohorts only
    assert avg[2]["value"] == pytest.approx(2 / 3)  # January only
    assert [avg[k]["cohorts"] for k in (0, 1, 2)] == [3, 2, 1]
    assert [avg[k]["customers"] for k in (0, 1, 2)] == [6, 4, 3]

    active = matrix("active").average
    assert active["value"].to_list() == pytest.approx([(3 * 3 + 1 * 1 + 2 * 2) / 6, (3 * 1 + 1 * 0) / 4, 2.0])


def test_average_row_has_the_columns_of_the_wide_form() -> None:
    result = matrix("retention")
    row = result.average_row()
    assert row.columns == result.wide.columns
    assert row.row(0)[0] == AVERAGE_LABEL
    assert row.row(0)[1] == 6
    assert list(row.row(0)[2:]) == pytest.approx([1.0, 0.25, 2 / 3])


def test_long_form_holds_the_reached_cells_and_agrees_with_the_wide_form() -> None:
    result = matrix("revenue")
    assert result.long.columns == ["cohort", "customers", "period", "value"]
    assert result.long.height == 3 + 2 + 1
    wide = cells(result)
    for rec in result.long.iter_rows(named=True):
        assert wide[rec["cohort"]][rec["period"]] == pytest.approx(rec["value"])
    records = result.to_json()["cells"]
    assert records[0] == {"cohort": "2024-01", "customers": 3, "period": 0, "value": 48.0}


def test_cohort_revenue_reconciles_with_the_customers_table() -> None:
    lf = tx(ROWS)
    customers = customer_summary(lf, as_of=AS_OF).collect()
    result = cohort_matrix(order_frame(lf), customers, period="month", metric="revenue", as_of=AS_OF)
    assert result.long["value"].sum() == pytest.approx(customers["revenue"].sum())
    assert result.wide["customers"].sum() == customers.height


def test_week_cohorts_follow_iso_weeks() -> None:
    rows = [
        ("g", D(2024, 3, 10), 5.0, "g1"),  # Sunday of ISO week 10
        ("g", D(2024, 3, 11), 5.0, "g2"),  # Monday of week 11
        ("h", D(2024, 3, 11), 9.0, "h1"),
    ]
    result = matrix("retention", rows=rows, period="week", as_of=D(2024, 3, 12))
    approx_rows(cells(result), {"2024-W10": [1.0, 1.0], "2024-W11": [1.0, None]})


def test_quarter_cohorts() -> None:
    result = matrix("active", period="quarter")
    assert cells(result) == {"2024-Q1": [6]}


def test_as_of_period_counts_as_reached_even_if_partial() -> None:
    rows = [("a", D(2024, 1, 31), 5.0, "a1")]
    result = matrix("retention", rows=rows, as_of=D(2024, 2, 1))
    assert cells(result) == {"2024-01": [1.0, 0.0]}


def test_bad_metric_and_period_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="--metric"):
        matrix("ltv")
    lf = tx(ROWS)
    customers = customer_summary(lf, as_of=AS_OF).collect()
    with pytest.raises(UsageError, match="--period"):
        cohort_matrix(order_frame(lf), customers, period="year", metric="retention", as_of=AS_OF)


def test_no_customers_gives_empty_frames() -> None:
    lf = tx([])
    customers = customer_summary(lf, as_of=AS_OF).collect()
    result = cohort_matrix(order_frame(lf), customers, period="month", metric="retention", as_of=AS_OF)
    assert result.long.height == 0
    assert result.wide.columns == ["cohort", "customers"]
    assert result.average.height == 0
    assert result.average_row()["customers"].to_list() == [0]
