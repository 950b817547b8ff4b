"""The CLI's commands, one module per room; each module has `register(app)`."""

from __future__ import annotations

import importlib

import typer

# Each module here adds its commands to the app; order is the order of `benchbox --help`.
MODULES = ("sweep", "devices", "models", "recommend", "compare", "ab", "report", "profiles")


def register_all(app: typer.Typer) -> None:
    """Add every room's commands to the app."""
    for name in MODULES:
        importlib.import_module(f"benchbox.commands.{name}").register(app)
