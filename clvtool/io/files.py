"""Atomic file writing: a temporary file beside the target, then a rename (PRODUCT §6)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from clvtool.errors import UsageError


def atomic_write(path: str | os.PathLike[str], data: bytes) -> None:
    """Write bytes to a temporary file beside `path`, then rename it over `path`."""

    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            fh.write(data)

    atomic_write_with(path, write)


def atomic_write_with(path: str | os.PathLike[str], write: Callable[[str], None]) -> None:
    """Let `write(tmp_path)` fill a temporary file beside `path`, then rename it over `path`."""
    target = Path(path)
    parent = target.parent
    if not parent.is_dir():
        raise UsageError(f"cannot write {target}: folder {parent} does not exist; create it first.")
    fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        os.close(fd)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual mode
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
