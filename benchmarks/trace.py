"""Trace replay punctuality (issue 22): the issue delay of `--load trace` beside the plain open
loop, in the same run, at 50% of the peak rate.

For the tiny zoo `mlp` (batch 1, 1 intra-op thread, concurrency 2), the peak is a bare
session.run loop's rate (benchmarks/fidelity.py's). Each round runs, in an order that alternates
between rounds, each in its own process:
- `benchbox run --load open --rate R` (Poisson, R = 50% of the peak) for --seconds;
- `benchbox run --load trace --trace FILE`: a recorded trace of the same rate and length (Poisson
  offsets drawn once, seeded, written to FILE), replayed at 1x;
- `benchbox run --load open --rate R/2:S/2,R*1.5:S/2`: a step profile of the same mean rate.
The figure is each one's send delay p99 (issue_delay_ms: lateness of the send, pool waits
excluded), median over the rounds. Goal: the trace's p99 < 0.5 ms, as the open loop's.

    python benchmarks/trace.py [--seconds 4] [--rounds 3] [--model mlp]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

import numpy as np
from fidelity import WORKERS, bare_rps

from benchbox import zoo


def run(path: str, load_args: list[str], warmup_s: float = 1.0) -> dict:
    """One `benchbox run` in its own process; its send delay and achieved rate."""
    with tempfile.TemporaryDirectory() as out:
        p = subprocess.run(
            [sys.executable, "-m", "benchbox", "run", path, "--threads", "1", "--concurrency",
             str(WORKERS), *load_args, "--warmup", f"{warmup_s}s", "--trials", "1",
             "--out", out, "--json"],
            capture_output=True, text=True, check=True, env=dict(os.environ),
        )  # fmt: skip
    r = json.loads(p.stdout)["cells"][0]["result"]
    delay = r["issue_delay_ms"] or {}
    return {
        "delay_p50": delay.get("p50"),
        "delay_p99": delay.get("p99"),
        "rps": r["achieved_rate_rps"] or r["requests_per_s"],
        "lat_p99": r["latency_ms"]["p99"],
    }


def write_trace(path: str, rate: float, seconds: float, seed: int = 7) -> int:
    """A Poisson trace of `rate` over `seconds`, one offset (s) a line; its request count."""
    gaps = np.random.default_rng(seed).exponential(1.0 / rate, size=int(rate * seconds * 1.5))
    offsets = np.cumsum(gaps)
    offsets = offsets[offsets <= seconds]
    with open(path, "w") as f:
        f.write("".join(f"{x:.9f}\n" for x in offsets - offsets[0]))
    return len(offsets)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--model", default="mlp")
    args = ap.parse_args()
    path = str(zoo.path_for(args.model))
    peak = bare_rps(path, 2.0)
    rate, s = 0.5 * peak, args.seconds
    with tempfile.TemporaryDirectory() as tmp:
        trace = os.path.join(tmp, "trace.txt")
        n = write_trace(trace, rate, s)
        tools = {
            "open": ["--load", "open", "--rate", f"{rate:.1f}", "--duration", f"{s}s"],
            "trace": ["--load", "trace", "--trace", trace],
            "steps": [
                "--load",
                "open",
                "--rate",
                f"{rate / 2:.1f}:{s / 2}s,{rate * 1.5:.1f}:{s / 2}s",
            ],
        }
        results: dict[str, list[dict]] = {k: [] for k in tools}
        for r in range(args.rounds):
            order = list(tools) if r % 2 == 0 else list(reversed(tools))
            for name in order:
                results[name].append(run(path, tools[name]))
    print(
        f"{args.model}: peak {peak:.0f} req/s (bare loop); 50% = {rate:.0f} req/s; trace {n} "
        f"requests over {s:g}s; {args.rounds} rounds, medians; cpus {os.cpu_count()}"
    )
    print(f"{'load':<7}{'delay p50 ms':>14}{'delay p99 ms':>14}{'achieved rps':>14}"
          f"{'lat p99 ms':>12}  delay p99 per round")  # fmt: skip
    for name, runs in results.items():
        med = {k: statistics.median(x[k] for x in runs if x[k] is not None) for k in runs[0]}
        rounds = " ".join(f"{x['delay_p99']:.2f}" for x in runs if x["delay_p99"] is not None)
        print(f"{name:<7}{med['delay_p50']:>14.3f}{med['delay_p99']:>14.3f}{med['rps']:>14.0f}"
              f"{med['lat_p99']:>12.3f}  {rounds}")  # fmt: skip


if __name__ == "__main__":
    main()
