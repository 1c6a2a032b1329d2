"""Entry point for the `clvtool` script and `python -m clvtool`: exit codes and closed pipes."""

from __future__ import annotations

import os
import sys


def main() -> None:
    """Run the CLI; a closed stdout (`| head`) ends quietly, Ctrl-C exits 130."""
    from clvtool.cli import app

    try:
        app()
    except BrokenPipeError:
        # Python flushes stdout at exit; point it at /dev/null so that flush cannot fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(0)
    except KeyboardInterrupt:
        sys.stderr.write("\n")
        sys.exit(130)


if __name__ == "__main__":
    main()
