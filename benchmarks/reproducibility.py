"""Reproducibility: do benchbox's figures and verdicts hold from one run to the next?

Four figures, each measured in this one run on this machine:
- A/A: pairs of independent sweeps of the zoo `bert` and `resnet18` (unchanged), compared cell by
  cell with `benchbox compare`: the share of cells called slower or faster (goal <= 5% at 95%),
  and how often `--fail-on-regression 5%` trips (goal: never).
- Power: a candidate with about 15% more compute (ResNet-18 at a larger resolution), with the
  bare-loop ratio of the two measured beside it (interleaved session.run loops): the share of
  cells `compare` calls slower (goal >= 80%), and of `benchbox ab` runs that do.
- Agreement: N default sweeps (`benchbox sweep`, no arguments): how many recommend the same
  config, or state the same tie (goal >= 9 of 10).
- Time: the default sweep's wall time (goal <= 60 s on 2 cores); `--before PATH` times the same
  command on another checkout (e.g. one without trials) for the figure before.

    python benchmarks/reproducibility.py                 # the full run (about an hour on 2 cores)
    python benchmarks/reproducibility.py --quick         # a smoke run (a few minutes)
    python benchmarks/reproducibility.py --before /work/main

Every figure is printed as it is measured; on a machine shared with other work they are noisy.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import onnxruntime as ort

from benchbox import model as model_mod
from benchbox import zoo

AA_GRID = ["--search", "grid", "--batch", "1,4", "--concurrency", "1,2", "--threads", "1"]
POWER_BASE = "resnet18"
POWER_CANDIDATE = "resnet18:resolution=70"  # (70/64)^2 = 1.20x the pixels; ~1.15x the time


def benchbox_cmd(args: list[str], root: str | None = None) -> subprocess.CompletedProcess:
    """Run `python -m benchbox ARGS` (from checkout `root` when given), capturing its output."""
    env = dict(os.environ)
    if root is not None:
        env["PYTHONPATH"] = root
    return subprocess.run(
        [sys.executable, "-m", "benchbox", *args], capture_output=True, text=True, env=env
    )


def sweep_json(args: list[str], out: str, root: str | None = None) -> tuple[dict, float]:
    """A sweep's report (from --json) and its wall time."""
    t0 = time.perf_counter()
    p = benchbox_cmd(["sweep", *args, "--out", out, "--json"], root)
    wall = time.perf_counter() - t0
    if p.returncode not in (0, 1):
        raise SystemExit(f"sweep {' '.join(args)} failed ({p.returncode}):\n{p.stderr[-2000:]}")
    return json.loads(p.stdout), wall


def save(report: dict, folder: str, name: str) -> str:
    path = Path(folder) / name
    path.write_text(json.dumps(report))
    return str(path)


def compare(a: str, b: str, extra: list[str] = ()) -> tuple[dict | None, int, str]:
    """`benchbox compare A B --mode versions --json [extra]`: (JSON or None, exit code, stderr)."""
    p = benchbox_cmd(["compare", a, b, "--mode", "versions", "--json", *extra])
    data = json.loads(p.stdout) if p.stdout.strip() else None
    return data, p.returncode, p.stderr


# ---------------------------------------------------------------- A/A


def aa(pairs: int, models: list[str], grid: list[str], folder: str) -> None:
    verdicts: collections.Counter[str] = collections.Counter()
    trips = gates = 0
    for name in models:
        for k in range(pairs):
            a, _ = sweep_json([name, *grid, "--seed", str(2 * k)], folder)
            b, _ = sweep_json([name, *grid, "--seed", str(2 * k + 1)], folder)
            pa, pb = save(a, folder, f"aa-{k}-a.json"), save(b, folder, f"aa-{k}-b.json")
            data, _, err = compare(pa, pb)
            if data is None:
                raise SystemExit(f"compare failed: {err}")
            for cell in data["cells"]:
                verdicts[cell["verdict"]] += 1
            _, code, _ = compare(pa, pb, ["--fail-on-regression", "5%"])
            gates += 1
            trips += code == 1
            print(
                f"  A/A {name} pair {k + 1}/{pairs}: "
                + ", ".join(f"{c['cell_id']} {c['verdict']}" for c in data["cells"]),
                flush=True,
            )
    total = sum(verdicts.values())
    called = verdicts["slower"] + verdicts["faster"]
    print(
        f"A/A: {called}/{total} unchanged cells called slower or faster "
        f"({called / max(total, 1):.1%}; goal <= 5%); --fail-on-regression 5% tripped in "
        f"{trips}/{gates} compares (goal: never)",
        flush=True,
    )


# ---------------------------------------------------------------- power


