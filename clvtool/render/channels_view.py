"""The `channels` command's terminal view: the channel table with LTV:CAC bars, unallocated spend, totals."""

from __future__ import annotations

from typing import Any

import polars as pl

from clvtool.render.tables import rich_table

REFERENCE_LTV_CAC = 3.0
BAR_WIDTH = 16


def ltv_cac_bar(value: float | None, scale: float) -> Any:
    """A small bar for one LTV:CAC ratio with a tick at the 3:1 reference line."""
    from rich.text import Text

    if value is None:
        return Text(" " * BAR_WIDTH)
    filled = min(BAR_WIDTH, round(value / scale * BAR_WIDTH))
    tick = min(BAR_WIDTH - 1, round(REFERENCE_LTV_CAC / scale * BAR_WIDTH))
    text = Text()
    for i in range(BAR_WIDTH):
        if i < filled:
            text.append("█", style="green" if value >= REFERENCE_LTV_CAC else "yellow")
        elif i == tick:
            text.append("│", style="dim")
        else:
            text.append(" ")
    return text


def print_channels(
    console: Any,
    channels: pl.DataFrame,
    unallocated: pl.DataFrame,
    totals: dict[str, Any],
    notes: list[str],
    *,
    money_decimals: int,
    caption: str,
) -> None:
    """Channel table, then a bar per channel, unallocated spend and the totals line."""
    from rich.table import Table
    from rich.text import Text

    console.print(
        rich_table(
            channels, money_decimals=money_decimals, title="Channels", caption=caption, width=console.width
        )
    )
    ratios = [r for r in channels["ltv_cac"].to_list() if r is not None]
    scale = max([REFERENCE_LTV_CAC * 4 / 3, *ratios])
    bars = Table(
        box=None,
        show_header=True,
        header_style="bold",
        pad_edge=False,
        title=f"LTV:CAC (│ marks {REFERENCE_LTV_CAC:g}:1)",
    )
    bars.add_column("channel")
    bars.add_column("LTV:CAC", justify="right")
    bars.add_column("")
    for name, ratio in channels.select("channel", "ltv_cac").iter_rows():
        label = "" if ratio is None else f"{ratio:,.1f}:1"
        bars.add_row(Text(str(name)), Text(label), ltv_cac_bar(ratio, scale))
    console.print(bars)
    if unallocated.height:
        console.print(
            rich_table(
                unallocated, money_decimals=money_decimals, title="Unallocated spend", width=console.width
            )
        )
    fmt = lambda v: "—" if v is None else f"{v:,.{money_decimals}f}"  # noqa: E731
    console.print(
        Text(
            f"spend {fmt(totals['spend'])} = allocated {fmt(totals['allocated'])} + unallocated "
            f"{fmt(totals['unallocated'])} · new customers {totals['new_customers']:,} · blended CAC "
            f"{fmt(totals['blended_cac'])} · paid CAC {fmt(totals['paid_cac'])}"
        )
    )
    for note in notes:
        console.print(Text(f"note: {note}", style="yellow"))
