"""Per-customer summary (PRODUCT §4.1) and model statistics (§5.1) from the canonical frame.

Three aggregation levels, all plain group-bys (SQL-portable, STYLE habit 2):
rows -> orders (customer, order) -> purchase days (customer, day) -> customers.
Dates are integer day numbers (days since 1970-01-01) until the final frame.

Those group-bys are the definition. The commands run `summarise`, the same levels on hashed keys and
one sort (below), which falls back to them whenever two keys share a hash.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import polars as pl

from clvtool.io.schema import AMOUNT, CHANNEL, COST, CUSTOMER_ID, DATE, ORDER_ID, SEQ
from clvtool.metrics.periods import period_label, period_label_in

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


def _refund(amount: pl.Expr) -> pl.Expr:
    """The refunded part of a line: minus a negative amount, else zero."""
    return pl.when(amount < 0).then(-amount).otherwise(0.0)


def order_lines(tx: pl.LazyFrame, *, margin_rate: float) -> pl.LazyFrame:
    """Rows with day number, value (margin) and refund part; one order key per order."""
    value = pl.col(AMOUNT) * margin_rate
    if COST in tx.collect_schema():
        value = pl.when(pl.col(COST).is_not_null()).then(pl.col(AMOUNT) - pl.col(COST)).otherwise(value)
    order_key = pl.coalesce(pl.col(ORDER_ID), pl.concat_str(pl.lit("\x00row"), pl.col(SEQ).cast(pl.String)))
    return tx.with_columns(
        _day(pl.col(DATE)).alias(_DAY),
        value.alias("value"),
        _refund(pl.col(AMOUNT)).alias("refund"),
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
    return grouped.with_columns(_is_purchase())


def _is_purchase() -> pl.Expr:
    """An order is a purchase when not fully refunded: net > 0, or zero value with no refund."""
    purchase = (pl.col("net") > 0) | ((pl.col("net") == 0) & (pl.col("refund") == 0))
    return purchase.cast(pl.Int32).alias("is_purchase")


def order_frame(tx: pl.LazyFrame, *, margin_rate: float = 1.0) -> pl.LazyFrame:
    """The order frame (see `orders`) straight from the canonical transactions."""
    return orders(order_lines(tx, margin_rate=margin_rate))


def build_orders(tx: pl.DataFrame, *, margin_rate: float = 1.0) -> pl.DataFrame:
    """`order_frame` of canonical transactions, collected, without its group-by when it would change
    nothing: when no two rows share an order id (or no row has one), every row is an order of its own.

    Distinct hashes prove distinct ids (equal ids hash alike); a hash clash only sends the input down
    the group-by. The rows are in no particular order, as the group-by's are.
    """
    lines = order_lines(tx.lazy(), margin_rate=margin_rate)
    ids = tx[ORDER_ID]
    named = ids.len() - ids.null_count()
    if named and ids.drop_nulls().hash(_SEEDS[2]).n_unique() < named:
        return orders(lines).collect()
    # One row per order: the group-by's min and sum of a single row, a null sum as 0.
    return (
        lines.select(
            CUSTOMER_ID,
            _ORDER,
            _DAY,
            pl.col(AMOUNT).fill_null(0.0).alias("net"),
            "refund",
            pl.col("value").fill_null(0.0),
            pl.col(SEQ).alias("first_seq"),
            pl.col(CHANNEL).alias("order_channel"),
        )
        .with_columns(_is_purchase())
        .collect()
    )


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
    # A fixed order: sums and fits downstream then repeat to the last bit.
    return _finish(out, as_of=as_of, unit_days=unit_days, period=period, channels=channels).sort(CUSTOMER_ID)


def _finish(
    per_customer: pl.LazyFrame,
    *,
    as_of: dt.date,
    unit_days: float,
    period: str,
    channels: pl.LazyFrame | None,
    days: tuple[dt.date, dt.date] | None = None,
) -> pl.LazyFrame:
    """The summary columns from the per-customer sums, row for row (`days`: the first and last date of
    the transactions, when known: cohort labels are then looked up per day).

    `per_customer` has customer_id, channel, orders, revenue, refunds, historic_clv, and the day numbers
    and sums of the purchase days: __purchase_days, __first_p, __last_p, __first_any, __last_any,
    __pnet (net of purchase days), __fnet (net of the first purchase day).
    """
    out = per_customer
    if channels is not None:
        out = out.join(
            channels.select(CUSTOMER_ID, pl.col(CHANNEL).alias("__override")),
            on=CUSTOMER_ID,
            how="left",
            maintain_order="left",  # rows stay in place: the summary keeps its order
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
        (
            period_label(first_date, period) if days is None else period_label_in(first_date, period, *days)
        ).alias("cohort"),
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
    )


# --- The fast path: integer keys and one sort -------------------------------------------------------
#
# The same three levels (rows -> orders -> purchase days -> customers) as above, computed on 64-bit
# hashes of the text keys instead of the text itself. Orders are sorted once by (customer, day) so the
# day and customer levels are runs of adjacent rows, summed over the runs with numpy.
# Every hash has a twin under another seed; a customer or order whose twins disagree means two keys
# met in one hash, and the exact text-keyed path above runs instead. The results are equal either way
# (tests/test_summary_paths.py).

_SEEDS = (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344, 0x299F31D0, 0x082EFA98)


def _hash(expr: pl.Expr, which: int) -> pl.Expr:
    """The `which`-th independent 64-bit hash of a key column (tests replace it to force clashes)."""
    return expr.hash(_SEEDS[which])


_C, _C2, _O, _O2 = "__c", "__c2", "__o", "__o2"
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()


@dataclass(frozen=True)
class Summary:
    """The per-customer summary and the gaps between purchase days (for churn thresholds)."""

    # customer_summary's columns, one row per customer. The rows are in a fixed order (the same input
    # gives the same order) that is not customer_id's: sort where the order shows.
    frame: pl.DataFrame
    gaps: pl.Series  # Int32 days between consecutive purchase days of each customer (purchase_gaps)


def summarise(
    tx: pl.DataFrame,
    *,
    as_of: dt.date,
    margin_rate: float = 1.0,
    unit_days: float = 7.0,
    period: str = "month",
    channels: pl.DataFrame | None = None,
) -> Summary:
    """customer_summary and purchase_gaps in one pass over the canonical transactions (see above).

    Customers come in the order of their hashes (in customer_id order after a hash clash): sorting
    millions of ids as text would cost more than the sums, and no command lists customers in id order
    (rankings break their ties by id themselves).
    """
    override = channels.lazy() if channels is not None else None
    sums = _sums_by_hash(tx, margin_rate) if tx.height else None
    if sums is None:
        from clvtool.metrics.retention import purchase_gaps

        orders_lf = build_orders(tx, margin_rate=margin_rate).lazy()
        frame = summary_from_orders(
            orders_lf, as_of=as_of, unit_days=unit_days, period=period, channels=override
        ).collect()
        return Summary(frame, purchase_gaps(orders_lf).collect()["gap"])
    per_customer, gaps = sums
    # The in-memory engine keeps one chunk per column (the streaming one leaves dozens): every command
    # then gathers, joins and converts the frame, and each of those would copy the chunks together.
    days = (tx[DATE].min(), tx[DATE].max())
    frame = _finish(
        per_customer.lazy(), as_of=as_of, unit_days=unit_days, period=period, channels=override, days=days
    ).collect(engine="in-memory")
    return Summary(frame, gaps)


def _sums_by_hash(tx: pl.DataFrame, margin_rate: float) -> tuple[pl.DataFrame, pl.Series] | None:
    """Per-customer sums (the input of `_finish`, customers in hash order) and purchase gaps; None
    after a hash clash.

    Orders are sorted by one u64 key: the customer hash with its low bits replaced by the day offset.
    A customer is then a run of equal high bits and a purchase day a run of equal keys; the day and
    customer levels are sums over runs (numpy reduceat: one sequential pass each, so the results
    repeat to the last bit). The twin hash must be constant over each customer's run: that catches
    two customers in one hash, and two whose hashes agree above the day bits.

    The sorted orders are summed in blocks of whole customers (`_block_sums`, two at a time): a
    block's temporaries fit in the CPU cache and the allocator hands the same memory to the next
    block, where whole-column temporaries would each cost fresh pages. A customer's sums never span two
    blocks, so the results are those of one pass.
    """
    first_day = int(tx[DATE].min().toordinal() - _EPOCH_ORDINAL)  # type: ignore[union-attr]
    span = int(tx[DATE].max().toordinal() - _EPOCH_ORDINAL) - first_day  # type: ignore[union-attr]
    bits = max(span.bit_length(), 1)
    step = pl.lit(1 << bits, pl.UInt64)
    key = (pl.col(_C) - pl.col(_C) % step + (pl.col(_DAY) - first_day).cast(pl.UInt64)).alias("__key")
    built = _orders_by_hash(tx, margin_rate, key)
    if built is None:
        return None
    frame, channel_of = built
    del built  # the unsorted orders are freed once sorted: later allocations reuse that memory
    # Polars' sort (both cores, its own allocator) moves the columns in about half the time of a numpy
    # argsort and gathers. Stable: orders of one customer-day stay in row order, so sums repeat.
    frame = frame.sort("__key", maintain_order=True)
    keys = frame["__key"].to_numpy()
    cols = {name: frame[name].to_numpy() for name in frame.columns if name != "__key"}
    del frame
    columns = (keys, cols[_C2], cols["__row"], cols["net"], cols.get("refund"), cols.get("value"))
    edges = _block_edges(keys, bits, BLOCK_ROWS)
    # Each block writes its customers into its own rows of the output arrays.
    step_u64 = np.uint64(1 << bits)
    firsts = np.cumsum(
        [0]
        + [
            1 + np.count_nonzero((keys[lo + 1 : hi] ^ keys[lo : hi - 1]) >= step_u64)
            for lo, hi in itertools.pairwise(edges)
        ]
    )
    out = {name: np.empty(int(firsts[-1]), dtype=dtype) for name, dtype in _BLOCK_OUTPUTS.items()}

    blocks = [
        (
            [c if c is None else c[lo:hi] for c in columns],
            {name: a[firsts[i] : firsts[i + 1]] for name, a in out.items()},
        )
        for i, (lo, hi) in enumerate(itertools.pairwise(edges))
    ]
    del columns, cols, keys  # the blocks' views keep what they need

    def block(arrays: tuple[list[np.ndarray | None], dict[str, np.ndarray]]) -> np.ndarray | None:
        return _block_sums(*arrays[0], arrays[1], bits=bits, margin_rate=margin_rate)

    with ThreadPoolExecutor(max_workers=2) as pool:
        block_gaps = list(pool.map(block, blocks))
        del blocks
        if any(g is None for g in block_gaps):
            return None
        ids_job = pool.submit(tx[CUSTOMER_ID].gather, out.pop("__id_row"))
        channels = channel_of(out.pop("__channel_row"))
        gaps = pl.Series("gap", np.concatenate(block_gaps), dtype=pl.Int32)  # type: ignore[arg-type]
        del block_gaps
        buyer = out.pop("__buyer")

        def days(name: str, known: np.ndarray | None = None) -> pl.Series:
            values = out.pop(name)
            values += np.int32(first_day)
            day = pl.Series(values, dtype=pl.Int32)
            return day if known is None else day.set(pl.Series(~known), None)

        per_customer = pl.DataFrame(
            {
                CUSTOMER_ID: ids_job.result(),
                CHANNEL: channels,
                "orders": out.pop("orders"),
                "revenue": out.pop("revenue"),
                "refunds": out.pop("refunds"),
                "historic_clv": out.pop("historic_clv"),
                "__purchase_days": out.pop("__purchase_days"),
                "__first_p": days("__first_p", buyer),
                "__last_p": days("__last_p", buyer),
                "__first_any": days("__first_any"),
                "__last_any": days("__last_any"),
                "__pnet": out.pop("__pnet"),
                "__fnet": out.pop("__fnet"),
            }
        )
    return per_customer, gaps


BLOCK_ROWS = 1 << 18  # sorted orders summed at a time (whole customers; tests make it small)
# What `_block_sums` writes per customer, and in which type.
_BLOCK_OUTPUTS = {
    "__id_row": np.uint32,
    "__channel_row": np.int64,
    "__buyer": np.bool_,
    "orders": np.int64,
    "revenue": np.float64,
    "refunds": np.float64,
    "historic_clv": np.float64,
    "__purchase_days": np.int64,
    "__first_p": np.int32,
    "__last_p": np.int32,
    "__first_any": np.int32,
    "__last_any": np.int32,
    "__pnet": np.float64,
    "__fnet": np.float64,
}


def _block_edges(keys: np.ndarray, bits: int, rows: int) -> list[int]:
    """Offsets into the sorted keys that cut them into blocks of about `rows`, each at the start of a
    customer (a new value of the bits above the day bits)."""
    edges = [0]
    while keys.size - edges[-1] > rows:
        customer = int(keys[edges[-1] + rows]) >> bits
        if customer + 1 >= 1 << (64 - bits):
            break  # the last customer the key can hold: it runs to the end
        nxt = int(np.searchsorted(keys, np.uint64((customer + 1) << bits), side="left"))
        if nxt >= keys.size:
            break
        edges.append(nxt)
    edges.append(keys.size)
    return edges


def _block_sums(
    keys: np.ndarray,
    twin: np.ndarray,
    row: np.ndarray,
    net: np.ndarray,
    refund: np.ndarray | None,
    value: np.ndarray | None,
    out: dict[str, np.ndarray],
    *,
    bits: int,
    margin_rate: float,
) -> np.ndarray | None:
    """The per-customer sums of one block of sorted orders that starts at a customer's first order,
    written into `out` (one row per customer of the block, `_BLOCK_OUTPUTS`); returns the days between
    consecutive purchase days of each customer, or None when two customers share a hash.

    Day numbers are offsets from the first day of the data; `__id_row` and `__channel_row` are the rows
    of `tx` holding each customer's id and first channel; `__buyer` whether a customer has a purchase
    day at all.
    """
    if refund is None:
        refund = np.negative(net)
        np.maximum(refund, 0.0, out=refund)
    if value is None:
        value = net if margin_rate == 1.0 else net * margin_rate
    new_customer = np.empty(keys.size, dtype=bool)
    new_customer[0] = True
    np.greater_equal(keys[1:] ^ keys[:-1], np.uint64(1 << bits), out=new_customer[1:])
    if np.any(~new_customer[1:] & (twin[1:] != twin[:-1])):
        return None
    customer_rows = np.flatnonzero(new_customer)
    purchase = (net > 0) | ((net == 0) & (refund == 0))  # the rule of `orders`, on arrays
    offset = keys & np.uint64((1 << bits) - 1)  # day offset (u64); becomes the attribution key below

    # Purchase days: runs of equal keys.
    day_starts = np.flatnonzero(_starts(keys))
    d_offset = offset[day_starts].astype(np.int32)
    d_first = new_customer[day_starts]
    d_orders = np.add.reduceat(purchase, day_starts, dtype=np.int32)
    d_purchase = d_orders > 0

    # Channel of the first purchase order (then day, then reading order), else of the first order:
    # the least of (not a purchase, day offset, row) packed into the offset's u64.
    attr = offset
    attr <<= np.uint64(32)
    attr |= row
    attr[~purchase] |= np.uint64(1 << 63)
    channel_row = np.minimum.reduceat(attr, customer_rows) & np.uint64(0xFFFFFFFF)

    # Days between consecutive purchase days of one customer.
    p_days = np.flatnonzero(d_purchase)
    customer_of = np.cumsum(d_first, dtype=np.int32)[p_days]
    gaps = np.diff(d_offset[p_days])[customer_of[1:] == customer_of[:-1]].astype(np.int32)

    d_net = np.add.reduceat(net, day_starts)
    d_refund = np.add.reduceat(refund, day_starts)
    d_value = d_net if value is net else np.add.reduceat(value, day_starts)

    # Customers: runs of days from one customer.
    starts = np.flatnonzero(d_first)
    ends = np.append(starts[1:], d_offset.size) - 1
    position = np.arange(d_offset.size, dtype=np.int32)
    first_pd = np.minimum.reduceat(np.where(d_purchase, position, np.int32(d_offset.size)), starts)
    last_pd = np.maximum.reduceat(np.where(d_purchase, position, np.int32(-1)), starts)
    buyer = last_pd >= 0
    first_pd, last_pd = np.minimum(first_pd, d_offset.size - 1), np.maximum(last_pd, 0)
    revenue = np.add.reduceat(d_net, starts)
    out["__id_row"][:] = row[customer_rows]
    out["__channel_row"][:] = channel_row
    out["__buyer"][:] = buyer
    np.add.reduceat(d_orders, starts, dtype=np.int64, out=out["orders"])
    out["revenue"][:] = revenue
    np.add.reduceat(d_refund, starts, out=out["refunds"])
    out["historic_clv"][:] = revenue if d_value is d_net else np.add.reduceat(d_value, starts)
    np.add.reduceat(d_purchase, starts, dtype=np.int64, out=out["__purchase_days"])
    np.take(d_offset, first_pd, out=out["__first_p"])
    np.take(d_offset, last_pd, out=out["__last_p"])
    np.take(d_offset, starts, out=out["__first_any"])
    np.take(d_offset, ends, out=out["__last_any"])
    np.add.reduceat(np.where(d_purchase, d_net, 0.0), starts, out=out["__pnet"])
    out["__fnet"][:] = np.where(buyer, d_net[first_pd], 0.0)
    return gaps


def _starts(values: np.ndarray) -> np.ndarray:
    """True where a run of equal values begins (always at the first element)."""
    out = np.empty(values.size, dtype=bool)
    if values.size:
        out[0] = True
        out[1:] = values[1:] != values[:-1]
    return out


def _orders_by_hash(
    tx: pl.DataFrame, margin_rate: float, key: pl.Expr
) -> tuple[pl.DataFrame, Callable[[np.ndarray], pl.Series]] | None:
    """Orders with hashed keys, and how to find an order's channel from its row; None on a clash.

    Columns: __key (`key`), __c2 (the customer's twin hash), __row (the order's first row in `tx`),
    net, plus refund and value where they cannot be derived from net (line items; a cost column).
    """
    has_ids = tx[ORDER_ID].null_count() < tx.height
    # A row without an order id is an order of its own (as in order_lines). Polars hashes null to a
    # value, so the row's sequence number is hashed instead.
    no_id = pl.col(ORDER_ID).is_null()

    def order_hash(which: int) -> pl.Expr:
        """Orders hashed; the twin (which + 2) only where line items make orders of several rows."""
        return pl.when(no_id).then(_hash(pl.col(SEQ), which + 1)).otherwise(_hash(pl.col(ORDER_ID), which))

    with_cost = COST in tx.columns and tx[COST].null_count() < tx.height
    lines = (
        order_lines(tx.lazy(), margin_rate=margin_rate)
        .select(
            _hash(pl.col(CUSTOMER_ID), 0).alias(_C),
            _hash(pl.col(CUSTOMER_ID), 1).alias(_C2),
            pl.int_range(pl.len(), dtype=pl.UInt32).alias("__row"),
            _DAY,
            pl.col(AMOUNT).alias("net"),
            *(["value"] if with_cost else []),
            *([order_hash(2).alias(_O)] if has_ids else []),
        )
        .with_columns(key)
        .collect()
    )
    if not (has_ids and lines[_O].n_unique() < lines.height):
        # Every row is an order of its own, with the row's channel.
        channels = tx[CHANNEL]
        return lines.select("__key", _C2, "__row", "net", *(["value"] if with_cost else [])), channels.gather
    # Line items: one order per (customer, order id), in order of its first line. Its channel is the
    # least of its lines' channels, found through codes in sorted name order (null last).
    names = tx[CHANNEL].drop_nulls().unique().sort()
    codes = tx[CHANNEL].replace_strict(
        names, pl.int_range(names.len(), dtype=pl.UInt32, eager=True), default=None
    )
    orders = (
        lines.with_columns(
            tx.select(order_hash(4).alias(_O2)).to_series(),
            codes.alias("__ch"),
            _refund(pl.col("net")).alias("refund"),
            *([] if with_cost else [(pl.col("net") * margin_rate).alias("value")]),
        )
        .group_by(_C, _O, maintain_order=True)
        .agg(
            pl.col(_C2).min(),
            (pl.col(_C2).n_unique() + pl.col(_O2).n_unique() > 2).alias("__clash"),
            pl.col("__row").first(),
            pl.col("__ch").min().fill_null(names.len()),
            pl.col(_DAY).min(),
            pl.col("net").sum(),
            pl.col("refund").sum(),
            pl.col("value").sum(),
        )
    )
    if orders["__clash"].any():
        return None
    code_of_row = np.zeros(tx.height, dtype=np.int64)
    code_of_row[orders["__row"].to_numpy()] = orders["__ch"].to_numpy()
    named = names.append(pl.Series([None], dtype=pl.String))

    def channel_of(rows: np.ndarray) -> pl.Series:
        return named.gather(code_of_row[rows])

    return orders.with_columns(key).select("__key", _C2, "__row", "net", "refund", "value"), channel_of
