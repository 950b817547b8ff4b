"""Does repeating one sample run faster than the data's distinct samples? MLPerf's TEST04, briefly.

A run on `--data` cycles through the data's own requests. A system that caches (a server's
response cache, a runtime that keys work on the input's bytes, a CPU whose caches hold one
sample's tensors) would flatter a pool of one repeated request, which is what a synthetic
benchmark measures. Before the first cell of a worker on `--data`, the same session runs a
few alternating rounds of one request repeated and of the distinct requests of that request's
shape (the most common padded length, so that shape is not what differs), and the cell carries
the ratio of their median latencies; over REPEAT_FASTER, a warning says what it means. The
rounds run outside the cell's timed interval and are bounded in calls and in time.
"""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter_ns

import numpy as np

from benchbox.schema import RepeatCheck

REPEAT_FASTER = 1.10  # the rule: a small pool more than 10% faster is flattered
ROUNDS = 3  # alternating rounds of each pool; medians of the rounds' medians
ROUND_S = 0.15
MAX_CALLS = 500  # a round's bound in calls, whatever the model's speed
MAX_DISTINCT = 64


def same_shape(feeds: list, lengths: np.ndarray) -> tuple[list, int]:
    """The feeds of the most common padded length (at most MAX_DISTINCT), and that length."""
    values, counts = np.unique(np.asarray(lengths, dtype=np.int64), return_counts=True)
    length = int(values[int(np.argmax(counts))])
    chosen = [f for f, n in zip(feeds, lengths, strict=True) if int(n) == length]
    return chosen[:MAX_DISTINCT], length


def _round_ms(run: Callable, feeds: list, seconds: float) -> float:
    """The median latency (ms) of back-to-back calls cycling through `feeds`."""
    took: list[int] = []
    stop = perf_counter_ns() + int(seconds * 1e9)
    for i in range(MAX_CALLS):
        t = perf_counter_ns()
        run(feeds[i % len(feeds)])
        took.append(perf_counter_ns() - t)
        if t > stop:
            break
    return float(np.median(took)) / 1e6


def repeat_check(
    run: Callable, feeds: list, lengths: np.ndarray, round_s: float = ROUND_S
) -> RepeatCheck | None:
    """One request repeated against the distinct requests of its shape; None when fewer than
    two distinct requests share a shape (nothing to compare)."""
    distinct, length = same_shape(feeds, lengths)
    if len(distinct) < 2:
        return None
    run(distinct[0])  # the first call of a shape may allocate; neither pool pays it
    repeated, spread = [], []
    for _ in range(ROUNDS):
        repeated.append(_round_ms(run, distinct[:1], round_s))
        spread.append(_round_ms(run, distinct, round_s))
    one, many = float(np.median(repeated)), float(np.median(spread))
    return RepeatCheck(
        distinct=len(distinct),
        length=length,
        repeated_p50_ms=one,
        distinct_p50_ms=many,
        ratio=many / one if one > 0 else 1.0,
    )


def flattered(check: RepeatCheck | None) -> bool:
    """Whether one repeated request ran more than REPEAT_FASTER faster than distinct ones."""
    return check is not None and check.ratio > REPEAT_FASTER
