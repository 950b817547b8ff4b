"""The recommendation: the cell meeting the constraints at the best objective, and why others lost.

Pure functions over `schema` data. A cell meets a latency target only when the upper confidence
bound of its percentile does (the point value stands in, and is flagged, where a cell has too
few samples for a bound). Fleet sizing for a target rate comes from `cost.fleet_size`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from benchbox import cost, pricing, schema
from benchbox.devices import parse_device
from benchbox.errors import BadInput, NothingMeasured
from benchbox.format import fmt_ms_given, fmt_ms_text
from benchbox.kinds import Objective  # noqa: F401 (re-exported)
from benchbox.parse import LatencyTarget, parse_choice, percentile_label
from benchbox.store import load_report
from benchbox.verdict import (
    accuracy_broken,
    accuracy_score,
    buckets_over,
    latency_bound,
    result_meets,
)

TIE_RULE = "fewest cores x instances, then the smallest batch, then the lowest concurrency, then id"
# What each objective ranks by, and the field of Result it reads (lower is better after sign).
_METRIC = {
    "cost": "cost_usd_per_million",
    "throughput": "throughput_ips",
    "energy": "energy_j_per_inference",
}


@dataclass(frozen=True)
class Judged:
    """One measured cell as the recommendation saw it."""

    cell: schema.Cell
    latency_ms: float  # the value held to the target: the CI upper bound, else the point value
    point_estimate: bool  # True when no upper bound existed and the point value was used
    broken: tuple[str, ...]  # the constraints it broke, with numbers; empty when it passed


def memory_mb(cell: schema.Cell) -> float | None:
    """The memory a cell needs on its device: GPU memory for GPU cells when known, else the
    peak RSS over its life, the larger of creating its sessions and measuring (a memory limit
    below the creation peak kills the server before it serves)."""
    r = cell.result
    if r is None:
        return None
    try:
        on_gpu = parse_device(cell.config.device).is_gpu
    except BadInput:
        on_gpu = False
    if on_gpu and r.gpu_mem_mb is not None:
        return r.gpu_mem_mb
    known = [m for m in (r.rss_mb, r.session_rss_mb) if m is not None]
    return max(known) if known else None


def judge(
    cell: schema.Cell,
    target: LatencyTarget,
    min_throughput_ips: float | None = None,
    max_memory_mb: float | None = None,
    accuracy: tuple = (),
) -> Judged:
    """Check one measured cell against the latency target and the optional bounds (accuracy:
    parsed `precision.bounds.AccuracyBound`s, judged by `verdict.accuracy_broken`)."""
    assert cell.result is not None
    r = cell.result
    label = percentile_label(target.percentile)
    bound = latency_bound(r, target.percentile)
    value, point = bound.value_ms, bound.point_estimate
    broken = []
    if not result_meets(r, target):
        shown = fmt_ms_text(value, versus=target.value_ms)
        what = (
            f"{label} {shown} (point estimate, no CI)" if point else f"{label} upper bound {shown}"
        )
        broken.append(f"{what} > target {fmt_ms_given(target.value_ms)}")
    if min_throughput_ips is not None and not r.throughput_ips >= min_throughput_ips:
        broken.append(f"throughput {_num(r.throughput_ips)} ips < min {min_throughput_ips:g}")
    if max_memory_mb is not None:
        mem = memory_mb(cell)
        if mem is None:
            broken.append(f"memory not measured, cannot check max {max_memory_mb:g} MB")
        elif mem > max_memory_mb:
            broken.append(f"memory {_num(mem)} MB > max {max_memory_mb:g} MB")
    broken.extend(accuracy_broken(cell.accuracy, accuracy))
    return Judged(cell, value, point, tuple(broken))


def recommend(
    report: schema.Report,
    target: LatencyTarget,
    objective: str = "cost",
    qps: float | None = None,
    headroom: float = 0.8,
    min_throughput_ips: float | None = None,
    max_memory_mb: float | None = None,
    accuracy: tuple[str, ...] = (),
) -> schema.Recommendation:
    """The best cell meeting the target (by its CI upper bound) and the bounds, for an objective;
    `accuracy`: bounds as given (`top1>=99%`), checked against the model's outputs."""
    from benchbox.precision.bounds import check_outputs, parse_bounds

    bounds = parse_bounds(accuracy)
    check_outputs(bounds, [o.name for o in report.model.outputs])
    objective = parse_choice(Objective, objective, "objective")
    _check_bounds(target, headroom, qps, min_throughput_ips, max_memory_mb)

    rejected: dict[str, str] = {}
    judged: list[Judged] = []
    for cell in report.cells:
        if not judgeable(cell):
            rejected[cell.id] = _status_reason(cell)
            continue
        judged.append(judge(cell, target, min_throughput_ips, max_memory_mb, bounds))

    notes: list[str] = []
    used = _effective_objective(objective, report, judged, notes)
    metric = _METRIC[used]

    passing: list[Judged] = []
    for j in judged:
        if j.broken:
            rejected[j.cell.id] = "; ".join(j.broken)
        elif getattr(j.cell.result, metric) is None:
            rejected[j.cell.id] = f"no {_METRIC_WORDS[used]} to rank by ({metric} is null)"
        else:
            passing.append(j)
    passing.sort(key=lambda j: _rank_key(j, used))

    rejected = {c.id: rejected[c.id] for c in report.cells if c.id in rejected}  # report order
    tied = tied_with_best(passing, used)
    if len(tied) > 1:
        notes.append(
            f"tied within noise: {', '.join(j.cell.id for j in tied)} (their "
            f"{_METRIC_WORDS[used]} CIs each reach past the best value any cell is sure of, "
            f"so each could be the best); picked {tied[0].cell.id} by the rule: {TIE_RULE}."
        )
        passing = [tied[0]] + [j for j in passing if j is not tied[0]]
    winner = passing[0] if passing else None
    if winner is None:
        notes.append(_nothing_met(target, judged, min_throughput_ips, max_memory_mb))
    else:
        notes.extend(_buckets_note(winner.cell, target))

    fleet = _fleet(report, winner, qps, headroom) if qps is not None else None
    return schema.Recommendation(
        objective=used,
        percentile=target.percentile,
        target_ms=target.value_ms,
        profile=report.profile.name if report.profile else None,
        winner=winner.cell.id if winner else None,
        runners_up=tuple(j.cell.id for j in passing[1:4]),
        pareto=tuple(pareto_front(judged)),
        rejected=rejected,
        point_estimate_used=tuple(j.cell.id for j in judged if j.point_estimate),
        fleet=fleet,
        note=" ".join(notes) or None,
        tied=tuple(j.cell.id for j in tied) if len(tied) > 1 else (),
        accuracy=tuple(b.text for b in bounds),
    )


