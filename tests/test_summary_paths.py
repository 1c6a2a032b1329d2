"""The fast summary (integer hash keys, one sort) equals the exact text-keyed one on any input.

`metrics.customers.summarise` is what the commands run; `summary_from_orders(order_frame(...))` and
`retention.purchase_gaps` are the plain group-by definitions it must reproduce. Hypothesis builds
transactions with line items, missing order ids, refunds (also refund-only customers and fully refunded
orders), same-day orders, costs and missing channels; the hash is also replaced by weak ones so that the
clash fallbacks run.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from clvtool.io.schema import SEQ
from clvtool.io.transactions import CANONICAL_TYPES
from clvtool.metrics import customers as M
from clvtool.metrics.ranking import text_order
from clvtool.metrics.retention import purchase_gaps

START = dt.date(2023, 1, 1)

row = st.tuples(
    st.sampled_from([f"c{i}" for i in range(12)] + ["alice@example.com", "Bob"]),  # customer
    st.integers(0, 900),  # day offset
    st.sampled_from([0.0, 5.0, 12.5, 19.99, 100.0, -5.0, -12.5, -100.0, 0.01]),  # amount
    st.one_of(st.none(), st.sampled_from([f"o{i}" for i in range(15)])),  # order id
    st.one_of(st.none(), st.sampled_from(["web", "ads", "email", "Affiliate"])),  # channel
    st.one_of(st.none(), st.sampled_from([0.0, 1.5, 3.0])),  # cost
)


def frame(rows: list[tuple]) -> pl.DataFrame:
    cols = ("customer_id", "date", "amount", "order_id", "channel", "cost")
    data = [
        dict(zip(cols, (c, START + dt.timedelta(days=d), a, o, ch, cost), strict=True))
        for c, d, a, o, ch, cost in rows
    ]
    df = pl.DataFrame(data, schema={c: CANONICAL_TYPES[c] for c in cols}, orient="row")
    # Reading order with gaps, as after excluded rows.
    return df.with_columns((pl.int_range(0, pl.len(), dtype=pl.UInt32) * 3 + 1).alias(SEQ))


def exact(tx: pl.DataFrame, as_of: dt.date, **kw: object) -> tuple[pl.DataFrame, list[int]]:
    orders = M.order_frame(tx.lazy(), margin_rate=kw.get("margin_rate", 1.0))
    frame = M.summary_from_orders(
        orders,
        as_of=as_of,
        unit_days=kw.get("unit_days", 7.0),
        period=kw.get("period", "month"),
        channels=kw["channels"].lazy() if kw.get("channels") is not None else None,
    ).collect()
    return frame, sorted(purchase_gaps(orders).collect()["gap"].to_list())


def check(tx: pl.DataFrame, **kw: object) -> M.Summary:
    as_of = tx["date"].max() + dt.timedelta(days=3) if tx.height else START
    fast = M.summarise(tx, as_of=as_of, **kw)
    ref, gaps = exact(tx, as_of, **kw)
    assert_frame_equal(fast.frame.sort("customer_id"), ref)  # the fast path keeps its own row order
    assert sorted(fast.gaps.to_list()) == gaps
    assert fast.gaps.dtype == pl.Int32
    return fast


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(row, min_size=1, max_size=60), st.sampled_from([1.0, 0.4]))
def test_fast_summary_equals_the_exact_one(rows: list[tuple], margin: float) -> None:
    check(frame(rows), margin_rate=margin)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(row, min_size=1, max_size=40))
def test_without_order_ids_every_row_is_an_order(rows: list[tuple]) -> None:
    check(frame([(c, d, a, None, ch, cost) for c, d, a, _, ch, cost in rows]))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(row, min_size=1, max_size=40), st.sampled_from(["week", "quarter"]))
def test_unique_order_ids_take_the_row_path(rows: list[tuple], period: str) -> None:
    unique = [(c, d, a, f"u{i}", ch, cost) for i, (c, d, a, _, ch, cost) in enumerate(rows)]
    check(frame(unique), period=period, unit_days=1.0)


def test_channel_override_table_wins() -> None:
    tx = frame([("c1", 0, 10.0, "o1", "web", None), ("c2", 5, 20.0, "o2", "ads", None)])
    channels = pl.DataFrame({"customer_id": ["c1"], "channel": ["partner"]})
    fast = check(tx, channels=channels)
    assert fast.frame.sort("customer_id")["channel"].to_list() == ["partner", "ads"]


def test_empty_input() -> None:
    tx = frame([]).clear()
    out = M.summarise(tx, as_of=START)
    assert out.frame.height == 0
    assert out.gaps.len() == 0


@pytest.mark.parametrize(
    "weak",
    [
        # Whole-hash clashes between customers: the twin hash differs, so the exact path runs.
        lambda expr, which: (
            expr.cast(pl.String).str.len_bytes().cast(pl.UInt64) if which == 0 else expr.hash(which)
        ),
        # Clashing order ids within a customer.
        lambda expr, which: (
            expr.cast(pl.String).str.len_bytes().cast(pl.UInt64) if which == 2 else expr.hash(which)
        ),
        # Distinct small customer hashes that agree above the day bits: the two-key sort runs.
        lambda expr, which: expr.str.slice(1).cast(pl.UInt64) if which == 0 else expr.hash(which),
    ],
    ids=["customer-clash", "order-clash", "high-bits-clash"],
)
def test_hash_clashes_fall_back_to_exact_results(monkeypatch: pytest.MonkeyPatch, weak: object) -> None:
    monkeypatch.setattr(M, "_hash", weak)
    rows = [
        (
            f"c{i % 23}",
            (i * 37) % 700,
            [10.0, -4.0, 0.0, 25.5][i % 4],
            f"o{i % 31}" if i % 5 else None,
            ch,
            None,
        )
        for i, ch in zip(range(400), ["web", "ads", None, "email"] * 100, strict=True)
    ]
    check(frame(rows))


def test_hash_clashes_are_detected(monkeypatch: pytest.MonkeyPatch) -> None:
    """The clash checks themselves fire (not only give equal results by luck)."""
    tx = frame([("ab", 0, 10.0, "o1", "web", None), ("cd", 3, 20.0, "o2", "ads", None)])
    monkeypatch.setattr(
        M, "_hash", lambda e, w: e.cast(pl.String).str.len_bytes().cast(pl.UInt64) if w == 0 else e.hash(w)
    )
    assert M._sums_by_hash(tx, 1.0) is None
    monkeypatch.undo()
    assert M._sums_by_hash(tx, 1.0) is not None


# --- text_order: the id sort of the fast path -------------------------------------------------------

ids = st.text(alphabet=st.sampled_from(["a", "b", "z", "0", "9", "\x00", "é", "€", "_", "A"]), max_size=14)


@settings(max_examples=300, deadline=None)
@given(st.lists(ids, min_size=0, max_size=40, unique=True), st.sampled_from(["", "cus_", "customer-000"]))
def test_text_order_is_the_text_sort(values: list[str], prefix: str) -> None:
    """Same indices as arg_sort for distinct values: shared starts, NUL bytes, multi-byte characters."""
    series = pl.Series([prefix + v for v in values], dtype=pl.String)
    assert text_order(series).to_list() == series.arg_sort().to_list()


@given(st.lists(ids, min_size=0, max_size=40))
def test_text_order_with_repeats_sorts(values: list[str]) -> None:
    series = pl.Series(values, dtype=pl.String)
    assert series.gather(text_order(series)).to_list() == sorted(values, key=lambda v: v.encode())


def test_text_order_ties_above_the_sign_bit() -> None:
    """Keys of 2**63 and more (first byte >= 0x80) tie like any others (found by hypothesis)."""
    series = pl.Series(["", "é\x00", "é"])
    assert text_order(series).to_list() == [0, 2, 1]


def test_text_order_breaks_prefix_ties_by_the_text() -> None:
    series = pl.Series(["abcdefghij2", "abcdefghij1", "a", "ab\x00", "ab", "abcdefghij10"])
    assert series.gather(text_order(series)).to_list() == [
        "a",
        "ab",
        "ab\x00",
        "abcdefghij1",
        "abcdefghij10",
        "abcdefghij2",
    ]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(row, min_size=1, max_size=60), st.integers(1, 9))
def test_blocks_of_customers_give_the_same_sums(rows: list[tuple], block: int) -> None:
    """Summed in blocks of a few orders (always cut at a customer's first order), as on large inputs."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(M, "BLOCK_ROWS", block)
        check(frame(rows))


def test_block_edges_fall_on_customer_starts() -> None:
    import numpy as np

    bits = 4
    customers = np.repeat(np.array([1, 2, 2**60 - 1], dtype=np.uint64), [3, 5, 4])
    days = np.arange(customers.size, dtype=np.uint64) % 16
    keys = (customers << np.uint64(bits)) | days
    assert M._block_edges(keys, bits, 100) == [0, 12]
    assert M._block_edges(keys, bits, 1) == [0, 3, 8, 12]
    assert M._block_edges(keys, bits, 4) == [0, 8, 12]
    # The greatest customer the key can hold has no successor to search for: it ends the last block.
    top = np.array([(2**60 - 1) << bits] * 3, dtype=np.uint64)
    assert M._block_edges(np.concatenate([keys[:3], top]), bits, 1) == [0, 3, 6]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(row, min_size=1, max_size=40), st.sampled_from(["items", "unique", "none"]), st.booleans())
def test_built_orders_equal_the_group_by(rows: list[tuple], ids: str, weak: bool) -> None:
    """build_orders skips the group-by only where every row is an order of its own: same frame either
    way (line items, unique ids, no ids; a weak hash that makes distinct ids clash)."""
    if ids == "unique":
        rows = [(c, d, a, f"u{i}", ch, cost) for i, (c, d, a, _, ch, cost) in enumerate(rows)]
    elif ids == "none":
        rows = [(c, d, a, None, ch, cost) for c, d, a, _, ch, cost in rows]
    tx = frame(rows)
    expected = M.orders(M.order_lines(tx.lazy(), margin_rate=0.4)).collect()
    with pytest.MonkeyPatch.context() as mp:
        if weak:  # every id hashes alike: the group-by runs, with the same result
            mp.setattr(pl.Series, "hash", lambda s, seed=0: pl.Series([1] * s.len(), dtype=pl.UInt64))
        got = M.build_orders(tx, margin_rate=0.4)
    keys = ["customer_id", "order_key"]
    assert_frame_equal(got.sort(keys), expected.sort(keys))
