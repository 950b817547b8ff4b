"""Does a cell meet the latency target? The one rule the search, the peak search and the
recommendation all apply.

A cell meets a target when the upper confidence bound of the target percentile is within it. Where
no finite upper bound exists (too few samples for one, a missing CI, or a bound that was not
finite and came back from JSON as null) the point value stands in, and is flagged as a point
estimate. A cell breaks a target with confidence when the lower bound (the point value, where no
finite lower bound exists) is above it and the cell does not meet it. So a cell never both
meets and breaks a target, and the search never prunes on a break the recommendation would have
taken as a pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from benchbox.parse import LatencyTarget
from benchbox.schema import MEASURED, Cell, Result

OK_ONLY = frozenset({"ok"})


@dataclass(frozen=True)
class Bound:
    """The latency held to a target and whether it is the point value (no finite CI bound)."""

    value_ms: float
    point_estimate: bool


def _ci_end(result: Result, percentile: str, end: int) -> float | None:
    """One end (0: lower, 1: upper) of the percentile's CI when it is a finite number."""
    ci = (result.latency_ci_ms or {}).get(percentile)
    if ci is None or len(ci) != 2:
        return None
    value = ci[end]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _point_ms(result: Result, percentile: str) -> float:
    value = getattr(result.latency_ms, percentile)
    return math.nan if value is None else float(value)


def latency_bound(result: Result, percentile: str) -> Bound:
    """The value held to the target: the percentile's upper CI bound, else its point value."""
    upper = _ci_end(result, percentile, 1)
    if upper is not None:
        return Bound(upper, False)
    return Bound(_point_ms(result, percentile), True)


def lower_bound(result: Result, percentile: str) -> Bound:
    """The percentile's lower CI bound, else its point value."""
    lower = _ci_end(result, percentile, 0)
    if lower is not None:
        return Bound(lower, False)
    return Bound(_point_ms(result, percentile), True)


def result_meets(result: Result, target: LatencyTarget) -> bool:
    """True when the result's latency bound is within the target (NaN never is)."""
    return latency_bound(result, target.percentile).value_ms <= target.value_ms


def result_breaks(result: Result, target: LatencyTarget) -> bool:
    """True when the result is above the target with confidence (and so does not meet it)."""
    return lower_bound(result, target.percentile).value_ms > target.value_ms and not result_meets(
        result, target
    )


def meets_target(
    cell: Cell, target: LatencyTarget | None, statuses: frozenset[str] = OK_ONLY
) -> bool:
    """True when the cell's status is one of `statuses` (by default only `ok`, the cells the
    recommendation takes), it has a result, and that result meets the target (any, when None)."""
    if cell.status not in statuses or cell.result is None:
        return False
    return target is None or result_meets(cell.result, target)


def breaks_target(cell: Cell, target: LatencyTarget | None) -> bool:
    """True when the cell was measured and is above the target with confidence."""
    if target is None or cell.status not in MEASURED or cell.result is None:
        return False
    return result_breaks(cell.result, target)
