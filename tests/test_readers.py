"""End-to-end tests of clvtool.io.transactions.load_transactions on small files written into tmp_path.

Every load goes through `load()`, which also checks the audit identity
rows_read == rows_used + sum(excluded) and that the used frame has exactly rows_used rows.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import os
import sys
from pathlib import Path

import polars as pl
import pytest

from clvtool.config import InputSettings
from clvtool.errors import ClvError, InputError
from clvtool.io.audit import rejects_for_output
from clvtool.io.schema import LINE, REASON, SOURCE, Reason
from clvtool.io.transactions import FILE, Transactions, load_transactions

D = dt.date
HEADER = "customer_id,date,amount"


def write(directory: Path, name: str, content: str | bytes) -> str:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return str(path)


def load(
    paths: list[str] | str,
    settings: InputSettings | None = None,
    *,
    as_of: dt.date | None = None,
    keep_rejects: bool = False,
) -> Transactions:
    if isinstance(paths, str):
        paths = [paths]
    tx = load_transactions(paths, settings or InputSettings(), as_of=as_of, keep_rejects=keep_rejects)
    audit = tx.audit
    assert audit.rows_read == audit.rows_used + sum(audit.excluded.values())
    assert audit.reconciles()
    assert tx.frame.height == audit.rows_used
    assert all(n > 0 for n in audit.excluded.values())
    assert set(audit.excluded) <= set(Reason.ALL)
    if keep_rejects:
        assert audit.rejects is not None
        assert audit.rejects.height == audit.rows_excluded
    return tx


def rejects(tx: Transactions) -> list[tuple[str, int, str]]:
    """(file name, line, reason) of every excluded row, in file and line order."""
    assert tx.audit.rejects is not None
    frame = tx.audit.rejects.sort(SOURCE, LINE)
    return [(Path(s).name, n, r) for s, n, r in frame.select(SOURCE, LINE, REASON).iter_rows()]


class FakeStdin:
    """Stands in for sys.stdin: only .buffer is used by the reader."""

    def __init__(self, data: bytes) -> None:
        self.buffer = io.BytesIO(data)


SIMPLE = f"{HEADER}\nc1,2024-01-02,10.00\nc2,2024-01-03,5.50\n"


def assert_simple(tx: Transactions) -> None:
    frame = tx.frame.sort(LINE)
    assert frame["customer_id"].to_list() == ["c1", "c2"]
    assert frame["date"].to_list() == [D(2024, 1, 2), D(2024, 1, 3)]
    assert frame["amount"].to_list() == [10.0, 5.5]
    assert tx.audit.rows_read == 2
    assert tx.audit.excluded == {}


# --- formats --------------------------------------------------------------------------------


def test_csv(tmp_path):
    path = write(tmp_path, "t.csv", SIMPLE)
    tx = load(path)
    assert_simple(tx)
    assert tx.frame.schema["customer_id"] == pl.String
    assert tx.frame.schema["date"] == pl.Date
    assert tx.frame.schema["amount"] == pl.Float64
    assert tx.frame.sort(LINE)[LINE].to_list() == [2, 3]
    (fa,) = tx.audit.files
    assert (fa.name, fa.kind, fa.delimiter, fa.rows) == (path, "csv", ",", 2)
    assert fa.mapping == {"customer_id": "customer_id", "date": "date", "amount": "amount"}
    assert tx.audit.first_date == D(2024, 1, 2)
    assert tx.audit.last_date == D(2024, 1, 3)
    assert tx.as_of == D(2024, 1, 3)  # the last usable date when --as-of is not given


def test_tsv_by_extension(tmp_path):
    # The header alone would be sniffed as comma-separated (5 comma fields against 4 tab fields).
    text = "customer_id\tdate\tamount\tnote,a,b,c,d\nc1\t2024-01-02\t10.00\tx\nc2\t2024-01-03\t5.50\ty\n"
    tx = load(write(tmp_path, "t.tsv", text))
    assert tx.audit.files[0].delimiter == "\t"
    assert_simple(tx)


def test_same_header_with_csv_extension_is_sniffed_as_comma_and_fails_to_map(tmp_path):
    text = "customer_id\tdate\tamount\tnote,a,b,c,d\nc1\t2024-01-02\t10.00\tx\n"
    path = write(tmp_path, "t.csv", text)
    with pytest.raises(InputError) as info:
        load(path)
    assert path in str(info.value)
    # An explicit delimiter setting wins over sniffing.
    tx = load(path, InputSettings(delimiter="tab"))
    assert tx.audit.rows_used == 1


def test_tsv_sniffed_without_extension(tmp_path):
    text = "customer_id\tdate\tamount\nc1\t2024-01-02\t10.00\nc2\t2024-01-03\t5.50\n"
    tx = load(write(tmp_path, "export.txt", text))
    assert tx.audit.files[0].delimiter == "\t"
    assert_simple(tx)


def test_semicolon_csv_sniffed(tmp_path):
    text = "customer_id;date;amount\nc1;2024-01-02;10.00\nc2;2024-01-03;5.50\n"
    tx = load(write(tmp_path, "t.csv", text))
    assert tx.audit.files[0].delimiter == ";"
    assert_simple(tx)


def test_semicolon_csv_with_decimal_comma(tmp_path):
    text = "customer_id;date;amount\nc1;2024-01-02;1.234,50\nc2;2024-01-03;5,50\n"
    path = write(tmp_path, "t.csv", text)
    tx = load(path, InputSettings(decimal_comma=True))
    assert tx.frame.sort(LINE)["amount"].to_list() == [1234.5, 5.5]
    # Without decimal_comma both amounts are ambiguous and excluded, not guessed.
    tx = load(path)
    assert tx.audit.excluded == {Reason.BAD_AMOUNT: 2}


def test_pipe_delimited_sniffed(tmp_path):
    text = "customer_id|date|amount\nc1|2024-01-02|10.00\nc2|2024-01-03|5.50\n"
    tx = load(write(tmp_path, "t.csv", text))
    assert tx.audit.files[0].delimiter == "|"
    assert_simple(tx)


def test_gzip_csv(tmp_path):
    tx = load(write(tmp_path, "t.csv.gz", gzip.compress(SIMPLE.encode())))
    assert_simple(tx)


def test_gzip_tsv_by_extension(tmp_path):
    text = "customer_id\tdate\tamount\nc1\t2024-01-02\t10.00\nc2\t2024-01-03\t5.50\n"
    tx = load(write(tmp_path, "t.tsv.gz", gzip.compress(text.encode())))
    assert tx.audit.files[0].delimiter == "\t"
    assert_simple(tx)


def test_gzip_with_unhelpful_name_is_detected_by_magic_bytes(tmp_path):
    tx = load(write(tmp_path, "download", gzip.compress(SIMPLE.encode())))
    assert_simple(tx)


def test_parquet(tmp_path):
    path = tmp_path / "t.parquet"
    pl.DataFrame(
        {
            "customer_id": ["00123", "c2"],
            "date": [D(2024, 1, 2), D(2024, 1, 3)],
            "amount": [10.0, 5.5],
            "order_id": ["007", "008"],
        }
    ).write_parquet(path)
    tx = load(str(path))
    frame = tx.frame.sort(LINE)
    assert frame["customer_id"].to_list() == ["00123", "c2"]
    assert frame["date"].to_list() == [D(2024, 1, 2), D(2024, 1, 3)]
    assert frame["amount"].to_list() == [10.0, 5.5]
    assert frame["order_id"].to_list() == ["007", "008"]
    assert tx.audit.files[0].kind == "parquet"
    assert tx.audit.rows_read == 2


def test_parquet_typed_columns(tmp_path):
    """Numeric ids become text, integer amounts money, zoned datetimes the day in the configured zone."""
    path = tmp_path / "t.parquet"
    pl.DataFrame(
        {
            "customer_id": [123, 7],
            "created_at": [dt.datetime(2024, 1, 2, 23, 30), dt.datetime(2024, 1, 2, 10, 0)],
            "total": [10, -3],
        }
    ).with_columns(pl.col("created_at").dt.replace_time_zone("UTC")).write_parquet(path)
    tx = load(str(path), InputSettings(timezone="Europe/Berlin"))
    frame = tx.frame.sort(LINE)
    assert frame["customer_id"].to_list() == ["123", "7"]
    assert frame["date"].to_list() == [D(2024, 1, 3), D(2024, 1, 2)]
    assert frame["amount"].to_list() == [10.0, -3.0]


def test_parquet_with_a_parquet_looking_name_but_csv_content_is_read_as_csv(tmp_path):
    tx = load(write(tmp_path, "t.parquet", SIMPLE))
    assert_simple(tx)


def test_utf8_with_bom(tmp_path):
    tx = load(write(tmp_path, "t.csv", b"\xef\xbb\xbf" + SIMPLE.encode()))
    assert tx.audit.files[0].mapping["customer_id"] == "customer_id"  # not '\ufeffcustomer_id'
    assert_simple(tx)


def test_crlf_line_ends(tmp_path):
    text = "customer_id,date,amount,status\r\nc1,2024-01-02,10.00,paid\r\nc2,2024-01-03,5.50,paid\r\n"
    tx = load(write(tmp_path, "t.csv", text.encode()))
    assert_simple(tx)
    assert tx.frame["status"].to_list() == ["paid", "paid"]  # no stray '\r' in the last column


def test_crlf_with_bom_and_blank_line(tmp_path):
    text = "customer_id,date,amount\r\nc1,2024-01-02,10.00\r\n\r\nc2,2024-01-03,5.50\r\n"
    tx = load(write(tmp_path, "t.csv", b"\xef\xbb\xbf" + text.encode()), keep_rejects=True)
    assert tx.audit.excluded == {Reason.EMPTY: 1}
    assert rejects(tx) == [("t.csv", 3, Reason.EMPTY)]
    assert tx.frame.sort(LINE)[LINE].to_list() == [2, 4]


def test_utf8_multibyte_character_across_the_sniffing_window(tmp_path):
    """The reader decodes the first 64 KiB to find the header; a character cut there is not an error."""
    from clvtool.io.sources import HEAD_BYTES

    body = b"customer_id,date,amount,channel\n"
    i = 0
    while len(body) + 60 < HEAD_BYTES:
        body += f"c{i},2024-01-02,10,x\n".encode()
        i += 1
    prefix = b"z,2024-01-03,7,"
    pad = HEAD_BYTES - 1 - len(body) - len(prefix)
    body += prefix + b"y" * pad + "é".encode() + b"\n"
    assert body[HEAD_BYTES - 1 : HEAD_BYTES + 1] == "é".encode()
    tx = load(write(tmp_path, "t.csv", body))
    assert tx.audit.rows_read == i + 1
    last = tx.frame.filter(pl.col("customer_id") == "z")
    assert last["channel"].to_list() == ["y" * pad + "é"]


LATIN1 = "customer_id,date,amount,channel\nJosé,2024-01-02,10.00,Café\nc2,2024-01-03,5.50,Señal\n"


def test_latin1_with_encoding_setting(tmp_path):
    path = write(tmp_path, "t.csv", LATIN1.encode("latin-1"))
    tx = load(path, InputSettings(encoding="latin-1"))
    frame = tx.frame.sort(LINE)
    assert frame["customer_id"].to_list() == ["José", "c2"]
    assert frame["channel"].to_list() == ["Café", "Señal"]


def test_latin1_without_encoding_setting_is_an_input_error(tmp_path):
    path = write(tmp_path, "t.csv", LATIN1.encode("latin-1"))
    with pytest.raises(InputError) as info:
        load(path)
    message = str(info.value)
    assert path in message
    assert "encoding" in message
    assert "latin-1" in message


def test_latin1_byte_after_the_sniffing_window_is_an_input_error(tmp_path):
    body = "customer_id,date,amount,channel\n" + "c1,2024-01-02,10,plain\n" * 4000 + "c2,2024-01-02,10,Café\n"
    path = write(tmp_path, "t.csv", body.encode("latin-1"))
    assert os.path.getsize(path) > 65536
    with pytest.raises(InputError) as info:
        load(path)
    assert path in str(info.value)
    assert "encoding" in str(info.value)
    tx = load(path, InputSettings(encoding="latin-1"))
    assert tx.audit.rows_read == 4001
    assert tx.frame.filter(pl.col("customer_id") == "c2")["channel"].to_list() == ["Café"]


def test_unknown_encoding_is_an_input_error(tmp_path):
    path = write(tmp_path, "t.csv", SIMPLE)
    with pytest.raises(InputError) as info:
        load(path, InputSettings(encoding="klingon"))
    assert "klingon" in str(info.value)


# --- several files, globs, stdin ------------------------------------------------------------


def source_names(tx, frame):
    """The file each used row came from (the frame carries the file's index in tx.audit.files)."""
    return [tx.audit.files[i].name for i in frame[FILE].to_list()]


def test_several_files(tmp_path):
    a = write(tmp_path, "a.csv", f"{HEADER}\nc1,2024-01-02,10\nc2,2024-01-03,5\n")
    b = write(tmp_path, "b.csv", "amount;customer_id;date\n7;c3;2024-02-01\n")
    tx = load([a, b], keep_rejects=True)
    frame = tx.frame.sort("_seq")
    assert frame["customer_id"].to_list() == ["c1", "c2", "c3"]
    assert frame["amount"].to_list() == [10.0, 5.0, 7.0]
    assert source_names(tx, frame) == [a, a, b]
    assert frame[LINE].to_list() == [2, 3, 2]  # line numbers restart in every file
    assert [(f.name, f.delimiter, f.rows) for f in tx.audit.files] == [(a, ",", 2), (b, ";", 1)]
    assert tx.audit.rows_read == 3


def test_glob_is_expanded_in_sorted_order(tmp_path):
    write(tmp_path, "in/2024-02.csv", f"{HEADER}\nc3,2024-02-01,7\n")
    write(tmp_path, "in/2024-01.csv", f"{HEADER}\nc1,2024-01-02,10\nc2,2024-01-03,5\n")
    write(tmp_path, "in/notes.txt", "not a transactions file\n")
    tx = load(str(tmp_path / "in" / "*.csv"))
    names = [Path(f.name).name for f in tx.audit.files]
    assert names == ["2024-01.csv", "2024-02.csv"]
    assert [f.rows for f in tx.audit.files] == [2, 1]
    assert tx.frame.sort("_seq")["customer_id"].to_list() == ["c1", "c2", "c3"]


def test_glob_without_matches_is_an_input_error(tmp_path):
    pattern = str(tmp_path / "*.csv")
    with pytest.raises(InputError) as info:
        load(pattern)
    assert pattern in str(info.value)


def test_stdin(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "stdin", FakeStdin(SIMPLE.encode()))
    tx = load("-")
    assert_simple(tx)
    assert tx.audit.files[0].name == "<stdin>"
    assert set(source_names(tx, tx.frame)) == {"<stdin>"}


def test_stdin_gzip_latin1_semicolon(monkeypatch):
    text = "customer_id;date;amount\nJosé;2024-01-02;1.234,50\n"
    monkeypatch.setattr(sys, "stdin", FakeStdin(gzip.compress(text.encode("latin-1"))))
    tx = load("-", InputSettings(encoding="latin-1", decimal_comma=True))
    assert tx.frame["customer_id"].to_list() == ["José"]
    assert tx.frame["amount"].to_list() == [1234.5]


def test_stdin_together_with_a_file(tmp_path, monkeypatch):
    a = write(tmp_path, "a.csv", f"{HEADER}\nc1,2024-01-02,10\n")
    monkeypatch.setattr(sys, "stdin", FakeStdin(f"{HEADER}\nc2,2024-01-03,5\n".encode()))
    tx = load([a, "-"])
    assert source_names(tx, tx.frame.sort("_seq")) == [a, "<stdin>"]


def test_empty_stdin_is_an_input_error(monkeypatch):
    monkeypatch.setattr(sys, "stdin", FakeStdin(b""))
    with pytest.raises(InputError) as info:
        load("-")
    assert "<stdin>" in str(info.value)


def test_stdin_twice_is_refused(monkeypatch):
    monkeypatch.setattr(sys, "stdin", FakeStdin(SIMPLE.encode()))
    with pytest.raises(ClvError, match="stdin"):
        load(["-", "-"])


# --- column mapping -------------------------------------------------------------------------


def test_mapping_from_settings_columns(tmp_path):
    text = "buyer,when,paid,ref\nu1,02/01/2024,10.00,A-1\nu2,31/01/2024,5.50,A-2\n"
    settings = InputSettings(
        columns={"customer_id": "buyer", "date": "when", "amount": "paid", "order_id": "ref"},
        date_format="%d/%m/%Y",
    )
    tx = load(write(tmp_path, "t.csv", text), settings)
    assert tx.audit.files[0].mapping == {
        "customer_id": "buyer",
        "date": "when",
        "amount": "paid",
        "order_id": "ref",
    }
    frame = tx.frame.sort(LINE)
    assert frame["customer_id"].to_list() == ["u1", "u2"]
    assert frame["date"].to_list() == [D(2024, 1, 2), D(2024, 1, 31)]
    assert frame["order_id"].to_list() == ["A-1", "A-2"]


def test_settings_columns_win_over_aliases(tmp_path):
    # Both 'date' and 'paid_at' are date aliases; the configured one is used.
    text = "customer_id,date,paid_at,amount\nc1,2024-01-01,2024-01-05,10\n"
    tx = load(write(tmp_path, "t.csv", text), InputSettings(columns={"date": "paid_at"}))
    assert tx.audit.files[0].mapping["date"] == "paid_at"
    assert tx.frame["date"].to_list() == [D(2024, 1, 5)]


def test_settings_columns_naming_a_missing_column(tmp_path):
    path = write(tmp_path, "t.csv", SIMPLE)
    with pytest.raises(InputError) as info:
        load(path, InputSettings(columns={"amount": "revenue_eur"}))
    message = str(info.value)
    assert path in message
    assert "revenue_eur" in message
    assert "transactions.columns.amount" in message


def test_settings_columns_with_an_unknown_field(tmp_path):
    path = write(tmp_path, "t.csv", SIMPLE)
    with pytest.raises(InputError) as info:
        load(path, InputSettings(columns={"custid": "customer_id"}))
    assert "custid" in str(info.value)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("order_date,total,customer", {"date": "order_date", "amount": "total", "customer_id": "customer"}),
        ("created_at,revenue,user_id", {"date": "created_at", "amount": "revenue", "customer_id": "user_id"}),
        ("timestamp,value,customer", {"date": "timestamp", "amount": "value", "customer_id": "customer"}),
        (
            "Created At,Order Total,User ID",
            {"date": "Created At", "amount": "Order Total", "customer_id": "User ID"},
        ),
        (
            "ORDER_DATE,REVENUE,CUSTOMER",
            {"date": "ORDER_DATE", "amount": "REVENUE", "customer_id": "CUSTOMER"},
        ),
    ],
)
def test_header_aliases(tmp_path, header, expected):
    values = {"date": "2024-01-02", "amount": "10.00", "customer_id": " u1 "}
    names = header.split(",")
    by_column = {col: field for field, col in expected.items()}
    row = ",".join(values[by_column[n]] for n in names)
    tx = load(write(tmp_path, "t.csv", f"{header}\n{row}\n"))
    mapping = tx.audit.files[0].mapping
    assert {k: mapping[k] for k in expected} == expected
    assert tx.frame["customer_id"].to_list() == ["u1"]  # trimmed
    assert tx.frame["date"].to_list() == [D(2024, 1, 2)]
    assert tx.frame["amount"].to_list() == [10.0]


