"""A fleet: one sweep per node group of a Ray cluster, measured on the group's own nodes, ranked.

A group is a machine type: the nodes whose label `group_label` (KubeRay's `ray.io/node-group` by
default) equals its name, priced on its profile. For every node of a group one Ray actor
(`NodeSweeper`) is pinned there with `label_selector` and takes all of the node's CPUs and GPUs, so
nothing else runs beside the measurement. The node reads its own host facts, checks the devices and
measures cells in benchbox's usual worker process; the search and the report stay here, on the
caller, which gets every cell back as a plain value (no shared filesystem) and saves the group's
report after each one. So a lost node costs only the cells it had not sent back: its group moves
them to another of its nodes, or fails them, and `resume_fleet` measures them later.

Groups run at the same time, one thread each. The reports are ranked by `benchbox.compare`, as
`benchbox compare` ranks machines.

The room: `data` (request, outcomes), `cluster` (connecting, node labels, the bounded wait for
groups), `node` (the actor on each node), `placement` (actors and each group's NodePool), `remote`
(the sweep's worker that sends cells to a pool), `manifest` (`fleet.json`, for `--resume`); this
module runs the groups and ranks them.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchbox import model as model_mod
from benchbox.compare import MachineComparison, compare_machines
from benchbox.cost import load_profile
from benchbox.data.samples import SampleSet, samples_for
from benchbox.errors import BadInput, BenchboxError, GateFailed, Interrupted, NothingMeasured
from benchbox.parse import LatencyTarget
from benchbox.schema import MEASURED, Profile, Report, from_dict, replace, to_dict
from benchbox.store import check_writable, load_report
from benchbox.sweep import (
    Progress,
    cell_context,
    execute,
    new_report,
    now_iso,
    resume_model_path,
    resume_sweep,
    with_variants,
)
from benchbox.sweep.fleet.cluster import connected, first_line, require_ray
from benchbox.sweep.fleet.data import (
    DEFAULT_GROUP_LABEL,
    FleetRequest,
    FleetResult,
    GroupOutcome,
    GroupSpec,
    Machine,
    parse_groups,
)
from benchbox.sweep.fleet.manifest import (
    MANIFEST,
    Manifest,
    ManifestGroup,
    fleet_out_dir,
    read_manifest,
    write_manifest,
)
from benchbox.sweep.fleet.placement import NodePool, place_groups
from benchbox.sweep.fleet.remote import remote_factory
from benchbox.sweep.runner import CellContext

__all__ = [
    "DEFAULT_GROUP_LABEL",
    "MANIFEST",
    "FleetRequest",
    "FleetResult",
    "GroupOutcome",
    "GroupSpec",
    "fleet_gate",
    "fleet_out_dir",
    "parse_groups",
    "require_ray",
    "resume_fleet",
    "run_fleet",
]


@dataclass(frozen=True)
class GroupJob:
    """What one group's thread runs: `run()` measures and returns the saved report's path."""

    group: GroupSpec
    pool: NodePool
    run: Callable[[], Any]
    file: ManifestGroup


def group_report(
    req: FleetRequest,
    group: GroupSpec,
    pool: NodePool,
    out_dir: Path,
    samples: SampleSet | None = None,
) -> tuple[Report, Path, CellContext]:
    """The group's new report (its cells planned, the primary node's facts, the group's
    profile, the --data samples' description) saved in `out_dir`, and the CellContext its
    cells share."""
    facts = pool.primary.facts
    machine = from_dict(Machine, facts["machine"], "machine")
    host = replace(machine.host, ray_node_id=pool.primary.node_id, ray_group=group.name)
    spec = replace(req.sweep.spec, devices=tuple(facts["devices"]))
    # The trials as asked (`--trials`): the search's cells are shared by the group's nodes, the
    # trial phase measures one trial at a time on them, in the seeded interleaved order.
    sweep = replace(req.sweep, spec=spec, profile=group.profile, trials=req.trials)
    label = Path(sweep.model_label or sweep.model_path).stem
    profile = load_profile(group.profile)
    data = samples.info if samples is not None else None
    report, path = new_report(sweep, host, profile, out_dir, f"{label}-{group.name}", data=data)
    # (precision) the variants as built here; each node builds its own from its copy of the model
    report = with_variants(report, sweep.model_path, sweep.spec.precisions, True, samples)
    report, ctx = cell_context(sweep, report, machine.cores, machine.idle)
    ctx = replace(
        ctx, variants=report.variants, accuracy_samples=sweep.accuracy_samples, data=samples
    )
    return report, path, ctx


def group_job(
    req: FleetRequest,
    group: GroupSpec,
    pool: NodePool,
    out_dir: Path,
    target: LatencyTarget | None,
    progress: Progress,
    abort: threading.Event,
    samples: SampleSet | None = None,
) -> GroupJob:
    """The group's report, planned and saved, and the job that measures it on the pool."""
    report, path, ctx = group_report(req, group, pool, out_dir, samples)
    factory = remote_factory(
        pool, req.sweep.isolate, req.sweep.cell_timeout_s, pool.primary.node_id
    )
    progress.planned(list(report.cells))
    run = functools.partial(
        execute,
        report,
        path,
        ctx,
        req.sweep.search,
        target,
        ctx.profile,
        progress,
        abort,
        factory,
        width=len(pool.nodes),  # each node of the group takes a cell
        policy=req.trials,
    )
    return GroupJob(group, pool, run, ManifestGroup(group.name, group.profile, path.name))


