"""The callbacks through which a front end follows a sweep."""

from __future__ import annotations

from benchbox.schema import Cell


class Progress:
    """Callbacks a front end implements to show a sweep's progress (all optional)."""

    def planned(self, cells: list[Cell]) -> None: ...

    def started(self, cell: Cell) -> None: ...

    def finished(self, cell: Cell) -> None: ...

    def trial_started(self, cell: Cell, trial: int) -> None: ...

    def trial_finished(self, cell: Cell, trial: int) -> None:
        """Trial number `trial` of a cell is done: `cell` is that trial's own outcome."""
