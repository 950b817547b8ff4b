"""`benchbox models`: list the built-in models, or build one into an ONNX file.

The zoo (and onnx with it) is imported when a command runs.
"""

from __future__ import annotations

import json
import pathlib
from typing import Annotated

import typer

from benchbox.commands.options import JsonOption

app = typer.Typer(
    name="models",
    help="The built-in models: list them, or build one into an ONNX file.",
    add_completion=False,
    rich_markup_mode=None,
)


@app.callback(invoke_without_command=True)
def models(ctx: typer.Context) -> None:
    """The built-in models (no subcommand: list them)."""
    if ctx.invoked_subcommand is None:
        _print_list(as_json=False)


@app.command("list")
def list_(as_json: JsonOption = False) -> None:
    """List the built-in models with their inputs and parameters."""
    _print_list(as_json)


@app.command("build")
def build(
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="A built-in model name (see `models list`).")
    ],
    out: Annotated[
        pathlib.Path,
        typer.Option(
            "--out", "-o", metavar="FILE", help="The ONNX file to write (or a folder for it)."
        ),
    ],
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", metavar="KEY=VALUE", help="A model parameter (repeatable)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Build a built-in model into an ONNX file; prints its path and sha256."""
    from benchbox import zoo

    params = zoo.resolve_params(name, **zoo.parse_params(param or [], name))
    target = out / f"{name}.onnx" if out.is_dir() else out
    sha256 = zoo.save(name, target, **params)
    if as_json:
        record = {"name": name, "params": params, "path": str(target), "sha256": sha256}
        typer.echo(json.dumps(record))
        return
    size_mb = target.stat().st_size / 1e6
    shown = ", ".join(f"{k}={v}" for k, v in params.items())
    typer.echo(f"wrote {target} ({name}{f' {shown}' if shown else ''}; {size_mb:.1f} MB)")
    typer.echo(f"sha256 {sha256}")


def _print_list(as_json: bool) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from benchbox import zoo

    entries = zoo.list_models()
    if as_json:
        rows = [
            {"name": e.name, "description": e.description, "inputs": e.inputs, "params": e.params}
            for e in entries
        ]
        typer.echo(json.dumps(rows, indent=1))
        return
    table = Table(title="built-in models", title_justify="left")
    for column in ("name", "inputs", "params", "description"):
        table.add_column(column, overflow="fold")
    for e in entries:
        params = ", ".join(f"{k}={v}" for k, v in e.params.items()) or "-"
        name = f"{e.name} (demo)" if e.name == zoo.DEMO_MODEL else e.name
        table.add_row(*(Text(cell) for cell in (name, e.inputs, params, e.description)))
    console = Console()
    console.print(table)
    console.print(
        "build one with: benchbox models build NAME --out FILE [--param KEY=VALUE]",
        highlight=False,
    )