def run_fleet(
    req: FleetRequest,
    progress_for: Callable[[str], Progress] | None = None,
    abort: threading.Event | None = None,
) -> FleetResult:
    """Sweep every group on its own nodes at the same time, save one report per group in the
    sweep's out folder, and rank them by cost per million under the latency target."""
    progress_for = progress_for or (lambda name: Progress())
    abort = abort or threading.Event()
    sweep = req.sweep
    # A bad model or bad data fails before anything is placed or written; the samples read
    # here are the ones every node measures (shipped once per group through the object store).
    info = model_mod.inspect_model(sweep.model_path, sweep.shapes, sweep.input_values)
    samples = samples_for(sweep.data, info, sweep.settings.seed)
    out_dir = check_writable(sweep.out_dir)
    target = sweep.latency_target
    profiles = {g.name: to_dict(load_profile(g.profile)) for g in req.groups}
    with connected(req.address, req.connect_timeout_s):
        pools = place_groups(
            req.groups,
            req.group_label,
            req.placement_timeout_s,
            sweep.model_path,
            sweep.shapes,
            req.device,
            profiles,
        )
        try:
            created = now_iso()
            jobs = [
                group_job(
                    req, g, pools[g.name], out_dir, target, progress_for(g.name), abort, samples
                )
                for g in req.groups
            ]
            files = [job.file for job in jobs]
            manifest = Manifest(
                groups=tuple(files),
                group_label=req.group_label,
                address=req.address,
                latency_target=sweep.latency_target,
                created=created,
            )
            manifest_path = write_manifest(out_dir, manifest)
            outcomes = run_jobs(jobs, out_dir, abort)
        finally:
            for pool in pools.values():
                pool.close()
    return finish(out_dir, manifest_path, manifest, outcomes, target, abort)


def run_jobs(jobs: list[GroupJob], out_dir: Path, abort: threading.Event) -> list[GroupOutcome]:
    """Run every group's job in a thread of its own; each ends in an outcome, whatever happens
    to the others."""
    errors: dict[str, str | None] = {}

    def work(job: GroupJob) -> None:
        try:
            job.run()
            errors[job.group.name] = None
        except Interrupted:
            errors[job.group.name] = "interrupted"
        except BenchboxError as exc:
            errors[job.group.name] = exc.message
        except Exception as exc:  # one group's bug must not take the others down
            errors[job.group.name] = first_line(exc)

    threads = [
        threading.Thread(target=work, args=(job,), name=f"fleet-{job.group.name}", daemon=True)
        for job in jobs
    ]
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():  # short joins, so that Ctrl-C reaches the main thread
            t.join(0.2)
    return [
        outcome_of(
            job.group,
            out_dir / job.file.report,
            tuple(n.node_id for n in job.pool.nodes),
            errors.get(job.group.name, "did not finish"),
        )
        for job in jobs
    ]


def outcome_of(
    group: GroupSpec, path: Path, nodes: tuple[str, ...], error: str | None
) -> GroupOutcome:
    """A group's outcome, read from its saved report."""
    try:
        report = load_report(path)
    except BadInput as exc:
        return GroupOutcome(group.name, group.profile, None, nodes, "failed", error=exc.message)
    measured = sum(c.status in MEASURED for c in report.cells)
    if error == "interrupted":
        status = "interrupted"
    elif error is not None and measured == 0:
        status = "failed"
    elif unfinished(report):
        status = "incomplete"
    else:
        status = "done"
    return GroupOutcome(
        name=group.name,
        profile=group.profile,
        report=path.name,
        nodes=nodes,
        status=status,
        cells_measured=measured,
        cells_total=len(report.cells),
        error=error if error != "interrupted" else None,
    )


def unfinished(report: Report) -> bool:
    """True while a report has cells that `--resume` would measure (pending or failed)."""
    return any(c.status in ("pending", "failed") for c in report.cells)


def rank(
    out_dir: Path, outcomes: list[GroupOutcome], target: LatencyTarget | None
) -> MachineComparison | None:
    """The groups' reports ranked as `benchbox compare` ranks machines (None: nothing measured)."""
    kept = [o for o in outcomes if o.report is not None and o.cells_measured > 0]
    if not kept:
        return None
    reports = [load_report(out_dir / o.report) for o in kept]
    return compare_machines(reports, [o.name for o in kept], target, None)


