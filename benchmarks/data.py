"""The cost of reading requests from data: a `--data` run's throughput against the same run on
synthetic inputs of the same shapes.

Both are `benchbox run` of the same model, config and duration, in alternating rounds (synthetic,
data, synthetic, data, ...) so machine drift hits both alike; each round's ratio is data /
synthetic and the figure is the median of the rounds' ratios. The data are an .npz of distinct
samples at the model's fixed shape, so the only difference is where the pool came from (both
pools are built before the load starts). Goal (issue 22): ratio >= 0.97.

    python benchmarks/data.py [--models mlp,bert] [--rounds 5] [--seconds 2] [--samples 512]

For `bert` the samples are a JSON Lines log at one sequence length (`--seq`, default 64), the
synthetic run at the same `--shape seq=N`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchbox import zoo

ROOT = Path(__file__).resolve().parents[1]


def run_ips(args: list[str], cwd: str) -> float:
    """Throughput (inf/s) of one `benchbox run ... --json`, from its report."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-m", "benchbox", "run", *args, "--json"],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=300,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"benchbox run failed: {done.stderr.strip().splitlines()[-1]}")
    (cell,) = json.loads(done.stdout)["cells"]
    return float(cell["result"]["throughput_ips"])


def write_data(model: str, folder: Path, samples: int, seq: int) -> tuple[Path, list[str]]:
    """The data file for `model` and the flags that give the synthetic run the same shapes."""
    rng = np.random.default_rng(0)
    if model == "bert":
        path = folder / "log.jsonl"
        with path.open("w") as f:
            for _ in range(samples):
                ids = rng.integers(1, 1000, seq).tolist()
                f.write(json.dumps({"input_ids": ids, "attention_mask": [1] * seq}) + "\n")
        return path, ["--shape", f"seq={seq}"]
    path = folder / "samples.npz"
    np.savez(path, x=rng.standard_normal((samples, 64)).astype(np.float32))
    return path, []


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="mlp,bert")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--samples", type=int, default=512)
    ap.add_argument("--seq", type=int, default=64)
    opts = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}, {opts.rounds} alternating rounds each")
    with tempfile.TemporaryDirectory() as tmp:
        for model in opts.models.split(","):
            path = str(zoo.path_for(model))
            data, shape = write_data(model, Path(tmp), opts.samples, opts.seq)
            common = [path, "--trials", "1", "--duration", f"{opts.seconds}s", "--batch", "1",
                      "--concurrency", "1", "--threads", "1", "--out", tmp]  # fmt: skip
            ratios, synth_ips, data_ips = [], [], []
            for _ in range(opts.rounds):
                s = run_ips([*common, *shape], tmp)
                d = run_ips([*common, "--data", str(data)], tmp)
                synth_ips.append(s)
                data_ips.append(d)
                ratios.append(d / s)
            print(
                f"{model}: --data {statistics.median(data_ips):,.0f} inf/s, synthetic "
                f"{statistics.median(synth_ips):,.0f} inf/s; ratio data/synthetic median "
                f"{statistics.median(ratios):.3f} (rounds {min(ratios):.3f}-{max(ratios):.3f}; "
                "goal >= 0.97)"
            )


if __name__ == "__main__":
    main()
