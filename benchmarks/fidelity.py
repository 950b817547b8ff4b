"""Fidelity: benchbox's closed- and open-loop latency against a bare loop, on the demo CNN.

In one run, at concurrency 1:
- a bare loop timing each session.run with perf_counter_ns;
- `benchbox run` closed loop (p50/p90);
- `benchbox run --load open` at 30% and 80% of the measured capacity (p50/p90 and the send-delay
  p99 of the open-loop generator).
Goals: p50 within 5% of each other (closed, open at 30%, bare); open-loop issue delay p99 under
0.5 ms at 30% and 80% of capacity.

    python benchmarks/fidelity.py [--seconds 5]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort

from benchbox import model as model_mod
from benchbox import zoo
from benchbox.measure import stats


def bare(path: str, seconds: float) -> dict:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    feeds = model_mod.synthesize_inputs(model_mod.inspect_model(path), 1, pool_size=4)
    t_end = time.perf_counter() + 1.0
    i = 0
    while time.perf_counter() < t_end:
        sess.run(None, feeds[i % 4])
        i += 1
    lat = []
    t_end = time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        t0 = time.perf_counter_ns()
        sess.run(None, feeds[i % 4])
        lat.append(time.perf_counter_ns() - t0)
        i += 1
    a = np.sort(np.array(lat) / 1e6)
    return {"p50": stats.percentile(a, 50), "p90": stats.percentile(a, 90), "rps": len(a) / seconds}


def benchbox(path: str, seconds: float, *extra: str) -> dict:
    with tempfile.TemporaryDirectory() as out:
        p = subprocess.run(
            [sys.executable, "-m", "benchbox", "run", path, "--threads", "1", "--concurrency",
             "1", "--duration", f"{seconds}s", "--warmup", "1s", "--out", out, "--json", *extra],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
    r = json.loads(p.stdout)["cells"][0]["result"]
    return {
        "p50": r["latency_ms"]["p50"],
        "p90": r["latency_ms"]["p90"],
        "rps": r["requests_per_s"],
        "delay_p99": (r["issue_delay_ms"] or {}).get("p99"),
    }


def _median(results: list[dict]) -> dict:
    keys = results[0].keys()
    out = {}
    for k in keys:
        values = [r[k] for r in results if r[k] is not None]
        out[k] = float(np.median(values)) if values else None
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    path = str(zoo.path_for(zoo.DEMO_MODEL))
    # Rounds alternate the four measurements so the machine's drift hits them alike; each figure
    # is the median over the rounds.
    names = ["bare loop", "benchbox closed c=1", "open 30%", "open 80%"]
    runs: dict[str, list[dict]] = {n: [] for n in names}
    for _ in range(args.rounds):
        runs["bare loop"].append(bare(path, args.seconds))
        closed = benchbox(path, args.seconds)
        runs["benchbox closed c=1"].append(closed)
        for share, name in ((0.3, "open 30%"), (0.8, "open 80%")):
            rate = f"{closed['rps'] * share:.1f}"
            runs[name].append(benchbox(path, args.seconds, "--load", "open", "--rate", rate))
    rows = [(n, _median(runs[n])) for n in names]
    b, closed = rows[0][1], rows[1][1]
    print(f"{'':32} {'p50 ms':>8} {'p90 ms':>8} {'req/s':>8} {'send delay p99 ms':>18}")
    for name, r in rows:
        d = r.get("delay_p99")
        print(
            f"{name:32} {r['p50']:>8.3f} {r['p90']:>8.3f} {r['rps']:>8.1f} "
            f"{'' if d is None else f'{d:.3f}':>18}"
        )
    p50s = [b["p50"], closed["p50"], rows[2][1]["p50"]]
    spread = max(p50s) / min(p50s) - 1
    print(f"p50 spread (bare, closed, open 30%): {spread:.1%} (goal <= 5%)")
    for name, r in rows[2:]:
        ok = r["delay_p99"] is not None and r["delay_p99"] < 0.5
        print(f"{name}: send delay p99 {r['delay_p99']:.3f} ms ({'ok' if ok else 'over'} 0.5 ms)")


if __name__ == "__main__":
    main()
