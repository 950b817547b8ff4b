"""A/B measurement: two models in one run, in randomized interleaved trials of the same cell.

The strongest comparison a noisy machine allows: the baseline's and the candidate's trials run
in rounds, each round both in a seeded random order, each trial in a fresh worker (a new
session, and a new process where isolation is on), so drift and neighbours hit both alike. The
ratios candidate / baseline of p50, p99 and throughput get Welch intervals on the logs of the
per-trial values (`measure.trials.ratio`). With `--trials auto` the rounds go on, after the
first three, until the p50 ratio's CI half-width is within `--precision`, up to `--max-trials`.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from benchbox import __version__
from benchbox import model as model_mod
from benchbox.devices import host_info
from benchbox.errors import BadInput, NothingMeasured
from benchbox.measure import trials as tstats
from benchbox.measure.cell import MeasureSettings
from benchbox.options import DataOptions
from benchbox.schema import MEASURED, Cell, Report, SweepSettings, VariantInfo, cell_id, replace
from benchbox.store import check_writable, report_path, save_report
from benchbox.sweep.plan import SweepSpec, grid
from benchbox.sweep.runner import CellContext
from benchbox.sweep.schedule import TrialPolicy, round_order
from benchbox.sweep.trials import TrialLog, combine_cell

SIDES = ("baseline", "candidate")
# The figures compared, and whether a larger value is slower.
FIGURES = {"p50": True, "p99": True, "throughput": False}


@dataclass(frozen=True)
class AbRequest:
    """Two models, one cell, how to measure and how many trials."""

    baseline_path: str
    candidate_path: str
    spec: SweepSpec
    settings: MeasureSettings
    trials: TrialPolicy = field(default_factory=TrialPolicy)
    shapes: dict[str, int] = field(default_factory=dict)
    out_dir: str = "reports"
    threshold: float = 0.0
    labels: tuple[str, str] = ("baseline", "candidate")  # how the lines name the two models
    # (precision) Each side's outputs compared with its own fp32 CPU reference (None: not).
    accuracy_samples: int | None = None
    data: DataOptions = field(default_factory=DataOptions)  # --data: both sides on its samples


def side_cells(spec: SweepSpec) -> dict[str, Cell]:
    """The one cell of each side: `--precision P` measures both at P, `--precision P1,P2` the
    baseline at P1 and the candidate at P2 (`ab m.onnx m.onnx --precision fp32,int8-static`)."""
    (cell,) = grid(replace(spec, precisions=("fp32",)))
    precisions = tuple(spec.precisions) or ("fp32",)
    if len(precisions) > 2:
        raise BadInput(
            f"benchbox ab takes one or two precisions, not {len(precisions)}",
            "--precision P for both sides, or P1,P2 for the baseline and the candidate",
        )
    pair = precisions if len(precisions) == 2 else precisions * 2
    out = {}
    for side, precision in zip(SIDES, pair, strict=True):
        config = replace(cell.config, precision=precision)
        out[side] = replace(cell, config=config, id=cell_id(config, cell.load))
    return out


def side_variants(path: str, info: Any, precision: str) -> tuple[VariantInfo, ...]:
    """The variant a side measures (built or cached), none for fp32."""
    if precision == "fp32":
        return ()
    from benchbox.precision.variants import build_variant

    return (build_variant(path, info, precision),)


@dataclass(frozen=True)
class AbFigure:
    """One figure's ratio candidate / baseline, its CI and verdict."""

    ratio: float
    lo: float
    hi: float
    level: str
    verdict: str
    summary: str
    p_holm: float = 1.0  # the Holm-adjusted p-value over the family of figures


@dataclass(frozen=True)
class AbResult:
    """Both cells (each combined from its trials), the ratios, the trial order, the reports."""

    baseline: Cell
    candidate: Cell
    figures: dict[str, AbFigure]
    order: tuple[str, ...]
    trials: int
    threshold: float
    reports: tuple[str, str]
    labels: tuple[str, str] = ("baseline", "candidate")
    decides: str = "p50"
    verdict: str = ""  # one sentence: which figure decides, at what confidence
    warnings: tuple[str, ...] = ()

    @property
    def regressed(self) -> list[str]:
        """The figures on which the candidate is slower beyond the threshold."""
        return [k for k, f in self.figures.items() if f.verdict == "slower"]


def _values(cell: Cell, figure: str) -> list[float]:
    r = cell.result
    assert r is not None
    if figure == "throughput":
        return [t.throughput_ips for t in r.per_trial]
    return [float(getattr(t.latency_ms, figure)) for t in r.per_trial]


