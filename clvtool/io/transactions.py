"""Reading transaction files into the canonical frame (PRODUCT §3.1) with a full audit (§3.5).

Each file is scanned lazily once; parsing and the exclusion reason of every row are expressions in the
same plan, collected once. Used rows keep the canonical columns; excluded rows go to the audit.
"""

from __future__ import annotations

import datetime as dt
import mmap
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import polars as pl

from clvtool.config import InputSettings
from clvtool.errors import InputError, UsageError
from clvtool.io.audit import Audit, FileAudit
from clvtool.io.columns import resolve_mapping
from clvtool.io.parse import amount_from, date_from, plausible_date, sparse, text_cell
from clvtool.io.schema import (
    AMOUNT,
    CHANNEL,
    COST,
    CURRENCY,
    CUSTOMER_ID,
    DATE,
    EMAIL,
    LINE,
    ORDER_ID,
    RAW_PREFIX,
    REASON,
    SEQ,
    SOURCE,
    STATUS,
    TRANSACTION_ALIASES,
    Reason,
)
from clvtool.io.sources import EXTRA, ROW, Source, expand_paths, open_source, scan_source

_KEY = "__clv_key"  # hash of the row's raw cells, for exact duplicates
_CODE = "__clv_code"  # 0 for a used row, else the index of its exclusion reason in _CODES
_CELL = "__clv_cell"  # raw cells by position, while the empty-row test needs them
FILE = "__clv_file"  # index of the source file in the list read
_CODES: tuple[str, ...] = ("", *Reason.ALL)
_BLANK = "\x00\x1f \t\r\n"  # what a row may hold and still count as empty
_CHUNK = 1 << 24

CANONICAL_TYPES: dict[str, pl.DataType] = {
    CUSTOMER_ID: pl.String(),
    DATE: pl.Date(),
    AMOUNT: pl.Float64(),
    ORDER_ID: pl.String(),
    CHANNEL: pl.String(),
    COST: pl.Float64(),
    STATUS: pl.String(),
    CURRENCY: pl.String(),
}


@dataclass
class Transactions:
    """Used rows in canonical columns, plus the audit of everything read."""

    frame: pl.DataFrame  # CANONICAL_TYPES columns + _seq, _source, _line; one row per used row
    audit: Audit
    present: frozenset[str]  # canonical fields that some file actually provided
    as_of: dt.date | None


def parse_as_of(value: str | None) -> dt.date | None:
    """'today', an ISO date, or None (then the last transaction date is used)."""
    if value is None:
        return None
    if value.strip().lower() == "today":
        return dt.date.today()
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise UsageError(f"--as-of {value!r} is not a date; use YYYY-MM-DD or 'today'.") from None


def _mapping(source: Source, settings: InputSettings) -> tuple[pl.LazyFrame, dict[str, pl.DataType], dict]:
    lf, schema = scan_source(source)
    mapping = resolve_mapping(
        list(schema),
        settings.columns,
        TRANSACTION_ALIASES,
        [(CUSTOMER_ID, EMAIL), (DATE,), (AMOUNT,)],
        source=source.name,
        section="transactions",
    )
    return lf, schema, mapping


