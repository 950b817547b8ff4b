"""Does server-style dynamic batching raise the demo CNN's peak sustainable rate at the same p99?

Runs benchbox's peak-rate search (sweep/peak.py) on ResNet-18 (the demo model) for two serving
configs that differ only in the batcher: no batching (max_batch 1) and dynamic batching
(max_batch 16, delay 2 ms by default), each on one instance, under the same open-loop Poisson load
and p99 target. Prints both peaks, their ratio, and what the batcher did at each peak.

    python benchmarks/dynamic_batching.py [--target 100] [--max-batch 16] [--delay 2] [--seconds 4]

Takes about 1-2 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import time

from benchbox import model as model_mod
from benchbox import zoo
from benchbox.measure import stats
from benchbox.measure.cell import MeasureSettings
from benchbox.parse import LatencyTarget
from benchbox.schema import Cell, DynamicBatching, Load, ServingConfig
from benchbox.sweep import peak
from benchbox.sweep.runner import CellContext, InProcessWorker


def find(ctx: CellContext, config: ServingConfig, target: LatencyTarget, start: float) -> Cell:
    seed = Cell(peak.peak_cell_id(config, 1), config, Load("open", concurrency=1))
    worker = InProcessWorker(ctx)
    try:
        return peak.find_peak(
            seed, worker.measure, target, peak.PeakSettings(max_probes=9), start_rps=start
        )
    finally:
        worker.close()


def describe(name: str, cell: Cell) -> None:
    r = cell.result
    print(f"\n{name}: {cell.id}  status={cell.status}")
    if r is None:
        print(f"  not measured: {cell.reason}")
        return
    print(
        f"  peak rate      {r.peak_rate_rps or 0:8.1f} req/s  (throughput {r.throughput_ips:.1f}/s)"
    )
    print(f"  latency        p50 {r.latency_ms.p50:7.2f} ms   p99 {r.latency_ms.p99:7.2f} ms")
    ci = (r.latency_ci_ms or {}).get("p99")
    print(f"  p99 95% CI     {ci if ci else 'too few samples (point value used)'}")
    if r.queue_ms and r.compute_ms:
        for what, d in (("queue", r.queue_ms), ("compute", r.compute_ms)):
            print(f"  {what:<14} p50 {d.p50:7.2f} ms   p99 {d.p99:7.2f} ms")
    counts = dict(r.batch_size_counts or {})
    print("  batches        " + "  ".join(f"{b}:{counts[b]}" for b in sorted(counts)))
    for w in cell.warnings:
        if w.kind == "peak-search":
            print(f"  {w}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", type=float, default=100.0, help="p99 target in ms")
    ap.add_argument("--max-batch", type=int, default=16)
    ap.add_argument("--delay", type=float, default=2.0, help="max queue delay in ms")
    ap.add_argument("--seconds", type=float, default=4.0, help="measuring time per probe")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--start", type=float, default=40.0, help="first probed rate (req/s)")
    args = ap.parse_args()

    # scipy.stats loads on first use (about a second, holding the GIL); load it before any load
    # runs, or the first probe's workers stall while it imports.
    stats.min_samples_for_ci(99.0, 0.95)
    path = str(zoo.path_for(zoo.DEMO_MODEL))
    ctx = CellContext(
        model_path=path,
        model=model_mod.inspect_model(path),
        settings=MeasureSettings(warmup_s=0.5, duration_s=args.seconds),
    )
    target = LatencyTarget("p99", args.target)
    plain = ServingConfig(intra_op_threads=args.threads, dynamic_batching=DynamicBatching(1, 0.0))
    batched = ServingConfig(
        intra_op_threads=args.threads,
        dynamic_batching=DynamicBatching(args.max_batch, args.delay),
    )
    print(
        f"model {zoo.DEMO_MODEL} ({path}), cpu, {args.threads} thread(s), 1 instance, "
        f"Poisson arrivals, target {target}, {args.seconds:g}s per probe"
    )
    t0 = time.perf_counter()
    a = find(ctx, plain, target, args.start)
    b = find(ctx, batched, target, (a.result.peak_rate_rps or args.start) if a.result else 40.0)
    describe("no batching (max_batch 1)", a)
    describe(f"dynamic batching (max_batch {args.max_batch}, delay {args.delay:g} ms)", b)
    pa = a.result.peak_rate_rps if a.result else None
    pb = b.result.peak_rate_rps if b.result else None
    if pa and pb:
        print(f"\npeak rate at {target}: {pa:.1f} -> {pb:.1f} req/s ({pb / pa:.2f}x with batching)")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"took {time.perf_counter() - t0:.0f}s; load average (1, 5, 15 min) {load}")


if __name__ == "__main__":
    main()
