"""The transaction reader's shortcuts give what the long way gives: line numbers without counting newlines
in every cell, duplicates found by sorting, parsing only the rows that need the general parsers, and the
empty-row test only on rows without a date."""

from __future__ import annotations

import datetime as dt
import gzip
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import clvtool.io.transactions as reader
from clvtool.config import InputSettings
from clvtool.errors import ClvError
from clvtool.io.parse import (
    _amount_magnitude,
    _iso_text,
    _parse_amount_text,
    _parse_iso_text,
    parse_amount,
    parse_date,
    sparse,
)
from clvtool.io.schema import LINE, REASON, Reason
from clvtool.io.transactions import load_transactions

D = dt.date
PROPERTY_SETTINGS = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def write(directory: Path, name: str, content: bytes) -> str:
    path = directory / name
    path.write_bytes(content)
    return str(path)


def lines_and_reasons(tx) -> tuple[list[int], list[tuple[int, str]]]:
    used = sorted(tx.frame[LINE].to_list())
    rejected = (
        sorted(tx.audit.rejects.select(LINE, REASON).iter_rows()) if tx.audit.rejects is not None else []
    )
    return used, rejected


# --- physical line numbers --------------------------------------------------------------------

QUOTED_NEWLINES = (
    b"customer_id,date,amount\r\n"
    b"c1,2024-01-02,10\r\n"  # line 2
    b'"c\n2",2024-01-03,5\r\n'  # lines 3-4
    b"c3,not a date,1\r\n"  # line 5
    b'c4,2024-01-04,"1\r\n2"\r\n'  # lines 6-7
    b"\r\n"  # line 8: empty
    b"c5,2024-01-05,3"  # line 9, no final newline
)


@pytest.mark.parametrize("how", ["path", "gzip"])
def test_newlines_inside_quotes_shift_the_lines_after_them(tmp_path, how):
    content = gzip.compress(QUOTED_NEWLINES, mtime=0) if how == "gzip" else QUOTED_NEWLINES
    tx = load_transactions([write(tmp_path, "t.csv", content)], InputSettings(), keep_rejects=True)
    used, rejected = lines_and_reasons(tx)
    assert used == [2, 3, 9]
    assert rejected == [(5, Reason.BAD_DATE), (6, Reason.BAD_AMOUNT), (8, Reason.EMPTY)]
    assert tx.frame.sort(LINE)["customer_id"].to_list() == ["c1", "c\n2", "c5"]


@pytest.mark.parametrize(
    ("content", "one_line_each"),
    [
        (b"a,b\n1,2\n3,4\n", True),  # no quote at all
        (b"a,b\n1,2\n3,4", True),  # no final newline
        (b'a,b\r\n"1","2"\r\n\r\n"3",4\r\n', True),  # quotes, CRLF and a blank line, no newline inside
        (b'a,b\n"1","2"\n"3",4', True),
        (b'a,b\n"1\n","2"\n3,4\n', False),
        (b'a,b\n1,"2\r\n"', False),  # the newline is in the last record
        (b'"a\nx",b\n1,2\n', False),  # in the header
    ],
)
def test_one_line_per_record_from_the_bytes(tmp_path, content, one_line_each):
    records = pl.read_csv(content, has_header=False, skip_rows=1, infer_schema=False).height
    assert reader._one_line_per_record(content, records) is one_line_each
    assert reader._one_line_per_record(write(tmp_path, "t.csv", content), records) is one_line_each


ROWS = [
    b"c1,2024-01-02,10",
    b'"c2","2024-01-03","5.5"',
    b'"c\n3",2024-01-04,1',
    b'c4,"2024-01-05","1\r\n"',
    b"c5,2024-01-06,2,extra",
    b'c6,2024-01-06,2,"ex\ntra"',
    b"",
    b",,",
    b'"',
    b"c7,2024-01-07,3\r",
]
csv_bytes = st.tuples(
    st.lists(st.sampled_from(ROWS), max_size=25),
    st.sampled_from([b"\n", b"\r\n"]),
    st.booleans(),
).map(lambda t: b"customer_id,date,amount" + t[1] + t[1].join(t[0]) + (t[1] if t[2] else b""))


@PROPERTY_SETTINGS
@given(content=csv_bytes, zipped=st.booleans())
def test_line_shortcut_equals_counting_newlines_in_every_cell(content, zipped):
    with tempfile.TemporaryDirectory() as tmp:
        path = write(Path(tmp), "t.csv", gzip.compress(content, mtime=0) if zipped else content)

        def run():
            try:
                tx = load_transactions([path], InputSettings(), keep_rejects=True)
            except ClvError as exc:
                return str(exc)
            return lines_and_reasons(tx)

        quick = run()
        with mock.patch.object(reader, "_one_line_per_record", return_value=False):
            counted = run()
    assert quick == counted


