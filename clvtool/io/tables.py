"""Shared first steps of the small-table readers (spend, customers): open, scan, map columns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import polars as pl

from clvtool.config import InputSettings
from clvtool.errors import InputError
from clvtool.io.audit import FileAudit
from clvtool.io.columns import resolve_mapping
from clvtool.io.schema import LINE
from clvtool.io.sources import ROW, Source, open_source, scan_source


@dataclass(frozen=True)
class MappedTable:
    """A lazily scanned file with its canonical-field -> column mapping."""

    source: Source
    frame: pl.LazyFrame  # the file's cells plus ROW
    schema: dict[str, pl.DataType]
    mapping: dict[str, str]

    def line(self) -> pl.Expr:
        """1-based line of each record (header = line 1)."""
        return (pl.col(ROW).cast(pl.Int64) + 2).alias(LINE)

    def file_audit(self, rows: int) -> FileAudit:
        delimiter = self.source.delimiter if self.source.kind == "csv" else None
        return FileAudit(self.source.name, self.source.kind, delimiter, self.mapping, rows)


def open_mapped(
    path: str,
    settings: InputSettings,
    aliases: Mapping[str, Sequence[str]],
    required: Sequence[Sequence[str]],
    *,
    section: str,
) -> MappedTable:
    """Open one file and resolve its column mapping; InputError names the file on any problem."""
    src = open_source(path, encoding=settings.encoding, delimiter=settings.delimiter)
    lf, schema = scan_source(src)
    mapping = resolve_mapping(
        list(schema), settings.columns, aliases, required, source=src.name, section=section
    )
    return MappedTable(src, lf, schema, mapping)


def collect_table(frame: pl.LazyFrame, source: Source) -> pl.DataFrame:
    """Collect a small table, turning Polars parse errors into one-line InputErrors."""
    try:
        return frame.collect()
    except pl.exceptions.PolarsError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(
            f"cannot parse the file ({first}); check the delimiter and quoting.", source=source.name
        ) from None
