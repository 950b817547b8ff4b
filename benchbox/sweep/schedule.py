"""Trials and their order: how many trials each cell gets, and in which order they run.

Randomized multiple interleaved trials (Abedi & Brecht 2017): the trials run in rounds, each
round a seeded random permutation of the cells that still need a trial, so a drift of the
machine (frequency, neighbours, a warming room) hits every cell alike instead of turning into a
false difference between the cells measured early and late.

`--trials N` gives every measured cell N trials. `--trials auto` (the default) gives the cells
still in play at least MIN_AUTO_TRIALS, then more, round by round, while the decision figure's
between-trial CI is wider than `--precision` (relative half-width), up to `--max-trials`; cells
clearly out of the decision keep the trials they have, and say so.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from benchbox.errors import BadInput
from benchbox.measure.trials import MIN_AUTO_TRIALS, Estimate, precise_enough
from benchbox.schema import TrialPolicy

TRIALS_LIMIT = 100


def parse_trials(text: str) -> int | None:
    """`--trials`: 'auto' -> None, or a count from 1 to TRIALS_LIMIT."""
    value = text.strip().lower()
    if value == "auto":
        return None
    try:
        n = int(value)
    except ValueError:
        raise BadInput(
            f"--trials {text!r} is not a count", "use a number such as 5, or auto"
        ) from None
    if not 1 <= n <= TRIALS_LIMIT:
        raise BadInput(f"--trials {n} must be between 1 and {TRIALS_LIMIT}")
    return n


def trial_policy(trials: str, max_trials: int, precision: float, seed: int) -> TrialPolicy:
    """A TrialPolicy from the command line's options, checked."""
    n = parse_trials(trials)
    if not 1 <= max_trials <= TRIALS_LIMIT:
        raise BadInput(f"--max-trials {max_trials} must be between 1 and {TRIALS_LIMIT}")
    if n is None and max_trials < MIN_AUTO_TRIALS:
        raise BadInput(
            f"--max-trials {max_trials} is below the {MIN_AUTO_TRIALS} trials --trials auto "
            "starts with",
            f"raise --max-trials, or give --trials {max_trials}",
        )
    if not 0.0 < precision < 1.0:
        raise BadInput(f"--precision {precision:g} must be a fraction in (0, 1), e.g. 5%")
    return TrialPolicy(trials=n, max_trials=max_trials, precision=precision, seed=seed)


def round_order(ids: Sequence[str], seed: int, round_index: int) -> list[str]:
    """The cells of one round in a random order drawn from (seed, round): same seed, same order."""
    rng = np.random.default_rng([seed, round_index])
    order = rng.permutation(len(ids))
    return [ids[i] for i in order]


def interleaved(ids: Sequence[str], trials: int, seed: int) -> list[str]:
    """`trials` rounds, each a permutation of `ids`: the order in which a fixed design runs."""
    return [c for r in range(trials) for c in round_order(ids, seed, r)]


def sequential(ids: Sequence[str], trials: int) -> list[str]:
    """Every trial of the first cell, then of the next (the order interleaving replaces)."""
    return [c for c in ids for _ in range(trials)]


def needs_trial(
    policy: TrialPolicy, done: int, decision: Estimate | None, in_play: bool = True
) -> bool:
    """Whether a cell with `done` trials gets another one.

    Fixed count: until it has them. Auto: a cell out of the decision gets no more; one in play
    gets at least `min_trials`, then more while its decision figure is not precise enough.
    """
    if done >= policy.most:
        return False
    if not policy.auto:
        return True
    if not in_play:
        return False
    if done < policy.min_trials:
        return True
    return decision is None or not precise_enough(decision, policy.precision)
