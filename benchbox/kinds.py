"""The vocabularies the command line offers (load kinds, search strategies, objectives, formats):
enums with no dependencies, so an option can list its choices without importing its stage."""

from __future__ import annotations

from enum import StrEnum


class Arrival(StrEnum):
    """The open loop's gaps between intended send times."""

    POISSON = "poisson"
    CONSTANT = "constant"


class LoadKind(StrEnum):
    """How requests arrive: N always outstanding, on a schedule, everything at once, or at the
    times of a recorded trace."""

    CLOSED = "closed"
    OPEN = "open"
    OFFLINE = "offline"
    TRACE = "trace"


class SearchKind(StrEnum):
    """Which cells a sweep measures: all of them, or those that can still win."""

    GRID = "grid"
    ADAPTIVE = "adaptive"


class Objective(StrEnum):
    """What the recommendation ranks the cells that meet the constraints by."""

    COST = "cost"
    THROUGHPUT = "throughput"
    ENERGY = "energy"


class ExportKind(StrEnum):
    """The formats a serving config can be exported in."""

    TRITON = "triton"
    ONNXRUNTIME = "onnxruntime"
    KSERVE = "kserve"


class CompareMode(StrEnum):
    """What a comparison lines up: machines by cost, or versions cell by cell (auto: by host)."""

    AUTO = "auto"
    MACHINES = "machines"
    VERSIONS = "versions"


class TableFormat(StrEnum):
    """The formats `report export` writes; the value is the file suffix without its dot."""

    CSV = "csv"
    PARQUET = "parquet"
    MD = "md"
    HTML = "html"

    @classmethod
    def _missing_(cls, value: object) -> TableFormat | None:
        """Also take a suffix with its dot ('.csv') and 'markdown'."""
        text = str(value).lower().lstrip(".")
        return cls.MD if text == "markdown" else next((f for f in cls if f.value == text), None)
