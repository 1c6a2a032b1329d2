"""Benchmark: `clvtool customers` with predictions, stage by stage, beside a bare Polars baseline and lifetimes.

Run by hand (not a test), from the repository root with the dev venv:

    /work/venv/bin/python bench/bench_predict.py --customers 350000          # ~1 M transaction rows
    /work/venv/bin/python bench/bench_predict.py --customers 3500000         # ~10 M rows, 3.5 M customers
    /work/venv/bin/python bench/bench_predict.py --customers 3500000 --profile [--py-spy]

The default data set has the shape PRODUCT §7 names: 10 M transactions from 3.5 M customers, that is
about 2.9 rows per customer. `clvtool sample` with its default parameters (BG/NBD fitted to CDNOW) gives
that over a window of 3.5 years (--start 2022-07-01 to 2025-12-31). Its default window of two years
(--start 2024-01-01) gives about 2.35 rows per customer: 4300000 customers for 10 M rows, a heavier load
on every per-customer stage (fit, ranking, a larger CSV).

What is measured (PRODUCT §7), every measurement in its own child process, wall time and the child's
peak RSS (ru_maxrss of exactly that child, from os.wait4; resource.getrusage(RUSAGE_CHILDREN) would
report the running maximum over all children so far):

* clvtool stages, in one child: read (io.transactions.load_transactions), summary
  (metrics.customer_table.customer_metrics, predict=False), fit (BG/NBD + Gamma-Gamma, as in
  models.predictions.predict_customers), predict (p_alive, expected orders, discounted CLV, joined into
  the table), write (customers_table ranking + render.writers.write_csv_file, as `-o out.csv`); wall time of each
  stage and the process's peak RSS after it.
* clvtool end to end: `python -m clvtool customers FILE -q -o out.csv`.
* bare baseline: a Polars read of the same CSV plus one group-by over customer_id (sum amount, min/max
  date, count), result written as CSV; eager (pl.read_csv) and lazy (pl.scan_csv) variants.
* lifetimes 0.11.3 + pandas doing the same stages, in its own virtual environment created under
  bench/out/lifetimes-venv (a benchmark-only requirement, never a project dependency). It gets a time
  budget: above --lifetimes-budget seconds at one size, larger sizes are not run but extrapolated
  linearly in rows and labelled so.

--profile adds (a) a child that times clvtool's sub-steps (wrapping the functions the stages call and
every LazyFrame.collect by call site), with peak/current RSS after each, (b) read variants that split
load_transactions' single collect, each in its own child; --py-spy also records the end-to-end CLI with
py-spy (installed into bench/out/tools-venv) and prints where the wall time goes by clvtool line.

Data sets come from `clvtool sample -n N --seed S` and are cached in bench/out/sample_N_S/. Results go
to stdout and to bench/out/results_predict.txt (every size measured so far, latest run of each size;
raw numbers in bench/out/results_predict_<N>.json).

This file imports only the standard library at the top: its worker modes run in the dev venv (clvtool,
Polars) and in the lifetimes venv (pandas, lifetimes).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
LIFETIMES_VENV = OUT / "lifetimes-venv"
TOOLS_VENV = OUT / "tools-venv"
LIFETIMES_FIRST = ["lifetimes==0.11.3"]
# Pins to fall back on when lifetimes does not install or run on the current numpy/pandas/scipy.
LIFETIMES_PINNED = ["lifetimes==0.11.3", "numpy<2", "pandas<2.2", "scipy<1.13"]

HORIZON_MONTHS = 12  # clvtool defaults (config.ModelSettings): BG/NBD, weeks, 12 months, 10 % a year
ANNUAL_DISCOUNT = 0.10
DAYS_PER_MONTH = 365.25 / 12

BASELINE_EAGER = """
import polars as pl, sys
df = (pl.read_csv(sys.argv[1]).group_by("customer_id")
      .agg(pl.col("amount").sum(), pl.col("order_date").min().alias("first"),
           pl.col("order_date").max().alias("last"), pl.len()))
df.write_csv(sys.argv[2])
"""
# The same as bench_customers.py's baseline (lazy scan: projection pushdown, no order_id/channel).
BASELINE_LAZY = """
import polars as pl, sys
df = (pl.scan_csv(sys.argv[1]).group_by("customer_id")
      .agg(pl.col("amount").sum(), pl.col("order_date").min().alias("first"),
           pl.col("order_date").max().alias("last"), pl.len())
      .collect())
df.write_csv(sys.argv[2])
"""


# ---- measuring child processes --------------------------------------------------------------------


def measure(
    cmd: list[str],
    *,
    log: Path,
    timeout: float | None = None,
    cwd: Path = OUT,
    env: dict[str, str] | None = None,
) -> dict:
    """Run one child; its wall seconds, its own peak RSS (MiB, from wait4), exit code, timeout flag."""
    log.parent.mkdir(parents=True, exist_ok=True)
    busy_before = wait_quiet() if QUIET["max_wait"] else None
    with log.open("wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, cwd=cwd, env=env)
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, kill) if timeout else None
        if timer:
            timer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        if timer:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
    return {
        "wall": wall,
        "peak_mib": usage.ru_maxrss / 1024,
        "rc": proc.returncode,
        "timed_out": timed_out.is_set(),
        "log": str(log),
        "busy_before": busy_before,
    }


def cpu_busy(seconds: float = 1.0) -> float:
    """Fraction of all cores busy over `seconds` (this process sleeps meanwhile, so it is other work)."""

    def sample() -> tuple[int, int]:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
        idle = fields[3] + fields[4]
        return sum(fields) - idle, sum(fields)

    busy0, total0 = sample()
    time.sleep(seconds)
    busy1, total1 = sample()
    return (busy1 - busy0) / max(1, total1 - total0)


QUIET = {"max_wait": 0.0, "waits": []}


def wait_quiet() -> float:
    """Wait (up to --quiet-wait seconds) until other processes use under 25 % of the cores; the
    busy fraction last seen is kept with the measurement that follows."""
    deadline = time.monotonic() + QUIET["max_wait"]
    busy = cpu_busy()
    while busy > 0.25 and time.monotonic() < deadline:
        time.sleep(4)
        busy = cpu_busy()
    QUIET["waits"].append(busy)
    return busy


def must(result: dict, what: str) -> dict:
    if result["rc"] != 0 and not result["timed_out"]:
        tail = Path(result["log"]).read_text(errors="replace")[-3000:]
        sys.exit(f"{what} failed (exit {result['rc']}); log {result['log']}:\n{tail}")
    return result


def child_env() -> dict[str, str]:
    """The environment without CLVTOOL_* settings (so no config file or override changes the run)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CLVTOOL_") and k != "NO_COLOR"}


