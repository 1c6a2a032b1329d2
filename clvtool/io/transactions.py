"""Reading transaction files into the canonical frame (PRODUCT §3.1) with a full audit (§3.5).

Each file is scanned lazily once; parsing, a hash of the raw cells and the first exclusion reason of
every row (as a small code) are expressions in the same plan, collected once. Duplicates (by sorting the
hashes) and --as-of are settled on the collected codes. Used rows keep the canonical columns; excluded
rows go to the audit. Line numbers come from the row index unless quoted values hold newlines (told from
the file's bytes), and the original cells of rejected rows are read again only when asked for.
"""

from __future__ import annotations

import datetime as dt
import mmap
import operator
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import reduce
from typing import BinaryIO, TypeVar

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
_OFFSET = "__clv_offset"  # newlines inside quoted values before the row, in its file
FILE = "__clv_file"  # index of the source file in the list read
_CODES: tuple[str, ...] = ("", *Reason.ALL)
_BLANK = "\x00\x1f \t\r\n"  # what a row may hold and still count as empty
_CHUNK = 1 << 26  # bytes of a file looked at in one piece (a multiple of mmap.ALLOCATIONGRANULARITY)
_T = TypeVar("_T")

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

    frame: pl.DataFrame  # CANONICAL_TYPES columns + _seq, FILE, _line; one row per used row
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


_Scan = tuple[pl.LazyFrame, dict[str, pl.DataType], dict[str, str]]  # a file's scan, schema and mapping


