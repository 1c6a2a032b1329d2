"""OrderedFrame: a frame in another row order, put together a slice at a time, equals the frame
gathered whole under every operation the commands use."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal, assert_series_equal

from clvtool.frames import OrderedFrame


def parts(n: int, seed: int) -> tuple[pl.DataFrame, pl.Series, pl.DataFrame]:
    rng = np.random.default_rng(seed)
    base = pl.DataFrame(
        {
            "id": [f"c{i:03d}" for i in range(n)],
            "v": pl.Series(rng.choice([1.0, 2.0, 2.0, np.nan, 5.0], n))
            .fill_nan(None)
            .fill_null(float("nan")),
            "w": pl.Series([None if i % 4 == 0 else int(x) for i, x in enumerate(rng.integers(0, 3, n))]),
        }
    )
    order = pl.Series(rng.permutation(n), dtype=pl.UInt32)
    extra = pl.DataFrame({"rank": list(range(1, n + 1))})
    return base, order, extra


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 30), st.integers(0, 1000), st.integers(1, 8), st.booleans(), st.integers(0, 40))
def test_operations_equal_the_gathered_frame(
    n: int, seed: int, rows: int, descending: bool, top: int
) -> None:
    base, order, extra = parts(n, seed)
    ordered = OrderedFrame.of(base, order, extra)
    whole = pl.concat([base[order], extra], how="horizontal")
    assert_frame_equal(ordered.collect(), whole)
    assert ordered.height == n and list(ordered.schema) == whole.columns
    slices = list(ordered.slices(rows))
    assert len(slices) == max(1, -(-n // rows))
    assert_frame_equal(pl.concat(slices), whole)
    for column in ("v", "w", "rank"):
        want = whole.sort(column, descending=descending, nulls_last=True, maintain_order=True)
        assert_frame_equal(ordered.sort(column, descending=descending).collect(), want)
    picked = ordered.select(["rank", "id"]).head(top)
    assert_frame_equal(picked.collect(), whole.select("rank", "id").head(top))
    assert_series_equal(ordered.column("v"), whole["v"])


def test_unknown_columns_and_clashes_are_refused() -> None:
    base, order, extra = parts(3, 1)
    with pytest.raises(pl.exceptions.ColumnNotFoundError):
        OrderedFrame.of(base, order, extra).select(["nope"])
    with pytest.raises(ValueError, match="both parts"):
        OrderedFrame.of(base, order, base.select("id"))
    with pytest.raises(ValueError, match="one row per index"):
        OrderedFrame.of(base, order, extra.head(1))
