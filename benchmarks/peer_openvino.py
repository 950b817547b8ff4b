"""benchbox on the OpenVINO runtime vs OpenVINO's own benchmark_app, measured in one run.

For the demo CNN (resnet18) and the encoder (bert), with `-hint latency` and `-hint throughput`:

1. run `benchmark_app -m MODEL -d CPU -hint H -shape ...` and read from its output the median
   latency, the throughput, and the configuration it chose (streams, threads, infer requests);
2. run `benchbox sweep MODEL --device ov:CPU?PERFORMANCE_HINT=H` with the same configuration
   (instances = streams, threads = threads / streams, concurrency = infer requests, batch 1);
3. print benchbox / benchmark_app for the median latency and the throughput. Goal: within 5%.

Usage: python benchmarks/peer_openvino.py [--seconds 5] [--rounds 2] [--models resnet18,bert]
Each pair runs `--rounds` times, alternating the tools, and the medians of the runs are compared.
Runs in about 2.5 minutes with the defaults. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass

from benchbox import model as model_mod
from benchbox import zoo


@dataclass(frozen=True)
class PeerRun:
    """What benchmark_app printed: its figures and the configuration it chose."""

    median_ms: float
    mean_ms: float
    throughput_ips: float
    streams: int
    threads: int
    nireq: int
    precision: str | None


def shape_arg(path: str) -> str:
    """benchmark_app's -shape for batch 1 (symbolic dims at benchbox's defaults)."""
    shapes = model_mod.input_shapes(model_mod.inspect_model(path), 1)
    return ",".join(f"{name}[{','.join(map(str, dims))}]" for name, dims in shapes.items())


def _number(pattern: str, text: str, what: str) -> float:
    m = re.search(pattern, text)
    if not m:
        raise SystemExit(f"could not find {what} in benchmark_app's output:\n{text[-2000:]}")
    return float(m.group(1))


def _latency_ms(text: str, label: str = "Median") -> float:
    m = re.search(label + r":\s+([\d.]+) (ms|us)", text)  # below 1 ms it prints microseconds
    if not m:
        raise SystemExit(f"could not find the {label} latency in benchmark_app's output:\n{text}")
    return float(m.group(1)) / (1000.0 if m.group(2) == "us" else 1.0)


def occupancy(throughput_ips: float, mean_ms: float, in_flight: int) -> float:
    """Little's law: the share of the request slots that were busy (1.0 = never idle)."""
    return throughput_ips * mean_ms / 1000.0 / in_flight


def parse_benchmark_app(text: str) -> PeerRun:
    """The figures and chosen configuration from benchmark_app's printed report."""
    asynchronous = re.search(r"Start inference asynchronously, (\d+) inference requests", text)
    precision = re.search(r"INFERENCE_PRECISION_HINT: <Type: '(\w+)'>", text)
    return PeerRun(
        median_ms=_latency_ms(text),
        mean_ms=_latency_ms(text, "Average"),
        throughput_ips=_number(r"Throughput:\s+([\d.]+) FPS", text, "the throughput"),
        streams=int(_number(r"\bNUM_STREAMS: (\d+)", text, "NUM_STREAMS")),
        threads=int(_number(r"\bINFERENCE_NUM_THREADS: (\d+)", text, "INFERENCE_NUM_THREADS")),
        nireq=int(asynchronous.group(1)) if asynchronous else 1,
        precision=precision.group(1) if precision else None,
    )


def run_benchmark_app(path: str, hint: str, seconds: float) -> PeerRun:
    """benchmark_app on CPU with a performance hint, for `seconds`."""
    exe = shutil.which("benchmark_app")
    if exe is None:
        raise SystemExit("benchmark_app not found: pip install openvino (it ships the tool)")
    cmd = [exe, "-m", path, "-d", "CPU", "-hint", hint, "-t", f"{seconds:g}"]
    cmd += ["-shape", shape_arg(path)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120)
    if p.returncode != 0:
        raise SystemExit(f"benchmark_app failed ({p.returncode}):\n{p.stdout[-2000:]}{p.stderr}")
    return parse_benchmark_app(p.stdout)


