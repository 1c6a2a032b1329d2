"""Marketing spend (PRODUCT §3.2): date (a day or a month), channel, spend, optional campaign, currency.

Unparseable or missing cells are excluded and counted like transaction rows; negative spend and
conflicting duplicates are errors naming the rows; identical duplicates collapse and are counted.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from clvtool.config import InputSettings
from clvtool.errors import InputError
from clvtool.io.audit import Audit, count_reasons
from clvtool.io.parse import amount_from, date_from, text_cell
from clvtool.io.schema import CURRENCY, LINE, REASON, SOURCE, Reason
from clvtool.io.sources import EXTRA
from clvtool.io.tables import collect_table, open_mapped

SPEND_DATE = "date"
SPEND_CHANNEL = "channel"
SPEND = "spend"
CAMPAIGN = "campaign"

SPEND_ALIASES: dict[str, tuple[str, ...]] = {
    SPEND_DATE: ("date", "day", "month", "period", "week", "reporting_starts", "start_date", "date_start"),
    SPEND_CHANNEL: ("channel", "source", "platform", "network", "utm_source", "marketing_channel", "medium"),
    SPEND: ("spend", "cost", "amount_spent", "amount", "spent", "ad_spend", "budget", "cost_usd"),
    CAMPAIGN: ("campaign", "campaign_name", "ad_campaign"),
    CURRENCY: ("currency", "currency_code"),
}


@dataclass
class Spend:
    """Usable spend rows and the audit of the file."""

    frame: pl.DataFrame  # date (Date), channel (as written, trimmed), campaign, spend (Float64), currency
    audit: Audit
    currency: str | None


def _spend_date(expr: pl.Expr, dtype: pl.DataType, settings: InputSettings) -> pl.Expr:
    """A day, or a month written 'YYYY-MM' / 'YYYY/MM' (taken as its first day)."""
    day = date_from(expr, dtype, timezone=settings.timezone, fmt=settings.date_format)
    if dtype != pl.String:
        return day
    month = (
        expr.str.strip_chars()
        .str.replace(r"^(\d{4})[-/](\d{1,2})$", "$1-$2-01")
        .str.to_date("%Y-%m-%d", strict=False)
    )
    return pl.coalesce(day, month)


def load_spend(path: str, settings: InputSettings) -> Spend:
    """Read, parse and audit one marketing-spend file."""
    table = open_mapped(
        path, settings, SPEND_ALIASES, [(SPEND_DATE,), (SPEND_CHANNEL,), (SPEND,)], section="spend"
    )
    m, schema = table.mapping, table.schema
    frame = table.frame.select(
        _spend_date(pl.col(m[SPEND_DATE]), schema[m[SPEND_DATE]], settings).alias(SPEND_DATE),
        text_cell(m[SPEND_CHANNEL]).alias(SPEND_CHANNEL),
        (text_cell(m[CAMPAIGN]) if CAMPAIGN in m else pl.lit(None, pl.String)).alias(CAMPAIGN),
        amount_from(pl.col(m[SPEND]), schema[m[SPEND]], decimal_comma=settings.decimal_comma).alias(SPEND),
        (text_cell(m[CURRENCY]).str.to_uppercase() if CURRENCY in m else pl.lit(None, pl.String)).alias(
            CURRENCY
        ),
        table.line(),
        pl.all_horizontal([pl.col(c).is_null() for c in schema]).alias("__empty"),
        pl.col(EXTRA).is_not_null().alias("__ragged"),
    )
    df = collect_table(frame, table.source)
    name = table.source.name
    # Duplicates are judged on the matching key: channel names compare case-insensitively, trimmed.
    key = [SPEND_DATE, "__channel_key", CAMPAIGN]
    reason = (
        pl.when(pl.col("__empty"))
        .then(pl.lit(Reason.EMPTY))
        .when(pl.col("__ragged"))
        .then(pl.lit(Reason.RAGGED))
        .when(pl.col(SPEND_CHANNEL).is_null())
        .then(pl.lit(Reason.MISSING_CHANNEL))
        .when(pl.col(SPEND_DATE).is_null())
        .then(pl.lit(Reason.BAD_DATE))
        .when(pl.col(SPEND).is_null() | ~pl.col(SPEND).is_finite())
        .then(pl.lit(Reason.BAD_AMOUNT))
        .otherwise(None)
    )
    df = df.with_columns(
        reason.alias(REASON),
        pl.lit(name).alias(SOURCE),
        pl.col(SPEND_CHANNEL).str.to_lowercase().alias("__channel_key"),
    )
    valid = df.filter(pl.col(REASON).is_null())
    negative = valid.filter(pl.col(SPEND) < 0)
    if negative.height:
        row = negative.row(0, named=True)
        raise InputError(
            f"line {row[LINE]}: negative spend {row[SPEND]:.2f} for {row[SPEND_CHANNEL]} on {row[SPEND_DATE]}; "
            "spend must be zero or more (put refunds or credits into the month they reduce).",
            source=name,
        )
    # Exact repeats of (date, channel, campaign, spend) collapse; the same key with another amount conflicts.
    exact = pl.struct(*key, SPEND, CURRENCY).is_first_distinct()
    df = df.with_columns(
        pl.when(pl.col(REASON).is_null() & ~exact)
        .then(pl.lit(Reason.DUPLICATE))
        .otherwise(pl.col(REASON))
        .alias(REASON)
    )
    used = df.filter(pl.col(REASON).is_null())
    clash = used.filter(pl.struct(*key).is_duplicated()).sort(*key, LINE, nulls_last=True)
    if clash.height:
        first = clash.row(0, named=True)
        same = [pl.col(k).eq_missing(pl.lit(first[k], dtype=clash.schema[k])) for k in key]
        lines = clash.filter(pl.all_horizontal(same))[LINE].to_list()
        campaign = f", campaign {first[CAMPAIGN]}" if first[CAMPAIGN] else ""
        raise InputError(
            f"lines {', '.join(map(str, lines))}: different spend for {first[SPEND_CHANNEL]} on "
            f"{first[SPEND_DATE]}{campaign}; keep one row per date, channel and campaign (or add a campaign column).",
            source=name,
        )
    currencies = sorted(c for c in used[CURRENCY].unique().to_list() if c is not None)
    if len(currencies) > 1:
        raise InputError(
            f"spend mixes currencies {', '.join(currencies)}; convert it to one currency first.", source=name
        )
    audit = Audit(
        input="spend",
        files=[table.file_audit(df.height)],
        rows_read=df.height,
        rows_used=used.height,
        excluded=count_reasons(df[REASON]),
        first_date=used[SPEND_DATE].min(),
        last_date=used[SPEND_DATE].max(),
    )
    if int((df[REASON] == Reason.DUPLICATE).sum()):
        audit.notes.append("identical spend rows were collapsed into one (counted as duplicate_row)")
    audit.rejects = df.filter(pl.col(REASON).is_not_null()).select(
        SOURCE, LINE, REASON, SPEND_DATE, SPEND_CHANNEL, CAMPAIGN, SPEND
    )
    return Spend(
        used.select(SPEND_DATE, SPEND_CHANNEL, CAMPAIGN, SPEND, CURRENCY),
        audit,
        currencies[0] if currencies else None,
    )
