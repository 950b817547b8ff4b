"""benchbox's dynamic-batching emulation against the real Triton batcher (PyTriton), same load.

One run measures, one after the other and under the same open-loop Poisson schedule (same rate,
same seed, so the same arrival times):

1. benchbox's emulation: `BatcherDriver` on onnxruntime sessions in this process;
2. PyTriton: a real `tritonserver` (bundled with the `nvidia-pytriton` package) serving the same
   onnxruntime model with the same session options, `max_batch_size`,
   `max_queue_delay_microseconds`, preferred sizes and instance count, loaded over its HTTP
   endpoint (localhost) by a Python open-loop client with enough threads to never hold a request
   back. The model returns the batch size it ran as an output, so each request knows the batch it
   was in, and the time its onnxruntime call took, to tell the model's own time from PyTriton's.

It prints p50/p99 of both and their ratio, the server-side split (queue, compute) of both, and
the batch-size distributions side by side (Triton's from the model's output and from its own
statistics endpoint).

PyTriton 0.7 needs numpy < 2 in the server's interpreter (its Python backend stub is built
against the numpy 1 ABI; with numpy 2 every output fails with "output tensor shape does not match
size"). benchbox itself runs on numpy 2, so the server runs in a subprocess with its own Python:

    python -m venv --system-site-packages ~/.cache/benchbox/pytriton-venv
    ~/.cache/benchbox/pytriton-venv/bin/pip install "numpy<2" nvidia-pytriton==0.7.0
    python benchmarks/vs_triton.py [--rate 120] [--seconds 10] [--max-batch 8] [--delay-us 2000]
        [--preferred 4,8] [--instances 1] [--threads 1] [--triton-python PATH]

The server's stub must load the running interpreter's libpython, not the system's (else it fails
with `'_thread.RLock' object has no attribute '_recursion_count'` or cannot import numpy), so the
server puts `sysconfig.get_config_var("LIBDIR")` first on LD_LIBRARY_PATH. Takes about a minute.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

MODEL_NAME = "bench"
BATCH_OUTPUT = "batch_size"
ORT_OUTPUT = "ort_ms"  # the batch's onnxruntime run time, as seen inside the server
DEFAULT_VENV_PYTHON = Path.home() / ".cache/benchbox/pytriton-venv/bin/python"


# ---------------------------------------------------------------- the server (own interpreter)


def serve(args: argparse.Namespace) -> None:
    """Run PyTriton with the model until stdin closes (run in the server's interpreter)."""
    import sysconfig

    libdir = sysconfig.get_config_var("LIBDIR")
    os.environ["LD_LIBRARY_PATH"] = f"{libdir}:{os.environ.get('LD_LIBRARY_PATH', '')}"
    import onnxruntime as ort
    from pytriton.decorators import batch
    from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
    from pytriton.triton import Triton, TritonConfig, TritonSecurityConfig

    def session() -> ort.InferenceSession:
        # The options benchbox.backends.onnxruntime.session_options sets for a serving config.
        so = ort.SessionOptions()
        so.intra_op_num_threads = args.threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        return ort.InferenceSession(args.model, so, providers=["CPUExecutionProvider"])

    sessions = [session() for _ in range(args.instances)]
    inp, out = sessions[0].get_inputs()[0], sessions[0].get_outputs()[0]

    def make_infer(sess: ort.InferenceSession):
        @batch
        def infer(**inputs):
            x = inputs[inp.name]
            t = time.perf_counter()
            y = sess.run([out.name], {inp.name: x})[0]
            ort_ms = (time.perf_counter() - t) * 1e3
            b = x.shape[0]
            return {
                out.name: y,
                BATCH_OUTPUT: np.full((b, 1), b, np.int32),
                ORT_OUTPUT: np.full((b, 1), ort_ms, np.float32),
            }

        return infer

    preferred = [int(p) for p in args.preferred.split(",")] if args.preferred else None
    config = TritonConfig(
        http_port=args.port, grpc_port=args.port + 1, metrics_port=args.port + 2, log_verbose=0
    )
    security = TritonSecurityConfig(access_token=args.token)  # guards the stats endpoint
    with Triton(config=config, security_config=security) as triton:
        triton.bind(
            model_name=MODEL_NAME,
            infer_func=[make_infer(s) for s in sessions],  # one model instance per function
            inputs=[Tensor(name=inp.name, dtype=np.float32, shape=tuple(inp.shape[1:]))],
            outputs=[
                Tensor(name=out.name, dtype=np.float32, shape=tuple(out.shape[1:])),
                Tensor(name=BATCH_OUTPUT, dtype=np.int32, shape=(1,)),
                Tensor(name=ORT_OUTPUT, dtype=np.float32, shape=(1,)),
            ],
            config=ModelConfig(
                max_batch_size=args.max_batch,
                batcher=DynamicBatcher(
                    max_queue_delay_microseconds=args.delay_us, preferred_batch_size=preferred
                ),
            ),
            strict=False,
        )
        triton.run()
        print("READY", flush=True)
        sys.stdin.read()  # the client closes stdin when it is done


# ---------------------------------------------------------------- the client (this interpreter)


def request_body(x: np.ndarray, input_name: str) -> tuple[bytes, dict[str, str]]:
    """A KServe v2 infer request with the tensor as binary data (Triton's binary extension)."""
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": input_name,
                    "shape": list(x.shape),
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": x.nbytes},
                }
            ],
            "outputs": [
                {"name": name, "parameters": {"binary_data": False}}
                for name in (BATCH_OUTPUT, ORT_OUTPUT)
            ],
        }
    ).encode()
    headers = {
        "Content-Type": "application/octet-stream",
        "Inference-Header-Content-Length": str(len(header)),
    }
    return header + np.ascontiguousarray(x, dtype=np.float32).tobytes(), headers


