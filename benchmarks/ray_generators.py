"""Generators on Ray (issue 26 item 3): 3 generator nodes of a local Ray cluster at 90% of the
server's capacity. Prints each node's issue-delay p99 against the single-node goal (< 0.5 ms,
benchmarks/remote.py) and the merged histogram's percentiles against those of the pooled raw
latencies (goal: within 2%). Asserts nothing.

    python benchmarks/ray_generators.py [--nodes 3] [--seconds 5] [--share 0.9]

The server is tests/servers/oip_small (aiohttp, model `ok`) in its own process; its capacity is
benchbox's closed-loop throughput at concurrency 8 (`benchbox run`). The cluster is
tests/ray_cluster.py's (head with no CPUs, one 1-CPU node per generator, all on 127.0.0.1). On a
shared 2-core machine the nodes, the server and the driver contend for the cores: the issue
delay then reads the machine's contention as much as the generators'.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
import ray_env  # noqa: E402

ray_env.prepare()  # before Ray is imported: loopback only, token auth, a private temp folder

import numpy as np  # noqa: E402
from ray_cluster import GROUP_LABEL, add_group_node, local_cluster  # noqa: E402
from servers.process import free_ports  # noqa: E402

from benchbox import model as model_mod  # noqa: E402
from benchbox.load.issuer import schedule_offsets_ns  # noqa: E402
from benchbox.measure import stats  # noqa: E402
from benchbox.remote.session import connect, prepare  # noqa: E402
from benchbox.sweep.fleet.generators import (  # noqa: E402
    close_generators,
    place_generators,
    run_schedule,
)

SERVE = """
import sys
sys.path.insert(0, sys.argv[2])
from servers.oip_small import serving
with serving(int(sys.argv[1])):
    sys.stdin.read()
"""
GOAL_DELAY_MS = 0.5
GOAL_MERGE = 0.02


def capacity_rps(url: str) -> float:
    """The server's closed-loop throughput at concurrency 8 (benchbox run)."""
    with tempfile.TemporaryDirectory() as out:
        done = subprocess.run(
            [sys.executable, "-m", "benchbox", "run", "--target", url, "--concurrency", "8",
             "--duration", "3s", "--warmup", "0.5s", "--trials", "1", "--json", "--out", out],
            capture_output=True, text=True, timeout=300, check=True,
        )  # fmt: skip
    (cell,) = json.loads(done.stdout)["cells"]
    return float(cell["result"]["requests_per_s"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--share", type=float, default=0.9)
    args = ap.parse_args()
    (port,) = free_ports(1)
    server = subprocess.Popen(
        [sys.executable, "-c", SERVE, str(port), str(ROOT / "tests")], stdin=subprocess.PIPE
    )
    try:
        url = f"http://127.0.0.1:{port}/v2/models/ok"
        session = None
        for _ in range(100):  # bounded: the server answers within ~10 s
            try:
                session = connect(url)
                break
            except Exception:
                time.sleep(0.1)
        if session is None:
            raise SystemExit("the server did not start")
        peak = capacity_rps(url)
        rate = args.share * peak
        print(f"server capacity {peak:.0f} req/s (closed loop, c=8); load {rate:.0f} req/s")
        run(session, rate, args)
    finally:
        server.stdin.close()
        server.wait(15)


def run(session, rate: float, args) -> None:
    prepared = prepare(session, model_mod.synthesize_inputs(session.model, 1, pool_size=4, seed=0))
    with local_cluster({"gen": 1}) as (c, _):
        for _ in range(args.nodes - 1):
            add_group_node(c, "gen", 1)
        c.wait_for_nodes()
        gens = place_generators(args.nodes, "gen", GROUP_LABEL, timeout_s=120)
        try:
            offsets = schedule_offsets_ns(rate, int(rate * (args.seconds + 1)), "poisson", 3)
            load = run_schedule(gens, prepared, offsets, 96, 1_000_000_000, 300, keep_raw=True)
        finally:
            close_generators(gens)
    print(f"{load.requests} requests timed, {load.errors} errors, over {load.span_s:.1f} s")
    for n in load.nodes:
        ok = "ok" if (n.issue_delay_p99_ms or 0) < GOAL_DELAY_MS else "over"
        print(
            f"  node {n.node_id[:12]}  clock {n.clock_offset_ms:+.3f} ms (rtt {n.clock_rtt_ms:.2f})"
            f"  {n.requests} requests  issue-delay p99 {n.issue_delay_p99_ms:.3f} ms"
            f" (goal < {GOAL_DELAY_MS} ms: {ok})  pool-wait p99 {n.pool_wait_p99_ms:.3f} ms"
            f"  busy {n.busy_share:.0%}"
        )
    pooled = np.sort(np.concatenate(load.raw_ms))
    print("  percentile  merged ms  pooled ms  difference")
    for q in (50.0, 90.0, 99.0, 99.9):
        merged, exact = load.latency.percentile_ms(q), stats.percentile(pooled, q)
        diff = (merged - exact) / exact
        print(
            f"  p{q:<9g} {merged:9.3f}  {exact:9.3f}  {diff:+.2%}"
            f" (goal within {GOAL_MERGE:.0%}: {'ok' if abs(diff) <= GOAL_MERGE else 'over'})"
        )


if __name__ == "__main__":
    main()
