"""Finding and opening input files: paths, globs, '-' for stdin, gzip, Parquet, encodings.

A Source knows its display name, its format, and what to hand to Polars (a path when the file can be
scanned lazily as it is, bytes when it had to be decompressed or re-encoded first).
"""

from __future__ import annotations

import csv
import glob
import gzip
import io
import sys
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from clvtool.errors import InputError

HEAD_BYTES = 1 << 16
EXTRA = "__clv_extra"  # receives fields beyond the header: non-empty means a ragged row
ROW = "__clv_row"  # 0-based data row index
_DELIMITERS = (",", ";", "\t", "|")
_DELIMITER_NAMES = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}


@dataclass(frozen=True)
class Source:
    """One input file, ready to scan."""

    name: str  # as the user wrote it (or the glob match); used in every message
    kind: str  # "csv" or "parquet"
    data: str | bytes  # a path Polars can scan, or the whole (decoded, UTF-8) content
    delimiter: str = ","
    header: tuple[str, ...] = ()


def expand_paths(paths: list[str]) -> list[str]:
    """Expand globs (sorted, for deterministic order); '-' is kept for stdin."""
    out: list[str] = []
    for raw in paths:
        if raw == "-" or not any(ch in raw for ch in "*?["):
            out.append(raw)
            continue
        matches = sorted(glob.glob(raw, recursive=True))
        if not matches:
            raise InputError("no file matches this pattern; check the path.", source=raw)
        out.extend(matches)
    return out


def _read_head(name: str) -> bytes:
    path = Path(name)
    if not path.exists():
        raise InputError("file not found; check the path.", source=name)
    if path.is_dir():
        raise InputError("is a directory; name the files inside it (a glob such as dir/*.csv).", source=name)
    try:
        with path.open("rb") as fh:
            return fh.read(HEAD_BYTES)
    except OSError as exc:
        raise InputError(f"cannot be read ({exc.strerror}); check its permissions.", source=name) from None


def _decode(content: bytes, encoding: str, name: str, *, partial: bool) -> str:
    enc = encoding.lower().replace("_", "-")
    if enc in ("utf-8", "utf8", "utf-8-sig"):
        enc = "utf-8-sig"
    try:
        return content.decode(enc, errors="strict")
    except UnicodeDecodeError as exc:
        if partial and exc.start >= len(content) - 4:
            return content[: exc.start].decode(enc)
        raise InputError(
            f"byte {exc.start} is not valid {encoding}; set transactions.encoding "
            "(for example latin-1) to the file's encoding.",
            source=name,
        ) from None
    except LookupError:
        raise InputError(f"unknown encoding '{encoding}'; use utf-8 or latin-1.", source=name) from None


def sniff_delimiter(first_line: str) -> str:
    """The candidate delimiter that splits the header line into the most fields (default ',')."""
    counts = {}
    for d in _DELIMITERS:
        try:
            counts[d] = len(next(csv.reader([first_line], delimiter=d)))
        except (csv.Error, StopIteration):
            counts[d] = 1
    best = max(_DELIMITERS, key=lambda d: (counts[d], -_DELIMITERS.index(d)))
    return best if counts[best] > 1 else ","


def _header(text: str, name: str, delimiter: str | None) -> tuple[str, tuple[str, ...]]:
    first = text.split("\n", 1)[0].rstrip("\r")
    if not first.strip():
        raise InputError("the first line is empty; the file must start with a header row.", source=name)
    delim = delimiter or sniff_delimiter(first)
    try:
        row = next(csv.reader(io.StringIO(text), delimiter=delim))
    except (csv.Error, StopIteration):
        raise InputError(
            "cannot read the header row; check the delimiter and quoting.", source=name
        ) from None
    names = [h.strip() for h in row]
    seen: dict[str, int] = {}
    unique = []
    for i, h in enumerate(names):
        base = h or f"column_{i + 1}"
        n = seen.get(base, 0)
        seen[base] = n + 1
        unique.append(base if n == 0 else f"{base}_{n + 1}")
    return delim, tuple(unique)


def open_source(name: str, *, encoding: str = "utf-8", delimiter: str | None = None) -> Source:
    """Inspect one input and return how to scan it; every problem is an InputError naming it."""
    if delimiter:
        delimiter = _DELIMITER_NAMES.get(delimiter.lower(), delimiter)
        if len(delimiter) != 1:
            raise InputError(f"delimiter {delimiter!r} must be one character.", source=name)
    if name == "-":
        content: bytes | None = sys.stdin.buffer.read()
        head = content[:HEAD_BYTES]
        display = "<stdin>"
    else:
        head = _read_head(name)
        content = None
        display = name
    if not head:
        raise InputError("the file is empty; it needs at least a header row.", source=display)
    if head[:4] == b"PAR1":
        return Source(display, "parquet", name if content is None else content)
    if head[:2] == b"\x1f\x8b":
        try:
            raw = content if content is not None else Path(name).read_bytes()
            content = gzip.decompress(raw)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise InputError(
                f"broken gzip data ({exc}); re-export or re-compress it.", source=display
            ) from None
        head = content[:HEAD_BYTES]
        if not head:
            raise InputError("the file is empty; it needs at least a header row.", source=display)
    if b"\x00" in head:
        raise InputError("binary data, not a CSV/TSV/Parquet file; check the file.", source=display)
    text_head = _decode(head, encoding, display, partial=True)
    enc = encoding.lower().replace("_", "-")
    if enc not in ("utf-8", "utf8", "utf-8-sig"):
        raw = content if content is not None else Path(name).read_bytes()
        content = _decode(raw, encoding, display, partial=False).encode("utf-8")
    if delimiter is None and display.lower().removesuffix(".gz").endswith((".tsv", ".tab")):
        delimiter = "\t"
    delim, header = _header(text_head, display, delimiter)
    data: str | bytes = content if content is not None else name
    return Source(display, "csv", data, delimiter=delim, header=header)


def scan_source(source: Source) -> tuple[pl.LazyFrame, dict[str, pl.DataType]]:
    """Lazy scan of one source: its cells (text for CSV) plus a row index and an overflow column."""
    if source.kind == "parquet":
        lf = pl.scan_parquet(source.data)
        try:
            schema = dict(lf.collect_schema())
        except Exception as exc:  # polars raises several types for a broken file
            raise InputError(
                f"cannot read Parquet ({type(exc).__name__}); re-export it.", source=source.name
            ) from None
        lf = lf.with_row_index(ROW).with_columns(pl.lit(None, pl.String).alias(EXTRA))
        return lf, schema
    schema = {h: pl.String() for h in source.header}
    lf = pl.scan_csv(
        source.data,
        has_header=False,
        skip_rows=1,
        separator=source.delimiter,
        schema={**schema, EXTRA: pl.String()},
        missing_columns="insert",
        truncate_ragged_lines=True,
        raise_if_empty=False,
        row_index_name=ROW,
        infer_schema=False,
    )
    return lf, schema