def test_optional_fields_by_alias(tmp_path):
    text = (
        "customer_id,date,amount,Order Number,utm_source,cogs,financial_status,currency_code\n"
        "c1,2024-01-02,10,1001, Google ,4.00,Paid,usd\n"
    )
    tx = load(write(tmp_path, "t.csv", text))
    row = tx.frame.row(0, named=True)
    assert row["order_id"] == "1001"
    assert row["channel"] == "Google"
    assert row["cost"] == 4.0
    assert row["status"] == "paid"
    assert row["currency"] == "USD"
    assert tx.present >= {
        "customer_id",
        "date",
        "amount",
        "order_id",
        "channel",
        "cost",
        "status",
        "currency",
    }


# --- identity and text columns --------------------------------------------------------------


def test_email_identity_when_the_id_is_missing(tmp_path):
    text = (
        "customer_id,email,date,amount\n"
        "c1,one@example.com,2024-01-02,10\n"
        ",  Foo.Bar@Example.COM ,2024-01-03,5\n"
        "   ,x@Y.org,2024-01-04,6\n"
        ",,2024-01-05,7\n"
    )
    tx = load(write(tmp_path, "t.csv", text))
    assert tx.frame.sort(LINE)["customer_id"].to_list() == ["c1", "foo.bar@example.com", "x@y.org"]
    assert tx.audit.excluded == {Reason.MISSING_IDENTITY: 1}


