"""The per-customer summary reproduces the published CDNOW summary (PRODUCT §5.1, §8)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from clvtool.cli import app
from clvtool.config import Settings
from clvtool.io.transactions import Transactions, load_transactions
from clvtool.metrics.customer_table import customer_metrics, customers_table

CALIBRATION_END = dt.date(1997, 9, 30)


@pytest.fixture
def cdnow_tx(cdnow_path: Path) -> Transactions:
    return load_transactions([str(cdnow_path)], Settings().transactions, as_of=CALIBRATION_END)


@pytest.fixture
def paper(cdnow_summary_path: Path) -> pl.DataFrame:
    return pl.read_csv(cdnow_summary_path, schema_overrides={"ID": pl.String})


def _compare(ours: pl.DataFrame, paper: pl.DataFrame) -> None:
    assert ours.height == 2357
    assert ours["customer_id"].n_unique() == 2357
    joined = paper.join(ours.select("customer_id", "frequency", "recency", "T"), left_on="ID",
                        right_on="customer_id", how="left", suffix="_ours")  # fmt: skip
    assert joined.height == 2357
    assert joined["frequency"].null_count() == 0, "paper customers missing from our table"
    wrong_x = joined.filter(pl.col("x") != pl.col("frequency"))
    assert wrong_x.height == 0, wrong_x.head(5)
    wrong_tx = joined.filter((pl.col("t_x") - pl.col("recency")).abs() > 0.005)
    assert wrong_tx.height == 0, wrong_tx.head(5)
    wrong_T = joined.filter((pl.col("T") - pl.col("T_ours")).abs() > 0.005)
    assert wrong_T.height == 0, wrong_T.head(5)
    assert int(ours["frequency"].sum()) == 2457
    assert int(paper["x"].sum()) == 2457


def test_audit_counts(cdnow_tx: Transactions) -> None:
    audit = cdnow_tx.audit
    assert audit.rows_read == 6919
    assert audit.excluded == {"after_as_of": 1959}
    assert audit.rows_used == 6919 - 1959
    assert audit.reconciles()
    assert cdnow_tx.as_of == CALIBRATION_END


def test_engine_matches_published_summary(cdnow_tx: Transactions, paper: pl.DataFrame) -> None:
    table = customers_table(customer_metrics(cdnow_tx.frame, Settings(), as_of=cdnow_tx.as_of).frame)
    _compare(table, paper)


def test_cli_matches_published_summary(cdnow_path: Path, paper: pl.DataFrame) -> None:
    result = CliRunner().invoke(
        app,
        ["customers", str(cdnow_path), "--as-of", "1997-09-30", "-f", "csv",
         "--columns", "customer_id,frequency,recency,T"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    ours = pl.read_csv(result.stdout.encode(), schema_overrides={"customer_id": pl.String})
    assert ours.columns == ["customer_id", "frequency", "recency", "T"]
    _compare(ours, paper)
    # The exclusion summary is one stderr line with the after-as-of count; the other is the churn thresholds.
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2
    assert lines[1].startswith("clvtool: churn thresholds:")
    assert "1,959" in lines[0] and "6,919" in lines[0] and "after_as_of" in lines[0]


def test_monetary_value_matches_published_zbar(cdnow_tx: Transactions, paper: pl.DataFrame) -> None:
    """Mean spend over repeat purchase days (first excluded), the Gamma-Gamma input: zbar to the cent."""
    from clvtool.metrics.customers import customer_summary

    ours = customer_summary(cdnow_tx.frame.lazy(), as_of=CALIBRATION_END).collect()
    joined = paper.join(ours, left_on="ID", right_on="customer_id", how="inner")
    assert joined.height == 2357
    repeat = joined.filter(pl.col("x") > 0)
    assert repeat.height == 946
    assert repeat["monetary_value"].null_count() == 0
    assert (repeat["monetary_value"] - repeat["zbar"]).abs().max() < 0.006
    once = joined.filter(pl.col("x") == 0)
    assert once["monetary_value"].null_count() == once.height  # no repeat purchase: no mean