def _check_bounds(
    target: LatencyTarget,
    headroom: float,
    qps: float | None,
    min_throughput_ips: float | None,
    max_memory_mb: float | None,
) -> None:
    """BadInput for a target, headroom, rate or bound the recommendation cannot hold cells to."""
    if target.percentile not in schema.PERCENTILE_KEYS:
        raise BadInput(f"unknown percentile {target.percentile!r} in the latency target")
    if not 0.0 < headroom <= 1.0:
        raise BadInput(f"headroom {headroom:g} must be in (0, 1]", "e.g. --headroom 0.8")
    if qps is not None and not (qps > 0 and math.isfinite(qps)):
        raise BadInput(f"--qps {qps:g} must be a positive number")
    for flag, bound, example in (
        ("--min-throughput", min_throughput_ips, "--min-throughput 500"),
        ("--max-memory-mb", max_memory_mb, "--max-memory-mb 2048"),
    ):
        if bound is not None and not (bound > 0 and math.isfinite(bound)):
            raise BadInput(f"{flag} {bound:g} must be a positive number", f"e.g. {example}")


def _fleet(
    report: schema.Report, winner: Judged | None, qps: float, headroom: float
) -> schema.Fleet | None:
    """The machines of the winner's kind that serve `qps` with `headroom` (None: no winner)."""
    if winner is None:
        return None
    priced = report.profile is not None and report.profile.name != cost.ELECTRICITY_ONLY
    price = report.profile.price_per_hour_usd if priced else None  # no machine price
    return cost.fleet_size(
        qps, winner.cell.result.throughput_ips, headroom=headroom, price_per_hour_usd=price
    )


