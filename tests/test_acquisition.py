"""Engine tests of acquisition economics (PRODUCT §4.1 cac/net_value/payback_days, §4.2 channels).

Hand-computed examples on small frames, then hypothesis properties of the allocation on generated data.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clvtool.config import AnalysisSettings, Settings
from clvtool.io.schema import SEQ
from clvtool.io.transactions import CANONICAL_TYPES
from clvtool.metrics.acquisition import (
    REASON_NO_CHANNEL,
    REASON_NO_CUSTOMERS,
    REASON_NO_PERIOD_CUSTOMERS,
    REASON_OUT_OF_RANGE,
    Acquisition,
    allocate_spend,
    channel_summary,
    payback_days,
)
from clvtool.metrics.customer_table import CustomerMetrics, customer_metrics
from clvtool.metrics.customers import order_frame

D = dt.date

# ---- helpers ----------------------------------------------------------------------------------------


def tx(*rows: tuple[str, dt.date, float, str | None, str | None]) -> pl.DataFrame:
    """Canonical transactions from (customer_id, date, amount, order_id, channel) rows, in order."""
    cols = ("customer_id", "date", "amount", "order_id", "channel")
    frame = pl.DataFrame(
        [dict(zip(cols, r, strict=True)) for r in rows],
        schema={c: CANONICAL_TYPES[c] for c in cols},
        orient="row",
    )
    return frame.with_columns(pl.int_range(0, pl.len(), dtype=pl.UInt32).alias(SEQ))


def spend_frame(*rows: tuple[dt.date, str, float]) -> pl.DataFrame:
    """Spend rows (date, channel, spend) as the reader hands them to the engine."""
    return pl.DataFrame(
        [{"date": d, "channel": c, "spend": s} for d, c, s in rows],
        schema={"date": pl.Date, "channel": pl.String, "spend": pl.Float64},
        orient="row",
    )


def customers_frame(*rows: tuple[str, str, dt.date]) -> pl.DataFrame:
    """What allocate_spend needs of the customers table: customer_id, channel, first_order."""
    return pl.DataFrame(
        [{"customer_id": i, "channel": c, "first_order": d} for i, c, d in rows],
        schema={"customer_id": pl.String, "channel": pl.String, "first_order": pl.Date},
        orient="row",
    )


def make_settings(**analysis: Any) -> Settings:
    return Settings(analysis=AnalysisSettings(**analysis))


def by_id(frame: pl.DataFrame, column: str) -> dict[str, Any]:
    return dict(zip(frame["customer_id"].to_list(), frame[column].to_list(), strict=True))


def lost_rows(acq: Acquisition) -> list[tuple[str, str, float, str]]:
    """The unallocated table as (channel lower-cased, period, spend, reason), in its order."""
    return [
        (r["channel"].lower(), r["period"], round(r["spend"], 2), r["reason"])
        for r in acq.unallocated.iter_rows(named=True)
    ]


def approx_dict(expected: dict[str, Any]) -> dict[str, Any]:
    return {k: (pytest.approx(v) if isinstance(v, float) else v) for k, v in expected.items()}


# ---- the main hand-computed example ---------------------------------------------------------------
#
# Data runs from 2024-01-05 to 2024-04-01; as of 2024-04-30, so the periods in range are 2024-01..04.
#
#   customer  channel       orders (date: amount)                     first order   historic_clv
#   a         google        01-05: 100, 03-01: 50                     2024-01-05    150
#   b         Google        01-20: 70                                 2024-01-20     70
#   c         facebook      02-10: 40, 04-01: 90                      2024-02-10    130
#   d         (none)        02-03: 25            -> unattributed      2024-02-03     25
#   e         google        03-05: 200                                2024-03-05    200
#   f         paid_social   03-20: 60                                 2024-03-20     60
#   g         email         02-04: 10                                 2024-02-04     10
#
# Spend (channel names as a spend file writes them), with alias "Facebook Ads" -> paid_social:
#   2023-12 google 80        before the data's first month           -> unallocated (out of range)
#   2024-01 google 300       new google customers in Jan: a, b       -> 150 each
#   2024-02 " GOOGLE " 90    no new google customer in Feb           -> unallocated (no new customers)
#   2024-02 Facebook 120     new facebook in Feb: c                  -> 120
#   2024-03 "GOOGLE " 50     new google in Mar: e                    -> 50
#   2024-03 Facebook Ads 45  aliased to paid_social; new in Mar: f   -> 45
#   2024-03 tiktok 33.33     no customer ever came through tiktok    -> unallocated (no channel)
#   2024-04 email 12         email's only customer (g) came in Feb   -> unallocated (no new customers)
#   2024-05 google 70        after the as-of month                   -> unallocated (out of range)
# Total 800.33 = allocated 515 (300+120+50+45) + unallocated 285.33 (80+90+33.33+12+70).

DATA_START = D(2024, 1, 5)
AS_OF = D(2024, 4, 30)
ALIASES = {"Facebook Ads": "paid_social"}

MAIN_TX = tx(
    ("a", D(2024, 1, 5), 100.0, "o1", "google"),
    ("b", D(2024, 1, 20), 70.0, "o3", "Google"),
    ("d", D(2024, 2, 3), 25.0, "o6", None),
    ("g", D(2024, 2, 4), 10.0, "o9", "email"),
    ("c", D(2024, 2, 10), 40.0, "o4", "facebook"),
    ("a", D(2024, 3, 1), 50.0, "o2", "google"),
    ("e", D(2024, 3, 5), 200.0, "o7", "google"),
    ("f", D(2024, 3, 20), 60.0, "o8", "paid_social"),
    ("c", D(2024, 4, 1), 90.0, "o5", "facebook"),
)

MAIN_SPEND = spend_frame(
    (D(2024, 1, 1), "google", 300.0),
    (D(2023, 12, 1), "google", 80.0),
    (D(2024, 2, 1), " GOOGLE ", 90.0),
    (D(2024, 2, 1), "Facebook", 120.0),
    (D(2024, 3, 1), "GOOGLE ", 50.0),
    (D(2024, 3, 1), "Facebook Ads", 45.0),
    (D(2024, 3, 1), "tiktok", 33.33),
    (D(2024, 4, 1), "email", 12.0),
    (D(2024, 5, 1), "google", 70.0),
)


def main_metrics(mode: str = "channel", **analysis: Any) -> CustomerMetrics:
    analysis.setdefault("channel_aliases", ALIASES)
    return customer_metrics(
        MAIN_TX,
        make_settings(cac_mode=mode, **analysis),
        as_of=AS_OF,
        spend=MAIN_SPEND,
        data_start=DATA_START,
    )


def test_channel_mode_per_customer_columns() -> None:
    m = main_metrics()
    df = m.frame
    assert df.height == 7
    assert by_id(df, "cac") == approx_dict(
        {"a": 150.0, "b": 150.0, "c": 120.0, "d": 0.0, "e": 50.0, "f": 45.0, "g": 0.0}
    )
    assert by_id(df, "historic_clv") == approx_dict(
        {"a": 150.0, "b": 70.0, "c": 130.0, "d": 25.0, "e": 200.0, "f": 60.0, "g": 10.0}
    )
    # net_value = historic_clv - cac
    assert by_id(df, "net_value") == approx_dict(
        {"a": 0.0, "b": -80.0, "c": 10.0, "d": 25.0, "e": 150.0, "f": 15.0, "g": 10.0}
    )
    # a: 100 on 01-05 (< 150), 150 on 03-01 (>= 150, exactly) -> 56 days (26 left in Jan + 29 Feb + 1)
    # b: 70 < 150 forever -> never (null). c: 40 on 02-10, 130 on 04-01 (>= 120) -> 19 + 31 + 1 = 51.
    # d, g: cac 0 -> 0. e: 200 >= 50 and f: 60 >= 45 on the first order -> 0.
    assert by_id(df, "payback_days") == {"a": 56, "b": None, "c": 51, "d": 0, "e": 0, "f": 0, "g": 0}
    # First 30 days of the data: 2024-01-05 .. 2024-02-03 (02-04 is day 30, outside).
    assert by_id(df, "left_censored") == {
        "a": True,
        "b": True,
        "c": False,
        "d": True,
        "e": False,
        "f": False,
        "g": False,
    }
    assert df.schema["payback_days"].is_integer()
    assert df.schema["left_censored"] == pl.Boolean


def test_channel_mode_unallocated_spend_and_totals() -> None:
    acq = main_metrics().acquisition
    assert acq is not None
    assert acq.mode == "channel"
    assert lost_rows(acq) == [
        ("google", "2023-12", 80.0, REASON_OUT_OF_RANGE),
        ("google", "2024-02", 90.0, REASON_NO_CUSTOMERS),
        ("tiktok", "2024-03", 33.33, REASON_NO_CHANNEL),
        ("email", "2024-04", 12.0, REASON_NO_CUSTOMERS),
        ("google", "2024-05", 70.0, REASON_OUT_OF_RANGE),
    ]
    t = acq.totals
    assert t["spend"] == pytest.approx(800.33)
    assert t["allocated"] == pytest.approx(515.0)
    assert t["unallocated"] == pytest.approx(285.33)
    assert round(t["allocated"] * 100) + round(t["unallocated"] * 100) == round(t["spend"] * 100) == 80033
    assert t["new_customers"] == 7
    # blended CAC: all spend over all new customers = 800.33 / 7
    assert t["blended_cac"] == pytest.approx(800.33 / 7)
    assert t["paid_cac"] is not None
    assert acq.notes == []


def test_channel_mode_cells_by_period() -> None:
    acq = main_metrics().acquisition
    assert acq is not None
    cells = {
        (r["channel"].lower(), r["period"]): (round(r["spend"], 2), r["new_customers"], r["cac"])
        for r in acq.cells.iter_rows(named=True)
    }
    assert cells == {
        ("google", "2023-12"): (80.0, 0, None),
        ("google", "2024-01"): (300.0, 2, pytest.approx(150.0)),
        ("google", "2024-02"): (90.0, 0, None),  # spend without new customers: no CAC, never 0
        ("google", "2024-03"): (50.0, 1, pytest.approx(50.0)),
        ("google", "2024-05"): (70.0, 0, None),
        ("facebook", "2024-02"): (120.0, 1, pytest.approx(120.0)),
        ("paid_social", "2024-03"): (45.0, 1, pytest.approx(45.0)),
        ("tiktok", "2024-03"): (33.33, 0, None),
        ("email", "2024-02"): (0.0, 1, 0.0),
        ("email", "2024-04"): (12.0, 0, None),
        ("unattributed", "2024-02"): (0.0, 1, 0.0),
    }
    # Spend on the channel the customers know ("Google"/"google") is shown under one name.
    assert acq.cells.filter(pl.col("channel").str.to_lowercase() == "google")["channel"].n_unique() == 1


def test_channel_summary_channel_mode() -> None:
    m = main_metrics()
    assert m.acquisition is not None
    table = channel_summary(m.frame, m.acquisition)
    assert table.columns == [
        "channel", "spend", "unallocated", "new_customers", "cac", "mean_historic_clv", "ltv_cac",
        "median_payback_days", "repeat_rate", "revenue", "roas", "net_value",
    ]  # fmt: skip
    got = {r["channel"].lower(): r for r in table.iter_rows(named=True)}
    # Sorted by spend, largest first: google 590, facebook 120, paid_social 45, tiktok 33.33, email 12,
    # unattributed 0.
    assert [c.lower() for c in table["channel"]] == [
        "google", "facebook", "paid_social", "tiktok", "email", "unattributed"
    ]  # fmt: skip
    # google: spend 300+80+90+50+70 = 590; unallocated 80+90+70 = 240; new a, b, e; cac (150+150+50)/3;
    # mean clv (150+70+200)/3 = 140; payback a 56, b never, e 0 -> median 56; repeat 1 of 3 (a);
    # revenue 420; roas 420/590; net 0-80+150 = 70.
    assert got["google"] == approx_dict(
        {
            "channel": got["google"]["channel"],
            "spend": 590.0,
            "unallocated": 240.0,
            "new_customers": 3,
            "cac": 350.0 / 3,
            "mean_historic_clv": 140.0,
            "ltv_cac": 140.0 / (350.0 / 3),
            "median_payback_days": 56,
            "repeat_rate": 1 / 3,
            "revenue": 420.0,
            "roas": 420.0 / 590.0,
            "net_value": 70.0,
        }
    )
    assert got["facebook"] == approx_dict(
        {
            "channel": "facebook",
            "spend": 120.0,
            "unallocated": 0.0,
            "new_customers": 1,
            "cac": 120.0,
            "mean_historic_clv": 130.0,
            "ltv_cac": 130.0 / 120.0,
            "median_payback_days": 51,
            "repeat_rate": 1.0,
            "revenue": 130.0,
            "roas": 130.0 / 120.0,
            "net_value": 10.0,
        }
    )
    assert got["paid_social"]["spend"] == pytest.approx(45.0)
    assert got["paid_social"]["cac"] == pytest.approx(45.0)
    assert got["paid_social"]["ltv_cac"] == pytest.approx(60.0 / 45.0)
    assert got["paid_social"]["median_payback_days"] == 0
    # tiktok: all its spend is unallocated; no customers, so no CAC (never 0) and no ratios.
    tiktok = got["tiktok"]
    assert tiktok["spend"] == pytest.approx(33.33)
    assert tiktok["unallocated"] == pytest.approx(33.33)
    assert tiktok["new_customers"] == 0
    assert tiktok["cac"] is None
    assert tiktok["ltv_cac"] is None
    # email: 12 spent in April, but its only customer came in February with cac 0.
    assert got["email"]["unallocated"] == pytest.approx(12.0)
    assert got["email"]["new_customers"] == 1
    assert got["email"]["roas"] == pytest.approx(10.0 / 12.0)
    # unattributed: no spend -> cac 0, no LTV:CAC, no ROAS.
    unattributed = got["unattributed"]
    assert unattributed["spend"] == 0.0
    assert unattributed["new_customers"] == 1
    assert unattributed["cac"] == 0.0
    assert unattributed["ltv_cac"] is None
    assert unattributed["roas"] is None
    assert unattributed["net_value"] == pytest.approx(25.0)
    # Channel spend adds up to the total; channel unallocated to the unallocated total.
    assert table["spend"].sum() == pytest.approx(800.33)
    assert table["unallocated"].sum() == pytest.approx(285.33)


# ---- blended mode -------------------------------------------------------------------------------------
#
# Period totals in range: Jan 300 over a, b -> 150 each; Feb 90+120 = 210 over c, d, g -> 70 each;
# Mar 50+45+33.33 = 128.33 over e, f -> 64.165 each; Apr 12 but no new customer at all -> unallocated.
# Out of range: 2023-12 80 and 2024-05 70. Allocated 300+210+128.33 = 638.33, unallocated 162.


def test_blended_mode_spreads_each_periods_spend_over_all_its_new_customers() -> None:
    m = main_metrics("blended")
    assert by_id(m.frame, "cac") == approx_dict(
        {"a": 150.0, "b": 150.0, "c": 70.0, "d": 70.0, "g": 70.0, "e": 64.165, "f": 64.165}
    )
    # c: 40 < 70 on 02-10, 130 on 04-01 -> 51; d (25), g (10), b (70 < 150) and f (60 < 64.165) never.
    assert by_id(m.frame, "payback_days") == {
        "a": 56,
        "b": None,
        "c": 51,
        "d": None,
        "e": 0,
        "f": None,
        "g": None,
    }
    acq = m.acquisition
    assert acq is not None
    assert acq.mode == "blended"
    assert lost_rows(acq) == [
        ("google", "2023-12", 80.0, REASON_OUT_OF_RANGE),
        ("email", "2024-04", 12.0, REASON_NO_PERIOD_CUSTOMERS),
        ("google", "2024-05", 70.0, REASON_OUT_OF_RANGE),
    ]
    assert acq.totals["allocated"] == pytest.approx(638.33)
    assert acq.totals["unallocated"] == pytest.approx(162.0)
    assert acq.totals["spend"] == pytest.approx(800.33)
    assert m.frame["cac"].sum() == pytest.approx(638.33)


def test_blended_mode_channel_summary() -> None:
    m = main_metrics("blended")
    assert m.acquisition is not None
    got = {r["channel"].lower(): r for r in channel_summary(m.frame, m.acquisition).iter_rows(named=True)}
    # google customers a, b, e: (150 + 150 + 64.165) / 3
    assert got["google"]["cac"] == pytest.approx(364.165 / 3)
    assert got["google"]["unallocated"] == pytest.approx(150.0)  # 80 + 70, both out of range
    # tiktok's money went to March's new customers: nothing unallocated for it.
    assert got["tiktok"]["unallocated"] == 0.0
    assert got["tiktok"]["spend"] == pytest.approx(33.33)
    # The organic/unattributed customer d carries a share of February's spend.
    assert got["unattributed"]["cac"] == pytest.approx(70.0)
    assert got["unattributed"]["net_value"] == pytest.approx(25.0 - 70.0)


# ---- matching: aliases, case and whitespace ---------------------------------------------------------


def test_without_the_alias_the_spend_name_finds_no_customer() -> None:
    m = main_metrics(channel_aliases={})
    assert m.acquisition is not None
    assert by_id(m.frame, "cac")["f"] == 0.0
    assert ("facebook ads", "2024-03", 45.0, REASON_NO_CHANNEL) in lost_rows(m.acquisition)
    assert m.acquisition.totals["allocated"] == pytest.approx(515.0 - 45.0)
    assert m.acquisition.totals["unallocated"] == pytest.approx(285.33 + 45.0)


def test_alias_keys_and_targets_match_case_insensitively_after_trimming() -> None:
    # alias written " facebook ADS " -> "Paid_Social ", spend written "FACEBOOK ads"
    customers = customers_frame(("f", "paid_social", D(2024, 3, 20)))
    spend = spend_frame((D(2024, 3, 1), "FACEBOOK ads", 45.0))
    acq = allocate_spend(
        customers,
        spend,
        period="month",
        mode="channel",
        data_start=D(2024, 1, 1),
        as_of=D(2024, 3, 31),
        aliases={" facebook ADS ": "Paid_Social "},
    )
    assert by_id(acq.customers, "cac") == {"f": pytest.approx(45.0)}
    assert acq.unallocated.height == 0


def test_channel_names_match_case_insensitively_after_trimming() -> None:
    # Customers spell it "Google" and "google "; spend spells it " GOOGLE" and "gOoGlE". Both spend rows
    # are January: 60 + 40 = 100 over the two January customers -> 50 each.
    customers = customers_frame(
        ("x", "Google", D(2024, 1, 3)),
        ("y", "google ", D(2024, 1, 28)),
    )
    spend = spend_frame((D(2024, 1, 1), " GOOGLE", 60.0), (D(2024, 1, 15), "gOoGlE", 40.0))
    acq = allocate_spend(
        customers, spend, period="month", mode="channel", data_start=D(2024, 1, 3), as_of=D(2024, 1, 31)
    )
    assert by_id(acq.customers, "cac") == {"x": pytest.approx(50.0), "y": pytest.approx(50.0)}
    assert acq.unallocated.height == 0
    assert acq.totals["allocated"] == pytest.approx(100.0)
    assert acq.cells.height == 1
    assert acq.cells.row(0, named=True)["new_customers"] == 2


# ---- customers-table override, left censoring -------------------------------------------------------


def test_customers_table_overrides_first_order_attribution() -> None:
    # d (unattributed by its order) is declared facebook: February's facebook 120 now goes to c and d,
    # 60 each. g (email by its order) is declared TikTok: tiktok now has a customer (in Feb), so its
    # March spend is "no new customers of this channel in this period" instead of "no channel", and
    # email has no customer left, so its April 12 becomes "no channel". A row for a customer without
    # transactions changes nothing.
    overrides = pl.DataFrame(
        {"customer_id": ["d", "g", "zz"], "channel": ["facebook", "TikTok", "google"]},
        schema={"customer_id": pl.String, "channel": pl.String},
    )
    m = customer_metrics(
        MAIN_TX,
        make_settings(channel_aliases=ALIASES),
        as_of=AS_OF,
        channels=overrides,
        spend=MAIN_SPEND,
        data_start=DATA_START,
    )
    assert m.frame.height == 7
    assert by_id(m.frame, "channel")["d"] == "facebook"
    assert by_id(m.frame, "channel")["g"] == "TikTok"
    assert by_id(m.frame, "cac") == approx_dict(
        {"a": 150.0, "b": 150.0, "c": 60.0, "d": 60.0, "e": 50.0, "f": 45.0, "g": 0.0}
    )
    assert m.acquisition is not None
    assert lost_rows(m.acquisition) == [
        ("google", "2023-12", 80.0, REASON_OUT_OF_RANGE),
        ("google", "2024-02", 90.0, REASON_NO_CUSTOMERS),
        ("tiktok", "2024-03", 33.33, REASON_NO_CUSTOMERS),
        ("email", "2024-04", 12.0, REASON_NO_CHANNEL),
        ("google", "2024-05", 70.0, REASON_OUT_OF_RANGE),
    ]
    assert m.acquisition.totals["allocated"] == pytest.approx(515.0)


def test_left_censor_days_setting() -> None:
    # 10 days from 2024-01-05: only first orders before 2024-01-15 -> a.
    m = main_metrics(left_censor_days=10)
    assert [cid for cid, v in by_id(m.frame, "left_censored").items() if v] == ["a"]
    # 0 days: nobody.
    m = main_metrics(left_censor_days=0)
    assert not any(by_id(m.frame, "left_censored").values())


def test_left_censored_is_flagged_without_spend_too() -> None:
    m = customer_metrics(MAIN_TX, make_settings(), as_of=AS_OF, data_start=DATA_START)
    assert m.acquisition is None
    assert {cid for cid, v in by_id(m.frame, "left_censored").items() if v} == {"a", "b", "d"}
    # Without spend the acquisition columns exist but are empty.
    assert m.frame["cac"].null_count() == 7
    assert m.frame["net_value"].null_count() == 7
    assert m.frame["payback_days"].null_count() == 7


# ---- payback ----------------------------------------------------------------------------------------


def test_payback_days_directly() -> None:
    orders = tx(
        ("never", D(2024, 1, 1), 10.0, "n1", None),  # 10 + 20 = 30 < 50: never
        ("never", D(2024, 2, 1), 20.0, "n2", None),
        ("first", D(2024, 1, 10), 80.0, "f1", None),  # 80 >= 50 on the first order: 0
        ("later", D(2024, 1, 1), 30.0, "l1", None),  # 30 on 01-01, 30+15 on 01-11, 30+15+5 = 50 on 01-21
        ("later", D(2024, 1, 11), 15.0, "l2", None),
        ("later", D(2024, 1, 21), 5.0, "l3", None),
        ("later", D(2024, 1, 31), 100.0, "l4", None),
        ("free", D(2024, 1, 5), 1.0, "z1", None),  # cac 0: 0
        ("sameday", D(2024, 3, 1), 20.0, "s1", None),  # two orders on one day, 20 + 35 >= 50: 0
        ("sameday", D(2024, 3, 1), 35.0, "s2", None),
        ("dip", D(2024, 1, 1), 40.0, "d1", None),  # 40, then a refund of 30 (10), then 45 (55) on 01-09
        ("dip", D(2024, 1, 4), -30.0, "d1", None),
        ("dip", D(2024, 1, 9), 45.0, "d2", None),
    ).lazy()
    cac = pl.DataFrame(
        {
            "customer_id": ["never", "first", "later", "free", "sameday", "dip"],
            "cac": [50.0, 50.0, 50.0, 0.0, 50.0, 50.0],
            "first_order": [
                D(2024, 1, 1),
                D(2024, 1, 10),
                D(2024, 1, 1),
                D(2024, 1, 5),
                D(2024, 3, 1),
                D(2024, 1, 1),
            ],
        }
    )
    got = by_id(payback_days(order_frame(orders), cac), "payback_days")
    assert got == {"never": None, "first": 0, "later": 20, "free": 0, "sameday": 0, "dip": 8}


def test_payback_counts_from_the_first_order_not_from_a_fully_refunded_earlier_order() -> None:
    # x's first order o1 (01-05) is refunded in full on 01-06, so it is not a purchase: x's first_order
    # is 01-20 (o2, 100). cac: January google 120 over x and y = 60 each. x's value reaches 60 on its
    # first_order day itself, so payback_days is 0 (days from first_order), not 15 (from 01-05).
    data = tx(
        ("x", D(2024, 1, 5), 50.0, "o1", "google"),
        ("x", D(2024, 1, 6), -50.0, "o1", "google"),
        ("x", D(2024, 1, 20), 100.0, "o2", "google"),
        ("y", D(2024, 1, 10), 10.0, "o3", "google"),
    )
    m = customer_metrics(
        data,
        make_settings(),
        as_of=D(2024, 1, 31),
        spend=spend_frame((D(2024, 1, 1), "google", 120.0)),
        data_start=D(2024, 1, 5),
    )
    assert by_id(m.frame, "first_order")["x"] == D(2024, 1, 20)
    assert by_id(m.frame, "cac") == {"x": pytest.approx(60.0), "y": pytest.approx(60.0)}
    assert by_id(m.frame, "payback_days") == {"x": 0, "y": None}


@pytest.mark.parametrize("mode", ["channel", "blended"])
def test_allocation_keeps_the_customers_rows_in_their_order(mode: str) -> None:
    """customer_metrics adds acq.customers' cac as a column: one row per customer given, same order
    (channels and periods with and without spend interleaved, ids unsorted)."""
    ids = [f"c{(i * 7919) % 2000}" for i in range(2000)]
    channels = ["google", "meta", "organic", "email"]
    customers = customers_frame(
        *((cid, channels[i % 4], D(2024, 1 + i % 6, 1 + i % 28)) for i, cid in enumerate(ids))
    )
    spend = spend_frame((D(2024, 3, 3), "google", 300.0), (D(2024, 4, 9), "meta", 120.0))
    acq = allocate_spend(
        customers, spend, period="month", mode=mode, data_start=D(2024, 1, 1), as_of=D(2024, 6, 30)
    )
    assert acq.customers["customer_id"].to_list() == ids
    assert acq.customers["cac"].sum() == pytest.approx(420.0)


# ---- degenerate inputs -------------------------------------------------------------------------------


def test_no_customers_at_all_leaves_everything_unallocated_with_a_note() -> None:
    acq = allocate_spend(
        customers_frame(),
        spend_frame((D(2024, 1, 1), "google", 10.0), (D(2024, 2, 1), "meta", 5.5)),
        period="month",
        mode="channel",
        data_start=D(2024, 1, 1),
        as_of=D(2024, 1, 31),
    )
    assert acq.customers.height == 0
    assert lost_rows(acq) == [
        ("google", "2024-01", 10.0, REASON_NO_CHANNEL),
        ("meta", "2024-02", 5.5, REASON_OUT_OF_RANGE),
    ]
    assert acq.totals["new_customers"] == 0
    assert acq.totals["allocated"] == 0.0
    assert acq.totals["unallocated"] == pytest.approx(15.5)
    assert acq.totals["blended_cac"] is None
    assert acq.totals["paid_cac"] is None
    assert len(acq.notes) == 1
    assert "no new customers" in acq.notes[0]
    assert "CAC" in acq.notes[0]


def test_no_customers_in_blended_mode() -> None:
    acq = allocate_spend(
        customers_frame(),
        spend_frame((D(2024, 1, 1), "google", 10.0)),
        period="month",
        mode="blended",
        data_start=D(2024, 1, 1),
        as_of=D(2024, 1, 31),
    )
    assert lost_rows(acq) == [("google", "2024-01", 10.0, REASON_NO_PERIOD_CUSTOMERS)]
    assert acq.totals["blended_cac"] is None
    assert acq.notes


def test_empty_spend_gives_every_customer_cac_zero() -> None:
    customers = customers_frame(("x", "google", D(2024, 1, 3)), ("y", "meta", D(2024, 2, 3)))
    acq = allocate_spend(
        customers,
        spend_frame(),
        period="month",
        mode="channel",
        data_start=D(2024, 1, 3),
        as_of=D(2024, 2, 28),
    )
    assert by_id(acq.customers, "cac") == {"x": 0.0, "y": 0.0}
    assert acq.unallocated.height == 0
    assert acq.totals["spend"] == 0.0
    assert acq.totals["allocated"] == 0.0
    assert acq.totals["unallocated"] == 0.0


def test_weekly_periods() -> None:
    # ISO week 2024-W01 is Mon 2024-01-01 .. Sun 2024-01-07. x (Mon) and y (Sun) are new in W01;
    # spend on Wed 01-03 of 20 -> 10 each. Spend on Mon 01-08 (W02) of 5 finds no new customer.
    customers = customers_frame(("x", "google", D(2024, 1, 1)), ("y", "google", D(2024, 1, 7)))
    spend = spend_frame((D(2024, 1, 3), "google", 20.0), (D(2024, 1, 8), "google", 5.0))
    acq = allocate_spend(
        customers, spend, period="week", mode="channel", data_start=D(2024, 1, 1), as_of=D(2024, 1, 10)
    )
    assert by_id(acq.customers, "cac") == {"x": pytest.approx(10.0), "y": pytest.approx(10.0)}
    assert lost_rows(acq) == [("google", "2024-W02", 5.0, REASON_NO_CUSTOMERS)]


# ---- properties on generated data -------------------------------------------------------------------

CUSTOMER_CHANNELS = ["google", "Google", " meta", "email", "unattributed", "Partner X"]
SPEND_CHANNELS = ["google", "GOOGLE ", " Meta", "email", "tiktok", "FB Ads", "Partners", "Bing"]
GEN_ALIASES = {"FB Ads": "meta", "partners": "partner x", "Bing": "nobody"}
FIRST_DAY = D(2024, 1, 1)


def _key(name: str, aliases: dict[str, str]) -> str:
    """Reference channel key: trimmed, lower-cased, then the alias (keys compared the same way)."""
    k = name.strip().lower()
    lowered = {a.strip().lower(): b.strip().lower() for a, b in aliases.items()}
    return lowered.get(k, k)


def _month(d: dt.date) -> int:
    return d.year * 12 + d.month - 1


def _label(idx: int) -> str:
    return f"{idx // 12:04d}-{idx % 12 + 1:02d}"


@st.composite
def allocation_case(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(0, 25))
    customers = [
        (
            f"c{i}",
            draw(st.sampled_from(CUSTOMER_CHANNELS)),
            FIRST_DAY + dt.timedelta(days=draw(st.integers(0, 180))),
        )
        for i in range(n)
    ]
    m = draw(st.integers(0, 25))
    spend = [
        (
            FIRST_DAY + dt.timedelta(days=draw(st.integers(-70, 270))),
            draw(st.sampled_from(SPEND_CHANNELS)),
            draw(st.integers(0, 2_000_000)),  # cents
        )
        for _ in range(m)
    ]
    firsts = [c[2] for c in customers]
    data_start = min(firsts) if firsts else FIRST_DAY
    as_of = (max(firsts) if firsts else FIRST_DAY) + dt.timedelta(days=draw(st.integers(0, 40)))
    mode = draw(st.sampled_from(["channel", "blended"]))
    aliases = draw(st.sampled_from([{}, GEN_ALIASES]))
    return {
        "customers": customers,
        "spend": spend,
        "data_start": data_start,
        "as_of": as_of,
        "mode": mode,
        "aliases": aliases,
    }


def _reference(case: dict[str, Any]) -> tuple[dict[str, float], dict[tuple[str, int], tuple[int, str]], int]:
    """Independent allocation: per-customer cac, unallocated cells (key, month) -> (cents, reason), allocated."""
    aliases = case["aliases"]
    lo, hi = _month(case["data_start"]), _month(case["as_of"])
    cells: dict[tuple[str, int], int] = defaultdict(int)
    for d, ch, cents in case["spend"]:
        cells[(_key(ch, aliases), _month(d))] += cents
    new: dict[tuple[str, int], list[str]] = defaultdict(list)
    for cid, ch, first in case["customers"]:
        new[(ch.strip().lower(), _month(first))].append(cid)
    known = {k for k, _ in new}
    cac = {cid: 0.0 for cid, _, _ in case["customers"]}
    lost: dict[tuple[str, int], tuple[int, str]] = {}
    allocated = 0
    if case["mode"] == "channel":
        for (k, p), cents in cells.items():
            if not lo <= p <= hi:
                lost[(k, p)] = (cents, REASON_OUT_OF_RANGE)
            elif (k, p) not in new:
                lost[(k, p)] = (cents, REASON_NO_CUSTOMERS if k in known else REASON_NO_CHANNEL)
            else:
                allocated += cents
                for cid in new[(k, p)]:
                    cac[cid] = cents / 100 / len(new[(k, p)])
    else:
        period_new: dict[int, list[str]] = defaultdict(list)
        for (_, p), ids in new.items():
            period_new[p].extend(ids)
        period_cents: dict[int, int] = defaultdict(int)
        for (k, p), cents in cells.items():
            if not lo <= p <= hi:
                lost[(k, p)] = (cents, REASON_OUT_OF_RANGE)
            elif p not in period_new:
                lost[(k, p)] = (cents, REASON_NO_PERIOD_CUSTOMERS)
            else:
                period_cents[p] += cents
                allocated += cents
        for p, cents in period_cents.items():
            for cid in period_new[p]:
                cac[cid] = cents / 100 / len(period_new[p])
    return cac, lost, allocated


def _run(case: dict[str, Any]) -> Acquisition:
    return allocate_spend(
        customers_frame(*case["customers"]),
        spend_frame(*[(d, ch, cents / 100) for d, ch, cents in case["spend"]]),
        period="month",
        mode=case["mode"],
        data_start=case["data_start"],
        as_of=case["as_of"],
        aliases=case["aliases"],
    )


PROPERTY_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY_SETTINGS
@given(allocation_case())
def test_allocated_plus_unallocated_is_total_spend_to_the_cent(case: dict[str, Any]) -> None:
    acq = _run(case)
    total_cents = sum(cents for _, _, cents in case["spend"])
    t = acq.totals
    spend, allocated, unallocated = (round(float(t[k]) * 100) for k in ("spend", "allocated", "unallocated"))
    assert spend == total_cents
    assert allocated + unallocated == total_cents
    _, _, ref_allocated = _reference(case)
    assert allocated == ref_allocated
    assert round(sum(acq.unallocated["spend"].to_list()) * 100) == unallocated
    assert t["new_customers"] == len(case["customers"])


@PROPERTY_SETTINGS
@given(allocation_case())
def test_per_customer_cac_sums_to_the_allocated_spend(case: dict[str, Any]) -> None:
    acq = _run(case)
    n = len(case["customers"])
    assert acq.customers.height == n
    assert acq.customers["customer_id"].n_unique() == n
    total_cac = float(acq.customers["cac"].sum() or 0.0)
    assert abs(total_cac - float(acq.totals["allocated"])) <= 1e-6 * max(n, 1)
    ref_cac, _, _ = _reference(case)
    got = by_id(acq.customers, "cac")
    assert got.keys() == ref_cac.keys()
    for cid, value in ref_cac.items():
        assert got[cid] == pytest.approx(value, abs=1e-9), cid
        assert got[cid] >= 0.0


@PROPERTY_SETTINGS
@given(allocation_case())
def test_every_spend_cell_is_either_allocated_or_listed_as_unallocated(case: dict[str, Any]) -> None:
    acq = _run(case)
    _, ref_lost, _ = _reference(case)
    aliases = case["aliases"]
    listed = {}
    for r in acq.unallocated.iter_rows(named=True):
        key = (_key(r["channel"], aliases), r["period"])
        assert key not in listed, f"cell listed twice: {key}"
        listed[key] = (round(r["spend"] * 100), r["reason"])
    expected = {(k, _label(p)): v for (k, p), v in ref_lost.items()}
    assert listed == expected
    # A cell's money is allocated when it is not listed: the cac of its customers adds up to it.
    lo, hi = _month(case["data_start"]), _month(case["as_of"])
    if case["mode"] == "channel":
        cells: dict[tuple[str, int], int] = defaultdict(int)
        for d, ch, cents in case["spend"]:
            cells[(_key(ch, aliases), _month(d))] += cents
        cac = by_id(acq.customers, "cac")
        for (k, p), cents in cells.items():
            if (k, _label(p)) in listed:
                continue
            assert lo <= p <= hi
            members = [
                cid for cid, ch, first in case["customers"] if (ch.strip().lower(), _month(first)) == (k, p)
            ]
            assert members
            assert sum(cac[c] for c in members) == pytest.approx(cents / 100, abs=1e-6 * len(members))