# ---- workers (run in child processes) -------------------------------------------------------------


def _rss_now_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Stages:
    """Wall time, peak RSS so far and current RSS after each stage of one process."""

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.t = time.perf_counter()

    def mark(self, name: str, **extra: object) -> None:
        now = time.perf_counter()
        self.rows.append(
            {"stage": name, "wall": now - self.t, "peak_mib": _peak_mib(), "rss_mib": _rss_now_mib(), **extra}
        )
        self.t = time.perf_counter()


def worker_clvtool(tx_path: str, out_csv: str, result_json: str) -> None:
    """clvtool's stages in one process, through the same functions the `customers` command calls."""
    st = Stages()
    import numpy as np
    import polars as pl

    from clvtool.config import load_settings
    from clvtool.io.transactions import load_transactions
    from clvtool.metrics.columns import PREDICTION_COLUMNS
    from clvtool.metrics.customer_table import (
        METRIC_COLUMNS,
        RANK_COLUMNS,
        customer_metrics,
        customers_table,
    )
    from clvtool.models import predictions as P
    from clvtool.models.clv import TIME_UNIT_DAYS
    from clvtool.render.writers import write_csv_file

    settings = load_settings(None, {}, None, environ={}, cwd=Path(out_csv).parent)
    st.mark("startup+imports")

    tx = load_transactions([tx_path], settings.transactions)
    st.mark("read", rows=tx.frame.height, frame_mib=tx.frame.estimated_size("mb"))

    metrics = customer_metrics(
        tx.frame, settings, as_of=tx.as_of, data_start=tx.audit.first_date, predict=False
    )
    st.mark(
        "summary",
        customers=metrics.frame.height,
        frame_mib=metrics.frame.estimated_size("mb"),
    )

    # fit + predict: the body of models.predictions.predict_customers, split in two.
    model = settings.model
    summary = metrics.frame.drop(*PREDICTION_COLUMNS, "total_clv", "net_clv")
    known = summary.filter(pl.col("frequency").is_not_null())
    f = known["frequency"].to_numpy().astype(np.float64)
    r = known["recency"].to_numpy().astype(np.float64)
    big_t = known["T"].to_numpy().astype(np.float64)
    x, t_x, tt, w, inverse = P.compress(f, r, big_t, key=P._day_key(known))
    spec = P.MODELS[model.purchase_model]
    fit = spec.fit(x, t_x, tt, weights=w, time_unit=model.time_unit)
    monetary = known["monetary_value"].fill_null(0.0).to_numpy().astype(np.float64)
    spend_fit = P.fit_gamma_gamma(f, monetary)
    st.mark(
        "fit",
        distinct_rows=int(x.size),
        bgnbd=dict(fit.params),
        bgnbd_converged=fit.converged,
        gamma_gamma=dict(spend_fit.params),
        gg_converged=spend_fit.converged,
    )

    horizon_units = model.horizon_months * P.DAYS_PER_MONTH / TIME_UNIT_DAYS[model.time_unit]
    p_alive = spec.p_alive(fit.params, x, t_x, tt)[inverse]
    expected = spec.expected(fit.params, np.array([horizon_units]), x, t_x, tt).reshape(-1)[inverse]
    cumulative = P.expected_purchases_function(
        model.purchase_model, fit.params, x, t_x, tt, time_unit=model.time_unit
    )
    discounted = P.discounted_purchases(cumulative, model.horizon_months, model.discount_rate)[inverse]
    spend = P.gamma_gamma_mean(spend_fit.params, f, monetary)
    clv = spend * P._value_ratio(known) * discounted
    known_mask = summary["frequency"].is_not_null().to_numpy()

    def column(values: np.ndarray) -> pl.Series:
        full = np.full(summary.height, np.nan)
        full[known_mask] = values
        return P._finite(full)

    frame = (
        summary.with_columns(
            column(p_alive).alias("p_alive"),
            column(expected).alias("expected_orders"),
            column(clv).alias("predicted_clv"),
        )
        .with_columns((pl.col("historic_clv") + pl.col("predicted_clv")).alias("total_clv"))
        .with_columns((pl.col("total_clv") - pl.col("cac")).alias("net_clv"))
        .select(*METRIC_COLUMNS, "monetary_value")
    )
    st.mark("predict", mean_clv=float(frame["predicted_clv"].mean()))

    table = customers_table(frame, sort=None, default="total_clv").select(*METRIC_COLUMNS, *RANK_COLUMNS)
    write_csv_file(table, out_csv, settings.output.float_precision, escape=True)  # as `customers -o`
    st.mark("write", bytes=Path(out_csv).stat().st_size)
    Path(result_json).write_text(json.dumps({"stages": st.rows}))


