"""Coverage and width of the between-trial CIs, plain t against moderated toward the pool.

Simulated sweeps: each has CELLS cells with their own trial-to-trial spread (a lognormal trial
shift whose sigma is drawn from 5% to 20%), 2 to 5 trials each, and REQUESTS lognormal requests
per trial. Each trial's p50, p99 and throughput are computed from its requests; the truth is the
figure of the distribution with no trial shift (p99: the nearest-rank p99's median over many
trials, estimated once). Prints, per figure, the coverage of the plain t interval (each cell on
its own) and of the moderated one (`measure.moderate`), and the median ratio of their widths.

    PYTHONPATH=. python3 benchmarks/coverage.py [--sweeps 400] [--cells 8] [--seed 0]
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from benchbox.measure import moderate
from benchbox.measure.trials import t_quantile

REQUESTS = 300
WITHIN_SIGMA = 0.25
CONFIDENCE = 0.95


def _trial_figures(rng: np.random.Generator, shift: float, base_ms: float) -> tuple[float, ...]:
    lat = base_ms * np.exp(shift + WITHIN_SIGMA * rng.standard_normal(REQUESTS))
    s = np.sort(lat)
    return (
        float(s[math.ceil(0.5 * REQUESTS) - 1]),
        float(s[math.ceil(0.99 * REQUESTS) - 1]),
        1000.0 / float(np.mean(lat)),
    )


def _truths(base_ms: float, rng: np.random.Generator) -> tuple[float, float, float]:
    """The figures with no trial shift: medians over many trials (the p99 estimator's bias)."""
    figs = np.array([_trial_figures(rng, 0.0, base_ms) for _ in range(2000)])
    return tuple(float(np.exp(np.median(np.log(figs[:, i])))) for i in range(3))


def one_sweep(rng: np.random.Generator, cells: int, truths: tuple[float, ...]) -> np.ndarray:
    """[figure, cell, (plain covered, moderated covered, plain width, moderated width)]."""
    logs = []
    for _ in range(cells):
        sigma = rng.uniform(0.05, 0.20)
        n = int(rng.integers(2, 6))
        shifts = sigma * rng.standard_normal(n)
        logs.append(np.log(np.array([_trial_figures(rng, s, 10.0) for s in shifts])))
    out = np.zeros((3, cells, 4))
    for f in range(3):
        var = [float(np.var(x[:, f], ddof=1)) for x in logs]
        dfs = [x.shape[0] - 1.0 for x in logs]
        prior = moderate.fit_prior(var, dfs)
        for g, x in enumerate(logs):
            m, n, truth = float(np.mean(x[:, f])), x.shape[0], math.log(truths[f])
            half = t_quantile(CONFIDENCE, n - 1) * math.sqrt(var[g] / n)
            mod = moderate.moderate(var[g], dfs[g], prior)
            lo, hi = moderate.log_interval(m, n, mod, CONFIDENCE)
            out[f, g] = (
                abs(m - truth) <= half,
                math.log(lo) <= truth <= math.log(hi),
                2 * half,
                math.log(hi) - math.log(lo),
            )
    return out


def main() -> None:
    """Run the simulation and print coverage and widths."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sweeps", type=int, default=400)
    ap.add_argument("--cells", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    truths = _truths(10.0, rng)
    runs = np.stack([one_sweep(rng, args.cells, truths) for _ in range(args.sweeps)])
    print(f"{args.sweeps} sweeps x {args.cells} cells, trial shift sigma 5-20%, 2-5 trials")
    print(f"{'figure':<11}{'plain cover':>12}{'pooled cover':>14}{'width pooled/plain':>20}")
    for f, name in enumerate(("p50", "p99", "throughput")):
        r = runs[:, f].reshape(-1, 4)
        ratio = float(np.median(r[:, 3] / r[:, 2]))
        print(f"{name:<11}{r[:, 0].mean():>12.3f}{r[:, 1].mean():>14.3f}{ratio:>20.3f}")


if __name__ == "__main__":
    main()
