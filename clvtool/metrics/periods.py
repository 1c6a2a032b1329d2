"""Calendar periods (month, week, quarter) as integer keys and labels, SQL-portable arithmetic."""

from __future__ import annotations

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
