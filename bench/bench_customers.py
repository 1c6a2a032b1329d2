"""Benchmark: `clvtool customers` on data made by `clvtool sample`, beside a bare Polars baseline.

Run by hand (not a test):  python bench/bench_customers.py [--customers 430000] [--repeat 3]
Prints wall time and peak RSS of each command, best of --repeat runs. The data set is cached in
bench/out/ by size and seed.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"

BASELINE = """
import polars as pl, sys
df = (pl.scan_csv(sys.argv[1]).group_by("customer_id")
      .agg(pl.col("amount").sum(), pl.col("order_date").min().alias("first"),
           pl.col("order_date").max().alias("last"), pl.len())
      .collect())
sys.stdout.write(df.write_csv())
"""


def run(cmd: list[str], *, stdout: int | None = subprocess.DEVNULL) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=stdout, stderr=subprocess.PIPE, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr.decode()}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, max(peak, before) / 1024


def best(cmd: list[str], repeat: int) -> tuple[float, float]:
    """Best wall time over `repeat` runs, with the peak RSS of the whole set (ru_maxrss is a maximum)."""
    runs = [run(cmd) for _ in range(repeat)]
    return min(r[0] for r in runs), max(r[1] for r in runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--customers", type=int, default=430_000, help="about 2.3 rows per customer")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    exe = [sys.executable, "-m", "clvtool"]
    data = OUT / f"sample_{args.customers}_{args.seed}"
    tx = data / "transactions.csv"
    if not tx.exists():
        OUT.mkdir(exist_ok=True)
        wall, _ = run([*exe, "sample", str(data), "-n", str(args.customers), "--seed", str(args.seed), "-q"])
        print(f"sample -n {args.customers}: {wall:.2f} s")
    rows = sum(1 for _ in tx.open()) - 1
    print(f"data: {tx} ({rows:,} rows, {tx.stat().st_size / 2**20:.1f} MiB)")
    os.environ.pop("NO_COLOR", None)
    # Each measurement runs in its own child; ru_maxrss of children is a running maximum, so peaks are
    # measured in increasing order of expected size.
    results = {
        "clvtool --help": best([*exe, "--help"], args.repeat),
        "bare polars scan + group_by": best([sys.executable, "-c", BASELINE, str(tx)], args.repeat),
        "clvtool customers -o out.csv": best(
            [*exe, "customers", str(tx), "-q", "-o", str(OUT / "customers.csv")], args.repeat
        ),
    }
    for name, (wall, peak) in results.items():
        print(f"{name:32s} {wall:7.3f} s   peak RSS <= {peak:8.1f} MiB")
    base = results["bare polars scan + group_by"][0]
    print(f"customers / baseline: {results['clvtool customers -o out.csv'][0] / base:.2f}x")


if __name__ == "__main__":
    main()
