"""The peak sustainable rate of each serving config: its capacity at the latency target.

A sweep with `--load open` and no `--rate` plans one cell per serving config (id ending in
`/open-peak-cN`) and searches its rate the way LoadGen's FindPeakPerformance does: from a start
rate it halves until a rate passes, doubles until one fails (jumping ahead to 80% of the capacity
the service time suggests when that is further), then bisects (geometrically) between the
highest pass and the lowest fail until they are within `precision` of each other. A miss without
a backlog and with the median within the target is measured once more before it bounds the
search: in a short probe one stall (another process, a page fault) can decide a p99.

A rate passes when its cell was measured, the upper confidence bound of the target percentile
(the point value where the sample is too small for a bound, as `recommend` does) is within the
target, and the config kept up with the offered rate (completions are not more than three
Poisson standard deviations short of it: no growing backlog). The config's cell is its
measurement at the peak rate, with `peak_rate_rps` set: its throughput, and the cost per million
priced from it, are the capacity at the target. Passing probes with status `ok` are preferred
over `unstable` ones, since the recommendation only takes `ok` cells. The probes share the
cell's id; the trail of probed rates is kept in its warnings (`peak-search: ...`).

The adaptive search walks each family (device, threads, session options) by instances, then
batch size or `max_batch`, then delay, and skips what cannot win: longer delays once a delay
meets the target at no rate (a delay only adds latency) or stops raising the peak by `gain`, and
larger batches or more instances once they stop raising the capacity by `gain`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from benchbox.errors import BadInput
from benchbox.format import fmt_ms_given, fmt_ms_text, percentile_label
from benchbox.parse import AUTO_MAX_BATCH, LatencyTarget, parse_dynamic_batching
from benchbox.schema import (
    MEASURED,
    Cell,
    CellWarning,
    DynamicBatching,
    Load,
    ModelInfo,
    ServingConfig,
    cell_id,
    replace,
)
from benchbox.sweep.plan import SweepSpec, configs
from benchbox.sweep.search import GAIN
from benchbox.verdict import latency_bound, meets_target
from benchbox.warning_kinds import WarningKind

Measure = Callable[[Cell], Cell]
_PEAK_ID = re.compile(r"/open-peak-c\d+$")


@dataclass(frozen=True)
class PeakSettings:
    """How the rate search runs."""

    start_rps: float = 100.0
    min_rps: float = 1.0
    max_rps: float = 1_000_000.0
    precision: float = 0.10  # stop when the lowest fail is within 10% of the highest pass
    max_probes: int = 12


# ---------------------------------------------------------------- planning


def wanted(spec: SweepSpec) -> bool:
    """True when the sweep searches each config's peak rate (open loop, no rates given)."""
    return spec.load_kind == "open" and not spec.rates_rps


def is_peak_cell(cell: Cell) -> bool:
    """True for the cell of a config whose rate is searched."""
    return bool(_PEAK_ID.search(cell.id))


def peak_cell_id(config: ServingConfig, concurrency: int | None) -> str:
    """`cpu/t1/i2/db8-1ms/open-peak-c1`: the config's part of cell_id, then the search."""
    base = cell_id(config, Load("open", concurrency=concurrency, rate_rps=0.0)).rsplit("/", 1)[0]
    return f"{base}/open-peak-c{concurrency}"


def plan_cells(spec: SweepSpec) -> list[Cell]:
    """One pending cell per config and pool size; its rate is found by `find_peak`."""
    return [
        Cell(
            id=peak_cell_id(cfg, c),
            config=cfg,
            load=Load("open", concurrency=c, rate_rps=None, distribution=spec.arrival),
        )
        for cfg in configs(spec)
        for c in spec.concurrencies
    ]


def max_batch_allowed(model: ModelInfo, cap: int = AUTO_MAX_BATCH) -> int:
    """The largest max_batch dynamic batching may use on this model; BadInput when none."""
    if model.batch != "dynamic":
        what = (
            f"a fixed batch dimension of {model.batch}"
            if isinstance(model.batch, int)
            else "no batch dimension"
        )
        raise BadInput(
            f"dynamic batching needs a model whose first input dimension is symbolic; this one has"
            f" {what}",
            "drop --dynamic-batching, or export the model with a dynamic batch axis",
        )
    return cap


