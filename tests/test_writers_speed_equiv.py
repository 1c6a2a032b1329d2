"""The fast CSV/TSV writer prints exactly the bytes of the straightforward two-pass formatting.

`reference_csv` below is the writer as it was before it was made fast (finite + round(9) on every float
column, then round + Decimal cast per column, formula escaping by when/then on every text column, every
other non-numeric column cast to text, one eager write_csv). The fast writer streams, skips work that
cannot change a cell and lets write_csv print dates and booleans itself; none of that may change a byte.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clvtool.frames import OrderedFrame
from clvtool.metrics.columns import Precision, decimals_for
from clvtool.render import writers

RISKY = ("=", "+", "-", "@", "\t", "\r")


def reference_csv(df: pl.DataFrame, money_decimals: int | Precision, *, separator: str, escape: bool) -> str:
    floats = [c for c, t in df.schema.items() if t.is_float()]
    df = df.with_columns(
        pl.when(pl.col(c).is_finite()).then(pl.col(c).round(9)).otherwise(None).alias(c) for c in floats
    )
    exprs = []
    for c, t in df.schema.items():
        col = pl.col(c)
        if t.is_float():
            d = decimals_for(c, money_decimals)
            exprs.append(col.round(d).cast(pl.Decimal(38, d)).alias(c))
        elif t == pl.String:
            if escape:
                risky = pl.lit(False)
                for ch in RISKY:
                    risky = risky | col.str.starts_with(ch)
                col = pl.when(risky).then(pl.concat_str(pl.lit("'"), col)).otherwise(col)
            exprs.append(col.alias(c))
        elif t.is_numeric():
            exprs.append(col)
        else:
            exprs.append(col.cast(pl.String).alias(c))
    return df.select(exprs).write_csv(separator=separator)


MONEY_VALUES = [
    -0.001,  # rounds to zero: never "-0.00"
    -0.004999,
    -0.005,
    0.005,
    0.015,
    0.025,
    0.125,
    0.135,
    2.675,
    1.005,
    -1.005,
    -2.675,
    0.1 + 0.2,
    1e-12,
    -1e-12,
    5e-7,
    -5e-7,
    1e15,
    -1e15,
    123456789.125,
    99999999999.995,
    1e30,
    float("nan"),
    float("inf"),
    float("-inf"),
    None,
    0.0,
    -0.0,
    42.0,
]


def tricky_frame() -> pl.DataFrame:
    n = len(MONEY_VALUES)
    texts = [
        "=SUM(A1)",
        "+1",
        "-5",
        "@home",
        "\tindent",
        "\rcarriage",
        "plain",
        "",
        None,
        "a,b",
        'say "hi"',
        "line\nbreak",
        "a\tb",
        "'quoted already",
        " =space first",
        "ünïcödé",
        "1e5",
        "-",
        "=",
    ]
    texts = (texts * (n // len(texts) + 1))[:n]
    days = [dt.date(2024, 1, 1) + dt.timedelta(days=i * 37) for i in range(n)]
    days[3] = None
    days[5] = dt.date(1, 1, 1)
    days[6] = dt.date(9999, 12, 31)
    return pl.DataFrame(
        {
            "customer_id": [f"C{i:05d}" for i in range(n)],
            "note": texts,
            "safe_text": ["abc"] * (n - 1) + [None],
            "first_order": days,
            "orders": pl.Series(list(range(-3, n - 3)), dtype=pl.Int64),
            "small_int": pl.Series([i % 7 for i in range(n)], dtype=pl.Int32),
            "revenue": MONEY_VALUES,
            "aov": list(reversed(MONEY_VALUES)),
            "p_alive": [None if v is None else (v / 3 if math.isfinite(v) else v) for v in MONEY_VALUES],
            "recency": [None if v is None else v * 7 for v in MONEY_VALUES],
            "float32_col": pl.Series([0.125, -0.001, None, float("nan")] * (n // 4) + [1.5] * (n % 4)).cast(
                pl.Float32
            ),
            "left_censored": [None if i % 5 == 0 else i % 2 == 0 for i in range(n)],
            "stamp": [dt.datetime(2024, 1, 1, 12, 30) + dt.timedelta(hours=i) for i in range(n)],
            "amount_dec": pl.Series([1.5, -2.25, None] * (n // 3) + [0.0] * (n % 3)).cast(pl.Decimal(10, 2)),
        }
    )


def file_bytes(df: pl.DataFrame, tmp_path: Path, precision: int | Precision, **kw: object) -> bytes:
    path = tmp_path / "out.csv"
    writers.write_csv_file(df, str(path), precision, **kw)  # type: ignore[arg-type]
    return path.read_bytes()


@pytest.mark.parametrize("separator", [",", "\t"])
@pytest.mark.parametrize("escape", [True, False])
@pytest.mark.parametrize("precision", [0, 2, 3, Precision(2, {"aov": 4, "recency": 1})])
def test_tricky_values_same_bytes(
    tmp_path: Path, separator: str, escape: bool, precision: int | Precision
) -> None:
    df = tricky_frame()
    expected = reference_csv(df, precision, separator=separator, escape=escape)
    assert file_bytes(df, tmp_path, precision, separator=separator, escape=escape) == expected.encode()
    assert writers.to_csv(df, precision, separator=separator, escape=escape) == expected


def test_contract_on_hand_checked_values(tmp_path: Path) -> None:
    df = pl.DataFrame(
        {
            "revenue": [-0.001, 0.015, 1e-12, float("nan"), float("inf"), None, 1234567.891],
            "p_alive": [0.5, 1e-9, -1e-9, 0.1234565, None, 1.0, 0.0],
            "note": ["=1+1", "-3", "ok", None, "", "@x", "a,b"],
            "when": [dt.date(2024, 2, 29)] * 6 + [None],
            "flag": [True, False, None, True, False, True, True],
        }
    )
    text = file_bytes(df, tmp_path, 2).decode()
    assert text == (
        "revenue,p_alive,note,when,flag\n"
        "0.00,0.500000,'=1+1,2024-02-29,true\n"
        "0.02,0.000000,'-3,2024-02-29,false\n"
        "0.00,0.000000,ok,2024-02-29,\n"
        ",0.123456,,2024-02-29,true\n"
        ',,"",2024-02-29,false\n'
        ",1.000000,'@x,2024-02-29,true\n"
        '1234567.89,0.000000,"a,b",,true\n'
    )
    assert "-0.0" not in text and "e-" not in text and "nan" not in text.lower() and "inf" not in text


def test_many_rows_several_morsels(tmp_path: Path) -> None:
    """Enough rows for the streaming engine to cut the frame into several morsels; order and header once."""
    rng = np.random.default_rng(7)
    n = 260_000
    money = rng.normal(0, 50, n).round(3) + rng.choice([0.0, 0.005, -0.005, 1e-10], n)
    money[rng.integers(0, n, 500)] = np.nan
    money[rng.integers(0, n, 500)] = np.inf
    notes = rng.choice(np.array(["alpha", "beta", "", "x,y"]), n).astype(object)
    notes[n - 1] = "=risky only in the last row"
    notes[rng.integers(0, n, 100)] = None
    df = pl.DataFrame(
        {
            "row": np.arange(n),
            "revenue": money,
            "share": rng.random(n) / 1000,
            "T": rng.random(n) * 700,
            "note": pl.Series(notes, dtype=pl.String),
            "channel": rng.choice(np.array(["organic", "paid_search"]), n),
            "first_order": pl.Series(rng.integers(19000, 20500, n), dtype=pl.Int32).cast(pl.Date),
            "left_censored": rng.random(n) < 0.1,
        }
    )
    for separator in (",", "\t"):
        expected = reference_csv(df, 2, separator=separator, escape=True)
        got = file_bytes(df, tmp_path, 2, separator=separator)
        assert got == expected.encode()
        header = got.split(b"\n", 1)[0]
        assert got.count(header) == 1
        assert got.count(b"\n") == n + 1
        assert (
            got.rstrip(b"\n").rsplit(b"\n", 1)[1].split(separator.encode())[4]
            == b"'=risky only in the last row"
        )


def test_empty_frames(tmp_path: Path) -> None:
    empty = pl.DataFrame(schema={"revenue": pl.Float64, "note": pl.String, "d": pl.Date})
    assert file_bytes(empty, tmp_path, 2) == reference_csv(empty, 2, separator=",", escape=True).encode()
    assert writers.to_csv(empty, 2) == "revenue,note,d\n"
    nulls = pl.DataFrame({"note": pl.Series([None, None], dtype=pl.String), "x": [None, None]})
    assert file_bytes(nulls, tmp_path, 2) == reference_csv(nulls, 2, separator=",", escape=True).encode()


def test_error_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write that fails part-way leaves no file behind, temporary or final."""

    def half_then_fail(df: object, target: str, *args: object) -> None:
        Path(target).write_bytes(b"revenue\n1.00\n")
        raise pl.exceptions.ComputeError("disk trouble")

    monkeypatch.setattr(writers, "_sink_csv", half_then_fail)
    with pytest.raises(pl.exceptions.PolarsError):
        writers.write_csv_file(pl.DataFrame({"revenue": [1.0]}), str(tmp_path / "out.csv"), 2)
    assert list(tmp_path.iterdir()) == []


