"""Tests of the marketing-spend reader (PRODUCT §3.2, §3.5): dates, columns, duplicates, bad rows.

Every test runs in its own empty working directory (conftest), so files are written with relative names.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from clvtool.config import InputSettings
from clvtool.errors import InputError
from clvtool.io.spend import Spend, load_spend

D = dt.date


def write(name: str, text: str) -> str:
    Path(name).write_text(text, encoding="utf-8")
    return name


def read(text: str, name: str = "spend.csv", **settings: object) -> Spend:
    return load_spend(write(name, text), InputSettings(**settings))  # type: ignore[arg-type]


def rows(spend: Spend) -> list[tuple[dt.date, str, str | None, float]]:
    return [
        (r["date"], r["channel"], r["campaign"], r["spend"])
        for r in spend.frame.sort("date", "channel", "campaign", nulls_last=True).iter_rows(named=True)
    ]


# ---- dates, columns, values -----------------------------------------------------------------------


def test_days_and_months_are_both_dates() -> None:
    spend = read(
        "date,channel,spend\n"
        "2024-03-15,google,10\n"  # a day
        "2024-04,google,20\n"  # a month: its first day
        "2024/5,google,30\n"  # a month with a slash and one digit
        "20240620,google,40\n"  # YYYYMMDD day
    )
    assert spend.frame.schema["date"] == pl.Date
    assert rows(spend) == [
        (D(2024, 3, 15), "google", None, 10.0),
        (D(2024, 4, 1), "google", None, 20.0),
        (D(2024, 5, 1), "google", None, 30.0),
        (D(2024, 6, 20), "google", None, 40.0),
    ]
    assert spend.audit.rows_read == 4
    assert spend.audit.rows_used == 4
    assert spend.audit.excluded == {}
    assert spend.audit.first_date == D(2024, 3, 15)
    assert spend.audit.last_date == D(2024, 6, 20)


def test_channel_is_trimmed_but_keeps_its_case_and_currency_is_upper_cased() -> None:
    spend = read(
        'date,channel,spend,campaign,currency\n2024-03,  Google Ads ,"$1,234.50",brand,usd\n2024-03,meta,0,,USD\n'
    )
    # The reader keeps the spelling; matching to transaction channels is the engine's job.
    assert rows(spend) == [
        (D(2024, 3, 1), "Google Ads", "brand", 1234.5),
        (D(2024, 3, 1), "meta", None, 0.0),
    ]
    assert spend.frame["currency"].to_list() == ["USD", "USD"]
    assert spend.currency == "USD"


def test_without_currency_column_the_currency_is_unknown() -> None:
    spend = read("date,channel,spend\n2024-03,google,10\n")
    assert spend.currency is None
    assert spend.frame.columns == ["date", "channel", "campaign", "spend", "currency"]


def test_common_header_names_are_recognised() -> None:
    spend = read("Day,Source,Cost,Campaign Name\n2024-01-02,bing,12.5,spring\n")
    assert rows(spend) == [(D(2024, 1, 2), "bing", "spring", 12.5)]
    mapping = spend.audit.files[0].mapping
    assert mapping["date"] == "Day"
    assert mapping["channel"] == "Source"
    assert mapping["spend"] == "Cost"
    assert mapping["campaign"] == "Campaign Name"


def test_configured_column_mapping() -> None:
    spend = read(
        "when,who,eur\n2024-02,newsletter,7.25\n",
        columns={"date": "when", "channel": "who", "spend": "eur"},
    )
    assert rows(spend) == [(D(2024, 2, 1), "newsletter", None, 7.25)]


@pytest.mark.parametrize(
    ("header", "missing"),
    [
        ("date,channel,clicks", "spend"),
        ("channel,spend", "date"),
        ("date,spend", "channel"),
    ],
)
def test_missing_required_column_names_the_file_and_the_column(header: str, missing: str) -> None:
    with pytest.raises(InputError) as info:
        read(f"{header}\nx,y\n", name="ads.csv")
    message = str(info.value)
    assert message.startswith("ads.csv: ")
    assert f"'{missing}'" in message
    assert "\n" not in message


# ---- excluded rows are counted, never silently dropped -------------------------------------------


def test_unparseable_cells_are_excluded_and_counted_with_their_line() -> None:
    spend = read(
        "date,channel,spend\n"
        "2024-01,google,100\n"  # line 2: used
        "someday,google,5\n"  # line 3: unparseable date
        "2024-02,google,lots\n"  # line 4: unparseable amount
        "2024-02,,5\n"  # line 5: no channel
        "2024-13,google,5\n"  # line 6: month 13 is no date
        "2024-02-30,google,5\n"  # line 7: impossible day
        "2024-03,meta,\n"  # line 8: empty amount
        "2024-03,meta,40\n"  # line 9: used
    )
    assert rows(spend) == [(D(2024, 1, 1), "google", None, 100.0), (D(2024, 3, 1), "meta", None, 40.0)]
    audit = spend.audit
    # 8 data rows = 2 used + 6 excluded
    assert audit.rows_read == 8
    assert audit.rows_used == 2
    assert audit.excluded == {"missing_channel": 1, "unparseable_date": 3, "unparseable_amount": 2}
    assert audit.reconciles()
    assert audit.input == "spend"
    rejects = audit.rejects
    assert rejects is not None
    by_line = dict(zip(rejects["_line"].to_list(), rejects["_reason"].to_list(), strict=True))
    assert by_line == {
        3: "unparseable_date",
        4: "unparseable_amount",
        5: "missing_channel",
        6: "unparseable_date",
        7: "unparseable_date",
        8: "unparseable_amount",
    }
    assert set(rejects["_source"].to_list()) == {"spend.csv"}
    assert "2 unparseable_amount" in audit.summary_line()
    assert audit.summary_line().startswith("6 of 8 spend rows excluded")


def test_row_with_more_fields_than_the_header_is_not_silently_truncated() -> None:
    # "1,234.50" without quotes splits into two fields. Reading 1.00 and dropping "234.50" would
    # lose 1,233.50 of spend without a trace (§3.5: nothing is dropped silently). The row must be
    # excluded and counted, like a ragged transaction row.
    spend = read("date,channel,spend\n2024-01,google,1,234.50\n2024-02,google,100\n")
    assert spend.audit.rows_read == 2
    assert spend.frame["spend"].to_list() == [100.0]
    assert spend.audit.excluded == {"ragged_row": 1}
    assert spend.audit.reconciles()


def test_header_only_file_is_empty_not_an_error() -> None:
    spend = read("date,channel,spend\n")
    assert spend.frame.height == 0
    assert spend.audit.rows_read == 0
    assert spend.audit.rows_used == 0
    assert spend.audit.reconciles()


# ---- negative spend ---------------------------------------------------------------------------------


@pytest.mark.parametrize("amount", ["-5", "(5.00)", "-0.01"])
def test_negative_spend_is_an_error_naming_file_and_line(amount: str) -> None:
    text = f"date,channel,spend\n2024-01,google,10\n2024-01,meta,20\n2024-02,meta,{amount}\n"
    with pytest.raises(InputError) as info:
        read(text, name="ads.csv")
    message = str(info.value)
    assert message.startswith("ads.csv: ")
    assert "line 4" in message
    assert "negative" in message
    assert "meta" in message
    assert "\n" not in message


def test_zero_spend_is_allowed() -> None:
    spend = read("date,channel,spend\n2024-01,google,0\n2024-01,meta,0.00\n")
    assert spend.frame["spend"].to_list() == [0.0, 0.0]
    assert spend.audit.excluded == {}


# ---- duplicates -------------------------------------------------------------------------------------


def test_identical_rows_collapse_and_are_counted() -> None:
    spend = read(
        "date,channel,campaign,spend\n"
        "2024-01,google,brand,100\n"
        "2024-01,google,brand,100\n"  # line 3: identical to line 2
        "2024-01,google,generic,100\n"  # another campaign: not a duplicate
        "2024-01,google,brand,100.00\n"  # line 5: the same amount written differently
        "2024-02,google,brand,100\n"
    )
    # Kept: (Jan, brand, 100), (Jan, generic, 100), (Feb, brand, 100) -> total 300, not 500.
    assert rows(spend) == [
        (D(2024, 1, 1), "google", "brand", 100.0),
        (D(2024, 1, 1), "google", "generic", 100.0),
        (D(2024, 2, 1), "google", "brand", 100.0),
    ]
    assert spend.frame["spend"].sum() == pytest.approx(300.0)
    assert spend.audit.rows_read == 5
    assert spend.audit.rows_used == 3
    assert spend.audit.excluded == {"duplicate_row": 2}
    assert spend.audit.rejects is not None
    assert sorted(spend.audit.rejects["_line"].to_list()) == [3, 5]
    assert any("duplicate_row" in note for note in spend.audit.notes)


def test_identical_rows_without_campaign_collapse() -> None:
    spend = read("date,channel,spend\n2024-01,google,42\n2024-01,google,42\n")
    assert rows(spend) == [(D(2024, 1, 1), "google", None, 42.0)]
    assert spend.audit.excluded == {"duplicate_row": 1}


def test_conflicting_duplicates_are_an_error_naming_the_lines() -> None:
    text = "date,channel,spend\n2024-01,google,100\n2024-01,meta,50\n2024-01,google,120\n"
    with pytest.raises(InputError) as info:
        read(text, name="ads.csv")
    message = str(info.value)
    assert message.startswith("ads.csv: ")
    assert "lines 2, 4" in message
    assert "google" in message
    assert "\n" not in message


def test_conflict_message_names_only_the_lines_of_the_conflicting_key() -> None:
    # Campaign A conflicts on lines 2 and 3; campaign B, a different key, conflicts on lines 4 and 5.
    # The message speaks of campaign A, so it must list lines 2 and 3 only.
    text = (
        "date,channel,campaign,spend\n"
        "2024-01,google,A,10\n"
        "2024-01,google,A,12\n"
        "2024-01,google,B,5\n"
        "2024-01,google,B,6\n"
    )
    with pytest.raises(InputError) as info:
        read(text)
    message = str(info.value)
    assert "campaign A" in message
    assert "lines 2, 3:" in message, message


def test_mixed_currencies_are_an_error_naming_the_file() -> None:
    text = "date,channel,spend,currency\n2024-01,google,10,USD\n2024-01,meta,10,EUR\n"
    with pytest.raises(InputError) as info:
        read(text, name="ads.csv")
    message = str(info.value)
    assert message.startswith("ads.csv: ")
    assert "EUR" in message and "USD" in message