def judgeable(cell: schema.Cell) -> bool:
    """Whether the recommendation judges a cell: measured ok, or unsettled (`unstable`) with a
    between-trial bound, whose spread covers the unsettled windows. An unsettled single run has
    no such bound, and is rejected; so is a cell whose load generators were the limit."""
    if cell.result is None:
        return False
    if cell.result.generator is not None and cell.result.generator.limited:
        return False  # the client's figures, not the server's
    if cell.status == "ok":
        return True
    return cell.status == "unstable" and cell.result.ci_level == "between-trial"


def objective_interval(result: schema.Result, objective: str) -> tuple[float, float] | None:
    """The CI of a cell's objective figure, from its between-trial throughput CI (cost and
    energy per inference scale as 1 / throughput); None without one."""
    ci = result.throughput_ci_ips
    if result.ci_level != "between-trial" or not ci or None in ci or not ci[0] > 0:
        return None
    tput = result.throughput_ips
    value = getattr(result, _METRIC[objective])
    if value is None:
        return None
    if objective == "throughput":
        return float(ci[0]), float(ci[1])
    return value * tput / ci[1], value * tput / ci[0]


def tie_key(cell: schema.Cell) -> tuple:
    """TIE_RULE as a sort key: cores x instances, batch, concurrency, id."""
    cfg = cell.config
    batch = cfg.dynamic_batching.max_batch if cfg.dynamic_batching else cfg.batch_size
    return (cfg.intra_op_threads * cfg.instances, batch, cell.load.concurrency or 0, cell.id)


def tied_with_best(passing: list[Judged], objective: str) -> list[Judged]:
    """The passing cells that could each be the best, ordered by TIE_RULE (the first is the
    pick); just the best when it has no CI or no other cell could be.

    A cell could be the best when its objective CI reaches past the best guaranteed value:
    the largest lower bound of throughput over the cells with a CI (for cost and energy, the
    smallest upper bound). The set depends on the intervals only, not on which cell's point
    estimate happens to lead or on the order the cells were measured in.
    """
    if not passing:
        return []
    best = passing[0]
    bands = {id(j): objective_interval(j.cell.result, objective) for j in passing}
    if bands[id(best)] is None:
        return [best]
    known = [b for b in bands.values() if b is not None]
    if objective == "throughput":
        floor = max(b[0] for b in known)
        tied = [j for j in passing if (b := bands[id(j)]) is not None and b[1] >= floor]
    else:
        ceiling = min(b[1] for b in known)
        tied = [j for j in passing if (b := bands[id(j)]) is not None and b[0] <= ceiling]
    if best not in tied:
        tied.append(best)
    return sorted(tied, key=lambda j: tie_key(j.cell))


def with_recommendation(report: schema.Report, rec: schema.Recommendation) -> schema.Report:
    """The report with its recommendation set (replacing any earlier one)."""
    return schema.replace(report, recommendation=rec)


