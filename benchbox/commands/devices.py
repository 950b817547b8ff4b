"""`benchbox devices`: what this machine offers to run models on."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import typer

from benchbox.commands.options import JsonOption
from benchbox.format import fmt_gib

if TYPE_CHECKING:
    from rich.console import Console

app = typer.Typer()


@app.command()
def devices(as_json: JsonOption = False) -> None:
    """List every device: usable or not (why, what to install), its memory and power source."""
    from rich.console import Console

    from benchbox.devices.inventory import device_inventory

    inv = device_inventory()
    if as_json:
        sys.stdout.write(json.dumps(inv, indent=1) + "\n")
        return
    render_inventory(inv, Console())


def render_inventory(inv: dict, console: Console) -> None:
    """The inventory as a few header lines and one table row per device."""
    from rich.markup import escape
    from rich.table import Table

    h = inv["host"]

    def line(text: str) -> None:
        console.print(text, highlight=False)

    line(
        f"[bold]CPU[/] {escape(h['cpu_model'])}: {h['cpu_cores_logical']} logical / "
        f"{h['cpu_cores_physical']} physical cores, {fmt_gib(h['memory_gb'])} memory"
    )
    line(f"[bold]onnxruntime[/] {h['onnxruntime']}: providers {', '.join(h['providers'])}")
    for p in inv.get("plugins", []):
        line(f"[bold]plugin[/] {escape(p['package'])}: {escape(p['status'])}")
    ov = inv.get("openvino")
    line(f"[bold]OpenVINO[/] {ov}" if ov else "[bold]OpenVINO[/] not installed")
    for g in inv["gpus"]:
        line(
            f"[bold]GPU {g['index']}[/] {escape(g['name'])}, {fmt_gib(g['memory_gb'])}, "
            f"driver {g['driver']}"
        )
    if inv.get("gpu_note"):
        line(f"[bold]GPUs[/] {escape(inv['gpu_note'])}")
    table = Table(title="devices", header_style="bold")
    for col in ("device", "runtime", "usable", "memory", "power", "notes"):
        table.add_column(col, overflow="fold")
    for d in inv["devices"]:
        if d["usable"]:
            notes = escape(d.get("note") or "")
        else:
            notes = f"{escape(d['why'] or '')}\n[dim]{escape(d['install'] or '')}[/]"
        table.add_row(
            escape(d["device"]),
            escape(d["runtime"]),
            "[green]yes[/]" if d["usable"] else "[red]no[/]",
            fmt_gib(d.get("memory_gb") or None),
            escape(d.get("power") or "—"),
            notes,
        )
    console.print(table)
    line(f"[bold]--device all[/] = {', '.join(inv.get('all') or []) or 'nothing'}")
    for p in inv.get("power_sources", []):
        mark = "[green]yes[/]" if p["available"] else "[dim]no[/]"
        line(f"[bold]power[/] {p['name']}: {mark} {escape(p['why'])}")
