"""Tests of the synthetic data generator behind `clvtool sample` (clvtool.models.simulate)."""

from __future__ import annotations

import json
import math
import re
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from clvtool.models.simulate import (
    DEFAULT_CHANNELS,
    ChannelSpec,
    SampleData,
    SampleParams,
    expected_repeat_purchases,
    simulate_repeat_purchases,
    simulate_sample,
    write_sample,
)

BIG = 200_000
Z = 4.0  # tolerance in standard errors for the moment checks


@pytest.fixture(scope="module")
def small() -> SampleData:
    """The default simulation (2,000 customers over 2024-2025)."""
    return simulate_sample(SampleParams())


@pytest.fixture(scope="module")
def big() -> SampleData:
    """A large simulation for the moment checks."""
    return simulate_sample(SampleParams(customers=BIG, seed=7))


# --- determinism and files ------------------------------------------------------------------


def test_same_params_give_byte_identical_files(tmp_path):
    params = SampleParams(customers=3000, seed=11)
    paths_a = write_sample(simulate_sample(params), tmp_path / "a")
    paths_b = write_sample(simulate_sample(params), tmp_path / "b")
    assert [p.name for p in paths_a] == [
        "transactions.csv",
        "marketing_spend.csv",
        "customers.csv",
        "params.json",
    ]
    for pa, pb in zip(paths_a, paths_b, strict=True):
        assert pa.parent == tmp_path / "a"
        assert pa.read_bytes() == pb.read_bytes(), pa.name
    # no temporary files left behind by the atomic writes
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == sorted(p.name for p in paths_a)


def test_other_seed_gives_other_data(tmp_path):
    a = write_sample(simulate_sample(SampleParams(customers=500, seed=1)), tmp_path / "a")
    b = write_sample(simulate_sample(SampleParams(customers=500, seed=2)), tmp_path / "b")
    assert a[0].read_bytes() != b[0].read_bytes()


def test_written_files_format(tmp_path, small):
    paths = write_sample(small, tmp_path)
    tx_lines = paths[0].read_text().splitlines()
    assert tx_lines[0] == "customer_id,order_id,order_date,amount,channel"
    row = re.compile(r"^C\d{6},O\d{7},\d{4}-\d{2}-\d{2},\d+\.\d{2},[a-z_]+$")
    assert all(row.match(line) for line in tx_lines[1:]), "amounts need exactly 2 decimals"
    assert len(tx_lines) - 1 == small.transactions.height

    spend_lines = paths[1].read_text().splitlines()
    assert spend_lines[0] == "date,channel,spend"
    assert all(re.match(r"^\d{4}-\d{2}-01,[a-z_]+,\d+\.\d{2}$", s) for s in spend_lines[1:])

    assert paths[2].read_text().splitlines()[0] == "customer_id,channel,signup_date"

    text = paths[3].read_text()
    assert text.endswith("}\n")
    assert text == json.dumps(json.loads(text), sort_keys=True, indent=2) + "\n"

    # round trip: the CSVs read back to the same frames
    back = pl.read_csv(paths[0], try_parse_dates=True, schema_overrides={"amount": pl.Float64})
    assert back.equals(small.transactions)
    back = pl.read_csv(paths[1], try_parse_dates=True, schema_overrides={"spend": pl.Float64})
    assert back.equals(small.spend)
    back = pl.read_csv(paths[2], try_parse_dates=True)
    assert back.equals(small.customers)


def test_params_json(small):
    info = small.params
    json.dumps(info)  # serialisable
    assert info["time_unit"] == "week"
    assert info["seed"] == 42
    assert info["start"] == "2024-01-01" and info["end"] == "2025-12-31"
    defaults = SampleParams()
    for name in ("r", "alpha", "a", "b", "p", "q", "gamma"):
        assert info[name] == getattr(defaults, name)
    assert info["customers"] == 2000
    assert info["channels"] == [{"name": c.name, "weight": c.weight, "cac": c.cac} for c in DEFAULT_CHANNELS]
    counts = info["counts"]
    assert counts["transactions"] == small.transactions.height
    assert counts["repeat_transactions"] == int(small.truth["x"].sum())
    assert counts["spend_rows"] == small.spend.height
    assert counts["total_spend"] == pytest.approx(small.spend["spend"].sum(), abs=0.005)
    by_channel = dict(small.customers.group_by("channel").len().iter_rows())
    assert counts["customers_by_channel"] == by_channel
    notes = " ".join(info["notes"])
    assert "display" in notes and "before start" in notes
    assert "BG/NBD" in notes


# --- shapes, dtypes, consistency ------------------------------------------------------------


