"""The CLI's commands, one module per room.

Each module defines its commands on a module-level `app = typer.Typer()`: a room of top-level
commands leaves it unnamed (its commands join the root), a group names it (`benchbox models ...`).
`register_all` adds every room's `app` to the root, once.
"""

from __future__ import annotations

import typer

from benchbox.commands import ab, compare, devices, models, profiles, recommend, report, sweep

# The order of `benchbox --help`.
ROOMS = (sweep, devices, recommend, compare, ab, models, report, profiles)


def register_all(app: typer.Typer) -> None:
    """Add every room's commands to the app (again is a no-op: tests run main() many times)."""
    added = {id(group.typer_instance) for group in app.registered_groups}
    for room in ROOMS:
        if id(room.app) not in added:
            app.add_typer(room.app)
