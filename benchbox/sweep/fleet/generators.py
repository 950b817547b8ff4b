"""Load generators on a Ray cluster (`--ray ADDRESS --generators N`): one GeneratorNode actor on
each of N nodes of a labelled group, one arrival schedule split by index (node k sends requests
k, k + N, ...), one start time agreed through the head, and percentiles from the nodes'
histograms merged exactly.

Clocks: before each cell the driver reads every node's wall clock a few times (NTP's rule: the
offset of the round trip that took least, `node - (sent + received) / 2`, off by at most half that
round trip), records it, and sends each node the start in the driver's clock with its offset.
Latencies are timed on each node from its own intended times, so an offset's error only moves
a node's start, never a latency.

A lost node (its actor died: RayActorError) fails the cell with the node's reason, or, with
`partial`, the others finish and the result is flagged; later cells split the schedule among
the nodes left.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchbox import __version__
from benchbox.errors import BadInput
from benchbox.measure.cell import Aborted
from benchbox.measure.histogram import LatencyHistogram, from_plain, merge
from benchbox.remote.wire import Prepared
from benchbox.schema import GeneratorNodeStats
from benchbox.sweep.fleet.cluster import (
    NODE_ID_LABEL,
    NodeView,
    alive_nodes,
    first_line,
    labels_seen,
    require_ray,
)
from benchbox.sweep.fleet.generator_node import Share, remote_generator

CLOCK_ROUNDS = 5
CLOCK_CALL_S = 10.0  # one clock read's bound
START_LEAD_NS = 1_500_000_000  # the start is this far after it is agreed: every node is ready
STOP_GRACE_S = 10.0
POLL_S = 0.5
MERGED = "merged-histogram"


class GeneratorLost(RuntimeError):
    """A generator node was lost while a cell was measured (the cell fails, the sweep goes on)."""


@dataclass
class Generator:
    """One placed generator: its node, its actor, its last clock reading, why it was lost."""

    node_id: str
    actor: Any
    offset_ns: int = 0
    rtt_ns: int = 0
    lost: str | None = None


@dataclass(frozen=True)
class RayLoad:
    """A cell's load as the generator nodes measured it."""

    latency: LatencyHistogram  # merged, exact
    issue_delay: LatencyHistogram
    nodes: tuple[GeneratorNodeStats, ...]
    requests: int
    errors: int
    first_error: str | None
    span_s: float  # the longest node's measured span (after the warm-up)
    busy_share: float  # the busiest node's
    partial: bool  # a node was lost and the others finished
    raw_ms: tuple[np.ndarray, ...] | None = None  # per node, when asked (tests, the figure)


def wait_for_nodes(count: int | None, group: str, label: str, timeout_s: float) -> list[NodeView]:
    """`count` alive nodes labelled `label=group` (None, `--generators auto`: every node of the
    group, at least one), waiting up to `timeout_s` for nodes still joining; BadInput (one
    line) when fewer joined."""
    deadline = time.monotonic() + timeout_s
    while True:
        nodes = alive_nodes()
        found = [n for n in nodes if n.labels.get(label) == group]
        if count is None and found:
            return found
        if count is not None and len(found) >= count:
            return found[:count]
        if time.monotonic() >= deadline:
            need = f"{count} nodes" if count and count > 1 else "a node"
            raise BadInput(
                f"--generators {count or 'auto'} needs {need} of group {group!r} "
                f"({label}={group}), {len(found)} joined within {timeout_s:g}s; labels seen: "
                f"{labels_seen(nodes, label)}",
                "give fewer --generators (one per node), or add nodes to the group",
            )
        time.sleep(min(POLL_S, max(0.0, deadline - time.monotonic())))


