"""The trial phase of a sweep: more trials for the cells whose decision is close, interleaved.

The search measures each cell it needs once (the first trial). Then the measured cells get more
trials in rounds (`schedule.round_order`: a seeded permutation of the cells still needing one),
each trial in a fresh worker: a new session, and a new process where isolation is on. After
every trial the cell's trials are combined (`measure.trials.combine`) into its figures and
between-trial CIs, and the report is saved.

Which cells need more (`--trials auto`): the ones still in play, judged before every round on
the intervals the report will show: each cell's between-trial variance moderated toward the
pool of all the cells' (`pool_cells`, measure/moderate.py), so a cell with 2 or 3 trials on a
quiet machine carries the pool's degrees of freedom, not t = 12.7 or 4.3. A cell is out when
its target percentile is above the target with confidence (`verdict.result_breaks`, the rule
the search and the recommendation apply), or when its throughput cannot reach the best cell's
that meets the target; with a single trial (no between-trial CI yet) the target is moved by a
margin of SINGLE_TRIAL_MARGIN, larger than the run-to-run spread of a busy machine, so one noisy
trial does not rule a cell out. A cell in play gets at least 3 trials, then more while its
decision figure (the target percentile while its CI straddles the target, else throughput) is
less precise than `--precision`, up to `--max-trials`. Cells that stopped early say so in a
warning.

A resumed sweep's cells continue from the trials they have (`earlier_log`): a cell interrupted
at 1 of 2 trials gets its second, and its figures are combined again from all its trials.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from benchbox import verdict
from benchbox.format import fmt_ms_given, fmt_ms_text, percentile_label
from benchbox.measure import trials as tstats
from benchbox.parse import LatencyTarget
from benchbox.schema import MEASURED, Cell, CellWarning, Result, TrialPolicy, replace
from benchbox.sweep.schedule import needs_trial, round_order
from benchbox.warning_kinds import WarningKind

SINGLE_TRIAL_MARGIN = 0.5
MeasureTrial = Callable[[Cell], Cell]


@dataclass
class TrialLog:
    """A cell's trials so far: the measured trial cells and their places in the trial order."""

    trials: list[Cell]
    orders: list[int]
    failures: list[str]


def _kind(warning: CellWarning) -> str:
    return warning.kind


def combine_cell(log: TrialLog, confidence: float, note: CellWarning | None = None) -> Cell:
    """The cell of its trials: combined result, `unstable` when any trial was, warnings merged."""
    first = log.trials[0]
    results = [t.result for t in log.trials]
    statuses = [t.status for t in log.trials]
    result = tstats.combine(results, confidence, statuses, list(log.orders))
    result = replace(result, peak_rate_rps=first.result.peak_rate_rps)
    warnings: list = []
    seen: set[str] = set()
    for t in log.trials:
        for w in t.warnings:
            if _kind(w) == WarningKind.TOO_FEW_SAMPLES and result.ci_level == "between-trial":
                continue  # the between-trial CI stands on the trials, not on one trial's requests
            if _kind(w) not in seen:
                seen.add(_kind(w))
                warnings.append(w)
    extra = []
    unsettled = sum(s == "unstable" for s in statuses)
    if unsettled and len(statuses) > 1:
        extra.append(
            CellWarning(
                WarningKind.UNSTABLE_TRIALS,
                f"{unsettled} of {len(statuses)} trials never settled; the cell is judged by its "
                "between-trial bound, which includes their spread",
            )
        )
    for why in log.failures:
        extra.append(CellWarning(WarningKind.TRIAL_FAILED, why))
    if note:
        extra.append(note)
    status = "unstable" if unsettled else "ok"
    return replace(first, status=status, reason=None, result=result, warnings=(*warnings, *extra))


# The warnings `combine_cell` adds: a resumed cell's are made again from its trials.
PHASE_WARNINGS = ("unstable-trials", "trial-failed", "few-trials")


