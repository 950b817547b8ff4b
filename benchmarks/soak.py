"""Soak: a long sweep of the tiny MLP, checking that memory stays flat.

Runs one sweep of many cells (batch 1..16 x concurrency 1,2,4,8, one worker process) whose cell
duration is chosen to fill --minutes, and prints the resident memory (RSS) of the sweep's process
and of its worker at the start and at the end. Goal: each grows by less than 50 MB.

    python benchmarks/soak.py --minutes 10
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import psutil

from benchbox import zoo
from benchbox.measure.cell import MeasureSettings
from benchbox.sweep import Progress, SweepRequest, run_sweep
from benchbox.sweep.plan import SweepSpec, grid
from benchbox.sweep.worker import ProcessWorker

GOAL_MB = 50.0
BATCHES = tuple(range(1, 17))
CONCURRENCIES = (1, 2, 4, 8)


def rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


class Watch(Progress):
    """Samples the RSS of this process and of the worker after every cell."""

    def __init__(self, workers: list[ProcessWorker], every: int) -> None:
        self.workers, self.every = workers, every
        self.rows: list[tuple[int, float, float | None, str]] = []
        self.t0 = time.monotonic()
        self.total = 0

    def planned(self, cells) -> None:
        self.total = len(cells)

    def finished(self, cell) -> None:
        pid = self.workers[-1].pid if self.workers else None
        row = (len(self.rows) + 1, rss_mb(psutil.Process().pid), rss_mb(pid) if pid else None)
        self.rows.append((*row, cell.status))
        n, parent, worker, status = self.rows[-1]
        if n == 1 or n % self.every == 0 or n == self.total:
            shown = f"{worker:7.1f}" if worker is not None else "    n/a"
            print(
                f"{time.monotonic() - self.t0:7.0f}s  cell {n:3d}/{self.total}  {status:8s} "
                f"parent {parent:7.1f} MB  worker {shown} MB",
                flush=True,
            )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="how long to run (default 10)")
    ap.add_argument("--save-samples", action="store_true", help="keep raw samples (unbounded)")
    args = ap.parse_args()

    spec = SweepSpec(batch_sizes=BATCHES, concurrencies=CONCURRENCIES, threads=(1,))
    n = len(grid(spec))
    per_cell_s = max(0.3, args.minutes * 60.0 / n - 0.2)
    settings = MeasureSettings(
        warmup_s=0.1,
        duration_s=per_cell_s,
        window_s=min(1.0, per_cell_s / 3),
        save_samples=args.save_samples,
    )
    workers: list[ProcessWorker] = []

    def make_worker(ctx, abort):
        workers.append(ProcessWorker(ctx, abort))
        return workers[-1]

    start_parent = rss_mb(psutil.Process().pid)
    print(f"soak: {n} cells x {per_cell_s:.1f}s on the tiny MLP (~{args.minutes:g} min)")
    print(f"parent RSS at start: {start_parent:.1f} MB")
    watch = Watch(workers, every=max(1, n // 16))
    with tempfile.TemporaryDirectory() as out:
        req = SweepRequest(
            model_path=str(zoo.path_for("mlp")),
            spec=spec,
            settings=settings,
            out_dir=out,
            search="grid",
            model_label="mlp",
        )
        report, path = run_sweep(req, progress=watch, make_worker=make_worker)
        size_kb = Path(path).stat().st_size / 1024
    end_parent = rss_mb(psutil.Process().pid)
    parent_rows = [r[1] for r in watch.rows]
    worker_rows = [r[2] for r in watch.rows if r[2] is not None]
    ok = sum(c.status in ("ok", "unstable") for c in report.cells)
    started = sum(w.processes_started for w in workers)
    print(f"cells measured: {ok}/{n}; worker processes started: {started}; report {size_kb:.0f} KB")
    # Growth is counted from the end of the first cell: what the sweep loads once (onnx,
    # onnxruntime, the idle baseline) is not a leak.
    growth = {"parent": end_parent - parent_rows[0]}
    print(
        f"parent RSS: before the sweep {start_parent:.1f} MB, after cell 1 {parent_rows[0]:.1f} MB,"
        f" end {end_parent:.1f} MB, growth {growth['parent']:+.1f} MB"
    )
    if worker_rows:
        growth["worker"] = worker_rows[-1] - worker_rows[0]
        print(
            f"worker RSS: after cell 1 {worker_rows[0]:.1f} MB, end {worker_rows[-1]:.1f} MB, "
            f"growth {growth['worker']:+.1f} MB (max {max(worker_rows):.1f} MB)"
        )
    worst = max(growth.values())
    verdict = "PASS" if worst < GOAL_MB else "FAIL"
    print(f"{verdict}: largest growth {worst:+.1f} MB (goal < {GOAL_MB:g} MB)")
    return 0 if worst < GOAL_MB else 1


if __name__ == "__main__":
    sys.exit(main())