def recommend_file(
    report_path: str | Path,
    target: LatencyTarget,
    objective: str = Objective.COST,
    qps: float | None = None,
    headroom: float = 0.8,
    min_throughput_ips: float | None = None,
    max_memory_mb: float | None = None,
    profile: str | None = None,
    accuracy: tuple[str, ...] = (),
) -> tuple[schema.Report, schema.Recommendation]:
    """`benchbox recommend`: load a saved report, price it on `profile` (a name, a .toml file, or
    `auto` for the profile matching the report's host) when given, and return it with its
    recommendation; NothingMeasured when no cell was."""
    report = load_report(report_path)
    if profile is not None:
        chosen = pricing.choose_profile(profile, report.host)  # `auto`: match the report's host
        if chosen is None:
            raise BadInput(
                "--profile none cannot unprice a saved report",
                "leave out --profile to use the report's own pricing",
            )
        report = cost.price_report(report, chosen)
    if not any(c.status in schema.MEASURED for c in report.cells):
        counts = ", ".join(
            f"{sum(c.status == s for c in report.cells)} {s}"
            for s in ("failed", "skipped", "pending")
            if any(c.status == s for c in report.cells)
        )
        raise NothingMeasured(
            f"no cell of this report was measured ({counts}): nothing to recommend",
            f"fix the failures, then `benchbox sweep --resume {report_path}`",
        )
    rec = recommend(
        report,
        target,
        objective=objective,
        qps=qps,
        headroom=headroom,
        min_throughput_ips=min_throughput_ips,
        max_memory_mb=max_memory_mb,
        accuracy=accuracy,
    )
    return with_recommendation(report, rec), rec


def pareto_front(judged: list[Judged]) -> list[str]:
    """Ids of the measured cells no other beats on both latency and cost (or 1/throughput).

    Latency is the value held to the target (upper bound, else point); the second axis is cost per
    million when the cells are priced, else seconds per inference (1/throughput). Sorted by latency.
    When cells carry accuracy, it is a third axis (`verdict.accuracy_score`, higher is better).
    """
    if any(accuracy_score(j.cell.accuracy) is not None for j in judged):
        return _pareto_with_accuracy(judged)
    priced = any(j.cell.result.cost_usd_per_million is not None for j in judged)
    points = []
    for j in judged:
        r = j.cell.result
        if priced:
            other = r.cost_usd_per_million
        else:
            other = 1.0 / r.throughput_ips if r.throughput_ips > 0 else None
        if other is not None and math.isfinite(j.latency_ms):
            points.append((j.latency_ms, other, j.cell.id))
    points.sort()
    front: list[str] = []
    best_other = math.inf
    last: tuple[float, float] | None = None
    for lat, other, cid in points:
        if other < best_other:
            front.append(cid)
            best_other = other
            last = (lat, other)
        elif last == (lat, other):  # an exact tie with a front point: neither dominates
            front.append(cid)
    return front


def _pareto_with_accuracy(judged: list[Judged]) -> list[str]:
    """The front over latency, cost (or 1/throughput) and accuracy: no other cell is at least as
    good on all three and better on one. A cell without accuracy counts as the least accurate."""
    priced = any(j.cell.result.cost_usd_per_million is not None for j in judged)
    points = []
    for j in judged:
        r = j.cell.result
        other = (
            r.cost_usd_per_million
            if priced
            else (1.0 / r.throughput_ips if r.throughput_ips > 0 else None)
        )
        score = accuracy_score(j.cell.accuracy)
        if other is not None and math.isfinite(j.latency_ms):
            points.append(
                (j.latency_ms, other, -(score if score is not None else -math.inf), j.cell.id)
            )
    points.sort()

    def dominated(p: tuple) -> bool:
        return any(
            q[:3] != p[:3] and all(a <= b for a, b in zip(q[:3], p[:3], strict=True))
            for q in points
        )

    return [p[3] for p in points if not dominated(p)]


# ---------------------------------------------------------------- helpers

_METRIC_WORDS = {"cost": "cost", "throughput": "throughput", "energy": "energy per inference"}


def _effective_objective(
    objective: str, report: schema.Report, judged: list[Judged], notes: list[str]
) -> str:
    metric = _METRIC[objective]
    if objective == "throughput" or any(getattr(j.cell.result, metric) is not None for j in judged):
        return objective
    if not judged:
        return objective
    if objective == "cost":
        why = "the report has no price profile" if report.profile is None else "no cell is priced"
        notes.append(f"{why}, so cells are ranked by throughput (pass --profile to rank by cost).")
    else:
        notes.append(
            "no cell has an energy figure, so cells are ranked by throughput "
            "(pass --profile to estimate power from the profile)."
        )
    return "throughput"