def _canonical(
    lf: pl.LazyFrame,
    schema: dict[str, pl.DataType],
    mapping: dict[str, str],
    file_index: int,
    settings: InputSettings,
    fields: list[str],
    keep_raw: bool,
) -> pl.LazyFrame:
    """One file's plan: the canonical `fields`, LINE (record + 2), FILE, the duplicate key and _CODE."""
    header = list(schema)
    tz, fmt, comma = settings.timezone, settings.date_format, settings.decimal_comma

    ident = text_cell(mapping[CUSTOMER_ID]) if CUSTOMER_ID in mapping else pl.lit(None, pl.String)
    if EMAIL in mapping:
        ident = pl.coalesce(ident, text_cell(mapping[EMAIL]).str.to_lowercase())
    exprs = {
        CUSTOMER_ID: ident,
        # The plausibility check runs on the materialised date below: applied here it would
        # evaluate the whole parse twice.
        DATE: date_from(pl.col(mapping[DATE]), schema[mapping[DATE]], timezone=tz, fmt=fmt),
        AMOUNT: amount_from(pl.col(mapping[AMOUNT]), schema[mapping[AMOUNT]], decimal_comma=comma),
        ORDER_ID: text_cell(mapping[ORDER_ID]) if ORDER_ID in mapping else None,
        CHANNEL: text_cell(mapping[CHANNEL]) if CHANNEL in mapping else None,
        COST: amount_from(pl.col(mapping[COST]), schema[mapping[COST]], decimal_comma=comma)
        if COST in mapping
        else None,
        STATUS: text_cell(mapping[STATUS]).str.to_lowercase() if STATUS in mapping else None,
        CURRENCY: text_cell(mapping[CURRENCY]).str.to_uppercase() if CURRENCY in mapping else None,
    }
    cols = [
        (e if e is not None else pl.lit(None)).cast(CANONICAL_TYPES[name]).alias(name)
        for name, e in exprs.items()
        if name in fields
    ]
    cells = [pl.col(h).cast(pl.String) for h in header]
    # The raw cells again under private names, for the empty-row test after the parse.
    raw_cells = [c.alias(f"{_CELL}{j}") for j, c in enumerate(cells)]
    bookkeeping = [
        pl.lit(file_index, pl.UInt16).alias(FILE),
        (pl.col(ROW).cast(pl.Int64) + 2).alias(LINE),  # corrected after the read if values hold newlines
        pl.col(EXTRA).is_not_null().alias(EXTRA),
        # Exact copies of all raw cells (nulls apart from empty text), in this file or another.
        pl.struct(cells).hash(seed=7).alias(_KEY),
    ]
    raw = [pl.col(h).cast(pl.String).alias(f"{RAW_PREFIX}{h}") for h in header] if keep_raw else []
    return (
        lf.select(*cols, *bookkeeping, *raw_cells, *raw)
        .with_columns(plausible_date(pl.col(DATE)))
        .with_columns(_pre_code(len(header), settings.exclude_statuses, STATUS in mapping).alias(_CODE))
        .drop(EXTRA, *(f"{_CELL}{j}" for j in range(len(header))))
    )


def _is_empty(n_cells: int) -> pl.Expr:
    """Every raw cell null or blank (spaces, tabs, line ends, NUL or unit separators only).

    A blank date cell never parses, so only rows without a date need the test (see parse.sparse).
    """
    cells = [pl.col(f"{_CELL}{j}") for j in range(n_cells)]

    def blank(*cells: pl.Expr) -> pl.Expr:
        return pl.all_horizontal(
            [c.is_null() | (c.str.strip_chars(_BLANK).str.len_bytes() == 0) for c in cells]
        )

    return sparse(pl.col(DATE).is_null(), cells, pl.Boolean(), blank).fill_null(False)


def _pre_code(n_cells: int, exclude_statuses: tuple[str, ...], has_status: bool) -> pl.Expr:
    """The first reason that excludes a row (as its _CODE), before duplicates and --as-of are known."""
    chain = (
        pl.when(_is_empty(n_cells))
        .then(_code(Reason.EMPTY))
        .when(pl.col(EXTRA))
        .then(_code(Reason.RAGGED))
        .when(pl.col(CUSTOMER_ID).is_null())
        .then(_code(Reason.MISSING_IDENTITY))
        .when(pl.col(DATE).is_null())
        .then(_code(Reason.BAD_DATE))
        .when(pl.col(AMOUNT).is_null() | ~pl.col(AMOUNT).is_finite())
        .then(_code(Reason.BAD_AMOUNT))
    )
    if has_status:
        chain = chain.when(pl.col(STATUS).is_in(list(exclude_statuses)).fill_null(False)).then(
            _code(Reason.EXCLUDED_STATUS)
        )
    return chain.otherwise(pl.lit(0, pl.UInt8))


def _code(reason: str) -> pl.Expr:
    return pl.lit(_CODES.index(reason), pl.UInt8)


