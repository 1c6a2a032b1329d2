"""Period labels: the tabled lookup (`period_label_in`) gives the labels strftime gives every cell."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clvtool.metrics import periods
from clvtool.metrics.periods import PERIODS, period_label, period_label_in


def test_labels_by_hand() -> None:
    dates = pl.Series("d", [dt.date(2024, 1, 1), dt.date(2024, 3, 31), dt.date(2020, 12, 31), None])
    expected = {
        "month": ["2024-01", "2024-03", "2020-12", None],
        "quarter": ["2024-Q1", "2024-Q1", "2020-Q4", None],
        "week": ["2024-W01", "2024-W13", "2020-W53", None],  # ISO weeks: 2020 has 53
    }
    for period, labels in expected.items():
        got = pl.select(period_label_in(pl.lit(dates), period, dt.date(2020, 12, 31), dt.date(2024, 3, 31)))
        assert got.to_series().to_list() == labels
        assert pl.select(period_label(pl.lit(dates), period)).to_series().to_list() == labels


@settings(max_examples=80, deadline=None)
@given(
    st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2199, 12, 31)),
    st.lists(st.one_of(st.none(), st.integers(0, 4000)), min_size=1, max_size=30),
    st.sampled_from(PERIODS),
    st.integers(0, 3),
)
def test_tabled_labels_equal_formatted_ones(start: dt.date, offsets: list, period: str, limit: int) -> None:
    room = (dt.date(2199, 12, 31) - start).days
    days = pl.Series(
        "d", [None if o is None else start + dt.timedelta(days=min(o, room)) for o in offsets], dtype=pl.Date
    )
    known = days.drop_nulls()
    first, last = (known.min(), known.max()) if known.len() else (start, start)
    with pytest.MonkeyPatch.context() as mp:
        if limit == 0:  # a span wider than the table: every cell formatted
            mp.setattr(periods, "LABEL_DAYS", 1)
        got = pl.select(period_label_in(pl.lit(days), period, first, last)).to_series()
    assert got.to_list() == pl.select(period_label(pl.lit(days), period)).to_series().to_list()
