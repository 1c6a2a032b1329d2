"""The optional customers table (PRODUCT §3.3): customer_id, channel, optional signup_date.

It overrides first-order attribution. Rows without an id are excluded and counted; identical repeats
collapse and are counted; one id with two different channels is an error naming the id.
"""

from __future__ import annotations

import polars as pl

from clvtool.config import InputSettings
from clvtool.errors import InputError
from clvtool.io.audit import Audit, count_reasons
from clvtool.io.parse import date_from, text_cell
from clvtool.io.schema import CHANNEL, CUSTOMER_ID, EMAIL, LINE, REASON, SOURCE, TRANSACTION_ALIASES, Reason
from clvtool.io.sources import EXTRA
from clvtool.io.tables import collect_table, open_mapped

SIGNUP_DATE = "signup_date"
CUSTOMER_TABLE_ALIASES = {
    CUSTOMER_ID: TRANSACTION_ALIASES[CUSTOMER_ID],
    EMAIL: TRANSACTION_ALIASES[EMAIL],
    CHANNEL: (*TRANSACTION_ALIASES[CHANNEL], "first_touch", "utm_medium"),
    SIGNUP_DATE: ("signup_date", "signup", "created_at", "registered_at", "first_seen", "date"),
}


def load_customer_table(path: str, settings: InputSettings) -> tuple[pl.DataFrame, Audit]:
    """customer_id -> channel (and signup_date when given), with the audit of the rows read."""
    table = open_mapped(
        path, settings, CUSTOMER_TABLE_ALIASES, [(CUSTOMER_ID, EMAIL), (CHANNEL,)], section="customers"
    )
    mapping, schema = table.mapping, table.schema
    ident = text_cell(mapping[CUSTOMER_ID]) if CUSTOMER_ID in mapping else pl.lit(None, pl.String)
    if EMAIL in mapping:
        ident = pl.coalesce(ident, text_cell(mapping[EMAIL]).str.to_lowercase())
    signup = (
        date_from(
            pl.col(mapping[SIGNUP_DATE]),
            schema[mapping[SIGNUP_DATE]],
            timezone=settings.timezone,
            fmt=settings.date_format,
        )
        if SIGNUP_DATE in mapping
        else pl.lit(None, pl.Date)
    )
    frame = table.frame.select(
        ident.alias(CUSTOMER_ID),
        text_cell(mapping[CHANNEL]).alias(CHANNEL),
        signup.alias(SIGNUP_DATE),
        table.line(),
        pl.col(EXTRA).is_not_null().alias("__ragged"),
    )
    df = collect_table(frame, table.source)
    name = table.source.name
    dup = pl.struct(CUSTOMER_ID, CHANNEL, SIGNUP_DATE).is_first_distinct()
    df = df.with_columns(
        pl.when(pl.col("__ragged"))
        .then(pl.lit(Reason.RAGGED))
        .when(pl.col(CUSTOMER_ID).is_null())
        .then(pl.lit(Reason.MISSING_IDENTITY))
        .when(~dup)
        .then(pl.lit(Reason.DUPLICATE))
        .otherwise(None)
        .alias(REASON),
        pl.lit(name).alias(SOURCE),
    )
    used = df.filter(pl.col(REASON).is_null())
    conflicts = used.filter(pl.col(CUSTOMER_ID).is_duplicated()).sort(CUSTOMER_ID, LINE)
    if conflicts.height:
        first = conflicts.row(0, named=True)
        lines = conflicts.filter(pl.col(CUSTOMER_ID) == first[CUSTOMER_ID])[LINE].to_list()
        raise InputError(
            f"customer '{first[CUSTOMER_ID]}' appears on lines {', '.join(map(str, lines))} with "
            "different channels or signup dates; keep one row per customer.",
            source=name,
        )
    audit = Audit(
        input="customer-table",
        files=[table.file_audit(df.height)],
        rows_read=df.height,
        rows_used=used.height,
        excluded=count_reasons(df[REASON]),
    )
    audit.rejects = df.filter(pl.col(REASON).is_not_null()).select(SOURCE, LINE, REASON, CUSTOMER_ID, CHANNEL)
    return used.select(CUSTOMER_ID, CHANNEL, SIGNUP_DATE), audit