def get_json(port: int, path: str, token: str) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path, headers={"triton-access-token": token})
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    if resp.status != 200:
        raise RuntimeError(f"GET {path}: {resp.status} {body[:200]!r}")
    return json.loads(body)


def wait_ready(port: int, proc: subprocess.Popen, log: Path, timeout_s: float = 180.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the PyTriton server exited ({proc.returncode}); see {log}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", f"/v2/models/{MODEL_NAME}/ready")
            ok = conn.getresponse().status == 200
            conn.close()
            if ok:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the PyTriton server was not ready in {timeout_s:.0f}s; see {log}")


def http_open_loop(
    port: int,
    bodies: list[tuple[bytes, dict[str, str]]],
    offsets_ns: list[int],
    workers: int,
) -> dict[str, np.ndarray]:
    """Send requests at t0 + offsets over keep-alive connections; per-request records."""
    n = len(offsets_ns)
    intended = np.zeros(n, np.int64)
    sent = np.zeros(n, np.int64)
    end = np.zeros(n, np.int64)
    sizes = np.zeros(n, np.int64)
    ort_ms = np.zeros(n, np.float64)
    errors: list[str] = []
    counter = iter(range(n))
    lock = threading.Lock()
    t0 = time.perf_counter_ns() + 50_000_000

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        path = f"/v2/models/{MODEL_NAME}/infer"
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            t_int = t0 + offsets_ns[i]
            wait = (t_int - time.perf_counter_ns()) / 1e9
            if wait > 0:
                time.sleep(wait)
            body, headers = bodies[i % len(bodies)]
            t_send = time.perf_counter_ns()
            try:
                conn.request("POST", path, body, headers)
                resp = conn.getresponse()
                data = resp.read()
                t_end = time.perf_counter_ns()
                if resp.status != 200:
                    raise RuntimeError(f"{resp.status} {data[:200]!r}")
                head = resp.getheader("Inference-Header-Content-Length")
                doc = json.loads(data[: int(head)] if head else data)
                outs = {o["name"]: o["data"][0] for o in doc["outputs"]}
            except Exception as exc:  # keep going; report at the end
                errors.append(str(exc)[:200])
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                continue
            intended[i], sent[i], end[i] = t_int, t_send, t_end
            sizes[i], ort_ms[i] = outs[BATCH_OUTPUT], outs[ORT_OUTPUT]
        conn.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        print(f"  {len(errors)} HTTP requests failed, e.g. {errors[0]}")
    done = end > 0
    return {
        "intended": intended[done] - t0,
        "sent": sent[done] - t0,
        "latency": end[done] - intended[done],
        "batch": sizes[done],
        "ort_ms": ort_ms[done],
    }


def triton_split(before: dict, after: dict) -> dict[str, object]:
    """Server-side averages over the measured interval from two stats snapshots."""

    def stats(doc: dict) -> dict:
        return doc["model_stats"][0]

    b, a = stats(before), stats(after)
    out: dict[str, object] = {}
    for key in ("queue", "compute_input", "compute_infer", "compute_output"):
        count = a["inference_stats"][key]["count"] - b["inference_stats"][key]["count"]
        ns = a["inference_stats"][key]["ns"] - b["inference_stats"][key]["ns"]
        out[key] = ns / count / 1e6 if count else float("nan")
    old = {s["batch_size"]: s["compute_infer"]["count"] for s in b.get("batch_stats", [])}
    new = {s["batch_size"]: s["compute_infer"]["count"] for s in a.get("batch_stats", [])}
    out["batches"] = {k: v - old.get(k, 0) for k, v in new.items() if v - old.get(k, 0) > 0}
    return out


def batch_hist(sizes: np.ndarray) -> dict[int, int]:
    """Batches per size, from each request's batch size (a batch of b holds b requests)."""
    values, counts = np.unique(sizes, return_counts=True)
    return {int(b): int(round(c / b)) for b, c in zip(values, counts, strict=True) if b > 0}


def pct(a: np.ndarray, q: float) -> float:
    from benchbox.measure import stats

    return stats.percentile(np.sort(a), q)


def free_port() -> int:
    """A port with the two above it free too (HTTP, gRPC, metrics)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port < 65000 and all(_free(port + k) for k in (1, 2)):
            return port
    raise RuntimeError("no free ports")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=120.0, help="requests/s (Poisson)")
    ap.add_argument("--seconds", type=float, default=10.0, help="measured time of each side")
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--max-batch", type=int, default=8)
    ap.add_argument("--delay-us", type=int, default=2000)
    ap.add_argument("--preferred", default="", help="preferred batch sizes, e.g. 4,8")
    ap.add_argument("--instances", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads per instance")
    ap.add_argument("--model", default=None, help="ONNX file (default: the demo ResNet-18)")
    ap.add_argument("--clients", type=int, default=64, help="HTTP client threads")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--triton-python", default=None, help="interpreter with numpy<2 + pytriton")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--token", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.serve:
        serve(args)
        return

    from benchbox import model as model_mod
    from benchbox import zoo
    from benchbox.backends import open_instances
    from benchbox.load.batcher import BatcherDriver, batch_feeds
    from benchbox.load.open import schedule_offsets_ns
    from benchbox.measure import stats
    from benchbox.measure.cell import MeasureSettings, drive, summarize
    from benchbox.schema import DynamicBatching, ServingConfig

    args.model = args.model or str(zoo.path_for(zoo.DEMO_MODEL))
    info = model_mod.inspect_model(args.model)
    if len(info.inputs) != 1 or info.inputs[0].dtype != "float32":
        raise SystemExit("this comparison takes models with one float32 input")
    preferred = tuple(int(p) for p in args.preferred.split(",")) if args.preferred else ()
    db = DynamicBatching(args.max_batch, args.delay_us / 1000.0, preferred)
    config = ServingConfig(
        intra_op_threads=args.threads, instances=args.instances, dynamic_batching=db
    )
    pool = model_mod.synthesize_inputs(info, 1, pool_size=4, seed=args.seed)
    print(
        f"model {Path(args.model).name}, cpu, {args.instances} instance(s) x {args.threads} "
        f"thread(s); max_batch {db.max_batch}, delay {args.delay_us} us, preferred "
        f"{list(preferred) or 'none'}; Poisson {args.rate:g} req/s, {args.seconds:g}s measured "
        f"after {args.warmup:g}s warm-up, seed {args.seed}"
    )

    # 1. benchbox's emulation (scipy.stats loads on first use, about a second holding the GIL:
    # load it before the load starts, or the emulation's workers stall while it imports)
    stats.min_samples_for_ci(99.0, 0.95)
    instances = open_instances(args.model, config)
    driver = BatcherDriver(
        instances.runners,
        batch_feeds(pool, db.max_batch),
        args.rate,
        db,
        horizon_s=args.warmup + args.seconds + 2,
        seed=args.seed,
    )
    settings = MeasureSettings(warmup_s=args.warmup, duration_s=args.seconds)
    emu, _ = summarize(drive(driver, settings), settings)
    instances.close()

    # 2. PyTriton, same schedule (same seed), over HTTP
    python = args.triton_python or (
        str(DEFAULT_VENV_PYTHON) if DEFAULT_VENV_PYTHON.exists() else sys.executable
    )
    port = free_port()
    log = Path(tempfile.mkdtemp(prefix="benchbox-pytriton-")) / "server.log"
    token = secrets.token_urlsafe(16)
    cmd = [python, __file__, "--serve", "--port", str(port), "--model", args.model]
    cmd += ["--token", token]
    cmd += ["--max-batch", str(args.max_batch), "--delay-us", str(args.delay_us)]
    cmd += ["--instances", str(args.instances), "--threads", str(args.threads)]
    if args.preferred:
        cmd += ["--preferred", args.preferred]
    t_start = time.perf_counter()
    with open(log, "w") as log_file:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=log_file, stderr=subprocess.STDOUT, text=True
        )
        try:
            wait_ready(port, proc, log)
            print(f"PyTriton ({python}) ready in {time.perf_counter() - t_start:.1f}s; log {log}")
            name = info.inputs[0].name
            bodies = [request_body(p[name], name) for p in pool]
            count = int(args.rate * (args.warmup + args.seconds))
            offsets = schedule_offsets_ns(args.rate, count, "poisson", args.seed).tolist()
            warm = [o for o in offsets if o < args.warmup * 1e9]
            http_open_loop(port, bodies, warm, args.clients)  # the warm-up, same arrivals
            before = get_json(port, f"/v2/models/{MODEL_NAME}/stats", token)
            rest = [o - offsets[len(warm)] for o in offsets[len(warm) :]]
            tri = http_open_loop(port, bodies, rest, args.clients)
            after = get_json(port, f"/v2/models/{MODEL_NAME}/stats", token)
        finally:
            if proc.stdin:
                proc.stdin.close()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
    report(args, emu, tri, triton_split(before, after))


def report(args, emu, tri: dict[str, np.ndarray], split: dict) -> None:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\nload average at the end (1, 5, 15 min): {load} on {os.cpu_count()} cores")
    lat = tri["latency"] / 1e6
    late = (tri["sent"] - tri["intended"]) / 1e6
    t50, t99 = pct(lat, 50.0), pct(lat, 99.0)
    e50, e99 = emu.latency_ms.p50, emu.latency_ms.p99
    print(f"{'':30}{'emulation':>12}{'PyTriton':>12}{'ratio':>9}")
    print(f"{'requests measured':30}{emu.requests:>12}{len(lat):>12}")
    print(f"{'throughput (req/s)':30}{emu.throughput_ips:>12.1f}{len(lat) / args.seconds:>12.1f}")
    print(f"{'latency p50 (ms)':30}{e50:>12.2f}{t50:>12.2f}{t50 / e50:>9.2f}")
    print(f"{'latency p99 (ms)':30}{e99:>12.2f}{t99:>12.2f}{t99 / e99:>9.2f}")
    print(f"{'queue mean (ms, server side)':30}{emu.queue_ms.mean:>12.2f}{split['queue']:>12.2f}")
    compute = split["compute_input"] + split["compute_infer"] + split["compute_output"]
    print(f"{'compute mean (ms, server side)':30}{emu.compute_ms.mean:>12.2f}{compute:>12.2f}")
    print(f"{'  of which compute_infer':30}{'':>12}{split['compute_infer']:>12.2f}")
    ort = tri["ort_ms"]
    print(f"{'  of which onnxruntime run':30}{emu.compute_ms.mean:>12.2f}{np.mean(ort):>12.2f}")
    e_cp = f"{emu.compute_ms.p50:.2f} / {emu.compute_ms.p99:.2f}"
    t_cp = f"{pct(ort, 50.0):.2f} / {pct(ort, 99.0):.2f}"
    print(f"{'  onnxruntime p50 / p99 (ms)':30}{e_cp:>14}{t_cp:>16}")
    overhead = float(np.mean(lat)) - split["queue"] - compute
    print(f"{'client+HTTP+stub (mean ms)':30}{'0':>12}{overhead:>12.2f}")
    print(f"{'client send delay p99 (ms)':30}{'':>12}{pct(late, 99.0):>12.2f}")

    e_hist = dict(emu.batch_size_counts or {})
    t_hist = batch_hist(tri["batch"])
    s_hist = split["batches"]
    e_tot, t_tot, s_tot = sum(e_hist.values()), sum(t_hist.values()), sum(s_hist.values())
    print(f"\n{'batch size':>10}{'emulation':>18}{'PyTriton (output)':>20}{'Triton stats':>16}")
    for b in sorted(set(e_hist) | set(t_hist) | set(s_hist)):
        e, t, s = e_hist.get(b, 0), t_hist.get(b, 0), s_hist.get(b, 0)
        print(
            f"{b:>10}{e:>10} {e / max(e_tot, 1):>6.1%}{t:>12} {t / max(t_tot, 1):>6.1%}"
            f"{s:>9} {s / max(s_tot, 1):>6.1%}"
        )
    e_mean = sum(b * n for b, n in e_hist.items()) / max(e_tot, 1)
    t_mean = sum(b * n for b, n in t_hist.items()) / max(t_tot, 1)
    print(f"{'mean':>10}{e_mean:>17.2f}{t_mean:>19.2f}")


if __name__ == "__main__":
    main()
