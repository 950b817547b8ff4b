"""Generators on a real local Ray cluster (tests/ray_cluster.py) against a real OIP server, all on
127.0.0.1: one schedule split by index, clocks read and recorded, histograms merged exactly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import ray
from ray_cluster import GROUP_LABEL, add_group_node, kill_node
from rich.console import Console
from servers import oip_small
from servers.oip_small import serving
from servers.process import free_ports

from benchbox import model as model_mod
from benchbox.errors import BadInput
from benchbox.load.issuer import schedule_offsets_ns
from benchbox.measure import stats
from benchbox.measure.cell import Aborted
from benchbox.measure.histogram import LatencyHistogram
from benchbox.remote.session import connect, prepare
from benchbox.report.render import ray_generator_lines, render_cell_detail, render_report
from benchbox.store import load_report
from benchbox.sweep.fleet.generators import (
    GeneratorLost,
    close_generators,
    place_generators,
    run_schedule,
)

GEN = "gen"
# Placement may wait for a core: beside two busy loops, the first placement after the fleet tests
# did not start 3 generators within 60 s (quiet, this whole module takes under a minute).
PLACE_S = 180
RATE_RPS = 120.0
WARMUP_NS = 300_000_000
BOUND_S = 120.0


@pytest.fixture(scope="module")
def cluster(ray_cluster):
    """The session's cluster (conftest), shared with test_fleet: three nodes of group `gen`."""
    c, _ = ray_cluster
    return c


@pytest.fixture(scope="module")
def server() -> str:
    (port,) = free_ports(1)
    with serving(port):
        yield f"http://127.0.0.1:{port}/v2/models/ok"


@pytest.fixture(scope="module")
def prepared(server):
    session = connect(server)
    return prepare(session, model_mod.synthesize_inputs(session.model, 1, pool_size=4, seed=0))


def schedule(seconds: float, rate: float = RATE_RPS) -> np.ndarray:
    return schedule_offsets_ns(rate, int(rate * seconds), "poisson", seed=1)


def test_three_nodes_split_one_schedule_and_their_merged_histogram_is_the_pooled_one(
    cluster, prepared
):
    gens = place_generators(3, GEN, GROUP_LABEL, timeout_s=PLACE_S)
    try:
        offsets = schedule(2.0)
        load = run_schedule(gens, prepared, offsets, 48, WARMUP_NS, BOUND_S, keep_raw=True)
    finally:
        close_generators(gens)
    assert len({n.node_id for n in load.nodes}) == 3
    assert load.errors == 0 and not load.partial
    # Every request of the schedule was sent by exactly one node; the timed ones are those
    # intended after the warm-up, and each node timed its own share.
    timed = int(np.count_nonzero(offsets >= WARMUP_NS))
    assert load.requests == timed == sum(n.requests for n in load.nodes) == load.latency.count
    for k, node in enumerate(load.nodes):
        assert node.requests == int(np.count_nonzero(offsets[k::3] >= WARMUP_NS))
        assert node.issue_delay_p99_ms is not None and node.lost is None
        # One machine, one clock: the min-RTT estimate is off by at most half its round trip.
        assert node.clock_rtt_ms > 0
        assert abs(node.clock_offset_ms) <= node.clock_rtt_ms / 2 + 1e-3
    pooled = np.concatenate(load.raw_ms)
    again = LatencyHistogram.empty()
    again.record_ms(pooled)
    assert np.array_equal(again.counts, load.latency.counts)  # merged == pooled, bucket by bucket
    ordered = np.sort(pooled)
    for q in (50.0, 90.0, 99.0):
        exact = stats.percentile(ordered, q)
        assert abs(load.latency.percentile_ms(q) - exact) <= 0.02 * exact


def test_more_generators_than_nodes_is_bad_input_within_the_placement_timeout(cluster):
    with pytest.raises(BadInput) as err:
        place_generators(4, GEN, GROUP_LABEL, timeout_s=1.0)
    assert "--generators 4 needs 4 nodes of group 'gen'" in err.value.message
    assert "3 joined within 1s" in err.value.message


def _when_served(count: int, then) -> threading.Thread:
    """Run `then` once the server has answered `count` more requests (bounded: 120 s)."""
    start = oip_small.SERVED.get("ok", 0)

    def wait() -> None:
        deadline = time.monotonic() + 120
        while oip_small.SERVED.get("ok", 0) - start < count and time.monotonic() < deadline:
            time.sleep(0.05)
        then()

    t = threading.Thread(target=wait, daemon=True)
    t.start()
    return t


