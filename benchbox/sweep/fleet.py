"""A fleet: one sweep per node group of a Ray cluster, measured on the group's own nodes, ranked.

A group is a machine type: the nodes whose label `group_label` (KubeRay's `ray.io/node-group` by
default) equals its name, priced on its profile. For every node of a group one Ray actor
(`NodeSweeper`) is pinned there with `label_selector` and takes all of the node's CPUs and GPUs, so
nothing else runs beside the measurement. The node reads its own host facts, checks the devices and
measures cells in benchbox's usual worker process; the search and the report stay here, on the
caller, which gets every cell back as a plain value (no shared filesystem) and saves the group's
report after each one. So a lost node costs only the cells it had not sent back: its group moves
them to another of its nodes, or fails them, and `resume_fleet` measures them later.

Groups run at the same time, one thread each. The reports are ranked by `report.compare`, as
`benchbox compare` ranks machines.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import logging
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from benchbox import __version__
from benchbox import model as model_mod
from benchbox.cost import load_profile, profile_from_dict, profile_to_dict
from benchbox.devices import device_problem, expand_devices, host_info, parse_device
from benchbox.errors import BadInput, BenchboxError, GateFailed, Interrupted, NothingMeasured
from benchbox.measure.cell import Aborted, MeasureSettings
from benchbox.parse import parse_target
from benchbox.report.compare import MachineComparison, compare_machines
from benchbox.report.store import atomic_write_text, check_writable, load_report, report_path
from benchbox.report.store import save_report as save_report_file
from benchbox.schema import Cell, HostInfo, Report, from_dict, replace, to_dict
from benchbox.sweep import (
    Progress,
    SweepRequest,
    execute,
    idle_baseline,
    now_iso,
    resume_model_path,
    resume_sweep,
    settings_dict,
    worker_factory,
)
from benchbox.sweep import peak as peak_mod
from benchbox.sweep.plan import grid
from benchbox.sweep.runner import CellContext
from benchbox.sweep.worker import default_cell_timeout_s

try:  # Ray is an optional extra: benchbox[ray]
    import ray
    import ray.exceptions
except ImportError:  # pragma: no cover - exercised by a subprocess test without ray
    ray = None

DEFAULT_GROUP_LABEL = "ray.io/node-group"
NODE_ID_LABEL = "ray.io/node-id"  # Ray labels every node with its id
MANIFEST = "fleet.json"
MANIFEST_SCHEMA = "benchbox.fleet/1"
POLL_S = 0.2
ABORT_GRACE_S = 10.0
# A node that neither answers nor is declared dead within a cell's own timeout plus this is lost.
ANSWER_MARGIN_S = 60.0


# ---------------------------------------------------------------- data


@dataclass(frozen=True)
class GroupSpec:
    """A kind of node: its label value and the price profile of its machine type."""

    name: str
    profile: str


@dataclass(frozen=True)
class FleetRequest:
    """A fleet sweep: the ordinary sweep (its `profile` unused) run on every group."""

    sweep: SweepRequest
    groups: tuple[GroupSpec, ...]
    address: str = "auto"
    group_label: str = DEFAULT_GROUP_LABEL
    placement_timeout_s: float = 60.0
    device: str = "cpu"  # the device list as typed; `all` is expanded on each node


@dataclass(frozen=True)
class ManifestGroup:
    name: str
    profile: str
    report: str  # file name inside the fleet folder


@dataclass(frozen=True)
class Manifest:
    """`fleet.json`: what `resume_fleet` needs to finish a fleet's reports."""

    groups: tuple[ManifestGroup, ...]
    group_label: str = DEFAULT_GROUP_LABEL
    address: str = "auto"
    latency_target: str | None = None
    created: str = ""
    schema: str = MANIFEST_SCHEMA


@dataclass(frozen=True)
class GroupOutcome:
    """How one group's sweep ended: `done`, `incomplete` (cells failed or pending), `failed`."""

    name: str
    profile: str
    report: str | None
    nodes: tuple[str, ...]
    status: str
    cells_measured: int = 0
    cells_total: int = 0
    error: str | None = None


