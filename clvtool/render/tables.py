"""Rich tables for the terminal: aligned, formatted numbers; cells as Text so [brackets] survive."""

from __future__ import annotations

from typing import Any

import polars as pl

from clvtool.metrics.columns import FRACTION, KINDS, decimals_for
from clvtool.render.writers import fixed_limit


def _format(value: Any, column: str, dtype: pl.DataType, money_decimals: int) -> str:
    if value is None:
        return ""
    if dtype.is_float():
        if value != value or value in (float("inf"), float("-inf")):
            return ""
        value = round(value, 9)  # as the data writers: no last-bit noise of parallel sums
        if KINDS.get(column) == FRACTION:
            return f"{value * 100:,.2f}%"
        decimals = decimals_for(column, money_decimals)
        if abs(value) >= fixed_limit(decimals):  # as the data writers: float notation, not float noise
            return repr(value)
        return f"{value:,.{decimals}f}"
    if dtype.is_integer():
        return f"{value:,}"
    return str(value)


def rich_table(
    df: pl.DataFrame,
    *,
    money_decimals: int = 2,
    title: str | None = None,
    caption: str | None = None,
    width: int | None = None,
) -> Any:
    """A rich.table.Table of the frame; numbers right-aligned with thousands separators.

    Cells are never cut: when the columns do not fit in `width`, the right-most columns are left out
    and the caption names them.
    """
    from rich import box
    from rich.table import Table
    from rich.text import Text

    schema = df.schema
    cells = {
        c: [_format(v, c, t, money_decimals) for v in df.get_column(c).to_list()] for c, t in schema.items()
    }
    natural = {c: max([len(c), *(len(x) for x in cells[c])]) for c in schema}
    shown: list[str] = []
    used = 0
    for c in schema:
        need = natural[c] + (2 if shown else 0)
        if width is not None and shown and used + need > width:
            break
        shown.append(c)
        used += need
    hidden = [c for c in schema if c not in shown]
    if hidden:
        note = f"not shown for width: {', '.join(hidden)} (use --columns or -f csv)"
        caption = f"{caption}\n{note}" if caption else note
    table = Table(
        title=title,
        caption=caption,
        box=box.SIMPLE_HEAD,
        header_style="bold",
        caption_justify="left",
        pad_edge=False,
        collapse_padding=True,
    )
    for name in shown:
        numeric = schema[name].is_numeric()
        table.add_column(
            Text(name), justify="right" if numeric else "left", no_wrap=True, min_width=natural[name]
        )
    for i in range(df.height):
        table.add_row(*[Text(cells[c][i]) for c in shown])
    return table


def segment_actions(table: Any, summary: pl.DataFrame) -> Any:
    """The segment table followed by one line per non-empty segment: its suggested action."""
    from rich.console import Group
    from rich.text import Text

    lines = [Text("suggested actions", style="bold")]
    for segment, customers, action in summary.select("segment", "customers", "action").iter_rows():
        if customers and action:
            line = Text(f"{segment}: ", style="bold")
            line.append(action)
            lines.append(line)
    return Group(table, *lines)
