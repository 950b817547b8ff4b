"""Placing a fleet: one NodeSweeper actor on every node of each group, pinned with label_selector
and holding the whole node; a group's nodes form its NodePool."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchbox import __version__
from benchbox.errors import BadInput
from benchbox.measure.cell import Aborted
from benchbox.sweep.fleet.cluster import (
    NODE_ID_LABEL,
    NodeView,
    first_line,
    require_ray,
    wait_for_groups,
)
from benchbox.sweep.fleet.data import GroupSpec
from benchbox.sweep.fleet.node import remote_sweeper

LOST_PREFIX = "node lost: "
POLL_S = 0.2
ABORT_GRACE_S = 10.0


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
        ray = require_ray()
        alive = [n for n in self.nodes if n.lost is None]
        refs = [n.actor.close.remote() for n in alive]
        if refs:
            ray.wait(refs, num_returns=len(refs), timeout=ABORT_GRACE_S)
        for n in self.nodes:
            _kill(n.actor)


LOST_PREFIX = "node lost: "


def _kill(actor: Any) -> None:
    try:
        require_ray().kill(actor, no_restart=True)
    except Exception:  # already gone
        pass


def start_actors(
    group: GroupSpec, views: list[NodeView], label: str, model_ref: Any, model_name: str, shapes
) -> list[tuple[NodeView, Any]]:
    """One NodeSweeper per node of the group, pinned there by label_selector (the group's label
    and the node's id), holding all of the node's CPUs and GPUs."""
    out = []
    for view in views:
        actor = (
            remote_sweeper()
            .options(
                num_cpus=view.cpus,
                num_gpus=view.gpus,
                label_selector={label: group.name, NODE_ID_LABEL: view.node_id},
                max_concurrency=2,  # `abort` must reach a node that is busy measuring
                max_restarts=0,
            )
            .remote(model_ref, model_name, shapes)
        )
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
    ray = require_ray()
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
            problems.append(f"node {view.node_id[:12]}: {first_line(exc)}")
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
    model_ref = require_ray().put(Path(model_path).read_bytes())
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
