"""A frame whose rows are put in order only as they are read, a slice at a time.

A ranked table of millions of customers is the per-customer frame in another row order. Gathering every
column into that order at once doubles the table in memory, and on a fresh process the new pages cost
more than the gather itself. `OrderedFrame` keeps the frame as it is plus the row order, and the writers
gather and print one slice at a time, each slice reusing the memory of the one before.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import polars as pl


@dataclass(frozen=True)
class OrderedFrame:
    """The rows `order` of `base`, beside the `extra` columns (already in that order), as `columns`."""

    base: pl.DataFrame
    order: pl.Series  # row indices into base, one per row of the frame
    extra: pl.DataFrame  # one row per index in `order`
    columns: tuple[str, ...]

    @classmethod
    def of(cls, base: pl.DataFrame, order: pl.Series, extra: pl.DataFrame | None = None) -> OrderedFrame:
        extra = extra if extra is not None else pl.DataFrame()
        if extra.width and extra.height != order.len():
            raise ValueError("extra columns need one row per index")
        clash = set(base.columns) & set(extra.columns)
        if clash:
            raise ValueError(f"columns in both parts: {sorted(clash)}")
        return cls(base, order, extra, (*base.columns, *extra.columns))

    @property
    def height(self) -> int:
        return self.order.len()

    @property
    def schema(self) -> pl.Schema:
        both = self.base.schema | self.extra.schema
        return pl.Schema({c: both[c] for c in self.columns})

    def select(self, columns: Sequence[str]) -> OrderedFrame:
        """These columns only, in this order."""
        missing = [c for c in columns if c not in self.columns]
        if missing:
            raise pl.exceptions.ColumnNotFoundError(", ".join(missing))
        return OrderedFrame(self.base, self.order, self.extra, tuple(columns))

    def head(self, n: int) -> OrderedFrame:
        return OrderedFrame(self.base, self.order.head(n), self.extra.head(n), self.columns)

    def column(self, name: str) -> pl.Series:
        """One column in the frame's row order."""
        if name in self.extra.columns:
            return self.extra[name]
        return self.base[name].gather(self.order)

    def sort(self, column: str, *, descending: bool) -> OrderedFrame:
        """Rows listed by `column` (nulls last); stable, so rows that tie keep their order."""
        values = pl.DataFrame({"v": self.column(column)})
        perm = values.select(
            pl.arg_sort_by("v", descending=descending, nulls_last=True, maintain_order=True)
        ).to_series()
        extra = self.extra[perm] if self.extra.width else self.extra
        return OrderedFrame(self.base, self.order.gather(perm), extra, self.columns)

    def slice(self, offset: int, length: int) -> pl.DataFrame:
        """Rows offset .. offset + length as a plain frame."""
        rows = self.order.slice(offset, length)
        from_base = [c for c in self.columns if c in self.base.columns]
        from_extra = [c for c in self.columns if c in self.extra.columns]
        parts = []
        if from_base:
            parts.append(self.base.select(from_base)[rows])
        if from_extra:
            parts.append(self.extra.select(from_extra).slice(offset, length))
        if not parts:
            return pl.DataFrame()
        return pl.concat(parts, how="horizontal").select(self.columns)

    def slices(self, rows: int) -> Iterator[pl.DataFrame]:
        """The frame in slices of `rows` rows, first to last (one empty slice for an empty frame)."""
        yield self.slice(0, rows)
        for offset in range(rows, self.height, rows):
            yield self.slice(offset, rows)

    def collect(self) -> pl.DataFrame:
        """The whole frame at once."""
        return self.slice(0, self.height)

    def string_columns(self) -> list[pl.Series]:
        """The String columns, each holding at least the frame's values (for per-column tests only:
        rows of different columns do not line up)."""
        schema = self.schema
        return [
            self.extra[c] if c in self.extra.columns else self.base[c]
            for c in self.columns
            if schema[c] == pl.String
        ]