def place_generators(
    count: int | None, group: str, label: str, timeout_s: float
) -> list[Generator]:
    """One GeneratorNode pinned on each of `count` nodes of the group (None, `--generators
    auto`: on each node of the group), one CPU each, all answering within `timeout_s`;
    BadInput otherwise, with nothing left running."""
    if count is not None and count < 1:
        raise BadInput(f"--generators {count} must be at least 1")
    ray = require_ray()
    deadline = time.monotonic() + timeout_s
    views = wait_for_nodes(count, group, label, timeout_s)
    actors = [
        remote_generator()
        .options(
            num_cpus=min(1.0, v.cpus),
            label_selector={label: group, NODE_ID_LABEL: v.node_id},
            max_concurrency=2,  # `stop` must reach a node that is sending
            max_restarts=0,
        )
        .remote()
        for v in views
    ]
    refs = [a.facts.remote() for a in actors]
    ready, _ = ray.wait(refs, num_returns=len(refs), timeout=max(0.0, deadline - time.monotonic()))
    problem = None
    if len(ready) < len(refs):
        problem = (
            f"{len(refs) - len(ready)} of {len(refs)} generators on group {group!r} did not start "
            f"within {timeout_s:g}s",
            "another job may hold the nodes' CPUs; a generator takes one CPU of its node",
        )
    else:
        facts = _facts(ray, refs)
        if isinstance(facts, tuple):
            problem = facts
    if problem is not None:
        for a in actors:
            kill(a)
        raise BadInput(*problem)
    return [Generator(v.node_id, a) for v, a in zip(views, actors, strict=True)]


def _facts(ray: Any, refs: list[Any]) -> list[dict] | tuple[str, str]:
    out = []
    for ref in refs:
        try:
            facts = ray.get(ref)
        except ray.exceptions.RayError as exc:
            return (f"a generator failed to start: {first_line(exc)}", "see the node's Ray logs")
        if facts["version"] != __version__:
            return (
                f"generator node {facts['node_id'][:12]} runs benchbox {facts['version']}, "
                f"this machine {__version__}",
                "install the same benchbox version in the cluster's image and here",
            )
        out.append(facts)
    return out


def kill(actor: Any) -> None:
    try:
        require_ray().kill(actor, no_restart=True)
    except Exception:  # already gone
        pass


def close_generators(gens: list[Generator]) -> None:
    for g in gens:
        kill(g.actor)


