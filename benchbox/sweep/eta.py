"""How long a sweep has left, from the measuring time it plans per cell rather than a count of
cells (cells differ: skipped ones cost nothing, a peak search measures one cell several times)."""

from __future__ import annotations

from dataclasses import dataclass, field

from benchbox.format import fmt_duration_s
from benchbox.measure.cell import MeasureSettings
from benchbox.schema import Cell

# A sweep planned to measure this long (or this many cells) gets a note of its size first.
LARGE_SWEEP_S = 60.0
LARGE_SWEEP_CELLS = 16


def planned_cell_s(settings: MeasureSettings) -> float:
    """The measuring time one cell is planned to take: warm-up (auto: two windows) plus the fixed
    duration, or the shortest adaptive measurement."""
    warmup_s = settings.warmup_s if settings.warmup_s is not None else 2 * settings.window_s
    measure_s = settings.duration_s if settings.duration_s is not None else settings.min_duration_s
    return warmup_s + measure_s


@dataclass
class Eta:
    """The planned measuring time left: every cell not yet done, less what the current one has
    already spent."""

    cell_s: float
    left: set[str] = field(default_factory=set)
    current_started_s: float | None = None

    def plan(self, cells: list[Cell]) -> None:
        self.left = {c.id for c in cells if c.status in ("pending", "failed")}

    @property
    def planned_s(self) -> float:
        return self.cell_s * len(self.left)

    def start(self, now_s: float) -> None:
        self.current_started_s = now_s

    def finish(self, cell_id: str) -> None:
        self.left.discard(cell_id)
        self.current_started_s = None

    def skip(self, cell_ids: set[str]) -> None:
        """Cells the search decided not to measure: they take no time."""
        self.left -= cell_ids

    def seconds_left(self, now_s: float) -> float:
        spent = 0.0 if self.current_started_s is None else now_s - self.current_started_s
        return max(self.planned_s - min(spent, self.cell_s), 0.0)


def is_large(cells: int, planned_s: float) -> bool:
    """Whether a sweep is big enough to say its size before it starts."""
    return planned_s >= LARGE_SWEEP_S or cells >= LARGE_SWEEP_CELLS


def size_note(cells: int, planned_s: float, adaptive: bool) -> str:
    """`32 cells planned, about 1m36s of measuring (the adaptive search skips what cannot win)`."""
    text = f"{cells} cell{'s' if cells != 1 else ''} planned, about {fmt_duration_s(planned_s)} of "
    text += "measuring"
    if adaptive:
        text += " at most (the adaptive search skips cells that cannot win)"
    return text
