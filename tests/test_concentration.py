"""Engine tests of the concentration metrics (PRODUCT §4.4): hand-computed figures and invariants."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clvtool.errors import UsageError
from clvtool.metrics.concentration import ParetoResult, concentration, gini


def frame(
    values: list[float | None], cac: list[float | None] | None = None, by: str = "revenue"
) -> pl.DataFrame:
    data: dict[str, list] = {"customer_id": [f"c{i:03d}" for i in range(len(values))], by: values}
    schema: dict[str, pl.DataType] = {"customer_id": pl.String(), by: pl.Float64()}
    if cac is not None:
        data["cac"] = cac
        schema["cac"] = pl.Float64()
    return pl.DataFrame(data, schema=schema)


def test_gini_by_hand() -> None:
    assert gini(np.array([5.0, 5.0, 5.0, 5.0])) == pytest.approx(0.0)
    assert gini(np.array([0.0, 0.0, 0.0, 1.0])) == pytest.approx(0.75)  # (n - 1) / n
    assert gini(np.array([1.0, 2.0, 3.0, 4.0])) == pytest.approx(0.25)  # 2*30/(4*10) - 5/4
    assert gini(np.array([0.0, 0.0])) is None
    assert gini(np.array([])) is None


def test_figures_on_ten_customers_by_hand() -> None:
    # 10 customers: one with 50, one with 30, eight with 2.5 (total 100)
    result = concentration(frame([50.0, 30.0] + [2.5] * 8))
    assert result.customers == 10 and result.total == pytest.approx(100.0)
    assert result.top_shares["10"] == pytest.approx(0.50)
    assert result.top_shares["20"] == pytest.approx(0.80)
    assert result.top_shares["5"] == pytest.approx(0.25)  # half-way to the first customer
    assert result.top_shares["1"] == pytest.approx(0.05)
    assert result.customers_for_80 == 2 and result.fraction_for_80 == pytest.approx(0.2)
    assert result.bottom_80_share_of_total == pytest.approx(0.20)
    # ascending 2.5 x 8, 30, 50: sum(i * x) = 2.5 * 36 + 270 + 500 = 860; 2*860/1000 - 1.1
    assert result.gini == pytest.approx(0.62)
    deciles = result.deciles
    assert deciles["customers"].to_list() == [1] * 10
    assert deciles["total"].to_list() == pytest.approx([50, 30] + [2.5] * 8)
    assert deciles["cumulative_share"].to_list()[1] == pytest.approx(0.8)
    assert result.headline() == "the top 20 % of customers bring 80 % of revenue; 20 % of customers make 80 %"


def test_deciles_of_twenty_customers() -> None:
    result = concentration(frame([float(v) for v in range(1, 21)]))  # total 210
    d = result.deciles
    assert d["decile"].to_list() == list(range(1, 11))
    assert d["customers"].to_list() == [2] * 10
    assert d["total"].to_list() == pytest.approx([39, 35, 31, 27, 23, 19, 15, 11, 7, 3])
    assert d["mean"].to_list() == pytest.approx([19.5, 17.5, 15.5, 13.5, 11.5, 9.5, 7.5, 5.5, 3.5, 1.5])
    assert d["share"].sum() == pytest.approx(1.0)


def test_80_percent_needs_the_customer_that_crosses_it() -> None:
    result = concentration(frame([40.0, 39.0, 21.0]))
    assert result.customers_for_80 == 3  # 79 % after two
    result = concentration(frame([40.0, 40.0, 20.0]))
    assert result.customers_for_80 == 2  # exactly 80 % counts


def test_non_positive_values_are_clipped_and_counted() -> None:
    result = concentration(frame([10.0, -5.0, 0.0, None, 10.0]))
    assert result.non_positive == 3
    assert result.total == pytest.approx(20.0)
    assert result.deciles["total"].sum() == pytest.approx(20.0)
    assert result.deciles["customers"].sum() == 5


def test_all_zero_or_negative_is_undefined_not_a_division_by_zero() -> None:
    result = concentration(frame([0.0, -3.0, None]))
    assert not result.defined
    assert result.top_shares == {"1": None, "5": None, "10": None, "20": None}
    assert result.gini is None and result.customers_for_80 is None and result.fraction_for_80 is None
    assert result.bottom_80_share_of_total is None
    assert result.deciles["share"].null_count() == 10
    assert "no customer has a positive revenue" in result.headline()
    assert result.to_json()["gini"] is None


def test_no_customers() -> None:
    result = concentration(frame([]))
    assert result.customers == 0 and not result.defined
    assert result.deciles.height == 10 and result.deciles["customers"].sum() == 0
    assert result.headline().startswith("no customers")


def test_bottom_80_share_of_spend() -> None:
    values = [50.0, 30.0] + [2.5] * 8
    cac = [5.0, 5.0] + [10.0] * 8  # the top two cost 10 of 90
    result = concentration(frame(values, cac))
    assert result.bottom_80_share_of_spend == pytest.approx(80 / 90)
    with_unallocated = concentration(frame(values, cac), spend_total=100.0)
    assert with_unallocated.bottom_80_share_of_spend == pytest.approx(80 / 100)
    assert concentration(frame(values)).bottom_80_share_of_spend is None


def test_json_has_exactly_the_documented_keys() -> None:
    result = concentration(frame([50.0, 30.0] + [2.5] * 8, [1.0] * 10))
    doc = result.to_json()
    assert set(doc) == {
        "by",
        "customers",
        "total",
        "top_shares",
        "customers_for_80",
        "fraction_for_80",
        "gini",
        "bottom_80",
        "non_positive",
        "deciles",
    }
    assert set(doc["top_shares"]) == {"1", "5", "10", "20"}
    assert set(doc["bottom_80"]) == {"share_of_total", "share_of_spend"}
    assert len(doc["deciles"]) == 10
    assert set(doc["deciles"][0]) == {"decile", "customers", "total", "share", "cumulative_share", "mean"}
    rounded = concentration(frame([1.0, 2.0, 4.0])).to_json(money_decimals=2)
    assert rounded["top_shares"]["1"] == round(0.03 * 4 / 7, 6)


def test_by_column_checks() -> None:
    with pytest.raises(UsageError, match="choose one of"):
        concentration(frame([1.0]), "orders")
    with pytest.raises(UsageError, match="purchase model"):
        concentration(frame([1.0]), "total_clv")
    with pytest.raises(UsageError, match="spend"):
        concentration(frame([1.0]), "net_value")
    assert concentration(frame([1.0, -2.0], by="net_value"), "net_value").non_positive == 1


def assert_invariants(result: ParetoResult, values: list[float]) -> None:
    positive = [max(v, 0.0) for v in values]
    assert result.total == pytest.approx(sum(positive))
    lx = result.lorenz["population_share"].to_numpy()
    ly = result.lorenz["value_share"].to_numpy()
    assert lx[0] == 0.0 and lx[-1] == 1.0 and ly[0] == 0.0 and ly[-1] == pytest.approx(1.0)
    assert np.all(np.diff(lx) > 0)
    assert np.all(np.diff(ly) >= -1e-12)  # monotone
    slopes = np.diff(ly) / np.diff(lx)
    assert np.all(np.diff(slopes) >= -1e-6)  # convex
    assert np.all(ly <= lx + 1e-9)  # below the line of equality
    d = result.deciles
    assert d["share"].sum() == pytest.approx(1.0)
    assert d["cumulative_share"][-1] == pytest.approx(1.0)
    sizes = d["customers"].to_list()
    assert sum(sizes) == len(values) and max(sizes) - min(sizes) <= 1
    tops = [result.top_shares[k] for k in ("1", "5", "10", "20")]
    assert all(t is not None for t in tops)
    assert tops == sorted(tops)
    for p, t in zip((0.01, 0.05, 0.10, 0.20), tops, strict=True):
        assert p - 1e-9 <= t <= 1 + 1e-9  # the top p % hold at least p of the total
    assert result.bottom_80_share_of_total == pytest.approx(1 - tops[3])
    assert result.gini is not None and 0 <= result.gini < 1
    if len(values) < 1000:  # exact curve: Gini = 1 - 2 * area under the Lorenz curve
        area = float(np.sum((ly[1:] + ly[:-1]) / 2 * np.diff(lx)))
        assert result.gini == pytest.approx(1 - 2 * area, abs=1e-9)
    assert result.fraction_for_80 is not None and result.customers_for_80 is not None
    ordered = sorted(positive, reverse=True)
    k = result.customers_for_80
    assert sum(ordered[:k]) >= 0.8 * result.total - 1e-6
    assert k == 1 or sum(ordered[: k - 1]) < 0.8 * result.total + 1e-6


# Money in cents: amounts below 1e-9 count as zero by design (no subnormal divisions).
money = st.integers(min_value=-5_000, max_value=100_000_000).map(lambda cents: cents / 100)


@settings(max_examples=60, deadline=None)
@given(st.lists(money, min_size=1, max_size=300).filter(lambda v: any(x > 0 for x in v)))
def test_invariants_hold_for_any_values(values: list[float]) -> None:
    assert_invariants(concentration(frame(values)), values)


def test_invariants_hold_with_a_downsampled_lorenz_curve() -> None:
    rng = np.random.default_rng(7)
    values = rng.lognormal(3, 1.5, size=5000).tolist()
    result = concentration(frame(values))
    assert result.lorenz.height == 1001
    assert_invariants(result, values)