# --- duplicates -------------------------------------------------------------------------------


@given(st.lists(st.integers(0, 40), max_size=300))
def test_repeated_rows_match_is_first_distinct(values):
    keys = pl.Series("k", values, dtype=pl.UInt64)
    expected = np.flatnonzero(~keys.is_first_distinct().to_numpy())
    assert reader._repeated_rows(keys).tolist() == expected.tolist()


def test_repeated_rows_with_few_and_with_many_copies():
    rng = np.random.default_rng(0)
    few = rng.integers(0, 2**63, 100_000, dtype=np.uint64)
    few[[10, 500, 99_999]] = few[[3, 7, 3]]
    many = np.repeat(rng.integers(0, 2**63, 5_000, dtype=np.uint64), 3)
    for values in (few, many):
        keys = pl.Series("k", values)
        expected = np.flatnonzero(~keys.is_first_distinct().to_numpy())
        assert reader._repeated_rows(keys).tolist() == expected.tolist()


def test_duplicates_across_files_by_position_and_null_is_not_empty_text(tmp_path):
    a = write(tmp_path, "a.csv", b"customer_id,date,amount\nc1,2024-01-02,10\nc2,2024-01-02,5\n")
    b = write(tmp_path, "b.csv", b"customer_id,date,amount\nc1,2024-01-02,10\nc2,2024-01-02,5.0\n")
    tx = load_transactions([a, b], InputSettings(), keep_rejects=True)
    assert tx.audit.excluded == {Reason.DUPLICATE: 1}
    assert tx.audit.rejects.select("_source", LINE).row(0) == (b, 2)

    frame = pl.DataFrame(
        {
            "customer_id": ["c1", "c1", "c1"],
            "date": ["2024-01-02"] * 3,
            "amount": ["1"] * 3,
            "note": [None, "", None],
        }
    )
    frame.write_parquet(tmp_path / "t.parquet")
    tx = load_transactions([str(tmp_path / "t.parquet")], InputSettings(), keep_rejects=True)
    assert sorted(tx.audit.rejects.select(LINE, REASON).iter_rows()) == [(4, Reason.DUPLICATE)]


# --- empty rows -------------------------------------------------------------------------------


def test_blank_rows_are_empty_and_rows_with_a_blank_date_only_are_not(tmp_path):
    content = b"customer_id,date,amount\n  ,\t, \n,,\nc1, ,5\n, ,\nc2,2024-01-02,1\n"
    tx = load_transactions([write(tmp_path, "t.csv", content)], InputSettings(), keep_rejects=True)
    assert lines_and_reasons(tx) == (
        [6],
        [(2, Reason.EMPTY), (3, Reason.EMPTY), (4, Reason.BAD_DATE), (5, Reason.EMPTY)],
    )


# --- sparse evaluation ------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(st.lists(st.tuples(st.booleans(), st.one_of(st.none(), st.integers(-5, 5))), max_size=200))
def test_sparse_equals_evaluating_everywhere(rows):
    frame = pl.DataFrame(rows, schema={"w": pl.Boolean, "x": pl.Int64}, orient="row")
    big = pl.concat([frame] * 500)  # several streaming batches

    def compute(x: pl.Expr) -> pl.Expr:
        return (x * 10).cast(pl.Float64)

    for data in (frame, big):
        expected = data.select(pl.when(pl.col("w")).then(compute(pl.col("x"))).alias("v"))["v"]
        got = sparse(pl.col("w"), [pl.col("x")], pl.Float64(), compute).alias("v")
        assert data.select(got)["v"].equals(expected)
        assert data.lazy().select(got).collect(engine="streaming")["v"].equals(expected)


# --- parse fast paths -------------------------------------------------------------------------

BLANKS = ["", " ", "\t", "\n", "\r\n", "\u00a0", "\u2003", "\u3000", "\x0b", "\ufeff", "\u200b"]


def trimmed_date(expr: pl.Expr) -> pl.Expr:
    """parse_date as specified: trim, then YYYY-MM-DD, then the general parser."""
    text = expr.str.strip_chars()
    day = text.str.to_date("%Y-%m-%d", strict=False)
    return pl.coalesce(day, _parse_iso_text(_iso_text(pl.when(day.is_null()).then(text)), "UTC"))


