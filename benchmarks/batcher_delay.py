"""How often does a request wait past the batcher's delay while an instance is idle, here?

The property (an idle instance never lets a request wait past the delay by its own decision) is
tested on a virtual clock in tests/test_batcher.py; this measures what the wall clock adds (thread
wake-up and scheduling): the fraction of requests that waited more than delay + 5 ms although an
instance was idle at their deadline, over alternating rounds of two load levels, medians printed.

    python benchmarks/batcher_delay.py [--rounds 5] [--seconds 1.5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from benchbox.load.batcher import COMPUTE_NS, QUEUE_NS, BatcherDriver, batch_feeds
from benchbox.schema import DynamicBatching

MS = 1_000_000
POOL = [{"x": np.full((1, 4), float(i), dtype=np.float32)} for i in range(3)]


def service(feeds: dict) -> None:
    """A batch of b takes 1 ms + 0.2 ms x b."""
    time.sleep((1.0 + 0.2 * feeds["x"].shape[0]) / 1e3)


def late_fraction(rate_rps: float, seconds: float, seed: int) -> float:
    """Run two instances for `seconds`; the fraction of requests late with an instance idle."""
    db = DynamicBatching(max_batch=16, delay_ms=2.0)
    d = BatcherDriver([service] * 2, batch_feeds(POOL, 16), rate_rps, db, seconds + 2, seed=seed)
    d.start()
    time.sleep(seconds)
    d.stop()
    busy, waits = [], []
    for rec in d.recorders:
        for t, q, c in zip(
            rec.intended_ns, rec.extra[QUEUE_NS], rec.extra[COMPUTE_NS], strict=False
        ):
            busy.append((t + q, t + q + c))
            waits.append((t + 2 * MS, q))
    spans = np.array(sorted(set(busy)))
    late = sum(
        1
        for deadline, q in waits
        if q > 7 * MS and np.sum((spans[:, 0] <= deadline) & (spans[:, 1] > deadline)) < 2
    )
    return late / max(1, len(waits))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=1.5)
    args = ap.parse_args()
    rates = (300.0, 1000.0)
    seen: dict[float, list[float]] = {r: [] for r in rates}
    for i in range(args.rounds):
        for rate in rates if i % 2 == 0 else rates[::-1]:  # alternate the order each round
            seen[rate].append(late_fraction(rate, args.seconds, seed=i))
    for rate in rates:
        print(
            f"{rate:6.0f} req/s: median late-while-idle fraction "
            f"{statistics.median(seen[rate]):.4f}"
        )
    low, high = (statistics.median(seen[r]) for r in rates)
    print(
        f"ratio (1000 / 300 req/s): {high / low:.2f}" if low else "ratio: no late request at 300/s"
    )


if __name__ == "__main__":
    main()