def test_schemas(small):
    assert small.transactions.schema == pl.Schema(
        {
            "customer_id": pl.String,
            "order_id": pl.String,
            "order_date": pl.Date,
            "amount": pl.Float64,
            "channel": pl.String,
        }
    )
    assert small.spend.schema == pl.Schema({"date": pl.Date, "channel": pl.String, "spend": pl.Float64})
    assert small.customers.schema == pl.Schema(
        {"customer_id": pl.String, "channel": pl.String, "signup_date": pl.Date}
    )
    assert small.truth.schema == pl.Schema(
        {
            "customer_id": pl.String,
            "x": pl.Int64,
            "t_x": pl.Float64,
            "T": pl.Float64,
            "lam": pl.Float64,
            "p_drop": pl.Float64,
            "nu": pl.Float64,
        }
    )
    assert small.customers.height == 2000
    assert small.truth.height == 2000
    assert small.transactions.height == 2000 + small.truth["x"].sum()


def test_ids_sorting_and_ranges(small):
    tx = small.transactions
    n = tx.height
    assert tx["order_id"].to_list() == [f"O{i:07d}" for i in range(1, n + 1)]
    assert tx.equals(tx.sort(["order_date", "customer_id", "order_id"]))
    assert small.customers["customer_id"].to_list() == [f"C{i:06d}" for i in range(1, 2001)]
    assert small.truth["customer_id"].equals(small.customers["customer_id"])
    assert tx["order_date"].min() >= date(2024, 1, 1)
    assert tx["order_date"].max() <= date(2025, 12, 31)
    assert tx["amount"].min() >= 0.01
    assert (tx["amount"] * 100 - (tx["amount"] * 100).round()).abs().max() < 1e-6
    assert set(tx["customer_id"]) == set(small.customers["customer_id"])


def test_first_order_channel_is_acquisition_channel(small):
    tx = small.transactions
    first = tx.group_by("customer_id", maintain_order=True).agg(
        pl.col("channel").first(), pl.col("order_date").first(), pl.len().alias("orders")
    )
    joined = small.customers.join(first, on="customer_id", suffix="_first")
    assert joined.height == 2000
    assert (joined["channel"] == joined["channel_first"]).all()
    assert (joined["signup_date"] == joined["order_date"]).all()
    assert set(small.customers["channel"]) <= {c.name for c in DEFAULT_CHANNELS}
    # repeat orders are email or direct, never the acquisition channel
    repeats = tx.join(first.select("customer_id"), on="customer_id").filter(
        pl.int_range(pl.len()).over("customer_id") > 0
    )
    assert set(repeats["channel"]) == {"email", "direct"}
    assert repeats.height == small.truth["x"].sum()
    # orders per customer equal 1 + x of the truth
    x = small.truth.select("customer_id", (pl.col("x") + 1).alias("expected"))
    both = joined.join(x, on="customer_id")
    assert (both["orders"] == both["expected"]).all()


def test_truth_is_consistent_with_dates(small):
    truth = small.truth
    n_days = (date(2025, 12, 31) - date(2024, 1, 1)).days + 1
    assert ((truth["x"] == 0) == (truth["t_x"] == 0)).all()
    assert (truth["t_x"] < truth["T"]).all()
    assert truth["T"].max() <= n_days / 7
    assert truth["T"].min() > 0
    # signup day = floor(acquisition time), with acquisition = window end - 7 T (in days)
    acquired = n_days - 7 * truth["T"].to_numpy()
    signup = (small.customers["signup_date"] - date(2024, 1, 1)).dt.total_days()
    ok = np.floor(acquired) == signup.to_numpy()
    near_integer = np.abs(acquired - np.round(acquired)) < 1e-6
    assert np.all(ok | near_integer)
    # last order day = floor(acquisition + 7 t_x)
    last = small.transactions.group_by("customer_id").agg(pl.col("order_date").max())
    last = truth.join(last, on="customer_id", maintain_order="left")
    last_day = (last["order_date"] - date(2024, 1, 1)).dt.total_days().to_numpy()
    expected = acquired + 7 * last["t_x"].to_numpy()
    near_integer = np.abs(expected - np.round(expected)) < 1e-6
    assert np.all((np.floor(expected) == last_day) | near_integer)


# --- spend ----------------------------------------------------------------------------------


def _months(first: date, last: date) -> list[date]:
    out = []
    d = date(first.year, first.month, 1)
    while d <= last:
        out.append(d)
        d = (d + timedelta(days=32)).replace(day=1)
    return out


