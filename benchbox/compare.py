"""Comparing reports of one model: across machines (the cheapest) or versions (what changed)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchbox import cost, pricing, recommend
from benchbox.errors import BadInput
from benchbox.format import accuracy_label, reason_line
from benchbox.kinds import CompareMode  # noqa: F401 (re-exported)
from benchbox.measure import stats
from benchbox.measure import trials as tstats
from benchbox.parse import LatencyTarget, parse_choice, parse_percent, parse_target
from benchbox.schema import MEASURED, Cell, Report, replace
from benchbox.store import load_report

NS = "not significant"


@dataclass(frozen=True)
class MachineRow:
    """One machine's best configuration (under the target when there is one)."""

    label: str
    hostname: str
    hardware: str
    profile: str | None
    profile_from_flag: bool
    cell_id: str | None
    percentile: str
    latency_ms: float | None
    latency_ci_ms: tuple[float, float] | None
    throughput_ips: float | None
    usd_per_million: float | None
    energy_j_per_inference: float | None
    how: str
    cheapest: bool = False
    confidence: float | None = None  # the level of latency_ci_ms (the cell's own)
    pricing_note: str | None = None  # the profile describes other hardware than was measured
    accuracy: str | None = None  # (precision) the best cell's accuracy vs fp32, when measured


@dataclass(frozen=True)
class MachineComparison:
    """Reports of one model on different machines, cheapest per million first."""

    target: LatencyTarget | None
    rows: tuple[MachineRow, ...]
    warnings: tuple[str, ...]
    mode: str = "machines"


@dataclass(frozen=True)
class CellDelta:
    """One cell measured in the baseline and in a candidate; ratio = candidate / baseline median."""

    cell_id: str
    baseline: str
    candidate: str
    baseline_p50_ms: float
    baseline_p99_ms: float
    candidate_p50_ms: float
    candidate_p99_ms: float
    baseline_throughput_ips: float
    candidate_throughput_ips: float
    ratio: float
    ratio_lo: float
    ratio_hi: float
    p_value: float | None  # the cell's own test, against 1 ± threshold
    verdict: str  # the call after Holm over the family of matched cells (`holm_family`)
    method: str  # "trials", or within-trial: "samples" (raw latencies) or "histograms"
    level: str = "within-trial"  # what the CI covers: "between-trial" or "within-trial"
    baseline_trials: int = 1
    candidate_trials: int = 1
    summary: str = ""  # hyperfine's line: "candidate ran 1.12 ± 0.03 times slower than baseline"
    accuracy: str | None = None  # (precision) baseline → candidate accuracy vs fp32, when measured
    p_holm: float | None = None  # p_value adjusted over the family of matched cells (Holm)
    ruler_ratio: float | None = None  # the machine's move the ratio was divided by, if any
    own_verdict: str = ""  # the cell's test alone at the stated confidence (supporting detail)
    # between trials: the interval's degrees of freedom, and whether each side's variance was
    # moderated toward its own report's pool of cells (`run_prior`)
    df: float | None = None
    pooled: bool = False


@dataclass(frozen=True)
class VersionComparison:
    """The same model on comparable hosts: every candidate's cells matched to the baseline's."""

    baseline: str
    candidates: tuple[str, ...]
    confidence: float
    threshold: float
    cells: tuple[CellDelta, ...]
    unmatched: tuple[str, ...]
    newly_failed: tuple[str, ...]
    warnings: tuple[str, ...]
    mode: str = "versions"
    # What the CIs cannot see: cells with one trial on a side (no run-to-run noise in their
    # CI), or every cell moved alike (the machine may have changed between the runs).
    noise_warnings: tuple[str, ...] = ()
    verdict: str = ""  # one sentence: what the family of cells says, and which figure decides


# ---------------------------------------------------------------- entry point


