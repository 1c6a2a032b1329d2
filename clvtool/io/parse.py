"""Polars expressions that turn messy text cells into typed values; null means "could not parse".

Money: currency symbols or ISO codes, thousands separators, parentheses for negatives, an optional
decimal comma. Dates: ISO 8601 with or without a UTC offset, YYYYMMDD, or a configured strptime format;
offsets are converted to the configured time zone before the calendar day is taken.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

# A currency marker: a symbol (Unicode class Sc) or a three-letter code such as USD.
_CUR = r"(?:\p{Sc}|[A-Za-z]{3})"
_SIGN = r"[-+\u2212]"
# Digits with a correctly grouped thousands separator, or plain digits; then optional decimals.
_POINT_NUMBER = r"(?:\d{1,3}(?:[,'\u00a0 ]\d{3})+|\d+)(?:\.\d+)?|\.\d+"
_COMMA_NUMBER = r"(?:\d{1,3}(?:[.'\u00a0 ]\d{3})+|\d+)(?:,\d+)?|,\d+"


def _amount_pattern(number: str) -> str:
    # One sign at most, before or after a leading currency marker; a marker may also trail.
    lead = rf"(?:{_SIGN}\s*(?:{_CUR}\s*)?|{_CUR}\s*(?:{_SIGN}\s*)?)?"
    body = rf"{lead}(?:{number})(?:\s*{_CUR})?"
    return rf"^(?:{body}|\(\s*{_CUR}?\s*(?:{number})(?:\s*{_CUR})?\s*\))$"


def parse_amount(expr: pl.Expr, *, decimal_comma: bool = False) -> pl.Expr:
    """Parse money text to Float64 (null when unparseable); '(12.00)' and '-12' are negative.

    Plain numbers ('12.50', '-3') take a fast cast of the cell as it is. Only batches holding other text
    run the general parser (a when/then whose condition is false throughout skips its branch), which
    keeps clean files fast. Steps are fields of one struct, so each is evaluated once.
    """
    plain = r"^-?\d+$" if decimal_comma else r"^-?\d+(?:\.\d+)?$"  # no exponent, nan or inf
    # ASCII digits: a cell with other Unicode digits fails the cast anyway and takes the general path.
    ascii_plain = plain.replace(r"\d", "[0-9]")
    raw, fast = pl.field("raw"), pl.field("fast")
    steps = _steps(
        expr.cast(pl.String).alias("raw"),
        pl.when(raw.str.contains(ascii_plain)).then(raw.cast(pl.Float64, strict=False)).alias("fast"),
        pl.coalesce(
            fast,
            sparse(
                fast.is_null() & raw.is_not_null(),
                [raw],
                pl.Float64,
                lambda t: _general_amount(t, plain, decimal_comma),
            ),
        ).alias("value"),
    )
    return _named(steps.struct.field("value"), expr)


def _general_amount(text: pl.Expr, plain: str, decimal_comma: bool) -> pl.Expr:
    """Money text trimmed, then a plain number or the general parser."""
    trimmed, number, other = pl.field("trimmed"), pl.field("number"), pl.field("other")
    steps = _steps(
        text.str.strip_chars().alias("trimmed"),
        pl.when(trimmed.str.contains(plain)).then(trimmed.cast(pl.Float64, strict=False)).alias("number"),
        pl.when(number.is_null()).then(trimmed).alias("other"),
        _amount_magnitude(other, decimal_comma).alias("magnitude"),
        pl.coalesce(number, _parse_amount_text(other, pl.field("magnitude"), decimal_comma)).alias("value"),
    )
    return steps.struct.field("value")


def sparse(
    where: pl.Expr,
    inputs: list[pl.Expr],
    dtype: pl.DataType,
    compute: Callable[..., pl.Expr],
) -> pl.Expr:
    """compute(*inputs) on the rows where `where` holds, null elsewhere, at a cost that grows with those
    rows only: the rows are gathered, computed apart and scattered back. Batches without any such row
    skip the work entirely (a when/then whose condition is false throughout skips its branch).
    `compute` must work row by row.
    """
    names = [f"in{k}" for k in range(len(inputs))]
    packed = pl.struct(where.alias("where"), *(e.alias(n) for e, n in zip(inputs, names, strict=True)))

    def apply(batch: pl.Series) -> pl.Series:
        frame = batch.struct.unnest()
        rows = frame["where"].fill_null(False).arg_true()
        value = compute(*(pl.col(n) for n in names)).alias("out")
        if 2 * len(rows) > len(frame):  # mostly wanted: gathering would cost more than it saves
            return frame.select(value)["out"]
        out = pl.repeat(None, len(frame), dtype=dtype, eager=True)
        if len(rows):
            out = out.scatter(rows, frame.gather(rows).select(value)["out"])
        return out

    return pl.when(where).then(packed.map_batches(apply, return_dtype=dtype, is_elementwise=True))


def _steps(first: pl.Expr, *later: pl.Expr) -> pl.Expr:
    """A struct built field by field: each later expression sees the earlier fields via pl.field()."""
    out = pl.struct(first)
    for step in later:
        out = out.struct.with_fields(step)
    return out


def _named(result: pl.Expr, like: pl.Expr) -> pl.Expr:
    """`result` under the output name of `like` (the name a plain expression tree would have kept)."""
    name = like.meta.output_name(raise_if_undetermined=False)
    return result.alias(name) if name is not None else result


def _amount_magnitude(text: pl.Expr, decimal_comma: bool) -> pl.Expr:
    """The unsigned number in money text: symbols and thousands separators dropped."""
    digits = text.str.extract(r"([\d][\d.,'\u00a0 ]*|[.,]\d+)", 1).str.replace_all(r"['\u00a0 ]", "")
    if decimal_comma:
        digits = digits.str.replace_all(".", "", literal=True).str.replace(",", ".", literal=True)
    else:
        digits = digits.str.replace_all(",", "", literal=True)
    return digits.cast(pl.Float64, strict=False)


def _parse_amount_text(text: pl.Expr, magnitude: pl.Expr, decimal_comma: bool) -> pl.Expr:
    """The general money parser: validate the whole cell, then sign its magnitude."""
    pattern = _amount_pattern(_COMMA_NUMBER if decimal_comma else _POINT_NUMBER)
    valid = text.str.contains(pattern)
    negative = text.str.contains(r"^\(|-|\u2212")
    value = pl.when(negative).then(-magnitude).otherwise(magnitude)
    return pl.when(valid).then(value).otherwise(None)


def amount_from(expr: pl.Expr, dtype: pl.DataType, *, decimal_comma: bool) -> pl.Expr:
    """Money column of any input type to Float64."""
    if dtype.is_numeric():
        return expr.cast(pl.Float64)
    return parse_amount(expr, decimal_comma=decimal_comma)


def _naive_to_date(text: pl.Expr) -> pl.Expr:
    """Local wall-clock date of 'YYYY-MM-DD[ HH:MM[:SS[.fff]]]' text, null when impossible."""
    return text.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False)


def parse_date(expr: pl.Expr, *, timezone: str = "UTC", fmt: str | None = None) -> pl.Expr:
    """Parse date or datetime text to the calendar Date in `timezone` (null when unparseable).

    Plain 'YYYY-MM-DD' takes a fast path on the cell as it is (the parser skips leading blanks and
    rejects trailing ones, so this equals parsing the trimmed cell); only batches holding other text run
    the general parser (see parse_amount).
    """
    text = expr.cast(pl.String)
    if fmt:
        return _parse_with_format(text.str.strip_chars(), fmt, timezone)
    raw, fast = pl.field("raw"), pl.field("fast")
    steps = _steps(
        text.alias("raw"),
        raw.str.to_date("%Y-%m-%d", strict=False).alias("fast"),
        pl.coalesce(
            fast,
            sparse(fast.is_null() & raw.is_not_null(), [raw], pl.Date, lambda t: _general_date(t, timezone)),
        ).alias("value"),
    )
    return _named(steps.struct.field("value"), expr)


def _general_date(text: pl.Expr, timezone: str) -> pl.Expr:
    """Date text trimmed, then a plain YYYY-MM-DD or the general parser."""
    trimmed, day = pl.field("trimmed"), pl.field("day")
    steps = _steps(
        text.str.strip_chars().alias("trimmed"),
        trimmed.str.to_date("%Y-%m-%d", strict=False).alias("day"),
        pl.when(day.is_null()).then(_iso_text(trimmed)).alias("iso"),
        pl.coalesce(day, _parse_iso_text(pl.field("iso"), timezone)).alias("value"),
    )
    return steps.struct.field("value")


def _parse_with_format(text: pl.Expr, fmt: str, timezone: str) -> pl.Expr:
    """A configured strptime format: with an offset, with a time of day, or a plain date."""
    if "%z" in fmt or "%#z" in fmt or "%:z" in fmt:
        moment = text.str.to_datetime(fmt, strict=False, time_zone="UTC")
        return moment.dt.convert_time_zone(timezone).dt.date()
    if any(tok in fmt for tok in ("%H", "%I", "%M", "%S", "%T", "%R")):
        return text.str.to_datetime(fmt, strict=False).dt.date()
    return text.str.to_date(fmt, strict=False)


def _iso_text(text: pl.Expr) -> pl.Expr:
    """Normalise ISO variants: '/' or '.' between date parts, 'T' separator, 'Z' / ' UTC' suffix."""
    return (
        text.str.replace(r"^(\d{4})[/.](\d{2})[/.](\d{2})", "$1-$2-$3")
        .str.replace(r"^(\d{4}-\d{2}-\d{2})[T ]", "$1 ")
        .str.replace(r"(?i)\s*(Z|UTC|GMT)$", "+00:00")
    )


def _parse_iso_text(iso: pl.Expr, timezone: str) -> pl.Expr:
    """The slow, general path of parse_date for text that is not a plain YYYY-MM-DD (after _iso_text)."""
    is_day = iso.str.contains(r"^\d{4}-\d{2}-\d{2}$")
    is_compact = iso.str.contains(r"^\d{8}$")
    has_offset = iso.str.contains(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}(:\d{2}(\.\d+)?)?\s*[+-]\d{2}:?\d{2}$")
    is_naive = iso.str.contains(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}(:\d{2}(\.\d+)?)?$")
    # Offsets: drop fractional seconds, add missing seconds, then parse with the offset.
    with_seconds = (
        iso.str.replace(r"(\d{2}:\d{2}:\d{2})\.\d+", "$1")
        .str.replace(r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2})(\s*[+-])", "$1:00$2")
        .str.replace(r"\s+([+-]\d{2}:?\d{2})$", "$1")
    )
    aware = (
        with_seconds.str.to_datetime("%Y-%m-%d %H:%M:%S%z", strict=False, time_zone="UTC")
        .dt.convert_time_zone(timezone)
        .dt.date()
    )
    naive_full = iso.str.replace(r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2})$", "$1:00").str.replace(r"\.\d+$", "")
    naive_time_ok = naive_full.str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False).is_not_null()
    return (
        pl.when(is_day)
        .then(iso.str.to_date("%Y-%m-%d", strict=False))
        .when(is_compact)
        .then(iso.str.to_date("%Y%m%d", strict=False))
        .when(has_offset)
        .then(aware)
        .when(is_naive & naive_time_ok)
        .then(_naive_to_date(iso))
        .otherwise(None)
    )


def date_from(expr: pl.Expr, dtype: pl.DataType, *, timezone: str, fmt: str | None) -> pl.Expr:
    """Date column of any input type (text, Date, Datetime with or without zone) to Date."""
    if dtype == pl.Date:
        return expr
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is not None:
            return expr.dt.convert_time_zone(timezone).dt.date()
        return expr.dt.date()
    if dtype.is_integer():
        # 20240131 as a number.
        return expr.cast(pl.String).str.to_date("%Y%m%d", strict=False)
    return parse_date(expr, timezone=timezone, fmt=fmt)


def plausible_date(expr: pl.Expr) -> pl.Expr:
    """Null out dates outside 1900–2199: typos and epoch-zero placeholders, not real orders."""
    year = expr.dt.year()
    return pl.when((year >= 1900) & (year < 2200)).then(expr).otherwise(None)


def text_cell(col: str) -> pl.Expr:
    """Trimmed text with empty strings as null."""
    t = pl.field("t")
    steps = _steps(
        pl.col(col).cast(pl.String).str.strip_chars().alias("t"),
        pl.when(t.str.len_bytes() > 0).then(t).alias("v"),
    )
    return steps.struct.field("v").alias(col)