def earlier_log(cell: Cell, first_order: int = 0) -> TrialLog:
    """The trials a saved cell already has, as a log that more trials can extend.

    One trial: the cell's result is that trial. Several: each comes back from its summary in
    `per_trial` (throughput, latency summary, requests, time), the rest of the result shared;
    their histograms and samples were pooled when they were combined, so none is kept per trial.
    """
    r = cell.result
    base = replace(cell, warnings=tuple(w for w in cell.warnings if _kind(w) not in PHASE_WARNINGS))
    if r is None or len(r.per_trial) <= 1:
        order = r.per_trial[0].order if r is not None and r.per_trial else None
        return TrialLog([base], [first_order if order is None else order], [])
    trials, orders = [], []
    for i, t in enumerate(r.per_trial):
        one = replace(
            r,
            throughput_ips=t.throughput_ips,
            latency_ms=t.latency_ms,
            requests=t.requests,
            duration_s=t.duration_s,
            inferences=round(t.throughput_ips * t.duration_s),
            requests_per_s=t.requests / t.duration_s if t.duration_s > 0 else 0.0,
            latency_ci_ms=None,
            histogram=None,
            samples_ms=None,
            trials=1,
            per_trial=(),
            ci_level="within-trial",
            within_trial_ci_ms=None,
            throughput_ci_ips=None,
        )
        trials.append(replace(base, status=t.status, result=one))
        orders.append(t.order if t.order is not None else first_order + i)
    return TrialLog(trials, orders, [])


def resumed(cell: Cell) -> bool:
    """Whether a saved measured cell's trials can be continued (none of its trials failed)."""
    stopped = any(_kind(w) == "trial-failed" for w in cell.warnings)
    return cell.status in MEASURED and cell.result is not None and not stopped


def short_of_trials(
    cells: list[Cell],
    policy: TrialPolicy,
    target: LatencyTarget | None,
    confidence: float | None = None,
) -> list:
    """The saved cells a resumed sweep gives more trials to (by the policy's first round),
    judged on their pooled intervals as `run_trials` judges them (`confidence`: by default the
    level the saved intervals were made at)."""
    if confidence is None:
        confidence = next((c.result.confidence for c in cells if c.result), None) or 0.95
    measured = [c for c in cells if c.status in MEASURED and c.result is not None and resumed(c)]
    view = {c.id: c for c in cells} | {c.id: c for c in pool_cells(measured, confidence)}
    out = out_of_play(list(view.values()), target) if policy.auto else {}
    return [
        c
        for c in measured
        if needs_trial(
            policy, c.result.trials, decision_estimate(view[c.id], target), in_play=c.id not in out
        )
    ]


# ---------------------------------------------------------------- which cells are in play


def _finite(values: Sequence[object] | None) -> bool:
    return bool(values) and all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        for v in values or ()
    )


def _single(r: Result) -> bool:
    """A result with no between-trial interval yet: its CI covers one run's requests only."""
    return r.ci_level != "between-trial"


def held_to(target: LatencyTarget, r: Result, meeting: bool) -> LatencyTarget:
    """The target a result is held to by `verdict`'s rule. A single trial's interval cannot see
    run-to-run noise, so it is out only past target x (1 + SINGLE_TRIAL_MARGIN), and meets it
    only under target / (1 + SINGLE_TRIAL_MARGIN)."""
    if not _single(r):
        return target
    factor = 1.0 / (1.0 + SINGLE_TRIAL_MARGIN) if meeting else 1.0 + SINGLE_TRIAL_MARGIN
    return LatencyTarget(target.percentile, target.value_ms * factor)


def throughput_interval(r: Result) -> tuple[float, float]:
    """Throughput's CI (between-trial and finite; else the point widened by the margin)."""
    ci = r.throughput_ci_ips
    if ci and len(ci) == 2 and _finite(ci) and not _single(r):
        return float(ci[0]), float(ci[1])
    return r.throughput_ips / (1.0 + SINGLE_TRIAL_MARGIN), r.throughput_ips * (
        1.0 + SINGLE_TRIAL_MARGIN
    )


def out_of_play(cells: list[Cell], target: LatencyTarget | None) -> dict[str, str]:
    """{cell id: why} for measured cells that more trials cannot bring into the decision.

    Above the target is `verdict.result_breaks` (the rule the search and the recommendation
    apply), held to `held_to`'s target. Without a target there is no decision: every measured
    cell's figures are the answer, so none is out."""
    measured = [c for c in cells if c.status in MEASURED and c.result is not None]
    out: dict[str, str] = {}
    if target is None:
        return out
    label = percentile_label(target.percentile)
    for c in measured:
        if verdict.result_breaks(c.result, held_to(target, c.result, meeting=False)):
            lo = verdict.lower_bound(c.result, target.percentile).value_ms
            out[c.id] = (
                f"{label} is above the target {fmt_ms_given(target.value_ms)} with confidence "
                f"(lower bound {fmt_ms_text(lo)}"
                + (", with the single-trial margin)" if _single(c.result) else ")")
            )
    meeting = [
        c
        for c in measured
        if c.id not in out and verdict.result_meets(c.result, held_to(target, c.result, True))
    ]
    if meeting:
        best = max(meeting, key=lambda c: throughput_interval(c.result)[0])
        floor = throughput_interval(best.result)[0]
        for c in measured:
            if c.id in out or c.id == best.id:
                continue
            hi = throughput_interval(c.result)[1]
            if hi < floor:
                out[c.id] = (
                    f"its throughput cannot reach {best.id}'s (upper bound {hi:.4g} < "
                    f"{floor:.4g} inf/s)"
                )
    return out