def test_email_only_file(tmp_path):
    text = "Email,date,amount\n  A@B.com ,2024-01-02,10\n,2024-01-03,5\n"
    tx = load(write(tmp_path, "t.csv", text))
    assert tx.frame["customer_id"].to_list() == ["a@b.com"]
    assert tx.audit.excluded == {Reason.MISSING_IDENTITY: 1}
    assert "customer_id" in tx.present


def test_ids_stay_text(tmp_path):
    text = (
        "customer_id,date,amount,order_id\n"
        "00123,2024-01-02,10,007\n"
        "123,2024-01-03,5,7\n"
        "1e3,2024-01-04,5,0x1F\n"
        "00123,2024-01-05,8,007\n"
    )
    tx = load(write(tmp_path, "t.csv", text))
    frame = tx.frame.sort(LINE)
    assert frame.schema["customer_id"] == pl.String
    assert frame.schema["order_id"] == pl.String
    assert frame["customer_id"].to_list() == ["00123", "123", "1e3", "00123"]
    assert frame["order_id"].to_list() == ["007", "7", "0x1F", "007"]


# --- status and currency --------------------------------------------------------------------


def test_default_excluded_statuses_case_insensitive(tmp_path):
    statuses = ["paid", "Test", "CANCELLED", "canceled", " Voided ", "failed", "Pending", "refunded", ""]
    rows = "".join(f"c{i},2024-01-02,10,{s}\n" for i, s in enumerate(statuses))
    tx = load(write(tmp_path, "t.csv", f"customer_id,date,amount,status\n{rows}"))
    assert tx.audit.excluded == {Reason.EXCLUDED_STATUS: 6}
    assert sorted(tx.frame["customer_id"].to_list()) == ["c0", "c7", "c8"]
    assert tx.frame.sort(LINE)["status"].to_list() == ["paid", "refunded", None]


