"""Schedules of intended send times for a shape of traffic: a rate profile (steps and ramps) and
the replay of a recorded trace, each after a warm-up, for the punctual `Issuer`.

A rate profile's arrivals are drawn by time-rescaling (Brown et al. 2002): a process of unit
rate (gaps of mean 1: exponential for poisson, 1 for constant, gamma for gamma:cv=N) is mapped
through the inverse of the profile's cumulative rate Λ(t) = ∫ rate. That is exact: a Poisson
stream mapped so is the inhomogeneous Poisson process of that rate, with no step or bin to
drift (Λ is piecewise quadratic, inverted in closed form).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from benchbox.parse import parse_rate_profile
from benchbox.schema import Load

# (rate at the start, rate at the end, duration): requests/s, requests/s, seconds.
Segment = tuple[float, float, float]


def unit_arrivals(total: float, distribution: str, seed: int = 0) -> np.ndarray:
    """The arrival times in (0, total] of a unit-rate process whose gaps follow `distribution`."""
    rng = np.random.default_rng(seed)
    if distribution == "constant":
        return np.arange(1, int(np.floor(total)) + 1, dtype=np.float64)
    parts, reached = [], 0.0
    while reached <= total:
        n = int(total - reached + 6 * np.sqrt(total - reached + 1) + 16)
        if distribution.startswith("gamma:cv="):
            shape = 1.0 / float(distribution.split("=", 1)[1]) ** 2
            gaps = rng.gamma(shape, 1.0 / shape, size=n)
        else:
            gaps = rng.exponential(1.0, size=n)
        arrivals = reached + np.cumsum(gaps)
        parts.append(arrivals)
        reached = float(arrivals[-1])
    out = np.concatenate(parts)
    return out[out <= total]


def profile_offsets_ns(
    segments: Sequence[Segment], distribution: str = "poisson", seed: int = 0
) -> np.ndarray:
    """Intended send times (ns from the start) of a rate profile, by time-rescaling."""
    rates0 = np.array([a for a, _, _ in segments], dtype=np.float64)
    rates1 = np.array([b for _, b, _ in segments], dtype=np.float64)
    durations = np.array([d for _, _, d in segments], dtype=np.float64)
    areas = (rates0 + rates1) / 2 * durations  # Λ over each segment
    lam_at = np.concatenate([[0.0], np.cumsum(areas)])
    t_at = np.concatenate([[0.0], np.cumsum(durations)])
    u = unit_arrivals(float(lam_at[-1]), distribution, seed)
    # side="right": a u on a boundary, or past a segment of zero rate, belongs to the next one.
    seg = np.clip(np.searchsorted(lam_at, u, side="right") - 1, 0, len(segments) - 1)
    local = u - lam_at[seg]
    r0, slope = rates0[seg], (rates1[seg] - rates0[seg]) / durations[seg]
    # Solve r0 t + slope t²/2 = local for t; this form is stable for slope of either sign or 0.
    root = r0 + np.sqrt(np.maximum(r0 * r0 + 2 * slope * local, 0.0))
    t_local = np.divide(2 * local, root, out=np.zeros_like(local), where=root > 0)
    t = t_at[seg] + np.minimum(t_local, durations[seg])
    return np.round(t * 1e9).astype(np.int64)


def profile_schedule_ns(
    segments: Sequence[Segment], warmup_s: float, distribution: str = "poisson", seed: int = 0
) -> np.ndarray:
    """A profile's cell: `warmup_s` at the profile's first rate, then the profile (one stream)."""
    first = segments[0][0]
    lead = [(first, first, warmup_s)] if warmup_s > 0 else []
    return profile_offsets_ns([*lead, *segments], distribution, seed)


def trace_schedule_ns(
    offsets_s: np.ndarray, speed: float, warmup_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """A trace's cell: its first `warmup_s` (at `speed`) to warm up, then the whole trace once.

    Returns the intended send times (ns) and, per request, its index in the trace (so request
    i of the replay can use sample i of the data)."""
    scaled = np.asarray(offsets_s, dtype=np.float64) / speed
    lead = scaled[scaled < warmup_s] if warmup_s > 0 else scaled[:0]
    times = np.concatenate([lead, scaled + warmup_s])
    index = np.concatenate([np.arange(len(lead)), np.arange(len(scaled))]).astype(np.int64)
    return np.round(times * 1e9).astype(np.int64), index


def cell_schedule_ns(
    load: Load, warmup_s: float, seed: int = 0, trace_offsets_s: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None] | None:
    """The schedule of a profiled or trace cell: send times (ns) and, for a trace, each
    request's index in it; None for a plain open loop (its driver draws its own)."""
    if load.kind == "trace" and load.trace is not None and trace_offsets_s is not None:
        return trace_schedule_ns(trace_offsets_s, load.trace.speed, warmup_s)
    if load.kind == "open" and load.profile:
        segments = parse_rate_profile(load.profile)
        return profile_schedule_ns(segments, warmup_s, load.distribution or "poisson", seed), None
    return None