def compare_reports(
    reports: list[Report],
    target: LatencyTarget | None = None,
    profile: cost.Profile | None = None,
    threshold: float = 0.0,
    confidence: float = 0.95,
    mode: CompareMode | str = CompareMode.AUTO,
    labels: list[str] | None = None,
    allow_different_models: bool = False,
) -> MachineComparison | VersionComparison:
    """Compare reports of one model: across machines, or across versions on one machine.

    `allow_different_models` compares reports of different model files as versions (a new
    export of the model), cell by cell; otherwise they are refused."""
    if len(reports) < 2:
        raise BadInput(
            f"compare needs at least two reports, got {len(reports)}",
            "pass two or more report files, e.g. benchbox compare a.json b.json",
        )
    labels = labels or [f"report {i + 1} ({r.host.hostname})" for i, r in enumerate(reports)]
    if len(labels) != len(reports):
        raise ValueError("one label per report")
    if not allow_different_models:
        check_same_model(reports, labels)
    mode = parse_choice(CompareMode, mode, "comparison mode", "--mode")
    if mode == CompareMode.AUTO:
        same_host = len({host_key(r) for r in reports}) == 1
        mode = CompareMode.VERSIONS if same_host else CompareMode.MACHINES
    if mode == CompareMode.VERSIONS:
        return compare_versions(reports, labels, threshold, confidence)
    if allow_different_models:
        raise BadInput(
            "different models are compared as versions, on one machine", "pass --mode versions"
        )
    return compare_machines(reports, labels, target, profile)


def compare_files(
    paths: list[Path],
    latency_target: str | None = None,
    profile: str | None = None,
    mode: CompareMode | str = CompareMode.AUTO,
    fail_on_regression: str | None = None,
    confidence: float = 0.95,
    allow_different_models: bool = False,
) -> MachineComparison | VersionComparison:
    """`benchbox compare`: check the options as given, load the reports and compare them."""
    if len(paths) < 2:
        raise BadInput(
            f"compare needs at least two reports, got {len(paths)}",
            "pass two or more report files, e.g. benchbox compare a.json b.json",
        )
    mode = parse_choice(CompareMode, mode, "comparison mode", "--mode")
    if not 0.5 <= confidence < 1.0:
        raise BadInput(f"--confidence {confidence:g} must be in [0.5, 1)", "e.g. --confidence 0.95")
    target = parse_target(latency_target) if latency_target else None
    threshold = (
        parse_percent(fail_on_regression, "fail-on-regression") if fail_on_regression else 0.0
    )
    if threshold >= 1.0:
        raise BadInput(f"--fail-on-regression {fail_on_regression!r} must be below 100%")
    prof = cost.load_profile(profile) if profile else None
    loaded = [load_report(p) for p in paths]
    result = compare_reports(
        loaded,
        target,
        prof,
        threshold=threshold,
        confidence=confidence,
        mode=mode,
        labels=file_labels(paths),
        allow_different_models=allow_different_models,
    )
    if fail_on_regression is not None and isinstance(result, MachineComparison):
        raise BadInput(
            "--fail-on-regression compares versions, "
            "but these reports come from different machines",
            "pass --mode versions to compare them cell by cell anyway",
        )
    return result


def file_labels(paths: list[Path]) -> list[str]:
    """File names, or full paths when two reports share a name."""
    names = [Path(p).name for p in paths]
    if len(set(names)) == len(names):
        return names
    return [str(p) for p in paths]


def model_identity(report: Report) -> str:
    """How a report's model is named in a message: its file's sha256, or the server's model."""
    if report.model.sha256:
        return f"sha256 {report.model.sha256[:16]}…"
    t = report.target
    if t is not None:
        version = f" version {t.model_version}" if t.model_version else ""
        server = f" on {t.server_name} {t.server_version}".rstrip() if t.server_name else ""
        return f"remote model '{t.model_name}'{version}{server} (no file hash)"
    return "no recorded sha256"


