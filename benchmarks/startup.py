"""benchbox's fixed costs: how long `benchbox --help` takes, and how long a one-cell sweep spends
outside measuring (start-up, model inspection, worker start, saving, rendering).

Each figure is the median of alternating runs (this checkout, then the baseline checkout when
`--baseline PATH` names one), so load on a shared machine hits both alike. The sweep's overhead
is its wall time minus the cell's planned measuring time (warm-up + duration).

    python benchmarks/startup.py [--runs 7] [--baseline /path/to/older/checkout]

Goals: `--help` <= 0.3 s; a sweep's fixed overhead <= 1 s.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
CPU_S: list[float] = []
WARMUP_S, DURATION_S = 0.5, 1.0
SWEEP = [
    "sweep",
    "mlp",
    "--batch",
    "1",
    "--concurrency",
    "1",
    "--threads",
    "1",
    "--warmup",
    f"{WARMUP_S}s",
    "--duration",
    f"{DURATION_S}s",
]


def help_cases() -> dict[str, tuple[list[str], float]]:
    """`--help` of every command and subcommand this checkout's app has (goal <= 0.3 s each: none
    may load onnx, numpy, Ray or scipy), then `--version` and no arguments at all."""
    sys.path.insert(0, str(HERE))
    from typer.main import get_command

    from benchbox.cli import app
    from benchbox.commands import command_words

    cases = {"--help": (["--help"], 0.0)}
    cases.update(
        {f"{' '.join(w)} --help": ([*w, "--help"], 0.0) for w in command_words(get_command(app))}
    )
    cases["--version"] = (["--version"], 0.0)
    cases["(no arguments)"] = ([], 0.0)
    return cases


CASES = {
    **help_cases(),
    "sweep (isolated)": (SWEEP, WARMUP_S + DURATION_S),
    "sweep (in-process)": ([*SWEEP, "--no-isolation"], WARMUP_S + DURATION_S),
}
# What each case's exit status must be: no command at all is a usage error that shows the help.
EXPECTED_RC = {"(no arguments)": 2}


def wall_s(checkout: Path, args: list[str], out_dir: str, rc: int = 0) -> float:
    """Seconds one `python -m benchbox ARGS` takes with `checkout` first on the path (its CPU
    seconds, its worker's included, go to CPU_S: on a loaded machine they vary less)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    # A sweep's report goes to the scratch folder (not after --help: that asks the help alone).
    extra = ["--out", out_dir] if args[:1] == ["sweep"] and "--help" not in args else []
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "benchbox", *args, *extra],
        cwd=out_dir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
    )
    elapsed = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU_S.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    if done.returncode != rc:
        raise SystemExit(
            f"{checkout}: benchbox {' '.join(args)} exited {done.returncode}:\n"
            f"{done.stderr[-2000:]}"
        )
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7, help="runs per case and checkout")
    ap.add_argument("--baseline", type=Path, help="an older checkout to compare against")
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated case names")
    args = ap.parse_args()
    checkouts = {"this": HERE}
    if args.baseline is not None:
        checkouts["baseline"] = args.baseline.resolve()
    names = [c.strip() for c in args.cases.split(",") if c.strip()]
    times: dict[tuple[str, str], list[float]] = {}
    cpu: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            argv, measuring_s = CASES[name]
            rc = EXPECTED_RC.get(name, 0)
            wall_s(HERE, argv, tmp, rc)  # first run: caches (zoo model, .pyc) are warm for all
            for _ in range(args.runs):
                for label, path in checkouts.items():
                    spent = wall_s(path, argv, tmp, rc) - measuring_s
                    times.setdefault((name, label), []).append(spent)
                    cpu.setdefault((name, label), []).append(CPU_S[-1])
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"load average {load}; median of {args.runs} alternating runs; sweep wall times exclude "
        f"the {WARMUP_S + DURATION_S:g} s of planned measuring (CPU: the command's and its "
        "worker's, measuring included)"
    )
    for name in names:
        cells = []
        for label in checkouts:
            v = times[(name, label)]
            c = statistics.median(cpu[(name, label)])
            cells.append(f"{label} {statistics.median(v):.3f} s (min {min(v):.3f}, CPU {c:.2f} s)")
        line = f"{name:24s} " + "   ".join(cells)
        if "baseline" in checkouts:
            ratio = statistics.median(times[(name, "this")]) / statistics.median(
                times[(name, "baseline")]
            )
            line += f"   ratio {ratio:.2f}"
        print(line)


if __name__ == "__main__":
    main()
