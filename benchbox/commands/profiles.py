"""`benchbox profiles`: the machine profiles (price and power) that cost figures come from."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from benchbox import cost
from benchbox.commands.options import JsonOption

app = typer.Typer(
    name="profiles",
    help="Machine profiles: what an hour costs and what the machine draws.",
    add_completion=False,
    rich_markup_mode=None,
)


@app.callback(invoke_without_command=True)
def profiles(ctx: typer.Context) -> None:
    """The machine profiles (no subcommand: list them)."""
    if ctx.invoked_subcommand is None:
        _print_list(as_json=False)


@app.command("list")
def list_(as_json: JsonOption = False) -> None:
    """List every profile: built-ins and those in BENCHBOX_PROFILES folders."""
    _print_list(as_json)


@app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="A profile name, or a path to a .toml file.")],
    as_json: JsonOption = False,
) -> None:
    """Show one profile in full, with the source of its price."""
    profile = cost.load_profile(name)
    if as_json:
        sys.stdout.write(json.dumps(cost.profile_to_dict(profile), indent=1) + "\n")
        return
    _print_one(profile)


def _hardware(profile: cost.Profile) -> str:
    hw = profile.hardware
    parts = []
    if hw.get("vcpus"):
        parts.append(f"{hw['vcpus']} vCPU")
    if hw.get("gpus"):
        parts.append(str(hw["gpus"]))
    elif hw.get("cpu"):
        parts.append(str(hw["cpu"]))
    return ", ".join(parts)


def _print_list(as_json: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    profiles = cost.list_profiles()
    if as_json:
        data = [cost.profile_to_dict(p) for p in profiles]
        sys.stdout.write(json.dumps(data, indent=1) + "\n")
        return
    table = Table(title="profiles", header_style="bold")
    table.add_column("name", no_wrap=True)
    table.add_column("hardware")
    table.add_column("$/hour", justify="right")
    table.add_column("energy")
    table.add_column("price date", no_wrap=True)
    for p in profiles:
        energy = "included" if p.power.energy_included else f"${p.power.usd_per_kwh:g}/kWh"
        table.add_row(p.name, _hardware(p), f"{p.price_per_hour_usd:.4g}", energy, p.price_date)
    console = Console()
    console.print(table)
    console.print(
        "Cloud prices are list on-demand rates, on-premises ones amortised hardware; each "
        "names its source (`benchbox profiles show NAME`); add yours with BENCHBOX_PROFILES=DIR.",
        highlight=False,
    )
    for p in profiles:
        if cost.shadowed_builtin(p) is not None:
            console.print(f"note: {_shadow_note(p)}", highlight=False)


def _print_one(p: cost.Profile) -> None:
    from rich.console import Console
    from rich.markup import escape

    console = Console()
    spec = p.power
    console.print(f"[bold]{escape(p.name)}[/]  {escape(p.description)}", highlight=False)
    console.print(f"price        ${p.price_per_hour_usd:g} per hour", highlight=False)
    console.print(f"source       {escape(p.price_source)}", highlight=False)
    console.print(f"price date   {escape(str(p.price_date))}", highlight=False)
    energy = (
        "included in the price"
        if spec.energy_included
        else f"paid separately at ${spec.usd_per_kwh:g}/kWh, PUE {spec.pue:g}"
    )
    console.print(
        f"power        {spec.idle_w:g} W idle, {spec.tdp_w:g} W at full load; energy {energy}",
        highlight=False,
    )
    for key, value in p.hardware.items():
        console.print(f"{key:<12} {escape(str(value))}", highlight=False)
    if p.path:
        console.print(f"file         {escape(str(p.path))}", highlight=False)
    if cost.shadowed_builtin(p) is not None:
        console.print(f"note         {escape(_shadow_note(p))}", highlight=False)


def _shadow_note(p: cost.Profile) -> str:
    return f"{p.name} is yours ({p.path}) and wins over the built-in profile of that name"
