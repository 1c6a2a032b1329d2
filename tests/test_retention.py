"""Engine tests of churn thresholds, status, repeat rate and churn rate (PRODUCT §4.3)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clvtool.errors import ConfigError
from clvtool.io.schema import SEQ
from clvtool.io.transactions import CANONICAL_TYPES
from clvtool.metrics.customers import customer_summary, order_frame
from clvtool.metrics.retention import (
    Thresholds,
    churn_rate,
    churn_status,
    churn_thresholds,
    parse_churn_days,
    purchase_gaps,
    repeat_rate,
    retention_summary,
)

D = dt.date
AS_OF = D(2024, 3, 10)


def tx(rows: list[tuple[str, dt.date, float, str | None]]) -> pl.LazyFrame:
    """Canonical transactions from (customer_id, date, amount, order_id) rows, in order."""
    cols = ("customer_id", "date", "amount", "order_id")
    frame = pl.DataFrame(rows, schema={c: CANONICAL_TYPES[c] for c in cols}, orient="row")
    return frame.with_columns(
        pl.lit(None, dtype=pl.String).alias("channel"),
        pl.int_range(0, pl.len(), dtype=pl.UInt32).alias(SEQ),
    ).lazy()


# Gaps of repeat customers: a 31 and 33 days, c 29 days; b buys once.
ROWS = [
    ("a", D(2024, 1, 5), 10.0, "a1"),
    ("a", D(2024, 2, 5), 20.0, "a2"),
    ("a", D(2024, 3, 9), 1.0, "a3"),
    ("b", D(2024, 1, 20), 5.0, "b1"),
    ("c", D(2024, 2, 1), 7.0, "c1"),
    ("c", D(2024, 3, 1), 7.0, "c2"),
]


def customers(rows: list[tuple[str, dt.date, float, str | None]] = ROWS) -> pl.DataFrame:
    return customer_summary(tx(rows), as_of=AS_OF).collect().sort("customer_id")


def test_auto_thresholds_are_linear_percentiles_of_gaps() -> None:
    th = churn_thresholds(order_frame(tx(ROWS)))
    # gaps 29, 31, 33: 40th percentile 29 + 0.8 * 2, 80th 31 + 0.6 * 2
    assert th == Thresholds(pytest.approx(30.6), pytest.approx(32.2), "auto", 3)
    assert "80th percentiles of 3 gaps" in th.describe()


def test_same_day_orders_are_one_purchase_day_and_refunded_orders_no_purchase() -> None:
    rows = [
        ("a", D(2024, 1, 1), 10.0, "a1"),
        ("a", D(2024, 1, 1), 10.0, "a2"),  # same day: no zero gap
        ("a", D(2024, 1, 11), 10.0, "a3"),
        ("a", D(2024, 1, 15), 10.0, "a4"),  # fully refunded: not a purchase
        ("a", D(2024, 1, 16), -10.0, "a4"),
        ("a", D(2024, 1, 31), 10.0, "a5"),
    ]
    gaps = purchase_gaps(order_frame(tx(rows))).collect()["gap"].sort().to_list()
    assert gaps == [10, 20]


def test_configured_days_override_and_at_risk_is_half() -> None:
    th = churn_thresholds(order_frame(tx(ROWS)), 90)
    assert th == Thresholds(45.0, 90.0, "config", 0)
    assert churn_thresholds(order_frame(tx(ROWS)), "120").churned_days == 120.0
    assert "analysis.churn_days" in th.describe()


@pytest.mark.parametrize("bad", ["soon", "0", -3, 0, True, float("nan"), float("inf")])
def test_bad_churn_days_are_config_errors(bad: object) -> None:
    with pytest.raises(ConfigError, match="churn_days"):
        parse_churn_days(bad)  # type: ignore[arg-type]


def test_auto_is_case_insensitive() -> None:
    assert parse_churn_days(" Auto ") is None


def test_status_by_days_since_last_is_strictly_greater_than_the_threshold() -> None:
    frame = pl.DataFrame({"days_since_last": [0, 10, 11, 30, 31, None]})
    status = churn_status(frame, Thresholds(10.0, 30.0, "config", 0))["status"].to_list()
    assert status == ["active", "active", "at_risk", "at_risk", "churned", None]


def test_churn_status_on_the_customers_table() -> None:
    th = churn_thresholds(order_frame(tx(ROWS)))
    status = dict(churn_status(customers(), th).select("customer_id", "status").iter_rows())
    # days since last: a 1, b 50, c 9
    assert status == {"a": "active", "b": "churned", "c": "active"}


def test_no_repeat_customers_leaves_thresholds_and_status_undefined() -> None:
    rows = [("a", D(2024, 1, 5), 10.0, "a1"), ("b", D(2024, 2, 5), 10.0, "b1")]
    th = churn_thresholds(order_frame(tx(rows)))
    assert not th.defined and th.gaps_used == 0
    assert "analysis.churn_days" in th.describe()
    with_status = churn_status(customers(rows), th)
    assert with_status["status"].null_count() == 2
    assert churn_rate(with_status) is None
    summary = retention_summary(customers(rows), th)
    assert summary.churn_rate is None and summary.repeat_rate == 0.0


def test_repeat_rate_and_churn_rate_by_hand() -> None:
    table = customers()
    assert repeat_rate(table) == pytest.approx(2 / 3)
    assert repeat_rate(table.head(0)) is None
    th = churn_thresholds(order_frame(tx(ROWS)))
    assert churn_rate(churn_status(table, th)) == pytest.approx(1 / 3)


def test_retention_summary_counts_reconcile() -> None:
    th = Thresholds(5.0, 20.0, "config", 0)
    s = retention_summary(customers(), th)
    assert (s.customers, s.repeat_customers, s.active, s.at_risk, s.churned) == (3, 2, 1, 1, 1)
    assert s.active + s.at_risk + s.churned == s.customers
    assert s.churn_rate == pytest.approx(1 / 3)
    assert s.to_json()["thresholds"] == {
        "at_risk_days": 5.0,
        "churned_days": 20.0,
        "source": "config",
        "gaps_used": 0,
    }


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.lists(st.integers(min_value=0, max_value=400), min_size=1, max_size=6),
        min_size=1,
        max_size=12,
    )
)
def test_auto_thresholds_match_numpy_percentiles_of_distinct_purchase_days(days: list[list[int]]) -> None:
    start = D(2023, 1, 1)
    rows = [
        (f"c{i}", start + dt.timedelta(days=d), 1.0, None)
        for i, customer in enumerate(days)
        for d in customer
    ]
    gaps = [int(g) for customer in days for g in np.diff(sorted(set(customer)))]
    th = churn_thresholds(order_frame(tx(rows)))
    assert th.gaps_used == len(gaps)
    if not gaps:
        assert not th.defined
        return
    assert th.churned_days == pytest.approx(float(np.percentile(gaps, 80)))
    assert th.at_risk_days == pytest.approx(float(np.percentile(gaps, 40)))
    assert th.at_risk_days <= th.churned_days