def worker_profile(tx_path: str, out_csv: str, result_json: str) -> None:
    """The `customers` command's work (load_transactions, customer_metrics with predictions, table,
    CSV) with every interesting function and every LazyFrame.collect timed by call site."""
    import polars as pl

    import clvtool.io.transactions as T
    import clvtool.metrics.customer_table as CT
    import clvtool.metrics.customers as C
    import clvtool.models.predictions as P
    from clvtool.config import load_settings
    from clvtool.metrics.customer_table import METRIC_COLUMNS, RANK_COLUMNS
    from clvtool.render import writers

    calls: list[dict] = []
    depth = [0]

    def record(label: str, t0: float) -> None:
        calls.append(
            {
                "call": label,
                "depth": depth[0],
                "wall": time.perf_counter() - t0,
                "peak_mib": _peak_mib(),
                "rss_mib": _rss_now_mib(),
            }
        )

    def wrap(module: object, name: str, label: str | None = None) -> None:
        original = getattr(module, name, None)
        if original is None:  # renamed or gone: the profile says so instead of failing
            print(
                f"profile: {getattr(module, '__name__', module)}.{name} not found, not timed", file=sys.stderr
            )
            return

        def timed(*args: object, **kwargs: object) -> object:
            depth[0] += 1
            t0 = time.perf_counter()
            try:
                result = original(*args, **kwargs)
                if isinstance(result, pl.LazyFrame):  # every caller collects these at once
                    result = original_collect(result).lazy()
                return result
            finally:
                depth[0] -= 1
                record(label or f"{module.__name__.split('.')[-1]}.{name}", t0)

        setattr(module, name, timed)

    original_collect = pl.LazyFrame.collect

    def timed_collect(self: pl.LazyFrame, *args: object, **kwargs: object) -> pl.DataFrame:
        caller = sys._getframe(1)
        where = f"collect@{Path(caller.f_code.co_filename).stem}.{caller.f_code.co_name}:{caller.f_lineno}"
        depth[0] += 1
        t0 = time.perf_counter()
        try:
            return original_collect(self, *args, **kwargs)
        finally:
            depth[0] -= 1
            record(where, t0)

    pl.LazyFrame.collect = timed_collect  # type: ignore[method-assign]
    wrap(CT, "summarise", "customer_table.summarise (summary + purchase gaps)")
    for name in (
        "thresholds_from_gaps",
        "churn_status",
        "rfm_scores",
        "retention_summary",
        "customers_table",
    ):
        wrap(CT, name)
    wrap(T, "_mark_duplicates")
    wrap(T, "_check_currency")
    for name in ("_orders_by_hash", "_sums_by_hash", "_finish"):
        wrap(C, name)
    for name in ("compress", "fit_gamma_gamma", "gamma_gamma_mean", "discounted_purchases", "_finite"):
        wrap(P, name)
    spec = P.MODELS["bgnbd"]
    for attr in ("fit", "p_alive", "expected"):
        holder = type("bgnbd", (), {attr: staticmethod(getattr(spec, attr))})
        wrap(holder, attr)
        spec = P.PurchaseModel(**{**spec.__dict__, attr: getattr(holder, attr)})
    P.MODELS = {**P.MODELS, "bgnbd": spec}
    wrap(P, "predict_customers")
    wrap(writers, "write_csv_file", "writers.write_csv_file")

    settings = load_settings(None, {}, None, environ={}, cwd=Path(out_csv).parent)
    t0 = time.perf_counter()
    depth[0] += 1
    tx = T.load_transactions([tx_path], settings.transactions)
    depth[0] -= 1
    record("STAGE read: load_transactions", t0)
    sizes = {"tx.frame": tx.frame.estimated_size("mb")}
    t0 = time.perf_counter()
    depth[0] += 1
    metrics = CT.customer_metrics(tx.frame, settings, as_of=tx.as_of, data_start=tx.audit.first_date)
    depth[0] -= 1
    record("STAGE summary+fit+predict: customer_metrics(predict=True)", t0)
    sizes["metrics.frame"] = metrics.frame.estimated_size("mb")
    t0 = time.perf_counter()
    depth[0] += 1
    table = CT.customers_table(metrics.frame, sort=None, default=metrics.default_sort)
    table = table.select(*METRIC_COLUMNS, *RANK_COLUMNS)
    writers.write_csv_file(table, out_csv, settings.output.float_precision, escape=True)
    depth[0] -= 1
    record("STAGE write: customers_table + write_csv_file", t0)
    Path(result_json).write_text(json.dumps({"calls": calls, "sizes_mib": sizes}))


READ_VARIANTS = {
    "pl.read_csv (all columns, inferred types)": "plain",
    "load_transactions (parse, audit, used rows)": "full",
}


def worker_read(tx_path: str, variant: str, result_json: str) -> None:
    """One way of reading the file (READ_VARIANTS), to split load_transactions' single collect."""
    import polars as pl

    from clvtool.config import load_settings
    from clvtool.io import transactions as T

    settings = load_settings(None, {}, None, environ={}, cwd=Path(result_json).parent).transactions
    t0 = time.perf_counter()
    df = pl.read_csv(tx_path) if variant == "plain" else T.load_transactions([tx_path], settings).frame
    wall = time.perf_counter() - t0
    Path(result_json).write_text(
        json.dumps({"wall": wall, "frame_mib": df.estimated_size("mb"), "columns": df.width})
    )