def _within_ratio(base: Cell, cand: Cell, name: str, confidence: float) -> tuple[float, float]:
    """A within-trial CI of a latency ratio from one trial a side: each side's order-statistic
    CI at 1 - (1 - confidence) / 2 (read from its histogram), so their quotient covers at
    `confidence` (Bonferroni); throughput has no within-trial interval: (0, inf)."""
    from benchbox.measure import stats

    if name == "throughput":
        return 0.0, math.inf
    level = 1.0 - (1.0 - confidence) / 2.0
    cis = []
    for cell in (base, cand):
        r = cell.result
        hist = r.histogram if r is not None else None
        ci = stats.histogram_latency_cis(hist, level).get(name) if hist and hist.count else None
        if ci is None:
            return 0.0, math.inf
        cis.append(ci)
    (blo, bhi), (clo, chi) = cis
    return (clo / bhi if bhi > 0 else 0.0), (chi / blo if blo > 0 else math.inf)


def _ratio(base: Cell, cand: Cell, name: str, confidence: float) -> tstats.Ratio:
    b, c = _values(base, name), _values(cand, name)
    within = _within_ratio(base, cand, name, confidence) if min(len(b), len(c)) < 2 else None
    r = tstats.ratio(b, c, confidence, within)
    if within is not None and not (within[0] > 0 and math.isfinite(within[1])):
        return replace(r, lo=0.0, hi=math.inf)  # no interval: never a verdict
    return r


def _summary(r: tstats.Ratio, name: str, higher_is_slower: bool, labels: tuple[str, str]) -> str:
    if higher_is_slower:
        return tstats.ratio_sentence(r, name, labels[1], labels[0])
    # throughput: the time per inference is the inverse ratio
    inv_hi = 1 / r.lo if r.lo > 0 else math.inf
    inv = tstats.Ratio(1 / r.ratio, 1 / r.hi, inv_hi, r.level, r.baseline_trials,
                       r.candidate_trials, r.df)  # fmt: skip
    return tstats.ratio_sentence(inv, "time per inference", labels[1], labels[0])


def figures(
    base: Cell, cand: Cell, confidence: float, threshold: float, labels: tuple[str, str]
) -> dict[str, AbFigure]:
    """The ratio, CI and verdict of each figure of two combined cells.

    The three figures are one family: a figure is called slower or faster only when its
    Holm-adjusted p-value (against 1 ± threshold) is below 1 - confidence, so an A/A run calls
    a difference in at most 1 - confidence of runs, not in that share per figure.
    """
    ratios = {name: _ratio(base, cand, name, confidence) for name in FIGURES}
    raw = {n: tstats.ratio_p_value(r, threshold, confidence) for n, r in ratios.items()}
    adjusted = tstats.holm(raw)
    out = {}
    for name, higher_is_slower in FIGURES.items():
        r = ratios[name]
        verdict = tstats.verdict(r, threshold, higher_is_slower)
        if adjusted[name] >= 1.0 - confidence:
            verdict = "not significant"
        summary = _summary(r, name, higher_is_slower, labels)
        out[name] = AbFigure(r.ratio, r.lo, r.hi, r.level, verdict, summary, adjusted[name])
    return out


def decision(figs: dict[str, AbFigure], confidence: float) -> tuple[str, str]:
    """(the deciding figure, one sentence): the figure with the smallest Holm-adjusted p-value
    when any differs, else p50 with 'no difference'."""
    called = [k for k, f in figs.items() if f.verdict != "not significant"]
    level = f"{confidence:.0%}"
    if not called:
        return "p50", (
            f"verdict: no difference at {level} (Holm over {', '.join(figs)}); "
            f"p50 decides, the other figures are supporting detail"
        )
    key = min(called, key=lambda k: (figs[k].p_holm, list(figs).index(k)))
    f = figs[key]
    return key, (
        f"verdict: {f.verdict} on {key.replace('_', '.')} at {level} (Holm-adjusted p "
        f"{f.p_holm:.3g} over {', '.join(figs)}); the other figures are supporting detail"
    )


