"""How backupctl ends: exit 0 on success, 1 when it found a problem, 2 on bad usage (DESIGN.md)."""

from __future__ import annotations

from typing import Final

OK: Final = 0
PROBLEM: Final = 1
USAGE: Final = 2


class CliError(Exception):
    """One sentence for the admin, and the exit status it ends with."""

    def __init__(self, message: str, exit_code: int = PROBLEM) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class UsageError(CliError):
    """The command line itself is wrong (an unknown id, a date in the wrong form...)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, USAGE)