def batching_grid(
    text: str, model: ModelInfo, target: LatencyTarget | None
) -> list[DynamicBatching]:
    """The `--dynamic-batching` settings for this model: `auto`, or the given ones."""
    allowed = max_batch_allowed(model)
    return parse_dynamic_batching(text, allowed, target.value_ms if target else None)


# ---------------------------------------------------------------- one config


def kept_up(cell: Cell) -> bool:
    """True when the requests completed are within 3 Poisson sigmas of the rate offered."""
    r, rate = cell.result, cell.load.rate_rps
    if r is None or not rate:
        return False
    expected = rate * r.duration_s
    return r.requests >= expected - 3.0 * math.sqrt(expected) - 1.0


def sustains(cell: Cell, target: LatencyTarget) -> bool:
    """True when the cell was measured, kept up with its rate and met the target with confidence."""
    return meets_target(cell, target, MEASURED) and kept_up(cell)


def capacity_estimate_rps(cell: Cell) -> float | None:
    """Requests/s the config could serve, from its service time at this (light) load."""
    r = cell.result
    if r is None:
        return None
    cfg = cell.config
    if cfg.dynamic_batching is not None:
        servers = cfg.instances
    else:
        servers = min(cell.load.concurrency or cfg.instances, cfg.instances)
    service_ms = (r.compute_ms.p50 if r.compute_ms else None) or r.latency_ms.p50
    counts = r.batch_size_counts or {}
    batches = sum(counts.values())
    per_batch = sum(b * n for b, n in counts.items()) / batches if batches else 1.0
    if not service_ms > 0:
        return None
    return servers * per_batch * 1000.0 / service_ms


def _round_rate(rate: float) -> float:
    return float(f"{rate:.3g}")


def find_peak(
    seed: Cell,
    measure: Measure,
    target: LatencyTarget,
    settings: PeakSettings | None = None,
    start_rps: float | None = None,
) -> Cell:
    """The config's cell at its peak sustainable rate (or its lightest probe when none passed)."""
    s = settings or PeakSettings()
    probes: dict[float, Cell] = {}
    trail: list[str] = []
    rate = _round_rate(min(max(start_rps or s.start_rps, s.min_rps), s.max_rps))
    retry = False
    while len(trail) < s.max_probes:
        cell = measure(replace(seed, load=replace(seed.load, rate_rps=rate)))
        if cell.load.rate_rps != rate:  # a cell measured earlier (resume) stands as it is
            return cell
        probes[rate] = cell
        trail.append(_probe_text(rate, cell, target) + (" on retry" if retry else ""))
        if cell.status not in MEASURED:
            break
        if retry:
            retry = False
        elif (
            not sustains(cell, target)
            and kept_up(cell)
            and cell.result.latency_ms.p50 <= target.value_ms
        ):
            # A miss with no backlog can be one stall in a short probe: measure it once more
            # before it bounds the search (a repeated miss, or a backlog, is believed).
            retry = True
            continue
        passes = [r for r, c in probes.items() if sustains(c, target)]
        lo = max(passes, default=None)
        hi = min((r for r in probes if r not in passes and (lo is None or r > lo)), default=None)
        if lo is None:  # nothing passed yet: go down
            hopeless = kept_up(cell) and cell.result.latency_ms.p50 > target.value_ms
            if hopeless or rate <= s.min_rps:
                break
            rate = _round_rate(max(rate / 2.0, s.min_rps))
        elif hi is None:  # nothing failed above the best pass: go up
            if rate >= s.max_rps:
                break
            step = 2.0 * lo
            estimate = capacity_estimate_rps(probes[lo])
            if estimate is not None and 0.8 * estimate > step:
                step = 0.8 * estimate
            rate = _round_rate(min(step, s.max_rps))
        else:
            if hi / lo <= 1.0 + s.precision:
                break
            rate = _round_rate(math.sqrt(lo * hi))
        if rate in probes:  # rounding met a measured rate: the search has converged
            break
    return _peak_cell(seed, probes, trail, target)


