"""Property tests (hypothesis) of the transaction reader: planted exclusions are counted exactly, totals
always reconcile, and no input bytes make anything but a ClvError escape load_transactions."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clvtool.config import InputSettings
from clvtool.errors import ClvError
from clvtool.io.schema import DEFAULT_EXCLUDE_STATUSES, LINE, REASON, Reason
from clvtool.io.transactions import load_transactions

AS_OF = dt.date(2024, 6, 30)
HEADER = ["customer_id", "date", "amount", "status", "order_id"]
PROPERTY_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)

# --- cell strategies ------------------------------------------------------------------------

usable_dates = st.dates(min_value=dt.date(2020, 1, 1), max_value=AS_OF)
late_dates = st.dates(min_value=AS_OF + dt.timedelta(days=1), max_value=dt.date(2026, 12, 31))


@st.composite
def date_text(draw, dates=usable_dates) -> str:
    day = draw(dates)
    style = draw(st.sampled_from(["iso", "compact", "naive", "naive_t", "noon_z", "slash"]))
    return {
        "iso": day.isoformat(),
        "compact": day.strftime("%Y%m%d"),
        "naive": f"{day.isoformat()} 23:59",
        "naive_t": f"{day.isoformat()}T08:15:00",
        "noon_z": f"{day.isoformat()}T12:00:00Z",  # noon UTC is the same day in UTC
        "slash": day.strftime("%Y/%m/%d"),
    }[style]


def _group(whole: int, sep: str) -> str:
    return f"{whole:,}".replace(",", sep)


@st.composite
def amount_text(draw, decimal_comma: bool) -> str:
    cents = draw(st.integers(min_value=-10_000_000, max_value=10_000_000))
    whole, frac = divmod(abs(cents), 100)
    point, thousands = (",", ".") if decimal_comma else (".", ",")
    grouped = draw(st.booleans())
    number = (_group(whole, thousands) if grouped else str(whole)) + f"{point}{frac:02d}"
    decor = draw(st.sampled_from(["", "$", "USD ", " EUR", "€"]))
    body = f"{decor}{number}" if not decor.startswith(" ") else f"{number}{decor}"
    if cents < 0:
        return f"({body})" if draw(st.booleans()) else f"-{body}"
    return body


BAD_DATES = [
    "2024-02-30",
    "2023-02-29",
    "not a date",
    "",
    "31/01/2024",
    "2024-13-01",
    "1899-12-31",
    "tomorrow",
]
BAD_AMOUNTS_BOTH = ["abc", "", "12.3.4", "n/a", "twelve", "$"]
BAD_AMOUNTS_POINT = ["1,23", "1,2345"]  # badly grouped without a decimal comma
USED_STATUSES = ["paid", "", "Complete", "refunded", "PAID"]


@st.composite
def excluded_status(draw) -> str:
    word = draw(st.sampled_from(DEFAULT_EXCLUDE_STATUSES))
    word = "".join(c.upper() if draw(st.booleans()) else c for c in word)
    return draw(st.sampled_from(["", " "])) + word + draw(st.sampled_from(["", "  "]))


KINDS = [
    "good",
    "good",
    "good",
    "bad_date",
    "bad_amount",
    "blank_id",
    "status",
    "dup",
    "empty",
    "ragged",
    "after",
]
EXPECTED_REASON = {
    "good": None,
    "bad_date": Reason.BAD_DATE,
    "bad_amount": Reason.BAD_AMOUNT,
    "blank_id": Reason.MISSING_IDENTITY,
    "status": Reason.EXCLUDED_STATUS,
    "dup": Reason.DUPLICATE,
    "empty": Reason.EMPTY,
    "ragged": Reason.RAGGED,
    "after": Reason.AFTER_AS_OF,
}


@dataclass
class Planted:
    content: bytes
    reasons: list[str | None]  # per data row, in file order
    decimal_comma: bool
    gzip: bool
    suffix: str


@st.composite
def planted_files(draw) -> Planted:
    decimal_comma = draw(st.booleans())
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    kinds = draw(st.lists(st.sampled_from(KINDS), max_size=40))

    def good_row(i: int, dates=usable_dates) -> list[str]:
        customer = f"c{draw(st.integers(0, 15))}"
        if draw(st.booleans()):
            customer = f"  {customer} "
        return [
            customer,
            draw(date_text(dates)),
            draw(amount_text(decimal_comma)),
            draw(st.sampled_from(USED_STATUSES)),
            f"o{i}",  # unique per row: exact copies appear only where planted
        ]

    rows: list[list[str]] = []
    reasons: list[str | None] = []
    goods: list[list[str]] = []
    for i, kind in enumerate(kinds):
        if kind == "dup" and not goods:
            kind = "good"
        if kind == "good":
            row = good_row(i)
            goods.append(row)
        elif kind == "dup":
            row = list(draw(st.sampled_from(goods)))
        elif kind == "after":
            row = good_row(i, late_dates)
        elif kind == "bad_date":
            row = good_row(i)
            row[1] = draw(st.sampled_from(BAD_DATES))
        elif kind == "bad_amount":
            row = good_row(i)
            row[2] = draw(st.sampled_from(BAD_AMOUNTS_BOTH + ([] if decimal_comma else BAD_AMOUNTS_POINT)))
        elif kind == "blank_id":
            row = good_row(i)
            row[0] = draw(st.sampled_from(["", "   "]))
        elif kind == "status":
            row = good_row(i)
            row[3] = draw(excluded_status())
        elif kind == "empty":
            row = draw(st.sampled_from([[], [""] * len(HEADER)]))
        else:  # ragged: one more, non-empty field than the header
            row = [*good_row(i), draw(st.sampled_from(["EXTRA", "x", "0"]))]
        rows.append(row)
        reasons.append(EXPECTED_REASON[kind])

    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator=newline)
    writer.writerow(HEADER)
    writer.writerows(rows)
    content = buffer.getvalue().encode("utf-8")
    if draw(st.booleans()):
        content = b"\xef\xbb\xbf" + content
    zipped = draw(st.booleans())
    if zipped:
        content = gzip.compress(content, mtime=0)
    suffix = ".tsv" if delimiter == "\t" and draw(st.booleans()) else ".csv"
    return Planted(content, reasons, decimal_comma, zipped, suffix + (".gz" if zipped else ""))


@PROPERTY_SETTINGS
@given(planted=planted_files(), keep_rejects=st.booleans())
def test_planted_exclusions_are_counted_and_totals_reconcile(planted, keep_rejects):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"orders{planted.suffix}"
        path.write_bytes(planted.content)
        tx = load_transactions(
            [str(path)],
            InputSettings(decimal_comma=planted.decimal_comma),
            as_of=AS_OF,
            keep_rejects=keep_rejects,
        )
    audit = tx.audit
    expected = Counter(r for r in planted.reasons if r is not None)
    assert audit.rows_read == len(planted.reasons)
    assert audit.rows_read == audit.rows_used + sum(audit.excluded.values())
    assert audit.excluded == dict(expected)
    assert audit.rows_used == planted.reasons.count(None)
    assert tx.frame.height == audit.rows_used
    assert sorted(tx.frame[LINE].to_list()) == [i + 2 for i, r in enumerate(planted.reasons) if r is None]
    if tx.frame.height:
        assert tx.frame["date"].max() <= AS_OF
        assert tx.frame["customer_id"].str.strip_chars().eq(tx.frame["customer_id"]).all()
    if keep_rejects:
        got = sorted(audit.rejects.select(LINE, REASON).iter_rows())
        want = [(i + 2, r) for i, r in enumerate(planted.reasons) if r is not None]
        assert got == want


# --- no exception but ClvError escapes --------------------------------------------------------

CSV_HEAD = b"customer_id,date,amount,status\n"
TOKENS = [
    b",",
    b";",
    b"\t",
    b"\n",
    b"\r\n",
    b'"',
    b" ",
    b"c1",
    b"2024-01-02",
    b"2024-02-30",
    b"20240102",
    b"12.50",
    b"(3.00)",
    b"1,23",
    b"$",
    b"test",
    b"\xc3\xa9",
    b"\xe9",
    b"\xff",
    b"\x00",
    b"PAR1",
    b"\x1f\x8b",
    b"\xef\xbb\xbf",
]

arbitrary_content = st.one_of(
    st.binary(max_size=600),
    st.binary(max_size=400).map(lambda b: CSV_HEAD + b),
    st.lists(st.sampled_from(TOKENS), max_size=80).map(b"".join),
    st.lists(st.sampled_from(TOKENS), max_size=80).map(lambda parts: CSV_HEAD + b"".join(parts)),
    st.binary(max_size=300).map(lambda b: gzip.compress(b, mtime=0)),
    st.binary(max_size=300).map(lambda b: gzip.compress(CSV_HEAD + b, mtime=0)),
    st.binary(max_size=300).map(lambda b: b"PAR1" + b),
)


@PROPERTY_SETTINGS
@given(
    content=arbitrary_content,
    suffix=st.sampled_from([".csv", ".tsv", ".csv.gz", ".parquet", ""]),
    encoding=st.sampled_from(["utf-8", "latin-1"]),
    decimal_comma=st.booleans(),
    keep_rejects=st.booleans(),
)
def test_arbitrary_bytes_raise_only_clv_errors(content, suffix, encoding, decimal_comma, keep_rejects):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"input{suffix}"
        path.write_bytes(content)
        try:
            tx = load_transactions(
                [str(path)],
                InputSettings(encoding=encoding, decimal_comma=decimal_comma),
                keep_rejects=keep_rejects,
            )
        except ClvError as exc:
            assert str(exc).strip()
            return
    assert tx.audit.reconciles()
    assert tx.frame.height == tx.audit.rows_used