def check_same_model(reports: list[Report], labels: list[str]) -> None:
    """BadInput naming the files and hashes when the reports are not of one model."""
    first = reports[0].model.sha256
    for report, label in zip(reports[1:], labels[1:], strict=True):
        if report.model.sha256 != first:
            raise BadInput(
                f"the reports measure different models: {labels[0]} has "
                f"{model_identity(reports[0])}, {label} has {model_identity(report)}",
                "compare reports of the same ONNX file "
                "(its sha256 is in each report's model section)",
            )


def host_key(report: Report) -> tuple:
    """What makes two reports come from the same machine: hostname, CPU model and GPUs."""
    h = report.host
    return (h.hostname, h.cpu_model, tuple(g.name for g in h.gpus))


def host_kind(report: Report) -> tuple:
    """The kind of host a ruler is comparable on: CPU model, logical cores and GPUs."""
    h = report.host
    return (h.cpu_model, h.cpu_cores_logical, tuple(g.name for g in h.gpus))


# ---------------------------------------------------------------- metadata


_METADATA = (
    ("cpu_model", "CPU model"),
    ("onnxruntime", "onnxruntime"),
    ("providers", "provider set"),
    ("benchbox_version", "benchbox"),
    ("python", "python"),
)


def metadata_differences(reports: list[Report], ignore: tuple[str, ...] = ()) -> list[str]:
    """One line per host metadata field whose value differs between the reports (as pyperf does)."""
    out = []
    for key, name in _METADATA:
        if key in ignore:
            continue
        values = []
        for r in reports:
            if key == "benchbox_version":
                value = r.benchbox_version or "unknown"
            elif key == "providers":
                value = ", ".join(sorted(r.host.providers)) or "none"
            else:
                value = str(getattr(r.host, key)) or "unknown"
            if value not in values:
                values.append(value)
        if len(values) > 1:
            out.append(f"{name} differs: {' vs '.join(values)} — the comparison may not be fair")
    return out


def data_label(report: Report) -> str:
    """Where a report's requests came from, for a message: its --data source, or synthetic."""
    d = report.data
    if d is None:
        return "synthetic inputs"
    return f"--data {d.source} ({d.kind}, {d.samples_used} samples, sha256 {d.sha256[:12]})"


def data_differences(reports: list[Report], labels: list[str]) -> list[str]:
    """One line per report whose requests came from other data than the first report's: another
    sha256 of what was read, or --data on one side and synthetic inputs on the other."""
    first = reports[0].data
    out = []
    for report, label in zip(reports[1:], labels[1:], strict=True):
        d = report.data
        if (d is None and first is None) or (d and first and d.sha256 == first.sha256):
            continue
        out.append(
            f"the reports measured different data: {labels[0]} on {data_label(reports[0])}, "
            f"{label} on {data_label(report)} — latency depends on the inputs, so the "
            "comparison may not be fair"
        )
    return out


# ---------------------------------------------------------------- machines


def compare_machines(
    reports: list[Report],
    labels: list[str],
    target: LatencyTarget | None,
    profile: cost.Profile | None,
) -> MachineComparison:
    """One row per report, its best configuration, cheapest per million first."""
    rows = [
        _machine_row(r, label, target, profile) for r, label in zip(reports, labels, strict=True)
    ]
    rows.sort(key=_machine_rank)
    if rows and rows[0].usd_per_million is not None:
        rows[0] = _with_cheapest(rows[0])
    # Different hardware is the point of this comparison, so only software differences warn.
    warnings = metadata_differences(reports, ignore=("cpu_model",)) + data_differences(
        reports, labels
    )
    return MachineComparison(target=target, rows=tuple(rows), warnings=tuple(warnings))


def _with_cheapest(row: MachineRow) -> MachineRow:
    from dataclasses import replace

    return replace(row, cheapest=True)


def _machine_rank(row: MachineRow) -> tuple:
    if row.usd_per_million is not None:
        return (0, row.usd_per_million)
    if row.throughput_ips is not None:
        return (1, -row.throughput_ips)
    return (2, 0.0)