def _peak_cell(
    seed: Cell, probes: dict[float, Cell], trail: list[str], target: LatencyTarget
) -> Cell:
    if not probes:
        return replace(seed, status="failed", reason="peak search: nothing was measured")
    passes = {r: c for r, c in probes.items() if sustains(c, target)}
    steady = [r for r, c in passes.items() if c.status == "ok"]
    text = ", ".join(trail)
    if passes:
        peak = max(steady) if steady else max(passes)
        cell = passes[peak]
        found = f"{text} -> peak {peak:g}/s at {target}"
        if max(passes) > peak:
            found += f" ({max(passes):g}/s also passed but was unstable)"
        note = CellWarning(WarningKind.PEAK_SEARCH, found)
        result = replace(cell.result, peak_rate_rps=peak)
        return replace(cell, id=seed.id, result=result, warnings=(*cell.warnings, note))
    lightest = probes[min(probes)]
    if lightest.status not in MEASURED:
        return replace(lightest, id=seed.id)
    note = CellWarning(
        WarningKind.PEAK_SEARCH,
        f"{text} -> no rate met {target} (down to {min(probes):g}/s); "
        "this config cannot meet the target",
    )
    return replace(lightest, id=seed.id, warnings=(*lightest.warnings, note))


def _probe_text(rate: float, cell: Cell, target: LatencyTarget) -> str:
    if cell.status not in MEASURED:
        return f"{rate:g}/s {cell.status}"
    label = percentile_label(target.percentile)
    verdict = "ok" if sustains(cell, target) else "missed"
    behind = "" if kept_up(cell) else ", fell behind"
    bound_ms = latency_bound(cell.result, target.percentile).value_ms if cell.result else math.inf
    return f"{rate:g}/s {verdict} ({label}<={fmt_ms_text(bound_ms, 'ms')}{behind})"


# ---------------------------------------------------------------- the sweep


def capacity_ips(cell: Cell) -> float:
    """Inferences/s at the peak rate (0 when no rate met the target)."""
    r = cell.result
    return r.throughput_ips if r is not None and r.peak_rate_rps else 0.0


def _items(cfg: ServingConfig) -> int:
    return 1 if cfg.dynamic_batching is not None else cfg.batch_size


def _level(cfg: ServingConfig) -> int:
    return cfg.dynamic_batching.max_batch if cfg.dynamic_batching else cfg.batch_size


def _delay_key(cfg: ServingConfig) -> tuple:
    db = cfg.dynamic_batching
    return (db.delay_ms, db.preferred) if db else (0.0, ())


def _label(cfg: ServingConfig) -> str:
    db = cfg.dynamic_batching
    if db is None:
        return f"batch {cfg.batch_size}"
    return f"max_batch {db.max_batch}, delay {fmt_ms_given(db.delay_ms)}"


@dataclass
class _Search:
    """What the adaptive walk of one sweep shares: how to run a seed, and where cells go."""

    measure: Measure
    target: LatencyTarget
    gain: float
    settings: PeakSettings | None
    out: dict[str, Cell] = field(default_factory=dict)
    hint_ips: list[float] = field(default_factory=list)  # the last peak, a start for the next

    def run(self, seed: Cell) -> float:
        """Find the seed's peak; its capacity in inferences/s (0 when no rate passed)."""
        start = self.hint_ips[-1] / _items(seed.config) if self.hint_ips else None
        done = find_peak(seed, self.measure, self.target, self.settings, start_rps=start)
        self.out[seed.id] = done
        cap = capacity_ips(done)
        if cap > 0:
            self.hint_ips.append(cap)
        return cap

    def skip(self, seeds: list[Cell], reason: str) -> None:
        for c in seeds:
            self.out[c.id] = replace(c, status="skipped", reason=f"adaptive search: {reason}")


