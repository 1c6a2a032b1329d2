"""Reading transaction files into the canonical frame (PRODUCT §3.1) with a full audit (§3.5).

Each file is scanned lazily once; parsing and the exclusion reason of every row are expressions in the
same plan, collected once. Used rows keep the canonical columns; excluded rows go to the audit.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from clvtool.config import InputSettings
from clvtool.errors import InputError, UsageError
from clvtool.io.audit import Audit, FileAudit, count_reasons
from clvtool.io.columns import resolve_mapping
from clvtool.io.parse import amount_from, date_from, plausible_date, text_cell
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
_EMPTY = "__clv_empty"
FILE = "__clv_file"  # index of the source file in the list read

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


def _canonical(
    source: Source,
    file_index: int,
    settings: InputSettings,
    keep_raw: bool,
) -> tuple[pl.LazyFrame, FileAudit]:
    lf, schema = scan_source(source)
    header = list(schema)
    mapping = resolve_mapping(
        header,
        settings.columns,
        TRANSACTION_ALIASES,
        [(CUSTOMER_ID, EMAIL), (DATE,), (AMOUNT,)],
        source=source.name,
        section="transactions",
    )
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
    ]
    cells = [pl.col(h).cast(pl.String) for h in header]
    # All cells in one string (nulls as NUL): its hash finds exact duplicates, in this file or
    # another, and it is blank exactly when every cell is null or blank.
    joined = pl.concat_str([c.fill_null("\x00") for c in cells], separator="\x1f")
    bookkeeping = [
        pl.lit(file_index, pl.UInt16).alias(FILE),
        _physical_line(joined, source.kind).alias(LINE),
        pl.col(EXTRA).is_not_null().alias(EXTRA),
        (joined.str.strip_chars("\x00\x1f \t\r\n").str.len_bytes() == 0).alias(_EMPTY),
        joined.hash(seed=7).alias(_KEY),
    ]
    raw = [pl.col(h).cast(pl.String).alias(f"{RAW_PREFIX}{h}") for h in header] if keep_raw else []
    out = lf.select(*cols, *bookkeeping, *raw).with_columns(plausible_date(pl.col(DATE)))
    return out, FileAudit(
        source.name, source.kind, source.delimiter if source.kind == "csv" else None, mapping, 0
    )


def _physical_line(joined: pl.Expr, kind: str) -> pl.Expr:
    """1-based line of each record in its file (header = line 1), counting newlines inside quotes."""
    record = pl.col(ROW).cast(pl.Int64) + 2
    if kind != "csv":
        return record
    inside = joined.str.count_matches("\n", literal=True).cast(pl.Int64)
    return record + inside.cum_sum() - inside


def _pre_reason(exclude_statuses: tuple[str, ...]) -> pl.Expr:
    """The first reason that excludes a row, before --as-of is known; null when usable."""
    return (
        pl.when(pl.col(_EMPTY))
        .then(pl.lit(Reason.EMPTY))
        .when(pl.col(EXTRA))
        .then(pl.lit(Reason.RAGGED))
        .when(pl.col(CUSTOMER_ID).is_null())
        .then(pl.lit(Reason.MISSING_IDENTITY))
        .when(pl.col(DATE).is_null())
        .then(pl.lit(Reason.BAD_DATE))
        .when(pl.col(AMOUNT).is_null() | ~pl.col(AMOUNT).is_finite())
        .then(pl.lit(Reason.BAD_AMOUNT))
        .when(pl.col(STATUS).is_in(list(exclude_statuses)).fill_null(False))
        .then(pl.lit(Reason.EXCLUDED_STATUS))
        .when(~pl.col(_KEY).is_first_distinct())
        .then(pl.lit(Reason.DUPLICATE))
        .otherwise(pl.lit(None, pl.String))
    )


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
    frames, files = [], []
    for i, src in enumerate(sources):
        lf, fa = _canonical(src, i, settings, keep_rejects)
        frames.append(lf)
        files.append(fa)
    how = "diagonal" if keep_rejects else "vertical"
    lf = pl.concat(frames, how=how) if len(frames) > 1 else frames[0]
    lf = lf.with_row_index(SEQ).with_columns(_pre_reason(settings.exclude_statuses).alias(REASON))
    try:
        df = lf.collect()
    except pl.exceptions.PolarsError as exc:
        raise InputError(_polars_message(exc, [s.name for s in sources])) from None

    usable_dates = df.filter(pl.col(REASON).is_null())[DATE]
    effective_as_of = as_of if as_of is not None else usable_dates.max()
    if effective_as_of is not None:
        df = df.with_columns(
            pl.when(pl.col(REASON).is_null() & (pl.col(DATE) > effective_as_of))
            .then(pl.lit(Reason.AFTER_AS_OF))
            .otherwise(pl.col(REASON))
            .alias(REASON)
        )
    per_file = df.group_by(FILE).len()
    rows_by_file = dict(zip(per_file[FILE].to_list(), per_file["len"].to_list(), strict=True))
    files = [
        FileAudit(f.name, f.kind, f.delimiter, f.mapping, int(rows_by_file.get(i, 0)))
        for i, f in enumerate(files)
    ]
    names = pl.Series([s.name for s in sources], dtype=pl.String)
    used_mask = pl.col(REASON).is_null()
    used = df.filter(used_mask).select(*CANONICAL_TYPES, SEQ, FILE, LINE)
    _check_currency(used, names)
    audit = Audit(
        input="transaction",
        files=files,
        rows_read=df.height,
        rows_used=used.height,
        excluded=count_reasons(df[REASON]),
        first_date=used[DATE].min(),
        last_date=used[DATE].max(),
        as_of=effective_as_of,
    )
    if keep_rejects:
        raw_cols = [c for c in df.columns if c.startswith(RAW_PREFIX)]
        audit.rejects = df.filter(~used_mask).select(
            pl.col(FILE)
            .cast(pl.Int64)
            .replace_strict(list(range(len(names))), names, return_dtype=pl.String)
            .alias(SOURCE),
            LINE,
            REASON,
            *raw_cols,
        )
    present = frozenset(name for fa in files for name in fa.mapping) | (
        {CUSTOMER_ID} if any(EMAIL in fa.mapping for fa in files) else frozenset()
    )
    return Transactions(used, audit, present, effective_as_of)


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