def _machine_row(
    report: Report, label: str, target: LatencyTarget | None, profile: cost.Profile | None
) -> MachineRow:
    profile_name = report.profile.name if report.profile else None
    from_flag = False
    if profile is not None and report.profile is None:
        report = cost.price_report(report, profile)
        profile_name, from_flag = profile.name, True
    cells = {c.id: c for c in report.cells}
    cell: Cell | None = None
    percentile = target.percentile if target else "p99"
    if target is not None:
        priced = any(_cost(c) is not None for c in report.cells)
        rec = recommend.recommend(report, target, objective="cost" if priced else "throughput")
        cell = cells.get(rec.winner) if rec.winner else None
        how = f"best under {target}" if cell else f"no configuration meets {target}"
    elif report.recommendation is not None and report.recommendation.winner in cells:
        rec = report.recommendation
        cell, percentile = cells[rec.winner], rec.percentile
        how = f"stored recommendation ({rec.target})"
    else:
        measured = [c for c in report.cells if c.status == "ok" and c.result is not None]
        cell = max(measured, key=lambda c: c.result.throughput_ips, default=None)
        how = "highest throughput (no target)" if cell else "no measured cell"
    h = report.host
    hardware = h.cpu_model + "".join(f" + {g.name}" for g in h.gpus)
    res = cell.result if cell is not None else None
    return MachineRow(
        pricing_note=pricing.mismatch_text(report),
        label=label,
        hostname=h.hostname,
        hardware=hardware,
        profile=profile_name,
        profile_from_flag=from_flag,
        cell_id=cell.id if cell else None,
        percentile=percentile,
        latency_ms=getattr(res.latency_ms, percentile) if res else None,
        latency_ci_ms=_ci(cell, percentile) if cell else None,
        throughput_ips=res.throughput_ips if res else None,
        usd_per_million=res.cost_usd_per_million if res else None,
        energy_j_per_inference=res.energy_j_per_inference if res else None,
        how=how,
        confidence=res.confidence if res else None,
        accuracy=accuracy_label(cell) if cell is not None and cell.accuracy else None,
    )


def _cost(cell: Cell) -> float | None:
    return cell.result.cost_usd_per_million if cell.result is not None else None


def _ci(cell: Cell, percentile: str) -> tuple[float, float] | None:
    ci = ((cell.result.latency_ci_ms if cell.result else None) or {}).get(percentile)
    return (float(ci[0]), float(ci[1])) if ci else None


# ---------------------------------------------------------------- versions


