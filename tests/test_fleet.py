"""`benchbox fleet` on a real local multi-node Ray cluster: one node per group, tiny cells."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import ray
from ray_cluster import (
    LOOPBACK,
    add_group_node,
    cluster_pids,
    free_port,
    kill_node,
    listening_addresses,
)

from benchbox.cost import load_profile
from benchbox.errors import BadInput, GateFailed, Interrupted, NothingMeasured
from benchbox.measure.cell import MeasureSettings
from benchbox.parse import parse_target
from benchbox.schema import replace
from benchbox.store import load_report
from benchbox.sweep import Progress, SweepRequest
from benchbox.sweep.fleet import (
    MANIFEST,
    FleetRequest,
    FleetResult,
    GroupOutcome,
    GroupSpec,
    fleet_gate,
    fleet_out_dir,
    parse_groups,
    resume_fleet,
    run_fleet,
)
from benchbox.sweep.plan import SweepSpec

# The cluster's groups (tests/ray_cluster.py RAY_GROUPS): two machine types (one node each) and
# a group whose node the kill test takes away.
PROFILES = {
    "small": "aws-c7i-2xlarge",
    "large": "aws-m7i-4xlarge",
    "doomed": "gcp-n2-standard-8",
    "pair": "aws-c7i-2xlarge",  # two nodes, added by the test that loses one
}
QUICK = MeasureSettings(
    # A fixed 0.3 s, run on (window by window, up to 5 s) only while fewer than 30 requests
    # completed: a node starved by a busy machine still measures its cell, at any speed.
    warmup_s=0.1,
    duration_s=0.3,
    window_s=0.1,
    min_duration_s=0.1,
    max_duration_s=5.0,
)
TARGET = "p99=500ms"


@pytest.fixture(scope="module")
def cluster(ray_cluster):
    """The session's cluster (conftest), shared with test_ray_generators."""
    return ray_cluster


RAY_CLIENT_PROBE = """
import sys
import ray
ray.init(address=sys.argv[1], log_to_driver=False, logging_level="ERROR")
assert ray.cluster_resources()
ray.shutdown()
"""


