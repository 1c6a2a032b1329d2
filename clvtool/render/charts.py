"""Terminal charts with Rich: cohort heatmap, decile bars, Lorenz curve, Pareto headline.

Each function takes an engine result and returns a Rich renderable; nothing here computes a metric.
Rich is imported inside the functions so importing this module stays cheap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clvtool.metrics.cohorts import CohortResult
    from clvtool.metrics.concentration import ParetoResult

DEFAULT_WIDTH = 120
_BLOCKS = " ▏▎▍▌▋▊▉█"  # eighths of a character cell
# Braille dot bits by (x, y) inside a 2 x 4 cell.
_BRAILLE = {(0, 0): 0x01, (0, 1): 0x02, (0, 2): 0x04, (1, 0): 0x08, (1, 1): 0x10, (1, 2): 0x20,
            (0, 3): 0x40, (1, 3): 0x80}  # fmt: skip
_METRIC_TITLES = {
    "retention": "retention (share of the cohort with an order)",
    "active": "active customers (with an order)",
    "revenue": "revenue",
    "value": "value (margin)",
    "cumulative-value": "cumulative value per customer",
    "cumulative-value-minus-cac": "cumulative value per customer minus CAC",
}


# ---------------------------------------------------------------- cohort heatmap


def _cell_text(value: Any, unit: str, money_decimals: int) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if unit == "fraction":
        return f"{value * 100:.0f}%"
    if unit == "count":
        return f"{round(value):,}"
    return f"{value:,.{money_decimals}f}"


def _heat_style(value: Any, scale: float) -> str:
    """Background shade for a cell: green ramp for positive values, red for negative."""
    if value is None or scale <= 0 or not math.isfinite(value):
        return ""
    ratio = min(abs(value) / scale, 1.0)
    if value >= 0:
        low, high = (18, 38, 30), (46, 160, 90)
    else:
        low, high = (45, 20, 20), (190, 50, 50)
    r, g, b = (round(lo + (hi - lo) * ratio) for lo, hi in zip(low, high, strict=True))
    fg = "black" if ratio > 0.6 else "white"
    return f"{fg} on #{r:02x}{g:02x}{b:02x}"


def _reached(row: Sequence[Any]) -> int:
    """Columns a cohort has reached: the non-null cells (they form a prefix of the row)."""
    return sum(1 for v in row if v is not None)


def cohort_heatmap(
    result: CohortResult,
    *,
    width: int = DEFAULT_WIDTH,
    all_cohorts: bool = False,
    money_decimals: int = 0,
    more_hint: str | None = None,
) -> Any:
    """A Rich table of the cohort matrix with shaded cells and the weighted-average row.

    Unless `all_cohorts`, only the most recent cohorts are shown, as many as fit in `width` (the oldest
    shown cohort has the most columns); the caption says how many were left out, followed by
    `more_hint` (e.g. "--all shows every cohort").
    """
    from rich.table import Table
    from rich.text import Text

    wide = result.wide
    unit = result.unit
    k_names = wide.columns[2:]
    rows = [(r[0], r[1], list(r[2:])) for r in wide.iter_rows()]
    average = result.average_row()
    avg_cells = list(average.row(0)[2:]) if average.height else []

    texts = [[_cell_text(v, unit, money_decimals) for v in cells] for _, _, cells in rows]
    avg_texts = [_cell_text(v, unit, money_decimals) for v in avg_cells]
    cell_w = max(
        [len(k) for k in k_names] + [len(t) for row in texts for t in row] + [len(t) for t in avg_texts] + [1]
    )
    label_w = max([len("cohort"), len("weighted average")] + [len(str(r[0])) for r in rows])
    cust_w = max(
        [len("customers")] + [len(f"{r[1]:,}") for r in rows] + [len(f"{average['customers'][0]:,}")]
    )

    shown = list(range(len(rows)))
    ncols = len(k_names)
    fit = max((width - label_w - 1 - cust_w) // (cell_w + 1), 1)
    if all_cohorts and rows:  # every cohort, as many columns as fit
        ncols = min(fit, len(k_names))
    if not all_cohorts and rows:
        shown = []
        for i in range(len(rows) - 1, -1, -1):  # newest first; the newest is always shown
            if shown and _reached(rows[i][2]) > fit:
                break
            shown.insert(0, i)
        ncols = min(max(_reached(rows[i][2]) for i in shown), fit, len(k_names))

    # Shade against the largest magnitude among the shown cells after column 0 (retention is 100 % at 0).
    shade_from = 1 if ncols > 1 else 0
    magnitudes = [abs(v) for i in shown for v in rows[i][2][shade_from:ncols] if v is not None]
    scale = max(magnitudes, default=0.0)

    caption_parts = [
        f"{result.period}s since the first order; blank = not reached yet; "
        "weighted average over every cohort that reached the column"
    ]
    if len(shown) < len(rows):
        hidden = f"showing the {len(shown)} most recent of {len(rows)} cohorts"
        caption_parts.append(f"{hidden}; {more_hint}" if more_hint else hidden)
    if ncols < len(k_names):
        caption_parts.append(f"columns after {ncols - 1} not shown for width")
    table = Table(
        title=f"{_METRIC_TITLES.get(result.metric, result.metric)} by {result.period} cohort",
        caption="\n".join(caption_parts),
        caption_justify="left",
        box=None,
        pad_edge=False,
        collapse_padding=True,
        show_edge=False,
        header_style="bold",
    )
    table.add_column(Text("cohort"), justify="left", no_wrap=True, min_width=label_w)
    table.add_column(Text("customers"), justify="right", no_wrap=True, min_width=cust_w)
    for name in k_names[:ncols]:
        table.add_column(Text(name), justify="right", no_wrap=True, min_width=cell_w, max_width=cell_w)
    for i in shown:
        label, customers, cells = rows[i]
        table.add_row(
            Text(str(label)),
            Text(f"{customers:,}"),
            *[Text(texts[i][k], style=_heat_style(cells[k], scale)) for k in range(ncols)],
        )
    if average.height:
        table.add_section()
        table.add_row(
            Text("weighted average", style="bold"),
            Text(f"{average['customers'][0]:,}", style="bold"),
            *[Text(avg_texts[k], style="bold") for k in range(ncols)],
        )
    return table


# ---------------------------------------------------------------- Pareto


def pareto_headline(result: ParetoResult) -> Any:
    """The one-sentence summary, in bold."""
    from rich.text import Text

    return Text(result.headline(), style="bold")


def _bar(fraction: float, cells: int) -> str:
    eighths = max(0, round(fraction * cells * 8))
    full, rest = divmod(eighths, 8)
    return "█" * full + (_BLOCKS[rest] if rest else "")


def decile_bars(result: ParetoResult, *, width: int = 80) -> Any:
    """One bar per decile of customers (D1 = the top 10 %) for its share of the total."""
    from rich.console import Group
    from rich.text import Text

    title = Text(f"share of {result.label} by decile of customers (D1 = top 10 %)", style="bold")
    if not result.defined:
        return Group(title, Text(result.headline()))
    rows = list(result.deciles.iter_rows(named=True))
    shares = [r["share"] or 0.0 for r in rows]
    top = max(shares, default=0.0)
    count_w = max(len("customers"), *(len(f"{r['customers']:,}") for r in rows))
    prefix_w = 3 + 2 + count_w + 2 + 6 + 2 + 6 + 2  # "D10  customers  share  cum.  "
    bar_cells = max(width - prefix_w, 10)
    lines = [title, Text(f"{'':3}  {'customers':>{count_w}}  {'share':>6}  {'cum.':>6}  ", style="dim")]
    for r, share in zip(rows, shares, strict=True):
        line = Text(
            f"D{r['decile']:<2}  {r['customers']:>{count_w},}  {share * 100:>5.1f}%  "
            f"{(r['cumulative_share'] or 0.0) * 100:>5.1f}%  "
        )
        line.append(_bar(share / top if top > 0 else 0.0, bar_cells), style="cyan")
        lines.append(line)
    return Group(*lines)


def _interp(x: float, xs: Sequence[float], ys: Sequence[float]) -> float:
    """Linear interpolation on increasing xs (a drawing helper, not a metric)."""
    if x <= xs[0]:
        return ys[0]
    lo, hi = 0, len(xs) - 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if xs[mid] <= x:
            lo = mid
        else:
            hi = mid
    if xs[hi] == xs[lo]:
        return ys[hi]
    t = (x - xs[lo]) / (xs[hi] - xs[lo])
    return ys[lo] + t * (ys[hi] - ys[lo])


def lorenz_chart(result: ParetoResult, *, width: int = 64, height: int = 16) -> Any:
    """The Lorenz curve on a braille canvas, with the line of equality dotted and labelled axes.

    `width` is the whole chart including the axis labels; the plot is `height` text lines tall.
    """
    from rich.console import Group
    from rich.text import Text

    gini = f"Gini {result.gini:.2f}" if result.gini is not None else "Gini undefined"
    title = Text(f"Lorenz curve of {result.label} ({gini})", style="bold")
    if not result.defined:
        return Group(title, Text(result.headline()))
    axis_w = 5  # "100% "
    cols = max(width - axis_w - 1, 8)
    rows = max(height, 4)
    px_w, px_h = cols * 2, rows * 4
    xs = result.lorenz["population_share"].to_list()
    ys = result.lorenz["value_share"].to_list()

    curve: set[tuple[int, int]] = set()
    equality: set[tuple[int, int]] = set()
    previous: int | None = None
    for px in range(px_w):
        x = px / (px_w - 1)
        py = round(_interp(x, xs, ys) * (px_h - 1))
        low, high = (py, py) if previous is None else (min(previous, py), max(previous, py))
        for y in range(low, high + 1):  # join steps so the curve has no gaps
            curve.add((px, y))
        previous = py
        if px % 2 == 0:
            equality.add((px, round(x * (px_h - 1))))

    def cell(col: int, row: int) -> tuple[str, str]:
        bits, on_curve = 0, False
        for (dx, dy), bit in _BRAILLE.items():
            px = col * 2 + dx
            py = (rows - 1 - row) * 4 + (3 - dy)  # row 0 is the top line; y grows upwards
            if (px, py) in curve:
                bits |= bit
                on_curve = True
            elif (px, py) in equality:
                bits |= bit
        return chr(0x2800 + bits), "cyan" if on_curve else "dim"

    lines = [title, Text(f"share of {result.label}"[:width], style="dim")]
    for row in range(rows):
        label = {0: "100%", rows // 2: " 50%", rows - 1: "  0%"}.get(row, "")
        line = Text(f"{label:>4} ", style="dim")
        line.append("│")
        for col in range(cols):
            char, style = cell(col, row)
            line.append(char, style=style)
        lines.append(line)
    lines.append(Text(" " * axis_w + "└" + "─" * cols, style="dim"))
    ticks = f"0%{'50%':^{cols - 6}}100%"
    lines.append(Text(" " * (axis_w + 1) + ticks[:cols], style="dim"))
    lines.append(Text(" " * (axis_w + 1) + f"share of customers, smallest {result.label} first →"[:cols]))
    return Group(*lines)


def pareto_view(result: ParetoResult, *, width: int = DEFAULT_WIDTH) -> Any:
    """Headline, decile bars and the Lorenz curve, one under the other."""
    from rich.console import Group
    from rich.text import Text

    return Group(
        pareto_headline(result),
        Text(""),
        decile_bars(result, width=min(width, 100)),
        Text(""),
        lorenz_chart(result, width=min(width, 72)),
    )
