"""The caller's side of a node: the sweep's worker that sends cells to a group's nodes."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from typing import Any

from benchbox.measure.cell import Aborted
from benchbox.schema import Cell, CellWarning, from_dict, replace, to_dict
from benchbox.sweep.fleet.cluster import first_line, require_ray
from benchbox.sweep.fleet.placement import ABORT_GRACE_S, POLL_S, Node, NodePool
from benchbox.sweep.runner import CellContext
from benchbox.sweep.worker import default_cell_timeout_s
from benchbox.warning_kinds import WarningKind

# A node that neither answers nor is declared dead within a cell's own timeout plus this is lost.
ANSWER_MARGIN_S = 60.0


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
            "profile": to_dict(ctx.profile) if ctx.profile is not None else None,
            "idle_power_w": ctx.idle_power_w,
            "isolate": isolate,
            "cell_timeout_s": cell_timeout_s,
            # (precision) the variants the node builds from its copy, and the accuracy samples
            "precisions": [v.precision for v in ctx.variants if v.precision != "fp32"],
            "accuracy_samples": ctx.accuracy_samples,
            # --data: the samples, put in the object store once; each node reads them once
            "data": require_ray().put(ctx.data) if ctx.data is not None else None,
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
                note = CellWarning(
                    WarningKind.RAY_NODE,
                    f"measured on node {node.node_id[:12]} of group {self.pool.group}, "
                    f"not on the report's host node {self.host_node_id[:12]}",
                )
                done = replace(done, warnings=(*done.warnings, note))
            return done

    def _ask(self, node: Node, cell: Cell) -> dict[str, Any]:
        ray = require_ray()
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
            reason = f"the node's worker failed: {first_line(exc)}"
            return to_dict(replace(cell, status="failed", result=None, reason=reason))
        except ray.exceptions.RayError as exc:  # the reply was lost with its node
            raise NodeLost(f"node {node.node_id[:12]}: {first_line(exc)}") from None

    def _cancel(self, node: Node, ref: Any) -> None:
        """Ctrl-C: tell the node to stop the cell, and give it a moment to do so."""
        try:
            node.actor.abort.remote()
            require_ray().wait([ref], timeout=ABORT_GRACE_S)
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
