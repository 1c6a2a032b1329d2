"""Engine tests of RFM scores and segments (PRODUCT §4.5)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clvtool.errors import ConfigError
from clvtool.metrics.segments import (
    ACTIONS,
    DEFAULT_GRID,
    SEGMENTS,
    _selected_scores,
    default_segment_map,
    parse_segment_map,
    rfm_scores,
    segment_summary,
    segments,
)

# The published 11-segment table of R and FM ranges the default grid must stay inside.
PUBLISHED = {
    "Champions": ((4, 5), (4, 5)),
    "Loyal Customers": ((2, 5), (3, 5)),
    "Potential Loyalists": ((3, 5), (1, 3)),
    "New Customers": ((4, 5), (1, 1)),
    "Promising": ((3, 4), (1, 1)),
    "Need Attention": ((2, 3), (2, 3)),
    "About to Sleep": ((2, 3), (1, 2)),
    "At Risk": ((1, 2), (2, 5)),
    "Can't Lose Them": ((1, 1), (4, 5)),
    "Hibernating": ((1, 2), (1, 2)),
    "Lost": ((1, 2), (1, 2)),
}


def customers(
    days: list[int], orders: list[int], revenue: list[float], **extra: list[float | None]
) -> pl.DataFrame:
    n = len(days)
    data = {
        "customer_id": [f"c{i:03d}" for i in range(n)],
        "days_since_last": days,
        "orders": orders,
        "revenue": revenue,
        "historic_clv": revenue,
        **extra,
    }
    return pl.DataFrame(data).with_columns(
        pl.col("days_since_last").cast(pl.Int64),
        pl.col("orders").cast(pl.Int64),
        pl.col("revenue").cast(pl.Float64),
    )


def test_default_grid_covers_every_cell_inside_the_published_ranges() -> None:
    mapping = default_segment_map()
    assert len(mapping.cells) == 25
    assert set(mapping.cells.values()) == set(SEGMENTS)  # all 11 segments are reachable
    for (r, fm), segment in mapping.cells.items():
        (r_lo, r_hi), (fm_lo, fm_hi) = PUBLISHED[segment]
        assert r_lo <= r <= r_hi and fm_lo <= fm <= fm_hi, (r, fm, segment)
    assert DEFAULT_GRID[5][4] == "Champions" and DEFAULT_GRID[1][0] == "Lost"
    assert set(ACTIONS) == set(SEGMENTS) and all(ACTIONS.values())


def test_scores_by_hand_on_five_customers() -> None:
    table = customers(
        days=[1, 10, 100, 200, 300],
        orders=[9, 5, 3, 2, 1],
        revenue=[900.0, 500.0, 300.0, 200.0, 100.0],
    )
    scored = rfm_scores(table)
    assert scored["customer_id"].to_list() == table["customer_id"].to_list()  # order kept
    assert scored["r"].to_list() == [5, 4, 3, 2, 1]  # fewest days since last order = 5
    assert scored["f"].to_list() == [5, 4, 3, 2, 1]
    assert scored["m"].to_list() == [5, 4, 3, 2, 1]
    assert scored["rfm"].to_list() == ["555", "444", "333", "222", "111"]
    assert scored["segment"].to_list() == ["Champions", "Champions", "Need Attention", "Hibernating", "Lost"]


def test_fm_rounds_halves_up() -> None:
    # f = 5 (most orders) and m = 4: fm 4.5 -> 5; r 5 -> Champions via (5, 5)
    table = customers(days=[1, 2, 3, 4, 5], orders=[9, 1, 2, 3, 4], revenue=[4.0, 1.0, 2.0, 3.0, 5.0])
    first = rfm_scores(table).row(0, named=True)
    assert (first["r"], first["f"], first["m"], first["fm"]) == (5, 5, 4, 5)


def test_ties_are_broken_by_customer_id() -> None:
    table = customers(days=[7] * 10, orders=[1] * 10, revenue=[10.0] * 10)
    scored = rfm_scores(table)
    assert scored["f"].to_list() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert scored["m"].to_list() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    # recency ranks by -days, so the same tie-break applies
    assert scored["r"].to_list() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert rfm_scores(table.reverse())["f"].to_list() == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]


def test_f_ties_by_revenue_and_m_ties_by_orders_before_customer_id() -> None:
    table = customers(days=[1] * 5, orders=[1] * 5, revenue=[50.0, 40.0, 30.0, 20.0, 10.0])
    assert rfm_scores(table)["f"].to_list() == [5, 4, 3, 2, 1]
    table = customers(days=[1] * 5, orders=[5, 4, 3, 2, 1], revenue=[10.0] * 5)
    assert rfm_scores(table)["m"].to_list() == [5, 4, 3, 2, 1]


def test_new_one_order_customers_are_new_customers_even_when_ids_grow_with_time() -> None:
    # ids in order of acquisition: c000 is the oldest. Older customers bought more or spent more;
    # the four newest bought once, cheaply. With ties broken by id alone they would get F = 2.
    n = 20
    days = [400 - 20 * i for i in range(n)]
    orders = [3] * 8 + [1] * 12
    revenue = [300.0 - 5 * i for i in range(16)] + [5.0, 4.0, 3.0, 2.0]
    scored = rfm_scores(customers(days, orders, revenue))
    newest = scored.tail(4)
    assert newest["r"].to_list() == [5, 5, 5, 5]
    assert newest["f"].to_list() == [1, 1, 1, 1]
    assert newest["segment"].to_list() == ["New Customers"] * 4


def test_summary_by_hand() -> None:
    table = customers(
        days=[1, 10, 100, 200, 300],
        orders=[9, 5, 3, 2, 1],
        revenue=[900.0, 500.0, 300.0, 200.0, 100.0],
        total_clv=[1000.0, 600.0, 300.0, 250.0, 100.0],
    )
    result = segments(table)
    assert result.clv_column == "total_clv"
    summary = result.summary
    assert summary["segment"].to_list() == list(SEGMENTS)
    champions = summary.row(0, named=True)
    assert champions["customers"] == 2
    assert champions["share"] == pytest.approx(0.4)
    assert champions["revenue"] == pytest.approx(1400.0)
    assert champions["revenue_share"] == pytest.approx(1400 / 2000)
    assert champions["mean_clv"] == pytest.approx(800.0)
    assert champions["mean_days_since_last"] == pytest.approx(5.5)
    assert champions["action"] == ACTIONS["Champions"]
    empty = summary.filter(pl.col("segment") == "At Risk").row(0, named=True)
    assert empty["customers"] == 0 and empty["revenue"] == 0.0 and empty["mean_clv"] is None
    assert summary["customers"].sum() == 5
    assert summary["share"].sum() == pytest.approx(1.0)


def test_mean_clv_falls_back_to_historic_clv() -> None:
    table = customers(days=[1, 2], orders=[1, 2], revenue=[10.0, 20.0], total_clv=[None, None])
    assert segments(table).clv_column == "historic_clv"


def test_few_customers_still_get_scores_and_a_warning() -> None:
    small = segments(customers(days=[5, 1, 9], orders=[1, 2, 3], revenue=[1.0, 2.0, 3.0]))
    assert small.few_customers
    assert small.warning is not None and "3 customers" in small.warning
    assert small.customers["segment"].null_count() == 0
    one = segments(customers(days=[5], orders=[1], revenue=[1.0]))
    assert one.customers["rfm"].to_list() == ["111"]
    ten = segments(customers(days=list(range(10)), orders=[1] * 10, revenue=[1.0] * 10))
    assert not ten.few_customers and ten.warning is None


def test_custom_map_with_ranges_and_wildcards() -> None:
    mapping = parse_segment_map(
        {"Best": ["4-5,4-5"], "Good": ["2-3,3-5", "4-5,3"], "Sleeping": "1,*", "Rest": ["2-5,1-2"]},
        actions={"Best": "Thank them."},
    )
    assert Counter(mapping.cells.values()) == {"Best": 4, "Good": 8, "Sleeping": 5, "Rest": 8}
    assert mapping.order == ("Best", "Good", "Sleeping", "Rest")
    assert mapping.actions["Best"] == "Thank them." and mapping.actions["Rest"] == ""
    table = customers(
        days=[1, 10, 100, 200, 300], orders=[9, 5, 3, 2, 1], revenue=[900.0, 500.0, 300.0, 200.0, 100.0]
    )
    result = segments(table, mapping)
    assert result.customers["segment"].to_list() == ["Best", "Best", "Good", "Rest", "Sleeping"]
    assert result.summary["segment"].to_list() == ["Best", "Good", "Sleeping", "Rest"]
    assert result.summary["action"].to_list()[0] == "Thank them."
    # standard names keep their standard action
    std = parse_segment_map({"Champions": ["*,*"]})
    assert std.actions["Champions"] == ACTIONS["Champions"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"A": ["*,*"], "B": ["5,5"]}, "R=5, FM=5 already belongs to 'A'"),
        ({"A": ["1-5,1-4"]}, "5 R,FM cells have no segment"),
        ({"A": ["55"]}, "not a cell"),
        ({"A": ["6,1"]}, "R '6' is not a score"),
        ({"A": ["1,x"]}, "FM 'x' is not a score"),
        ({"A": ["3-2,1"]}, "is not a score"),
    ],
)
def test_custom_map_errors_name_the_cell(spec: dict, message: str) -> None:
    with pytest.raises(ConfigError, match="segments") as info:
        parse_segment_map(spec)
    assert message in str(info.value)


scores_input = st.integers(min_value=1, max_value=60).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(min_value=0, max_value=5), min_size=n, max_size=n),
        st.lists(st.integers(min_value=0, max_value=4), min_size=n, max_size=n),
        st.lists(st.sampled_from([-5.0, 0.0, 1.0, 1.0, 2.5, 100.0]), min_size=n, max_size=n),
    )
)


@settings(max_examples=60, deadline=None)
@given(scores_input)
def test_quintiles_are_balanced_and_every_customer_has_one_segment(data: tuple) -> None:
    days, orders, revenue = data
    n = len(days)
    scored = rfm_scores(customers(days, orders, revenue))
    assert scored.height == n
    for col in ("r", "f", "m"):
        counts = Counter(scored[col].to_list())
        assert set(counts) <= {1, 2, 3, 4, 5}
        sizes = [counts.get(s, 0) for s in range(1, 6)]
        assert max(sizes) - min(sizes) <= 1, (col, sizes)
    assert scored["segment"].null_count() == 0
    assert set(scored["segment"].to_list()) <= set(SEGMENTS)
    # a higher value never gets a lower score
    for value, col in (("orders", "f"), ("revenue", "m")):
        pairs = sorted(zip(scored[value].to_list(), scored[col].to_list(), strict=True))
        assert [s for _, s in pairs] == sorted(s for _, s in pairs)
    summary = segment_summary(scored)
    assert summary["customers"].sum() == n


@settings(max_examples=80, deadline=None)
@given(scores_input, st.randoms(use_true_random=False))
def test_scores_equal_a_plain_sort_in_either_row_order(data: tuple, rnd) -> None:
    """Scores equal a Python sort by (keys..., customer_id), whether or not the rows come in id order."""
    days, orders, revenue = data
    n = len(days)
    frame = customers(days, orders, revenue)
    ids = frame["customer_id"].to_list()

    def expected(key) -> dict[str, int]:
        ranked = sorted(range(n), key=key)
        return {ids[i]: pos * 5 // n + 1 for pos, i in enumerate(ranked)}

    want = {
        "r": expected(lambda i: (-days[i], ids[i])),
        "f": expected(lambda i: (orders[i], revenue[i], ids[i])),
        "m": expected(lambda i: (revenue[i], orders[i], ids[i])),
    }
    shuffled = frame.sample(fraction=1.0, shuffle=True, seed=rnd.randint(0, 10**6))
    for variant in (frame.sort("customer_id"), shuffled):
        scored = rfm_scores(variant)
        for col, by_id in want.items():
            got = dict(zip(scored["customer_id"].to_list(), scored[col].to_list(), strict=True))
            assert got == by_id, col


keys_input = st.integers(min_value=0, max_value=45).flatmap(
    lambda n: st.lists(
        st.lists(st.sampled_from([-np.inf, -2.0, 0.0, 0.0, 1.0, 1.0, 1.0, 3.5, 7.0]), min_size=n, max_size=n),
        min_size=1,
        max_size=3,
    )
)


@settings(max_examples=300, deadline=None)
@given(keys_input)
def test_selected_scores_equal_the_sorted_ones(columns: list[list[float]]) -> None:
    """Quintiles by selection (what rfm_scores runs) equal those cut from a full stable sort."""
    keys = [np.array(c, dtype=np.float64) for c in columns]
    n = keys[0].size
    order = np.lexsort(keys[::-1])  # stable: the first key is the primary one, ties in row order
    want = np.empty(n, dtype=np.int64)
    want[order] = np.arange(n) * 5 // max(n, 1) + 1
    assert _selected_scores(keys, n).tolist() == want.tolist()


def test_missing_values_rank_lowest_and_nan_highest() -> None:
    table = customers([1, 2, 3, 4, 5], [1, 1, 1, 1, 1], [3.0, float("nan"), 1.0, 2.0, 4.0]).with_columns(
        pl.when(pl.col("customer_id") == "c004").then(None).otherwise(pl.col("revenue")).alias("revenue")
    )
    # revenue 3, NaN, 1, 2, null: null lowest, NaN highest
    assert rfm_scores(table)["m"].to_list() == [4, 5, 2, 3, 1]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.integers(1, 3), st.sampled_from([1.0, 5.0, 5.0, 9.5])),
        min_size=1,
        max_size=40,
    ),
    st.randoms(use_true_random=False),
)
def test_scores_do_not_depend_on_row_order(rows: list[tuple[int, int, float]], rnd: object) -> None:
    """The last ties go by customer_id, so shuffled rows keep their scores; and the scores equal those
    cut from a full sort by (keys..., customer_id)."""
    table = customers([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])
    shuffled = table.sample(fraction=1.0, shuffle=True, seed=rnd.randrange(1 << 30))  # type: ignore[attr-defined]
    scored = rfm_scores(shuffled)
    n = table.height
    rank = np.arange(n, dtype=np.float64)  # ids c000, c001, ... are in id order in `table`
    for col, keys in (
        ("r", [-table["days_since_last"].to_numpy().astype(np.float64)]),
        ("f", [table["orders"].to_numpy().astype(np.float64), table["revenue"].to_numpy()]),
        ("m", [table["revenue"].to_numpy(), table["orders"].to_numpy().astype(np.float64)]),
    ):
        order = np.lexsort([rank, *keys[::-1]])
        want = np.empty(n, dtype=np.int64)
        want[order] = np.arange(n) * 5 // n + 1
        got = dict(zip(scored["customer_id"].to_list(), scored[col].to_list(), strict=True))
        assert [got[c] for c in table["customer_id"].to_list()] == want.tolist(), col
