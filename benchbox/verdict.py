"""Does a cell meet the latency target? The one rule the search, the peak search and the
recommendation all apply.

A cell meets a target when the upper confidence bound of the target percentile is within it. Where
no finite upper bound exists (too few samples for one, a missing CI, or a bound that was not
finite and came back from JSON as null) the point value stands in, and is flagged as a point
estimate. A cell breaks a target with confidence when the lower bound (the point value, where no
finite lower bound exists) is above it and the cell does not meet it. So a cell never both
meets and breaks a target, and the search never prunes on a break the recommendation would have
taken as a pass.

Accuracy bounds (`--accuracy`) are judged here too (`accuracy_broken`): agreement rates by the
lower end of their Wilson interval, so a cell that agrees on 398 of 400 samples does not pass
top1>=99.9% on its point value alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from benchbox.parse import LatencyTarget
from benchbox.precision.bounds import AccuracyBound
from benchbox.schema import MEASURED, Accuracy, BucketStat, Cell, OutputAccuracy, Result

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


# ---------------------------------------------------------------- accuracy bounds


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a binomial rate (Wilson 1927); (0, 1) for no trials."""
    if trials <= 0:
        return (0.0, 1.0)
    from statistics import NormalDist

    z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
    p = successes / trials
    den = 1.0 + z * z / trials
    center = (p + z * z / (2 * trials)) / den
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / den
    return (max(0.0, center - half), min(1.0, center + half))


def _rate_broken(b: AccuracyBound, out: OutputAccuracy, confidence: float) -> str | None:
    k, n = (
        (out.top1_agree, out.top1_count)
        if b.metric == "top1"
        else (out.label_correct, out.label_count)
    )
    if k is None or not n:
        return None
    lo, _ = wilson_interval(k, n, confidence)
    if lo >= b.value:
        return None
    return (
        f"{out.name}: {b.metric} {k}/{n} = {100 * k / n:.2f}%, lower {confidence:.0%} bound "
        f"{100 * lo:.2f}% < {100 * b.value:g}% ({b.text})"
    )


_FIELDS = {"cosine": "cosine", "max-abs": "max_abs_error", "rel": "rel_error"}


def _figure_broken(b: AccuracyBound, out: OutputAccuracy) -> str | None:
    value = getattr(out, _FIELDS[b.metric])
    ok = value >= b.value if b.op == ">=" else value <= b.value
    if ok:
        return None
    return (
        f"{out.name}: {b.metric} {value:.6g} {'<' if b.op == '>=' else '>'} {b.value:g} ({b.text})"
    )


def accuracy_broken(
    accuracy: Accuracy | None, bounds: tuple[AccuracyBound, ...], confidence: float = 0.95
) -> list[str]:
    """The accuracy bounds a cell breaks, each naming its output and figures (empty: it meets
    them). Rates (top-1 agreement, label accuracy) are held to the lower end of their Wilson
    interval; the other figures to their value over the fixed samples."""
    if not bounds:
        return []
    if accuracy is None or accuracy.error:
        why = accuracy.error if accuracy is not None else "not measured"
        return [f"accuracy {why}; cannot check {', '.join(b.text for b in bounds)}"]
    broken: list[str] = []
    for b in bounds:
        outs = [o for o in accuracy.outputs if b.output is None or o.name == b.output]
        if b.metric in ("top1", "label"):
            outs = [o for o in outs if (o.top1_count if b.metric == "top1" else o.label_count)]
            if not outs:
                what = "classification-like output" if b.metric == "top1" else "labelled output"
                broken.append(f"no {what} to judge {b.text} on")
                continue
            found = [_rate_broken(b, o, confidence) for o in outs]
        else:
            found = [_figure_broken(b, o) for o in outs]
        broken.extend(x for x in found if x)
    return broken


def accuracy_score(accuracy: Accuracy | None) -> float | None:
    """One figure of a cell's accuracy for the Pareto front: its worst output's mean cosine
    against the reference (None when not measured)."""
    if accuracy is None or accuracy.error or not accuracy.outputs:
        return None
    return min(o.cosine for o in accuracy.outputs)


def buckets_over(result: Result, target: LatencyTarget) -> tuple[BucketStat, ...]:
    """The shape buckets (runs on --data) whose own percentile is above the target: a point
    value over that bucket's requests (a bucket has no interval of its own), worst first."""
    over = [
        b
        for b in result.buckets
        if getattr(b.latency_ms, target.percentile, None) is not None
        and getattr(b.latency_ms, target.percentile) > target.value_ms
    ]
    return tuple(sorted(over, key=lambda b: -getattr(b.latency_ms, target.percentile)))
