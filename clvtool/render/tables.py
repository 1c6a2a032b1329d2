"""Rich tables for the terminal: aligned, formatted numbers; cells as Text so [brackets] survive."""

from __future__ import annotations

from typing import Any

import polars as pl

from clvtool.metrics.columns import FRACTION, KINDS, decimals_for


def _format(value: Any, column: str, dtype: pl.DataType, money_decimals: int) -> str:
    if value is None:
        return ""
    if dtype.is_float():
        if value != value or value in (float("inf"), float("-inf")):
            return ""
        if KINDS.get(column) == FRACTION and column in ("share", "cumulative_share"):
            return f"{value * 100:,.2f}%"
        return f"{value:,.{decimals_for(column, money_decimals)}f}"
    if dtype.is_integer():
        return f"{value:,}"
    return str(value)


def rich_table(
    df: pl.DataFrame,
    *,
    money_decimals: int = 2,
    title: str | None = None,
    caption: str | None = None,
) -> Any:
    """A rich.table.Table of the frame; numbers right-aligned with thousands separators."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(
        title=title,
        caption=caption,
        box=box.SIMPLE_HEAD,
        header_style="bold",
        caption_justify="left",
        pad_edge=False,
    )
    schema = df.schema
    for name, dtype in schema.items():
        numeric = dtype.is_numeric()
        table.add_column(
            Text(name), justify="right" if numeric else "left", no_wrap=numeric or dtype == pl.Date
        )
    for row in df.iter_rows():
        table.add_row(
            *[Text(_format(v, c, t, money_decimals)) for v, (c, t) in zip(row, schema.items(), strict=True)]
        )
    return table