def search(
    cells: list[Cell],
    measure: Measure,
    target: LatencyTarget | None,
    adaptive: bool = True,
    gain: float = GAIN,
    settings: PeakSettings | None = None,
) -> list[Cell]:
    """Each peak cell at its config's peak rate; with `adaptive`, dominated configs are skipped."""
    if target is None:
        raise BadInput(
            "searching each config's peak rate needs a latency target",
            "add --latency-target p99=20ms, or give --rate for fixed open-loop rates",
        )
    walk = _Search(measure, target, gain, settings)
    families: dict[tuple, list[Cell]] = {}
    for cell in cells:
        if not is_peak_cell(cell):
            walk.out[cell.id] = measure(cell)
            continue
        cfg = cell.config
        key = (cfg.device, cfg.intra_op_threads, cfg.graph_optimization, cfg.io_binding)
        families.setdefault(key + (cell.load.concurrency,), []).append(cell)
    for family in families.values():
        if adaptive:
            _walk_instances(walk, family)
        else:
            for seed in family:
                walk.run(seed)
    return [walk.out.get(c.id, c) for c in cells]


def _walk_instances(walk: _Search, family: list[Cell]) -> None:
    """Raise the instance count until it stops raising the capacity by `gain`."""
    by_inst: dict[int, dict[int, list[Cell]]] = {}
    for seed in family:
        by_inst.setdefault(seed.config.instances, {}).setdefault(_level(seed.config), []).append(
            seed
        )
    inst_list = sorted(by_inst)
    prev_inst: tuple[int, float] | None = None
    for ii, inst in enumerate(inst_list):
        inst_best = _walk_levels(walk, by_inst[inst])
        if prev_inst is not None and inst_best < prev_inst[1] * (1 + walk.gain):
            for ni in inst_list[ii + 1 :]:
                walk.skip(
                    [c for seeds in by_inst[ni].values() for c in seeds],
                    f"instances saturated: {inst} instances raised the capacity by < "
                    f"{walk.gain:.0%} over {prev_inst[0]}",
                )
            break
        if prev_inst is None or inst_best > prev_inst[1]:
            prev_inst = (inst, inst_best)


def _walk_levels(walk: _Search, by_level: dict[int, list[Cell]]) -> float:
    """Raise the batch size (or max_batch) until it stops raising the capacity; the best one."""
    levels = sorted(by_level)
    inst_best, prev_level = 0.0, None
    for li, level in enumerate(levels):
        seeds = sorted(by_level[level], key=lambda c: _delay_key(c.config))
        level_best = _walk_delays(walk, seeds)
        inst_best = max(inst_best, level_best)
        if prev_level is not None and level_best < prev_level[1] * (1 + walk.gain):
            word = "max_batch" if seeds[0].config.dynamic_batching else "batch"
            for nl in levels[li + 1 :]:
                walk.skip(
                    by_level[nl],
                    f"batch saturated: {word} {level} raised the capacity by < "
                    f"{walk.gain:.0%} over {word} {prev_level[0]}",
                )
            break
        if prev_level is None or level_best > prev_level[1]:
            prev_level = (level, level_best)
    return inst_best


def _walk_delays(walk: _Search, seeds: list[Cell]) -> float:
    """Lengthen the batching delay until it meets the target at no rate or stops raising the
    peak; the best capacity found."""
    level_best = 0.0
    for di, seed in enumerate(seeds):
        cap = walk.run(seed)
        rest = seeds[di + 1 :]
        if cap == 0 and walk.out[seed.id].status in MEASURED:
            walk.skip(
                rest,
                f"dominated: {_label(seed.config)} meets {walk.target} at no rate, and a "
                "longer delay only adds latency",
            )
            break
        if level_best > 0 and cap < level_best * (1 + walk.gain):
            walk.skip(
                rest,
                f"delay saturated: {_label(seed.config)} raised the peak by < {walk.gain:.0%}",
            )
            level_best = max(level_best, cap)
            break
        level_best = max(level_best, cap)
    return level_best
