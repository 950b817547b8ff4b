"""benchbox against real servers: client overhead, generator ceiling, open-loop fidelity, and
the in-process prediction verified on PyTriton. Prints every figure; asserts nothing.

    python benchmarks/remote.py [--rounds 3] [--seconds 4] [--skip PART,...] [--baseline DIR]

Parts (alternating rounds, medians quoted; the machine may be shared, so figures are noisy):

1. overhead: at concurrency 1 on the same PyTriton server and model (the MLP, binary tensors),
   benchbox's closed-loop p50 against tritonclient's synchronous HTTP client's (run in the
   PyTriton venv, which ships tritonclient[http]). Goal: ratio <= 1.05.
2. ceiling: the highest rate benchbox reaches with one generator process against an identity
   model (JSON bodies) on loopback, beside `wrk` (apt-get install wrk) posting the same JSON
   body with the same connection count, in the same run; with benchbox's busy share, which says
   how close one process was to its own limit (rate / busy share extrapolates it).
3. fidelity: the server's peak (closed loop, concurrency 8), then open-loop Poisson at 50% and
   80% of it: benchbox's issue-delay p99 (the generator's own lateness). Goal: < 0.5 ms at 50%.
4. clients: the candidate client paths of issue 26 (benchmarks/fast_oip.py: aiohttp on asyncio
   and on uvloop, httpx, a bare asyncio.Protocol with pre-serialized bytes on both loops,
   benchbox's own generator with 1 and 2 processes) beside wrk and hey, all closed loop with the
   same connection count and JSON body, against a tiny uvicorn+httptools+uvloop OIP server
   pinned to core 0 (clients pinned to core 1). Per candidate: requests/s, its CPU busy share,
   and requests per CPU-second (its rate per core), each over wrk's. gRPC is not a candidate
   here: wrk and hey speak no gRPC, and a Python gRPC server would be the bottleneck.
5. auto: `--generators auto` beside fixed counts 1 and 2 on the fast server (closed loop,
   c=16, JSON; the generators unpinned): each one's rate, and the count auto chose. Goal: auto
   reaches >= 0.9 of the best fixed count's rate.
6. prediction: an in-process sweep of the demo model with dynamic batching recommends a cell;
   PyTriton is started from benchbox's Triton export of it (max_batch_size, delay, preferred
   sizes, instances, threads) and `verify` drives it with the cell's load; prints the gap and
   what the server's statistics attribute it to.

The servers come from tests/servers (their venvs are built on first use, ~1 min each).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import onnx
from onnx import TensorProto, helper

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from servers import venvs  # noqa: E402
from servers.process import _ready, free_ports, serve  # noqa: E402

from benchbox import model as model_mod  # noqa: E402
from benchbox import zoo  # noqa: E402
from benchbox.export.triton import triton_config  # noqa: E402
from benchbox.measure.cell import MeasureSettings  # noqa: E402
from benchbox.parse import LatencyTarget  # noqa: E402
from benchbox.remote import session as remote  # noqa: E402
from benchbox.report import verify_view  # noqa: E402
from benchbox.schema import Cell, Load, ServingConfig, cell_id, replace  # noqa: E402
from benchbox.store import load_report  # noqa: E402
from benchbox.verify import verify  # noqa: E402

TRITONCLIENT_LOOP = r"""
import json, sys, time
import numpy as np
import tritonclient.http as http
url, model, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
x = np.random.default_rng(0).standard_normal((1, 64)).astype(np.float32)
client = http.InferenceServerClient(url)
inp = http.InferInput("x", list(x.shape), "FP32")
inp.set_data_from_numpy(x, binary_data=True)
out = [http.InferRequestedOutput("logits", binary_data=True)]
for _ in range(50):
    client.infer(model, [inp], outputs=out)
lat = []
end = time.monotonic() + seconds
while time.monotonic() < end:
    t0 = time.perf_counter_ns()
    client.infer(model, [inp], outputs=out)
    lat.append((time.perf_counter_ns() - t0) / 1e6)
