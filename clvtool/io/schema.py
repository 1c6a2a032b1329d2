"""The canonical transaction schema (PRODUCT §3.1): the only column names metrics speak.

Each reader maps its input onto these names. Internal bookkeeping columns start with an underscore.
"""

from __future__ import annotations

import re
from typing import ClassVar

CUSTOMER_ID = "customer_id"
EMAIL = "email"
DATE = "date"
AMOUNT = "amount"
ORDER_ID = "order_id"
CHANNEL = "channel"
COST = "cost"
STATUS = "status"
CURRENCY = "currency"

# Bookkeeping columns carried from the reader to the audit.
SOURCE = "_source"  # file the row came from
LINE = "_line"  # 1-based line of the row in its file (header = line 1)
SEQ = "_seq"  # global row sequence over all files, in reading order
REASON = "_reason"  # null for used rows, else the exclusion reason
RAW_PREFIX = "~"  # the original cells of rejected rows are kept as "~<header>"

TRANSACTION_FIELDS: tuple[str, ...] = (
    CUSTOMER_ID,
    EMAIL,
    DATE,
    AMOUNT,
    ORDER_ID,
    CHANNEL,
    COST,
    STATUS,
    CURRENCY,
)

# Header names recognised without a `columns:` mapping, compared after normalise_header().
TRANSACTION_ALIASES: dict[str, tuple[str, ...]] = {
    CUSTOMER_ID: (
        "customer_id", "customer", "customerid", "customer_no", "customer_number", "user_id",
        "userid", "client_id", "clientid", "buyer_id", "member_id", "account_id", "id_customer",
        "customer_user",
    ),
    EMAIL: ("email", "e_mail", "email_address", "customer_email", "billing_email", "user_email"),
    DATE: (
        "date", "order_date", "orderdate", "created_at", "created", "created_utc", "timestamp",
        "transaction_date", "purchase_date", "order_time", "datetime", "invoice_date",
        "invoicedate", "paid_at", "processed_at", "time",
    ),
    AMOUNT: (
        "amount", "total", "revenue", "value", "order_total", "total_price", "sales", "net_amount",
        "amount_paid", "grand_total", "total_amount", "order_value", "price_total",
    ),
    ORDER_ID: (
        "order_id", "orderid", "order", "order_number", "order_no", "transaction_id", "invoice",
        "invoice_id", "invoice_no", "invoiceno",
    ),
    CHANNEL: (
        "channel", "source", "utm_source", "acquisition_channel", "sales_channel",
        "marketing_channel", "source_name",
    ),
    COST: ("cost", "cogs", "cost_of_goods", "cost_of_goods_sold"),
    STATUS: ("status", "order_status", "financial_status", "payment_status", "state"),
    CURRENCY: ("currency", "currency_code"),
}  # fmt: skip

DEFAULT_EXCLUDE_STATUSES: tuple[str, ...] = (
    "test",
    "cancelled",
    "canceled",
    "voided",
    "failed",
    "pending",
)


def normalise_header(name: str) -> str:
    """Lower-case a header and fold every run of non-alphanumerics to one underscore."""
    return re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_")


class Reason:
    """Exclusion reasons of the audit (PRODUCT §3.5), in the order they are tested."""

    EMPTY = "empty_row"
    RAGGED = "ragged_row"
    MISSING_IDENTITY = "missing_identity"
    MISSING_CHANNEL = "missing_channel"
    BAD_DATE = "unparseable_date"
    BAD_AMOUNT = "unparseable_amount"
    EXCLUDED_STATUS = "excluded_status"
    DUPLICATE = "duplicate_row"
    AFTER_AS_OF = "after_as_of"

    ALL: ClassVar[tuple[str, ...]] = (
        EMPTY,
        RAGGED,
        MISSING_IDENTITY,
        MISSING_CHANNEL,
        BAD_DATE,
        BAD_AMOUNT,
        EXCLUDED_STATUS,
        DUPLICATE,
        AFTER_AS_OF,
    )

    HELP: ClassVar[dict[str, str]] = {
        EMPTY: "blank line: every field empty",
        RAGGED: "more fields than the header (an unquoted delimiter inside a value?)",
        MISSING_IDENTITY: "no customer id and no email",
        MISSING_CHANNEL: "spend row without a channel",
        BAD_DATE: "date empty, not understood or impossible (set transactions.date_format)",
        BAD_AMOUNT: "amount empty or not a number (decimal comma? set transactions.decimal_comma)",
        EXCLUDED_STATUS: "status listed in transactions.exclude_statuses",
        DUPLICATE: "exact copy of an earlier row",
        AFTER_AS_OF: "dated after --as-of",
    }