def decision_estimate(cell: Cell, target: LatencyTarget | None) -> tstats.Estimate | None:
    """The figure whose precision decides whether a cell needs more trials."""
    r = cell.result
    if r is None or _single(r):
        return None
    if target is not None:
        ci = (r.latency_ci_ms or {}).get(target.percentile)
        if ci and len(ci) == 2 and _finite(ci) and ci[0] <= target.value_ms < ci[1]:
            point = float(getattr(r.latency_ms, target.percentile))
            return tstats.Estimate(point, ci[0], ci[1], "between-trial", r.trials)
    tci = r.throughput_ci_ips
    if not tci or len(tci) != 2 or not _finite(tci):
        return None
    return tstats.Estimate(r.throughput_ips, tci[0], tci[1], "between-trial", r.trials)


# ---------------------------------------------------------------- the phase


@dataclass
class _Phase:
    """The trial phase as it goes: each eligible cell's log and every cell as it stands."""

    logs: dict[str, TrialLog]
    current: dict[str, Cell]
    earlier: set[str]  # saved cells with trials: kept as saved until one is added
    order: int  # the next trial's place in the trial order
    confidence: float
    emit: Callable[[Cell], None] | None
    stopped: set[str] = field(default_factory=set)  # a trial failed: it keeps the ones it has

    def update(self, cell: Cell) -> None:
        self.current[cell.id] = cell
        if self.emit is not None:
            self.emit(cell)

    def decision_view(self) -> dict[str, Cell]:
        """Every cell, the eligible ones with their intervals moderated toward the pool of them
        (`pool_cells`): the intervals the report will show, and the ones decisions are made on,
        so a 2-trial cell on a quiet machine is judged with the pool's df, not t = 12.7."""
        pooled = pool_cells([self.current[cid] for cid in self.logs], self.confidence)
        return {**self.current, **{c.id: c for c in pooled}}


def _start(
    cells: list[Cell],
    first_orders: dict[str, int],
    eligible: Callable[[Cell], bool] | None,
    saved: set[str],
    confidence: float,
    emit: Callable[[Cell], None] | None,
) -> _Phase:
    """A log per eligible measured cell: a saved cell's trials so far, else its first trial."""
    phase = _Phase({}, {c.id: c for c in cells}, set(), 0, confidence, emit)
    for c in cells:
        if c.status not in MEASURED or c.result is None or (eligible and not eligible(c)):
            continue
        if c.id in saved and resumed(c):
            phase.logs[c.id] = earlier_log(c, first_orders.get(c.id, 0))
            phase.earlier.add(c.id)
        else:
            phase.logs[c.id] = TrialLog([c], [first_orders.get(c.id, 0)], [])
            phase.current[c.id] = combine_cell(phase.logs[c.id], confidence)
    taken = [o for log in phase.logs.values() for o in log.orders]
    phase.order = max([*first_orders.values(), *taken], default=-1) + 1
    return phase


def _needing(phase: _Phase, policy: TrialPolicy, target: LatencyTarget | None) -> list[str]:
    """The cells that get a trial in the next round, judged on their pooled intervals."""
    view = phase.decision_view() if policy.auto else phase.current  # a fixed count: no judging
    out = out_of_play(list(view.values()), target) if policy.auto else {}
    return [
        cid
        for cid, log in phase.logs.items()
        if cid not in phase.stopped
        and needs_trial(
            policy, len(log.trials), decision_estimate(view[cid], target), in_play=cid not in out
        )
    ]


def _one_trial(
    phase: _Phase,
    cid: str,
    measure_trial: MeasureTrial,
    on_trial: Callable[[Cell, int, Cell | None], None] | None,
) -> None:
    """Measure one more trial of a cell and combine it with the cell's others."""
    log = phase.logs[cid]
    number = len(log.trials) + len(log.failures) + 1
    if on_trial is not None:
        on_trial(log.trials[0], number, None)
    done = measure_trial(log.trials[0])
    if on_trial is not None:
        on_trial(log.trials[0], number, done)
    if done.status in MEASURED and done.result is not None:
        log.trials.append(done)
        log.orders.append(phase.order)
    else:
        log.failures.append(
            f"trial {number} {done.status}: "
            f"{done.reason}; the cell keeps its {len(log.trials)} trial(s)"
        )
        phase.stopped.add(cid)
    phase.order += 1
    phase.earlier.discard(cid)
    phase.update(combine_cell(log, phase.confidence))