def compare_versions(
    reports: list[Report], labels: list[str], threshold: float = 0.0, confidence: float = 0.95
) -> VersionComparison:
    """Match every candidate's cells to the first report's by id and test each latency change."""
    base, base_label = reports[0], labels[0]
    base_cells = {c.id: c for c in base.cells}
    deltas: list[CellDelta] = []
    unmatched: list[str] = []
    newly_failed: list[str] = []
    rulers: list[str] = []
    for report, label in zip(reports[1:], labels[1:], strict=True):
        machine = ruler_ratio(base, report, confidence)
        rulers.append(ruler_line(machine, base, report, base_label, label, threshold))
        cand_cells = {c.id: c for c in report.cells}
        priors = (run_prior(base), run_prior(report))
        for cid in base_cells.keys() - cand_cells.keys():
            unmatched.append(f"{cid} only in {base_label}")
        for cid in cand_cells.keys() - base_cells.keys():
            unmatched.append(f"{cid} only in {label}")
        for cid, b in base_cells.items():
            c = cand_cells.get(cid)
            if c is None:
                continue
            b_ok, c_ok = _measured(b), _measured(c)
            if b_ok and c_ok:
                delta = _delta(b, c, base_label, label, threshold, confidence, priors)
                if delta is not None and machine is not None:
                    delta = by_ruler(delta, machine, threshold, confidence)
                if delta is None:
                    unmatched.append(f"{cid} has no latency samples or histogram in both reports")
                else:
                    deltas.append(delta)
            elif b_ok and not c_ok:
                why = f" ({reason_line(c.reason)})" if c.reason else ""
                newly_failed.append(
                    f"{cid} is {c.status} in {label}{why}, {b.status} in {base_label}"
                )
    deltas = holm_family(deltas, confidence)
    warnings = metadata_differences(reports) + data_differences(reports, labels)
    if len({r.model.sha256 for r in reports}) > 1:
        warnings.append("the reports measure different model files, compared as versions")
    single = [d for d in deltas if d.level == "within-trial"]
    noise: list[str] = [line for line in rulers if line]
    called = {d.verdict for d in deltas}
    if len(deltas) >= 3 and len(called) == 1 and called != {NS}:
        noise.append(
            f"every matched cell is {called.pop()}: a change of the machine between the runs "
            "(load, frequency, neighbours) moves all cells alike too, and trials within one run "
            "cannot see it; confirm with `benchbox ab BASELINE CANDIDATE`, which interleaves both"
        )
    if single:
        noise.append(
            f"{len(single)} of {len(deltas)} cell(s) have a single trial on a side, so "
            "run-to-run noise cannot be told apart from a change: their CIs cover the requests of "
            "one run only; measure both with --trials 3 or more"
        )
    return VersionComparison(
        baseline=base_label,
        candidates=tuple(labels[1:]),
        confidence=confidence,
        threshold=threshold,
        cells=tuple(deltas),
        unmatched=tuple(sorted(unmatched)),
        newly_failed=tuple(newly_failed),
        warnings=tuple(warnings),
        noise_warnings=tuple(noise),
        verdict=family_verdict(deltas, confidence),
    )


def ruler_ratio(base: Report, cand: Report, confidence: float) -> tstats.Ratio | None:
    """candidate / baseline of the ruler's seconds, when both reports carry the same ruler and
    come from the same kind of host (else None: nothing to correct by)."""
    from benchbox.measure import ruler

    a, b = base.host.ruler, cand.host.ruler
    if a is None or b is None or a.kind != b.kind or host_kind(base) != host_kind(cand):
        return None
    if not (ruler.usable(a.per_round_s) and ruler.usable(b.per_round_s)):
        return None
    return tstats.ratio(a.per_round_s, b.per_round_s, confidence)


def ruler_line(
    machine: tstats.Ratio | None,
    base: Report,
    cand: Report,
    base_label: str,
    label: str,
    threshold: float,
) -> str:
    """How far the machine moved between the runs, or why nothing was corrected."""
    from benchbox.measure import ruler

    if machine is None:
        if base.host.ruler is None or cand.host.ruler is None:
            return (
                f"{base_label if base.host.ruler is None else label} has no ruler (measured before "
                "rulers): compared as measured, so a change of the machine between the runs "
                "is not corrected; `benchbox ab` interleaves both and needs none"
            )
        return f"the rulers of {base_label} and {label} cannot be compared (kind or host differ)"
    text = (
        f"the machine moved {machine.ratio:.3f}x ({machine.lo:.3f}–{machine.hi:.3f}) between "
        f"{base_label} and {label} by the ruler; each cell's ratio is divided by it"
    )
    if ruler.moved_beyond(machine.lo, machine.hi, max(ruler.CONFOUNDED, threshold)):
        text += (
            "; the machine moved more than the comparison can absorb, so the runs are "
            "confounded: measure both in one run with `benchbox ab BASELINE CANDIDATE`"
        )
    return text


