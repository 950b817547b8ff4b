"""The errors users can meet: each carries a one-line message, an optional hint and an exit code."""

from __future__ import annotations

EXIT_OK = 0
EXIT_GATE = 1
EXIT_USAGE = 2
EXIT_NOTHING_MEASURED = 3
EXIT_INTERRUPTED = 130


class BenchboxError(Exception):
    """Base of every error benchbox reports to a user without a traceback."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def lines(self) -> list[str]:
        """The one or two lines shown on stderr."""
        out = [f"error: {self.message}"]
        if self.hint:
            out.append(f"hint: {self.hint}")
        return out


class BadInput(BenchboxError):
    """Bad usage or input: a missing file, a malformed list, an unknown device (exit 2)."""

    exit_code = EXIT_USAGE


class GateFailed(BenchboxError):
    """The run worked but a gate failed: no config meets the target, a regression (exit 1)."""

    exit_code = EXIT_GATE


class NothingMeasured(BenchboxError):
    """Not a single cell could be measured (exit 3)."""

    exit_code = EXIT_NOTHING_MEASURED


class Interrupted(BenchboxError):
    """The user stopped the run; the partial report was saved (exit 130)."""

    exit_code = EXIT_INTERRUPTED
