"""Search strategies: which cells of the grid to measure, in which order.

`grid` measures every cell (several at a time when machines share them). `adaptive` follows
Model Analyzer's method: along each config's load ladder it steps up exponentially (in the
ladder's index) until throughput gains less than `gain` or the latency target is broken with
confidence, then bisects the boundary; batch sizes and thread counts are raised the same way, and
configs that are already dominated are skipped.
Every cell it does not measure is reported `skipped`, with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from benchbox.format import fmt_ms_text
from benchbox.kinds import SearchKind  # noqa: F401 (re-exported)
from benchbox.parse import LatencyTarget
from benchbox.schema import MEASURED, Cell, Load, replace
from benchbox.verdict import breaks_target, lower_bound, meets_target

Measure = Callable[[Cell], Cell]
GAIN = 0.05


def grid(cells: list[Cell], measure: Measure, width: int = 1) -> list[Cell]:
    """Measure every cell, in order; `width` cells at a time when several machines share them
    (a fleet group of several nodes), each cell still one measurement of its own."""
    if width <= 1:
        return [measure(c) for c in cells]
    with ThreadPoolExecutor(max_workers=width, thread_name_prefix="grid") as pool:
        return list(pool.map(measure, cells))


def load_level(load: Load) -> float:
    """How heavy a load is: the rate for open loop, else the concurrency."""
    return float(load.rate_rps if load.kind == "open" else load.concurrency or 1)


def throughput(cell: Cell) -> float:
    return cell.result.throughput_ips if cell.result is not None else 0.0


def ladder_indices(levels: list[float], start: int = 0) -> list[int]:
    """Indices to measure first, from `start`: each step at least doubles the load (the last one
    included)."""
    out = [start]
    for i, level in enumerate(levels):
        if i > start and level >= 2 * levels[out[-1]]:
            out.append(i)
    if out[-1] != len(levels) - 1:
        out.append(len(levels) - 1)
    return out


@dataclass
class LadderOutcome:
    cells: dict[int, Cell]
    best_tp: float  # best throughput among cells that meet the target
    lowest_breaks: bool  # the lightest load already breaks the target
    best_level: float | None = None  # the load of the best cell that meets the target


def run_ladder(
    ladder: list[Cell],
    measure: Measure,
    target: LatencyTarget | None,
    gain: float,
    start: int = 0,
) -> LadderOutcome:
    """Measure a config's loads adaptively from `start`; unmeasured ones are skipped.

    Lighter loads than `start` are measured only when `start` already breaks the target (by
    bisection): when it meets the target, a lighter load cannot give more throughput under it.
    """
    done: dict[int, Cell] = {}
    best_tp, best_i, stop_reason = 0.0, None, None
    for i in ladder_indices([load_level(c.load) for c in ladder], start):
        cell = measure(ladder[i])
        done[i] = cell
        if cell.status not in MEASURED:
            stop_reason = f"{_lvl(ladder[i])} {cell.status}: {cell.reason}"
            break
        if breaks_target(cell, target):
            stop_reason = f"{target} is already broken {_how_broken(cell, target)} at " + _lvl(
                ladder[i]
            )
            break
        tp = throughput(cell)
        if best_i is not None and tp < best_tp * (1 + gain):
            stop_reason = (
                f"throughput saturated: {_lvl(ladder[i])} gained {tp / best_tp - 1:+.1%} over "
                f"{_lvl(ladder[best_i])} (< {gain:.0%})"
            )
            break
        if tp > best_tp and meets_target(cell, target):
            best_tp, best_i = tp, i
    # Bisect the boundary: between the heaviest load that meets the target and the lightest
    # heavier one that does not (it broke the target, or its bound straddles it). When the
    # starting load does not meet the target, this walks down to lighter loads.
    if target is not None:
        good = [i for i, c in done.items() if meets_target(c, target, MEASURED)]
        lo = max(good, default=-1)
        bad = [
            i
            for i, c in done.items()
            if i > lo and c.status in MEASURED and not meets_target(c, target, MEASURED)
        ]
        hi = min(bad, default=None)
        while hi is not None and hi - lo > 1:
            mid = (lo + hi) // 2
            cell = measure(ladder[mid])
            done[mid] = cell
            if meets_target(cell, target, MEASURED):
                lo = mid
                if throughput(cell) > best_tp and meets_target(cell, target):
                    best_tp, best_i = throughput(cell), mid
            else:
                hi = mid
    start_meets = meets_target(done[start], target)
    for i, cell in enumerate(ladder):
        if i not in done:
            why = stop_reason or "not needed"
            if i < start and start_meets:
                why = (
                    f"dominated: {_lvl(ladder[start])} already meets the target with more "
                    "throughput than a lighter load can give"
                )
            elif i < max(done):
                why = f"between measured loads that bracket the target ({why})"
            done[i] = replace(cell, status="skipped", reason=f"adaptive search: {why}")
    lowest = done[0]
    lowest_breaks = lowest.status in MEASURED and breaks_target(lowest, target)
    best_level = load_level(ladder[best_i].load) if best_i is not None else None
    return LadderOutcome(done, best_tp, lowest_breaks, best_level)


def _lvl(cell: Cell) -> str:
    load = cell.load
    return f"rate {load.rate_rps:g}/s" if load.kind == "open" else f"c={load.concurrency}"


def adaptive(
    cells: list[Cell], measure: Measure, target: LatencyTarget | None, gain: float = GAIN
) -> list[Cell]:
    """Measure what the search needs; the rest come back `skipped` with the reason."""
    # config -> its load ladder (lightest first)
    ladders: dict = {}
    for cell in cells:
        ladders.setdefault(cell.config, []).append(cell)
    for key in ladders:
        ladders[key].sort(key=lambda c: load_level(c.load))
    # family (device, instances, batching, precision) -> threads -> batch -> config
    families: dict = {}
    for cfg in ladders:
        fam = (cfg.device, cfg.instances, cfg.dynamic_batching, cfg.io_binding, cfg.precision)
        families.setdefault(fam, {}).setdefault(cfg.intra_op_threads, {})[cfg.batch_size] = cfg
    out: dict[str, Cell] = {}

    def measured(cell: Cell) -> Cell:
        if cell.id not in out:
            out[cell.id] = measure(cell)
        return out[cell.id]

    def skip(cfg, reason: str) -> None:
        for c in ladders[cfg]:
            if c.id not in out:
                out[c.id] = replace(c, status="skipped", reason=f"adaptive search: {reason}")

    def best_of(level_cells: list[Cell]) -> Cell | None:
        good = [c for c in level_cells if c.id in out and meets_target(out[c.id], target)]
        return max((out[c.id] for c in good), key=throughput, default=None)

    for by_threads in families.values():
        prev_best: Cell | None = None  # the best cell of the previous thread count
        thread_list = sorted(by_threads)
        for ti, t in enumerate(thread_list):
            by_batch = by_threads[t]
            # Probe: the previous thread count's best (batch, load) at t threads first.
            done = _probe(prev_best, by_batch, ladders, measured)
            if done is not None and throughput(done) < throughput(prev_best) * (1 + gain):
                why = (
                    f"threads saturated: {t} threads gained "
                    f"{throughput(done) / throughput(prev_best) - 1:+.1%} over "
                    f"{prev_best.config.intra_op_threads} at "
                    f"batch {prev_best.config.batch_size} {_lvl(prev_best)}"
                )
                for nt in thread_list[ti:]:
                    for cfg in by_threads[nt].values():
                        skip(cfg, why)
                break
            _walk_batches(by_batch, ladders, measured, skip, out, target, gain)
            level_best = best_of([c for cfg in by_batch.values() for c in ladders[cfg]])
            if level_best is not None and (
                prev_best is None or throughput(level_best) > throughput(prev_best)
            ):
                prev_best = level_best
    return [out.get(c.id, c) for c in cells]


def _probe(prev_best: Cell | None, by_batch: dict, ladders: dict, measured: Measure) -> Cell | None:
    """The previous thread count's best (batch, load), measured at this thread count (None: no
    previous best, or this thread count has no such cell)."""
    if prev_best is None:
        return None
    cfg = by_batch.get(prev_best.config.batch_size)
    if cfg is None:
        return None
    probe = next((c for c in ladders[cfg] if c.load == prev_best.load), None)
    return measured(probe) if probe is not None else None


def _walk_batches(
    by_batch: dict,
    ladders: dict,
    measured: Measure,
    skip: Callable[[Any, str], None],
    out: dict[str, Cell],
    target: LatencyTarget | None,
    gain: float,
) -> None:
    """One thread count's batch sizes, smallest first, each up its load ladder; the larger ones
    are skipped once a batch breaks the target at its lightest load or gains less than `gain`."""
    prev_batch_tp, prev_b, prev_level = None, None, None
    batch_list = sorted(by_batch)
    for bi, b in enumerate(batch_list):
        ladder = ladders[by_batch[b]]
        # Start where the previous batch size did best: a bigger batch rarely wants more
        # requests in flight, and a lighter load only matters if this one breaks the target.
        start = 0
        if prev_level is not None:
            start = max(
                (i for i, c in enumerate(ladder) if load_level(c.load) <= prev_level),
                default=0,
            )
        outcome = run_ladder(ladder, measured, target, gain, start)
        for c in outcome.cells.values():
            out.setdefault(c.id, c)
        rest = batch_list[bi + 1 :]
        if outcome.lowest_breaks:
            for nb in rest:
                skip(
                    by_batch[nb],
                    f"dominated: batch {b} already breaks {target} at the lightest load,"
                    f" and batch {nb} only adds latency",
                )
            return
        if prev_batch_tp is not None and outcome.best_tp < prev_batch_tp * (1 + gain):
            for nb in rest:
                skip(
                    by_batch[nb],
                    f"batch saturated: batch {b} gained < {gain:.0%} over batch {prev_b}",
                )
            return
        prev_batch_tp = max(prev_batch_tp or 0.0, outcome.best_tp)
        prev_b = b
        prev_level = outcome.best_level


def _how_broken(cell: Cell, target: LatencyTarget) -> str:
    """'with confidence' when the lower CI bound is above the target; else the point estimate
    that stood in for it (too few samples for a bound)."""
    bound = lower_bound(cell.result, target.percentile)
    if not bound.point_estimate:
        return "with confidence"
    return f"by its point estimate ({fmt_ms_text(bound.value_ms)}; too few samples for a CI)"