def by_ruler(d: CellDelta, machine: tstats.Ratio, threshold: float, confidence: float) -> CellDelta:
    """The delta divided by the machine's move, the ruler's uncertainty added on logs."""
    from benchbox.measure import ruler

    if not (d.ratio_lo > 0 and math.isfinite(d.ratio_hi)):
        return d
    ratio, lo, hi = ruler.corrected(d.ratio, d.ratio_lo, d.ratio_hi, *_triple(machine))
    r = tstats.Ratio(ratio, lo, hi, "between-trial", d.baseline_trials, d.candidate_trials, None)
    verdict = tstats.verdict(r, threshold)
    p_value = tstats.ratio_p_value(r, threshold, confidence)
    if ruler.moved_beyond(machine.lo, machine.hi, max(ruler.CONFOUNDED, threshold)):
        verdict, p_value = NS, 1.0  # confounded: the ruler line says so and points to ab
    return replace(
        d,
        ratio=ratio,
        ratio_lo=lo,
        ratio_hi=hi,
        verdict=verdict,
        own_verdict=verdict,
        p_value=p_value,
        ruler_ratio=machine.ratio,
        df=None,  # the ruler's interval is added on logs: the result has no one df
        summary=tstats.ratio_sentence(r, "p50, by the ruler", d.candidate, d.baseline),
    )


def _triple(r: tstats.Ratio) -> tuple[float, float, float]:
    return r.ratio, r.lo, r.hi


def holm_family(deltas: list[CellDelta], confidence: float) -> list[CellDelta]:
    """The deltas with their p-values Holm-adjusted over all matched cells (`p_holm`), each
    `verdict` the family's call (`family_called`), the cell's own test kept in `own_verdict`.

    Why Holm: a compare tests one hypothesis per matched cell (across every candidate), and
    the gate names cells, so the error to bound is the family-wise one: the chance that any
    unchanged cell is called is at most 1 - confidence (so an A/A compare calls a difference in
    at most that share of runs). Holm's step-down bounds it under any dependence between the
    cells and is uniformly more powerful than Bonferroni. Hochberg's step-up calls more when the
    cells' p-values are alike, but holds only under positive dependence; simulated (3-16 cells,
    3 or 5 trials, 5-20% trial noise) it gained a few cells in a hundred, and only when every
    cell moved alike. Benjamini-Hochberg's FDR also holds an A/A run to 1 - confidence, but
    once some cells really changed it lets unchanged ones be named too. Only p50 is tested per
    cell (p99 and throughput are shown, not tested), so the family is the cells, not figures.
    """
    raw = {i: d.p_value for i, d in enumerate(deltas) if d.p_value is not None}
    adjusted = tstats.holm(raw)
    out = []
    for i, d in enumerate(deltas):
        d = replace(d, p_holm=adjusted.get(i), own_verdict=d.own_verdict or d.verdict)
        out.append(replace(d, verdict=d.own_verdict if family_called(d, confidence) else NS))
    return out


def family_called(d: CellDelta, confidence: float) -> bool:
    """True when the cell's change holds after Holm over the family of matched cells: its own
    test calls it, and its Holm-adjusted p-value is below 1 - confidence."""
    own = d.own_verdict or d.verdict
    return own != NS and d.p_holm is not None and d.p_holm < 1 - confidence


def family_verdict(deltas: list[CellDelta], confidence: float) -> str:
    """The one verdict: cells slower or faster after Holm over all matched cells (p50 decides).

    Each cell's label is the family's call (`holm_family`); its own test alone is supporting
    detail (`own_verdict`), as are p99 and throughput, which are shown and not tested.
    """
    called = [d for d in deltas if family_called(d, confidence)]
    slower = sum(d.verdict == "slower" for d in called)
    faster = len(called) - slower
    head = "no difference" if not called else f"{slower} slower, {faster} faster"
    return (
        f"verdict: {head} of {len(deltas)} cells at {confidence:.0%} after Holm over the "
        f"{len(deltas)} cells; each cell's p50 (median) ratio decides, its test alone, p99 "
        "and throughput are supporting detail (not tested)"
    )


def _measured(cell: Cell) -> bool:
    return cell.status in MEASURED and cell.result is not None


def _trial_values(cell: Cell, key: str) -> list[float]:
    """A cell's per-trial values of one percentile (its point value when it has no trials)."""
    r = cell.result
    assert r is not None
    if len(r.per_trial) >= 2:
        return [float(getattr(t.latency_ms, key)) for t in r.per_trial]
    return [float(getattr(r.latency_ms, key))]


