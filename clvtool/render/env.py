"""The output environment: where data and messages go, and whether they may be coloured.

One object decides terminal or not and owns the stderr console (after httpie's context.py); tests
replace the streams. Rich is imported only when a console is first needed.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import IO, Any


def _isatty(stream: IO[Any]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


@dataclass
class Env:
    """Streams, verbosity and colour for one command run."""

    stdout: IO[str] = field(default_factory=lambda: sys.stdout)
    stderr: IO[str] = field(default_factory=lambda: sys.stderr)
    quiet: bool = False
    verbose: bool = False
    no_color: bool = False
    debug: bool = False
    _err_console: Any = None

    @property
    def stdout_is_terminal(self) -> bool:
        return _isatty(self.stdout)

    @property
    def stderr_is_terminal(self) -> bool:
        return _isatty(self.stderr)

    @property
    def color(self) -> bool:
        """Colour only on a terminal, and never with --no-color or NO_COLOR set (any value)."""
        return not self.no_color and "NO_COLOR" not in os.environ

    def console(self, stream: IO[str], *, width: int | None = None) -> Any:
        """A Rich console on `stream` that honours colour settings."""
        from rich.console import Console

        terminal = _isatty(stream)
        return Console(
            file=stream,
            no_color=not self.color,
            color_system="auto" if self.color and terminal else None,
            force_terminal=terminal if self.color else False,
            width=width,
            highlight=False,
            emoji=False,
            soft_wrap=False,
        )

    @property
    def err(self) -> Any:
        if self._err_console is None:
            self._err_console = self.console(self.stderr)
        return self._err_console

    def message(self, text: str, *, style: str | None = None) -> None:
        """A line on stderr, unless --quiet."""
        if not self.quiet:
            self._line(text, style)

    def warn(self, text: str) -> None:
        """A warning on stderr; --quiet silences it."""
        if not self.quiet:
            self._line(f"warning: {text}", "yellow")

    def info(self, text: str) -> None:
        """Detail shown only with --verbose."""
        if self.verbose and not self.quiet:
            self._line(text, "dim")

    def error(self, text: str) -> None:
        """The one-line error; always shown."""
        self._line(f"error: {text}", "bold red")

    def _line(self, text: str, style: str | None) -> None:
        line = f"clvtool: {text}"
        if self.color and self.stderr_is_terminal:
            from rich.text import Text

            self.err.print(Text(line, style=style or ""), soft_wrap=True)
        else:
            self.stderr.write(line + "\n")
            self.stderr.flush()