def _note_few_trials(phase: _Phase, policy: TrialPolicy, target: LatencyTarget | None) -> None:
    """A `few-trials` warning on each cell that stopped short of `min_trials`, saying why."""
    if not policy.auto:
        return
    out = out_of_play(list(phase.decision_view().values()), target)
    for cid, log in phase.logs.items():
        n = len(log.trials)
        if n < policy.min_trials and cid in out and cid not in phase.earlier:
            note = CellWarning(
                WarningKind.FEW_TRIALS,
                f"{n} trial(s), since the cell is clearly out of the decision: {out[cid]}",
            )
            phase.update(combine_cell(log, phase.confidence, note))


def run_trials(
    cells: list[Cell],
    measure_trial: MeasureTrial,
    policy: TrialPolicy,
    target: LatencyTarget | None,
    confidence: float,
    emit: Callable[[Cell], None] | None = None,
    first_orders: dict[str, int] | None = None,
    eligible: Callable[[Cell], bool] | None = None,
    ruler: Callable[[], None] | None = None,
    saved: set[str] | None = None,
    on_trial: Callable[[Cell, int, Cell | None], None] | None = None,
) -> list[Cell]:
    """The cells with their extra trials (the measured ones), each combined from its trials.

    `cells` come from the search, each measured once (`first_orders`: where in the trial order
    each was measured); `measure_trial(cell)` measures one more trial of it in a fresh worker.
    `emit` gets every cell as it changes (to save the report); `eligible` picks the cells that
    may get trials at all (all measured ones by default); `ruler()` times the reference
    workload, once before the rounds and once in every round, between the cells; `saved`: ids
    of cells kept from a resumed report, which continue from the trials they have.
    `on_trial(cell, number, outcome)`: a trial's number among the cell's, before it is
    measured (outcome None) and after, with the trial's own cell (failed or not).
    """
    if first_orders is None:  # the search measured them in list order
        first_orders = {c.id: i for i, c in enumerate(cells)}
    phase = _start(cells, first_orders, eligible, saved or set(), confidence, emit)
    if ruler is not None and phase.logs:
        ruler()
    for round_index in range(1, policy.most):
        needing = _needing(phase, policy, target)
        if not needing:
            break
        order = round_order(needing, policy.seed, round_index)
        for cid in order:
            if ruler is not None and cid == order[len(order) // 2]:
                ruler()
            _one_trial(phase, cid, measure_trial, on_trial)
    _note_few_trials(phase, policy, target)
    for cell in pool_cells([phase.current[c.id] for c in cells if c.id in phase.logs], confidence):
        if cell != phase.current[cell.id]:
            phase.update(cell)
    return [phase.current[c.id] for c in cells]


def pool_cells(cells: list[Cell], confidence: float) -> list[Cell]:
    """The cells with their between-trial CIs moderated toward the pool of all of them.

    A figure that kept its own (far larger) spread is named in an `own-spread` warning."""
    results = [c.result for c in cells if c.result is not None]
    pooled = iter(tstats.moderate_results(results, confidence))
    out = []
    for c in cells:
        if c.result is None:
            out.append(c)
            continue
        p = next(pooled)
        warnings = c.warnings
        if p.own_spread:
            names = ", ".join(percentile_label(f) if f.startswith("p") else f for f in p.own_spread)
            warnings = (
                *warnings,
                CellWarning(
                    WarningKind.OWN_SPREAD,
                    f"{names}: its trials differ far more than the sweep's other cells' do, so "
                    f"its interval stands on its own {p.result.trials} trials, not on the pool",
                ),
            )
        out.append(replace(c, result=p.result, warnings=warnings))
    return out


def trials_summary(cells: list[Cell]) -> str:
    """'3 trials for 4 cells, 1 for 2' — how the trials were spent."""
    counts: dict[int, int] = {}
    for c in cells:
        if c.result is not None and c.status in MEASURED:
            counts[c.result.trials] = counts.get(c.result.trials, 0) + 1
    parts = [
        f"{n} trial{'s' if n != 1 else ''} for {k} cell{'s' if k != 1 else ''}"
        for n, k in sorted(counts.items(), reverse=True)
    ]
    return ", ".join(parts) if parts else "no cell measured"