lat.sort()
print(json.dumps({"p50": lat[len(lat) // 2], "n": len(lat)}))
"""

WRK_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = io.open("{body}", "rb"):read("*a")
"""


def cell(load: Load, batch: int = 1) -> Cell:
    config = ServingConfig(device="remote", batch_size=batch)
    return Cell(cell_id(config, load), config, load)


def measure(session, load: Load, seconds: float, generators: int | None = 1) -> Cell:
    settings = MeasureSettings(warmup_s=1.0, duration_s=seconds)
    done = remote.measure_cell(session, cell(load), settings, generators)
    if done.result is None:
        raise SystemExit(f"{done.id} {done.status}: {done.reason}")
    return done


def med(values: list[float]) -> float:
    return statistics.median(values)


def identity_model(folder: pathlib.Path) -> pathlib.Path:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "identity", [x], [y])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", zoo.OPSET)])
    m.ir_version = zoo.IR_VERSION
    path = folder / "identity.onnx"
    onnx.save(m, path)
    return path


# ---------------------------------------------------------------- parts


def overhead(server, rounds: int, seconds: float) -> None:
    session = remote.connect(server.http("mlp"))
    python = venvs.python_of("pytriton")
    ours, theirs = [], []
    for _ in range(rounds):
        ours.append(measure(session, Load("closed", 1), seconds).result.latency_ms.p50)
        out = subprocess.run(
            [str(python), "-c", TRITONCLIENT_LOOP, f"127.0.0.1:{server.http_port}", "mlp",
             str(seconds)],
            capture_output=True, text=True, check=True, env=venvs.server_env("pytriton"),
        )  # fmt: skip
        theirs.append(json.loads(out.stdout.strip().splitlines()[-1])["p50"])
    a, b = med(ours), med(theirs)
    pairs = sorted(x / y for x, y in zip(ours, theirs, strict=True))  # each round's own ratio
    print(f"[overhead] c=1 p50, {rounds} alternating rounds of {seconds:g}s (medians)")
    print(f"  benchbox (http1, binary)        {a:.3f} ms   rounds {[round(x, 3) for x in ours]}")
    print(f"  tritonclient sync HTTP          {b:.3f} ms   rounds {[round(x, 3) for x in theirs]}")
    print(f"  ratio benchbox / tritonclient   {a / b:.3f}   (goal <= 1.05)")
    print(f"  per-round ratios: median {med(pairs):.3f}, range {pairs[0]:.3f}-{pairs[-1]:.3f}")


def ceiling(tmp: pathlib.Path, rounds: int, seconds: float, connections: int = 16) -> None:
    wrk = shutil.which("wrk")
    path = identity_model(tmp)
    args = [str(path), "--name", "mlp", "--max-batch", "64", "--instances", "2"]
    with serve("pytriton", "pytriton_server.py", args, tmp, "/v2/models/mlp/ready") as server:
        session = replace(remote.connect(server.http("mlp")), wire="json")
        feeds = model_mod.synthesize_inputs(session.model, 1, pool_size=1)[0]
        body = tmp / "body.json"
        body.write_bytes(remote.prepare(session, [feeds]).bodies[0])
        lua = tmp / "post.lua"
        lua.write_text(WRK_LUA.format(body=body))
        ours, busy, theirs = [], [], []
        for _ in range(rounds):
            done = measure(session, Load("closed", connections), seconds)
            ours.append(done.result.requests_per_s)
            busy.append(done.result.generator.busy_share)
            if wrk:
                out = subprocess.run(
                    [wrk, "-t1", f"-c{connections}", f"-d{seconds:g}s", "-s", str(lua),
                     server.http("mlp") + "/infer"],
                    capture_output=True, text=True, check=True,
                )  # fmt: skip
                theirs.append(float(re.search(r"Requests/sec:\s+([\d.]+)", out.stdout)[1]))
    a = med(ours)
    print(f"[ceiling] identity model on PyTriton, JSON, {connections} connections, 1 process")
    print(f"  benchbox   {a:,.0f} requests/s, busy {med(busy):.0%} "
          f"(=> one process tops out near {a / max(med(busy), 1e-9):,.0f}/s)")  # fmt: skip
    if theirs:
        b = med(theirs)
        print(f"  wrk        {b:,.0f} requests/s")
        print(f"  ratio benchbox / wrk {a / b:.2f} (1.0: the server, not the generator, limits)")
    else:
        print("  wrk not installed (apt-get install -y wrk): no comparison")


def fidelity(server, rounds: int, seconds: float) -> None:
    session = remote.connect(server.http("mlp"))
    peak = med(
        [measure(session, Load("closed", 8), seconds).result.requests_per_s for _ in range(2)]
    )
    print(f"[fidelity] server peak (closed, c=8): {peak:,.0f} requests/s")
    for share in (0.5, 0.8):
        delays, late = [], []
        for _ in range(rounds):
            load = Load("open", 64, round(peak * share), "poisson")
            r = measure(session, load, seconds).result
            delays.append(r.issue_delay_ms.p99)
            late.append(r.latency_ms.p99)
        print(
            f"  open at {share:.0%} ({peak * share:,.0f}/s): issue delay p99 {med(delays):.3f} ms"
            f" (rounds {[round(d, 3) for d in delays]}), latency p99 {med(late):.2f} ms"
            + ("   goal < 0.5 ms" if share == 0.5 else "")
        )


FAST = ROOT / "benchmarks" / "fast_oip.py"
CANDIDATES = ("aiohttp", "aiohttp-uvloop", "httpx", "protocol", "protocol-uvloop", "llhttp",
              "llhttp-uvloop", "benchbox", "benchbox-uvloop", "benchbox-2")  # fmt: skip


def _peer(cmd: list[str], pattern: str) -> tuple[float, float]:
    """(requests/s, CPU seconds) of a native load tool, its CPU from the children's rusage."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=120).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return float(re.search(pattern, out)[1]), cpu


def _candidate(name: str, url: str, body: pathlib.Path, c: int, seconds: float) -> tuple:
    cmd = [sys.executable, str(FAST), "client", name, url, str(body), str(c), f"{seconds:g}", "1"]
    env = dict(os.environ)
    if name.endswith("@base"):  # the baseline checkout's benchbox, not this one
        env["PYTHONPATH"] = os.environ["BENCHBOX_BASELINE"]
    else:
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    out = subprocess.run(
        cmd, capture_output=True, text=True, check=True, timeout=120, env=env
    ).stdout
    r = json.loads(out.strip().splitlines()[-1])
    return r["requests"] / r["seconds"], r["cpu_s"]


def clients(tmp: pathlib.Path, rounds: int, seconds: float, connections: int = 16) -> None:
    server, model_url = _fast_server()
    try:
        url = model_url + "/infer"
        session = replace(remote.connect(model_url), wire="json")
        feeds = model_mod.synthesize_inputs(session.model, 1, pool_size=1)[0]
        body = tmp / "fast-body.json"
        body.write_bytes(remote.prepare(session, [feeds]).bodies[0])
        lua = tmp / "fast-post.lua"
        lua.write_text(WRK_LUA.format(body=body))
        peers = {
            "wrk": (["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s",
                     "-s", str(lua), url], r"Requests/sec:\s+([\d.]+)"),
            "hey": (["taskset", "-c", "1", "hey", "-z", f"{seconds:g}s", "-c", str(connections),
                     "-m", "POST", "-T", "application/json", "-D", str(body), url],
                    r"Requests/sec:\s+([\d.]+)"),
        }  # fmt: skip
        peers = {k: v for k, v in peers.items() if shutil.which(k)}
        names = list(peers) + list(CANDIDATES)
        if os.environ.get("BENCHBOX_BASELINE"):
            names.append("benchbox@base")
        figures: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
        for r in range(rounds):  # alternating: each round starts one name later
            for name in names[r % len(names) :] + names[: r % len(names)]:
                if name in peers:
                    figures[name].append(_peer(*peers[name]))
                else:
                    figures[name].append(_candidate(name, url, body, connections, seconds))
    finally:
        server.terminate()
        server.wait(10)
    _print_clients(figures, rounds, seconds, connections)


def _fast_server() -> tuple[subprocess.Popen, str]:
    (port,) = free_ports(1)
    server = subprocess.Popen([sys.executable, str(FAST), "serve", str(port), "0"],
                              start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 30
    while not _ready(f"http://127.0.0.1:{port}/v2") and time.monotonic() < deadline:
        time.sleep(0.2)
    return server, f"http://127.0.0.1:{port}/v2/models/m"


def auto_generators(rounds: int, seconds: float, connections: int = 16) -> None:
    server, url = _fast_server()
    try:
        session = replace(remote.connect(url), wire="json")
        counts: dict[str, list[float]] = {"1": [], "2": [], "auto": []}
        chosen = []
        for r in range(rounds):
            names = list(counts)[r % 3 :] + list(counts)[: r % 3]
            for name in names:
                n = None if name == "auto" else int(name)
                done = measure(session, Load("closed", connections), seconds, n)
                counts[name].append(done.result.requests_per_s)
                if n is None:
                    chosen.append(done.result.generator.processes)
    finally:
        server.terminate()
        server.wait(10)
    best = max(med(v) for k, v in counts.items() if k != "auto")
    print(f"[auto] fast OIP server on core 0, closed c={connections}, JSON, "
          f"{rounds} alternating rounds of {seconds:g}s (medians)")  # fmt: skip
    for name, v in counts.items():
        rates = [round(x) for x in v]
        print(f"  --generators {name:<5} {med(v):>8,.0f} requests/s   rounds {rates}")
    ratio = med(counts["auto"]) / best
    print(f"  auto chose {chosen}; auto / best fixed {ratio:.2f} (goal >= 0.9)")


def _print_clients(figures: dict, rounds: int, seconds: float, c: int) -> None:
    print(f"[clients] fast OIP server (uvicorn+httptools+uvloop, core 0), client on core 1, "
          f"closed loop c={c}, JSON, {rounds} alternating rounds of {seconds:g}s")  # fmt: skip
    rate = {n: med([f[0] for f in v]) for n, v in figures.items()}
    per_cpu = {n: med([f[0] * seconds / max(f[1], 1e-9) for f in v]) for n, v in figures.items()}
    base = "wrk" if "wrk" in rate else next(iter(rate))
    print(f"  {'client':<16} {'req/s':>8} {'busy':>5} {'req/CPU-s':>10} {'rate/' + base:>9} "
          f"{'per-core/' + base:>13}   rounds req/s")  # fmt: skip
    for n, v in figures.items():
        busy = med([f[1] / seconds for f in v])
        print(f"  {n:<16} {rate[n]:>8,.0f} {busy:>5.0%} {per_cpu[n]:>10,.0f} "
              f"{rate[n] / rate[base]:>9.2f} {per_cpu[n] / per_cpu[base]:>13.2f}   "
              f"{[round(f[0]) for f in v]}")  # fmt: skip


def prediction(tmp: pathlib.Path, seconds: float) -> None:
    demo = zoo.path_for(zoo.DEMO_MODEL)
    out = tmp / "reports"
    cmd = [sys.executable, "-m", "benchbox", "sweep", str(demo), "--device", "cpu",
           "--threads", "1", "--instances", "1", "--load", "open", "--rate", "40",
           "--dynamic-batching", "max_batch=4,delay=2ms,preferred=2|4",
           "--latency-target", "p99=500ms", "--duration", f"{seconds:g}s",
           "--out", str(out)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if done.returncode not in (0, 1):  # 1: the cell missed the loose target on a busy machine
        raise SystemExit(f"the in-process sweep failed:\n{done.stderr}")
    (path,) = out.glob("*.json")
    report = load_report(path)
    wanted = report.recommendation.winner or report.cells[0].id
    winner = next(c for c in report.cells if c.id == wanted)
    pbtxt = triton_config(report, winner, "demo", demo)
    max_batch = int(re.search(r"max_batch_size: (\d+)", pbtxt)[1])
    delay_us = int(re.search(r"max_queue_delay_microseconds: (\d+)", pbtxt)[1])
    pref = re.search(r"preferred_batch_size: \[ ([\d, ]+) \]", pbtxt)
    instances = int(re.search(r"count: (\d+)", pbtxt)[1])
    threads = int(re.search(r'"intra_op_thread_count" value: \{ string_value: "(\d+)"', pbtxt)[1])
    args = [str(demo), "--name", "demo", "--max-batch", str(max_batch), "--delay-us",
            str(delay_us), "--instances", str(instances), "--threads", str(threads),
            "--open-statistics"]  # fmt: skip
    if pref:
        args += ["--preferred", pref[1].replace(" ", "")]
    print(f"[prediction] {zoo.DEMO_MODEL}, cell {winner.id}; PyTriton from the Triton export:")
    print(f"  max_batch_size {max_batch}, delay {delay_us} us, preferred "
          f"{pref[1] if pref else '-'}, instances {instances}, threads {threads}")  # fmt: skip
    ready = "/v2/models/demo/ready"
    with serve("pytriton", "pytriton_server.py", args, tmp, ready) as server:
        session = remote.connect(server.http("demo"))
        target = LatencyTarget("p99", report.recommendation.target_ms)
        settings = MeasureSettings(warmup_s=1.0, duration_s=seconds)
        v = verify(report, session, target, winner.id, settings)
    for line in verify_view.lines(v, session.statistics_reason):
        print("  " + line)
    r, s = winner.result, v.split
    if s is not None and r.compute_ms and r.queue_ms:
        served = v.measured_cell.result.latency_ms.mean
        mean_gap = served - r.latency_ms.mean
        print(f"  mean latency: in-process {r.latency_ms.mean:.2f} ms, PyTriton "
              f"{served:.2f} ms ({mean_gap:+.2f} ms), of which")  # fmt: skip
        print(f"    queue:   {s.queue_ms - r.queue_ms.mean:+.2f} ms "
              f"(server {s.queue_ms:.2f} vs emulated {r.queue_ms.mean:.2f})")  # fmt: skip
        emulated = r.compute_ms.mean
        print(f"    compute: {s.compute_ms - emulated:+.2f} ms (PyTriton's Python backend "
              f"around onnxruntime: {s.compute_ms:.2f} vs {emulated:.2f})")  # fmt: skip
        print(f"    HTTP + client (+ server request handling): {s.network_client_ms:.2f} ms")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--skip", default="", help="comma-separated parts to skip")
    p.add_argument("--baseline", help="another checkout whose generator `clients` also measures")
    a = p.parse_args()
    if a.baseline:
        os.environ["BENCHBOX_BASELINE"] = str(pathlib.Path(a.baseline).resolve())
    skip = set(filter(None, a.skip.split(",")))
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="benchbox-remote-"))
    mlp = zoo.path_for("mlp")
    args = [str(mlp), "--max-batch", "16", "--open-statistics"]
    if not {"overhead", "fidelity"} <= skip:
        with serve("pytriton", "pytriton_server.py", args, tmp, "/v2/models/mlp/ready") as server:
            if "overhead" not in skip:
                overhead(server, a.rounds, a.seconds)
            if "fidelity" not in skip:
                fidelity(server, a.rounds, a.seconds)
    if "ceiling" not in skip:
        ceiling(tmp, a.rounds, a.seconds)
    if "clients" not in skip:
        clients(tmp, a.rounds, a.seconds)
    if "auto" not in skip:
        auto_generators(a.rounds, a.seconds)
    if "prediction" not in skip:
        prediction(tmp, max(a.seconds, 5.0))


if __name__ == "__main__":
    main()