def _within(br, cr, confidence: float, threshold: float) -> tuple[stats.Comparison, str] | None:
    """The within-trial comparison of the pooled requests (raw samples, else histograms)."""
    if br.samples_ms and cr.samples_ms:
        cmp = stats.compare_samples(
            np.asarray(br.samples_ms), np.asarray(cr.samples_ms), confidence, threshold
        )
        return cmp, "samples"
    if br.histogram and cr.histogram:
        cmp = stats.compare_histograms(br.histogram, cr.histogram, confidence, threshold)
        return cmp, "histograms"
    return None


def run_prior(report: Report) -> Any:
    """The pool of a report's cells for the p50 test: the prior of their per-trial p50 variances
    (None with fewer than 3 cells of 2+ trials). The trial-to-trial noise of one run is largely
    shared by its cells, so each report's pool moderates its own cells (two reports from
    different days can have different noise, so the pools are not mixed)."""
    return tstats.figure_prior([c.result for c in report.cells if _measured(c)], "p50")


def _delta(
    b: Cell,
    c: Cell,
    base_label: str,
    label: str,
    threshold: float,
    confidence: float,
    priors: tuple[Any, Any] | None = None,
) -> CellDelta | None:
    """The change of one cell's median: between the trials when both sides have 2+ of them
    (Welch on the logs of the per-trial medians, each side's variance moderated toward its
    report's pool when `priors` has one), else within one run (bootstrap + U test)."""
    br, cr = b.result, c.result
    assert br is not None and cr is not None
    between = len(br.per_trial) >= 2 and len(cr.per_trial) >= 2
    if between:
        r = tstats.ratio(
            _trial_values(b, "p50"), _trial_values(c, "p50"), confidence, priors=priors
        )
        ratio, lo, hi, method = r.ratio, r.lo, r.hi, "trials"
        p_value = tstats.ratio_p_value(r, threshold, confidence)
        verdict = tstats.verdict(r, threshold)
    else:
        within = _within(br, cr, confidence, threshold)
        if within is None:
            return None
        cmp, method = within
        ratio, lo, hi = cmp.ratio, cmp.ratio_lo, cmp.ratio_hi
        verdict = cmp.verdict
        r = tstats.Ratio(ratio, lo, hi, "within-trial", br.trials, cr.trials, None)
        # The call needs both the rank test and the bootstrap CI past 1 ± threshold, so its
        # p-value is the larger of the two (an intersection-union test), fit for Holm.
        p_value = max(cmp.p_value, tstats.ratio_p_value(r, threshold, confidence))
    return CellDelta(
        cell_id=b.id,
        baseline=base_label,
        candidate=label,
        baseline_p50_ms=br.latency_ms.p50,
        baseline_p99_ms=br.latency_ms.p99,
        candidate_p50_ms=cr.latency_ms.p50,
        candidate_p99_ms=cr.latency_ms.p99,
        baseline_throughput_ips=br.throughput_ips,
        candidate_throughput_ips=cr.throughput_ips,
        ratio=ratio,
        ratio_lo=lo,
        ratio_hi=hi,
        p_value=p_value,
        verdict=verdict,
        own_verdict=verdict,
        method=method,
        level="between-trial" if between else "within-trial",
        baseline_trials=br.trials,
        candidate_trials=cr.trials,
        summary=tstats.ratio_sentence(r, "p50", label, base_label),
        accuracy=(
            f"{accuracy_label(b)} → {accuracy_label(c)}" if b.accuracy or c.accuracy else None
        ),
        df=r.df,
        pooled=r.pooled,
    )


def regressions(cmp: VersionComparison, threshold: float) -> list[CellDelta]:
    """Matched cells slower by more than `threshold`: called slower after Holm over the family
    (tested against 1 + `cmp.threshold`) and with the CI lower bound above 1 + `threshold`."""
    return [d for d in cmp.cells if d.verdict == "slower" and d.ratio_lo > 1.0 + threshold]