def test_replaces_existing_file_atomically(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    path.write_text("old\n")
    df = pl.DataFrame({"revenue": [1.234]})
    writers.write_csv_file(df, str(path), 2)
    assert path.read_text() == "revenue\n1.23\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_markdown_and_text_unchanged() -> None:
    df = tricky_frame()
    text = writers.as_text(df, 2, escape=True)
    assert all(t == pl.String for t in text.schema.values())
    ref = reference_csv(df, 2, separator=",", escape=True)
    assert text.write_csv() == ref


cells = st.one_of(
    st.none(),
    st.text(
        alphabet=st.sampled_from(
            ["=", "+", "-", "@", "\t", "\r", "a", "Z", "0", "9", "é", " ", "<", ">", ","]
        )
    ),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(cells, min_size=1, max_size=12), min_size=1, max_size=4))
def test_risky_columns_equal_a_scan_of_every_cell(columns: list[list[str | None]]) -> None:
    """The min/max shortcut never misses a column with a formula-like cell."""
    height = min(len(c) for c in columns)
    df = pl.DataFrame({f"c{i}": pl.Series(c[:height], dtype=pl.String) for i, c in enumerate(columns)})
    want = {
        name for name in df.columns if any(v is not None and v.startswith(RISKY) for v in df[name].to_list())
    }
    assert writers._risky_columns(df) == want