@dataclass(frozen=True)
class FleetResult:
    out_dir: str
    manifest: str
    groups: tuple[GroupOutcome, ...]
    ranking: MachineComparison | None


# ---------------------------------------------------------------- parsing and connecting


def parse_groups(items: list[str] | None) -> tuple[GroupSpec, ...]:
    """`--group NAME=PROFILE` options as GroupSpecs; BadInput for a malformed or repeated one."""
    if not items:
        raise BadInput("a fleet needs at least one --group NAME=PROFILE", _GROUP_HINT)
    out: dict[str, GroupSpec] = {}
    for item in items:
        name, sep, profile = item.partition("=")
        name, profile = name.strip(), profile.strip()
        if not sep or not name or not profile:
            raise BadInput(f"--group {item!r} is not NAME=PROFILE", _GROUP_HINT)
        if name in out:
            raise BadInput(f"--group {name} is given twice", "give each node group once")
        out[name] = GroupSpec(name, profile)
    return tuple(out.values())


_GROUP_HINT = "e.g. --group cpu=aws-c7i-2xlarge --group gpu=aws-g6-xlarge (see `benchbox profiles`)"


def require_ray() -> Any:
    """The ray module, or BadInput saying what to install."""
    if ray is None:
        raise BadInput(
            "benchbox fleet needs Ray, which is not installed",
            "pip install 'benchbox[ray]'",
        )
    return ray


@contextlib.contextmanager
def connected(address: str) -> Iterator[None]:
    """Inside, this process is connected to the Ray cluster at `address` (`auto`: RAY_ADDRESS or
    the cluster started on this machine); a connection made here is closed on the way out.

    Ray prints the cluster's errors (a node marked dead) on stdout; inside, they go to stderr,
    so that `--json` output stays clean."""
    r = require_ray()
    with contextlib.redirect_stdout(sys.stderr):
        if r.is_initialized():  # a caller (a test, a notebook) already connected: use theirs
            yield
            return
        with _init(r, address):
            yield


@contextlib.contextmanager
def _init(r: Any, address: str) -> Iterator[None]:
    try:
        r.init(
            address=address,
            namespace="benchbox",
            log_to_driver=False,
            logging_level=logging.WARNING,
        )
    except Exception as exc:  # ConnectionError, ValueError, AuthenticationError, ...
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise BadInput(
            f"cannot connect to the Ray cluster at {address!r}: {first}",
            "pass --ray ADDRESS (e.g. ray://127.0.0.1:10001 through `kubectl port-forward`), or "
            "set RAY_ADDRESS; a cluster with token auth also needs RAY_AUTH_MODE=token and "
            "RAY_AUTH_TOKEN",
        ) from None
    try:
        yield
    finally:
        r.shutdown()


# ---------------------------------------------------------------- nodes and placement


@dataclass(frozen=True)
class NodeView:
    """An alive node of the cluster as the GCS reports it."""

    node_id: str
    labels: dict[str, str]
    cpus: float
    gpus: float


def alive_nodes() -> list[NodeView]:
    """The cluster's alive nodes, with their labels and total CPUs and GPUs."""
    out = []
    for n in ray.nodes():
        if not n.get("Alive"):
            continue
        res = n.get("Resources") or {}
        out.append(
            NodeView(
                node_id=n["NodeID"],
                labels=dict(n.get("Labels") or {}),
                cpus=float(res.get("CPU", 0.0)),
                gpus=float(res.get("GPU", 0.0)),
            )
        )
    return out


def labels_seen(nodes: list[NodeView], label: str) -> str:
    """The values of `label` among the nodes, or (none carrying it) the other labels they have."""
    values = sorted({n.labels[label] for n in nodes if label in n.labels})
    if values:
        return ", ".join(f"{label}={v}" for v in values)
    other = sorted({f"{k}={v}" for n in nodes for k, v in n.labels.items() if k != NODE_ID_LABEL})
    return "no node has " + label + (f"; other labels: {', '.join(other)}" if other else "")


