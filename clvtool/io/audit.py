"""The data-quality audit (PRODUCT §3.5): every row read ends in exactly one bucket."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import polars as pl

from clvtool.io.schema import LINE, RAW_PREFIX, REASON, SOURCE, Reason


@dataclass(frozen=True)
class FileAudit:
    """What was read from one file and how its columns were mapped."""

    name: str
    kind: str
    delimiter: str | None
    mapping: dict[str, str]  # canonical name -> file column
    rows: int


@dataclass
class Audit:
    """Row accounting of one input: rows read = rows used + rows excluded, always."""

    input: str  # "transaction", "spend", "customer-table": names the rows in messages
    files: list[FileAudit] = field(default_factory=list)
    rows_read: int = 0
    rows_used: int = 0
    excluded: dict[str, int] = field(default_factory=dict)  # reason -> rows, in Reason.ALL order
    first_date: dt.date | None = None
    last_date: dt.date | None = None
    as_of: dt.date | None = None
    rejects: pl.DataFrame | None = None  # excluded rows: _source, _line, _reason, original cells
    notes: list[str] = field(default_factory=list)  # collapsed duplicates, hints, ...

    @property
    def rows_excluded(self) -> int:
        return sum(self.excluded.values())

    def reconciles(self) -> bool:
        return self.rows_read == self.rows_used + self.rows_excluded

    def summary_line(self) -> str:
        """One line for stderr: '12 of 6,931 transaction rows excluded: 8 after_as_of, 4 ...'."""
        parts = ", ".join(f"{n:,} {reason}" for reason, n in self.excluded.items() if n)
        return (
            f"{self.rows_excluded:,} of {self.rows_read:,} {self.input} rows excluded: {parts}"
            " (--rejects PATH writes them; `clvtool check` explains)"
        )

    def counts_frame(self) -> pl.DataFrame:
        """The buckets as a small frame: bucket, rows, meaning."""
        buckets = [("used", self.rows_used, "rows that enter the metrics")]
        buckets += [(r, n, Reason.HELP.get(r, "")) for r, n in self.excluded.items()]
        return pl.DataFrame(
            buckets,
            schema={"bucket": pl.String, "rows": pl.Int64, "meaning": pl.String},
            orient="row",
        )


def count_reasons(reasons: pl.Series) -> dict[str, int]:
    """Counts of non-null reasons, in the fixed order of Reason.ALL."""
    counts = reasons.drop_nulls().value_counts()
    found = dict(zip(counts[reasons.name].to_list(), counts["count"].to_list(), strict=True))
    ordered = {r: int(found.pop(r)) for r in Reason.ALL if r in found}
    ordered.update({r: int(n) for r, n in sorted(found.items())})
    return ordered


def rejects_for_output(rejects: pl.DataFrame) -> pl.DataFrame:
    """Rejected rows for --rejects: file, line, reason, then the original cells under their headers."""
    raw = [c for c in rejects.columns if c.startswith(RAW_PREFIX)]
    headers = [c[len(RAW_PREFIX) :] for c in raw]
    names = ("file", "line", "reason")
    if set(names) & set(headers):
        names = tuple(f"clvtool_{n}" for n in names)
    other = [c for c in rejects.columns if c not in (SOURCE, LINE, REASON, *raw)]
    return rejects.select(
        pl.col(SOURCE).alias(names[0]),
        pl.col(LINE).alias(names[1]),
        pl.col(REASON).alias(names[2]),
        *other,
        *[pl.col(c).alias(h) for c, h in zip(raw, headers, strict=True)],
    ).sort(names[0], names[1], maintain_order=True)
