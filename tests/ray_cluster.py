"""A real multi-node Ray cluster on this machine, for the fleet tests and benchmark.

`ray_env.prepare()` must have run before Ray was imported (conftest does it): then every node binds
127.0.0.1 and uses token auth. Health checks are fast, so that a killed node is declared dead in
seconds. Only the cluster started here is shut down: never `ray stop`, which kills by name.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import psutil
import ray
from ray.cluster_utils import Cluster

GROUP_LABEL = "ray.io/node-group"
# The session's cluster (conftest's `ray_cluster`), one 1-CPU node a group: test_fleet's two
# machine types and the group whose node its kill test takes away; test_ray_generators' `gen`,
# which has RAY_GEN_NODES nodes.
RAY_GROUPS = {"small": 1, "large": 1, "doomed": 1, "gen": 1}
RAY_GEN_NODES = 3
LOOPBACK = {"127.0.0.1", "::ffff:127.0.0.1", "::1"}
# The GCS declares a node dead after ~3 missed checks of 0.5 s (default: 5 of 3 s).
FAST_HEALTH = {
    "health_check_initial_delay_ms": 0,
    "health_check_period_ms": 500,
    "health_check_timeout_ms": 1000,
    "health_check_failure_threshold": 3,
}


@contextmanager
def local_cluster(
    groups: dict[str, int], client_port: int | None = None
) -> Iterator[tuple[Cluster, dict[str, object]]]:
    """A head with no CPUs plus one node per group (`name: CPUs`), labelled with the group;
    this process is connected to it. With `client_port` the head also serves Ray Client
    (ray://127.0.0.1:PORT), as a KubeRay head does. Yields the cluster and the groups' nodes."""
    head = {"num_cpus": 0, "include_dashboard": False, "_system_config": FAST_HEALTH}
    if client_port is not None:
        head["ray_client_server_port"] = client_port
    cluster = Cluster(initialize_head=True, head_node_args=head)
    try:
        nodes = {name: add_group_node(cluster, name, cpus) for name, cpus in groups.items()}
        ray.init(address=cluster.address, log_to_driver=False, logging_level="WARNING")
        try:
            yield cluster, nodes
        finally:
            ray.shutdown()
    finally:
        cluster.shutdown()
        shutil.rmtree(ray_tmpdir(), ignore_errors=True)


def ray_tmpdir() -> str:
    return os.environ["RAY_TMPDIR"]


def add_group_node(cluster: Cluster, group: str, cpus: int = 1):
    """A new node of `group` (label GROUP_LABEL=group) with `cpus` CPUs."""
    return cluster.add_node(num_cpus=cpus, labels={GROUP_LABEL: group})


def free_port() -> int:
    """A TCP port free on 127.0.0.1 just now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kill_node(node) -> int:
    """Lose a node as a machine is lost: SIGKILL its raylet and every process under it (the
    workers, and the benchmark processes they started) at once. Returns the raylet's pid.

    (With the raylet alone killed, its workers live on for a moment and may still answer.)"""
    proc = node.all_processes["raylet"][0].process
    try:
        kids = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        kids = []
    proc.kill()
    for kid in kids:
        try:
            kid.kill()
        except psutil.Error:
            pass
    proc.wait(10)
    psutil.wait_procs(kids, timeout=10)
    return proc.pid


def cluster_pids(cluster: Cluster) -> set[int]:
    """Every process the cluster started: its nodes' services and their children (workers)."""
    pids: set[int] = set()
    for node in [cluster.head_node, *cluster.worker_nodes]:
        for infos in node.all_processes.values():
            for info in infos:
                pids.add(info.process.pid)
                try:
                    kids = psutil.Process(info.process.pid).children(recursive=True)
                except psutil.Error:
                    continue
                pids.update(k.pid for k in kids)
    return pids


def listening_addresses(pids: set[int]) -> set[str]:
    """The local addresses the given processes listen on (TCP)."""
    out = set()
    for conn in psutil.net_connections("tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.pid in pids:
            out.add(conn.laddr.ip)
    return out
