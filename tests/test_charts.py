"""Rendering tests of the terminal charts: structure, labels and widths, without colour."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import polars as pl
import pytest
from rich.console import Console

from clvtool.metrics.cohorts import CohortResult, cohort_matrix
from clvtool.metrics.concentration import concentration
from clvtool.render.charts import cohort_heatmap, decile_bars, lorenz_chart, pareto_headline, pareto_view

WIDTH = 120
AS_OF = dt.date(2024, 12, 31)


def render(renderable: Any, *, color: bool = False) -> str:
    console = Console(
        file=io.StringIO(),
        width=WIDTH,
        color_system="truecolor" if color else None,
        force_terminal=color,
        highlight=False,
    )
    console.print(renderable)
    return console.file.getvalue()  # type: ignore[attr-defined]


def monthly_result(months: int = 36, metric: str = "retention", as_of: dt.date = AS_OF) -> CohortResult:
    """One cohort per month from 2022-01, three customers each; customer j of a cohort buys every j+1 months."""
    orders, people = [], []
    start = 2022 * 12
    for m in range(months):
        for j in range(3):
            cid = f"m{m:02d}c{j}"
            first = dt.date((start + m) // 12, (start + m) % 12 + 1, 1)
            people.append({"customer_id": cid, "first_order": first})
            for k in range(0, 36 - m, j + 1):
                idx = start + m + k
                day = (dt.date(idx // 12, idx % 12 + 1, 1) - dt.date(1970, 1, 1)).days
                orders.append(
                    {"customer_id": cid, "day": day, "net": 10.0 * (j + 1), "value": 5.0, "is_purchase": 1}
                )
    order_frame = pl.DataFrame(orders).with_columns(
        pl.col("day").cast(pl.Int32), pl.col("is_purchase").cast(pl.Int32)
    )
    customers = pl.DataFrame(people)
    return cohort_matrix(order_frame.lazy(), customers, period="month", metric=metric, as_of=as_of)


def test_heatmap_fits_120_columns_with_the_most_recent_cohorts() -> None:
    result = monthly_result()
    out = render(cohort_heatmap(result, more_hint="--all shows every cohort"))
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= WIDTH
    assert "retention" in lines[0]
    header = next(line for line in lines if line.lstrip().startswith("cohort"))
    assert "customers" in header and " 0 " in header + " "
    assert "2024-12" in out  # newest cohort shown
    assert "2022-01" not in out  # oldest left out for width
    assert "weighted average" in out
    assert "most recent of 36 cohorts; --all shows every cohort" in out
    assert "100%" in out


def test_heatmap_rows_stop_where_the_cohort_stops() -> None:
    out = render(cohort_heatmap(monthly_result(months=4, as_of=dt.date(2022, 4, 30))))
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith("2022")}
    # 2022-01 .. 2022-04 have reached 4, 3, 2 and 1 months: the triangle, blanks not 0%
    assert [len(rows[c]) - 2 for c in ("2022-01", "2022-02", "2022-03", "2022-04")] == [4, 3, 2, 1]
    assert "most recent" not in out


def test_heatmap_cuts_columns_when_even_the_newest_cohort_is_too_wide() -> None:
    out = render(cohort_heatmap(monthly_result(months=4)))  # 33 to 36 columns each by 2024-12
    assert "2022-04" in out and "2022-03" not in out
    assert "not shown for width" in out
    assert max(len(line) for line in out.splitlines()) <= WIDTH


def test_heatmap_marks_unreached_cells_blank_not_zero() -> None:
    result = monthly_result(months=36)
    out = render(cohort_heatmap(result))
    newest = next(line for line in out.splitlines() if line.startswith("2024-12"))
    assert newest.split() == ["2024-12", "3", "100%"]
    second = next(line for line in out.splitlines() if line.startswith("2024-11"))
    assert len(second.split()) == 4


def test_heatmap_all_cohorts_shows_the_oldest() -> None:
    out = render(cohort_heatmap(monthly_result(months=6), all_cohorts=True))
    assert "2022-01" in out and "2022-06" in out
    assert "most recent" not in out


def test_heatmap_money_metric_and_colour() -> None:
    result = monthly_result(months=5, metric="revenue")
    plain = render(cohort_heatmap(result))
    assert "revenue by month cohort" in plain
    assert max(len(line) for line in plain.splitlines()) <= WIDTH
    coloured = render(cohort_heatmap(result), color=True)
    assert "\x1b[" in coloured  # shaded cells


def test_lorenz_chart_structure() -> None:
    result = concentration(
        pl.DataFrame(
            {"customer_id": [f"c{i}" for i in range(50)], "revenue": [float(i * i) for i in range(50)]}
        )
    )
    out = render(lorenz_chart(result, width=64, height=12))
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= WIDTH
    assert lines[0].startswith("Lorenz curve of revenue (Gini ")
    assert f"Gini {result.gini:.2f}" in lines[0]
    assert lines[1] == "share of revenue"
    plot = lines[2:14]
    assert len(plot) == 12
    assert plot[0].startswith("100% │") and plot[-1].startswith("  0% │")
    assert all(len(line) == len(plot[0]) for line in plot)
    assert any(0x2801 <= ord(ch) <= 0x28FF for line in plot for ch in line)
    assert "└" in lines[14] and "100%" in lines[15] and "share of customers" in lines[16]


def test_lorenz_curve_is_drawn_under_the_diagonal() -> None:
    # One customer holds everything: the curve hugs the bottom and the right edge.
    values = [0.0] * 19 + [100.0]
    result = concentration(pl.DataFrame({"customer_id": [f"c{i:02d}" for i in range(20)], "revenue": values}))
    lines = render(lorenz_chart(result, width=40, height=8)).splitlines()
    bottom = lines[9]
    filled = sum(1 for ch in bottom.split("│", 1)[1] if ch not in ("\u2800", " "))
    assert filled > 20  # the flat part of the curve runs along the bottom line


def test_decile_bars_and_headline() -> None:
    values = [50.0, 30.0] + [2.5] * 8
    result = concentration(pl.DataFrame({"customer_id": [f"c{i}" for i in range(10)], "revenue": values}))
    out = render(decile_bars(result, width=100))
    lines = out.splitlines()
    assert lines[0].startswith("share of revenue by decile")
    bars = [line for line in lines if line.startswith("D")]
    assert [b.split()[0] for b in bars] == [f"D{i}" for i in range(1, 11)]
    assert "50.0%" in bars[0] and bars[0].count("█") > bars[1].count("█") > bars[2].count("█") > 0
    assert max(len(line) for line in lines) <= 100
    assert render(pareto_headline(result)).strip() == result.headline()
    view = render(pareto_view(result))
    assert max(len(line) for line in view.splitlines()) <= WIDTH
    assert result.headline() in view and "Lorenz curve" in view


@pytest.mark.parametrize("chart", [decile_bars, lorenz_chart])
def test_undefined_concentration_renders_a_message(chart: Any) -> None:
    result = concentration(pl.DataFrame({"customer_id": ["a", "b"], "revenue": [0.0, -1.0]}))
    out = render(chart(result))
    assert "no customer has a positive revenue" in out