def trimmed_amount(expr: pl.Expr) -> pl.Expr:
    """parse_amount as specified: trim, then a plain number, then the general parser."""
    text = expr.str.strip_chars()
    number = pl.when(text.str.contains(r"^-?\d+(?:\.\d+)?$")).then(text.cast(pl.Float64, strict=False))
    other = pl.when(number.is_null()).then(text)
    return pl.coalesce(number, _parse_amount_text(other, _amount_magnitude(other, False), False))


date_like = st.one_of(
    st.dates(min_value=D(1, 1, 1)).map(lambda d: d.isoformat()),
    st.from_regex(r"[+\- 0-9]{0,6}-[ 0-9]{0,3}-[ 0-9]{0,3}", fullmatch=True),
    st.dates().map(lambda d: f"{d.isoformat()}T10:30:00Z"),
)
amount_like = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.from_regex(r"[-+(]?[$]?[0-9]{0,7}[.,]?[0-9]{0,3}[)e5]?", fullmatch=True),
    st.sampled_from(["nan", "inf", "-inf", "1e5", "+5", ".5", "5.", "\u0661\u0662", "1_000", "0x10"]),
)


@PROPERTY_SETTINGS
@given(
    st.lists(st.tuples(st.sampled_from(BLANKS), st.one_of(date_like, amount_like), st.sampled_from(BLANKS)))
)
def test_fast_paths_equal_trimming_first(cells):
    values = [a + v + b for a, v, b in cells]
    frame = pl.DataFrame({"x": values}, schema={"x": pl.String})
    dates = frame.select(parse_date(pl.col("x")).alias("new"), trimmed_date(pl.col("x")).alias("old"))
    assert dates["new"].equals(dates["old"])
    amounts = frame.select(parse_amount(pl.col("x")).alias("new"), trimmed_amount(pl.col("x")).alias("old"))
    assert amounts["new"].equals(amounts["old"])


# --- filtering the used rows ------------------------------------------------------------------


@given(st.lists(st.lists(st.booleans(), max_size=20), min_size=1, max_size=6))
def test_filter_releasing_equals_filter_over_chunks(chunks):
    keep = np.array([k for chunk in chunks for k in chunk], dtype=bool)
    parts = [pl.Series("x", range(len(c)), dtype=pl.Int64) for c in chunks]
    column = pl.concat(parts, rechunk=False)
    text = column.cast(pl.String).alias("t")
    expected = [column.filter(pl.Series(keep)), text.filter(pl.Series(keep))]
    got = reader._filter_releasing([column, text], keep)
    assert [s.to_list() for s in got] == [s.to_list() for s in expected]
    assert [s.name for s in got] == ["x", "t"]


# --- original cells of rejected rows ----------------------------------------------------------


def test_rejects_keep_the_cells_of_duplicates_late_and_broken_rows(tmp_path):
    a = write(tmp_path, "a.csv", b"customer_id,date,amount,memo\nc1,2024-01-02,10\nc9,2024-03-01,1,z\n")
    b = write(
        tmp_path,
        "b.csv",
        b"customer_id,date,amount,note\nc1,2024-01-02,10\nc2,2024-01-03,5,x\nc2,2024-01-03,5,x\nc3,,1,y\n",
    )
    tx = load_transactions([a, b], InputSettings(), as_of=D(2024, 2, 1), keep_rejects=True)
    rows = tx.audit.rejects.with_columns(pl.col("_source").str.extract(r"(\w)\.csv$")).rows()
    assert tx.audit.rejects.columns == [
        "_source", LINE, REASON, "~customer_id", "~date", "~amount", "~memo", "~note"
    ]  # fmt: skip
    assert rows == [
        ("a", 3, Reason.AFTER_AS_OF, "c9", "2024-03-01", "1", "z", None),
        ("b", 2, Reason.DUPLICATE, "c1", "2024-01-02", "10", None, None),  # positionally equal to a's line 2
        ("b", 4, Reason.DUPLICATE, "c2", "2024-01-03", "5", None, "x"),
        ("b", 5, Reason.BAD_DATE, "c3", None, "1", None, "y"),
    ]
    clean = load_transactions([a], InputSettings(), keep_rejects=True).audit.rejects
    assert clean.columns == ["_source", LINE, REASON, "~customer_id", "~date", "~amount", "~memo"]
    assert clean.height == 0


def test_mixed_currencies_name_the_physical_line_of_the_minority(tmp_path):
    content = b'customer_id,date,amount,currency\nc1,2024-01-02,1,USD\n"c\n2",2024-01-02,1,USD\nc3,2024-01-02,1,EUR\n'
    with pytest.raises(ClvError, match=r"t\.csv \(line 5: EUR\)"):
        load_transactions([write(tmp_path, "t.csv", content)], InputSettings())