def load_transactions(
    paths: list[str],
    settings: InputSettings,
    *,
    as_of: dt.date | None = None,
    keep_rejects: bool = False,
) -> Transactions:
    """Read, parse and audit transaction files. Fatal problems raise InputError naming the file."""
    names = expand_paths(paths)
    if names.count("-") > 1:
        raise UsageError("'-' (stdin) can be given only once.")
    sources = [open_source(n, encoding=settings.encoding, delimiter=settings.delimiter) for n in names]
    scans = [_mapping(src, settings) for src in sources]
    # Fields no file provides are added after the read as constant nulls (no memory per row).
    fields = [
        f for f in CANONICAL_TYPES if f in (CUSTOMER_ID, DATE, AMOUNT) or any(f in m for _, _, m in scans)
    ]
    frames = [
        _canonical(lf, schema, mapping, i, settings, fields, keep_rejects)
        for i, (lf, schema, mapping) in enumerate(scans)
    ]
    how = "diagonal" if keep_rejects else "vertical"
    lf = pl.concat(frames, how=how) if len(frames) > 1 else frames[0]
    lf = lf.with_row_index(SEQ)
    source_names = [s.name for s in sources]
    try:
        df = lf.collect()
        rows = np.bincount(df[FILE].to_numpy(), minlength=len(sources))[: len(sources)]
        df = _fix_lines(df, sources, rows)
    except pl.exceptions.PolarsError as exc:
        raise InputError(_polars_message(exc, source_names)) from None

    df = _mark_duplicates(df)
    usable_dates = df.select(pl.col(DATE).filter(pl.col(_CODE) == 0).max()).item()
    effective_as_of = as_of if as_of is not None else usable_dates
    if effective_as_of is not None:
        df = df.with_columns(
            pl.when((pl.col(_CODE) == 0) & (pl.col(DATE) > effective_as_of))
            .then(_code(Reason.AFTER_AS_OF))
            .otherwise(pl.col(_CODE))
            .alias(_CODE)
        )
    files = [
        FileAudit(src.name, src.kind, src.delimiter if src.kind == "csv" else None, mapping, int(rows[i]))
        for i, (src, (_, _, mapping)) in enumerate(zip(sources, scans, strict=True))
    ]
    counts = np.bincount(df[_CODE].to_numpy(), minlength=len(_CODES))
    excluded = {reason: int(counts[k]) for k, reason in enumerate(_CODES) if k and counts[k]}
    rows_used = int(counts[0])
    names_series = pl.Series(source_names, dtype=pl.String)
    rejects = None
    if keep_rejects:
        raw_cols = [c for c in df.columns if c.startswith(RAW_PREFIX)]
        rejects = df.filter(pl.col(_CODE) != 0).select(
            pl.col(FILE)
            .cast(pl.Int64)
            .replace_strict(list(range(len(names_series))), names_series, return_dtype=pl.String)
            .alias(SOURCE),
            LINE,
            pl.col(_CODE)
            .replace_strict(list(range(1, len(_CODES))), list(_CODES[1:]), return_dtype=pl.String)
            .alias(REASON),
            *raw_cols,
        )
    missing = [pl.lit(None, CANONICAL_TYPES[f]).alias(f) for f in CANONICAL_TYPES if f not in fields]
    kept = df.select(*fields, SEQ, FILE, LINE, _CODE)
    del df
    if rows_used < kept.height:
        kept = kept.filter(pl.col(_CODE) == 0)
    used = kept.with_columns(*missing).select(*CANONICAL_TYPES, SEQ, FILE, LINE)
    del kept
    _check_currency(used, names_series)
    audit = Audit(
        input="transaction",
        files=files,
        rows_read=int(rows.sum()),
        rows_used=rows_used,
        excluded=excluded,
        first_date=used[DATE].min(),
        last_date=used[DATE].max(),
        as_of=effective_as_of,
        rejects=rejects,
    )
    present = frozenset(name for fa in files for name in fa.mapping) | (
        {CUSTOMER_ID} if any(EMAIL in fa.mapping for fa in files) else frozenset()
    )
    return Transactions(used, audit, present, effective_as_of)


def _mark_duplicates(df: pl.DataFrame) -> pl.DataFrame:
    """Code rows that repeat an earlier row's raw cells as duplicates (unless already excluded)."""
    keys = df[_KEY]
    df = df.drop(_KEY)
    later = _repeated_rows(keys)
    if not len(later):
        return df
    codes = df[_CODE].to_numpy().copy()
    hit = later[codes[later] == 0]
    codes[hit] = _CODES.index(Reason.DUPLICATE)
    return df.with_columns(pl.Series(_CODE, codes, dtype=pl.UInt8))