def test_configured_excluded_statuses_replace_the_default(tmp_path):
    text = "customer_id,date,amount,status\nc1,2024-01-02,10,Refunded\nc2,2024-01-02,10,test\n"
    tx = load(write(tmp_path, "t.csv", text), InputSettings(exclude_statuses=("refunded",)))
    assert tx.audit.excluded == {Reason.EXCLUDED_STATUS: 1}
    assert tx.frame["customer_id"].to_list() == ["c2"]


def test_mixed_currencies_are_an_input_error_naming_both(tmp_path):
    text = (
        "customer_id,date,amount,currency\nc1,2024-01-02,10,usd\nc2,2024-01-03,5,EUR\nc3,2024-01-04,5,USD\n"
    )
    path = write(tmp_path, "t.csv", text)
    with pytest.raises(InputError) as info:
        load(path)
    message = str(info.value)
    assert "USD" in message
    assert "EUR" in message


def test_mixed_currency_error_names_the_file(tmp_path):
    """ClvError contract (errors.py, PRODUCT §6): the message names the file."""
    text = "customer_id,date,amount,currency\nc1,2024-01-02,10,USD\nc2,2024-01-03,5,EUR\n"
    path = write(tmp_path, "t.csv", text)
    with pytest.raises(InputError) as info:
        load(path)
    assert path in str(info.value)


