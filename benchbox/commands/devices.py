"""`benchbox devices`: what this machine offers to run models on."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from benchbox.devices import device_inventory


def register(app: typer.Typer) -> None:
    """Add `devices`."""

    @app.command()
    def devices(
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
    ) -> None:
        """Show the CPU, memory, onnxruntime providers, GPUs and power sources."""
        inv = device_inventory()
        if as_json:
            sys.stdout.write(json.dumps(inv, indent=1) + "\n")
            return
        console = Console()
        h = inv["host"]
        console.print(
            f"[bold]CPU[/] {h['cpu_model']}: {h['cpu_cores_logical']} logical / "
            f"{h['cpu_cores_physical']} physical cores, {h['memory_gb']:.1f} GiB memory",
            highlight=False,
        )
        console.print(
            f"[bold]onnxruntime[/] {h['onnxruntime']}: providers {', '.join(h['providers'])}",
            highlight=False,
        )
        gpus = inv["gpus"]
        if gpus:
            for g in gpus:
                console.print(
                    f"[bold]GPU {g['index']}[/] {g['name']}, {g['memory_gb']} GiB, driver {g['driver']}",
                    highlight=False,
                )
        else:
            console.print(f"[bold]GPUs[/] none ({inv['gpu_note']})", highlight=False)
        table = Table(title="devices", header_style="bold")
        for col in ("device", "usable", "memory", "power", "note"):
            table.add_column(col)
        for d in inv["devices"]:
            table.add_row(
                d["device"],
                "[green]yes[/]" if d["usable"] else "[red]no[/]",
                f"{d['memory_gb']} GiB" if d.get("memory_gb") else "—",
                d.get("power") or "—",
                d.get("why") or "",
            )
        console.print(table)
        if inv.get("power_sources"):
            for p in inv["power_sources"]:
                mark = "[green]yes[/]" if p["available"] else "[dim]no[/]"
                console.print(f"[bold]power[/] {p['name']}: {mark} {p['why']}", highlight=False)
