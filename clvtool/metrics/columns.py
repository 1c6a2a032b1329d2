"""What kind of number each output column holds, so writers round and align it consistently."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

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
    "churn_rate": FRACTION,
    "revenue_share": FRACTION,
    "population_share": FRACTION,
    "value_share": FRACTION,
    "cumulative_value_share": FRACTION,
    "at_risk_days": STAT,
    "churned_days": STAT,
    "mean_days_since_last": MONEY,  # days, shown with the money decimals
    "mean_clv": MONEY,
    "share": FRACTION,
    "cumulative_share": FRACTION,
    "p_alive": FRACTION,
    "recency": STAT,
    "T": STAT,
    "expected_orders": STAT,
}

# Columns the purchase and spend models add to the customers table.
PREDICTION_COLUMNS = ("p_alive", "expected_orders", "predicted_clv")

FRACTION_DECIMALS = 6
STAT_DECIMALS = 4


@dataclass(frozen=True)
class Precision:
    """Money decimals plus per-column overrides (for columns whose kind depends on the run)."""

    money: int
    overrides: Mapping[str, int] = field(default_factory=dict)


def decimals_for(column: str, precision: int | Precision) -> int:
    """Decimal places for a float column."""
    if isinstance(precision, Precision):
        if column in precision.overrides:
            return precision.overrides[column]
        money_decimals = precision.money
    else:
        money_decimals = precision
    kind = KINDS.get(column, MONEY)
    if kind == FRACTION:
        return FRACTION_DECIMALS
    if kind == STAT:
        return STAT_DECIMALS
    return money_decimals
