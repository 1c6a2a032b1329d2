"""Data writers: one format option and one writer for every command (PRODUCT §6).

Floats are rounded per column kind and written with a fixed number of decimals in text formats; text
cells that a spreadsheet would run as a formula are escaped; files are written atomically. Nothing here
computes a metric.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import polars as pl

from clvtool.errors import UsageError
from clvtool.frames import OrderedFrame
from clvtool.io.files import atomic_write, atomic_write_with
from clvtool.metrics.columns import decimals_for
from clvtool.metrics.periods import by_day

FORMATS = ("auto", "table", "csv", "tsv", "json", "jsonl", "markdown", "parquet")
EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".md": "markdown",
    ".markdown": "markdown",
    ".parquet": "parquet",
    ".txt": "table",
}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def choose_format(fmt: str | None, output: str | None, stdout_is_terminal: bool) -> str:
    """Resolve --format/-o: explicit format, else the output's extension, else table or csv."""
    if output and output != "-" and not Path(output).parent.is_dir():
        # A usage mistake: say so before any file is read, not after the whole computation.
        raise UsageError(
            f"cannot write {output}: folder {Path(output).parent} does not exist; create it first."
        )
    if fmt and fmt != "auto":
        if fmt not in FORMATS:
            raise UsageError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}.")
        return fmt
    if output and output != "-":
        ext = Path(output).suffix.lower()
        if ext not in EXTENSIONS:
            raise UsageError(
                f"cannot tell the format of -o {output!r} from its extension; add --format "
                f"({', '.join(FORMATS[1:])})."
            )
        return EXTENSIONS[ext]
    return "table" if stdout_is_terminal else "csv"


def _finite_9(col: pl.Expr) -> pl.Expr:
    """NaN and ±inf as null; other values rounded to 9 decimals.

    Rounding to 9 decimals first removes the last-bit noise of parallel float sums, so a value that sits
    on a half cent rounds the same way in every run (byte-identical output).
    """
    return pl.when(col.is_finite()).then(col.round(9)).otherwise(None)


def finite(df: pl.DataFrame) -> pl.DataFrame:
    """Replace NaN and ±inf by null: no output ever shows them."""
    floats = [c for c, t in df.schema.items() if t.is_float()]
    return df.with_columns(_finite_9(pl.col(c)).alias(c) for c in floats)


def rounded(df: pl.DataFrame, money_decimals: int) -> pl.DataFrame:
    """Floats rounded to their column's precision, non-finite values as null."""
    return df.with_columns(
        _finite_9(pl.col(c)).round(decimals_for(c, money_decimals)).alias(c)
        for c, t in df.schema.items()
        if t.is_float()
    )


def _risky(expr: pl.Expr) -> pl.Expr:
    risky = pl.lit(False)
    for ch in _FORMULA_START:
        risky = risky | expr.str.starts_with(ch)
    return risky


def escape_formula(expr: pl.Expr) -> pl.Expr:
    """Prefix text that starts like a spreadsheet formula with a single quote."""
    return pl.when(_risky(expr)).then(pl.concat_str(pl.lit("'"), expr)).otherwise(expr)


# The same test as `_risky`, in one regex pass (much cheaper than six starts_with): only used to skip
# escaping columns with no risky cell at all, where escape_formula would return the column unchanged.
_RISKY_PATTERN = "^[" + "".join(f"\\x{{{ord(ch):x}}}" for ch in _FORMULA_START) + "]"


def _risky_columns(df: pl.DataFrame | OrderedFrame) -> set[str]:
    """The String columns with at least one cell that escape_formula would change.

    Every cell lies between the column's least and greatest value, so its first byte lies between
    theirs: a column whose range of first bytes holds no formula character needs no scan (ids,
    names, labels, dates). The others are scanned. For an OrderedFrame the columns are tested whole
    (a superset of its rows: escaping a column with no risky cell changes nothing).
    """
    if isinstance(df, OrderedFrame):
        strings = df.string_columns()
    else:
        strings = [df[c] for c, t in df.schema.items() if t == pl.String]
    strings = [s for s in strings if s.len()]
    if not strings:
        return set()
    # One query per column, run together (the columns may differ in length).
    bounds = pl.collect_all(
        [
            s.to_frame().lazy().select(pl.first().min().alias("lo"), pl.first().max().alias("hi"))
            for s in strings
        ]
    )
    starts = [ch.encode() for ch in _FORMULA_START]
    maybe = []
    for s, b in zip(strings, bounds, strict=True):
        lo, hi = b.row(0)
        if lo is not None and any((lo.encode()[:1] or b"\x00") <= ch <= hi.encode()[:1] for ch in starts):
            maybe.append(s)
    if not maybe:
        return set()
    found = pl.collect_all(
        [s.to_frame().lazy().select(pl.first().str.contains(_RISKY_PATTERN).any()) for s in maybe]
    )
    return {s.name for s, hit in zip(maybe, found, strict=True) if hit.item()}