@pytest.fixture(scope="module")
def ray_client(cluster) -> str:
    """The head's Ray Client address, once a real Ray Client connection through it succeeded.

    The head serves Ray Client by starting one server process per client; on a busy machine the
    first of them can fail to start ("Starting Ray client server failed"), so the test waits for
    the server by readiness: a bounded number of probe connections, until one is made."""
    c, _ = cluster
    address = client_address(c)
    failures = []
    for _ in range(RAY_CLIENT_ATTEMPTS):
        done = subprocess.run(
            [sys.executable, "-c", RAY_CLIENT_PROBE, address],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        if done.returncode == 0:
            return address
        failures.append(done.stderr.strip().splitlines()[-1:] or ["(no output)"])
    pytest.fail(f"the Ray Client server at {address} never accepted a connection: {failures}")


RAY_CLIENT_ATTEMPTS = 5


def client_address(c) -> str:
    """The head's Ray Client address: how a laptop reaches a KubeRay head (port-forwarded)."""
    return f"ray://127.0.0.1:{c.head_node._ray_params.ray_client_server_port}"


def request(model: Path, out: Path, groups: list[str], batches=(1, 4), **extra) -> FleetRequest:
    sweep = SweepRequest(
        model_path=str(model),
        spec=SweepSpec(batch_sizes=tuple(batches)),
        settings=QUICK,
        out_dir=str(out),
        search="grid",
        latency_target=parse_target(TARGET),
        model_label="mlp",
    )
    # Placed within 180 s unless a test asks otherwise: quiet, a node takes its actor at once;
    # beside busy loops, the node a test before handed back can take a minute to free its CPU.
    extra.setdefault("placement_timeout_s", 180.0)
    return FleetRequest(
        sweep=sweep,
        groups=tuple(GroupSpec(g, PROFILES[g]) for g in groups),
        address=extra.pop("address", "auto"),
        **extra,
    )


def node_ids_by_group() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for n in ray.nodes():
        group = (n.get("Labels") or {}).get("ray.io/node-group")
        if n["Alive"] and group:
            out.setdefault(group, set()).add(n["NodeID"])
    return out


def test_cluster_listens_on_loopback_only(cluster):
    c, _ = cluster
    addresses = listening_addresses(cluster_pids(c))
    assert addresses, "the cluster's processes listen somewhere"
    assert addresses <= LOOPBACK, addresses
    assert all(n["NodeManagerAddress"] == "127.0.0.1" for n in ray.nodes())


def test_two_groups_are_measured_on_their_own_nodes_priced_and_ranked(cluster, mlp_path, tmp_path):
    result = run_fleet(request(mlp_path, tmp_path, ["small", "large"]))
    ids = node_ids_by_group()
    assert [g.name for g in result.groups] == ["small", "large"]
    for g in result.groups:
        assert g.status == "done", g
        assert g.cells_measured == g.cells_total == 2
        report = load_report(tmp_path / g.report)
        # Measured on the group's node, which the report names, priced on the group's profile.
        assert report.host.ray_group == g.name
        assert report.host.ray_node_id in ids[g.name]
        assert set(g.nodes) == {report.host.ray_node_id}
        profile = load_profile(PROFILES[g.name])
        assert report.profile.name == profile.name
        for cell in report.cells:
            assert cell.status in ("ok", "unstable")
            r = cell.result
            expected = profile.price_per_hour_usd / (3600 * r.throughput_ips) * 1e6
            assert r.cost_usd_per_million == pytest.approx(expected, rel=1e-6)
        assert report.recommendation is not None and report.recommendation.winner
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    assert [m["report"] for m in manifest["groups"]] == [g.report for g in result.groups]
    ranking = result.ranking
    assert ranking is not None and {r.label for r in ranking.rows} == {"small", "large"}
    costs = [r.usd_per_million for r in ranking.rows]
    assert all(c is not None for c in costs) and costs == sorted(costs)
    assert ranking.rows[0].cheapest and ranking.rows[0].cell_id


def test_a_fleet_measures_each_precision_with_its_accuracy_on_the_nodes(
    cluster, mlp_path, tmp_path
):
    req = request(mlp_path, tmp_path, ["small"], batches=(1,))
    sweep = replace(
        req.sweep,
        spec=replace(req.sweep.spec, precisions=("fp32", "int8-dynamic")),
        accuracy_samples=16,
    )
    result = run_fleet(replace(req, sweep=sweep))
    (g,) = result.groups
    assert g.status == "done", g
    report = load_report(tmp_path / g.report)
    assert [c.id for c in report.cells] == [
        "cpu/t1/i1/b1/closed-c1",
        "cpu/t1/i1/b1/int8d/closed-c1",
    ]
    assert [v.precision for v in report.variants] == ["fp32", "int8-dynamic"]
    fp32, int8 = report.cells
    assert int8.status in ("ok", "unstable") and int8.accuracy.samples == 16
    assert fp32.accuracy.outputs[0].max_abs_error == 0.0 < int8.accuracy.outputs[0].max_abs_error


def test_a_fleet_on_data_ships_the_samples_to_its_nodes(cluster, mlp_path, tmp_path):
    """--data on a fleet: the driver reads and checks the samples, the nodes measure them (the
    node's first cell carries the data-only repeat check), the report says what was read."""
    import numpy as np

    from benchbox.data.samples import load_samples
    from benchbox.model import inspect_model
    from benchbox.options import DataOptions

    path = tmp_path / "requests.npz"
    np.savez(path, x=np.random.default_rng(1).standard_normal((24, 64)).astype(np.float32))
    req = request(mlp_path, tmp_path / "fleet", ["small"], batches=(1,))
    req = replace(req, sweep=replace(req.sweep, data=DataOptions(source=str(path))))
    (g,) = run_fleet(req).groups
    assert g.status == "done", g
    report = load_report(tmp_path / "fleet" / g.report)
    local = load_samples(str(path), inspect_model(str(mlp_path)))
    assert report.data is not None and report.data.sha256 == local.info.sha256
    assert report.data.samples_used == 24
    (cell,) = report.cells
    assert cell.status in ("ok", "unstable") and cell.result.repeat_check is not None
    assert cell.result.repeat_check.distinct == 24


def test_a_group_no_node_carries_fails_within_the_placement_timeout(cluster, mlp_path, tmp_path):
    req = request(mlp_path, tmp_path, ["small"], placement_timeout_s=2.0)
    req = FleetRequest(
        sweep=req.sweep, groups=(GroupSpec("gpu-a100", "aws-p4d-24xlarge"),), placement_timeout_s=2
    )
    with pytest.raises(BadInput) as err:
        run_fleet(req)
    message = err.value.message
    # The wait gave up at its bound (a wall-clock limit here would fail on a busy machine).
    assert "joined within 2s" in message
    assert "gpu-a100" in message and "ray.io/node-group=small" in message
    assert "\n" not in message
    assert not list(tmp_path.glob("*.json"))  # nothing started, nothing half-written


def test_a_wrong_group_label_names_the_labels_the_nodes_have(cluster, mlp_path, tmp_path):
    req = request(mlp_path, tmp_path, ["small"], placement_timeout_s=0.5, group_label="pool")
    with pytest.raises(BadInput) as err:
        run_fleet(req)
    assert "no node has pool" in err.value.message
    assert "ray.io/node-group=small" in err.value.message


def test_a_device_the_node_lacks_fails_before_anything_is_measured(cluster, mlp_path, tmp_path):
    req = request(mlp_path, tmp_path, ["small"], device="cuda:0")
    with pytest.raises(BadInput) as err:
        run_fleet(req)
    assert "group small" in err.value.message and "cuda:0 cannot run here" in err.value.message
    assert not list(tmp_path.glob("*.json"))
    # The node was handed back: the next fleet gets it (a node still held would never be placed;
    # the bound is generous because a loaded 2-core machine can take tens of seconds to place).
    again = run_fleet(request(mlp_path, tmp_path, ["small"], batches=(1,), placement_timeout_s=120))
    assert again.groups[0].status == "done"


class KillAfterFirstCell(Progress):
    """Loses the node (its raylet and workers killed) as soon as the group's first cell is back."""

    def __init__(self, node) -> None:
        self.node = node
        self.killed = False

    def finished(self, cell) -> None:
        if not self.killed:
            self.killed = True
            kill_node(self.node)


def test_a_killed_node_fails_only_its_group_and_resume_finishes_it(cluster, mlp_path, tmp_path):
    c, nodes = cluster
    killer = KillAfterFirstCell(nodes["doomed"])
    req = request(mlp_path, tmp_path, ["small", "doomed"], batches=(1, 2, 4))
    result = run_fleet(req, progress_for=lambda g: killer if g == "doomed" else Progress())
    assert killer.killed
    by_name = {g.name: g for g in result.groups}
    assert by_name["small"].status == "done" and by_name["small"].cells_measured == 3
    doomed = by_name["doomed"]
    assert doomed.status == "incomplete" and doomed.cells_measured == 1
    partial = load_report(tmp_path / doomed.report)
    first, *rest = partial.cells
    assert first.status in ("ok", "unstable") and first.result is not None
    assert [c.status for c in rest] == ["failed", "failed"]
    assert all(c.reason.startswith("node lost: ") for c in rest)
    assert "doomed" in rest[0].reason
    # The ranking still holds both groups: the doomed one with the cell that came back.
    assert {r.label for r in result.ranking.rows} == {"small", "doomed"}
    c.remove_node(nodes["doomed"], allow_graceful=False)

    # A new node joins the group; --resume measures the failed cells there, keeps the first.
    fresh = add_group_node(c, "doomed")
    small_before = (tmp_path / by_name["small"].report).read_text()
    resumed = resume_fleet(tmp_path)
    after = {g.name: g for g in resumed.groups}
    assert after["doomed"].status == "done" and after["doomed"].cells_measured == 3
    assert after["small"].status == "done"
    assert (tmp_path / by_name["small"].report).read_text() == small_before  # untouched
    report = load_report(tmp_path / doomed.report)
    assert report.cells[0] == first
    assert report.host.ray_node_id == partial.host.ray_node_id
    for cell in report.cells[1:]:
        assert cell.status in ("ok", "unstable")
        notes = [w for w in cell.warnings if w.kind == "ray-node"]
        assert notes and fresh.node_id[:12] in notes[0].text
    assert report.recommendation is not None and report.recommendation.winner


class AbortAfterFirstCell(Progress):
    """Sets the fleet's abort event (what Ctrl-C does) when the group's first cell is back."""

    def __init__(self, abort: threading.Event) -> None:
        self.abort = abort

    def finished(self, cell) -> None:
        self.abort.set()


def test_ctrl_c_stops_the_nodes_saves_what_came_back_and_resume_finishes(
    cluster, mlp_path, tmp_path
):
    abort = threading.Event()
    req = request(mlp_path, tmp_path, ["large"], batches=(1, 2, 4))
    with pytest.raises(Interrupted) as err:
        run_fleet(req, progress_for=lambda g: AbortAfterFirstCell(abort), abort=abort)
    assert "--resume" in err.value.hint and str(tmp_path) in err.value.hint
    (path,) = [p for p in tmp_path.glob("*.json") if p.name != MANIFEST]
    partial = load_report(path)
    statuses = [c.status for c in partial.cells]
    assert statuses[0] in ("ok", "unstable") and statuses[1:] == ["pending", "pending"]

    # The node's CPU is free again: nothing of the fleet runs there any more.
    @ray.remote(num_cpus=1, label_selector={"ray.io/node-group": "large"})
    def free() -> bool:
        return True

    assert ray.get(free.remote(), timeout=60)
    resumed = resume_fleet(tmp_path)
    assert [g.status for g in resumed.groups] == ["done"]
    report = load_report(path)
    kept, before = report.cells[0].result, partial.cells[0].result
    # The cell that came back is kept as measured (the resumed report prices it too).
    assert (kept.requests, kept.latency_ms) == (before.requests, before.latency_ms)
    assert all(c.status in ("ok", "unstable") for c in report.cells)


class KillPrimaryAfterFirstCell(Progress):
    """Loses whichever node measured the group's first cell, once it is back."""

    def __init__(self, nodes: list, tmp_path: Path) -> None:
        self.nodes, self.tmp_path, self.killed = nodes, tmp_path, None

    def finished(self, cell) -> None:
        if self.killed is None:
            (path,) = [p for p in self.tmp_path.glob("*.json") if p.name != MANIFEST]
            host = load_report(path).host.ray_node_id
            self.killed = next(n for n in self.nodes if n.node_id == host)
            kill_node(self.killed)


def measured_on(report) -> list[str]:
    """The node each cell was measured on: the host node, or the one its ray-node note names."""
    out = []
    for cell in report.cells:
        notes = [w.text for w in cell.warnings if w.kind == "ray-node"]
        out.append(notes[0].split()[3] if notes else report.host.ray_node_id[:12])
    return out


def test_a_groups_nodes_share_its_cells_and_a_lost_nodes_cells_move_to_the_other(
    cluster, mlp_path, tmp_path
):
    c, _ = cluster
    pair = [add_group_node(c, "pair"), add_group_node(c, "pair")]
    ids = {n.node_id[:12] for n in pair}
    shared = run_fleet(request(mlp_path, tmp_path / "shared", ["pair"], batches=(1, 2, 4, 8)))
    (group,) = shared.groups
    assert group.status == "done" and set(group.nodes) == {n.node_id for n in pair}
    report = load_report(tmp_path / "shared" / group.report)
    # Two nodes, two cells at a time: each node measured some of the group's cells.
    assert set(measured_on(report)) == ids

    killer = KillPrimaryAfterFirstCell(pair, tmp_path / "lost")
    req = request(mlp_path, tmp_path / "lost", ["pair"], batches=(1, 2, 4))
    (group,) = run_fleet(req, progress_for=lambda g: killer).groups
    assert group.status == "done" and group.cells_measured == 3
    (survivor,) = [n for n in pair if n is not killer.killed]
    report = load_report(tmp_path / "lost" / group.report)
    assert report.host.ray_node_id == killer.killed.node_id
    where = measured_on(report)
    assert survivor.node_id[:12] in where and set(where) <= ids
    # After the loss, every cell went to the survivor: at most the first came from the host.
    assert where.count(killer.killed.node_id[:12]) <= 1
    c.remove_node(killer.killed, allow_graceful=False)


def test_ray_sets_omp_threads_to_the_nodes_cpus_and_onnxruntime_ignores_it(cluster, mlp_path):
    @ray.remote(num_cpus=1, label_selector={"ray.io/node-group": "small"})
    def omp() -> str | None:
        return os.environ.get("OMP_NUM_THREADS")

    assert ray.get(omp.remote(), timeout=60) == "1"
    # onnxruntime's pools follow intra_op_num_threads, whatever OMP_NUM_THREADS says.
    counts = {}
    for value in ("1", "7", None):
        env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
        if value is not None:
            env["OMP_NUM_THREADS"] = value
        out = subprocess.run(
            [sys.executable, "-c", THREAD_COUNT, str(mlp_path)],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=True,
        )
        counts[value] = int(out.stdout.strip())
    assert counts["1"] == counts["7"] == counts[None] >= 2, counts


# The threads onnxruntime's session adds (numpy's OpenBLAS, which does read OMP_NUM_THREADS,
# has made its own before the count starts).
THREAD_COUNT = """
import sys, numpy as np, onnxruntime as ort, psutil
np.ones((64, 64)) @ np.ones((64, 64))
before = psutil.Process().num_threads()
so = ort.SessionOptions()
so.intra_op_num_threads = 3
so.inter_op_num_threads = 1
s = ort.InferenceSession(sys.argv[1], so, providers=["CPUExecutionProvider"])
s.run(None, {s.get_inputs()[0].name: np.zeros((4, 64), np.float32)})
print(psutil.Process().num_threads() - before)
"""


def test_groups_are_parsed_and_checked():
    assert parse_groups(["cpu=aws-c7i-2xlarge", " gpu = aws-g6-xlarge"]) == (
        GroupSpec("cpu", "aws-c7i-2xlarge"),
        GroupSpec("gpu", "aws-g6-xlarge"),
    )
    for bad in (["cpu"], ["=p"], ["cpu="], ["a=p", "a=q"], []):
        with pytest.raises(BadInput):
            parse_groups(bad)


NO_RAY = """
import sys
sys.modules["ray"] = None  # as if Ray were not installed
from benchbox.errors import BadInput, GateFailed, Interrupted, NothingMeasured
from benchbox.sweep import fleet
try:
    fleet.require_ray()
except BadInput as exc:
    print(exc.message, "|", exc.hint)
"""


def test_without_ray_the_fleet_says_what_to_install():
    out = subprocess.run(
        [sys.executable, "-c", NO_RAY], capture_output=True, text=True, timeout=120, check=True
    )
    assert "needs Ray" in out.stdout and "pip install 'benchbox[ray]'" in out.stdout


def outcome(name: str, status: str, measured: int, error: str | None = None) -> GroupOutcome:
    return GroupOutcome(name, "p", f"{name}.json", ("n1",), status, measured, 3, error)


def test_the_fleet_exits_by_what_its_groups_did(tmp_path):
    def result(*groups: GroupOutcome) -> FleetResult:
        return FleetResult(str(tmp_path), str(tmp_path / MANIFEST), groups, None)

    fleet_gate(result(outcome("a", "done", 3), outcome("b", "done", 2)))
    with pytest.raises(GateFailed) as err:
        fleet_gate(result(outcome("a", "done", 3), outcome("b", "incomplete", 1, "node lost")))
    assert "b (incomplete)" in err.value.message and "node lost" in err.value.message
    assert f"--resume {tmp_path}" in err.value.hint
    with pytest.raises(NothingMeasured) as err:
        fleet_gate(result(outcome("a", "failed", 0, "boom")))
    assert "a: boom" in err.value.hint


def test_a_new_fleet_never_writes_over_another(tmp_path):
    assert fleet_out_dir(str(tmp_path)) == str(tmp_path)
    assert fleet_out_dir(None).startswith("reports/fleet-")
    (tmp_path / MANIFEST).write_text("{}")
    with pytest.raises(BadInput) as err:
        fleet_out_dir(str(tmp_path))
    assert "--resume" in err.value.hint


def fleet_cli(*args: str, address: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "benchbox", "fleet", *args, "--ray", address],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


CLI_QUICK = ["--duration", "0.3s", "--warmup", "0.1s", "--window", "0.1s", "--search", "grid"]


def test_the_command_runs_a_fleet_through_ray_client_and_prints_a_json_summary(
    ray_client, mlp_path, tmp_path
):
    out = tmp_path / "fleet"
    p = fleet_cli(
        str(mlp_path),
        "--group",
        "small=aws-c7i-2xlarge",
        "--group",
        "large=aws-m7i-4xlarge",
        "--batch",
        "1",
        "--concurrency",
        "1",
        "--threads",
        "1",
        "--latency-target",
        TARGET,
        "--out",
        str(out),
        *CLI_QUICK,
        "--json",
        address=ray_client,
    )
    assert p.returncode == 0, p.stderr
    summary = json.loads(p.stdout)  # stdout holds the JSON and nothing else
    assert [g["name"] for g in summary["groups"]] == ["small", "large"]
    for g in summary["groups"]:
        assert g["status"] == "done" and (out / g["report"]).is_file()
    rows = summary["ranking"]["rows"]
    assert {r["label"] for r in rows} == {"small", "large"}
    assert rows[0]["cheapest"] and rows[0]["usd_per_million"] <= rows[1]["usd_per_million"]
    assert summary["ranking"]["target"] == TARGET


def test_the_command_names_a_missing_group_in_one_line(cluster, mlp_path, tmp_path):
    c, _ = cluster
    p = fleet_cli(
        str(mlp_path),
        "--group",
        "tpu=aws-p5-48xlarge",
        "--placement-timeout",
        "1s",
        "--out",
        str(tmp_path),
        address=c.address,
    )
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert lines[0].startswith("error: no node of group 'tpu'") and "node-group=small" in lines[0]
    assert "Traceback" not in p.stderr


def test_the_command_fails_at_once_when_nothing_answers_at_the_address(tmp_path):
    for address in (f"127.0.0.1:{free_port()}", f"ray://127.0.0.1:{free_port()}"):
        group = ["--group", "a=aws-c7i-2xlarge"]
        p = fleet_cli("mlp", *group, "--out", str(tmp_path), address=address)
        assert p.returncode == 2, p.stderr
        assert f"nothing answers at the Ray address {address}" in p.stderr.splitlines()[0]


SILENT_RAY = """
import json, socket, sys
from benchbox.errors import BadInput
from benchbox.measure.cell import MeasureSettings
from benchbox.sweep import SweepRequest
from benchbox.sweep.fleet import FleetRequest, GroupSpec, run_fleet
from benchbox.sweep.plan import SweepSpec

silent = socket.create_server(("127.0.0.1", 0))  # accepts TCP, never speaks Ray
port = silent.getsockname()[1]
errors = []
for address in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}"):
    sweep = SweepRequest(
        model_path=sys.argv[1], spec=SweepSpec(), settings=MeasureSettings(), out_dir=sys.argv[2]
    )
    req = FleetRequest(
        sweep=sweep, groups=(GroupSpec("a", "aws-c7i-2xlarge"),), address=address,
        connect_timeout_s=2.0,
    )
    try:
        run_fleet(req)
    except BadInput as exc:
        errors.append([address, exc.message])
print(json.dumps(errors))
"""


def test_a_connection_that_never_completes_is_bounded_and_names_both_addresses(mlp_path, tmp_path):
    # Nothing here is connected to Ray (a fresh process): ray.init itself must be bounded.
    done = subprocess.run(
        [sys.executable, "-c", SILENT_RAY, str(mlp_path), str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (gcs, gcs_message), (client, client_message) = json.loads(done.stdout.splitlines()[-1])
    assert f"the Ray cluster at {gcs!r} did not accept a connection within 2s" in gcs_message
    assert "(Ray tried " in gcs_message and gcs_message.endswith(gcs.rpartition(":")[2] + ")")
    assert f"within 2s (Ray tried {client})" in client_message
    assert "\n" not in gcs_message + client_message
    assert not list(tmp_path.glob("*.json"))


NO_RAY_CLI = """
import sys
sys.modules["ray"] = None  # as if Ray were not installed
sys.argv = ["benchbox", "fleet", "mlp", "--group", "cpu=aws-c7i-2xlarge"]
from benchbox.cli import main
main()
"""


def test_the_command_without_ray_says_what_to_install(tmp_path):
    p = subprocess.run(
        [sys.executable, "-c", NO_RAY_CLI],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert p.returncode == 2
    assert "pip install 'benchbox[ray]'" in p.stderr and "Traceback" not in p.stderr


# Two fleet commands, a Ctrl-C and a resume, each placing on the cluster: about 60 s quiet, and
# over the suite's 300 s bound beside two busy loops (it timed out there once, mid-resume).
@pytest.mark.timeout(900)
def test_ctrl_c_on_the_command_saves_the_partial_reports_and_resume_finishes(
    cluster, mlp_path, tmp_path
):
    c, _ = cluster
    out = tmp_path / "fleet"
    args = [
        str(mlp_path),
        "--group",
        "small=aws-c7i-2xlarge",
        "--batch",
        "1,2,4,8",
        "--concurrency",
        "1",
        "--threads",
        "1",
        "--out",
        str(out),
        *CLI_QUICK,
        "--ray",
        c.address,
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchbox", "fleet", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and measured_cells(out) < 1:
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert f"--resume {out}" in err
    assert 1 <= measured_cells(out) < 4
    p = fleet_cli("--resume", str(out), address=c.address)
    assert p.returncode == 0, p.stderr
    assert measured_cells(out) == 4


def measured_cells(folder: Path) -> int:
    """Cells measured so far in the fleet's report (0 while it is not written yet)."""
    for path in folder.glob("*.json"):
        if path.name == MANIFEST:
            continue
        try:
            report = load_report(path)
        except BadInput:  # not written yet
            return 0
        return sum(c.status in ("ok", "unstable") for c in report.cells)
    return 0