def test_spend_rows(small):
    spend = small.spend
    months = _months(date(2024, 1, 1), date(2025, 12, 31))
    assert len(months) == 24
    paid = [c.name for c in DEFAULT_CHANNELS if c.cac > 0]
    for name in paid:
        rows = spend.filter(pl.col("channel") == name, pl.col("date") >= date(2024, 1, 1))
        assert rows["date"].to_list() == months
    assert "organic" not in set(spend["channel"])
    assert spend.equals(spend.sort(["date", "channel"]))
    assert spend.select(pl.struct("date", "channel").is_unique().all()).item()

    # (a) display: spend in three months, no customer ever
    display = spend.filter(pl.col("channel") == "display")
    assert display.height == 3
    assert (display["spend"] == 500.0).all()
    assert display["date"].to_list() == [date(2024, 1, 1), date(2024, 12, 1), date(2025, 12, 1)]
    assert "display" not in set(small.customers["channel"])
    assert "display" not in set(small.transactions["channel"])

    # (b) paid_search spend in the month before start
    before = spend.filter(pl.col("date") < date(2024, 1, 1))
    assert before["date"].to_list() == [date(2023, 12, 1)]
    assert before["channel"].to_list() == ["paid_search"]
    assert before["spend"].item() > 0
    assert set(spend["channel"]) == {*paid, "display"}
    assert spend.height == 24 * len(paid) + 3 + 1

    unallocated = small.params["counts"]["unallocated_spend"]
    assert unallocated["total"] == pytest.approx(1500.0 + before["spend"].item())


def test_spend_follows_new_customers_times_cac(big):
    new = big.customers.group_by(pl.col("signup_date").dt.truncate("1mo").alias("date"), "channel").len("new")
    cac = pl.DataFrame(
        {"channel": [c.name for c in DEFAULT_CHANNELS], "cac": [c.cac for c in DEFAULT_CHANNELS]}
    )
    cells = (
        big.spend.filter(pl.col("date") >= date(2024, 1, 1), pl.col("channel") != "display")
        .join(new, on=["date", "channel"], how="left")
        .join(cac, on="channel")
        .with_columns(pl.col("new").fill_null(0))
    )
    assert cells.height == 72
    assert (cells.filter(pl.col("new") == 0)["spend"] == 0).all()
    log_ratio = np.log(cells["spend"].to_numpy() / (cells["new"] * cells["cac"]).to_numpy())
    sigma = 0.15
    se = sigma / math.sqrt(len(log_ratio))
    assert abs(log_ratio.mean() - (-(sigma**2) / 2)) < Z * se
    assert 0.10 < log_ratio.std(ddof=1) < 0.20


# --- moments --------------------------------------------------------------------------------


def test_latent_means(big):
    p = SampleParams()
    n = big.truth.height
    lam = big.truth["lam"].to_numpy()
    se = math.sqrt(p.r) / p.alpha / math.sqrt(n)
    assert abs(lam.mean() - p.r / p.alpha) < Z * se

    drop = big.truth["p_drop"].to_numpy()
    s = p.a + p.b
    se = math.sqrt(p.a * p.b / (s**2 * (s + 1)) / n)
    assert abs(drop.mean() - p.a / s) < Z * se

    nu = big.truth["nu"].to_numpy()
    se = math.sqrt(p.q) / p.gamma / math.sqrt(n)
    assert abs(nu.mean() - p.q / p.gamma) < Z * se


def test_channel_shares(big):
    counts = dict(big.customers.group_by("channel").len().iter_rows())
    for c in DEFAULT_CHANNELS:
        se = math.sqrt(c.weight * (1 - c.weight) / BIG)
        assert abs(counts[c.name] / BIG - c.weight) < Z * se


def test_amount_moments(big):
    p = SampleParams()
    tx = big.transactions.join(big.truth.select("customer_id", "nu"), on="customer_id")
    # E[z | nu] = p / nu: z * nu / p ~ Gamma(p, 1) / p, mean 1 and variance 1 / p
    ratio = (tx["amount"] * tx["nu"] / p.p).to_numpy()
    assert abs(ratio.mean() - 1.0) < Z / math.sqrt(p.p * len(ratio))

    # first orders are one iid amount per customer: mean p gamma / (q - 1)
    first = tx.filter(~pl.col("channel").is_in(["email", "direct"]))["amount"].to_numpy()
    assert len(first) == BIG
    mean = p.p * p.gamma / (p.q - 1)
    var = p.p * p.gamma**2 / ((p.q - 1) * (p.q - 2)) + p.p**2 * p.gamma**2 / ((p.q - 1) ** 2 * (p.q - 2))
    assert abs(first.mean() - mean) < Z * math.sqrt(var / len(first))