def worker_lifetimes(tx_path: str, out_csv: str, result_json: str) -> None:
    """The same stages with pandas + lifetimes (runs in the lifetimes venv)."""
    import warnings

    warnings.filterwarnings("ignore")
    st = Stages()
    import numpy as np
    import pandas as pd
    from lifetimes import BetaGeoFitter, GammaGammaFitter
    from lifetimes.utils import summary_data_from_transaction_data

    st.mark("startup+imports")
    df = pd.read_csv(tx_path, parse_dates=["order_date"])
    st.mark("read", rows=len(df))
    # Frequency = repeat purchase days (freq 'D', as clvtool counts purchase days), recency and T in weeks.
    s = summary_data_from_transaction_data(
        df, "customer_id", "order_date", monetary_value_col="amount", freq="D"
    )
    s["recency"] = s["recency"] / 7.0
    s["T"] = s["T"] / 7.0
    st.mark("summary", customers=len(s))
    bg = BetaGeoFitter(penalizer_coef=0.0).fit(s["frequency"], s["recency"], s["T"])
    st.mark("fit BG/NBD", params={k: float(v) for k, v in bg.params_.items()})
    repeat = s[(s["frequency"] > 0) & (s["monetary_value"] > 0)]
    gg = GammaGammaFitter(penalizer_coef=0.0).fit(repeat["frequency"], repeat["monetary_value"])
    st.mark("fit Gamma-Gamma", params={k: float(v) for k, v in gg.params_.items()})
    horizon_weeks = HORIZON_MONTHS * DAYS_PER_MONTH / 7.0
    s["p_alive"] = bg.conditional_probability_alive(s["frequency"], s["recency"], s["T"])
    s["expected_orders"] = bg.conditional_expected_number_of_purchases_up_to_time(
        horizon_weeks, s["frequency"], s["recency"], s["T"]
    )
    monthly = (1 + ANNUAL_DISCOUNT) ** (1 / 12) - 1
    s["predicted_clv"] = gg.customer_lifetime_value(
        bg,
        s["frequency"],
        s["recency"],
        s["T"],
        s["monetary_value"],
        time=HORIZON_MONTHS,
        discount_rate=monthly,
        freq="W",
    )
    st.mark("predict", mean_clv=float(np.nanmean(s["predicted_clv"].to_numpy())))
    s.to_csv(out_csv)
    st.mark("write")
    versions = {m.__name__: m.__version__ for m in (np, pd)}
    import lifetimes
    import scipy

    versions.update(lifetimes=lifetimes.__version__, scipy=scipy.__version__)
    Path(result_json).write_text(json.dumps({"stages": st.rows, "versions": versions}))


WORKERS = {
    "clvtool": worker_clvtool,
    "profile": worker_profile,
    "read": worker_read,
    "lifetimes": worker_lifetimes,
}


# ---- the lifetimes environment --------------------------------------------------------------------


def lifetimes_python(smoke_csv: Path) -> tuple[Path | None, str]:
    """bench/out/lifetimes-venv's python, created and checked on a small file; (None, why) if impossible."""
    python = LIFETIMES_VENV / "bin" / "python"
    if not python.exists():
        base = shutil.which("python3") or sys.executable
        print(f"creating {LIFETIMES_VENV} ({base} -m venv) ...", flush=True)
        subprocess.run([base, "-m", "venv", str(LIFETIMES_VENV)], check=True)
    attempts = [LIFETIMES_FIRST, LIFETIMES_PINNED]
    notes = []
    for reqs in attempts:
        if not _smoke_lifetimes(python, smoke_csv):
            print(f"pip install {' '.join(reqs)} into {LIFETIMES_VENV} ...", flush=True)
            pip = subprocess.run(
                [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *reqs],
                capture_output=True,
                text=True,
            )
            if pip.returncode != 0:
                notes.append(f"pip install {' '.join(reqs)} failed: {pip.stderr.strip()[-500:]}")
                continue
        if _smoke_lifetimes(python, smoke_csv):
            return python, "; ".join(notes)
        notes.append(f"lifetimes with {' '.join(reqs)} failed its smoke test")
    return None, "; ".join(notes)


def _smoke_lifetimes(python: Path, smoke_csv: Path) -> bool:
    if not python.exists():
        return False
    res = OUT / "logs" / "lifetimes_smoke.json"
    r = measure(
        [
            str(python),
            __file__,
            "--worker",
            "lifetimes",
            str(smoke_csv),
            str(OUT / "lifetimes_smoke.csv"),
            str(res),
        ],
        log=OUT / "logs" / "lifetimes_smoke.log",
        timeout=600,
    )
    return r["rc"] == 0


# ---- driver ---------------------------------------------------------------------------------------


SAMPLE_START = "2022-07-01"  # the window that gives PRODUCT §7's shape (see the module docstring)
SAMPLE_DEFAULT_START = "2024-01-01"  # clvtool sample's own default


def sample_tag(customers: int, start: str) -> str:
    """The name part of a data set's files: N, or N_START for a window other than sample's default."""
    return str(customers) if start == SAMPLE_DEFAULT_START else f"{customers}_{start}"


def sample_data(customers: int, seed: int, start: str) -> Path:
    data = (
        OUT / f"sample_{customers}_{seed}"
        if start == SAMPLE_DEFAULT_START
        else OUT / f"sample_{customers}_{seed}_{start}"
    )
    tx = data / "transactions.csv"
    if not tx.exists():
        r = must(
            measure(
                [
                    sys.executable,
                    "-m",
                    "clvtool",
                    "sample",
                    str(data),
                    "-n",
                    str(customers),
                    "--seed",
                    str(seed),
                    "--start",
                    start,
                    "-q",
                ],
                log=OUT / "logs" / f"sample_{sample_tag(customers, start)}.log",
                env=child_env(),
            ),
            "clvtool sample",
        )
        print(f"clvtool sample -n {customers} --seed {seed} --start {start}: {r['wall']:.1f} s")
    return tx


def git_state() -> str:
    """HEAD's short hash, plus how many files under clvtool/ differ from it (the tree measured)."""
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--", "clvtool"], capture_output=True, text=True
    )
    changed = len(dirty.stdout.splitlines())
    return (head.stdout.strip() or "?") + (
        f" + {changed} uncommitted file(s) under clvtool/" if changed else ""
    )