def fixed_point(expr: pl.Expr, decimals: int) -> pl.Expr:
    """A float as a Decimal with exactly `decimals` places: written without exponent or '-0.00'."""
    return expr.round(decimals).cast(pl.Decimal(38, decimals))


def fixed_limit(decimals: int) -> float:
    """Magnitudes from here up are not written fixed-point: a 38-digit decimal with `decimals` places
    holds less than 10^(38 - decimals); one digit is kept spare."""
    return 10.0 ** (37 - decimals)


def _fixed_text(col: pl.Expr, decimals: int) -> pl.Expr:
    """`col` as text: fixed-point, except magnitudes a decimal cannot hold (absurd input amounts such
    as 1e41), which print as the float's own text ('1e+41') rather than fail the whole output."""
    value = _finite_9(col)
    small = value.abs() < fixed_limit(decimals)
    return pl.coalesce(
        fixed_point(pl.when(small).then(value), decimals).cast(pl.String),
        pl.when(~small).then(value.cast(pl.String)),
    )


def _iso_dates(dates: pl.Series) -> pl.Expr:
    """A Date column as ISO text, the way write_csv prints it, looked up per day of the span `dates`
    covers (metrics.periods.by_day); a wider span is left as a Date, for write_csv to print."""
    col = pl.col(dates.name)
    lo, hi = dates.min(), dates.max()
    tabled = None if lo is None else by_day(col, lo, hi, lambda d: d.dt.to_string("%Y-%m-%d"))  # type: ignore[arg-type]
    return col if tabled is None else tabled.alias(dates.name)


def _text_exprs(
    df: pl.DataFrame,
    money_decimals: int,
    *,
    escape: bool,
    keep_numbers: bool,
    native_dates: bool = False,
    risky: set[str] | None = None,
) -> list[pl.Expr]:
    """One expression per column turning `df` into its text-ready form, all in a single select.

    Floats: NaN/inf as null, round(9), then fixed-point at the column's precision (a column holding a
    magnitude beyond a decimal's range becomes text, those cells in the float's notation). Strings: formula
    escaping, only on the columns that have a risky cell (the others are passed through untouched, no
    copy). With `native_dates`, Boolean columns stay as they are and Date columns take their ISO labels
    from a table of the days they span (`_iso_dates`): write_csv prints both exactly like their String
    cast (ISO dates, true/false). `risky`: the columns to escape, when already known.
    """
    if risky is None:
        risky = _risky_columns(df) if escape else set()
    exprs = []
    for c, t in df.schema.items():
        col = pl.col(c)
        if t.is_float():
            decimals = decimals_for(c, money_decimals)
            lo, hi = df[c].min(), df[c].max()  # NaN ignored; no copy of the column
            if lo is not None and max(-lo, hi) >= fixed_limit(decimals):  # type: ignore[operator]
                exprs.append(_fixed_text(col, decimals).alias(c))
                continue
            fixed = fixed_point(_finite_9(col), decimals)
            exprs.append((fixed if keep_numbers else fixed.cast(pl.String)).alias(c))
        elif t == pl.String:
            exprs.append(escape_formula(col).alias(c) if c in risky else col)
        elif native_dates and t == pl.Date:
            exprs.append(_iso_dates(df[c]))
        elif (keep_numbers and t.is_numeric()) or (native_dates and t == pl.Boolean):
            exprs.append(col)
        else:
            exprs.append(col.cast(pl.String).alias(c))
    return exprs


def as_text(
    df: pl.DataFrame, money_decimals: int, *, escape: bool, keep_numbers: bool = False
) -> pl.DataFrame:
    """Columns ready for text output: fixed decimals for floats, ISO dates, escaped strings.

    With `keep_numbers`, floats stay fixed-point decimals (write_csv prints them natively and fast);
    otherwise every column becomes text.
    """
    return df.select(_text_exprs(df, money_decimals, escape=escape, keep_numbers=keep_numbers))


def _csv_frame(
    df: pl.DataFrame, money_decimals: int, escape: bool, risky: set[str] | None = None
) -> pl.LazyFrame:
    """The frame as write_csv should print it, as a lazy query (nothing converted yet)."""
    exprs = _text_exprs(df, money_decimals, escape=escape, keep_numbers=True, native_dates=True, risky=risky)
    return df.lazy().select(exprs)


SLICE_ROWS = 1 << 20  # rows of an OrderedFrame gathered and printed at a time


def _sink_csv(
    df: pl.DataFrame | OrderedFrame,
    target: str | IO[bytes],
    money_decimals: int,
    separator: str,
    escape: bool,
) -> None:
    """CSV of the whole frame to a path or a binary file; an OrderedFrame slice by slice."""
    if not isinstance(df, OrderedFrame):
        _csv_frame(df, money_decimals, escape).sink_csv(target, separator=separator, engine="streaming")
        return
    risky = _risky_columns(df) if escape else set()
    with open(target, "wb") if isinstance(target, str) else contextlib.nullcontext(target) as out:
        for i, part in enumerate(df.slices(SLICE_ROWS)):
            _csv_frame(part, money_decimals, escape, risky).sink_csv(
                out, separator=separator, include_header=i == 0, engine="streaming"
            )


