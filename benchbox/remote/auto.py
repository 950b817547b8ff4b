"""`--generators auto`: how many generator processes a cell's load needs, as pure rules over
the figures of a short probe.

Before a cell is measured, its load runs for a short probe step with one generator process,
then two, and so on (each step a fresh set of generators), and the cell is then measured with
the count chosen. A probing step, not growth across the cell's own windows: every window of a
cell must measure one load from one set of generators (a window sent by one process and the
next by two would mix two clients in one figure), and starting a process mid-run would break
an open loop's schedule. A step costs a second or two; a load that one process clearly
carries (its intended rate reached, or the generator idle) takes one step.

The rule (`next_count`), fed each step's achieved rate and every generator's busy share:

- open loop (an intended rate): add a process while the achieved rate is under SHORT of the
  intended rate and the busiest generator is at least GROW_BUSY busy (the generators are the
  busy side; an idle generator short of its rate is waiting on the server);
- closed loop (no intended rate, so no shortfall to measure): add a process while the busiest
  generator is GROW_BUSY busy and the last process added raised the rate by over RISE;
- in both, stop once a process added did not raise the rate by RISE, and never go past `cap`
  (the cores this process may run on, and the load's concurrency: a generator needs a slot).

GROW_BUSY is low (0.3) on purpose: on a shared machine a generator that waits for a CPU reads
idle while it waits, so a saturated one may show 35-40% busy; a wrong guess costs one step,
since a count is kept only when it raised the rate (`choose`).
"""

from __future__ import annotations

from dataclasses import dataclass

SHORT = 0.97  # an open loop reaching under this share of its intended rate fell short
GROW_BUSY = 0.3  # a generator this busy may be the limit: worth trying one more process
LIMIT_BUSY = 0.85  # a generator this busy is the limit (the generator-busy warning's share)
RISE = 0.05  # a process added must raise the rate by over this share to be kept


@dataclass(frozen=True)
class ProbeStep:
    """One probe step's figures: its generator count, the rate it reached, each generator's
    busy share."""

    processes: int
    rate_rps: float
    busy_shares: tuple[float, ...]

    @property
    def busiest(self) -> float:
        return max(self.busy_shares, default=0.0)


def _rose(before: ProbeStep, after: ProbeStep) -> bool:
    return after.rate_rps > before.rate_rps * (1.0 + RISE)


def next_count(steps: tuple[ProbeStep, ...], intended_rps: float | None, cap: int) -> int | None:
    """The generator count to probe next, or None when probing is done."""
    last = steps[-1]
    if last.processes >= cap or last.busiest < GROW_BUSY:
        return None
    if len(steps) > 1 and not _rose(steps[-2], last):
        return None
    if intended_rps is not None and last.rate_rps >= SHORT * intended_rps:
        return None
    return last.processes + 1


def choose(steps: tuple[ProbeStep, ...]) -> ProbeStep:
    """The step to measure with: the fewest processes whose rate no larger count beat by RISE."""
    best = steps[0]
    for step in steps[1:]:
        if _rose(best, step):
            best = step
    return best


def limited(
    steps: tuple[ProbeStep, ...], measured: ProbeStep, intended_rps: float | None, cap: int
) -> bool:
    """Whether the generators, not the server, limited the measured cell: at the cap (for a
    fixed `--generators N`, N), short of the intended rate (open loop; a closed loop has none,
    so it always counts as short), and either the busiest generator over LIMIT_BUSY or the
    last process the probe added still raising the rate by RISE (one more would likely have
    raised it again)."""
    if intended_rps is not None and measured.rate_rps >= SHORT * intended_rps:
        return False
    if measured.processes < cap:  # the probe tried one more and it did not help
        return False
    if measured.busiest >= LIMIT_BUSY:
        return True
    if measured.busiest < GROW_BUSY:
        return False
    grown = [s for s in steps if s.processes <= measured.processes]
    return len(grown) > 1 and _rose(grown[-2], grown[-1])


def probe_text(steps: tuple[ProbeStep, ...], chosen: int) -> str:
    """The probe as one line: each count's rate and busiest share, and the count chosen."""
    tried = ", ".join(f"{s.processes}: {s.rate_rps:,.0f}/s at {s.busiest:.0%} busy" for s in steps)
    return f"--generators auto tried {tried}; measured with {chosen}"
