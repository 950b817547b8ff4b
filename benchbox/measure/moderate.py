"""Moderated between-trial variances: what the whole sweep teaches about one cell's noise.

With 2 or 3 trials a cell's own variance of log values has 1 or 2 degrees of freedom, and the
Student-t interval on it is honest but very wide (t = 12.7 for 1 df). The trial-to-trial noise of
one machine, in one sweep, is largely shared by its cells, so each cell's variance is shrunk
toward the sweep's pool, as limma does for genes measured in three replicates (Smyth 2004,
"Linear models and empirical Bayes methods for assessing differential expression"):

- each cell g has a sample variance s_g^2 of its per-trial log values with d_g = n_g - 1 df;
- the s_g^2 are modelled as s0^2 * F(d_g, d0) draws: a scaled inverse-chi^2 prior on the
  cells' true variances with d0 prior degrees of freedom and prior variance s0^2, estimated
  from all cells by moments of log s_g^2 (`fit_prior`, Smyth's section 6.2);
- the posterior variance is (d0 s0^2 + d_g s_g^2) / (d0 + d_g), and the interval on the mean
  log uses Student t with d0 + d_g degrees of freedom (`moderate`, `log_interval`);
- a cell whose own variance is far above the pool (s_g^2 / s0^2 beyond the 99.5% point of
  F(d_g, d0)) is not like the others: it keeps its own variance and d_g, and says so.

A prior needs MIN_CELLS cells with two or more trials; with fewer, every cell keeps its own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

MIN_CELLS = 3
OWN_SPREAD_P = 0.005  # a cell's variance beyond this upper tail of the pool's F keeps its own
DF_CAP = 1e6  # d0 is infinite when the cells' variances scatter no more than chance allows


def _special() -> Any:
    """scipy.special, imported on first use."""
    from scipy import special

    return special


def _trigamma_inverse(x: float) -> float:
    """y with trigamma(y) = x (x > 0), by Smyth's Newton iteration."""
    sp = _special()
    if x > 1e7:
        return 1.0 / math.sqrt(x)
    if x < 1e-6:
        return 1.0 / x
    y = 0.5 + 1.0 / x
    for _ in range(50):
        tri = float(sp.polygamma(1, y))
        dif = tri * (1.0 - tri / x) / float(sp.polygamma(2, y))
        y += dif
        if -dif / y < 1e-8:
            break
    return y


@dataclass(frozen=True)
class Prior:
    """The sweep's pool for one figure: prior df d0 (may be DF_CAP), prior variance s0^2."""

    df: float
    var: float
    cells: int


def fit_prior(variances: Sequence[float], dfs: Sequence[float]) -> Prior | None:
    """Smyth's moment estimate of (d0, s0^2) from cells' variances; None with too few cells.

    Cells with a zero variance (identical trials) carry no log-scale information and are left
    out of the fit (they are still moderated with the prior).
    """
    sp = _special()
    pairs = [(v, d) for v, d in zip(variances, dfs, strict=True) if v > 0 and d >= 1]
    if len(pairs) < MIN_CELLS:
        return None
    e = [math.log(v) - float(sp.digamma(d / 2.0)) + math.log(d / 2.0) for v, d in pairs]
    mean_e = sum(e) / len(e)
    var_e = sum((x - mean_e) ** 2 for x in e) / (len(e) - 1)
    excess = var_e - sum(float(sp.polygamma(1, d / 2.0)) for _, d in pairs) / len(pairs)
    if excess <= 0:
        return Prior(DF_CAP, math.exp(mean_e), len(pairs))
    d0 = min(2.0 * _trigamma_inverse(excess), DF_CAP)
    s0_sq = math.exp(mean_e + float(sp.digamma(d0 / 2.0)) - math.log(d0 / 2.0))
    return Prior(d0, s0_sq, len(pairs))


@dataclass(frozen=True)
class Moderated:
    """A cell's variance for its interval, with its df; own=True: its spread is its own."""

    var: float
    df: float
    own: bool


def own_spread(var: float, df: float, prior: Prior) -> bool:
    """True when var / s0^2 is beyond the OWN_SPREAD_P upper tail of F(df, d0)."""
    from scipy import stats

    if prior.var <= 0:
        return var > 0
    limit = float(stats.f.isf(OWN_SPREAD_P, df, prior.df))
    return var / prior.var > limit


def moderate(var: float, df: float, prior: Prior | None) -> Moderated:
    """The posterior variance (d0 s0^2 + d s^2) / (d0 + d) with d0 + d df, or the cell's own."""
    if prior is None:
        return Moderated(var, df, False)
    if own_spread(var, df, prior):
        return Moderated(var, df, True)
    total = prior.df + df
    return Moderated((prior.df * prior.var + df * var) / total, min(total, DF_CAP), False)


def log_interval(mean_log: float, n: int, mod: Moderated, confidence: float) -> tuple[float, float]:
    """exp(mean_log ± t(confidence, df) * sqrt(var / n)): the interval on the original scale."""
    from scipy import stats

    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    half = float(stats.t.ppf(0.5 + confidence / 2.0, mod.df)) * math.sqrt(mod.var / n)
    return math.exp(mean_log - half), math.exp(mean_log + half)


def coherent(
    points: dict[str, float],
    cis: dict[str, list[float] | None],
    order: Sequence[str],
    floor: float | None,
    ceiling: float | None,
) -> dict[str, list[float] | None]:
    """Percentile CIs made coherent with each other and with the pooled requests.

    For the percentiles in `order` (ascending): a percentile's lower bound is raised to the
    largest point estimate of the percentiles below it (its own value cannot be below theirs)
    and to `floor` (the fastest request measured); its upper bound is lowered to `ceiling` (the
    slowest request measured: every trial's percentile is at most that, and so is their
    geometric mean). Each interval still holds its own point estimate.
    """
    out = dict(cis)
    below = floor if floor is not None else -math.inf
    for key in order:
        ci, point = out.get(key), points.get(key)
        if ci is None or None in ci or point is None:
            if point is not None:
                below = max(below, point)
            continue
        lo, hi = float(ci[0]), float(ci[1])
        lo = min(max(lo, below), point)
        if ceiling is not None:
            hi = max(min(hi, ceiling), point)
        out[key] = [lo, hi]
        below = max(below, point)
    return out
