"""clvtool: customer lifetime value from order and marketing-spend files."""

__version__ = "0.1.0"

# Two process settings, made before NumPy is imported and only where the user has not set them:
# - NumPy asks the kernel for transparent huge pages on large arrays (madvise). Where the kernel then
#   compacts memory on the spot (the common `defrag = madvise` setting) that costs seconds of system
#   time per run on millions of rows; clvtool's arrays are short-lived, so it opts out.
# - OpenBLAS keeps worker threads spinning after each call. clvtool's matrices are 4x4 Hessians, so
#   those threads only take CPU from Polars (1.5 s of a 17 s run on 10 M rows); one thread is enough.
import os as _os

_os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")
_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