def _rank_key(j: Judged, objective: str) -> tuple[float, float, str]:
    value = getattr(j.cell.result, _METRIC[objective])
    if objective == "throughput":
        value = -value
    return (value, j.latency_ms, j.cell.id)


def _buckets_note(cell: schema.Cell, target: LatencyTarget) -> list[str]:
    """The winner's shape buckets (runs on --data) that break the target on their own."""
    assert cell.result is not None
    over = buckets_over(cell.result, target)
    if not over:
        return []
    label = percentile_label(target.percentile)
    total = sum(b.requests for b in cell.result.buckets) or 1
    parts = [
        f"{b.dim} ≤ {b.upper}: {label} {fmt_ms_text(getattr(b.latency_ms, target.percentile))}"
        f" over {b.requests} of {total} requests"
        for b in over
    ]
    return [
        f"{cell.id} meets {target} over all its requests, but not every length does: "
        f"{'; '.join(parts)} (each a point value over that bucket's requests)."
    ]


def _status_reason(cell: schema.Cell) -> str:
    gen = cell.result.generator if cell.result is not None else None
    if gen is not None and gen.limited:
        return (
            f"the load generators were the limit ({gen.processes} process"
            f"{'es' if gen.processes > 1 else ''}): the client's figures, not the server's"
        )
    if cell.status == "unstable":
        text = f"unstable measurement: {cell.reason or 'throughput or latency never settled'}"
        if cell.result is not None and cell.result.ci_level == "within-trial":
            text += " (one trial, so no between-trial bound to judge it by: use --trials 3)"
        return text
    if cell.status == "ok":
        return "no result recorded"
    if cell.status == "pending":
        return "pending: never measured" + (f" ({cell.reason})" if cell.reason else "")
    return f"{cell.status}: {cell.reason or 'no reason given'}"


def _nothing_met(
    target: LatencyTarget,
    judged: list[Judged],
    min_throughput_ips: float | None,
    max_memory_mb: float | None,
) -> str:
    label = percentile_label(target.percentile)
    if not judged:
        return "No cell was measured successfully, so nothing can be recommended."
    closest = min(judged, key=lambda j: (j.latency_ms, j.cell.id))
    r = closest.cell.result
    kind = "point estimate" if closest.point_estimate else "upper bound"
    needs = []
    if closest.latency_ms > target.value_ms:
        needs.append(f"a target of {label}={fmt_ms_given(_nice_up(closest.latency_ms), 'ms')}")
    if min_throughput_ips is not None and r.throughput_ips < min_throughput_ips:
        needs.append(f"a minimum throughput of {math.floor(r.throughput_ips):g} ips")
    mem = memory_mb(closest.cell)
    if max_memory_mb is not None and (mem is None or mem > max_memory_mb):
        needs.append("no memory bound" if mem is None else f"a memory bound of {math.ceil(mem)} MB")
    shown = f"{label} {kind} {fmt_ms_text(closest.latency_ms)}"
    if not needs and closest.broken:  # fast enough: another constraint (accuracy) rejected it
        return (
            f"No configuration meets every constraint. The closest is {closest.cell.id} "
            f"({shown}, within {target}), but {'; '.join(closest.broken)}."
        )
    text = f"No configuration meets {target}. The closest is {closest.cell.id} ({shown})"
    if needs:
        text += f": {' and '.join(needs)} would admit it, or try another device"
    return text + "."


def _nice_up(x: float) -> float:
    """x rounded up to a twentieth of its decade: 23.1 -> 23.5, 0.731 -> 0.735, 231 -> 235."""
    if not (x > 0 and math.isfinite(x)):
        return x
    step = 10.0 ** math.floor(math.log10(x)) / 20.0
    return round(math.ceil(x / step - 1e-9) * step, 12)


def _num(x: float) -> str:
    return f"{x:.3g}" if abs(x) < 1000 else f"{x:,.0f}"