def test_mixed_currencies_across_two_files(tmp_path):
    a = write(tmp_path, "a.csv", "customer_id,date,amount,currency\nc1,2024-01-02,10,GBP\n")
    b = write(tmp_path, "b.csv", "customer_id,date,amount,currency\nc2,2024-01-02,10,CHF\n")
    with pytest.raises(InputError) as info:
        load([a, b])
    assert "GBP" in str(info.value)
    assert "CHF" in str(info.value)


def test_single_currency_is_fine(tmp_path):
    text = "customer_id,date,amount,currency\nc1,2024-01-02,10,usd\nc2,2024-01-03,5, USD \nc3,2024-01-04,5,\n"
    tx = load(write(tmp_path, "t.csv", text))
    assert tx.frame.sort(LINE)["currency"].to_list() == ["USD", "USD", None]


def test_currency_of_excluded_rows_does_not_count(tmp_path):
    text = (
        "customer_id,date,amount,currency,status\n"
        "c1,2024-01-02,10,USD,paid\n"
        "c2,2024-01-02,10,EUR,cancelled\n"
        "c3,2024-01-02,abc,EUR,paid\n"
    )
    tx = load(write(tmp_path, "t.csv", text))
    assert tx.frame["currency"].to_list() == ["USD"]
    assert tx.audit.excluded == {Reason.EXCLUDED_STATUS: 1, Reason.BAD_AMOUNT: 1}


# --- the audit: every bucket ----------------------------------------------------------------

