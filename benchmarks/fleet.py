"""The cost of going through Ray: a fleet of one group against the same sweep run locally.

One local Ray cluster (a head with no CPUs and one node of group `bench` with this machine's cores,
all on 127.0.0.1) is started once and timed. Then the same sweep (zoo `mlp`, grid, fixed-duration
cells) runs in the same process, alternating: local, fleet, local, fleet, ... Each fleet run pays
for placing the actor, reading the node's facts and the idle baseline there, shipping the model,
and a round trip per cell. Goal: cluster start + (median fleet - median local) <= 15 s.

    python benchmarks/fleet.py [--rounds 3] [--cells 4]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import ray_env  # noqa: E402

ray_env.prepare()  # before Ray is imported: loopback only, token auth, a private temp folder

import psutil  # noqa: E402
from ray_cluster import local_cluster  # noqa: E402

from benchbox import zoo  # noqa: E402
from benchbox.measure.cell import MeasureSettings  # noqa: E402
from benchbox.parse import parse_target  # noqa: E402
from benchbox.sweep import SweepRequest, run_sweep  # noqa: E402
from benchbox.sweep.fleet import FleetRequest, GroupSpec, run_fleet  # noqa: E402
from benchbox.sweep.plan import SweepSpec  # noqa: E402

SETTINGS = MeasureSettings(
    warmup_s=0.2, duration_s=0.5, window_s=0.25, min_duration_s=0.25, max_duration_s=0.5
)


def sweep_request(model: str, out: str, cells: int) -> SweepRequest:
    return SweepRequest(
        model_path=model,
        spec=SweepSpec(batch_sizes=tuple(2**i for i in range(cells))),
        settings=SETTINGS,
        out_dir=out,
        search="grid",
        latency_target=parse_target("p99=100ms"),
        profile="aws-c7i-2xlarge",
        model_label="mlp",
    )


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cells", type=int, default=4)
    args = ap.parse_args()
    model = str(zoo.path_for("mlp"))
    cores = psutil.cpu_count(logical=True) or 1
    out = Path(tempfile.mkdtemp(prefix="benchbox-fleet-bench-"))
    start = time.perf_counter()
    with local_cluster({"bench": cores}):
        cluster_start_s = time.perf_counter() - start
        local_s, fleet_s = [], []
        for i in range(args.rounds):
            req = sweep_request(model, str(out / f"local-{i}"), args.cells)
            local_s.append(timed(lambda req=req: run_sweep(req)))
            fleet = FleetRequest(
                sweep=sweep_request(model, str(out / f"fleet-{i}"), args.cells),
                groups=(GroupSpec("bench", "aws-c7i-2xlarge"),),
            )
            fleet_s.append(timed(lambda fleet=fleet: run_fleet(fleet)))
    extra_s = statistics.median(fleet_s) - statistics.median(local_s)
    print(
        json.dumps(
            {
                "cells": args.cells,
                "rounds": args.rounds,
                "cluster_start_s": round(cluster_start_s, 2),
                "local_s": [round(x, 2) for x in local_s],
                "fleet_s": [round(x, 2) for x in fleet_s],
                "median_extra_per_fleet_s": round(extra_s, 2),
                "extra_with_cluster_start_s": round(cluster_start_s + extra_s, 2),
                "goal_s": 15,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
