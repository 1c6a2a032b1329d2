"""Atomic file writing: a temporary file beside the target, then a rename (PRODUCT §6)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from clvtool.errors import UsageError


def atomic_write(path: str | os.PathLike[str], data: bytes) -> None:
    """Write bytes to a temporary file beside `path`, then rename it over `path`."""
    target = Path(path)
    parent = target.parent
    if not parent.is_dir():
        raise UsageError(f"cannot write {target}: folder {parent} does not exist; create it first.")
    fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual mode
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
