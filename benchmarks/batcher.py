"""What the wall clock does to the dynamic batcher, here: the timing claims tests/test_batcher.py
checks on the batcher's own virtual clock, measured on the real driver with a fake runner that
sleeps 1 ms + 0.2 ms x batch.

Each round runs every config once, in an order that alternates round by round; medians over the
rounds are printed, and each ratio is between two configs measured in the same rounds:

- light load (20 req/s, delay 5 ms): how far past the delay the median request waits, and the
  fraction of requests served alone;
- no delay (20 req/s, delay 0): the median queue wait (wake-up jitter only);
- overload (5000 req/s, max_batch 4): the fraction of batches that are full;
- capacity at 3000 req/s: max_batch 8 against max_batch 1, and two instances against one.

The late-while-idle fraction is benchmarks/batcher_delay.py. Figures on a busy machine are noisy.

    python benchmarks/batcher.py [--rounds 5] [--seconds 0.8]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from benchbox.load.batcher import BatcherDriver, batch_feeds
from benchbox.measure.cell import MeasureSettings, drive, summarize
from benchbox.schema import DynamicBatching

POOL = [{"x": np.full((1, 4), float(i), dtype=np.float32)} for i in range(3)]


def service(feeds: dict) -> None:
    """A batch of b takes 1 ms + 0.2 ms x b."""
    time.sleep((1.0 + 0.2 * feeds["x"].shape[0]) / 1e3)


def measure(db: DynamicBatching, rate: float, instances: int, seconds: float, **kw):
    d = BatcherDriver(
        [service] * instances, batch_feeds(POOL, db.max_batch), rate, db, seconds + 3, **kw
    )
    settings = MeasureSettings(warmup_s=0.2, duration_s=seconds)
    result, _ = summarize(drive(d, settings), settings)
    return result


def share(counts: dict, size: int) -> float:
    total = sum(int(b) * n for b, n in counts.items())
    return sum(int(b) * n for b, n in counts.items() if int(b) == size) / max(1, total)


def batch_share(counts: dict, size: int) -> float:
    return counts.get(size, counts.get(str(size), 0)) / max(1, sum(counts.values()))


def one_round(seconds: float, order: int) -> dict[str, float]:
    """Every config once; `order` 1 runs them backwards."""
    runs = {
        "light": lambda: measure(
            DynamicBatching(8, 5.0), 20.0, 1, seconds, distribution="constant"
        ),
        "nodelay": lambda: measure(
            DynamicBatching(8, 0.0), 20.0, 1, seconds, distribution="constant"
        ),
        "overload": lambda: measure(DynamicBatching(4, 1.0), 5000.0, 1, seconds),
        "single": lambda: measure(DynamicBatching(1, 0.0), 3000.0, 1, seconds),
        "batched": lambda: measure(DynamicBatching(8, 0.0), 3000.0, 1, seconds),
        "two": lambda: measure(DynamicBatching(1, 0.0), 3000.0, 2, seconds),
    }
    names = list(runs) if order == 0 else list(runs)[::-1]
    r = {name: runs[name]() for name in names}
    return {
        "light_past_delay_ms": r["light"].queue_ms.p50 - 5.0,
        "light_alone": share(r["light"].batch_size_counts, 1),
        "nodelay_queue_ms": r["nodelay"].queue_ms.p50,
        "overload_full": batch_share(r["overload"].batch_size_counts, 4),
        "batched_over_single": r["batched"].throughput_ips / r["single"].throughput_ips,
        "two_over_one": r["two"].throughput_ips / r["single"].throughput_ips,
    }


LABELS = {
    "light_past_delay_ms": "light load: median wait past the 5 ms delay (ms)",
    "light_alone": "light load: fraction of requests served alone",
    "nodelay_queue_ms": "no delay: median queue wait (ms)",
    "overload_full": "overload: fraction of batches that are full (4)",
    "batched_over_single": "capacity ratio, max_batch 8 / max_batch 1",
    "two_over_one": "capacity ratio, two instances / one",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=0.8)
    args = ap.parse_args()
    rounds = [one_round(args.seconds, i % 2) for i in range(args.rounds)]
    for key, label in LABELS.items():
        values = [r[key] for r in rounds]
        print(
            f"{label}: median {statistics.median(values):.3f} "
            f"(min {min(values):.3f}, max {max(values):.3f}, {len(values)} rounds)"
        )


if __name__ == "__main__":
    main()
