"""clvtool: customer lifetime value from order and marketing-spend files."""

__version__ = "0.1.0"

# NumPy asks the kernel for transparent huge pages on large arrays (madvise). Where the kernel then
# compacts memory on the spot (the common `defrag = madvise` setting) that costs seconds of system time
# per run on millions of rows; clvtool's arrays are short-lived, so it opts out unless told otherwise.
import os as _os

_os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")