def read_clock(g: Generator, rounds: int = CLOCK_ROUNDS) -> None:
    """The node's clock offset from this one's, from the round trip that took least."""
    ray = require_ray()
    best: tuple[int, int] | None = None
    for _ in range(rounds):
        t1 = time.time_ns()
        t_node = ray.get(g.actor.clock_ns.remote(), timeout=CLOCK_CALL_S)
        t2 = time.time_ns()
        if best is None or t2 - t1 < best[1]:
            best = (t_node - (t1 + t2) // 2, t2 - t1)
    assert best is not None
    g.offset_ns, g.rtt_ns = best


def run_schedule(
    gens: list[Generator],
    prepared: Prepared,
    offsets_ns: np.ndarray,
    concurrency: int,
    warmup_ns: int,
    bound_s: float,
    partial: bool = False,
    keep_raw: bool = False,
    abort: threading.Event | None = None,
) -> RayLoad:
    """Send one schedule from the alive generators (node k: indices k, k + N, ...), starting
    together, and merge what they measured; GeneratorLost when a node is lost (unless
    `partial`, and one is left); Aborted, the nodes stopped, when `abort` is set."""
    ray = require_ray()
    alive = [g for g in gens if g.lost is None]
    if not alive or (not partial and len(alive) < len(gens)):
        first = next(g.lost for g in gens if g.lost)
        raise GeneratorLost(first)
    for g in alive:
        _mark_lost_on_error(g, lambda g=g: read_clock(g), partial)
    alive = [g for g in alive if g.lost is None]
    n = len(alive)
    body = ray.put(prepared)
    start_ns = time.time_ns() + START_LEAD_NS
    refs = {}
    for k, g in enumerate(alive):
        share = Share(offsets_ns[k::n], k, n, max(1, concurrency // n), warmup_ns, keep_raw)
        refs[g.actor.run.remote(body, share, start_ns, g.offset_ns)] = g
    answers = _collect(ray, refs, START_LEAD_NS / 1e9 + bound_s, partial, abort)
    return merged_load(gens, answers)


def _mark_lost_on_error(g: Generator, call: Any, partial: bool) -> None:
    ray = require_ray()
    try:
        call()
    except (ray.exceptions.RayError, TimeoutError) as exc:
        g.lost = f"generator node {g.node_id[:12]} lost: {first_line(exc)}"
        if not partial:
            raise GeneratorLost(g.lost) from None


def _collect(
    ray: Any,
    refs: dict[Any, Generator],
    bound_s: float,
    partial: bool,
    abort: threading.Event | None = None,
) -> dict:
    """Each node's answer as it comes, within `bound_s`; a node that died or did not answer is
    marked lost, and (unless `partial`) the others are stopped and the cell fails."""
    deadline = time.monotonic() + bound_s
    pending, answers = list(refs), {}
    while pending:  # each round takes one answer off, or waits POLL_S, until the deadline
        if abort is not None and abort.is_set():
            _stop(ray, [refs[r] for r in pending], pending)
            raise Aborted()
        left = deadline - time.monotonic()
        done, pending = ray.wait(pending, num_returns=1, timeout=max(0.0, min(POLL_S, left)))
        if not done and left > POLL_S:
            continue
        if not done:
            late = [refs[r] for r in pending]
            for g in late:
                g.lost = f"generator node {g.node_id[:12]} did not answer within {bound_s:.0f}s"
            _stop(ray, late, [])
            failed, pending = late[0], []
        else:
            g = refs[done[0]]
            try:
                answers[g.node_id] = ray.get(done[0])
                continue
            except ray.exceptions.RayError as exc:
                g.lost = f"generator node {g.node_id[:12]} lost: {first_line(exc)}"
                failed = g
        if not partial or len(answers) + len(pending) == 0:
            _stop(ray, [refs[r] for r in pending], pending)
            raise GeneratorLost(failed.lost)
    return answers


def _stop(ray: Any, gens: list[Generator], pending: list[Any]) -> None:
    for g in gens:
        g.actor.stop.remote()
    if pending:
        ray.wait(pending, num_returns=len(pending), timeout=STOP_GRACE_S)


def merged_load(gens: list[Generator], answers: dict[str, dict]) -> RayLoad:
    """The nodes' histograms merged exactly, and one record per node (lost ones too)."""
    lat = {k: from_plain(a["latency"]) for k, a in answers.items()}
    delay = {k: from_plain(a["issue_delay"]) for k, a in answers.items()}
    nodes = []
    for g in gens:
        a = answers.get(g.node_id)
        d = delay.get(g.node_id)
        nodes.append(
            GeneratorNodeStats(
                node_id=g.node_id,
                clock_offset_ms=g.offset_ns / 1e6,
                clock_rtt_ms=g.rtt_ns / 1e6,
                requests=a["requests"] if a else 0,
                errors=a["errors"] if a else 0,
                issue_delay_p99_ms=d.percentile_ms(99.0) if d is not None and d.count else None,
                busy_share=a["busy_share"] if a else 0.0,
                lost=g.lost,
                pool_wait_p99_ms=a["pool_wait_p99_ms"] if a else None,
            )
        )
    got = list(answers.values())
    raw = [a["raw_ms"] for a in got]
    kept = tuple(np.asarray(r) for r in raw) if raw and all(r is not None for r in raw) else None
    return RayLoad(
        latency=merge(list(lat.values())),
        issue_delay=merge(list(delay.values())),
        nodes=tuple(nodes),
        requests=sum(a["requests"] for a in got),
        errors=sum(a["errors"] for a in got),
        first_error=next((a["first_error"] for a in got if a["first_error"]), None),
        span_s=max((a["span_s"] for a in got), default=0.0),
        busy_share=max((a["busy_share"] for a in got), default=0.0),
        partial=any(g.lost for g in gens),
        raw_ms=kept,
    )
