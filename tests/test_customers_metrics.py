"""Engine tests of the per-customer summary (PRODUCT §4.1, §5.1) and ranking, on hand-made frames."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clvtool.io.schema import SEQ
from clvtool.io.transactions import CANONICAL_TYPES
from clvtool.metrics.customers import customer_summary
from clvtool.metrics.ranking import rank_customers, ranked_order

D = dt.date
AS_OF = D(2024, 3, 2)


def tx(*rows: tuple[str, dt.date, float, str | None, str | None]) -> pl.LazyFrame:
    """Canonical transactions from (customer_id, date, amount, order_id, channel) rows, in order."""
    cols = ("customer_id", "date", "amount", "order_id", "channel")
    frame = pl.DataFrame(
        [dict(zip(cols, r, strict=True)) for r in rows],
        schema={c: CANONICAL_TYPES[c] for c in cols},
        orient="row",
    )
    return frame.with_columns(pl.int_range(0, pl.len(), dtype=pl.UInt32).alias(SEQ)).lazy()


def summary(lf: pl.LazyFrame, **kwargs: Any) -> dict[str, dict[str, Any]]:
    """customer_id -> row of the collected summary."""
    kwargs.setdefault("as_of", AS_OF)
    df = customer_summary(lf, **kwargs).collect()
    assert df["customer_id"].n_unique() == df.height
    return {row["customer_id"]: row for row in df.iter_rows(named=True)}


def test_input_frame_has_the_canonical_dtypes() -> None:
    schema = tx(("a", D(2024, 1, 1), 1.0, "o", "web")).collect_schema()
    assert schema["customer_id"] == pl.String
    assert schema["date"] == pl.Date
    assert schema["amount"] == pl.Float64
    assert schema[SEQ] == pl.UInt32


def test_line_items_of_one_order_collapse_into_one_order() -> None:
    rows = summary(
        tx(
            ("c1", D(2024, 1, 5), 10.0, "o1", "google"),
            ("c1", D(2024, 1, 5), 2.5, "o1", "google"),
            ("c1", D(2024, 1, 5), 7.5, "o1", "google"),
            ("c1", D(2024, 2, 10), 20.0, "o2", "email"),
        )
    )
    c1 = rows["c1"]
    assert c1["orders"] == 2
    assert c1["revenue"] == pytest.approx(40.0)
    assert c1["aov"] == pytest.approx(20.0)
    assert c1["refunds"] == pytest.approx(0.0)
    assert c1["frequency"] == 1


def test_rows_without_order_id_are_each_an_order() -> None:
    rows = summary(
        tx(
            ("c1", D(2024, 1, 5), 10.0, None, None),
            ("c1", D(2024, 1, 5), 10.0, None, None),
            ("c1", D(2024, 1, 9), 10.0, None, None),
        )
    )
    assert rows["c1"]["orders"] == 3
    assert rows["c1"]["aov"] == pytest.approx(10.0)


def test_full_refund_of_an_order_makes_it_not_a_purchase() -> None:
    rows = summary(
        tx(
            ("c1", D(2024, 1, 5), 30.0, "o1", None),
            ("c1", D(2024, 1, 10), 20.0, "o2", None),
            ("c1", D(2024, 1, 12), -20.0, "o2", None),  # o2 refunded in full
            ("c2", D(2024, 1, 8), 50.0, "o3", None),
            ("c2", D(2024, 1, 9), -50.0, "o3", None),  # c2's only order refunded in full
        )
    )
    c1, c2 = rows["c1"], rows["c2"]
    assert c1["orders"] == 1
    assert c1["revenue"] == pytest.approx(30.0)
    assert c1["refunds"] == pytest.approx(20.0)
    assert c1["aov"] == pytest.approx(30.0)
    # The refunded order's day is not a purchase day.
    assert c1["frequency"] == 0
    assert c1["recency"] == pytest.approx(0.0)
    assert c1["last_order"] == D(2024, 1, 5)
    assert c2["orders"] == 0
    assert c2["revenue"] == pytest.approx(0.0)
    assert c2["refunds"] == pytest.approx(50.0)


def test_partial_refund_keeps_the_purchase_and_reduces_revenue() -> None:
    rows = summary(
        tx(
            ("c1", D(2024, 1, 5), 40.0, "o1", None),
            ("c1", D(2024, 1, 6), -15.0, "o1", None),
        )
    )
    c1 = rows["c1"]
    assert c1["orders"] == 1
    assert c1["revenue"] == pytest.approx(25.0)
    assert c1["refunds"] == pytest.approx(15.0)
    assert c1["aov"] == pytest.approx(25.0)
    assert c1["historic_clv"] == pytest.approx(25.0)
    assert c1["frequency"] == 0


def test_refunds_column_is_the_refunded_amount() -> None:
    rows = summary(
        tx(
            ("c1", D(2024, 1, 5), 100.0, "o1", None),
            ("c1", D(2024, 1, 7), -12.5, "o1", None),
            ("c1", D(2024, 1, 9), -7.5, "o1", None),
            ("c1", D(2024, 2, 1), 60.0, "o2", None),
            ("c1", D(2024, 2, 3), -60.0, "o2", None),
        )
    )
    c1 = rows["c1"]
    assert c1["refunds"] == pytest.approx(80.0)
    assert c1["revenue"] == pytest.approx(80.0)  # 100 - 20 (+ 60 - 60)
    assert c1["orders"] == 1


def test_zero_value_order_without_refund_is_a_purchase() -> None:
    rows = summary(
        tx(
            ("c1", D(2024, 1, 5), 0.0, "o1", None),
            ("c1", D(2024, 1, 19), 10.0, "o2", None),
            ("c2", D(2024, 2, 1), 0.0, "o3", None),
        )
    )
    assert rows["c1"]["orders"] == 2
    assert rows["c1"]["frequency"] == 1
    assert rows["c1"]["first_order"] == D(2024, 1, 5)
    assert rows["c1"]["recency"] == pytest.approx(2.0)  # 14 days
    assert rows["c1"]["aov"] == pytest.approx(5.0)
    assert rows["c2"]["orders"] == 1
    assert rows["c2"]["frequency"] == 0
    assert rows["c2"]["T"] == pytest.approx(30 / 7)


def test_two_purchases_on_one_day_are_one_purchase_day() -> None:
    rows = summary(
        tx(
            ("c1", D(2024, 1, 5), 10.0, "o1", None),
            ("c1", D(2024, 1, 5), 20.0, "o2", None),
            ("c1", D(2024, 1, 19), 5.0, "o3", None),
        )
    )
    c1 = rows["c1"]
    assert c1["orders"] == 3
    assert c1["frequency"] == 1
    assert c1["recency"] == pytest.approx(2.0)


_DATES = tx(
    ("c1", D(2024, 1, 5), 10.0, "o1", None),
    ("c1", D(2024, 1, 26), 10.0, "o2", None),
    ("c1", D(2024, 2, 10), 10.0, "o3", None),
)


def test_recency_and_t_in_weeks() -> None:
    c1 = summary(_DATES, unit_days=7)["c1"]
    # 2024-01-05 .. 2024-02-10 = 36 days; .. 2024-03-02 = 57 days (leap February).
    assert c1["frequency"] == 2
    assert c1["recency"] == pytest.approx(36 / 7)
    assert c1["T"] == pytest.approx(57 / 7)


def test_recency_and_t_in_days() -> None:
    c1 = summary(_DATES, unit_days=1)["c1"]
    assert c1["frequency"] == 2
    assert c1["recency"] == pytest.approx(36.0)
    assert c1["T"] == pytest.approx(57.0)


def test_days_since_last_and_tenure_days() -> None:
    c1 = summary(_DATES)["c1"]
    assert c1["first_order"] == D(2024, 1, 5)
    assert c1["last_order"] == D(2024, 2, 10)
    assert c1["days_since_last"] == 21
    assert c1["tenure_days"] == 57
    other = summary(_DATES, as_of=D(2024, 2, 10))["c1"]
    assert other["days_since_last"] == 0
    assert other["tenure_days"] == 36
    assert other["T"] == pytest.approx(36 / 7)


def test_aov_is_revenue_per_order() -> None:
    rows = summary(
        tx(
            ("c1", D(2024, 1, 5), 10.0, "o1", None),
            ("c1", D(2024, 1, 6), 25.0, "o2", None),
            ("c1", D(2024, 1, 7), 40.0, "o3", None),
        )
    )
    assert rows["c1"]["revenue"] == pytest.approx(75.0)
    assert rows["c1"]["aov"] == pytest.approx(25.0)


def test_margin_rate_applies_to_historic_clv_not_revenue() -> None:
    lf = tx(
        ("c1", D(2024, 1, 5), 40.0, "o1", None),
        ("c1", D(2024, 1, 6), -15.0, "o1", None),
        ("c1", D(2024, 2, 1), 25.0, "o2", None),
    )
    full = summary(lf)["c1"]
    part = summary(lf, margin_rate=0.4)["c1"]
    assert full["historic_clv"] == pytest.approx(50.0)
    assert part["historic_clv"] == pytest.approx(20.0)
    assert part["revenue"] == pytest.approx(50.0)
    assert part["aov"] == pytest.approx(25.0)


def test_channel_is_that_of_the_first_order() -> None:
    rows = summary(
        tx(
            # Later orders come first in the file and have channels that sort before 'google'.
            ("c1", D(2024, 2, 10), 20.0, "o2", "email"),
            ("c1", D(2024, 3, 1), 20.0, "o3", "affiliate"),
            ("c1", D(2024, 1, 5), 10.0, "o1", "google"),
            ("c2", D(2024, 1, 6), 10.0, "o4", "tiktok"),
            ("c2", D(2024, 1, 20), 10.0, "o5", "bing"),
        )
    )
    assert rows["c1"]["channel"] == "google"
    assert rows["c2"]["channel"] == "tiktok"


def test_channel_is_unattributed_when_unknown() -> None:
    rows = summary(
        tx(
            ("c1", D(2024, 1, 5), 10.0, "o1", None),
            ("c1", D(2024, 2, 5), 10.0, "o2", None),
        )
    )
    assert rows["c1"]["channel"] == "unattributed"


def test_channels_override_frame_wins() -> None:
    lf = tx(
        ("c1", D(2024, 1, 5), 10.0, "o1", "google"),
        ("c2", D(2024, 1, 6), 10.0, "o2", "email"),
        ("c3", D(2024, 1, 7), 10.0, "o3", None),
    )
    override = pl.LazyFrame({"customer_id": ["c1", "c3"], "channel": ["partner", "podcast"]})
    rows = summary(lf, channels=override)
    assert rows["c1"]["channel"] == "partner"
    assert rows["c2"]["channel"] == "email"
    assert rows["c3"]["channel"] == "podcast"


@pytest.mark.parametrize(
    ("period", "first", "label"),
    [
        ("month", D(2024, 1, 5), "2024-01"),
        ("month", D(2023, 12, 31), "2023-12"),
        ("week", D(2024, 1, 5), "2024-W01"),
        ("week", D(2021, 1, 2), "2020-W53"),  # ISO year differs from the calendar year
        ("week", D(2024, 12, 30), "2025-W01"),
        ("quarter", D(2024, 5, 15), "2024-Q2"),
        ("quarter", D(2024, 12, 31), "2024-Q4"),
        ("quarter", D(2025, 1, 1), "2025-Q1"),
    ],
)
def test_cohort_label(period: str, first: dt.date, label: str) -> None:
    lf = tx(
        ("c1", first, 10.0, "o1", None),
        ("c1", D(2025, 2, 1), 10.0, "o2", None),
    )
    rows = summary(lf, as_of=D(2025, 3, 1), period=period)
    assert rows["c1"]["cohort"] == label


# ---- ranking ----------------------------------------------------------------------------------


def values(ids: list[str], vals: list[float | None]) -> pl.DataFrame:
    return pl.DataFrame({"customer_id": ids, "v": vals}, schema={"customer_id": pl.String, "v": pl.Float64})


def test_pareto_classes_on_a_hand_example() -> None:
    # Shares .50 .30 .10 .05 .03 .02; running share before each: 0 .50 .80 .90 .95 .98.
    # A while the share before is below 80 %, B below 95 %, else C.
    df = values(["a", "b", "c", "d", "e", "f"], [50, 30, 10, 5, 3, 2])
    out = rank_customers(df.sample(fraction=1.0, shuffle=True, seed=3), "v", descending=True, share_of="v")
    assert out["customer_id"].to_list() == ["a", "b", "c", "d", "e", "f"]
    assert out["rank"].to_list() == [1, 2, 3, 4, 5, 6]
    assert out["share"].to_list() == pytest.approx([0.5, 0.3, 0.1, 0.05, 0.03, 0.02])
    assert out["cumulative_share"].to_list() == pytest.approx([0.5, 0.8, 0.9, 0.95, 0.98, 1.0])
    assert out["pareto_class"].to_list() == ["A", "A", "B", "B", "C", "C"]


def test_ranks_are_a_permutation_and_ties_break_by_customer_id() -> None:
    df = values(["z", "m", "b", "a", "q"], [10, 20, 10, 20, 5])
    out = rank_customers(df, "v", descending=True, share_of="v")
    assert out["customer_id"].to_list() == ["a", "m", "b", "z", "q"]
    assert sorted(out["rank"].to_list()) == [1, 2, 3, 4, 5]
    assert out["rank"].to_list() == [1, 2, 3, 4, 5]
    asc = rank_customers(df, "v", descending=False, share_of="v")
    assert asc["customer_id"].to_list() == ["q", "b", "z", "a", "m"]


def test_shares_sum_to_one_and_negative_values_get_zero_share() -> None:
    df = values(["a", "b", "c", "d"], [60, -40, 40, None])
    out = rank_customers(df, "v", descending=True, share_of="v")
    by_id = {r["customer_id"]: r for r in out.iter_rows(named=True)}
    assert out["share"].sum() == pytest.approx(1.0)
    assert by_id["a"]["share"] == pytest.approx(0.6)
    assert by_id["c"]["share"] == pytest.approx(0.4)
    assert by_id["b"]["share"] == 0.0
    assert by_id["d"]["share"] == 0.0
    assert by_id["b"]["pareto_class"] == "C"
    # Nulls sort last; the negative value just before them.
    assert out["customer_id"].to_list() == ["a", "c", "b", "d"]
    assert out["cumulative_share"].to_list()[-1] == pytest.approx(1.0)


def test_all_zero_values_give_zero_shares_not_nan() -> None:
    out = rank_customers(values(["a", "b"], [0, 0]), "v", descending=True, share_of="v")
    assert out["share"].to_list() == [0.0, 0.0]
    assert out["pareto_class"].to_list() == ["C", "C"]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        # Money in cents, up to ±1e6 (subnormal floats are not amounts anyone sells for).
        st.integers(min_value=-100_000_000, max_value=100_000_000).map(lambda cents: cents / 100),
        min_size=1,
        max_size=40,
    )
)
def test_rank_invariants(vals: list[float]) -> None:
    ids = [f"c{i:03d}" for i in range(len(vals))]
    out = rank_customers(values(ids, vals), "v", descending=True, share_of="v")
    assert out.height == len(vals)
    assert out["rank"].to_list() == list(range(1, len(vals) + 1))
    assert sorted(out["customer_id"].to_list()) == ids
    shares = out["share"].to_list()
    assert all(s >= 0 for s in shares)
    if any(v > 0 for v in vals):
        assert sum(shares) == pytest.approx(1.0)
    else:
        assert sum(shares) == 0.0
    ordered = out["v"].to_list()
    assert ordered == sorted(ordered, reverse=True)
    classes = out["pareto_class"].to_list()
    # Classes never go back up the list once a positive-share customer has been placed lower.
    order = {"A": 0, "B": 1, "C": 2}
    positive = [order[c] for c, s in zip(classes, shares, strict=True) if s > 0]
    assert positive == sorted(positive)


metric_value = st.sampled_from([None, float("nan"), float("inf"), -float("inf"), 0.0, -0.0, 1.5, 2.0, -3.0])


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.text(max_size=6), metric_value), max_size=40, unique_by=lambda r: r[0]),
    st.booleans(),
)
def test_ranked_order_is_the_two_key_sort(rows: list[tuple[str, float | None]], descending: bool) -> None:
    """Sort by the metric, then fix the tied runs: the order of a sort by (metric, customer_id), for
    rows in any order, with nulls, NaN, infinities, signed zeros and ids sharing their starts."""
    df = pl.DataFrame(
        {"customer_id": [r[0] for r in rows], "v": [r[1] for r in rows]},
        schema={"customer_id": pl.String, "v": pl.Float64},
    )
    want = df.with_row_index("i").sort(
        ["v", "customer_id"], descending=[descending, False], nulls_last=True, maintain_order=True
    )["i"]
    assert ranked_order(df, "v", descending=descending).to_list() == want.to_list()