def run_ab(
    req: AbRequest,
    make_worker: Callable[[CellContext, threading.Event | None], Any],
    abort: threading.Event | None = None,
    on_trial: Callable[[str, int], None] | None = None,
) -> AbResult:
    """Measure both models in interleaved trials; save a report of each; return the ratios."""
    out_dir = check_writable(req.out_dir)
    cells_of = side_cells(req.spec)
    settings = req.settings
    if req.trials.most > 1:  # the CIs come from the trials (fresh workers start without scipy)
        settings = replace(settings, min_requests=0, within_cis=False, stop_above=None)
    cores = psutil.cpu_count(logical=True) or 1
    infos = {
        "baseline": model_mod.inspect_model(req.baseline_path, req.shapes),
        "candidate": model_mod.inspect_model(req.candidate_path, req.shapes),
    }
    paths = {"baseline": req.baseline_path, "candidate": req.candidate_path}
    from benchbox.data.samples import samples_for

    samples = {s: samples_for(req.data, infos[s], req.settings.seed) for s in SIDES}
    scratch = tempfile.mkdtemp(prefix="benchbox-ab-accuracy-")
    variants = {s: side_variants(paths[s], infos[s], cells_of[s].config.precision) for s in SIDES}
    ctxs = {
        s: CellContext(
            paths[s],
            infos[s],
            settings,
            cores,
            variants=variants[s],
            accuracy_samples=req.accuracy_samples,
            accuracy_dir=str(Path(scratch) / s),
            data=samples[s],
        )
        for s in SIDES
    }
    try:
        return _measure_ab(req, make_worker, abort, on_trial, cells_of, ctxs, out_dir)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _measure_ab(req, make_worker, abort, on_trial, cells_of, ctxs, out_dir) -> AbResult:
    """The interleaved trials of both sides, their reports saved, the ratios."""
    paths = {s: ctxs[s].model_path for s in SIDES}
    infos = {s: ctxs[s].model for s in SIDES}
    settings = ctxs["baseline"].settings
    logs = {s: TrialLog([], [], []) for s in SIDES}
    order: list[str] = []
    policy = req.trials
    confidence = settings.confidence
    for round_index in range(policy.most):
        if round_index >= (policy.trials or policy.min_trials) and _precise(logs, policy, req):
            break
        for side in round_order(list(SIDES), policy.seed, round_index):
            if on_trial is not None:
                on_trial(side, len(logs[side].trials) + 1)
            worker = make_worker(ctxs[side], abort)
            try:
                done = worker.measure(cells_of[side])
            finally:
                worker.close()
            if done.status not in MEASURED or done.result is None:
                raise NothingMeasured(
                    f"the {side} ({paths[side]}) could not be measured: {done.reason}",
                    "check the model with `benchbox run MODEL` first",
                )
            logs[side].trials.append(done)
            logs[side].orders.append(len(order))
            order.append(side)
    cells = {s: combine_cell(logs[s], confidence) for s in SIDES}
    saved = []
    for side in SIDES:
        created = _now()
        report = Report(
            host=host_info(),
            model=infos[side],
            cells=(cells[side],),
            settings=SweepSettings(
                model=paths[side],
                spec=req.spec,
                measure=settings,
                shapes=dict(req.shapes),
                search="grid",
                trials=policy,
                accuracy_samples=req.accuracy_samples,
            ),
            benchbox_version=__version__,
            created=created,
            variants=ctxs[side].variants,
            data=ctxs[side].data.info if ctxs[side].data is not None else None,
        )
        path = report_path(out_dir, f"ab-{side}-{Path(paths[side]).stem}", created)
        save_report(report, path)
        saved.append(str(path))
    figs = figures(cells["baseline"], cells["candidate"], confidence, req.threshold, req.labels)
    decides, sentence = decision(figs, confidence)
    warnings = ()
    if len(logs["baseline"].trials) < 2:
        sentence += " (within-trial intervals: run-to-run noise is not covered)"
        warnings = (
            "one trial a side: the CIs are within-trial (the requests of one run), so run-to-run "
            "noise is not covered and throughput has no interval; use --trials 3 or more",
        )
    return AbResult(
        decides=decides,
        verdict=sentence,
        warnings=warnings,
        baseline=cells["baseline"],
        candidate=cells["candidate"],
        figures=figs,
        order=tuple(order),
        trials=len(logs["baseline"].trials),
        threshold=req.threshold,
        reports=(saved[0], saved[1]),
        labels=req.labels,
    )


def _precise(logs: dict[str, TrialLog], policy: TrialPolicy, req: AbRequest) -> bool:
    """Whether the p50 ratio is precise enough to stop (auto), or the fixed count is reached."""
    if not policy.auto:
        return True
    base = combine_cell(logs["baseline"], req.settings.confidence)
    cand = combine_cell(logs["candidate"], req.settings.confidence)
    r = tstats.ratio(_values(base, "p50"), _values(cand, "p50"), req.settings.confidence)
    est = tstats.Estimate(
        r.ratio, r.lo, r.hi, "between-trial", min(r.baseline_trials, r.candidate_trials)
    )
    return tstats.precise_enough(est, policy.precision)


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()
