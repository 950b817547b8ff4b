"""Precision as a sweep dimension: what int8 and fp16 buy on this CPU, what they cost in accuracy,
and what the accuracy check costs the sweep.

For the demo CNN (ResNet-18) and `bert` (the zoo's encoder) it sweeps fp32, fp16, int8-dynamic
and int8-static on the CPU, prints the table precision x config (p50, p99, throughput, $/1M,
accuracy against the fp32 CPU reference), the speed-up of each precision over fp32 (throughput
ratio, same config, same run), and the recommendation without and with an accuracy bound.
Then it times the same sweep with and without the accuracy check in alternating rounds (the
variants are cached by then, so both pay the same for them) and prints the median ratio.

    python benchmarks/precision.py [--models resnet18,bert] [--rounds 2] [--samples 400]
        [--duration 1s] [--trials 3] [--bound top1>=99%]

About 5-10 minutes on 2 cores with the defaults; `--rounds 1 --trials 2` for a quick look.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from benchbox import zoo
from benchbox.format import accuracy_label
from benchbox.parse import parse_duration_s, parse_target
from benchbox.recommend import recommend
from benchbox.schema import PRECISIONS, MeasureSettings, SweepSpec, TrialPolicy
from benchbox.sweep import SweepRequest, run_sweep


def request(model: str, args: argparse.Namespace, samples: int | None, out: str) -> SweepRequest:
    seconds = parse_duration_s(args.duration)
    return SweepRequest(
        model_path=str(zoo.resolve(model)),
        model_label=model,
        spec=SweepSpec(
            batch_sizes=tuple(int(b) for b in args.batch.split(",")),
            threads=tuple(int(t) for t in args.threads.split(",")),
            precisions=PRECISIONS,
        ),
        settings=MeasureSettings(warmup_s=0.3, duration_s=seconds, window_s=seconds / 2),
        out_dir=out,
        profile="auto",
        trials=TrialPolicy(trials=args.trials),
        accuracy_samples=samples,
    )


def show(report, bound: str, target: str) -> None:
    print(f"\n== {report.settings.model}: precision x config ==")
    head = f"{'cell':36} {'p50 ms':>8} {'p99 ms':>8} {'inf/s':>9} {'$/1M':>9}  accuracy vs fp32"
    print(head)
    for c in report.cells:
        if c.result is None:
            print(f"{c.id:36} {c.status}: {c.reason}")
            continue
        r = c.result
        usd = f"{r.cost_usd_per_million:.4g}" if r.cost_usd_per_million else "-"
        print(
            f"{c.id:36} {r.latency_ms.p50:8.2f} {r.latency_ms.p99:8.2f} {r.throughput_ips:9.1f} "
            f"{usd:>9}  {accuracy_label(c)}"
        )
    by_config: dict[tuple, dict[str, float]] = {}
    for c in report.cells:
        if c.result is not None:
            key = (c.config.intra_op_threads, c.config.batch_size)
            by_config.setdefault(key, {})[c.config.precision] = c.result.throughput_ips
    for (threads, batch), tps in sorted(by_config.items()):
        base = tps.get("fp32")
        if base:
            ratios = ", ".join(f"{p} x{tps[p] / base:.2f}" for p in PRECISIONS[1:] if p in tps)
            print(f"speed-up over fp32 (t{threads} b{batch}, throughput): {ratios}")
    lt = parse_target(target)
    for bounds in ((), (bound,)):
        rec = recommend(report, lt, accuracy=bounds)
        words = ("accuracy", "top1", "cosine", "max-abs")
        why = {k: v for k, v in rec.rejected.items() if any(w in v for w in words)}
        label = f"with --accuracy {bound}" if bounds else "without an accuracy bound"
        print(f"recommendation {label}: {rec.winner} ({rec.objective})")
        if rec.tied:
            print(f"   tied within noise: {', '.join(rec.tied)}")
        for cid, text in list(why.items())[:4]:
            print(f"   rejected {cid}: {text[:140]}")


def timed(model: str, args: argparse.Namespace, samples: int | None) -> float:
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        run_sweep(request(model, args, samples, out))
        return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="resnet18,bert")
    ap.add_argument("--batch", default="1")
    ap.add_argument("--threads", default="1")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--samples", type=int, default=400)
    ap.add_argument("--duration", default="1s")
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--bound", default="top1>=99%")
    ap.add_argument("--target", default="p99=1000ms")
    args = ap.parse_args()
    for model in args.models.split(","):
        with tempfile.TemporaryDirectory() as out:
            t0 = time.perf_counter()
            report, _ = run_sweep(request(model, args, args.samples, out))
            print(f"\n[{model}: first sweep, variants built or read from cache: "
                  f"{time.perf_counter() - t0:.1f} s]")  # fmt: skip
            for v in report.variants:
                size = f"{v.size_bytes / 1e6:.1f} MB" if v.size_bytes else "-"
                print(f"  {v.precision:13} {size:>9} {v.error or v.calibration or v.method}")
        show(report, args.bound, args.target)
        walls: dict[str, list[float]] = {"with": [], "without": []}
        for i in range(args.rounds):  # alternating, the order flipped every round
            order = ("with", "without") if i % 2 == 0 else ("without", "with")
            for kind in order:
                walls[kind].append(timed(model, args, args.samples if kind == "with" else None))
        w, wo = statistics.median(walls["with"]), statistics.median(walls["without"])
        print(
            f"sweep wall time ({args.rounds} alternating rounds, medians): with the accuracy "
            f"check {w:.1f} s, without {wo:.1f} s: x{w / wo:.3f} ({100 * (w / wo - 1):+.1f}%)"
        )


if __name__ == "__main__":
    main()