def test_a_killed_generator_actor_fails_the_cell_with_its_reason(cluster, prepared):
    gens = place_generators(2, GEN, GROUP_LABEL, timeout_s=PLACE_S)
    try:
        killer = _when_served(40, lambda: ray.kill(gens[1].actor, no_restart=True))
        with pytest.raises(GeneratorLost) as err:
            run_schedule(gens, prepared, schedule(20.0, 40.0), 16, WARMUP_NS, BOUND_S)
        killer.join(10)
    finally:
        close_generators(gens)
    assert str(err.value).startswith(f"generator node {gens[1].node_id[:12]} lost: ")
    assert gens[1].lost == str(err.value) and gens[0].lost is None


def test_a_lost_node_leaves_the_others_to_finish_flagged_and_then_fails_cells(cluster, prepared):
    # A group of its own: test_fleet's `doomed` nodes share the session's cluster.
    doomed = [add_group_node(cluster, "gen-doomed", 1) for _ in range(2)]
    cluster.wait_for_nodes()
    gens = place_generators(2, "gen-doomed", GROUP_LABEL, timeout_s=PLACE_S)
    try:
        victim = next(n for n in doomed if n.node_id == gens[0].node_id)
        killer = _when_served(40, lambda: kill_node(victim))
        load = run_schedule(gens, prepared, schedule(4.0, 40.0), 16, 0, BOUND_S, partial=True)
        killer.join(10)
        assert load.partial
        lost, kept = load.nodes
        assert lost.lost is not None and "lost" in lost.lost and lost.requests == 0
        assert kept.lost is None and kept.requests > 0 and load.requests == kept.requests
        with pytest.raises(GeneratorLost) as err:  # without --ray-partial a lost node fails
            run_schedule(gens, prepared, schedule(1.0, 40.0), 16, 0, BOUND_S)
        assert str(err.value) == lost.lost
    finally:
        close_generators(gens)


