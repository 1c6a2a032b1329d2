"""Engine tests of clvtool.io.parse: money and date text to typed values, against hand-written answers."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from clvtool.io.parse import amount_from, date_from, parse_amount, parse_date

D = dt.date


def amounts(values: list[str | None], *, decimal_comma: bool = False) -> list[float | None]:
    frame = pl.DataFrame({"a": values}, schema={"a": pl.String})
    return frame.select(parse_amount(pl.col("a"), decimal_comma=decimal_comma))["a"].to_list()


def amount(value: str | None, *, decimal_comma: bool = False) -> float | None:
    return amounts([value], decimal_comma=decimal_comma)[0]


def dates(values: list[str | None], *, timezone: str = "UTC", fmt: str | None = None) -> list[D | None]:
    frame = pl.DataFrame({"d": values}, schema={"d": pl.String})
    return frame.select(parse_date(pl.col("d"), timezone=timezone, fmt=fmt))["d"].to_list()


def date(value: str | None, *, timezone: str = "UTC", fmt: str | None = None) -> D | None:
    return dates([value], timezone=timezone, fmt=fmt)[0]


# --- parse_amount ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12", 12.0),
        ("12.50", 12.5),
        ("  12.50  ", 12.5),
        ("+3", 3.0),
        (".5", 0.5),
        ("1234", 1234.0),
        ("1,234", 1234.0),
        ("1,234,567.89", 1234567.89),
        ("12,345.6", 12345.6),
        ("1 234.5", 1234.5),
        ("1'234.50", 1234.5),
        ("$1,234.56", 1234.56),
        ("$ 1,234.56", 1234.56),
        ("USD 9.99", 9.99),
        ("usd 9.99", 9.99),
        ("9.99 EUR", 9.99),
        ("12 €", 12.0),
        ("£ 3", 3.0),
        ("¥100", 100.0),
    ],
)
def test_amount_point_decimal(text, expected):
    assert amount(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("-12", -12.0),
        ("- 5", -5.0),
        ("\u221212.50", -12.5),  # unicode minus sign
        ("(12.00)", -12.0),
        ("( 12.00 )", -12.0),
        ("($5.00)", -5.0),
        ("(USD 1,000.00)", -1000.0),
        ("-$5", -5.0),
        ("$-5", -5.0),
        ("-1,234.56", -1234.56),
        ("EUR -3.50", -3.5),
    ],
)
def test_amount_negatives(text, expected):
    assert amount(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("€ 1.234,56", 1234.56),
        ("€1.234,56", 1234.56),
        ("1.234,5", 1234.5),
        ("1\u00a0234,50", 1234.5),  # no-break space as thousands separator
        ("1,23", 1.23),
        ("1,234", 1.234),  # with a decimal comma this is one point two three four
        ("12", 12.0),
        ("(1.234,56 €)", -1234.56),
        ("-7,5", -7.5),
        ("1.234.567,89 EUR", 1234567.89),
    ],
)
def test_amount_decimal_comma(text, expected):
    assert amount(text, decimal_comma=True) == expected


@pytest.mark.parametrize(
    "text",
    [
        "1,23",  # badly grouped thousands: rejected, not guessed as 123 or 1.23
        "1,2345",
        "12,",
        "€ 1.234,56",  # decimal comma without transactions.decimal_comma
        "1.234,5",
        "12.5.3",
        "12.00.",
        "12 34",
    ],
)
def test_amount_ambiguous_grouping_is_null_without_decimal_comma(text):
    assert amount(text) is None


@pytest.mark.parametrize(
    "text",
    ["1,234.56", "1.234.56", "12,34.5", "$1,234.56"],
)
def test_amount_point_grouping_is_null_with_decimal_comma(text):
    assert amount(text, decimal_comma=True) is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        None,
        "abc",
        "n/a",
        "USD",
        "$",
        "(12",
        "12)",
        "5-",
        "5 ABCD",
        "12 apples",
        "ten",
        "1O",  # letter O instead of zero
    ],
)
def test_amount_garbage_is_null(text):
    assert amount(text) is None
    assert amount(text, decimal_comma=True) is None


@pytest.mark.parametrize("text", ["1e5", "1.5E+05", "nan", "NaN", "inf", "-inf", "Infinity"])
@pytest.mark.parametrize("decimal_comma", [False, True])
def test_amount_scientific_and_non_finite_text_is_null(text, decimal_comma):
    """Not money notation (§3.1): null, never 100000.0, NaN or inf, with or without decimal comma."""
    assert amount(text, decimal_comma=decimal_comma) is None


@pytest.mark.parametrize("text", ["--5", "-$-5", "+-5"])
def test_amount_doubled_sign_is_null(text):
    """Two signs are malformed; reading '-$-5' as -5 is a guess (README: rejected rather than guessed)."""
    assert amount(text) is None


def test_amount_keeps_row_order_and_length():
    values = ["1", "x", "(2)", None, "$3.50"]
    assert amounts(values) == [1.0, None, -2.0, None, 3.5]


def test_amount_from_numeric_columns_is_a_plain_cast():
    frame = pl.DataFrame({"i": [1, -2], "f": [1.5, -2.25]})
    out = frame.select(
        amount_from(pl.col("i"), frame.schema["i"], decimal_comma=False),
        amount_from(pl.col("f"), frame.schema["f"], decimal_comma=True),
    )
    assert out.schema == {"i": pl.Float64, "f": pl.Float64}
    assert out["i"].to_list() == [1.0, -2.0]
    assert out["f"].to_list() == [1.5, -2.25]


def test_amount_from_text_column_parses():
    frame = pl.DataFrame({"a": ["1.234,50", "x"]})
    out = frame.select(amount_from(pl.col("a"), frame.schema["a"], decimal_comma=True))
    assert out["a"].to_list() == [1234.5, None]


# --- parse_date -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-02", D(2024, 1, 2)),
        ("  2024-01-02  ", D(2024, 1, 2)),
        ("2024-1-2", D(2024, 1, 2)),  # unpadded month and day: unambiguous, accepted
        ("20240102", D(2024, 1, 2)),
        ("2024-02-29", D(2024, 2, 29)),  # leap day
        ("2024/01/02", D(2024, 1, 2)),
        ("2024-01-02T10:00:00", D(2024, 1, 2)),
        ("2024-01-02 10:00:00", D(2024, 1, 2)),
        ("2024-01-02T23:59", D(2024, 1, 2)),
        ("2024-01-02 23:59:59.999", D(2024, 1, 2)),
        ("2024-01-02T10:00:00.123456789", D(2024, 1, 2)),
    ],
)
def test_date_iso_and_compact(text, expected):
    assert date(text) == expected


@pytest.mark.parametrize(
    ("text", "timezone", "expected"),
    [
        # Z is UTC: late evening UTC is already the next day in Berlin (UTC+1 in January).
        ("2024-01-02T23:30:00Z", "UTC", D(2024, 1, 2)),
        ("2024-01-02T23:30:00Z", "Europe/Berlin", D(2024, 1, 3)),
        # Early morning UTC is still the previous day in New York (UTC-5 in January).
        ("2024-01-02T01:00:00Z", "UTC", D(2024, 1, 2)),
        ("2024-01-02T01:00:00Z", "America/New_York", D(2024, 1, 1)),
        ("2024-01-02T01:00:00Z", "Europe/Berlin", D(2024, 1, 2)),
        # Without seconds, and with fractional seconds.
        ("2024-01-02T23:30Z", "Europe/Berlin", D(2024, 1, 3)),
        ("2024-01-02T10:00:00.123Z", "UTC", D(2024, 1, 2)),
        # ±HH:MM and ±HHMM offsets.
        ("2024-01-02T23:30:00+01:00", "UTC", D(2024, 1, 2)),  # 22:30 UTC
        ("2024-01-03T00:30:00+01:00", "UTC", D(2024, 1, 2)),  # 23:30 UTC the day before
        ("2024-01-03T00:30:00+0100", "UTC", D(2024, 1, 2)),
        ("2024-01-02T20:00:00-05:00", "UTC", D(2024, 1, 3)),  # 01:00 UTC the next day
        ("2024-01-02T20:00:00-0500", "UTC", D(2024, 1, 3)),
        ("2024-01-02T20:00:00-0500", "America/New_York", D(2024, 1, 2)),
        ("2024-01-02T20:00:00+05:30", "UTC", D(2024, 1, 2)),  # 14:30 UTC
        ("2024-01-02T04:00:00+05:30", "UTC", D(2024, 1, 1)),  # 22:30 UTC the day before
        ("2024-01-02 23:30:00 +01:00", "UTC", D(2024, 1, 2)),
        ("2024-01-02T23:30:00.5+01:00", "Europe/Berlin", D(2024, 1, 2)),
        # Summer time: Berlin is UTC+2 in July.
        ("2024-07-01T22:30:00Z", "Europe/Berlin", D(2024, 7, 2)),
        ("2024-07-01T21:30:00Z", "Europe/Berlin", D(2024, 7, 1)),
        # A ' UTC' suffix means the same as Z.
        ("2024-01-02T23:30:00 UTC", "Europe/Berlin", D(2024, 1, 3)),
    ],
)
def test_date_offsets_are_converted_before_taking_the_day(text, timezone, expected):
    assert date(text, timezone=timezone) == expected


@pytest.mark.parametrize(
    "text",
    ["2024-01-02T23:30:00", "2024-01-02 23:30", "2024-01-02T00:10:00", "2024-01-02"],
)
@pytest.mark.parametrize("timezone", ["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo"])
def test_date_naive_keeps_wall_clock_day(text, timezone):
    assert date(text, timezone=timezone) == D(2024, 1, 2)


@pytest.mark.parametrize(
    "text",
    [
        "2024-02-30",
        "2023-02-29",  # not a leap year
        "2024-13-01",
        "2024-00-10",
        "2024-04-31",
        "20240230",
        "20241301",
        "2024-01-02 25:00",
        "2024-01-02T25:00:00",
        "2024-01-02T24:00:00",
        "2024-01-02T10:61:00",
        "2024-01-02T25:00:00Z",
        "2024-02-30T10:00:00+01:00",
        "2024-01-02T23:30:00+2500",  # impossible offset
    ],
)
def test_date_impossible_is_null(text):
    assert date(text) is None


@pytest.mark.parametrize("text", ["2024-01-02T10:00:99", "2024-01-02 10:00:61"])
def test_date_naive_impossible_seconds_is_null(text):
    """Seconds 61/99 are as impossible as hour 25; with a Z suffix they already give null."""
    assert date(text + "Z") is None
    assert date(text) is None


@pytest.mark.parametrize(
    "text",
    ["", "   ", None, "garbage", "2024", "02/01/2024", "Jan 2 2024", "2024-01-02T10:00:00,5"],
)
def test_date_garbage_is_null(text):
    assert date(text) is None


@pytest.mark.parametrize(
    ("fmt", "text", "expected"),
    [
        ("%d/%m/%Y", "02/01/2024", D(2024, 1, 2)),
        ("%d/%m/%Y", "31/12/2023", D(2023, 12, 31)),
        ("%d/%m/%Y", "31/02/2024", None),
        ("%d/%m/%Y", "2024-01-02", None),  # the configured format replaces ISO parsing
        ("%d/%m/%Y", "garbage", None),
        ("%m-%d-%Y", "01-02-2024", D(2024, 1, 2)),
        ("%d.%m.%Y %H:%M", "02.01.2024 23:30", D(2024, 1, 2)),
        ("%d.%m.%Y %H:%M", "02.01.2024 25:30", None),
    ],
)
def test_date_configured_format(fmt, text, expected):
    assert date(text, fmt=fmt) == expected


def test_date_configured_format_with_offset_converts_to_timezone():
    fmt = "%Y-%m-%d %H:%M:%S%z"
    values = ["2024-01-02 23:30:00+0000", "2024-01-02 20:00:00-0500", "2024-01-02 10:00:00+0000"]
    assert dates(values, timezone="Europe/Berlin", fmt=fmt) == [D(2024, 1, 3), D(2024, 1, 3), D(2024, 1, 2)]
    assert dates(values, timezone="UTC", fmt=fmt) == [D(2024, 1, 2), D(2024, 1, 3), D(2024, 1, 2)]


def test_date_keeps_row_order_and_length():
    values = ["2024-01-02", "x", "20240103", None, "2024-01-02T23:30:00Z"]
    assert dates(values, timezone="Europe/Berlin") == [
        D(2024, 1, 2),
        None,
        D(2024, 1, 3),
        None,
        D(2024, 1, 3),
    ]


# --- date_from ------------------------------------------------------------------------------


def _date_from(frame: pl.DataFrame, col: str, *, timezone: str = "UTC", fmt: str | None = None) -> list:
    return frame.select(date_from(pl.col(col), frame.schema[col], timezone=timezone, fmt=fmt))[col].to_list()


def test_date_from_date_column_is_unchanged():
    frame = pl.DataFrame({"d": [D(2024, 1, 2), None]})
    assert _date_from(frame, "d", timezone="America/New_York") == [D(2024, 1, 2), None]


def test_date_from_aware_datetime_is_converted():
    frame = pl.DataFrame(
        {"d": [dt.datetime(2024, 1, 2, 23, 30), dt.datetime(2024, 1, 2, 1, 0)]}
    ).with_columns(pl.col("d").dt.replace_time_zone("UTC"))
    assert _date_from(frame, "d", timezone="Europe/Berlin") == [D(2024, 1, 3), D(2024, 1, 2)]
    assert _date_from(frame, "d", timezone="America/New_York") == [D(2024, 1, 2), D(2024, 1, 1)]


def test_date_from_naive_datetime_keeps_wall_clock_day():
    frame = pl.DataFrame({"d": [dt.datetime(2024, 1, 2, 23, 30)]})
    assert _date_from(frame, "d", timezone="Europe/Berlin") == [D(2024, 1, 2)]


def test_date_from_integer_yyyymmdd():
    frame = pl.DataFrame({"d": [20240131, 20240231, 20231301]})
    assert _date_from(frame, "d") == [D(2024, 1, 31), None, None]


def test_date_from_text_uses_parse_date_with_format_and_zone():
    frame = pl.DataFrame({"d": ["2024-01-02T23:30:00Z", "x"], "e": ["02/01/2024", "30/02/2024"]})
    assert _date_from(frame, "d", timezone="Europe/Berlin") == [D(2024, 1, 3), None]
    assert _date_from(frame, "e", fmt="%d/%m/%Y") == [D(2024, 1, 2), None]
