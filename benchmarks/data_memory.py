"""Peak memory of a run over a Parquet folder larger than `--data-limit`: it must stay within the
limit plus what the same run takes on synthetic inputs (the model, the runtime, the pool).

The folder holds float32 rows for the demo `mlp` (one list column `x` of 64 values), written in
several files of several row groups, `--times` times the limit in decoded bytes. The reader goes
through it in row-group batches and keeps a seeded reservoir within the limit, so the whole folder
is never in memory. Peak memory is the largest total resident set of the run's process tree (the
parent and its worker processes, polled), in alternating rounds of three runs of the same cell:
on synthetic inputs, on a 256-row Parquet file (the model, the runtime and the reader's own fixed
cost: pyarrow's libraries and threads), and on the lake. The figure is the median excess of the
lake over the small file, as a share of the limit. Goal (issue 22): at most 1.0.

    python benchmarks/data_memory.py [--limit-mb 32] [--times 10] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchbox import zoo

ROOT = Path(__file__).resolve().parents[1]
WIDTH = 64  # the demo mlp's input is float32[batch, 64]


def write_folder(folder: Path, total_bytes: int, files: int = 8) -> int:
    """Parquet files holding `total_bytes` of float32 rows; returns the row count."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    rows_total = total_bytes // (4 * WIDTH)
    per_file = rows_total // files
    rng = np.random.default_rng(0)
    for k in range(files):
        values = rng.standard_normal((per_file, WIDTH)).astype(np.float32)
        column = pa.FixedSizeListArray.from_arrays(pa.array(values.ravel()), WIDTH)
        table = pa.table({"x": pa.array(column.to_pylist(), type=pa.list_(pa.float32()))})
        pq.write_table(table, folder / f"part-{k:03d}.parquet", row_group_size=8192)
    return per_file * files


def peak_mb(args: list[str], cwd: str) -> float:
    """The largest total resident set (MiB) of one `benchbox run`'s process tree, polled every
    20 ms (the parent holds the samples, each worker process its own copy and its pool)."""
    import psutil

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "benchbox", "run", *args, "--json"]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd
    )
    root, peak, deadline = psutil.Process(proc.pid), 0, time.monotonic() + 600
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            tree = [root, *root.children(recursive=True)]
            peak = max(peak, sum(_rss(p) for p in tree))
        except psutil.NoSuchProcess:
            pass
        time.sleep(0.02)
    _, err = proc.communicate(timeout=60)
    if proc.returncode != 0:
        raise SystemExit(f"benchbox run failed: {err.strip().splitlines()[-1]}")
    return peak / 2**20


def _rss(p) -> int:
    import psutil

    try:
        return p.memory_info().rss
    except psutil.NoSuchProcess:
        return 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit-mb", type=float, default=32.0)
    ap.add_argument("--times", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=2)
    opts = ap.parse_args()
    limit = int(opts.limit_mb * 2**20)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "lake"
        rows = write_folder(folder, int(limit * opts.times))
        size = sum(f.stat().st_size for f in folder.iterdir()) / 2**20
        print(f"{rows:,} rows, {size:.0f} MiB of Parquet for a {opts.limit_mb:g} MiB --data-limit")
        common = [str(zoo.path_for("mlp")), "--trials", "1", "--duration", "1s", "--batch", "1",
                  "--threads", "1", "--out", tmp]  # fmt: skip
        pond = Path(tmp) / "pond"
        write_folder(pond, 64 * 2**10, files=1)  # the reader's fixed cost, on 256 rows
        arms = {
            "synthetic": common,
            "small": [*common, "--data", str(pond)],
            "lake": [*common, "--data", str(folder), "--data-limit", f"{limit}B"],
        }
        peaks: dict[str, list[float]] = {k: [] for k in arms}
        for _ in range(opts.rounds):
            for name, args in arms.items():
                peaks[name].append(peak_mb(args, tmp))
        excess = [
            (d - s) / opts.limit_mb for d, s in zip(peaks["lake"], peaks["small"], strict=True)
        ]
        mid = {k: statistics.median(v) for k, v in peaks.items()}
        print(
            f"peak RSS of the process tree: synthetic {mid['synthetic']:.0f} MiB, a 256-row "
            f"Parquet file {mid['small']:.0f} MiB (the reader's own cost), the lake "
            f"{mid['lake']:.0f} MiB"
        )
        print(
            f"the lake's excess over the small file: {statistics.median(excess):.2f} of the "
            f"limit (rounds {min(excess):.2f}-{max(excess):.2f}; goal <= 1.0)"
        )


if __name__ == "__main__":
    main()