def test_expected_repeat_purchases_closed_form():
    # E[X(t)] -> 0 as t -> 0, increases, and matches a direct numerical integral at t = 52
    p = SampleParams()
    assert expected_repeat_purchases(1e-9, p.r, p.alpha, p.a, p.b) == pytest.approx(0, abs=1e-8)
    ts = np.array([1.0, 10.0, 52.0, 104.0])
    values = expected_repeat_purchases(ts, p.r, p.alpha, p.a, p.b)
    assert np.all(np.diff(values) > 0)
    # E[X(t) | lam, p] = (1 - exp(-lam p t)) / p, integrated over Gamma(lam) x Beta(p)
    from scipy import integrate, stats

    def inner(pp: float) -> float:
        # E over lam of (1 - exp(-lam pp t)) = 1 - (alpha / (alpha + pp t))^r
        return (1 - (p.alpha / (p.alpha + pp * 52.0)) ** p.r) / pp * stats.beta.pdf(pp, p.a, p.b)

    numeric, _ = integrate.quad(inner, 0, 1, limit=200)
    assert values[2] == pytest.approx(numeric, rel=1e-6)


def test_repeat_purchases_match_bgnbd_at_fixed_T():
    # all customers start at the same time, observed for 52 weeks
    p = SampleParams()
    rng = np.random.default_rng(123)
    n = BIG
    lam = rng.gamma(p.r, 1 / p.alpha, n)
    drop = rng.beta(p.a, p.b, n)
    T = 52.0
    owner, time, x, t_x = simulate_repeat_purchases(rng, lam, drop, np.full(n, T))
    assert owner.size == time.size == x.sum()
    assert np.all(time < T) and np.all(time > 0)
    assert np.array_equal(np.bincount(owner, minlength=n), x)
    expected = float(expected_repeat_purchases(T, p.r, p.alpha, p.a, p.b))
    se = x.std(ddof=1) / math.sqrt(n)
    assert abs(x.mean() - expected) < Z * se, (x.mean(), expected, se)
    # t_x is the last purchase time; per customer times increase (they are stored by round)
    last = np.zeros(n)
    np.maximum.at(last, owner, time)
    assert np.array_equal(last, t_x)
    # P(X(T) = 0) = E[exp(-lam T)] = (alpha / (alpha + T))^r (no dropout before the first repeat)
    p0 = (p.alpha / (p.alpha + T)) ** p.r
    assert abs((x == 0).mean() - p0) < Z * math.sqrt(p0 * (1 - p0) / n)


def test_full_simulation_matches_bgnbd_expectation(big):
    # customers with staggered T: compare mean x with the mean of E[X(T_i)]
    p = SampleParams()
    x = big.truth["x"].to_numpy()
    T = big.truth["T"].to_numpy()
    expected = expected_repeat_purchases(T, p.r, p.alpha, p.a, p.b)
    resid = x - expected
    se = resid.std(ddof=1) / math.sqrt(len(x))
    assert abs(resid.mean()) < Z * se
    # acquisition uniform over the window: T uniform on (0, 731 / 7)
    assert abs(T.mean() - 731 / 14) < Z * (731 / 7) / math.sqrt(12 * len(T))


def test_tiny_window():
    data = simulate_sample(SampleParams(customers=50, start=date(2024, 3, 5), end=date(2024, 3, 5)))
    assert (data.transactions["order_date"] == date(2024, 3, 5)).all()
    assert (data.truth["T"] <= 1 / 7).all()
    display = data.spend.filter(pl.col("channel") == "display")
    assert display["date"].to_list() == [date(2024, 3, 1)]
    before = data.spend.filter(pl.col("date") < date(2024, 3, 1))
    assert before["date"].to_list() == [date(2024, 2, 1)]


def test_custom_channels_and_ids_width():
    channels = (ChannelSpec("web", 1.0, 0.0), ChannelSpec("tv", 1.0, 10.0))
    data = simulate_sample(SampleParams(customers=1234, channels=channels, seed=3))
    assert set(data.customers["channel"]) == {"web", "tv"}
    assert set(data.spend["channel"]) == {"tv", "display"}
    # no paid_search channel: the spend before start goes to the first paid channel
    assert data.params["counts"]["unallocated_spend"]["before_start_channel"] == "tv"
    one_day = date(2024, 1, 1)
    wide = simulate_sample(SampleParams(customers=1_000_001, start=one_day, end=one_day))
    assert wide.customers["customer_id"][-1] == "C1000001"
    assert wide.transactions["order_id"].str.len_chars().n_unique() == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"customers": 0},
        {"customers": 2.5},
        {"end": date(2023, 12, 31)},
        {"r": 0.0},
        {"alpha": -1.0},
        {"q": float("nan")},
        {"channels": ()},
        {"channels": (ChannelSpec("a", 1, 0), ChannelSpec("a", 1, 5))},
        {"channels": (ChannelSpec("a", 0, 0),)},
        {"channels": (ChannelSpec("a", 1, -5),)},
        {"channels": (ChannelSpec("display", 1, 5),)},
    ],
)
def test_invalid_params(kwargs):
    with pytest.raises(ValueError):
        SampleParams(**kwargs)
