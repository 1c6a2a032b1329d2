"""RFM scores and named segments (PRODUCT §4.5).

R = days since the last order (fewest days = 5), F = orders (first included), M = revenue. Each is scored
in exact quintiles 1..5: customers are ranked by the value and the customer at 0-based position i of n
gets score i * 5 // n + 1, so the five groups differ in size by at most one. Customers with equal values
can land in adjacent quintiles (the price of exact quintiles), so ties are broken by a second metric
first and by customer_id last: F ties by revenue, M ties by orders, R ties by customer_id. Breaking F
ties by customer_id alone would hand F = 1 to the one-order customers with the smallest ids, which are
usually the oldest, and leave New Customers and Promising empty.

The segment comes from R and FM = round((F + M) / 2), halves rounded up, on a 5 x 5 grid. The default
grid (DEFAULT_GRID) resolves the widely published 11-segment table of R and FM ranges (Champions R 4-5 /
FM 4-5, Loyal Customers R 2-5 / FM 3-5, Potential Loyalists R 3-5 / FM 1-3, New Customers R 4-5 / FM 1,
Promising R 3-4 / FM 1, Need Attention R 2-3 / FM 2-3, About to Sleep R 2-3 / FM 1-2, At Risk R 1-2 /
FM 2-5, Can't Lose Them R 1 / FM 4-5, Hibernating R 1-2 / FM 1-2, Lost R 1-2 / FM 1-2). Those ranges
overlap, and the usual first-match reading of them never reaches New Customers, Promising or Can't Lose
Them; the grid gives every cell exactly one segment inside that segment's published ranges, so all 11
occur.

A custom map (config) names, for each segment, the "R,FM" cells it takes: each side a score 1-5, a range
"4-5", or "*" for all five; together the cells must cover the 25 cells exactly once. Example:

    Champions: ["4-5,4-5"]
    Loyal: ["2-3,3-5", "4-5,3"]
    Sleeping: ["1,*", "2-5,1-2"]

A cell given to two segments, or a cell left out, is a ConfigError that names the cell.

Everything here works on the small per-customer frame.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from clvtool.errors import ConfigError
from clvtool.io.schema import CUSTOMER_ID
from clvtool.metrics.ranking import text_order

QUINTILES = 5
SMALL_SAMPLE = 10  # fewer customers than this: scores are still given, with a warning

CHAMPIONS = "Champions"
LOYAL = "Loyal Customers"
POTENTIAL = "Potential Loyalists"
NEW = "New Customers"
PROMISING = "Promising"
NEED_ATTENTION = "Need Attention"
ABOUT_TO_SLEEP = "About to Sleep"
AT_RISK = "At Risk"
CANT_LOSE = "Can't Lose Them"
HIBERNATING = "Hibernating"
LOST = "Lost"
SEGMENTS = (
    CHAMPIONS,
    LOYAL,
    POTENTIAL,
    NEW,
    PROMISING,
    NEED_ATTENTION,
    ABOUT_TO_SLEEP,
    AT_RISK,
    CANT_LOSE,
    HIBERNATING,
    LOST,
)

# Rows: FM = 5 (top) down to 1; columns: R = 1 .. 5 (most recent on the right).
DEFAULT_GRID: dict[int, tuple[str, str, str, str, str]] = {
    5: (CANT_LOSE, AT_RISK, LOYAL, CHAMPIONS, CHAMPIONS),
    4: (CANT_LOSE, AT_RISK, LOYAL, CHAMPIONS, CHAMPIONS),
    3: (AT_RISK, AT_RISK, NEED_ATTENTION, LOYAL, LOYAL),
    2: (HIBERNATING, HIBERNATING, ABOUT_TO_SLEEP, POTENTIAL, POTENTIAL),
    1: (LOST, LOST, ABOUT_TO_SLEEP, PROMISING, NEW),
}

ACTIONS: dict[str, str] = {
    CHAMPIONS: "Reward them: early access, loyalty perks and referral requests; they need no discount.",
    LOYAL: "Upsell higher-value products and ask for reviews; keep them close with regular news.",
    POTENTIAL: "Invite them into a loyalty or membership programme with personal recommendations.",
    NEW: "Onboard them: a welcome series and a good reason to place a second order soon.",
    PROMISING: "Build familiarity with useful content and a modest incentive for the next order.",
    NEED_ATTENTION: "Send a limited-time offer based on what they bought before.",
    ABOUT_TO_SLEEP: "Reconnect with popular products and a small discount before they lapse.",
    AT_RISK: "Win them back with personal messages and offers; ask what changed.",
    CANT_LOSE: "Reach out personally with your best offer: they were among your best customers.",
    HIBERNATING: "Offer relevant products at a special price; otherwise contact them less often.",
    LOST: "Try one low-cost reactivation campaign, then stop spending on them.",
}

Cell = tuple[int, int]  # (R, FM)


@dataclass(frozen=True)
class SegmentMap:
    """Segment of every (R, FM) cell, and the order segments are listed in."""

    cells: Mapping[Cell, str]
    order: tuple[str, ...]
    actions: Mapping[str, str]

    def frame(self) -> pl.DataFrame:
        """r, fm, segment: the 25 cells as a lookup table."""
        items = sorted(self.cells.items())
        return pl.DataFrame(
            {
                "r": [c[0] for c, _ in items],
                "fm": [c[1] for c, _ in items],
                "segment": [s for _, s in items],
            },
            schema={"r": pl.Int8, "fm": pl.Int8, "segment": pl.String},
        )


def default_segment_map() -> SegmentMap:
    cells = {(r, fm): row[r - 1] for fm, row in DEFAULT_GRID.items() for r in range(1, 6)}
    return SegmentMap(cells=cells, order=SEGMENTS, actions=ACTIONS)


def _side(text: str, what: str, where: str) -> range:
    text = text.strip()
    if text == "*":
        return range(1, 6)
    low, sep, high = text.partition("-")
    try:
        a = int(low)
        b = int(high) if sep else a
    except ValueError:
        a = b = 0
    if not (1 <= a <= b <= 5):
        raise ConfigError(
            f'{where}: {what} {text!r} is not a score; use 1-5, a range like 4-5, or * (e.g. "4-5,3").'
        )
    return range(a, b + 1)


def parse_segment_map(
    spec: Mapping[str, Sequence[str] | str], actions: Mapping[str, str] | None = None
) -> SegmentMap:
    """A custom map {segment: ["R,FM", ...]} -> SegmentMap; the 25 cells must each be named once.

    Segments keep the order given. Actions default to those of the standard segments (empty for new
    names) and can be set per segment with `actions`.
    """
    cells: dict[Cell, str] = {}
    for segment, entries in spec.items():
        where = f"segments.{segment}"
        if not isinstance(entries, (str, list, tuple)):
            raise ConfigError(f'{where}: {entries!r} is not a list of cells; write e.g. ["4-5,4-5", "3,5"].')
        items = [entries] if isinstance(entries, str) else list(entries)
        for entry in items:
            r_text, sep, fm_text = str(entry).partition(",")
            if not sep:
                raise ConfigError(f'{where}: {entry!r} is not a cell; write cells as "R,FM", e.g. "5,4-5".')
            for r in _side(r_text, "R", where):
                for fm in _side(fm_text, "FM", where):
                    if (r, fm) in cells and cells[(r, fm)] != segment:
                        raise ConfigError(
                            f"{where}: cell R={r}, FM={fm} already belongs to {cells[(r, fm)]!r}; "
                            "give every cell to one segment."
                        )
                    cells[(r, fm)] = segment
    missing = [(r, fm) for r in range(1, 6) for fm in range(1, 6) if (r, fm) not in cells]
    if missing:
        listed = ", ".join(f"{r},{fm}" for r, fm in missing[:5]) + (" …" if len(missing) > 5 else "")
        raise ConfigError(
            f"segments: {len(missing)} R,FM cells have no segment ({listed}); every one of the 25 cells "
            'needs a segment (use ranges such as "1-2,*").'
        )
    merged = {s: ACTIONS.get(s, "") for s in spec} | dict(actions or {})
    return SegmentMap(cells=cells, order=tuple(spec), actions=merged)


def _selected_scores(keys: list[np.ndarray], n: int, ids: pl.Series | None = None) -> np.ndarray:
    """Quintile scores 1..5 (Int8, in row order) by ascending `keys`, the last ties by `ids` (text)
    or, without them, in row order.

    The rows in that order are cut into five groups whose sizes differ by at most one. A row's score is 1 plus the number of quintile boundaries at or before its place in the order
    (keys..., id or row). Each boundary is the row at one place in that order, found by selection: a
    partition of the first key, then of the next key among the rows tied with the boundary's value,
    and so on. Every row is then compared with the four boundary rows. Linear in the rows; on
    millions of customers several times faster than the sorts. Keys must hold no NaN.
    """
    scores = np.ones(n, dtype=np.int8)
    places = [(s * n + QUINTILES - 1) // QUINTILES for s in range(1, QUINTILES)]
    places = [b for b in places if b < n]
    if not places:
        return scores
    first = np.partition(keys[0], sorted(set(places)))
    for place in places:
        scores += _at_or_after(keys, place, first[place], ids)
    return scores


def _at_or_after(keys: list[np.ndarray], place: int, value: float, ids: pl.Series | None) -> np.ndarray:
    """Rows whose place in the order (keys..., id or row) is at least `place`; `value` is keys[0] there."""
    after = keys[0] > value
    tied_first = np.flatnonzero(keys[0] == value)  # ascending: row order breaks the last ties
    below = keys[0].size - int(np.count_nonzero(after)) - tied_first.size  # no NaN: <, == or >
    rank, rows, values = place - below, tied_first, []
    for key in keys[1:]:
        tied = key[rows]
        at = np.partition(tied, rank)[rank]
        rank -= int(np.count_nonzero(tied < at))
        rows = rows[tied == at]
        values.append(at)
    # Lexicographic comparison with the boundary row, narrowing to the rows still tied.
    tied_rows = tied_first
    for key, at in zip(keys[1:], values, strict=True):
        tied = key[tied_rows]
        after[tied_rows[tied > at]] = True
        tied_rows = tied_rows[tied == at]
    # `rows` now holds the rows tied with the boundary on every key, in row order: the boundary and
    # those after it in the last order (id or row) are at or after the place.
    if ids is not None:
        rows = rows[text_order(ids.gather(rows)).to_numpy()]
    after[rows[rank:]] = True
    return after


def rfm_scores(customers: pl.DataFrame, segment_map: SegmentMap | None = None) -> pl.DataFrame:
    """The customers frame plus r, f, m (Int8 1..5), fm (Int8), rfm ("545") and segment.

    Needs customer_id, days_since_last, orders and revenue. Row order is kept.
    """
    mapping = segment_map or default_segment_map()
    n = customers.height
    ids = customers[CUSTOMER_ID]  # the last ties go by customer_id

    def key(name: str, sign: float = 1.0) -> np.ndarray:
        # Missing values rank lowest; NaN (never from the summary) ranks highest, as in a sort.
        values = (customers[name].cast(pl.Float64) * sign).fill_nan(np.inf).fill_null(-np.inf)
        return values.to_numpy()

    days, orders, revenue = key("days_since_last", -1.0), key("orders"), key("revenue")
    r = _selected_scores([days], n, ids)
    f = _selected_scores([orders, revenue], n, ids)
    m = _selected_scores([revenue, orders], n, ids)
    fm = ((f.astype(np.int16) + m + 1) // 2).astype(np.int8)
    # Labels and segments by lookup in small tables: "111".."555" and the 25 cells.
    labels = pl.Series([f"{a}{b}{c}" for a in range(1, 6) for b in range(1, 6) for c in range(1, 6)])
    cells = pl.Series([mapping.cells[(a, b)] for a in range(1, 6) for b in range(1, 6)], dtype=pl.String)
    code = (r.astype(np.int64) - 1) * 25 + (f.astype(np.int64) - 1) * 5 + (m.astype(np.int64) - 1)
    return customers.with_columns(
        pl.Series("r", r),
        pl.Series("f", f),
        pl.Series("m", m),
        pl.Series("fm", fm),
        labels.gather(code).alias("rfm"),
        cells.gather((r.astype(np.int64) - 1) * 5 + (fm.astype(np.int64) - 1)).alias("segment"),
    )


@dataclass(frozen=True)
class SegmentResult:
    """Scored customers and the per-segment table."""

    customers: pl.DataFrame  # input columns + r, f, m, fm, rfm, segment
    summary: pl.DataFrame  # see segment_summary
    clv_column: str  # the column behind mean_clv
    few_customers: bool  # fewer than SMALL_SAMPLE customers: quintiles say little

    @property
    def warning(self) -> str | None:
        if not self.few_customers:
            return None
        n = self.customers.height
        return (
            f"only {n} customer{'s' if n != 1 else ''}: RFM quintiles are defined but say little below "
            f"{SMALL_SAMPLE} customers."
        )


def clv_column_of(customers: pl.DataFrame) -> str:
    """total_clv when predictions exist (any non-null), else historic_clv."""
    if "total_clv" in customers.columns and customers["total_clv"].null_count() < customers.height:
        return "total_clv"
    return "historic_clv"


def segment_summary(
    scored: pl.DataFrame, segment_map: SegmentMap | None = None, clv_column: str | None = None
) -> pl.DataFrame:
    """Per segment, in map order (empty segments included): segment, customers, share (of customers),
    revenue, revenue_share (of total revenue; None when that is not positive), mean_clv,
    mean_days_since_last, action."""
    mapping = segment_map or default_segment_map()
    clv = clv_column or clv_column_of(scored)
    n = scored.height
    total_revenue = float(scored["revenue"].sum()) if n else 0.0
    grouped = scored.group_by("segment").agg(
        pl.len().cast(pl.Int64).alias("customers"),
        pl.col("revenue").sum().alias("revenue"),
        pl.col(clv).cast(pl.Float64).mean().alias("mean_clv"),
        pl.col("days_since_last").cast(pl.Float64).mean().alias("mean_days_since_last"),
    )
    skeleton = pl.DataFrame(
        {
            "segment": list(mapping.order),
            "action": [mapping.actions.get(s, "") for s in mapping.order],
            "__order": list(range(len(mapping.order))),
        }
    )
    revenue_share = pl.col("revenue") / total_revenue if total_revenue > 0 else pl.lit(None, dtype=pl.Float64)
    return (
        skeleton.join(grouped, on="segment", how="left")
        .sort("__order")
        .with_columns(pl.col("customers").fill_null(0), pl.col("revenue").fill_null(0.0))
        .with_columns(
            (pl.col("customers").cast(pl.Float64) / n if n else pl.lit(None, dtype=pl.Float64)).alias(
                "share"
            ),
            revenue_share.alias("revenue_share"),
        )
        .select(
            "segment",
            "customers",
            "share",
            "revenue",
            "revenue_share",
            "mean_clv",
            "mean_days_since_last",
            "action",
        )
    )


def segments(customers: pl.DataFrame, segment_map: SegmentMap | None = None) -> SegmentResult:
    """RFM scores, segments and the per-segment table of the customers frame."""
    mapping = segment_map or default_segment_map()
    scored = rfm_scores(customers, mapping)
    clv = clv_column_of(customers)
    return SegmentResult(
        customers=scored,
        summary=segment_summary(scored, mapping, clv),
        clv_column=clv,
        few_customers=customers.height < SMALL_SAMPLE,
    )
