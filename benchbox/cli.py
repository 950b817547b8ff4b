"""The command line: parse, call one function, render. No logic of its own."""

from __future__ import annotations

import errno
import os
import sys
from typing import Annotated

import typer

from benchbox import __version__
from benchbox.commands import CommandGroup, quick_help
from benchbox.errors import EXIT_USAGE, BenchboxError
from benchbox.files import os_reason
from benchbox.worker_process import NO_ISOLATION_ENV, discard_early, start_early

# The OS's refusals of a path itself (too long, a loop of links, a file where a folder should be).
PATH_ERRNOS = frozenset({errno.ENAMETOOLONG, errno.ELOOP, errno.ENOTDIR})

app = typer.Typer(
    name="benchbox",
    cls=CommandGroup,
    help="Which hardware and serving configuration meets your latency target at the lowest cost.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"benchbox {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    if debug:
        os.environ["BENCHBOX_DEBUG"] = "1"


# The commands live in benchbox/commands/, one module per room, each a module-level typer app
# that `CommandGroup` imports when one of its commands runs.


def _measures(argv: list[str]) -> bool:
    """Whether this command line runs a sweep in worker processes (then start one now)."""
    if not argv or argv[0] not in ("sweep", "run") or "--help" in argv:
        return False
    return "--no-isolation" not in argv and os.environ.get(NO_ISOLATION_ENV, "") in ("", "0")


def main() -> None:
    """Console entry point: run the app, turning benchbox errors into one line and an exit code."""
    if _measures(sys.argv[1:]):
        start_early()  # Python and onnxruntime start in it while this process imports the sweep
    try:
        _main()
    finally:
        discard_early()


def _main() -> None:
    try:
        text = quick_help(typer.main.get_command(app), sys.argv[1:])
        if text is not None:
            typer.echo(text)
            sys.exit(0)
        rc = app(standalone_mode=False)
    except BenchboxError as exc:
        if os.environ.get("BENCHBOX_DEBUG"):
            raise
        for line in exc.lines():
            print(line, file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:
        # Usage errors come from the click that typer bundles: they know how to show themselves.
        if hasattr(exc, "show") and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()
            sys.exit(exc.exit_code)
        if type(exc).__name__ == "Abort":
            print("aborted", file=sys.stderr)
            sys.exit(130)
        if os.environ.get("BENCHBOX_DEBUG"):
            raise
        if isinstance(exc, OSError) and exc.errno in PATH_ERRNOS and exc.filename:
            # A path the file system refuses, whatever benchbox does with it, is the user's input.
            print(f"error: cannot use {exc.filename}: {os_reason(exc)}", file=sys.stderr)
            print("hint: give a shorter or valid path", file=sys.stderr)
            sys.exit(EXIT_USAGE)
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        print("hint: re-run with --debug for the traceback, and report it", file=sys.stderr)
        sys.exit(3)
    sys.exit(rc if isinstance(rc, int) else 0)