def _repeated_rows(keys: pl.Series) -> np.ndarray:
    """Positions whose key appeared at an earlier position (what ~is_first_distinct() marks).

    A sort finds the repeated keys far faster than a hash set over every row; only rows holding one of
    them then need the order-aware test.
    """
    values = keys.to_numpy()
    ordered = np.sort(values)
    same = ordered[1:] == ordered[:-1]
    if not same.any():
        return np.empty(0, dtype=np.int64)
    repeated = np.unique(ordered[1:][same])
    if len(repeated) * 8 > len(values):  # mostly copies: the plain test is as cheap
        return np.flatnonzero(~keys.is_first_distinct().to_numpy())
    where = keys.is_in(pl.Series(repeated).implode()).arg_true()
    first = keys.gather(where).is_first_distinct()
    return where.filter(~first).to_numpy().astype(np.int64)


def _fix_lines(df: pl.DataFrame, sources: list[Source], rows: np.ndarray) -> pl.DataFrame:
    """Count newlines inside quoted values into LINE, for the files that have any (rare).

    LINE is read as record + 2. That is the physical line unless a value holds a newline: detected
    from the file's bytes (no quote character at all, or exactly one newline per record), else the
    file is scanned again to count them the way the cells hold them.
    """
    offsets = []
    for src, n in zip(sources, rows, strict=True):
        if src.kind != "csv" or n == 0 or _one_line_per_record(src.data, int(n)):
            offsets.append(None)
        else:
            offsets.append(_newlines_before(src))
    if all(o is None for o in offsets):
        return df
    parts = [
        o if o is not None else pl.zeros(int(n), pl.Int64, eager=True)
        for o, n in zip(offsets, rows, strict=True)
    ]
    return df.with_columns(pl.col(LINE) + pl.concat(parts))


def _newlines_before(src: Source) -> pl.Series:
    """Per record, the newlines inside the values of the records before it in the file."""
    lf, schema = scan_source(src)
    inside = pl.sum_horizontal(
        [pl.col(h).cast(pl.String).str.count_matches("\n", literal=True).fill_null(0) for h in schema]
    ).cast(pl.Int64)
    return lf.select((inside.cum_sum() - inside).alias(LINE)).collect()[LINE]


def _one_line_per_record(data: str | bytes, records: int) -> bool:
    """True when no record of the file spans several lines: then line = record + 2.

    Without any quote character no value can hold a newline. Otherwise count the newlines: a record
    with a newline inside adds one, and nothing takes one away (blank lines are records too), so
    header + records newlines (one less without a final newline) means none.
    """
    if isinstance(data, bytes):
        if b'"' not in data:
            return True
        newlines = _count_newlines(data[i : i + _CHUNK] for i in range(0, len(data), _CHUNK))
        return newlines == records + (data[-1:] == b"\n")
    with open(data, "rb") as fh:
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            if mm.find(b'"') < 0:
                return True
            final_newline = mm[-1:] == b"\n"
        buffer = bytearray(_CHUNK)
        newlines = _count_newlines(memoryview(buffer)[:n] for n in iter(lambda: fh.readinto(buffer), 0))
    return newlines == records + final_newline


def _count_newlines(chunks: Iterable[bytes | memoryview]) -> int:
    return sum(int(np.count_nonzero(np.frombuffer(chunk, dtype=np.uint8) == 10)) for chunk in chunks)


def _check_currency(used: pl.DataFrame, names: pl.Series) -> None:
    """One currency per run: name the currencies found, and the files holding the minority ones."""
    counts = used.filter(pl.col(CURRENCY).is_not_null()).group_by(CURRENCY).len().sort(["len", CURRENCY])
    if counts.height <= 1:
        return
    found = ", ".join(f"{c} ({n:,} rows)" for c, n in counts.sort(CURRENCY).iter_rows())
    minority = counts[CURRENCY][0]
    first = used.filter(pl.col(CURRENCY) == minority).sort(FILE, LINE).row(0, named=True)
    where = f"{names[first[FILE]]} (line {first[LINE]}: {minority})"
    raise InputError(
        f"transactions mix currencies: {found}. clvtool computes in one currency; split the "
        "files by currency or convert the amounts first.",
        source=where,
    )


def _polars_message(exc: Exception, names: list[str]) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    where = names[0] if len(names) == 1 else ", ".join(names)
    if "utf-8" in text.lower() or "utf8" in text.lower():
        return (
            f"{where}: not valid UTF-8 text; set transactions.encoding (for example "
            "latin-1) to the file's encoding."
        )
    return f"{where}: cannot parse the file ({text}); check the delimiter and quoting."