BUCKETS = (
    "customer_id,email,date,amount,status\n"  # line 1
    "c1,,2024-01-02,10.00,paid\n"  # 2  used
    "\n"  # 3  empty_row (blank line)
    "c2,,2024-01-03,5.00,paid,EXTRA\n"  # 4  ragged_row
    ",,2024-01-03,5.00,paid\n"  # 5  missing_identity
    ",  Foo@Example.COM ,2024-01-04,7.00,paid\n"  # 6  used (email identity)
    "c3,,2024-02-30,5.00,paid\n"  # 7  unparseable_date
    "c4,,2024-01-05,abc,paid\n"  # 8  unparseable_amount
    "c5,,2024-01-05,5.00,Cancelled\n"  # 9  excluded_status
    "c6,,2024-01-05,5.00,TEST\n"  # 10 excluded_status
    "c1,,2024-01-02,10.00,paid\n"  # 11 duplicate_row (copy of line 2)
    "c7,,2024-03-01,5.00,paid\n"  # 12 after_as_of (2024-02-01)
    "c8,,2024-01-31,1.00,\n"  # 13 used
    ",,,,\n"  # 14 empty_row (every field empty)
    "c9,,,3.00,paid\n"  # 15 unparseable_date (empty)
    "c10,,2024-01-06,,paid\n"  # 16 unparseable_amount (empty)
)
BUCKET_COUNTS = {
    Reason.EMPTY: 2,
    Reason.RAGGED: 1,
    Reason.MISSING_IDENTITY: 1,
    Reason.BAD_DATE: 2,
    Reason.BAD_AMOUNT: 2,
    Reason.EXCLUDED_STATUS: 2,
    Reason.DUPLICATE: 1,
    Reason.AFTER_AS_OF: 1,
}
BUCKET_REJECTS = [
    (3, Reason.EMPTY),
    (4, Reason.RAGGED),
    (5, Reason.MISSING_IDENTITY),
    (7, Reason.BAD_DATE),
    (8, Reason.BAD_AMOUNT),
    (9, Reason.EXCLUDED_STATUS),
    (10, Reason.EXCLUDED_STATUS),
    (11, Reason.DUPLICATE),
    (12, Reason.AFTER_AS_OF),
    (14, Reason.EMPTY),
    (15, Reason.BAD_DATE),
    (16, Reason.BAD_AMOUNT),
]


def test_every_bucket_with_exact_counts(tmp_path):
    path = write(tmp_path, "orders.csv", BUCKETS)
    tx = load(path, as_of=D(2024, 2, 1), keep_rejects=True)
    audit = tx.audit
    assert audit.excluded == BUCKET_COUNTS
    assert list(audit.excluded) == [r for r in Reason.ALL if r in BUCKET_COUNTS]  # fixed order
    assert audit.rows_read == 15
    assert audit.rows_used == 3
    assert audit.rows_excluded == 12
    assert audit.as_of == D(2024, 2, 1)
    assert audit.first_date == D(2024, 1, 2)
    assert audit.last_date == D(2024, 1, 31)
    frame = tx.frame.sort(LINE)
    assert frame["customer_id"].to_list() == ["c1", "foo@example.com", "c8"]
    assert frame[LINE].to_list() == [2, 6, 13]
    assert rejects(tx) == [("orders.csv", line, reason) for line, reason in BUCKET_REJECTS]
    assert tx.audit.rejects[SOURCE].unique().to_list() == [path]


def test_rejects_keep_the_original_cells(tmp_path):
    tx = load(write(tmp_path, "orders.csv", BUCKETS), as_of=D(2024, 2, 1), keep_rejects=True)
    frame = rejects_for_output(tx.audit.rejects)
    assert {"customer_id", "email", "date", "amount", "status"} <= set(frame.columns)
    by_line = {row["line"]: row for row in frame.iter_rows(named=True)}
    assert by_line[8]["amount"] == "abc"
    assert by_line[7]["date"] == "2024-02-30"
    assert by_line[9]["status"] == "Cancelled"  # as written, not lower-cased
    assert by_line[4]["customer_id"] == "c2"


def test_buckets_without_as_of_use_the_last_usable_date(tmp_path):
    tx = load(write(tmp_path, "orders.csv", BUCKETS))
    expected = {k: v for k, v in BUCKET_COUNTS.items() if k != Reason.AFTER_AS_OF}
    assert tx.audit.excluded == expected
    assert tx.audit.rows_used == 4
    assert tx.as_of == D(2024, 3, 1)


def test_without_keep_rejects_there_is_no_rejects_frame(tmp_path):
    tx = load(write(tmp_path, "orders.csv", BUCKETS), as_of=D(2024, 2, 1))
    assert tx.audit.rejects is None
    assert tx.audit.excluded == BUCKET_COUNTS


def test_first_matching_reason_wins(tmp_path):
    text = (
        "customer_id,date,amount,status\n"
        ",2024-02-30,abc,test\n"  # missing id before bad date, amount and status
        "c1,2024-02-30,abc,test\n"  # bad date before bad amount and status
        "c2,2024-01-02,abc,test\n"  # bad amount before status
        "c3,2024-01-02,5,test\n"  # status
        "c3,2024-01-02,5,test\n"  # an exact copy of an excluded row keeps the earlier reason
        "c4,2024-05-01,5,test\n"  # status before after_as_of
    )
    tx = load(write(tmp_path, "t.csv", text), as_of=D(2024, 3, 1), keep_rejects=True)
    assert [(line, reason) for _, line, reason in rejects(tx)] == [
        (2, Reason.MISSING_IDENTITY),
        (3, Reason.BAD_DATE),
        (4, Reason.BAD_AMOUNT),
        (5, Reason.EXCLUDED_STATUS),
        (6, Reason.EXCLUDED_STATUS),
        (7, Reason.EXCLUDED_STATUS),
    ]
    assert tx.audit.rows_used == 0