def finish(
    out_dir: Path,
    manifest_path: Path,
    manifest: Manifest,
    outcomes: list[GroupOutcome],
    target: LatencyTarget | None,
    abort: threading.Event,
) -> FleetResult:
    if abort.is_set():
        raise Interrupted(
            f"interrupted; the partial reports are saved in {out_dir}",
            f"finish them with `benchbox fleet --resume {out_dir}`",
        )
    return FleetResult(
        out_dir=str(out_dir),
        manifest=str(manifest_path),
        groups=tuple(outcomes),
        ranking=rank(out_dir, outcomes, target),
    )


def resume_fleet(
    folder: str | Path,
    address: str | None = None,
    placement_timeout_s: float = 60.0,
    progress_for: Callable[[str], Progress] | None = None,
    abort: threading.Event | None = None,
    isolate: bool = True,
    cell_timeout_s: float | None = None,
) -> FleetResult:
    """Finish a fleet's reports: measure the pending and failed cells of every group that has
    them, on that group's nodes, with each report's own settings; then rank them all again."""
    progress_for = progress_for or (lambda name: Progress())
    abort = abort or threading.Event()
    out_dir = Path(folder)
    manifest = read_manifest(out_dir)
    check_writable(out_dir)
    target = manifest.latency_target
    reports = {m.name: load_report(out_dir / m.report) for m in manifest.groups}
    todo = [m for m in manifest.groups if unfinished(reports[m.name])]
    outcomes: dict[str, GroupOutcome] = {
        m.name: outcome_of(GroupSpec(m.name, m.profile), out_dir / m.report, (), None)
        for m in manifest.groups
    }
    if todo:
        first = reports[todo[0].name]
        model_file = resume_model_path(first)
        shapes = dict(first.settings.shapes) if first.settings else {}
        devices = sorted({c.config.device for r in reports.values() for c in r.cells})
        specs = tuple(GroupSpec(m.name, m.profile) for m in todo)
        with connected(address or manifest.address):
            pools = place_groups(
                specs,
                manifest.group_label,
                placement_timeout_s,
                model_file,
                shapes,
                ",".join(devices),
                {m.name: _plain(reports[m.name].profile) for m in todo},
            )
            try:
                jobs = [
                    resume_job(
                        m,
                        pools[m.name],
                        out_dir,
                        model_file,
                        reports[m.name].host.ray_node_id,
                        progress_for(m.name),
                        abort,
                        isolate,
                        cell_timeout_s,
                    )
                    for m in todo
                ]
                for outcome in run_jobs(jobs, out_dir, abort):
                    outcomes[outcome.name] = outcome
            finally:
                for pool in pools.values():
                    pool.close()
    ordered = [outcomes[m.name] for m in manifest.groups]
    return finish(out_dir, out_dir / MANIFEST, manifest, ordered, target, abort)


def resume_job(
    file: ManifestGroup,
    pool: NodePool,
    out_dir: Path,
    model_file: str,
    host_node_id: str | None,
    progress: Progress,
    abort: threading.Event,
    isolate: bool,
    cell_timeout_s: float | None,
) -> GroupJob:
    """The job that finishes a group's saved report on the group's (new) pool."""
    run = functools.partial(
        resume_sweep,
        out_dir / file.report,
        model_file,
        progress,
        abort,
        remote_factory(pool, isolate, cell_timeout_s, host_node_id),
        check=checked_on_the_nodes,
        width=len(pool.nodes),
    )
    return GroupJob(GroupSpec(file.name, file.profile), pool, run, file)


def checked_on_the_nodes(devices: Iterable[str]) -> None:
    """Nothing to check here: each node checked the devices when the fleet was placed."""


def _plain(profile: Profile | None) -> dict[str, Any] | None:
    return to_dict(profile) if profile is not None else None


def fleet_gate(result: FleetResult) -> None:
    """The fleet's exit: NothingMeasured when no group measured a cell; GateFailed naming the
    groups that did not finish (to resume), or when no group meets the latency target."""
    out = result.out_dir
    if not any(g.cells_measured for g in result.groups):
        why = "; ".join(f"{g.name}: {g.error}" for g in result.groups if g.error)
        raise NothingMeasured(f"no group measured a cell (reports in {out})", why[:300] or None)
    unfinished = [g for g in result.groups if g.status != "done"]
    if unfinished:
        first = next((g.error for g in unfinished if g.error), None)
        names = ", ".join(f"{g.name} ({g.status})" for g in unfinished)
        raise GateFailed(
            f"group(s) {names} did not finish" + (f": {first}" if first else ""),
            f"the partial reports are saved; finish them with `benchbox fleet --resume {out}`",
        )
    ranking = result.ranking
    if ranking is not None and ranking.target is not None:
        if all(r.cell_id is None for r in ranking.rows):
            raise GateFailed(
                f"no group has a configuration that meets {ranking.target}",
                "relax the target, or add other machine types to the fleet",
            )
