"""Calendar periods (month, week, quarter) as integer keys and labels, SQL-portable arithmetic."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import polars as pl

PERIODS = ("month", "week", "quarter")


def period_index(date: pl.Expr, period: str) -> pl.Expr:
    """An integer that grows by one per period: year*12+month-1, year*4+quarter-1, or ISO-week days."""
    if period == "month":
        return date.dt.year().cast(pl.Int32) * 12 + date.dt.month().cast(pl.Int32) - 1
    if period == "quarter":
        return date.dt.year().cast(pl.Int32) * 4 + (date.dt.month().cast(pl.Int32) - 1) // 3
    if period == "week":
        # Monday-based weeks: days since 1970-01-05 (a Monday) divided by 7.
        days = date.cast(pl.Int32)
        return (days - 4) // 7
    raise ValueError(f"unknown period {period!r}")


def period_label(date: pl.Expr, period: str) -> pl.Expr:
    """'2024-03' for months, '2024-Q1' for quarters, ISO '2024-W09' for weeks."""
    if period == "month":
        return date.dt.strftime("%Y-%m")
    if period == "quarter":
        q = ((date.dt.month() - 1) // 3 + 1).cast(pl.String)
        return pl.concat_str(date.dt.year().cast(pl.String), pl.lit("-Q"), q)
    if period == "week":
        return date.dt.strftime("%G-W%V")
    raise ValueError(f"unknown period {period!r}")


LABEL_DAYS = 100_000  # widest span of days whose labels are tabled (about 270 years)


def by_day(
    date: pl.Expr, first: dt.date, last: dt.date, label: Callable[[pl.Expr], pl.Expr]
) -> pl.Expr | None:
    """label(date) for dates known to lie in first..last: each day's label is computed once and the
    cells look theirs up (formatting every cell costs several times more); None for a span wider than
    LABEL_DAYS."""
    if (last - first).days >= LABEL_DAYS:
        return None
    days = pl.date_range(first, last, eager=True)
    labels = pl.select(label(pl.lit(days))).to_series()
    return pl.lit(labels).gather(date.cast(pl.Int32) - pl.lit(first, pl.Date).cast(pl.Int32))


def period_label_in(date: pl.Expr, period: str, first: dt.date, last: dt.date) -> pl.Expr:
    """period_label of dates known to lie in first..last, looked up per day (`by_day`)."""
    tabled = by_day(date, first, last, lambda d: period_label(d, period))
    return period_label(date, period) if tabled is None else tabled
