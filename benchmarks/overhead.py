"""Faithfulness: `benchbox run`'s reported throughput against a bare loop of session.run calls.

Both use the same model, session options, batch, threads and concurrency, measured in the same
run, alternating (bare, benchbox, bare, benchbox, ...) so machine drift hits both alike; the
ratio is the median of the rounds' ratios. Goal: ratio >= 0.97 everywhere.

`--before DIR` also runs `benchbox run` from another checkout (e.g. the main branch) in each round,
for before/after ratios against the same bare loops.

    python benchmarks/overhead.py [--seconds 3] [--rounds 5] [--models mlp,resnet18] [--before DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import onnxruntime as ort

from benchbox import model as model_mod
from benchbox import zoo


def bare_loop_ips(path: str, batch: int, threads: int, concurrency: int, seconds: float) -> float:
    """Throughput of N plain threads calling session.run, counted over `seconds` after warm-up."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    info = model_mod.inspect_model(path)
    feeds = model_mod.synthesize_inputs(info, batch, pool_size=4)
    counts = [0] * concurrency
    state = {"measure": False, "stop": False}

    def worker(k: int) -> None:
        i = 0
        while not state["stop"]:
            sess.run(None, feeds[i % 4])
            i += 1
            if state["measure"]:
                counts[k] += 1

    threads_ = [threading.Thread(target=worker, args=(k,)) for k in range(concurrency)]
    for t in threads_:
        t.start()
    time.sleep(1.0)  # warm-up, as benchbox does
    state["measure"] = True
    t0 = time.perf_counter()
    time.sleep(seconds)
    state["measure"] = False
    elapsed = time.perf_counter() - t0
    state["stop"] = True
    for t in threads_:
        t.join()
    return sum(counts) * batch / elapsed


def benchbox_ips(
    path: str, batch: int, threads: int, concurrency: int, seconds: float, code: str | None = None
) -> float:
    """The throughput `benchbox run --json` reports for the same cell (from checkout `code`)."""
    env = dict(os.environ, PYTHONPATH=code) if code else None
    with tempfile.TemporaryDirectory() as out:
        p = subprocess.run(
            [sys.executable, "-m", "benchbox", "run", path, "--batch", str(batch),
             "--threads", str(threads), "--concurrency", str(concurrency),
             "--duration", f"{seconds}s", "--warmup", "1s", "--out", out, "--json"],
            capture_output=True, text=True, check=True, env=env,
        )  # fmt: skip
    return json.loads(p.stdout)["cells"][0]["result"]["throughput_ips"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--models", default="mlp,resnet18")
    ap.add_argument("--before", metavar="DIR", help="also run benchbox from this checkout")
    args = ap.parse_args()
    cases = [(m.strip(), {}, 1) for m in args.models.split(",") if m.strip()]
    print(f"{'model':10} {'conc':>4} {'bare inf/s':>12} {'benchbox inf/s':>15} {'ratio':>7}")
    print("(inf/s: medians over the rounds; ratio: median of the per-round ratios)")
    worst = np.inf
    for name, params, batch in cases:
        path = str(zoo.path_for(name, **params))
        for conc in (1, 2):
            bare, bench, before = [], [], []
            for r in range(args.rounds):
                steps = ["bare", "bench"] + (["before"] if args.before else [])
                for step in steps if r % 2 == 0 else steps[::-1]:
                    if step == "bare":
                        bare.append(bare_loop_ips(path, batch, 1, conc, args.seconds))
                    else:
                        code = args.before if step == "before" else None
                        ips = benchbox_ips(path, batch, 1, conc, args.seconds, code)
                        (before if step == "before" else bench).append(ips)
            b, x = statistics.median(bare), statistics.median(bench)
            # Each round's runs were back to back: the median of their ratios cancels drift.
            ratio = statistics.median(xi / bi for xi, bi in zip(bench, bare, strict=True))
            worst = min(worst, ratio)
            spread = (max(bench) - min(bench)) / x
            print(
                f"{name:10} {conc:>4} {b:>12,.0f} {x:>15,.0f} {ratio:>7.3f}  (spread {spread:.1%})"
            )
            if before:
                y = statistics.median(before)
                r_before = statistics.median(yi / bi for yi, bi in zip(before, bare, strict=True))
                print(f"{'  before':10} {conc:>4} {'':>12} {y:>15,.0f} {r_before:>7.3f}")
    print(f"worst ratio {worst:.3f} (goal >= 0.97)")


if __name__ == "__main__":
    main()
