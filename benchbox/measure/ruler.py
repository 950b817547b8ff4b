"""A ruler in every run: a small fixed workload timed in every trial round, beside the cells.

Trials inside one run cannot see a change of the machine between two runs (another day, a
neighbour, a frequency cap). A fixed reference workload measured in both runs can: if it got
10% slower, the machine did, and each cell's ratio is divided by the ruler's (with the ruler's
own uncertainty added), as performance bots run a reference build beside every tip. The
workload is a seeded float32 matrix product with an elementwise tanh, the kind of compute and
memory traffic a CPU inference does; it costs a few hundredths of a second.

What a ruler cannot correct: a change that moves the model but not the ruler (memory bandwidth
against compute, a different cache size, an accelerator's clock while the CPU ruler is idle).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

RULER_KIND = "numpy-matmul-192-tanh-v1"
SIZE = 192
LOOPS = 12
GROUPS = 5
CONFOUNDED = 0.05  # the machine moved more than this (with confidence): the runs are confounded


def time_ruler() -> float:
    """Seconds per loop of the reference workload: the median of GROUPS timed groups."""
    import numpy as np

    rng = np.random.default_rng(12345)
    a = rng.standard_normal((SIZE, SIZE)).astype(np.float32)
    b = rng.standard_normal((SIZE, SIZE)).astype(np.float32) / math.sqrt(SIZE)
    times = []
    for _ in range(GROUPS):
        x = a
        start = time.perf_counter()
        for _ in range(LOOPS):
            x = np.tanh(x @ b)
        times.append((time.perf_counter() - start) / LOOPS)
    return float(sorted(times)[GROUPS // 2])


def corrected(
    ratio: float, lo: float, hi: float, ruler_ratio: float, ruler_lo: float, ruler_hi: float
) -> tuple[float, float, float]:
    """A cell's ratio divided by the ruler's, half-widths on the log scale added in quadrature.

    Both intervals are taken as symmetric on logs (their half-widths, at the same confidence);
    the quadrature sum is the interval of the difference of two independent estimates.
    """
    half_cell = (math.log(hi) - math.log(lo)) / 2.0
    half_ruler = (math.log(ruler_hi) - math.log(ruler_lo)) / 2.0
    center = math.log(ratio) - math.log(ruler_ratio)
    half = math.hypot(half_cell, half_ruler)
    return math.exp(center), math.exp(center - half), math.exp(center + half)


def moved_beyond(ruler_lo: float, ruler_hi: float, limit: float = CONFOUNDED) -> bool:
    """True when the ruler's CI lies wholly beyond 1 ± limit: the machine itself moved."""
    return ruler_lo > 1.0 + limit or ruler_hi < 1.0 / (1.0 + limit)


def usable(per_round_s: Sequence[float]) -> bool:
    """A ruler with two or more positive rounds (a between-round CI needs two)."""
    return len(per_round_s) >= 2 and all(v > 0 and math.isfinite(v) for v in per_round_s)