def write_csv_file(
    df: pl.DataFrame | OrderedFrame,
    path: str,
    money_decimals: int,
    *,
    separator: str = ",",
    escape: bool = True,
) -> None:
    """CSV or TSV straight to a file (atomically), without building the text in memory first.

    The conversion runs in Polars' streaming engine: rows are converted, printed and written a morsel at
    a time on all cores while earlier morsels are being written, so neither the converted frame nor the
    text ever exists whole (nor, for an OrderedFrame, the frame in its order). The bytes are exactly
    those of `to_csv`.
    """
    atomic_write_with(path, lambda tmp: _sink_csv(df, tmp, money_decimals, separator, escape))


def write_csv_stream(
    df: pl.DataFrame | OrderedFrame,
    stream: IO[str],
    money_decimals: int,
    *,
    separator: str = ",",
    escape: bool = True,
) -> None:
    """CSV or TSV to a text stream (stdout), an OrderedFrame slice by slice as it is printed."""
    if not isinstance(df, OrderedFrame):
        stream.write(to_csv(df, money_decimals, separator=separator, escape=escape))
        stream.flush()
        return
    risky = _risky_columns(df) if escape else set()
    for i, part in enumerate(df.slices(SLICE_ROWS)):
        buf = io.BytesIO()
        _csv_frame(part, money_decimals, escape, risky).sink_csv(
            buf, separator=separator, include_header=i == 0, engine="streaming"
        )
        stream.write(buf.getvalue().decode("utf-8"))
    stream.flush()


def to_csv(
    df: pl.DataFrame | OrderedFrame, money_decimals: int, *, separator: str = ",", escape: bool = True
) -> str:
    """CSV or TSV text with a header: the same bytes write_csv_file writes."""
    buf = io.BytesIO()
    _sink_csv(df, buf, money_decimals, separator, escape)
    return buf.getvalue().decode("utf-8")


def _json_value(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def records(df: pl.DataFrame, money_decimals: int) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts: rounded floats, ISO dates, null for missing."""
    return [
        {k: _json_value(v) for k, v in row.items()}
        for row in rounded(df, money_decimals).iter_rows(named=True)
    ]


def to_json(df: pl.DataFrame, money_decimals: int) -> str:
    """A JSON list of records."""
    return rounded(df, money_decimals).write_json() + "\n"


def to_jsonl(df: pl.DataFrame, money_decimals: int) -> str:
    """One JSON object per line."""
    return rounded(df, money_decimals).write_ndjson()


def dumps(obj: Any) -> str:
    """Deterministic JSON of a nested object (sections of report/predict/check)."""
    return json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False, default=_json_value) + "\n"


def to_markdown(df: pl.DataFrame, money_decimals: int, *, escape: bool = False) -> str:
    """A GitHub-flavoured Markdown table; numbers right-aligned."""
    text = as_text(df, money_decimals, escape=escape)
    numeric = [t.is_numeric() for t in df.schema.values()]
    cell = lambda v: "" if v is None else str(v).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    lines = ["| " + " | ".join(cell(c) for c in df.columns) + " |"]
    lines.append("|" + "|".join("---:" if n else "---" for n in numeric) + "|")
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in text.iter_rows()]
    return "\n".join(lines) + "\n"


def render_frame(df: pl.DataFrame, fmt: str, money_decimals: int, *, escape: bool = True) -> str:
    """A frame in one text format."""
    if fmt == "csv":
        return to_csv(df, money_decimals, escape=escape)
    if fmt == "tsv":
        return to_csv(df, money_decimals, separator="\t", escape=escape)
    if fmt == "json":
        return to_json(df, money_decimals)
    if fmt == "jsonl":
        return to_jsonl(df, money_decimals)
    if fmt == "markdown":
        return to_markdown(df, money_decimals)
    raise ValueError(f"not a text format: {fmt}")


def parquet_bytes(df: pl.DataFrame, money_decimals: int) -> bytes:
    """Parquet with rounded floats and native types."""
    buf = io.BytesIO()
    rounded(df, money_decimals).write_parquet(buf, statistics=False)
    return buf.getvalue()


def emit(text_or_bytes: str | bytes, output: str | None, stdout: IO[str]) -> None:
    """Send data to -o PATH (atomically) or to stdout."""
    if output and output != "-":
        data = text_or_bytes.encode("utf-8") if isinstance(text_or_bytes, str) else text_or_bytes
        atomic_write(output, data)
        return
    if isinstance(text_or_bytes, bytes):
        buffer = getattr(stdout, "buffer", None)
        if buffer is None:
            raise UsageError("binary formats (parquet) need -o PATH here.")
        buffer.write(text_or_bytes)
        buffer.flush()
        return
    stdout.write(text_or_bytes)
    stdout.flush()


def write_sections(obj: Mapping[str, Any], output: str | None, stdout: IO[str]) -> None:
    """Write one JSON object (commands whose JSON has several sections)."""
    emit(dumps(obj), output, stdout)