def sweep_cli(cluster, server, out, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "benchbox", "sweep", "--target", server, "--ray", cluster.address,
         "--ray-group", GEN, "--placement-timeout", f"{PLACE_S}s", "--load", "open", "--rate",
         "60", "--warmup", "0.3s",
         "--duration", "1.5s", "--trials", "1", "--out", str(out), *args],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_the_command_sweeps_a_server_from_generator_nodes_and_records_them(
    cluster, server, tmp_path
):
    p = sweep_cli(cluster, server, tmp_path, "--generators", "2", "--json")
    assert p.returncode == 0, p.stderr
    (cell,) = json.loads(p.stdout)["cells"]
    gen = cell["result"]["generator"]
    assert gen["percentiles_from"] == "merged-histogram" and gen["ray_group"] == GEN
    assert len(gen["nodes"]) == 2 and gen["processes"] == 2 and not gen["partial"]
    assert sum(n["requests"] for n in gen["nodes"]) == cell["result"]["requests"]
    assert cell["result"]["histogram"]["count"] == cell["result"]["requests"]
    for n in gen["nodes"]:
        assert n["clock_rtt_ms"] > 0 and n["issue_delay_p99_ms"] is not None
    (saved,) = tmp_path.glob("*.json")  # the saved report loads back typed, and reads so
    report = load_report(saved)
    result = report.cells[0].result
    console = Console(width=160, record=True)
    render_report(report, console)
    render_cell_detail(report, report.cells[0], console)
    assert "percentiles from the merged-histogram" in console.export_text()
    assert [n.node_id for n in result.generator.nodes] == [n["node_id"] for n in gen["nodes"]]
    lines = ray_generator_lines(result.generator)
    assert lines[0].startswith("  Generators:       2 of 2 nodes of group gen; percentiles from")
    assert all(n["node_id"][:12] in line for n, line in zip(gen["nodes"], lines[1:], strict=True))
    # The report knows its load came from the cluster: resuming it here would not, so it is
    # refused in one line rather than measured from this machine.
    assert report.target.ray_group == GEN
    again = subprocess.run(
        [sys.executable, "-m", "benchbox", "sweep", "--resume", str(saved)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert again.returncode == 2 and "generators on Ray group 'gen'" in again.stderr
    assert "Traceback" not in again.stderr


def test_run_measures_one_cell_from_generator_nodes_and_shows_them(cluster, server, tmp_path):
    """`benchbox run --target URL --ray`: the one cell's load comes from the nodes, its
    percentiles from their merged histograms, and the detail view names each node."""
    p = subprocess.run(
        [sys.executable, "-m", "benchbox", "run", "--target", server, "--ray", cluster.address,
         "--ray-group", GEN, "--generators", "2", "--placement-timeout", f"{PLACE_S}s",
         "--load", "open", "--rate", "60",
         "--warmup", "0.3s", "--duration", "1.5s", "--trials", "1", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "160"},
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert "Generators:       2 of 2 nodes of group gen" in p.stdout, p.stdout
    (saved,) = tmp_path.glob("*.json")
    (cell,) = load_report(saved).cells
    gen = cell.result.generator
    assert cell.load.kind == "open" and cell.load.rate_rps == 60
    assert gen.percentiles_from == "merged-histogram" and len(gen.nodes) == 2
    assert sum(n.requests for n in gen.nodes) == cell.result.requests > 0
    assert all(n.node_id[:12] in p.stdout for n in gen.nodes)


def test_the_command_refuses_more_generators_than_nodes_in_one_line(cluster, server, tmp_path):
    p = sweep_cli(cluster, server, tmp_path, "--generators", "4", "--placement-timeout", "1s")
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert lines[0].startswith("error: --generators 4 needs 4 nodes of group 'gen'"), lines
    assert "Traceback" not in p.stderr


def test_ctrl_c_stops_the_generator_nodes_mid_cell(cluster, prepared):
    gens = place_generators(2, GEN, GROUP_LABEL, timeout_s=PLACE_S)
    abort = threading.Event()
    offsets = schedule(30.0, 40.0)
    start = oip_small.SERVED.get("ok", 0)
    try:
        setter = _when_served(20, abort.set)
        with pytest.raises(Aborted):
            run_schedule(gens, prepared, offsets, 16, 0, BOUND_S, abort=abort)
        setter.join(10)
        # Stopped, not sent to the end; and the nodes take the next cell as usual.
        assert oip_small.SERVED["ok"] - start < len(offsets) // 2
        again = run_schedule(gens, prepared, schedule(0.5, 40.0), 16, 0, BOUND_S)
    finally:
        close_generators(gens)
    assert again.requests == 20 and all(g.lost is None for g in gens)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--ray", "auto"], "error: sweep --ray places the load generators of a --target"),
        (
            ["--target", "http://127.0.0.1:9/v2/models/ok", "--ray", "auto"],
            "error: generators on Ray send one open-loop schedule",
        ),
        (["run", "mlp", "--ray", "auto"], "error: run --ray places the load generators of a"),
        (
            ["run", "--target", "http://127.0.0.1:9/v2/models/ok", "--ray", "auto"],
            "error: generators on Ray send one open-loop schedule",
        ),
    ],
)
def test_ray_options_that_cannot_apply_fail_in_one_line(args, says, tmp_path):
    command = args[:1] if args[0] == "run" else ["sweep"]
    args = args[1:] if args[0] == "run" else args
    p = subprocess.run(
        [sys.executable, "-m", "benchbox", *command, *args, "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert p.returncode == 2, p.stderr
    assert p.stderr.strip().splitlines()[0].startswith(says), p.stderr
    assert "Traceback" not in p.stderr


def test_a_ray_cell_gets_the_open_loops_load_warnings_from_what_the_nodes_shipped():
    """Sends late by over 1 ms for over 1% of requests (the merged issue-delay histogram), and a
    node whose pool-wait p99 is over 1 ms, warn as an in-process open loop's would."""
    from benchbox.schema import GeneratorNodeStats
    from benchbox.sweep.fleet.generators import RayLoad
    from benchbox.sweep.fleet.ray_worker import ray_load_warnings

    delay = LatencyHistogram.empty()
    delay.record_ms([0.05] * 95 + [4.0] * 5)
    node = GeneratorNodeStats("a" * 20, 0.0, 0.5, 100, 0, 3.9, 0.2, None, 2.5)
    calm = GeneratorNodeStats("b" * 20, 0.0, 0.5, 100, 0, 0.1, 0.2, None, 0.0)
    load = RayLoad(LatencyHistogram.empty(), delay, (node, calm), 200, 0, None, 1.0, 0.2, False)
    kinds = {w.kind: w.text for w in ray_load_warnings(load)}
    assert kinds["generator-behind"].startswith("5.0% of requests were sent over")
    assert "aaaaaaaaaaaa" in kinds["pool-exhausted"] and "bbbb" not in kinds["pool-exhausted"]
    quiet = LatencyHistogram.empty()
    quiet.record_ms([0.05] * 100)
    calm_load = RayLoad(LatencyHistogram.empty(), quiet, (calm,), 100, 0, None, 1.0, 0.2, False)
    assert ray_load_warnings(calm_load) == []