def wait_for_groups(
    groups: tuple[GroupSpec, ...], label: str, timeout_s: float
) -> dict[str, list[NodeView]]:
    """The alive nodes of every group, waiting up to `timeout_s` for an autoscaler to bring up
    the missing ones; BadInput naming the first group that no node carries, with the labels seen.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        nodes = alive_nodes()
        found = {g.name: [n for n in nodes if n.labels.get(label) == g.name] for g in groups}
        missing = [g.name for g in groups if not found[g.name]]
        if not missing:
            return found
        if time.monotonic() >= deadline:
            raise BadInput(
                f"no node of group {missing[0]!r} ({label}={missing[0]}) joined within "
                f"{timeout_s:g}s; labels seen: {labels_seen(nodes, label)}",
                "check --group and --group-label against the cluster's worker groups "
                "(`ray list nodes --detail` shows their labels)",
            )
        time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))


@dataclass
class Node:
    """One node of a group, reached through the actor pinned there (caller-side state)."""

    node_id: str
    actor: Any
    facts: dict[str, Any]
    lost: str | None = None
    busy: bool = False


class NodePool:
    """The nodes a group measures on; each measures one cell at a time, so cells measured at
    the same time go to different nodes of the group."""

    def __init__(self, group: str, nodes: list[Node]) -> None:
        self.group = group
        self.nodes = nodes
        self._free = threading.Condition()

    @property
    def primary(self) -> Node:
        return self.nodes[0]

    def acquire(self, abort: threading.Event | None = None) -> Node | None:
        """A free alive node, waiting while all are busy; None when none is left."""
        with self._free:
            while True:
                alive = [n for n in self.nodes if n.lost is None]
                if not alive:
                    return None
                node = next((n for n in alive if not n.busy), None)
                if node is not None:
                    node.busy = True
                    return node
                if abort is not None and abort.is_set():
                    raise Aborted()
                self._free.wait(POLL_S)

    def release(self, node: Node) -> None:
        with self._free:
            node.busy = False
            self._free.notify_all()

    def lose(self, node: Node, why: str) -> None:
        with self._free:
            node.lost, node.busy = why, False
            self._free.notify_all()
        _kill(node.actor)

    def gone(self) -> str:
        """Why no node of the group is left, for the cells that can no longer be measured."""
        first = next((n.lost for n in self.nodes if n.lost), "no node")
        return f"{LOST_PREFIX}no node of group {self.group} is left ({first})"

    def close(self) -> None:
        alive = [n for n in self.nodes if n.lost is None]
        refs = [n.actor.close.remote() for n in alive]
        if refs:
            ray.wait(refs, num_returns=len(refs), timeout=ABORT_GRACE_S)
        for n in self.nodes:
            _kill(n.actor)


LOST_PREFIX = "node lost: "


def _kill(actor: Any) -> None:
    try:
        ray.kill(actor, no_restart=True)
    except Exception:  # already gone
        pass


def start_actors(
    group: GroupSpec, views: list[NodeView], label: str, model_ref: Any, model_name: str, shapes
) -> list[tuple[NodeView, Any]]:
    """One NodeSweeper per node of the group, pinned there by label_selector (the group's label
    and the node's id), holding all of the node's CPUs and GPUs."""
    out = []
    for view in views:
        actor = RemoteSweeper.options(
            num_cpus=view.cpus,
            num_gpus=view.gpus,
            label_selector={label: group.name, NODE_ID_LABEL: view.node_id},
            max_concurrency=2,  # `abort` must reach a node that is busy measuring
            max_restarts=0,
        ).remote(model_ref, model_name, shapes)
        out.append((view, actor))
    return out


def ready_pool(
    group: GroupSpec,
    actors: list[tuple[NodeView, Any]],
    device: str,
    profile: dict[str, Any] | None,
    deadline: float,
    timeout_s: float,
) -> NodePool:
    """The group's nodes whose actor started and answered with its facts before the deadline;
    BadInput when none did, or when a node cannot run the sweep's devices."""
    refs = {a.facts.remote(device, profile): (view, a) for view, a in actors}
    ready, _ = ray.wait(
        list(refs), num_returns=len(refs), timeout=max(0.0, deadline - time.monotonic())
    )
    nodes, problems = [], []
    for ref, (view, actor) in refs.items():
        if ref not in ready:
            _kill(actor)
            continue
        try:
            facts = ray.get(ref)
        except ray.exceptions.RayError as exc:
            problems.append(f"node {view.node_id[:12]}: {_first_line(exc)}")
            _kill(actor)
            continue
        nodes.append(Node(view.node_id, actor, facts))
    for node in nodes:
        if node.facts["version"] != __version__:
            _kill_all(nodes)
            raise BadInput(
                f"group {group.name}: node {node.node_id[:12]} runs benchbox "
                f"{node.facts['version']}, this machine {__version__}",
                "install the same benchbox version in the cluster's image and here",
            )
        if node.facts["problem"] is not None:
            _kill_all(nodes)
            why, fix = node.facts["problem"]
            raise BadInput(f"group {group.name}, node {node.node_id[:12]}: {why}", fix)
    if not nodes:
        more = f" ({'; '.join(problems)})" if problems else ""
        raise BadInput(
            f"group {group.name}: none of its {len(actors)} node(s) took the benchmark within "
            f"{timeout_s:g}s{more}",
            "another job may hold the nodes' CPUs or GPUs; a fleet takes whole nodes",
        )
    return NodePool(group.name, nodes)


def _kill_all(nodes: list[Node]) -> None:
    for n in nodes:
        _kill(n.actor)


def _first_line(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        exc = cause
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


def place_groups(
    groups: tuple[GroupSpec, ...],
    label: str,
    timeout_s: float,
    model_path: str,
    shapes: dict[str, int],
    device: str,
    profiles: dict[str, dict[str, Any] | None],
) -> dict[str, NodePool]:
    """A ready NodePool for every group, all within `timeout_s`; nothing is left running when
    one group cannot be placed."""
    deadline = time.monotonic() + timeout_s
    views = wait_for_groups(groups, label, timeout_s)
    model_ref = ray.put(Path(model_path).read_bytes())
    started = {
        g.name: start_actors(g, views[g.name], label, model_ref, Path(model_path).name, shapes)
        for g in groups
    }
    pools: dict[str, NodePool] = {}
    try:
        for g in groups:
            pools[g.name] = ready_pool(
                g, started[g.name], device, profiles[g.name], deadline, timeout_s
            )
    except BaseException:
        for g in groups:
            if g.name in pools:
                pools[g.name].close()
            else:
                for _, actor in started[g.name]:
                    _kill(actor)
        raise
    return pools


# ---------------------------------------------------------------- on the node


class NodeSweeper:
    """Runs on one node (as a Ray actor): its host facts, its device checks, and its cells,
    each measured in benchbox's worker process as `benchbox sweep` measures them."""

    def __init__(self, model_bytes: bytes, model_name: str, shapes: dict[str, int]) -> None:
        self._dir = tempfile.mkdtemp(prefix="benchbox-fleet-")
        self.model_path = str(Path(self._dir) / (Path(model_name).name or "model.onnx"))
        Path(self.model_path).write_bytes(model_bytes)
        self.model = model_mod.inspect_model(self.model_path, shapes)
        self.abort_event = threading.Event()
        self.workers: dict[int, Any] = {}

    def facts(self, device: str, profile: dict[str, Any] | None) -> dict[str, Any]:
        """This node's id, host facts, core count, devices (expanded here), the first device
        problem, and the idle power baseline."""
        problem = None
        devices: list[str] = []
        try:
            devices = expand_devices(device)
            for text in devices:
                spec = parse_device(text)
                found = device_problem(spec)
                if found is not None:
                    problem = (f"device {spec.name} cannot run here: {found[0]}", found[1])
                    break
        except BadInput as exc:
            problem = (exc.message, exc.hint)
        idle = idle_baseline(profile_from_dict(profile) if profile else None)
        return {
            "node_id": ray.get_runtime_context().get_node_id(),
            "host": to_dict(host_info()),
            "cores": psutil.cpu_count(logical=True) or 1,
            "devices": devices,
            "problem": problem,
            "idle": idle,
            "version": __version__,
        }

    def measure(self, token: int, job: dict[str, Any], cell: dict[str, Any]) -> dict[str, Any]:
        """One cell measured here, as plain data; `job` holds the caller's CellContext fields."""
        worker = self.workers.get(token)
        if worker is None:
            ctx = CellContext(
                model_path=self.model_path,
                model=self.model,
                settings=from_dict(MeasureSettings, job["settings"], "settings"),
                cores=psutil.cpu_count(logical=True) or 1,
                profile=job["profile"],
                idle_power_w=job["idle_power_w"],
            )
            make = worker_factory(job["isolate"], job["cell_timeout_s"])
            worker = self.workers[token] = make(ctx, self.abort_event)
        return to_dict(worker.measure(from_dict(Cell, cell, "cell")))

    def close_worker(self, token: int) -> None:
        worker = self.workers.pop(token, None)
        if worker is not None:
            worker.close()

    def abort(self) -> None:
        """Stop the cell being measured (its worker process is killed)."""
        self.abort_event.set()

    def close(self) -> None:
        for token in list(self.workers):
            self.close_worker(token)
        shutil.rmtree(self._dir, ignore_errors=True)


RemoteSweeper = ray.remote(NodeSweeper) if ray is not None else None


# ---------------------------------------------------------------- on the caller


class NodeLost(Exception):
    """The node measuring a cell went away (or stopped answering)."""


_tokens = itertools.count(1)


class RemoteWorker:
    """The sweep's worker for one device group, measuring on the group's nodes: a cell whose
    node is lost moves to the next node of the group, or fails when none is left."""

    def __init__(
        self,
        pool: NodePool,
        ctx: CellContext,
        abort: threading.Event | None,
        isolate: bool = True,
        cell_timeout_s: float | None = None,
        host_node_id: str | None = None,
    ) -> None:
        self.pool = pool
        self.abort = abort
        self.token = next(_tokens)
        self.host_node_id = host_node_id
        self.job = {
            "settings": to_dict(ctx.settings),
            "profile": ctx.profile,
            "idle_power_w": ctx.idle_power_w,
            "isolate": isolate,
            "cell_timeout_s": cell_timeout_s,
        }
        self.answer_s = (cell_timeout_s or default_cell_timeout_s(ctx.settings)) + ANSWER_MARGIN_S
        self._used: list[Node] = []

    def measure(self, cell: Cell) -> Cell:
        while True:
            if self._aborted():
                raise Aborted()
            node = self.pool.acquire(self.abort)
            if node is None:
                return replace(cell, status="failed", result=None, reason=self.pool.gone())
            try:
                done = from_dict(Cell, self._ask(node, cell), "cell")
            except NodeLost as exc:
                self.pool.lose(node, str(exc))
                continue
            finally:
                self.pool.release(node)
            if self.host_node_id and node.node_id != self.host_node_id:
                note = (
                    f"ray-node: measured on node {node.node_id[:12]} of group {self.pool.group}, "
                    f"not on the report's host node {self.host_node_id[:12]}"
                )
                done = replace(done, warnings=(*done.warnings, note))
            return done

    def _ask(self, node: Node, cell: Cell) -> dict[str, Any]:
        if node not in self._used:
            self._used.append(node)
        ref = node.actor.measure.remote(self.token, self.job, to_dict(cell))
        deadline = time.monotonic() + self.answer_s
        while not ray.wait([ref], timeout=POLL_S)[0]:
            if self._aborted():
                self._cancel(node, ref)
                raise Aborted()
            if time.monotonic() > deadline:
                raise NodeLost(f"node {node.node_id[:12]} did not answer within {self.answer_s:g}s")
        try:
            return ray.get(ref)
        except ray.exceptions.RayActorError as exc:
            raise NodeLost(
                f"node {node.node_id[:12]} was lost while measuring {cell.id} "
                f"({type(exc).__name__})"
            ) from None
        except ray.exceptions.RayTaskError as exc:
            if self._aborted():
                raise Aborted() from None
            reason = f"the node's worker failed: {_first_line(exc)}"
            return to_dict(replace(cell, status="failed", result=None, reason=reason))
        except ray.exceptions.RayError as exc:  # the reply was lost with its node
            raise NodeLost(f"node {node.node_id[:12]}: {_first_line(exc)}") from None

    def _cancel(self, node: Node, ref: Any) -> None:
        """Ctrl-C: tell the node to stop the cell, and give it a moment to do so."""
        try:
            node.actor.abort.remote()
            ray.wait([ref], timeout=ABORT_GRACE_S)
        except Exception:
            pass

    def _aborted(self) -> bool:
        return self.abort is not None and self.abort.is_set()

    def close(self) -> None:
        for node in self._used:
            if node.lost is None:
                try:
                    node.actor.close_worker.remote(self.token)
                except Exception:
                    pass


def remote_factory(
    pool: NodePool, isolate: bool, cell_timeout_s: float | None, host_node_id: str | None
) -> Callable[[CellContext, threading.Event | None], RemoteWorker]:
    """The worker factory `sweep.execute` takes, measuring on a group's nodes."""

    def make(ctx: CellContext, abort: threading.Event | None) -> RemoteWorker:
        return RemoteWorker(pool, ctx, abort, isolate, cell_timeout_s, host_node_id)

    return make


# ---------------------------------------------------------------- running a fleet


@dataclass(frozen=True)
class GroupJob:
    """What one group's thread runs: `run()` measures and returns the saved report's path."""

    group: GroupSpec
    pool: NodePool
    run: Callable[[], Any]


def group_report(
    req: FleetRequest, group: GroupSpec, pool: NodePool, out_dir: Path, created: str
) -> tuple[Report, Path, CellContext]:
    """The group's new report (planned cells, the primary node's host facts) saved in `out_dir`,
    and the CellContext its cells share."""
    sweep = req.sweep
    facts = pool.primary.facts
    profile = load_profile(group.profile)
    spec = replace(sweep.spec, devices=tuple(facts["devices"]))
    info = model_mod.inspect_model(sweep.model_path, sweep.shapes)
    cells = peak_mod.plan_cells(spec) if peak_mod.wanted(spec) else grid(spec)
    settings = settings_dict(replace(sweep, spec=spec, profile=group.profile))
    if facts["idle"] is not None:
        settings["idle_power"] = facts["idle"]
    host = replace(
        from_dict(HostInfo, facts["host"], "host"),
        ray_node_id=pool.primary.node_id,
        ray_group=group.name,
    )
    label = sweep.model_label or sweep.model_path
    path = report_path(out_dir, f"{Path(label).stem}-{group.name}", created)
    report = Report(
        host=host,
        model=info,
        cells=tuple(cells),
        settings=settings,
        profile=profile_to_dict(profile),
        benchbox_version=__version__,
        created=created,
    )
    save_report_file(report, path)
    ctx = CellContext(
        model_path=sweep.model_path,
        model=info,
        settings=sweep.settings,
        cores=int(facts["cores"]),
        profile=profile_to_dict(profile),
        idle_power_w=(facts["idle"] or {}).get("power_w"),
    )
    return report, path, ctx


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
    out_dir = check_writable(sweep.out_dir)
    target = parse_target(sweep.latency_target) if sweep.latency_target else None
    profiles = {g.name: profile_to_dict(load_profile(g.profile)) for g in req.groups}
    model_mod.inspect_model(sweep.model_path, sweep.shapes)  # bad model: fail before placing
    with connected(req.address):
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
            jobs, files = [], []
            for g in req.groups:
                pool = pools[g.name]
                report, path, ctx = group_report(req, g, pool, out_dir, created)
                files.append(ManifestGroup(g.name, g.profile, path.name))
                factory = remote_factory(
                    pool, sweep.isolate, sweep.cell_timeout_s, pool.primary.node_id
                )
                profile = load_profile(g.profile)
                progress = progress_for(g.name)
                progress.planned(list(report.cells))
                run = functools.partial(
                    execute,
                    report,
                    path,
                    ctx,
                    sweep.search,
                    target,
                    profile,
                    progress,
                    abort,
                    factory,
                )
                jobs.append(GroupJob(g, pool, run))
            manifest = Manifest(
                groups=tuple(files),
                group_label=req.group_label,
                address=req.address,
                latency_target=sweep.latency_target,
                created=created,
            )
            manifest_path = write_manifest(out_dir, manifest)
            outcomes = run_jobs(jobs, out_dir, files, abort)
        finally:
            for pool in pools.values():
                pool.close()
    return finish(out_dir, manifest_path, manifest, outcomes, target, abort)


def run_jobs(
    jobs: list[GroupJob], out_dir: Path, files: list[ManifestGroup], abort: threading.Event
) -> list[GroupOutcome]:
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
            errors[job.group.name] = _first_line(exc)

    threads = [
        threading.Thread(target=work, args=(job,), name=f"fleet-{job.group.name}", daemon=True)
        for job in jobs
    ]
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():  # short joins, so that Ctrl-C reaches the main thread
            t.join(0.2)
    by_name = {f.name: f for f in files}
    return [
        outcome_of(
            job.group,
            out_dir / by_name[job.group.name].report,
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
    measured = sum(c.status in ("ok", "unstable") for c in report.cells)
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


def rank(out_dir: Path, outcomes: list[GroupOutcome], target: Any) -> MachineComparison | None:
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
    target: Any,
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


def fleet_out_dir(out: str | None) -> str:
    """The folder of a new fleet: `out`, or reports/fleet-TIME; BadInput when it already holds
    a fleet (resume it instead)."""
    if out is None:
        return str(Path("reports") / f"fleet-{now_iso().replace(':', '').replace('-', '')[:15]}")
    if (Path(out) / MANIFEST).exists():
        raise BadInput(
            f"{out} already holds a fleet",
            f"finish it with `benchbox fleet --resume {out}`, or choose another --out",
        )
    return out


def write_manifest(out_dir: Path, manifest: Manifest) -> Path:
    return atomic_write_text(out_dir / MANIFEST, json.dumps(to_dict(manifest), indent=1) + "\n")


def read_manifest(folder: Path) -> Manifest:
    """The fleet folder's manifest; BadInput when the folder holds no fleet."""
    path = folder / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(
            f"{folder} holds no fleet ({MANIFEST} is missing)",
            "pass the --out folder of a `benchbox fleet` run",
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInput(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict) or data.get("schema") != MANIFEST_SCHEMA:
        raise BadInput(f"{path} is not a benchbox fleet manifest")
    return from_dict(Manifest, data, str(path))


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
    target = parse_target(manifest.latency_target) if manifest.latency_target else None
    reports = {m.name: load_report(out_dir / m.report) for m in manifest.groups}
    todo = [m for m in manifest.groups if unfinished(reports[m.name])]
    outcomes: dict[str, GroupOutcome] = {
        m.name: outcome_of(GroupSpec(m.name, m.profile), out_dir / m.report, (), None)
        for m in manifest.groups
    }
    if todo:
        first = reports[todo[0].name]
        model_file = resume_model_path(first)
        stored = first.settings or {}
        devices = sorted({c.config.device for r in reports.values() for c in r.cells})
        specs = tuple(GroupSpec(m.name, m.profile) for m in todo)
        with connected(address or manifest.address):
            pools = place_groups(
                specs,
                manifest.group_label,
                placement_timeout_s,
                model_file,
                dict(stored.get("shapes") or {}),
                ",".join(devices),
                {m.name: reports[m.name].profile for m in todo},
            )
            try:
                jobs = [
                    GroupJob(
                        spec,
                        pools[spec.name],
                        functools.partial(
                            resume_sweep,
                            out_dir / m.report,
                            model_file,
                            progress_for(spec.name),
                            abort,
                            remote_factory(
                                pools[spec.name],
                                isolate,
                                cell_timeout_s,
                                reports[spec.name].host.ray_node_id,
                            ),
                        ),
                    )
                    for spec, m in zip(specs, todo, strict=True)
                ]
                for outcome in run_jobs(jobs, out_dir, list(todo), abort):
                    outcomes[outcome.name] = outcome
            finally:
                for pool in pools.values():
                    pool.close()
    ordered = [outcomes[m.name] for m in manifest.groups]
    return finish(out_dir, out_dir / MANIFEST, manifest, ordered, target, abort)


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
