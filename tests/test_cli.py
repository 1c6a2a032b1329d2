"""CLI tests via typer.testing.CliRunner: exit codes, formats, the stdout/stderr split (PRODUCT §2, §6).

Every test runs in its own empty working directory (conftest), so files are written with relative names.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner, Result

from clvtool import __version__
from clvtool.cli import app
from clvtool.errors import ClvError

COLUMNS = [
    "customer_id", "channel", "cohort", "first_order", "last_order", "orders", "revenue", "refunds",
    "aov", "days_since_last", "tenure_days", "frequency", "recency", "T", "status", "cac", "historic_clv",
    "net_value", "payback_days", "left_censored", "p_alive", "expected_orders", "predicted_clv",
    "total_clv", "net_clv", "rfm", "segment", "rank", "share", "cumulative_share",
    "pareto_class",
]  # fmt: skip

# c1: two orders (the first has two line items) 32.50; c2 30.00; c4 12.50; c3 5.00. Total 80.
SMALL = """\
customer_id,order_id,date,amount,channel
c1,o1,2024-01-05,10.00,google
c1,o1,2024-01-05,2.50,google
c1,o2,2024-02-10,20,email
c2,o3,2024-01-20,30,
c3,o4,2024-03-01,5,facebook
c4,o5,2024-02-01,12.5,email
"""
BY_VALUE = ["c1", "c2", "c4", "c3"]


def run(*args: str, input: str | bytes | None = None) -> Result:
    return CliRunner().invoke(app, list(args), input=input)


def write(name: str, text: str) -> str:
    Path(name).write_text(text, encoding="utf-8")
    return name


def csv_rows(text: str, delimiter: str = ",") -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text), delimiter=delimiter))


@pytest.fixture
def small() -> str:
    return write("small.csv", SMALL)


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.exit_code, result.stderr, result.exception)
    assert "Traceback" not in result.output
    return result


# ---- formats ------------------------------------------------------------------------------------


def test_csv_is_the_default_off_a_terminal(small: str) -> None:
    result = ok(run("customers", small, "--no-predict"))
    rows = csv_rows(result.stdout)
    assert result.stdout.splitlines()[0] == ",".join(COLUMNS)
    assert [r["customer_id"] for r in rows] == BY_VALUE
    c1 = rows[0]
    assert c1["orders"] == "2"
    assert c1["revenue"] == "32.50"
    assert c1["channel"] == "google"
    assert rows[1]["channel"] == "unattributed"
    # Nothing excluded: the only message is the churn thresholds in use (PRODUCT §4.3).
    assert result.stderr.startswith("clvtool: churn thresholds:") and result.stderr.count("\n") == 1


def test_csv(small: str) -> None:
    result = ok(run("customers", small, "-f", "csv"))
    rows = csv_rows(result.stdout)
    assert list(rows[0]) == COLUMNS
    assert [r["customer_id"] for r in rows] == BY_VALUE
    assert [r["rank"] for r in rows] == ["1", "2", "3", "4"]


def test_tsv(small: str) -> None:
    result = ok(run("customers", small, "-f", "tsv"))
    lines = result.stdout.splitlines()
    assert lines[0].split("\t") == COLUMNS
    assert len(lines) == 5
    rows = csv_rows(result.stdout, "\t")
    assert [r["customer_id"] for r in rows] == BY_VALUE
    assert rows[2]["revenue"] == "12.50"


def test_json_is_a_list_of_records(small: str) -> None:
    result = ok(run("customers", small, "-f", "json"))
    data = json.loads(result.stdout)
    assert isinstance(data, list)
    assert len(data) == 4
    assert all(list(rec) == COLUMNS for rec in data)
    assert [rec["customer_id"] for rec in data] == BY_VALUE
    assert data[0]["revenue"] == pytest.approx(32.5)
    assert data[0]["orders"] == 2
    assert data[0]["first_order"] == "2024-01-05"
    assert data[2]["share"] == pytest.approx(0.15625)


def test_jsonl(small: str) -> None:
    result = ok(run("customers", small, "-f", "jsonl"))
    lines = result.stdout.splitlines()
    assert len(lines) == 4
    records = [json.loads(line) for line in lines]
    assert all(isinstance(r, dict) and list(r) == COLUMNS for r in records)
    assert [r["customer_id"] for r in records] == BY_VALUE


def test_markdown(small: str) -> None:
    result = ok(run("customers", small, "-f", "markdown"))
    lines = result.stdout.splitlines()
    assert len(lines) == 2 + 4
    assert [c.strip() for c in lines[0].strip("|").split("|")] == COLUMNS
    assert set(lines[1].replace("|", "").replace(":", "")) == {"-"}
    first = [c.strip() for c in lines[2].strip("|").split("|")]
    assert first[0] == "c1"
    assert first[COLUMNS.index("revenue")] == "32.50"


def test_table_with_few_columns(small: str) -> None:
    result = ok(run("customers", small, "-f", "table", "--columns", "customer_id,revenue,share"))
    out = result.stdout
    assert "\x1b[" not in out
    for cid in BY_VALUE:
        assert cid in out
    assert "32.50" in out and "12.50" in out
    assert "37.50%" in out  # c2's share, as a percentage
    assert out.index("c1") < out.index("c2") < out.index("c4") < out.index("c3")


def test_table_of_every_column_keeps_the_customer_ids_at_80_columns(
    small: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A plain 80-column terminal (or a pipe, where Rich falls back to 80): the identity column must
    # not be squeezed out of the table.
    monkeypatch.setenv("COLUMNS", "80")
    result = ok(run("customers", small, "-f", "table"))
    for cid in BY_VALUE:
        assert cid in result.stdout, result.stdout


# ---- -o PATH ------------------------------------------------------------------------------------


def test_output_csv_by_extension(small: str) -> None:
    result = ok(run("customers", small, "-o", "out.csv"))
    assert result.stdout == ""
    df = pl.read_csv("out.csv")
    assert df.columns == COLUMNS
    assert df["customer_id"].to_list() == BY_VALUE
    assert df["revenue"].to_list() == [32.5, 30.0, 12.5, 5.0]


def test_output_json_by_extension(small: str) -> None:
    result = ok(run("customers", small, "-o", "out.json"))
    assert result.stdout == ""
    data = json.loads(Path("out.json").read_text())
    assert isinstance(data, list)
    df = pl.read_json("out.json")
    assert df["customer_id"].to_list() == BY_VALUE
    assert df["revenue"].to_list() == [32.5, 30.0, 12.5, 5.0]


def test_output_parquet_by_extension(small: str) -> None:
    result = ok(run("customers", small, "-o", "out.parquet"))
    assert result.stdout == ""
    assert Path("out.parquet").read_bytes()[:4] == b"PAR1"
    df = pl.read_parquet("out.parquet")
    assert df.columns == COLUMNS
    assert df["customer_id"].to_list() == BY_VALUE
    assert df["revenue"].to_list() == [32.5, 30.0, 12.5, 5.0]
    assert df["orders"].dtype.is_integer()
    assert df["first_order"].dtype == pl.Date


def test_explicit_format_wins_over_extension(small: str) -> None:
    ok(run("customers", small, "-o", "out.csv", "-f", "json"))
    assert isinstance(json.loads(Path("out.csv").read_text()), list)


def test_unknown_output_extension_is_a_usage_error(small: str) -> None:
    result = run("customers", small, "-o", "out.xyz")
    assert result.exit_code == 2
    assert result.stderr.startswith("clvtool: error:")
    assert "out.xyz" in result.stderr
    assert not Path("out.xyz").exists()
    assert result.stdout == ""


# ---- rows and columns ---------------------------------------------------------------------------


def test_absurd_amount_is_printed_not_a_crash() -> None:
    """An amount no decimal column can hold (1e41) prints in float notation in every text format."""
    path = write(
        "huge.csv",
        "customer_id,order_date,amount\nA,2024-01-01,10\nA,2024-02-01,1" + "0" * 41 + "\nB,2024-01-05,5\n",
    )
    rows = csv_rows(ok(run("customers", path, "-q", "-f", "csv", "--no-predict")).stdout)
    assert {r["customer_id"]: r["revenue"] for r in rows} == {"A": "1e+41", "B": "5.00"}
    for fmt in ("tsv", "markdown", "table", "json"):
        out = ok(run("customers", path, "-q", "-f", fmt, "--no-predict", "--columns", "customer_id,revenue"))
        assert "e+41" in out.stdout, fmt


def test_top(small: str) -> None:
    rows = csv_rows(ok(run("customers", small, "--top", "2")).stdout)
    assert [r["customer_id"] for r in rows] == ["c1", "c2"]


def test_sort_numeric_is_descending_by_default(small: str) -> None:
    rows = csv_rows(ok(run("customers", small, "--sort", "revenue")).stdout)
    assert [r["customer_id"] for r in rows] == ["c1", "c2", "c4", "c3"]
    rows = csv_rows(ok(run("customers", small, "--sort", "days_since_last")).stdout)
    # as of 2024-03-01: c2 41 days, c4 29, c1 20, c3 0.
    assert [r["customer_id"] for r in rows] == ["c2", "c4", "c1", "c3"]
    assert [r["days_since_last"] for r in rows] == ["41", "29", "20", "0"]


def test_sort_ascending(small: str) -> None:
    rows = csv_rows(ok(run("customers", small, "--sort", "revenue:asc")).stdout)
    assert [r["customer_id"] for r in rows] == ["c3", "c4", "c2", "c1"]
    assert [r["revenue"] for r in rows] == ["5.00", "12.50", "30.00", "32.50"]
    desc = csv_rows(ok(run("customers", small, "--sort", "revenue:desc")).stdout)
    assert [r["customer_id"] for r in desc] == ["c1", "c2", "c4", "c3"]


def test_sort_by_date_is_ascending_by_default(small: str) -> None:
    rows = csv_rows(ok(run("customers", small, "--sort", "first_order")).stdout)
    assert [r["customer_id"] for r in rows] == ["c1", "c2", "c4", "c3"]
    assert [r["first_order"] for r in rows] == ["2024-01-05", "2024-01-20", "2024-02-01", "2024-03-01"]


def test_pareto_class_does_not_depend_on_sort_direction(small: str) -> None:
    # A = the customers making the top 80 % of the total (PRODUCT §4.1): c1 .40625, c2 .375
    # (running .78125), c4 (share before it .78125 < .80) -> A; c3 -> B. Listing the table
    # smallest-first must not relabel the smallest customer as A.
    def classes(spec: str) -> dict[str, str]:
        rows = csv_rows(ok(run("customers", small, "--sort", spec)).stdout)
        return {r["customer_id"]: r["pareto_class"] for r in rows}

    expected = {"c1": "A", "c2": "A", "c4": "A", "c3": "B"}
    assert classes("revenue") == expected
    assert classes("revenue:asc") == expected


def test_unknown_sort_column_is_a_usage_error(small: str) -> None:
    result = run("customers", small, "--sort", "nope")
    assert result.exit_code == 2
    assert "nope" in result.stderr


def test_columns(small: str) -> None:
    result = ok(run("customers", small, "--columns", "revenue,customer_id"))
    lines = result.stdout.splitlines()
    assert lines[0] == "revenue,customer_id"
    assert lines[1] == "32.50,c1"


def test_unknown_column_is_a_usage_error(small: str) -> None:
    result = run("customers", small, "--columns", "customer_id,bogus")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("clvtool: error:")
    assert "bogus" in result.stderr


# ---- as-of, audit, strict, rejects -------------------------------------------------------------


def test_as_of_excludes_later_rows_with_one_stderr_line(small: str) -> None:
    result = ok(run("customers", small, "--as-of", "2024-02-05", "--no-predict"))
    rows = csv_rows(result.stdout)
    assert result.stdout.splitlines()[0] == ",".join(COLUMNS)
    assert all(len(r) == len(COLUMNS) and None not in r for r in rows)
    by_id = {r["customer_id"]: r for r in rows}
    assert set(by_id) == {"c1", "c2", "c4"}
    assert by_id["c1"]["revenue"] == "12.50"
    assert by_id["c1"]["orders"] == "1"
    assert by_id["c1"]["days_since_last"] == "31"
    assert by_id["c2"]["tenure_days"] == "16"
    # One line for the exclusions, one for the churn thresholds in use (PRODUCT §4.3); nothing else.
    lines = result.stderr.splitlines()
    assert len(lines) == 2
    assert all(line.startswith("clvtool:") for line in lines)
    assert "2 of 6" in lines[0] and "after_as_of" in lines[0]
    assert lines[1].startswith("clvtool: churn thresholds:")
    assert "clvtool" not in result.stdout


def test_as_of_that_is_not_a_date_is_a_usage_error(small: str) -> None:
    result = run("customers", small, "--as-of", "yesterday-ish")
    assert result.exit_code == 2
    assert "--as-of" in result.stderr


def test_strict_exits_1_when_rows_are_excluded(small: str) -> None:
    result = run("customers", small, "--as-of", "2024-02-05", "--strict")
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "--strict" in result.stderr.splitlines()[-1]
    assert result.stdout == ""
    ok(run("customers", small, "--strict"))


def test_rejects_file(small: str) -> None:
    name = write(
        "messy.csv",
        "customer_id,date,amount\n"
        "c1,2024-01-01,5\n"  # line 2: used
        "c2,not a date,3\n"  # line 3
        "c3,2024-05-01,4\n"  # line 4: after as-of
        ",2024-01-02,1\n"  # line 5
        "c1,2024-01-01,5\n"  # line 6: exact duplicate of line 2
        "c4,2024-01-03,abc\n",  # line 7
    )
    result = ok(run("customers", name, "--as-of", "2024-03-01", "--rejects", "rejects.csv"))
    assert [r["customer_id"] for r in csv_rows(result.stdout)] == ["c1"]
    rejects = pl.read_csv("rejects.csv", infer_schema=False)
    assert rejects.columns[:3] == ["file", "line", "reason"]
    got = {(r["line"], r["reason"]) for r in rejects.iter_rows(named=True)}
    assert got == {
        ("3", "unparseable_date"),
        ("4", "after_as_of"),
        ("5", "missing_identity"),
        ("6", "duplicate_row"),
        ("7", "unparseable_amount"),
    }
    assert set(rejects["file"].to_list()) == {name}
    line3 = rejects.filter(pl.col("line") == "3").row(0, named=True)
    assert line3["date"] == "not a date"
    # The summary line reconciles with the rejects file.
    assert "5 of 6" in result.stderr


# ---- text output rules --------------------------------------------------------------------------

_RISKY = '=HYPERLINK("http://evil.example","x")'


@pytest.fixture
def risky() -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(
        [
            ["customer_id", "order_id", "date", "amount", "channel"],
            [_RISKY, "o1", "2024-01-05", "7", "@mention"],
            ["-5", "o2", "2024-01-06", "3", "+plus"],
            ["neg", "o3", "2024-01-07", "10", "web"],
            ["neg", "o4", "2024-01-08", "-20", "web"],
        ]
    )
    return write("risky.csv", buf.getvalue())


def test_csv_escapes_formula_like_text(risky: str) -> None:
    result = ok(run("customers", risky, "--columns", "customer_id,channel,revenue,aov,historic_clv"))
    by_id = {r["customer_id"]: r for r in csv_rows(result.stdout)}
    assert set(by_id) == {"'" + _RISKY, "'-5", "neg"}
    assert by_id["'" + _RISKY]["channel"] == "'@mention"
    assert by_id["'-5"]["channel"] == "'+plus"
    # Numbers are never escaped, negative ones included.
    assert by_id["neg"]["revenue"] == "-10.00"
    assert by_id["neg"]["historic_clv"] == "-10.00"
    assert by_id["neg"]["channel"] == "web"


def test_tsv_escapes_formula_like_text(risky: str) -> None:
    result = ok(run("customers", risky, "-f", "tsv", "--columns", "customer_id,revenue"))
    by_id = {r["customer_id"]: r for r in csv_rows(result.stdout, "\t")}
    assert set(by_id) == {"'" + _RISKY, "'-5", "neg"}
    assert by_id["neg"]["revenue"] == "-10.00"


def test_no_escape_turns_escaping_off(risky: str) -> None:
    result = ok(run("customers", risky, "--no-escape", "--columns", "customer_id,channel"))
    by_id = {r["customer_id"]: r for r in csv_rows(result.stdout)}
    assert set(by_id) == {_RISKY, "-5", "neg"}
    assert by_id["-5"]["channel"] == "+plus"


def test_json_carries_the_raw_text(risky: str) -> None:
    data = json.loads(ok(run("customers", risky, "-f", "json")).stdout)
    assert {rec["customer_id"] for rec in data} == {_RISKY, "-5", "neg"}


def test_fixed_float_precision(small: str) -> None:
    rows = csv_rows(ok(run("customers", small)).stdout)
    c4 = rows[2]
    assert c4["customer_id"] == "c4"
    assert c4["revenue"] == "12.50"
    assert c4["aov"] == "12.50"
    assert c4["refunds"] == "0.00"
    assert c4["share"] == "0.156250"
    assert c4["cumulative_share"] == "0.937500"
    assert [r["share"] for r in rows] == ["0.406250", "0.375000", "0.156250", "0.062500"]
    assert rows[0]["recency"] == "5.1429"  # 36 days in weeks
    assert rows[1]["revenue"] == "30.00"
    assert "e" not in rows[0]["T"].lower()


def test_float_precision_setting(small: str) -> None:
    rows = csv_rows(ok(run("customers", small, "--set", "output.float_precision=3")).stdout)
    assert rows[2]["revenue"] == "12.500"
    assert rows[2]["share"] == "0.156250"


@pytest.mark.parametrize("fmt", ["csv", "tsv", "json", "jsonl", "markdown"])
def test_output_is_byte_identical_across_runs(small: str, fmt: str) -> None:
    first = ok(run("customers", small, "-f", fmt)).stdout_bytes
    second = ok(run("customers", small, "-f", fmt)).stdout_bytes
    assert first == second
    assert len(first) > 100


def test_parquet_output_is_byte_identical_across_runs(small: str) -> None:
    ok(run("customers", small, "-o", "a.parquet"))
    ok(run("customers", small, "-o", "b.parquet"))
    assert Path("a.parquet").read_bytes() == Path("b.parquet").read_bytes()


def test_header_only_file_gives_just_the_header() -> None:
    name = write("header.csv", "customer_id,order_id,date,amount\n")
    result = ok(run("customers", name))
    assert result.stdout == ",".join(COLUMNS) + "\n"
    assert result.stderr == ""
    assert json.loads(ok(run("customers", name, "-f", "json")).stdout) == []


def test_stdin_dash(small: str) -> None:
    from_file = ok(run("customers", small)).stdout
    from_stdin = ok(run("customers", "-", input=SMALL.encode())).stdout
    assert from_stdin == from_file


# ---- errors -------------------------------------------------------------------------------------


def assert_clean_error(result: Result, name: str) -> None:
    """Exit 1, one 'clvtool: error:' line on stderr naming the file, nothing on stdout, no traceback."""
    assert result.exit_code == 1, (result.exit_code, result.output)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("clvtool: error:")
    assert "unexpected" not in lines[0], lines[0]
    assert name in lines[0], lines[0]
    assert result.stdout == ""


def test_empty_file() -> None:
    write("empty.csv", "")
    assert_clean_error(run("customers", "empty.csv"), "empty.csv")


def test_binary_file() -> None:
    Path("binary.csv").write_bytes(b"\x00\x01\x02\x89PNG\r\n\x1a\n\x00\x00\xff\xfe" * 50)
    assert_clean_error(run("customers", "binary.csv"), "binary.csv")


def test_invalid_utf8_without_nul_bytes() -> None:
    Path("latin.csv").write_bytes(b"customer_id,date,amount\nJos\xe9,2024-01-01,5\n")
    assert_clean_error(run("customers", "latin.csv"), "latin.csv")


def test_missing_required_column() -> None:
    write("nocol.csv", "customer_id,date\nc1,2024-01-01\n")
    result = run("customers", "nocol.csv")
    assert_clean_error(result, "nocol.csv")
    assert "amount" in result.stderr


def test_nonexistent_file() -> None:
    assert_clean_error(run("customers", "does-not-exist.csv"), "does-not-exist.csv")


def test_config_with_unknown_key(small: str) -> None:
    write("bad.yaml", "analysis:\n  margin_rat: 0.4\n")
    result = run("customers", small, "--config", "bad.yaml")
    assert_clean_error(result, "bad.yaml")
    assert "margin_rat" in result.stderr
    assert "analysis.margin_rate" in result.stderr  # the suggestion


def test_config_with_python_tag_is_refused_and_not_executed(small: str) -> None:
    marker = Path("pwned.txt")
    write(
        "evil.yaml",
        'analysis:\n  margin_rate: !!python/object/apply:os.system ["echo pwned > pwned.txt"]\n',
    )
    result = run("customers", small, "--config", "evil.yaml")
    assert_clean_error(result, "evil.yaml")
    assert not marker.exists()


def test_mixed_currencies() -> None:
    write(
        "currencies.csv",
        "customer_id,date,amount,currency\nc1,2024-01-01,5,USD\nc2,2024-01-02,6,EUR\n",
    )
    result = run("customers", "currencies.csv")
    assert "USD" in result.stderr and "EUR" in result.stderr
    assert_clean_error(result, "currencies.csv")


def test_debug_shows_the_traceback() -> None:
    write("empty.csv", "")
    result = run("customers", "empty.csv", "--debug")
    assert result.exit_code != 0
    propagated = result.exception is not None and not isinstance(result.exception, SystemExit)
    assert propagated or "Traceback" in result.output
    if propagated:
        assert isinstance(result.exception, ClvError)
        assert "empty.csv" in str(result.exception)


# ---- check, sample, app ------------------------------------------------------------------------


def test_check_prints_buckets_and_exits_0() -> None:
    name = write("mostly.csv", "customer_id,date,amount\nc1,2024-01-01,5\nc2,2024-01-02,6\nc3,nope,1\n")
    result = ok(run("check", name))
    buckets = {r["bucket"]: r["rows"] for r in csv_rows(result.stdout)}
    assert buckets == {"used": "2", "unparseable_date": "1"}
    report = json.loads(ok(run("check", name, "-f", "json")).stdout)
    entry = report["inputs"][0]
    assert entry["rows_read"] == 3
    assert entry["reconciles"] is True
    assert entry["buckets"] == {"used": 2, "unparseable_date": 1}


def test_check_exits_1_when_every_row_is_excluded() -> None:
    name = write("allbad.csv", "customer_id,date,amount\nc1,nope,5\n,2024-01-01,3\n")
    result = run("check", name)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    buckets = {r["bucket"]: r["rows"] for r in csv_rows(result.stdout)}
    assert buckets == {"used": "0", "missing_identity": "1", "unparseable_date": "1"}
    assert result.stderr.splitlines()[-1].startswith("clvtool: error:")


def test_sample_writes_four_files() -> None:
    result = ok(run("sample", "out", "-n", "200"))
    assert result.stdout == ""
    files = sorted(p.name for p in Path("out").iterdir())
    assert files == ["customers.csv", "marketing_spend.csv", "params.json", "transactions.csv"]
    params = json.loads(Path("out/params.json").read_text())
    assert isinstance(params, dict) and params
    rows = csv_rows(ok(run("customers", "out/transactions.csv")).stdout)
    assert 0 < len(rows) <= 200


def test_version() -> None:
    result = ok(run("--version"))
    assert result.stdout == f"clvtool {__version__}\n"


def test_no_arguments_is_a_usage_error() -> None:
    assert run().exit_code == 2


def test_customers_without_files_or_config_is_a_usage_error() -> None:
    result = run("customers")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("clvtool: error:")
    assert "transactions.path" in result.stderr


def test_transactions_path_from_local_config(small: str) -> None:
    write("clvtool.yaml", f"transactions:\n  path: {small}\n")
    rows = csv_rows(ok(run("customers")).stdout)
    assert [r["customer_id"] for r in rows] == BY_VALUE


def test_output_into_a_missing_folder_fails_before_reading(small: str) -> None:
    # The input does not even need to exist: the usage mistake is reported first, with exit 2.
    result = run("customers", "does-not-exist.csv", "-o", "no/such/folder/out.csv")
    assert result.exit_code == 2
    assert "no/such/folder" in result.stderr and "does-not-exist" not in result.stderr