def _mapping(source: Source, settings: InputSettings) -> _Scan:
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
    file_index: int | None,
    settings: InputSettings,
    fields: list[str],
) -> pl.LazyFrame:
    """One file's plan: the canonical `fields`, the duplicate key, _CODE and (if `file_index`) FILE.

    Line numbers are computed after the read, for the rows kept only.
    """
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
        *([pl.lit(file_index, pl.UInt16).alias(FILE)] if file_index is not None else []),
        pl.col(EXTRA).is_not_null().alias(EXTRA),
        # Exact copies of all raw cells (nulls apart from empty text), in this file or another: one
        # hash per cell, seeded by its position, combined (cheaper than hashing them as a struct).
        reduce(operator.xor, [c.hash(seed=7 + 1000 * j) for j, c in enumerate(cells)]).alias(_KEY),
    ]
    return (
        lf.select(*cols, *bookkeeping, *raw_cells)
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
    several = len(sources) > 1
    frames = [
        _canonical(lf, schema, mapping, i if several else None, settings, fields)
        for i, (lf, schema, mapping) in enumerate(scans)
    ]
    lf = pl.concat(frames) if several else frames[0]
    source_names = [s.name for s in sources]
    try:
        df = lf.with_row_index(SEQ).collect()
        rows = np.bincount(df[FILE].to_numpy(), minlength=len(sources)) if several else np.array([df.height])
        offsets = _line_offsets(sources, rows)
    except pl.exceptions.PolarsError as exc:
        raise InputError(_polars_message(exc, source_names)) from None
    # From here on the frame is only taken apart into Series, or read by the streaming engine: its
    # columns are chunked unevenly, and an eager select or filter would first copy each into one chunk.
    codes = df.drop_in_place(_CODE).to_numpy().copy()
    _mark_duplicates(df.drop_in_place(_KEY), codes)
    if as_of is not None:
        later = (df[DATE] > as_of).fill_null(False).to_numpy()
        codes[later & (codes == 0)] = _CODES.index(Reason.AFTER_AS_OF)
        effective_as_of = as_of
    else:  # the last usable date: no usable row is after it
        effective_as_of = df[DATE].filter(pl.Series(codes == 0)).max() if codes.any() else df[DATE].max()
    counts = np.bincount(codes, minlength=len(_CODES)) if codes.any() else [len(codes)]
    excluded = {reason: int(n) for reason, n in zip(_CODES[1:], counts[1:], strict=False) if n}
    rows_used = int(counts[0])

    starts = np.concatenate([[0], np.cumsum(rows)[:-1]]).tolist()
    line = pl.col(SEQ).cast(pl.Int64) + 2
    file = pl.col(FILE) if several else pl.lit(0, pl.UInt16)
    if several:
        line = line - pl.col(FILE).replace_strict(list(range(len(sources))), starts, return_dtype=pl.Int64)
    if offsets is not None:  # some values hold newlines
        df.hstack([offsets.alias(_OFFSET)], in_place=True)
        line = line + pl.col(_OFFSET)
    bookkeeping = [c for c in (SEQ, FILE, _OFFSET) if c in df.columns]
    rejects = None
    if keep_rejects:
        rejects = (
            pl.DataFrame([*(df[c] for c in bookkeeping), pl.Series(_CODE, codes)])
            .lazy()
            .filter(pl.col(_CODE) != 0)
            .select(
                file.cast(pl.Int64)
                .replace_strict(list(range(len(sources))), source_names, return_dtype=pl.String)
                .alias(SOURCE),
                line.alias(LINE),
                pl.col(_CODE)
                .replace_strict(list(range(1, len(_CODES))), list(_CODES[1:]), return_dtype=pl.String)
                .alias(REASON),
            )
            .collect(engine="streaming")
        )
    kept = [df.drop_in_place(c) for c in (*fields, *bookkeeping)]
    del df
    if rows_used < len(codes):
        kept = _filter_releasing(kept, codes == 0)
    # Fields no file provides: a constant null column costs no memory per row.
    missing = [pl.lit(None, dtype).alias(f) for f, dtype in CANONICAL_TYPES.items() if f not in fields]
    used = (
        pl.DataFrame(kept)
        .lazy()
        .with_columns(*missing)
        .select(*CANONICAL_TYPES, SEQ, file.alias(FILE), line.alias(LINE))
        .collect(engine="streaming")
    )
    del kept
    # The streaming engine leaves hundreds of small chunks. Gathers from a column are several times
    # faster on one chunk: the columns that per-customer results are gathered from get one.
    used = used.with_columns(used[c].rechunk() for c in (CUSTOMER_ID, CHANNEL))
    if rejects is not None:  # the rows read again once the others are freed
        try:
            rejects.hstack(_raw_cells(np.flatnonzero(codes), scans, starts), in_place=True)
        except pl.exceptions.PolarsError as exc:
            raise InputError(_polars_message(exc, source_names)) from None
    files = [
        FileAudit(src.name, src.kind, src.delimiter if src.kind == "csv" else None, mapping, int(rows[i]))
        for i, (src, (_, _, mapping)) in enumerate(zip(sources, scans, strict=True))
    ]
    _check_currency(used, pl.Series(source_names, dtype=pl.String))
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


def _filter_releasing(columns: list[pl.Series], keep: np.ndarray) -> list[pl.Series]:
    """The rows where `keep` holds, of each column (emptying `columns`).

    Chunk by chunk, each chunk released once filtered: the rows are never held twice, and the memory
    freed is the right size to hold the next filtered chunks.
    """
    out = []
    while columns:
        chunks = columns.pop().get_chunks()
        parts, end = [], len(keep)
        while chunks:
            chunk = chunks.pop()
            parts.append(chunk.filter(pl.Series(keep[end - len(chunk) : end])))
            end -= len(chunk)
        out.append(pl.concat(parts[::-1], rechunk=False))
    return out[::-1]


def _mark_duplicates(keys: pl.Series, codes: np.ndarray) -> None:
    """Code rows that repeat an earlier row's raw cells as duplicates (unless already excluded)."""
    later = _repeated_rows(keys)
    codes[later[codes[later] == 0]] = _CODES.index(Reason.DUPLICATE)


def _raw_cells(rows: np.ndarray, scans: list[_Scan], starts: list[int]) -> pl.DataFrame:
    """The original cells ('~' + header) of the rows at positions `rows`, in order: the files are read
    again for them (only the rejected rows need them, and there are usually few)."""
    parts = []
    for (lf, schema, _), start, end in zip(scans, starts, [*starts[1:], None], strict=True):
        names = [f"{RAW_PREFIX}{h}" for h in schema]
        mine = rows[(rows >= start) & (rows < end if end is not None else True)] - start
        if not len(mine):
            parts.append(pl.DataFrame(schema=dict.fromkeys(names, pl.String)))
            continue
        parts.append(
            lf.filter(pl.col(ROW).is_in(pl.Series(mine, dtype=pl.UInt32).implode()))
            .select(pl.col(h).cast(pl.String).alias(n) for h, n in zip(schema, names, strict=True))
            .collect()
        )
    return pl.concat(parts, how="diagonal")


def _repeated_rows(keys: pl.Series) -> np.ndarray:
    """Positions whose key appeared at an earlier position (what ~is_first_distinct() marks).

    A sort finds the repeated keys far faster than a hash set over every row; only rows holding one of
    them then need the order-aware test.
    """
    ordered = keys.to_numpy(writable=True)  # a copy, sorted in place
    ordered.sort()
    same = ordered[1:] == ordered[:-1]
    if not same.any():
        return np.empty(0, dtype=np.int64)
    repeated = np.unique(ordered[1:][same])
    del ordered, same
    if len(repeated) * 8 > len(keys):  # mostly copies: the plain test is as cheap
        return np.flatnonzero(~keys.is_first_distinct().to_numpy())
    where = keys.is_in(pl.Series(repeated).implode()).arg_true()
    first = keys.gather(where).is_first_distinct()
    return where.filter(~first).to_numpy().astype(np.int64)


def _line_offsets(sources: list[Source], rows: np.ndarray) -> pl.Series | None:
    """Per row, the newlines inside quoted values before it in its file; None when there are none.

    A row's line is its record number + 2 unless values hold newlines: detected from the file's bytes
    (no quote character at all, or exactly one newline per record), else the file is scanned again to
    count them the way the cells hold them (rare).
    """
    offsets = []
    for src, n in zip(sources, rows, strict=True):
        if src.kind != "csv" or n == 0 or _one_line_per_record(src.data, int(n)):
            offsets.append(None)
        else:
            offsets.append(_newlines_before(src))
    if all(o is None for o in offsets):
        return None
    return pl.concat(
        [
            o if o is not None else pl.zeros(int(n), pl.Int64, eager=True)
            for o, n in zip(offsets, rows, strict=True)
        ]
    )


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
        size = os.fstat(fh.fileno()).st_size
        if not any(_windows(fh, size, lambda window: window.find(b'"') >= 0)):
            return True
        newlines = sum(_windows(fh, size, lambda window: _count_newlines([window])))
        fh.seek(size - 1)
        final_newline = fh.read(1) == b"\n"
    return newlines == records + final_newline


def _windows(fh: BinaryIO, size: int, look: Callable[[mmap.mmap], _T]) -> Iterator[_T]:
    """look() at each _CHUNK of the file mapped in turn (a whole-file map would all count as resident
    memory; reading copies)."""
    for offset in range(0, size, _CHUNK):
        with mmap.mmap(
            fh.fileno(), min(_CHUNK, size - offset), offset=offset, access=mmap.ACCESS_READ
        ) as window:
            yield look(window)


def _count_newlines(chunks: Iterable[bytes | memoryview]) -> int:
    return sum(int(np.count_nonzero(np.frombuffer(chunk, dtype=np.uint8) == 10)) for chunk in chunks)


def _check_currency(used: pl.DataFrame, names: pl.Series) -> None:
    """One currency per run: name the currencies found, and the files holding the minority ones."""
    # Frames of the columns needed only: a filter of the whole frame would copy every column.
    currency = pl.DataFrame(used[CURRENCY])
    counts = currency.filter(pl.col(CURRENCY).is_not_null()).group_by(CURRENCY).len().sort(["len", CURRENCY])
    if counts.height <= 1:
        return
    found = ", ".join(f"{c} ({n:,} rows)" for c, n in counts.sort(CURRENCY).iter_rows())
    minority = counts[CURRENCY][0]
    where = pl.DataFrame([used[c].rechunk() for c in (CURRENCY, FILE, LINE)])
    first = where.filter(pl.col(CURRENCY) == minority).sort(FILE, LINE).row(0, named=True)
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
