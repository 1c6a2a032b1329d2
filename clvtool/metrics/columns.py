"""What kind of number each output column holds, so writers round and align it consistently."""

from __future__ import annotations

MONEY = "money"  # currency amounts: output.float_precision decimals
FRACTION = "fraction"  # shares and probabilities 0..1: 6 decimals
STAT = "stat"  # model statistics in time units: 4 decimals
COUNT = "count"

KINDS: dict[str, str] = {
    "revenue": MONEY,
    "refunds": MONEY,
    "aov": MONEY,
    "historic_clv": MONEY,
    "cac": MONEY,
    "net_value": MONEY,
    "predicted_clv": MONEY,
    "total_clv": MONEY,
    "net_clv": MONEY,
    "spend": MONEY,
    "unallocated": MONEY,
    "mean_historic_clv": MONEY,
    "ltv_cac": MONEY,  # a ratio, shown like money with output.float_precision decimals
    "roas": MONEY,
    "repeat_rate": FRACTION,
    "share": FRACTION,
    "cumulative_share": FRACTION,
    "p_alive": FRACTION,
    "recency": STAT,
    "T": STAT,
    "expected_orders": STAT,
}

FRACTION_DECIMALS = 6
STAT_DECIMALS = 4


def decimals_for(column: str, money_decimals: int) -> int:
    """Decimal places for a float column."""
    kind = KINDS.get(column, MONEY)
    if kind == FRACTION:
        return FRACTION_DECIMALS
    if kind == STAT:
        return STAT_DECIMALS
    return money_decimals