# --- OrderedFrame: the rows gathered and printed a slice at a time -----------------------------------


@pytest.mark.parametrize("slice_rows", [1, 3, 7, 1000])
@pytest.mark.parametrize("separator", [",", "\t"])
@pytest.mark.parametrize("escape", [True, False])
def test_ordered_frame_prints_the_bytes_of_the_gathered_frame(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slice_rows: int, separator: str, escape: bool
) -> None:
    """Slices (one header, rows in order, formula escaping decided over the whole frame) print the
    same bytes as the frame gathered whole, to a file, to a text stream and as text."""
    import io

    from clvtool.frames import OrderedFrame

    monkeypatch.setattr(writers, "SLICE_ROWS", slice_rows)
    base = tricky_frame()
    order = pl.Series(np.random.default_rng(5).permutation(base.height), dtype=pl.UInt32)
    extra = pl.DataFrame(
        {"rank": range(1, base.height + 1), "tag": ["=x" if i == 4 else "ok" for i in range(base.height)]}
    )
    ordered = OrderedFrame.of(base, order, extra).select(
        ["tag", "note", "revenue", "rank", "customer_id", "first_order"]
    )
    whole = pl.concat([base[order], extra], how="horizontal").select(ordered.columns)
    expected = reference_csv(whole, 2, separator=separator, escape=escape)
    assert file_bytes(ordered, tmp_path, 2, separator=separator, escape=escape) == expected.encode()  # type: ignore[arg-type]
    assert writers.to_csv(ordered, 2, separator=separator, escape=escape) == expected
    stream = io.StringIO()
    writers.write_csv_stream(ordered, stream, 2, separator=separator, escape=escape)
    assert stream.getvalue() == expected
    # A head that leaves out the only risky cell of a column: escaping it would change nothing anyway.
    head = ordered.head(3)
    assert writers.to_csv(head, 2, separator=separator, escape=escape) == reference_csv(
        whole.head(3), 2, separator=separator, escape=escape
    )


