"""Shared fixtures: a clean environment for every test, and the CDNOW reference files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"

_SCRUBBED = ("NO_COLOR", "FORCE_COLOR", "COLUMNS", "LINES", "GITHUB_ACTIONS", "CLVTOOL_CONFIG")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No colour or width settings and no clvtool settings leak in; cwd has no ./clvtool.yaml."""
    for name in _SCRUBBED:
        monkeypatch.delenv(name, raising=False)
    for name in list(os.environ):
        if name.startswith("CLVTOOL_"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def cdnow_path() -> Path:
    """The CDNOW sample transactions (customer_id, order_id, order_date, amount, cds)."""
    return DATA / "cdnow" / "transactions.csv"


@pytest.fixture
def cdnow_summary_path() -> Path:
    """The published per-customer summary of the CDNOW sample: ID, x, t_x, T, zbar (weeks)."""
    return DATA / "cdnow" / "summary_paper.csv"
