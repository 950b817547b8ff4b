"""What a recommendation made on the user's own request lengths says, beside the one a
fixed-shape sweep at the lengths' median makes (issue 22).

It writes a JSON Lines log for the zoo's `bert` whose sequence lengths follow a log-normal
distribution clipped to 8..512 (median ~64: short queries with a long tail, as search and chat
traffic have), then runs two `benchbox sweep`s with the same grid, trials and latency target:
one on `--data` (each request one of the log's samples, padded per batch to its longest member),
one on synthetic inputs at `--shape seq=MEDIAN`. It prints each sweep's recommendation and, for
the data sweep, the p99 per length bucket of its winner. The two differ when the tail decides the
percentile: a configuration that meets the target at the median length can break it on the
stream's long requests, and batching pads every request to its batch's longest.

    python benchmarks/data_recommendation.py [--target p99=8ms] [--samples 400] [--trials 2]

Without --target, both reports are judged at a p99 between the two sweeps' best p99 bounds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def write_log(path: Path, samples: int, seed: int = 0) -> np.ndarray:
    """A log of `samples` requests; returns their lengths."""
    rng = np.random.default_rng(seed)
    lengths = np.clip(np.round(rng.lognormal(np.log(64), 0.9, samples)), 8, 512).astype(int)
    with path.open("w") as f:
        for n in lengths:
            ids = rng.integers(1, 1000, n).tolist()
            f.write(json.dumps({"input_ids": ids, "attention_mask": [1] * int(n)}) + "\n")
    return lengths


def sweep(args: list[str], cwd: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-m", "benchbox", "sweep", "bert", *args, "--json"],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=1800,
    )  # fmt: skip
    if done.returncode not in (0, 1):
        raise SystemExit(f"benchbox sweep failed: {done.stderr.strip().splitlines()[-1]}")
    return json.loads(done.stdout)


def said(report: dict, rec: dict) -> str:
    winner = rec.get("winner")
    if not winner:
        return f"nothing recommended: {rec.get('note', '')}"
    cell = next(c for c in report["cells"] if c["id"] == winner)
    r = cell["result"]
    return (
        f"{winner}: p99 {r['latency_ms']['p99']:.2f} ms, {r['throughput_ips']:,.0f} inf/s, "
        f"${r['cost_usd_per_million']:.3f} per million"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default=None, help="default: between the two sweeps' best")
    ap.add_argument("--samples", type=int, default=400)
    ap.add_argument("--trials", default="2")
    ap.add_argument("--batch", default="1,4")
    ap.add_argument("--concurrency", default="1,2")
    opts = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        lengths = write_log(Path(tmp) / "log.jsonl", opts.samples)
        median = int(np.median(lengths))
        print(
            f"{opts.samples} requests, lengths {lengths.min()}-{lengths.max()}, median {median}, "
            f"p90 {int(np.percentile(lengths, 90))}; load "
            f"{os.getloadavg()[0]:.1f}"
        )
        common = ["--batch", opts.batch, "--concurrency", opts.concurrency, "--threads", "1",
                  "--trials", opts.trials, "--latency-target", opts.target or "p99=1s",
                  ]  # fmt: skip
        data = sweep([*common, "--data", "log.jsonl", "--out", f"{tmp}/data"], tmp)
        fixed = sweep([*common, "--shape", f"seq={median}", "--out", f"{tmp}/fixed"], tmp)
        # The same measurements judged at one target between the two sweeps' best p99 bounds,
        # so the figure shows the difference whatever the machine's speed today.
        target = opts.target or _between(fixed, data)
        print(f"judged at {target} (both reports, `benchbox recommend`):")
        for name, report in ((f"fixed shape seq={median}", fixed), ("on the data", data)):
            (path,) = Path(tmp, "data" if report is data else "fixed").glob("*.json")
            rec = recommend(path, target, tmp)
            print(f"  {name:<20} {said(report, rec)}")
            winner = rec.get("winner")
            for cell in data["cells"] if winner else ():
                if cell["id"] == winner:
                    buckets = cell["result"].get("buckets") or []
                    row = ", ".join(f"≤{b['upper']}: {b['latency_ms']['p99']:.1f}" for b in buckets)
                    print(f"    {winner} on the data, p99 ms per length bucket: {row}")


def _between(fixed: dict, data: dict) -> str:
    """A p99 target between the two sweeps' lowest p99 upper bounds (their geometric mean)."""

    def best(report: dict) -> float:
        highs = [
            (c["result"]["latency_ci_ms"] or {}).get("p99", [0, c["result"]["latency_ms"]["p99"]])[
                1
            ]
            for c in report["cells"]
            if c.get("result")
        ]
        return min(highs)

    return f"p99={(best(fixed) * best(data)) ** 0.5:.1f}ms"


def recommend(path: Path, target: str, cwd: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-m", "benchbox", "recommend", str(path), "--latency-target", target,
         "--json"],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=300,
    )  # fmt: skip
    if done.returncode not in (0, 1):
        raise SystemExit(f"benchbox recommend failed: {done.stderr.strip().splitlines()[-1]}")
    out = json.loads(done.stdout)
    return out.get("recommendation", out)


if __name__ == "__main__":
    main()