def test_empty_ordered_frame_prints_the_header() -> None:
    from clvtool.frames import OrderedFrame

    base = pl.DataFrame({"customer_id": ["a"], "revenue": [1.0]})
    empty = OrderedFrame.of(base, pl.Series([], dtype=pl.UInt32))
    assert writers.to_csv(empty, 2) == "customer_id,revenue\n"


@settings(max_examples=60, deadline=None)
@given(
    st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31)),
    st.lists(st.one_of(st.none(), st.integers(0, 120_000)), min_size=1, max_size=25),
)
def test_dates_print_as_their_text(start: dt.date, offsets: list[int | None]) -> None:
    """Dates looked up in a table of labels (or, over a wider span, printed by write_csv) read as
    their String cast: nulls, days before 1970 and spans above the table's limit included."""
    room = (dt.date.max - start).days
    days = [None if o is None else start + dt.timedelta(days=min(o, room)) for o in offsets]
    df = pl.DataFrame({"first_order": pl.Series(days, dtype=pl.Date), "n": list(range(len(days)))})
    assert writers.to_csv(df, 2) == reference_csv(df, 2, separator=",", escape=True)
    # As slices of an OrderedFrame: each slice has its own span.
    ordered = OrderedFrame.of(df, pl.Series(list(reversed(range(df.height))), dtype=pl.UInt32))
    expected = reference_csv(df.reverse(), 2, separator=",", escape=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(writers, "SLICE_ROWS", 3)
        assert writers.to_csv(ordered, 2) == expected


def test_date_labels_table_is_used_within_its_span() -> None:
    dates = pl.Series("d", [dt.date(1969, 12, 30), None, dt.date(2024, 2, 29)])
    assert "gather" in str(writers._iso_dates(dates))
    wide = pl.Series("d", [dt.date(1900, 1, 1), dt.date(2200, 1, 1)])
    assert str(writers._iso_dates(wide)) == str(pl.col("d"))


def test_magnitudes_beyond_a_decimal_print_as_floats_not_fail() -> None:
    """An absurd amount (1e41) cannot be a 38-digit decimal: its cells print in float notation, the
    rest of the column stays fixed-point, NaN and infinity stay empty."""
    df = pl.DataFrame(
        {
            "revenue": [1e41, 12.0, -2.5e300, None, float("nan"), float("inf"), 0.004],
            "p_alive": [0.5, 1e33, 0.25, None, 0.0, 1.0, 0.1234567],  # 6 decimals: limit 1e31
        }
    )
    expected = (
        "revenue,p_alive\n"
        "1e+41,0.500000\n"
        "12.00,1e+33\n"
        "-2.5e+300,0.250000\n"
        ",\n"
        ",0.000000\n"
        ",1.000000\n"
        "0.00,0.123457\n"
    )
    assert writers.to_csv(df, 2) == expected
    assert writers.to_markdown(df, 2).splitlines()[2] == "| 1e+41 | 0.500000 |"