def count_rows(path: Path) -> int:
    with path.open("rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 24), b"")) - 1


def best_of(runs: list[dict]) -> dict:
    """Fastest run's wall; the largest peak RSS of all runs (ru_maxrss is itself a maximum)."""
    ok = [r for r in runs if r["rc"] == 0]
    fastest = min(ok, key=lambda r: r["wall"])
    return {**fastest, "peak_mib": max(r["peak_mib"] for r in ok), "walls": [r["wall"] for r in ok]}


def run_worker(python: str, mode: str, args: list[str], tag: str, timeout: float | None = None) -> dict:
    result = OUT / "logs" / f"{tag}.json"
    result.unlink(missing_ok=True)
    r = measure(
        [python, __file__, "--worker", mode, *args, str(result)],
        log=OUT / "logs" / f"{tag}.log",
        timeout=timeout,
        env=child_env(),
    )
    if r["rc"] == 0:
        r.update(json.loads(result.read_text()))
    return r


def bench_size(args: argparse.Namespace, customers: int, lt_python: Path | None, lt_note: str) -> dict:
    tx = sample_data(customers, args.seed, args.start)
    tag = sample_tag(customers, args.start)
    rows = count_rows(tx)
    print(f"\n== {tx} ({rows:,} rows, {tx.stat().st_size / 2**20:.0f} MiB) ==", flush=True)
    py = sys.executable
    res: dict = {
        "customers_arg": customers,
        "start": args.start,
        "rows": rows,
        "file_mib": tx.stat().st_size / 2**20,
        "loadavg_start": os.getloadavg(),
        "commit_start": git_state(),
    }
    QUIET["waits"].clear()
    cli_out = OUT / f"customers_{tag}.csv"
    runs: dict[str, list[dict]] = defaultdict(list)
    # Rounds interleave the measurements, so a burst of load elsewhere hits one round, not one method.
    for rnd in range(args.repeat):
        print(f"round {rnd + 1}/{args.repeat}:", flush=True)
        for name, cmd in (
            (
                "bare eager: pl.read_csv + group_by",
                [py, "-c", BASELINE_EAGER, str(tx), str(OUT / "bare.csv")],
            ),
            ("bare lazy: pl.scan_csv + group_by", [py, "-c", BASELINE_LAZY, str(tx), str(OUT / "bare.csv")]),
            (
                "clvtool customers -q -o out.csv",
                [py, "-m", "clvtool", "customers", str(tx), "-q", "-o", str(cli_out)],
            ),
        ):
            r = must(
                measure(
                    cmd,
                    log=OUT / "logs" / f"{name.split(':')[0].replace(' ', '_')}_{tag}.log",
                    env=child_env(),
                ),
                name,
            )
            runs[name].append(r)
            print(f"  {name:40s} {r['wall']:8.2f} s  {r['peak_mib']:8.0f} MiB", flush=True)
        r = run_worker(py, "clvtool", [str(tx), str(OUT / f"stages_{tag}.csv")], f"stages_{tag}")
        must(r, "clvtool stages worker")
        runs["clvtool stages"].append(r)
        print(
            f"  {'clvtool stages (one process)':40s} {r['wall']:8.2f} s  {r['peak_mib']:8.0f} MiB", flush=True
        )
    res["measurements"] = {k: best_of(v) for k, v in runs.items() if k != "clvtool stages"}
    stage_runs = runs["clvtool stages"]
    best_stage_run = min(stage_runs, key=lambda r: r["wall"])
    res["clvtool_stages"] = {
        "wall": best_stage_run["wall"],
        "peak_mib": max(r["peak_mib"] for r in stage_runs),
        # Per stage: the best wall over the runs; peak RSS after the stage as measured in the best run.
        "stages": [
            {**row, "wall": min(r["stages"][i]["wall"] for r in stage_runs)}
            for i, row in enumerate(best_stage_run["stages"])
        ],
    }
    res["lifetimes"] = run_lifetimes(args, customers, rows, tx, lt_python, lt_note)
    if args.profile:
        res["profile"] = run_profile(args, customers, tx)
    # The outputs (up to 0.8 GiB each at 10 M rows) were only written to be timed.
    for pattern in (
        "customers_{}.csv",
        "stages_{}.csv",
        "lifetimes_{}.csv",
        "profile_{}.csv",
        "pyspy_{}.csv",
    ):
        (OUT / pattern.format(customers)).unlink(missing_ok=True)
    (OUT / "bare.csv").unlink(missing_ok=True)
    res["loadavg_end"] = os.getloadavg()
    res["commit_end"] = git_state()
    res["busy_before"] = list(QUIET["waits"])
    return res


def run_lifetimes(
    args: argparse.Namespace, customers: int, rows: int, tx: Path, python: Path | None, note: str
) -> dict:
    tag = sample_tag(customers, args.start)
    if args.skip_lifetimes:
        return {"status": "skipped (--skip-lifetimes)"}
    if python is None:
        return {"status": f"not run: lifetimes could not be installed or run ({note})"}
    # The budget: a smaller size measured before (this run or an earlier one) that took longer than
    # the budget means this size is extrapolated, not run.
    for prev in sorted(previous_results().values(), key=lambda p: p["rows"], reverse=True):
        lt = prev.get("lifetimes", {})
        if prev["rows"] < rows and lt.get("status") == "measured" and lt["wall"] > args.lifetimes_budget:
            estimate = lt["wall"] * rows / prev["rows"]
            return {
                "status": "extrapolated",
                "wall": estimate,
                "basis": f"{lt['wall']:.0f} s measured at {prev['rows']:,} rows (> budget "
                f"{args.lifetimes_budget:.0f} s), scaled linearly in rows: NOT MEASURED",
                "stages": [
                    {"stage": s["stage"], "wall": s["wall"] * rows / prev["rows"], "peak_mib": None}
                    for s in lt["stages"]
                ],
            }
    print(f"  lifetimes (timeout {args.lifetimes_timeout:.0f} s) ...", flush=True)
    r = run_worker(
        str(python),
        "lifetimes",
        [str(tx), str(OUT / f"lifetimes_{tag}.csv")],
        f"lifetimes_{tag}",
        timeout=args.lifetimes_timeout,
    )
    if r["timed_out"]:
        return {"status": "timed out", "wall": r["wall"], "peak_mib": r["peak_mib"], "note": note}
    if r["rc"] != 0:
        tail = Path(r["log"]).read_text(errors="replace")[-1500:]
        return {"status": f"crashed (exit {r['rc']}): {tail}", "note": note}
    print(f"  {'lifetimes (pandas)':40s} {r['wall']:8.2f} s  {r['peak_mib']:8.0f} MiB", flush=True)
    return {"status": "measured", **r, "note": note}


def run_profile(args: argparse.Namespace, customers: int, tx: Path) -> dict:
    tag = sample_tag(customers, args.start)
    py = sys.executable
    prof: dict = {}
    print("  profile: sub-steps ...", flush=True)
    r = must(
        run_worker(py, "profile", [str(tx), str(OUT / f"profile_{tag}.csv")], f"profile_{tag}"),
        "profile",
    )
    prof["substeps"] = {
        "wall": r["wall"],
        "peak_mib": r["peak_mib"],
        "calls": r["calls"],
        "sizes_mib": r["sizes_mib"],
    }
    prof["read_variants"] = {}
    for label, variant in READ_VARIANTS.items():
        walls = []
        for _ in range(max(1, min(args.repeat, 2))):
            rr = must(run_worker(py, "read", [str(tx), variant], f"read_{variant}_{tag}"), f"read {variant}")
            walls.append(rr)
        best = min(walls, key=lambda x: x["wall"])
        prof["read_variants"][label] = {
            "inner_wall": min(x["wall"] for x in walls),  # the read alone, without the interpreter start
            "peak_mib": max(x["peak_mib"] for x in walls),
            "frame_mib": best["frame_mib"],
            "columns": best["columns"],
        }
        print(
            f"    {label[:60]:60s} {prof['read_variants'][label]['inner_wall']:7.2f} s  "
            f"{prof['read_variants'][label]['peak_mib']:7.0f} MiB",
            flush=True,
        )
    if args.py_spy:
        prof["py_spy"] = run_py_spy(tag, tx)
    return prof


def run_py_spy(tag: str, tx: Path) -> dict:
    spy = TOOLS_VENV / "bin" / "py-spy"
    if not spy.exists():
        subprocess.run([shutil.which("python3") or sys.executable, "-m", "venv", str(TOOLS_VENV)], check=True)
        subprocess.run([str(TOOLS_VENV / "bin" / "pip"), "install", "-q", "py-spy"], check=True)
    raw = OUT / f"pyspy_{tag}.txt"
    print("  profile: py-spy record of the CLI ...", flush=True)
    cmd = [
        str(spy),
        "record",
        "--idle",
        "--rate",
        "100",
        "--format",
        "raw",
        "-o",
        str(raw),
        "--",
        sys.executable,
        "-m",
        "clvtool",
        "customers",
        str(tx),
        "-q",
        "-o",
        str(OUT / f"pyspy_{tag}.csv"),
    ]
    must(measure(cmd, log=OUT / "logs" / f"pyspy_{tag}.log", env=child_env()), "py-spy")
    return summarise_py_spy(raw)


def summarise_py_spy(raw: Path) -> dict:
    """py-spy samples (all Python threads; Polars' own threads are not Python threads, so a collect
    shows as its calling line) by the line of cli.customers, innermost clvtool function and line."""
    by_line: dict[str, int] = defaultdict(int)
    by_func: dict[str, int] = defaultdict(int)
    by_step: dict[str, int] = defaultdict(int)
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        step = [fr for fr in frames if fr.startswith("customers (clvtool/cli.py:")]
        by_step[step[0].split("cli.py:")[1].rstrip(")") if step else "-"] += n
        mine = [fr for fr in frames if "clvtool/" in fr]
        if not mine:
            by_line["(outside clvtool)"] += n
            by_func["(outside clvtool)"] += n
            continue
        # py-spy raw frames look like "function (path/to/file.py:123)"
        func, _, where = mine[-1].partition(" (")
        short = where.rstrip(")").split("clvtool/")[-1]
        by_line[f"{short} {func}"] += n
        by_func[f"{short.rsplit(':', 1)[0]}:{func}"] += n
    cli_lines = (ROOT / "clvtool" / "cli.py").read_text().splitlines()
    steps = [
        (f"cli.py:{k} {cli_lines[int(k) - 1].strip()[:70]}" if k != "-" else "(start-up, imports, typer)", n)
        for k, n in sorted(by_step.items(), key=lambda kv: -kv[1])
    ]

    def top(d: dict[str, int]) -> list[tuple[str, int]]:
        return sorted(d.items(), key=lambda kv: -kv[1])[:25]

    return {
        "samples": total,
        "raw": str(raw),
        "by_cli_step": steps,
        "by_function": top(by_func),
        "by_line": top(by_line),
    }


def previous_results() -> dict[int, dict]:
    found = {}
    for p in OUT.glob("results_predict_*.json"):
        try:
            d = json.loads(p.read_text())
            found[d["rows"]] = d
        except (ValueError, KeyError):
            continue
    return found


# ---- report ---------------------------------------------------------------------------------------


def fmt_size(rows: int) -> str:
    return f"{rows / 1e6:.1f} M rows"


def report(res: dict) -> str:
    m = res["measurements"]
    eager = m["bare eager: pl.read_csv + group_by"]
    lazy = m["bare lazy: pl.scan_csv + group_by"]
    cli = m["clvtool customers -q -o out.csv"]
    st = res["clvtool_stages"]
    lt = res["lifetimes"]
    L = []
    L.append(
        f"### {fmt_size(res['rows'])} ({res['rows']:,} rows, {res['file_mib']:.0f} MiB CSV, "
        f"`clvtool sample -n {res['customers_arg']} --seed {res.get('seed', 1)} "
        f"--start {res.get('start', SAMPLE_DEFAULT_START)}`, {res['customers_arg']:,} customers)"
    )
    start, end = res.get("commit_start", "?"), res.get("commit_end", "?")
    L.append(
        f"clvtool tree measured: {start}"
        + (f" at the start, {end} at the end (the tree changed during the run)" if start != end else "")
    )
    L.append(
        f"run {res.get('when', '')}; load average at start {res['loadavg_start'][0]:.2f}, "
        f"at end {res['loadavg_end'][0]:.2f}; best of {res.get('repeat', '?')} rounds"
    )
    busy = [b for b in res.get("busy_before", []) if b is not None]
    if busy:
        L.append(
            f"other processes' share of the CPUs just before each of {len(busy)} measurements: max "
            f"{100 * max(busy):.0f} %, {sum(b > 0.25 for b in busy)} started above 25 % (after waiting)"
        )
    L.append("")
    L.append("end to end, one child process each (wall = best of the rounds, peak RSS = largest):")
    L.append(f"  {'measurement':42s} {'wall s':>9s} {'peak RSS MiB':>13s}   all walls")
    for name, r in m.items():
        L.append(
            f"  {name:42s} {r['wall']:9.2f} {r['peak_mib']:13.0f}   "
            + ", ".join(f"{w:.2f}" for w in r["walls"])
        )
    L.append(f"  {'clvtool stages worker (one process)':42s} {st['wall']:9.2f} {st['peak_mib']:13.0f}")
    if lt.get("status") == "measured":
        L.append(f"  {'lifetimes 0.11.3 (pandas), one process':42s} {lt['wall']:9.2f} {lt['peak_mib']:13.0f}")
    elif "wall" in lt:
        L.append(
            f"  {'lifetimes 0.11.3 (pandas)':42s} {lt['wall']:9.0f} {'-':>13s}   [{lt['status'].upper()}]"
        )
    L.append("")
    L.append("stages (seconds; peak = process peak RSS after the stage, rss = resident after it, MiB):")
    lt_stages = {s["stage"]: s for s in lt.get("stages", [])}
    lt_map = {"fit": ["fit BG/NBD", "fit Gamma-Gamma"]}
    L.append(
        f"  {'stage':18s} {'clvtool s':>10s} {'peak':>7s} {'rss':>7s}   {'lifetimes s':>12s} {'peak':>7s}  {'lt/clv':>7s}"
    )
    for s in st["stages"]:
        names = lt_map.get(s["stage"], [s["stage"]])
        lts = [lt_stages[n] for n in names if n in lt_stages]
        lt_txt = ""
        if lts:
            lt_wall = sum(x["wall"] for x in lts)
            peaks = [x["peak_mib"] for x in lts if x.get("peak_mib") is not None]
            peak_txt = f"{max(peaks):7.0f}" if peaks else f"{'-':>7s}"
            mark = "" if lt.get("status") == "measured" else " (extrapolated)"
            lt_txt = f"{lt_wall:12.2f} {peak_txt}  {lt_wall / s['wall']:6.1f}x{mark}"
        L.append(f"  {s['stage']:18s} {s['wall']:10.2f} {s['peak_mib']:7.0f} {s['rss_mib']:7.0f}   {lt_txt}")
    total = sum(s["wall"] for s in st["stages"])
    L.append(f"  {'sum of stages':18s} {total:10.2f}")
    for s in st["stages"]:
        if s["stage"] == "fit":
            L.append(
                f"  fit: {s['distinct_rows']:,} distinct (x, t_x, T) rows; BG/NBD "
                + ", ".join(f"{k} {v:.4g}" for k, v in s["bgnbd"].items())
                + "; Gamma-Gamma "
                + ", ".join(f"{k} {v:.4g}" for k, v in s["gamma_gamma"].items())
            )
        if s["stage"] == "predict":
            L.append(
                f"  mean predicted_clv: clvtool {s['mean_clv']:.2f}"
                + (
                    f", lifetimes {lt_stages['predict']['mean_clv']:.2f}"
                    if "predict" in lt_stages and "mean_clv" in lt_stages["predict"]
                    else ""
                )
            )
    if "fit BG/NBD" in lt_stages and "params" in lt_stages["fit BG/NBD"]:
        L.append(
            "  lifetimes BG/NBD "
            + ", ".join(f"{k} {v:.4g}" for k, v in lt_stages["fit BG/NBD"]["params"].items())
            + "; Gamma-Gamma "
            + ", ".join(f"{k} {v:.4g}" for k, v in lt_stages["fit Gamma-Gamma"]["params"].items())
        )
    if lt.get("versions"):
        L.append("  lifetimes venv: " + ", ".join(f"{k} {v}" for k, v in lt["versions"].items()))
    if lt.get("status") != "measured":
        L.append(f"  lifetimes: {lt.get('status')}" + (f" — {lt['basis']}" if lt.get("basis") else ""))
    if lt.get("note"):
        L.append(f"  lifetimes install notes: {lt['note']}")
    L.append("")
    L.append("PRODUCT §7 ratios:")

    def verdict(ok: bool) -> str:
        return "MET" if ok else "MISSED"

    for base_name, base in (("eager read_csv", eager), ("lazy scan_csv", lazy)):
        t = cli["wall"] / base["wall"]
        mem = cli["peak_mib"] / base["peak_mib"]
        L.append(
            f"  clvtool end-to-end / bare {base_name} + group_by: time {t:5.2f}x (target <= 3x: {verdict(t <= 3)}),"
            f" peak RSS {mem:5.2f}x (target <= 1.5x: {verdict(mem <= 1.5)})"
        )
    if "wall" in lt:
        ratio = lt["wall"] / cli["wall"]
        tag = "" if lt["status"] == "measured" else f" [{lt['status'].upper()}, NOT MEASURED]"
        if lt["status"] == "timed out":
            tag = " [lifetimes TIMED OUT: a lower bound]"
        L.append(
            f"  lifetimes / clvtool end-to-end: {ratio:5.1f}x (target >= 10x: {verdict(ratio >= 10)}){tag}"
        )
        if st["stages"] and lt.get("stages"):
            work_lt = sum(s["wall"] for s in lt["stages"] if s["stage"] != "startup+imports")
            work_cl = sum(s["wall"] for s in st["stages"] if s["stage"] != "startup+imports")
            L.append(f"  lifetimes / clvtool, stages without start-up: {work_lt / work_cl:5.1f}x{tag}")
    if "profile" in res:
        L.extend(report_profile(res["profile"]))
    return "\n".join(L) + "\n"


def report_profile(prof: dict) -> list[str]:
    L = [
        "",
        "profile (one extra child running the `customers` work with sub-steps timed; "
        f"{prof['substeps']['wall']:.1f} s, peak {prof['substeps']['peak_mib']:.0f} MiB):",
    ]
    L.append(
        "  frame sizes (estimated_size, MiB): "
        + ", ".join(f"{k} {v:.0f}" for k, v in prof["substeps"]["sizes_mib"].items())
    )
    L.append(f"  {'call (indent = nesting)':78s} {'wall s':>7s} {'peak':>7s} {'rss':>7s}")
    for c in prof["substeps"]["calls"]:
        if c["wall"] < 0.05 and not c["call"].startswith("STAGE"):
            continue
        L.append(
            f"  {'  ' * c['depth'] + c['call'][: 76 - 2 * c['depth']]:78s} {c['wall']:7.2f} {c['peak_mib']:7.0f} {c['rss_mib']:7.0f}"
        )
    L.append("  read variants (each its own process; wall of the read alone; peak RSS of the process):")
    for label, v in prof["read_variants"].items():
        L.append(
            f"    {label[:82]:82s} {v['inner_wall']:6.2f} s {v['peak_mib']:7.0f} MiB  frame {v['frame_mib']:5.0f} MiB, {v['columns']} cols"
        )
    if "py_spy" in prof:
        ps = prof["py_spy"]
        L.append(f"  py-spy record --idle of the CLI ({ps['samples']} samples at 100 Hz; {ps['raw']}):")
        L.append("  ... by the line of cli.customers being run")
        for k, n in ps.get("by_cli_step", [])[:10]:
            L.append(f"    {100 * n / ps['samples']:5.1f}%  {k}")
        L.append("  ... by innermost clvtool function")
        for k, n in ps["by_function"][:15]:
            L.append(f"    {100 * n / ps['samples']:5.1f}%  {k}")
        L.append("  ... by innermost clvtool line")
        for k, n in ps["by_line"][:20]:
            L.append(f"    {100 * n / ps['samples']:5.1f}%  {k}")
    return L


def environment() -> str:
    import importlib.metadata as md

    def v(name: str) -> str:
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            return "-"

    git = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--", "clvtool"], capture_output=True, text=True
    )
    changed = len(dirty.stdout.splitlines())
    return (
        f"clvtool tree: commit {git.stdout.strip() or '?'}"
        + (f" with {changed} uncommitted file(s) under clvtool/" if changed else " (clean)")
        + "\n"
        f"machine: {os.cpu_count()} cores, {os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 2**30:.0f} GiB; "
        f"Python {platform.python_version()}; clvtool {v('clvtool')}, polars {v('polars')}, numpy {v('numpy')}, "
        f"scipy {v('scipy')}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--customers",
        type=int,
        nargs="+",
        default=[350_000],
        help="clvtool sample -n values (about 2.9 rows each with the default --start): 350000 ~ 1 M rows, "
        "3500000 ~ 10 M",
    )
    ap.add_argument(
        "--start",
        default=SAMPLE_START,
        help=f"clvtool sample --start (window ends 2025-12-31). {SAMPLE_START}: PRODUCT §7's 10 M rows from "
        f"3.5 M customers; {SAMPLE_DEFAULT_START}: sample's default, about 2.35 rows per customer",
    )
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=2, help="rounds of the cheap measurements (best is kept)")
    ap.add_argument("--skip-lifetimes", action="store_true")
    ap.add_argument(
        "--lifetimes-budget",
        type=float,
        default=300.0,
        help="seconds: a size whose lifetimes run took longer makes larger sizes extrapolated",
    )
    ap.add_argument("--lifetimes-timeout", type=float, default=3600.0, help="hard limit of one lifetimes run")
    ap.add_argument("--profile", action="store_true", help="also time clvtool's sub-steps and read variants")
    ap.add_argument("--py-spy", action="store_true", help="with --profile: py-spy record of the CLI")
    ap.add_argument(
        "--quiet-wait",
        type=float,
        default=120.0,
        help="seconds to wait before each measurement for other processes (tests) to leave the CPUs",
    )
    ap.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    QUIET["max_wait"] = args.quiet_wait if not args.worker else 0.0
    if args.worker:
        WORKERS[args.worker[0]](*args.worker[1:])
        return
    OUT.mkdir(exist_ok=True)
    lt_python, lt_note = None, ""
    if not args.skip_lifetimes:
        # The first rows of a sample file: 50,000 of them hold enough repeat buyers for lifetimes'
        # Gamma-Gamma fit to converge (5,000, nearly all first purchases, did not).
        smoke = OUT / "lifetimes_smoke_input_50k.csv"
        if not smoke.exists():
            first = sample_data(min(args.customers), args.seed, args.start)
            with first.open() as src, smoke.open("w") as dst:
                for i, line in enumerate(src):
                    if i > 50_000:
                        break
                    dst.write(line)
        lt_python, lt_note = lifetimes_python(smoke)
        print(f"lifetimes venv: {lt_python or 'unavailable'} {lt_note}")
    for customers in sorted(args.customers):
        res = bench_size(args, customers, lt_python, lt_note)
        res.update(seed=args.seed, repeat=args.repeat, when=time.strftime("%Y-%m-%d %H:%M"))
        (OUT / f"results_predict_{sample_tag(customers, args.start)}.json").write_text(
            json.dumps(res, indent=1, default=str)
        )
        print()
        print(report(res))
    text = "# bench/bench_predict.py results (latest run of each size)\n" + environment() + "\n\n"
    for _rows, res in sorted(previous_results().items()):
        text += report(res) + "\n"
    (OUT / "results_predict.txt").write_text(text)
    print(f"written: {OUT / 'results_predict.txt'}")


if __name__ == "__main__":
    main()
