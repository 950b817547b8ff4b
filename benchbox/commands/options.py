"""What the commands share: choice options over a stage's vocabulary, and `--json`."""

from __future__ import annotations

from enum import StrEnum
from functools import partial
from typing import Annotated, Any

import typer

from benchbox.parse import parse_choice

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]


def choice_option(kind: type[StrEnum], flag: str, what: str, *names: str, **kw: Any) -> Any:
    """A typer option whose value is a member of `kind` (the help lists them); a bad choice is
    one line naming the flag, then the choices (exit 2), not click's usage block."""
    return typer.Option(
        flag, *names, parser=partial(parse_choice, kind, what=what, flag=flag), **kw
    )