def test_rows_with_fewer_fields_are_audited_on_their_content(tmp_path):
    text = "customer_id,date,amount,status\nc1,2024-01-02,10\nc2,2024-01-03\nc3\n"
    tx = load(write(tmp_path, "t.csv", text), keep_rejects=True)
    assert tx.frame["customer_id"].to_list() == ["c1"]
    assert rejects(tx) == [("t.csv", 3, Reason.BAD_AMOUNT), ("t.csv", 4, Reason.BAD_DATE)]


def test_whitespace_only_line_is_an_empty_row(tmp_path):
    """Reason.HELP: 'blank line: every field empty'; a line of spaces is blank, not a missing id."""
    text = f"{HEADER}\nc1,2024-01-02,10\n   \n\t\nc2,2024-01-03,5\n"
    tx = load(write(tmp_path, "t.csv", text), keep_rejects=True)
    assert tx.audit.excluded == {Reason.EMPTY: 2}
    assert rejects(tx) == [("t.csv", 3, Reason.EMPTY), ("t.csv", 4, Reason.EMPTY)]


def test_trailing_blank_lines_are_counted(tmp_path):
    tx = load(write(tmp_path, "t.csv", f"{HEADER}\nc1,2024-01-02,10\n\n\n"), keep_rejects=True)
    assert tx.audit.rows_read == 3
    assert rejects(tx) == [("t.csv", 3, Reason.EMPTY), ("t.csv", 4, Reason.EMPTY)]


def test_implausible_years_are_unparseable_dates(tmp_path):
    text = f"{HEADER}\nc1,1899-12-31,1\nc2,2200-01-01,2\nc3,1970-01-01,3\nc4,00010101,4\n"
    tx = load(write(tmp_path, "t.csv", text))
    assert tx.audit.excluded == {Reason.BAD_DATE: 3}
    assert tx.frame["date"].to_list() == [D(1970, 1, 1)]


def test_non_finite_amounts_are_unparseable(tmp_path):
    text = f"{HEADER}\nc1,2024-01-02,NaN\nc2,2024-01-02,inf\nc3,2024-01-02,{'9' * 400}\nc4,2024-01-02,1\n"
    tx = load(write(tmp_path, "t.csv", text))
    assert tx.audit.excluded == {Reason.BAD_AMOUNT: 3}


def test_timezone_setting_moves_rows_to_the_local_day(tmp_path):
    text = f"{HEADER}\nc1,2024-01-02T23:30:00Z,1\nc2,2024-01-02T01:00:00Z,2\nc3,2024-01-02 23:30,3\n"
    path = write(tmp_path, "t.csv", text)
    berlin = load(path, InputSettings(timezone="Europe/Berlin")).frame.sort(LINE)["date"].to_list()
    new_york = load(path, InputSettings(timezone="America/New_York")).frame.sort(LINE)["date"].to_list()
    assert berlin == [D(2024, 1, 3), D(2024, 1, 2), D(2024, 1, 2)]
    assert new_york == [D(2024, 1, 2), D(2024, 1, 1), D(2024, 1, 2)]


def test_line_numbers_count_physical_lines_after_a_quoted_newline(tmp_path):
    """LINE is 'the 1-based line of the row in its file': a note spanning two lines shifts what follows."""
    text = 'customer_id,date,amount,note\nc1,2024-01-02,10,"two\nlines"\nc2,2024-01-03,abc,x\n'
    tx = load(write(tmp_path, "t.csv", text), keep_rejects=True)
    assert tx.frame["customer_id"].to_list() == ["c1"]
    assert rejects(tx) == [("t.csv", 4, Reason.BAD_AMOUNT)]


# --- duplicates -----------------------------------------------------------------------------


def test_duplicate_rows_within_a_file(tmp_path):
    text = (
        f"{HEADER}\n"
        "c1,2024-01-02,10\n"
        "c1,2024-01-02,10\n"  # exact copy
        "c1,2024-01-02,10.00\n"  # same value, different text: not an exact copy
        "c1,2024-01-02,10\n"  # exact copy again
    )
    tx = load(write(tmp_path, "t.csv", text), keep_rejects=True)
    assert tx.audit.excluded == {Reason.DUPLICATE: 2}
    assert rejects(tx) == [("t.csv", 3, Reason.DUPLICATE), ("t.csv", 5, Reason.DUPLICATE)]
    assert tx.frame.sort(LINE)[LINE].to_list() == [2, 4]


def test_duplicate_rows_across_two_files(tmp_path):
    """README: duplicate_row is 'an exact copy of an earlier row, also across files' (overlapping exports)."""
    jan = write(tmp_path, "jan.csv", f"{HEADER}\nc1,2024-01-02,10\nc2,2024-01-30,5\n")
    feb = write(tmp_path, "feb.csv", f"{HEADER}\nc2,2024-01-30,5\nc3,2024-02-03,7\n")
    tx = load([jan, feb], keep_rejects=True)
    assert tx.audit.excluded == {Reason.DUPLICATE: 1}
    assert rejects(tx) == [("feb.csv", 2, Reason.DUPLICATE)]
    assert sorted(tx.frame["customer_id"].to_list()) == ["c1", "c2", "c3"]