def run_benchbox(path: str, hint: str, peer: PeerRun, seconds: float, out: str) -> dict:
    """benchbox on ov:CPU with benchmark_app's configuration; the one cell's result."""
    instances = max(1, peer.streams)
    threads = max(1, peer.threads // instances)
    cmd = [
        sys.executable,
        "-m",
        "benchbox",
        "sweep",
        path,
        "--device",
        f"ov:CPU?PERFORMANCE_HINT={hint.upper()}",
        "--batch",
        "1",
        "--threads",
        str(threads),
        "--instances",
        str(instances),
        "--concurrency",
        str(peer.nireq),
        "--warmup",
        "1s",
        "--duration",
        f"{seconds:g}s",
        "--out",
        out,
        "--json",
    ]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120)
    if p.returncode != 0:
        raise SystemExit(f"benchbox failed ({p.returncode}):\n{p.stderr[-2000:]}")
    cell = json.loads(p.stdout)["cells"][0]
    if cell["result"] is None:
        raise SystemExit(f"benchbox measured nothing: {cell['status']} {cell['reason']}")
    return {
        "median_ms": cell["result"]["latency_ms"]["p50"],
        "mean_ms": cell["result"]["latency_ms"]["mean"],
        "throughput_ips": cell["result"]["throughput_ips"],
        "config": f"i{instances} t{threads} c{peer.nireq}",
        "warnings": cell.get("warnings", []),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="measuring time of each run")
    ap.add_argument("--rounds", type=int, default=2, help="alternating runs of each tool")
    ap.add_argument("--models", default="resnet18,bert", help="zoo models, comma-separated")
    args = ap.parse_args()
    rows = []
    precision = None
    with tempfile.TemporaryDirectory() as out:
        for name in args.models.split(","):
            path = str(zoo.path_for(name))
            for hint in ("latency", "throughput"):
                peers, ours = [], []
                for _ in range(args.rounds):  # alternate, so drift hits both tools alike
                    peers.append(run_benchmark_app(path, hint, args.seconds))
                    ours.append(run_benchbox(path, hint, peers[-1], args.seconds, out))
                precision = peers[0].precision
                row = {
                    "model": name,
                    "hint": hint,
                    "config": ours[0]["config"],
                    "ours_p50": statistics.median(o["median_ms"] for o in ours),
                    "peer_p50": statistics.median(p.median_ms for p in peers),
                    "ours_tput": statistics.median(o["throughput_ips"] for o in ours),
                    "peer_tput": statistics.median(p.throughput_ips for p in peers),
                    "ours_busy": statistics.median(
                        occupancy(o["throughput_ips"], o["mean_ms"], peers[0].nireq) for o in ours
                    ),
                    "peer_busy": statistics.median(
                        occupancy(p.throughput_ips, p.mean_ms, p.nireq) for p in peers
                    ),
                }
                rows.append(row)
                med_runs = _runs([o["median_ms"] for o in ours], [p.median_ms for p in peers])
                tp_runs = _runs(
                    [o["throughput_ips"] for o in ours], [p.throughput_ips for p in peers]
                )
                print(
                    f"{name:9} {hint:10} {row['config']:12} "
                    f"p50 {row['ours_p50']:.3f} vs {row['peer_p50']:.3f} ms [runs {med_runs}]  "
                    f"tput {row['ours_tput']:.1f} vs {row['peer_tput']:.1f}/s [runs {tp_runs}]",
                    flush=True,
                )
    print()
    print(
        f"benchbox / benchmark_app, medians of {args.rounds} alternating runs of {args.seconds:g} s"
    )
    print(f"(goal: within 5%; OpenVINO's CPU precision here: {precision})")
    print(
        f"{'model':9} {'hint':10} {'config':12} {'median ratio':>12} {'throughput ratio':>16}"
        f" {'slots busy (benchbox/benchmark_app)':>36}"
    )
    worst = 0.0
    for r in rows:
        r_med = r["ours_p50"] / r["peer_p50"]
        r_tp = r["ours_tput"] / r["peer_tput"]
        worst = max(worst, abs(r_med - 1), abs(r_tp - 1))
        busy = f"{r['ours_busy']:.2f} / {r['peer_busy']:.2f}"
        print(
            f"{r['model']:9} {r['hint']:10} {r['config']:12} {r_med:12.3f} {r_tp:16.3f} {busy:>36}"
        )
    verdict = "within" if worst <= 0.05 else "NOT within"
    print(f"largest deviation {worst:.1%}: {verdict} 5%")
    print(
        "slots busy = throughput x mean latency / requests in flight (Little's law); below 1.0 "
        "a tool's load loop left request slots idle, which lowers its throughput, not its latency"
    )


def _runs(ours: list[float], peers: list[float]) -> str:
    return " ".join(f"{a:.4g}/{b:.4g}" for a, b in zip(ours, peers, strict=True))


if __name__ == "__main__":
    main()
