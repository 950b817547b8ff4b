"""The cost of reading requests from data: a `--data` run's throughput against the same run on
synthetic inputs of the same shapes.

Three arms, each a `benchbox run` of the same model, config and duration, in alternating rounds
(synthetic, small data, full data, synthetic, ...) so machine drift hits them alike; each round's
ratios are taken within the round and the figures are the medians of the rounds' ratios:
- small data / synthetic: the cost of the data path itself, with the pools the same size (the
  synthetic pool holds 4 requests, the small data the first 4 samples). Goal (issue 22): >= 0.97.
- full data / small data: what `--samples` distinct requests cost against 4 cycled ones, on the
  same reader: the cache effect of a small pool (MLPerf's TEST04), which a `--data` run checks
  for itself (`repeat-faster`).
The data are an .npz of distinct samples at the model's fixed shape, so only the pool differs
(every pool is built before the load starts).

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
    folder.mkdir(parents=True, exist_ok=True)
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


def _line(what: str, ratios: list[float]) -> str:
    return (
        f"throughput {what}: median {statistics.median(ratios):.3f} "
        f"(rounds {min(ratios):.3f}-{max(ratios):.3f})"
    )


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
            full, shape = write_data(model, Path(tmp) / "full", opts.samples, opts.seq)
            small, _ = write_data(model, Path(tmp) / "small", 4, opts.seq)
            common = [path, "--trials", "1", "--duration", f"{opts.seconds}s", "--batch", "1",
                      "--concurrency", "1", "--threads", "1", "--out", tmp]  # fmt: skip
            path_ratio, pool_ratio = [], []
            for _ in range(opts.rounds):
                s = run_ips([*common, *shape], tmp)
                d4 = run_ips([*common, "--data", str(small)], tmp)
                dn = run_ips([*common, "--data", str(full)], tmp)
                path_ratio.append(d4 / s)
                pool_ratio.append(dn / d4)
            print(f"{model}: {_line('4 data samples / synthetic (4)', path_ratio)}; goal >= 0.97")
            print(f"{model}: {_line(f'{opts.samples} data samples / 4', pool_ratio)}")


if __name__ == "__main__":
    main()