def bare_p50_ms(path: str, seconds: float) -> float:
    """Median latency of a plain session.run loop (batch 1, 1 thread) after a warm-up."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    feeds = model_mod.synthesize_inputs(model_mod.inspect_model(path), 1, pool_size=4)
    times: list[float] = []
    t_end = time.perf_counter() + 0.5
    while time.perf_counter() < t_end:
        sess.run(None, feeds[0])
    t_end = time.perf_counter() + seconds
    i = 0
    while time.perf_counter() < t_end:
        t0 = time.perf_counter_ns()
        sess.run(None, feeds[i % 4])
        times.append((time.perf_counter_ns() - t0) / 1e6)
        i += 1
    return statistics.median(times)


def bare_ratio(base: str, cand: str, rounds: int, seconds: float) -> float:
    """Median over interleaved rounds of candidate p50 / baseline p50 in bare loops."""
    ratios = []
    for _ in range(rounds):
        b = bare_p50_ms(base, seconds)
        c = bare_p50_ms(cand, seconds)
        ratios.append(c / b)
    return statistics.median(ratios)


def power(pairs: int, ab_runs: int, grid: list[str], ab_trials: str, folder: str) -> None:
    base = str(zoo.resolve(POWER_BASE))
    cand = str(zoo.resolve(POWER_CANDIDATE))
    print(
        f"power: bare-loop p50 ratio {POWER_CANDIDATE} / {POWER_BASE}: "
        f"{bare_ratio(base, cand, 3, 2.0):.3f}",
        flush=True,
    )
    slower = total = 0
    for k in range(pairs):
        a, _ = sweep_json([base, *grid, "--seed", str(k)], folder)
        b, _ = sweep_json([cand, *grid, "--seed", str(k)], folder)
        pa, pb = save(a, folder, f"pw-{k}-a.json"), save(b, folder, f"pw-{k}-b.json")
        data, _, err = compare(pa, pb, ["--allow-different-models"])
        if data is None:
            raise SystemExit(f"compare failed: {err}")
        for cell in data["cells"]:
            total += 1
            slower += cell["verdict"] == "slower"
        print(
            f"  power pair {k + 1}/{pairs}: "
            + ", ".join(f"{c['cell_id']} {c['ratio']:.3f} {c['verdict']}" for c in data["cells"]),
            flush=True,
        )
    print(
        f"power (compare): {slower}/{total} cells called slower ({slower / max(total, 1):.0%}; "
        "goal >= 80%)",
        flush=True,
    )
    detected = 0
    for k in range(ab_runs):
        p = benchbox_cmd(
            ["ab", base, cand, "--trials", ab_trials, "--seed", str(k), "--out", folder, "--json"]
        )
        if p.returncode != 0:
            raise SystemExit(f"ab failed ({p.returncode}): {p.stderr[-2000:]}")
        data = json.loads(p.stdout)
        p50 = data["ratios"]["p50"]
        detected += p50["verdict"] == "slower"
        print(
            f"  ab run {k + 1}/{ab_runs}: p50 {p50['ratio']:.3f} "
            f"({p50['lo']:.3f}–{p50['hi']:.3f}) {p50['verdict']}, {data['trials']} trials each",
            flush=True,
        )
    print(
        f"power (ab): {detected}/{ab_runs} runs called the candidate slower (goal >= 80%)",
        flush=True,
    )


# ---------------------------------------------------------------- agreement and time


def answer(report: dict) -> str:
    rec = report.get("recommendation") or {}
    tied = rec.get("tied") or []
    if len(tied) > 1:
        return "tie: " + ", ".join(sorted(tied))
    return str(rec.get("winner"))


def agreement(runs: int, folder: str, before: str | None) -> None:
    answers: list[str] = []
    walls: list[float] = []
    for k in range(runs):
        report, wall = sweep_json([], folder)
        answers.append(answer(report))
        walls.append(wall)
        print(f"  default sweep {k + 1}/{runs}: {wall:.1f}s -> {answers[-1]}", flush=True)
    common, count = collections.Counter(answers).most_common(1)[0]
    print(f"agreement: {count}/{runs} default sweeps gave {common!r} (goal >= 9 of 10)", flush=True)
    print(
        f"time: default sweep wall time median {statistics.median(walls):.1f}s, max "
        f"{max(walls):.1f}s over {runs} (goal <= 60 s on 2 cores)",
        flush=True,
    )
    if before:
        _, wall = sweep_json([], folder, root=before)
        print(f"time before ({before}): default sweep {wall:.1f}s", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="A smoke run at a small scale.")
    ap.add_argument("--aa-pairs", type=int, default=None, help="Sweep pairs per A/A model.")
    ap.add_argument("--power-pairs", type=int, default=None)
    ap.add_argument("--ab-runs", type=int, default=None)
    ap.add_argument("--agreement-runs", type=int, default=None)
    ap.add_argument("--before", default=None, help="Another checkout to time the default on.")
    ap.add_argument(
        "--only", default="aa,power,agreement", help="Which parts: aa, power, agreement."
    )
    args = ap.parse_args()
    q = args.quick
    aa_pairs = args.aa_pairs or (1 if q else 5)
    power_pairs = args.power_pairs or (1 if q else 3)
    ab_runs = args.ab_runs or (2 if q else 10)
    runs = args.agreement_runs or (2 if q else 10)
    aa_grid = AA_GRID if not q else ["--search", "grid", "--batch", "1", "--concurrency", "1,2"]
    parts = set(args.only.split(","))
    print(
        f"reproducibility: {'quick' if q else 'full'} scale; A/A {aa_pairs} pair(s) per model, "
        f"power {power_pairs} pair(s) + {ab_runs} ab run(s), agreement {runs} default sweeps",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as folder:
        if "aa" in parts:
            aa(aa_pairs, ["bert", "resnet18"], aa_grid, folder)
        if "power" in parts:
            power(power_pairs, ab_runs, aa_grid, "3" if q else "auto", folder)
        if "agreement" in parts:
            agreement(runs, folder, args.before)


if __name__ == "__main__":
    main()
