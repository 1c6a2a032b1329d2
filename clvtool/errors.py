"""Domain exceptions. The CLI maps each to one stderr line and an exit code (see ExitCode)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes (PRODUCT §6)."""

    OK = 0
    ERROR = 1  # bad data, failed run, --strict exclusions
    USAGE = 2  # wrong flags, missing arguments
    INTERRUPTED = 130


class ClvError(Exception):
    """An expected failure: the message names the file, the row or column, and ends with the fix."""

    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, message: str, *, source: str | None = None) -> None:
        super().__init__(message)
        self.source = source

    def __str__(self) -> str:
        message = super().__str__()
        return f"{self.source}: {message}" if self.source else message


class InputError(ClvError):
    """An input file cannot be read or does not have the shape the tool needs."""


class ConfigError(ClvError):
    """The configuration file, an environment variable or a --set override is invalid."""


class UsageError(ClvError):
    """The command line asks for something impossible (exit 2)."""

    exit_code = ExitCode.USAGE


class StrictModeError(ClvError):
    """--strict was given and rows were excluded."""


class FlagError(ConfigError):
    """A command-line option has an invalid value: a configuration problem given as a usage mistake (exit 2)."""

    exit_code = ExitCode.USAGE
