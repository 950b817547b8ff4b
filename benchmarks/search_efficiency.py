"""Search efficiency: adaptive search against the full grid on the demo CNN, with a target.

Runs `benchbox sweep --search grid` and `--search adaptive` over the same grid and latency
target, and prints the measuring time of each (the sum of the cells' warm-up and measuring
time, and the wall time) and whether both recommend the same configuration.
Goal: the same answer in at most 30% of the grid's time.

    python benchmarks/search_efficiency.py [--target p99=40ms]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time

GRID = ["--batch", "1,2,4,8", "--concurrency", "1,2,4,8", "--threads", "1,2"]


def sweep(search: str, target: str, extra: list[str]) -> tuple[dict, float]:
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        p = subprocess.run(
            [sys.executable, "-m", "benchbox", "sweep", *GRID, "--search", search,
             "--latency-target", target, "--out", out, "--json", *extra],
            capture_output=True, text=True,
        )  # fmt: skip
        wall = time.perf_counter() - t0
    if p.returncode not in (0, 1):
        raise SystemExit(p.stderr)
    return json.loads(p.stdout), wall


def measured_s(report: dict) -> float:
    """Time spent measuring: each measured cell's measuring duration plus its warm-up."""
    warmup = report["settings"]["measure"]["warmup_s"] or 0.0
    return sum(c["result"]["duration_s"] + warmup for c in report["cells"] if c["result"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="p99=40ms")
    ap.add_argument("extra", nargs="*", help="more `benchbox sweep` options")
    args = ap.parse_args()
    results = {}
    for search in ("grid", "adaptive"):
        report, wall = sweep(search, args.target, args.extra)
        rec = report["recommendation"] or {}
        measured = sum(1 for c in report["cells"] if c["result"])
        results[search] = (report, wall)
        print(
            f"{search:9} cells measured {measured:>2}/{len(report['cells'])}  "
            f"measuring {measured_s(report):6.1f} s  wall {wall:6.1f} s  "
            f"winner {rec.get('winner')}"
        )
    grid, adap = results["grid"][0], results["adaptive"][0]
    share = measured_s(adap) / measured_s(grid)
    same = (grid["recommendation"] or {}).get("winner") == (adap["recommendation"] or {}).get(
        "winner"
    )
    print(f"adaptive used {share:.0%} of the grid's measuring time (goal <= 30%)")
    print(f"same recommendation: {'yes' if same else 'no'}")
    if not same:
        by_id = {c["id"]: c for c in grid["cells"]}
        for name, rep in (("grid", grid), ("adaptive", adap)):
            w = (rep["recommendation"] or {}).get("winner")
            c = by_id.get(w)
            if c and c["result"]:
                r = c["result"]
                print(
                    f"  {name} winner {w} (in the grid run: {r['throughput_ips']:.1f} inf/s, "
                    f"p99 {r['latency_ms']['p99']:.1f} ms)"
                )


if __name__ == "__main__":
    main()