def test_same_file_given_twice(tmp_path):
    path = write(tmp_path, "t.csv", SIMPLE)
    tx = load([path, path])
    assert tx.audit.rows_read == 4
    assert tx.audit.excluded == {Reason.DUPLICATE: 2}
    assert sum(f.rows for f in tx.audit.files) == tx.audit.rows_read


# --- fatal input errors ---------------------------------------------------------------------


def test_empty_file(tmp_path):
    path = write(tmp_path, "empty.csv", b"")
    with pytest.raises(InputError) as info:
        load(path)
    assert path in str(info.value)
    assert "empty" in str(info.value)


def test_empty_gzip_file(tmp_path):
    path = write(tmp_path, "empty.csv.gz", gzip.compress(b""))
    with pytest.raises(InputError) as info:
        load(path)
    assert path in str(info.value)


def test_broken_gzip_file(tmp_path):
    path = write(tmp_path, "broken.csv.gz", gzip.compress(SIMPLE.encode())[:-6])
    with pytest.raises(InputError) as info:
        load(path)
    assert path in str(info.value)


def test_random_binary_bytes(tmp_path):
    path = write(tmp_path, "binary.csv", os.urandom(500) + b"\x00" + os.urandom(500))
    with pytest.raises(InputError) as info:
        load(path)
    assert path in str(info.value)


def test_broken_parquet(tmp_path):
    path = write(tmp_path, "broken.parquet", b"PAR1" + b"not really parquet" * 10)
    with pytest.raises(InputError) as info:
        load(path)
    assert path in str(info.value)


def test_utf16_file(tmp_path):
    path = write(tmp_path, "utf16.csv", SIMPLE.encode("utf-16"))
    with pytest.raises(InputError) as info:
        load(path)
    assert path in str(info.value)


@pytest.mark.parametrize(
    ("header", "missing"),
    [
        ("customer_id,date", "amount"),
        ("customer_id,amount", "date"),
        ("date,amount", "customer_id"),
        ("when,how_much,who", "customer_id"),
    ],
)
def test_missing_required_column(tmp_path, header, missing):
    path = write(tmp_path, "t.csv", f"{header}\n{','.join(['x'] * len(header.split(',')))}\n")
    with pytest.raises(InputError) as info:
        load(path)
    message = str(info.value)
    assert path in message
    assert f"'{missing}'" in message
    assert f"transactions.columns.{missing}" in message  # ends with the fix


def test_missing_column_in_the_second_file_names_that_file(tmp_path):
    a = write(tmp_path, "a.csv", SIMPLE)
    b = write(tmp_path, "b.csv", "customer_id,date\nc1,2024-01-02\n")
    with pytest.raises(InputError) as info:
        load([a, b])
    assert b in str(info.value)
    assert a not in str(info.value).replace(b, "")


def test_nonexistent_file(tmp_path):
    path = str(tmp_path / "nope.csv")
    with pytest.raises(InputError) as info:
        load(path)
    assert path in str(info.value)
    assert "not found" in str(info.value)


def test_directory(tmp_path):
    path = str(tmp_path / "exports")
    os.mkdir(path)
    with pytest.raises(InputError) as info:
        load(path)
    assert path in str(info.value)
    assert "directory" in str(info.value)


@pytest.mark.parametrize("content", ["\n", "\r\n", "\ufeff", "   \nc1,2024-01-02,1\n"])
def test_file_without_a_header_line(tmp_path, content):
    path = write(tmp_path, "t.csv", content)
    with pytest.raises(InputError) as info:
        load(path)
    assert path in str(info.value)


def test_unterminated_quote_in_a_row(tmp_path):
    path = write(tmp_path, "t.csv", f'{HEADER}\n"c1,2024-01-02,10\n')
    with pytest.raises(InputError) as info:
        load(path)
    assert path in str(info.value)


@pytest.mark.parametrize("content", [f"{HEADER}\n", HEADER, f"{HEADER}\r\n", "\ufeff" + HEADER + "\n"])
def test_header_only_file_is_not_an_error(tmp_path, content):
    tx = load(write(tmp_path, "t.csv", content), keep_rejects=True)
    assert tx.frame.height == 0
    assert {"customer_id", "date", "amount"} <= set(tx.frame.columns)
    assert tx.frame.schema["date"] == pl.Date
    assert tx.audit.rows_read == 0
    assert tx.audit.rows_used == 0
    assert tx.audit.excluded == {}
    assert tx.audit.files[0].rows == 0
    assert tx.as_of is None


def test_header_only_file_next_to_a_real_one(tmp_path):
    a = write(tmp_path, "a.csv", HEADER + "\n")
    b = write(tmp_path, "b.csv", SIMPLE)
    tx = load([a, b])
    assert [f.rows for f in tx.audit.files] == [0, 2]
    assert_simple(tx)


def test_columns_named_like_the_bookkeeping_columns(tmp_path):
    """A file with its own '_source' / '_line' / '_reason' columns must load, with and without rejects."""
    text = "customer_id,date,amount,_source,_line,_reason\nc1,2024-01-02,10,a,b,c\nc2,2024-01-02,x,a,b,c\n"
    path = write(tmp_path, "t.csv", text)
    assert load(path).audit.rows_used == 1
    tx = load(path, keep_rejects=True)
    assert tx.audit.excluded == {Reason.BAD_AMOUNT: 1}
    assert tx.audit.rejects.height == 1
