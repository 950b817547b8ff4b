"""The CLI's commands, one module per room, imported only when their command runs.

Each module defines its commands on a module-level `app = typer.Typer()`: a room of top-level
commands leaves it unnamed (its commands join the root), a group names it (`benchbox models ...`).
`CommandGroup` is the root's click group: it lists the commands from `COMMANDS` and imports a room
(and the stages it imports: numpy, onnx, ...) when one of its commands is called, so
`benchbox --help` costs Python, typer and this table.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup
from typer.main import get_command

# Every command: its room and its one-line help, in the order of `benchbox --help`.
# (tests/test_commands.py checks each line against the command's own docstring.)
COMMANDS: dict[str, tuple[str, str]] = {
    "sweep": (
        "sweep",
        "Sweep a model across devices, batch sizes, threads, instances and load levels.",
    ),
    "run": ("sweep", "Measure one cell in depth: every percentile, the histogram, resources."),
    "devices": (
        "devices",
        "List every device: usable or not (why, what to install), its memory and power source.",
    ),
    "recommend": (
        "recommend",
        "Recommend the config that meets a latency target at the best objective; export it.",
    ),
    "compare": (
        "compare",
        "Compare reports of one model: across machines by cost, or versions cell by cell.",
    ),
    "fleet": (
        "fleet",
        "Sweep a model on every machine type of a Ray cluster and rank them by cost per million.",
    ),
    "ab": (
        "ab",
        "Measure two models in randomized interleaved trials of one cell; print the ratios.",
    ),
    "models": ("models", "The built-in models: list them, or build one into an ONNX file."),
    "report": ("report", "Saved reports: show one, list a folder of them, export one."),
    "profiles": ("profiles", "Machine profiles: what an hour costs and what the machine draws."),
    "verify": (
        "verify",
        "Check a report's recommended cell on the real server: predicted against measured.",
    ),
}
ROOMS = tuple(dict.fromkeys(room for room, _ in COMMANDS.values()))


def room_app(room: str) -> typer.Typer:
    """A room's typer app, its module imported now."""
    match room:
        case "sweep":
            from benchbox.commands import sweep as module
        case "devices":
            from benchbox.commands import devices as module
        case "recommend":
            from benchbox.commands import recommend as module
        case "compare":
            from benchbox.commands import compare as module
        case "fleet":
            from benchbox.commands import fleet as module
        case "ab":
            from benchbox.commands import ab as module
        case "models":
            from benchbox.commands import models as module
        case "report":
            from benchbox.commands import report as module
        case "profiles":
            from benchbox.commands import profiles as module
        case "verify":
            from benchbox.commands import verify as module
        case _:
            raise KeyError(room)
    return module.app


def room_command(name: str) -> Any:
    """The click command `name`, built from its room's typer app."""
    app = room_app(COMMANDS[name][0])
    command = get_command(app)
    if isinstance(command, TyperGroup) and command.name != name:  # a room of top-level commands
        command = command.commands[name]
    command.name = name
    _plain_help(command)
    return command


def _plain_help(command: Any) -> None:
    """Plain-text help, as the root's (`rich_markup_mode=None`), for a command and its own."""
    command.rich_markup_mode = None
    for sub in getattr(command, "commands", {}).values():
        _plain_help(sub)


class CommandGroup(TyperGroup):
    """The root group: commands come from `COMMANDS`, each built on first use."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            self.commands[cmd_name] = room_command(cmd_name)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """The command list from `COMMANDS`, without importing a room."""
        limit = formatter.width - 6 - max(len(name) for name in COMMANDS)
        rows = [(name, short_help(text, limit)) for name, (_, text) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def short_help(text: str, limit: int) -> str:
    """A help text cut to `limit` characters the way click cuts a command's own."""
    return TyperCommand(name="short", help=text).get_short_help_str(limit)


def command_words(group: Any, ctx: Any | None = None) -> list[list[str]]:
    """Every command and subcommand under `group` (the root: `typer.main.get_command(app)`), as
    the words naming it, e.g. `["report", "show"]`, in the order of the help; imports each room."""
    ctx = ctx or group.context_class(group, info_name="benchbox")
    found: list[list[str]] = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        found.append([name])
        if hasattr(command, "list_commands"):  # a group of its own (`report show`)
            sub_ctx = command.context_class(command, info_name=name, parent=ctx)
            found.extend([name, *words] for words in command_words(command, sub_ctx))
    return found


HELP_FLAGS = ("--help",)


def quick_help(root: Any, argv: list[str]) -> str | None:
    """The help text of `benchbox COMMAND [SUB] --help`, formatted without parsing the other
    arguments (parsing builds every option's value checker, a tenth of a second of imports),
    or None when `argv` asks for more than a command's help."""
    if not argv or argv[-1] not in HELP_FLAGS or argv[0] not in COMMANDS:
        return None
    words = argv[:-1]
    command = room_command(words[0])
    ctx = root.context_class(root, info_name="benchbox")
    ctx = command.context_class(command, info_name=words[0], parent=ctx)
    for word in words[1:]:  # a group's subcommand, e.g. `benchbox report show --help`
        sub = getattr(command, "commands", {}).get(word)
        if sub is None:
            return None  # an argument or an option before --help: let the parser judge it
        command = sub
        ctx = command.context_class(command, info_name=word, parent=ctx)
    return command.get_help(ctx)
