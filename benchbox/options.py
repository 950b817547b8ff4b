"""The command line's options as given, one dataclass per set that several commands share, each
field holding the one default its option has (`commands/options.py` declares the flags from these).

Light on purpose: it imports no stage, so a command's `--help` costs Python, typer and this.
The stages parse these texts (`sweep/request.py`); nothing here checks a value.
"""

from __future__ import annotations

from dataclasses import dataclass

# Trials per cell, at most, under --trials auto: a sweep's cells are many and short; the demo
# sweep's fewer still (about a minute on 2 cores); one cell in depth (`run`, `ab`) may take more.
DEFAULT_MAX_TRIALS = 10
SWEEP_MAX_TRIALS = 4
DEMO_MAX_TRIALS = 3
# The fewest trials a cell in play gets under --trials auto: the least a between-trial spread
# can be estimated from with the pooled variance (measure/moderate.py).
MIN_TRIALS = 3

# The node label that names a Ray node's group (`benchbox fleet --group-label`): KubeRay's.
DEFAULT_GROUP_LABEL = "ray.io/node-group"


@dataclass(frozen=True)
class MeasureOptions:
    """How long and how carefully each cell is measured (one trial of it), as text options.

    These defaults are every grid command's (`sweep`, `fleet`, `ab`): a short trial, since a
    cell's figures come from several trials. `run` measures one cell in depth: `DEPTH`."""

    warmup: str = "0.5s"
    duration: str | None = None
    window: str = "0.5s"
    min_duration: str = "1s"
    max_duration: str = "3s"
    stability: str = "10%"
    confidence: float = 0.95
    save_samples: bool = False
    seed: int = 0


# `benchbox run` measures one cell in depth: longer windows and trials give each trial enough
# requests for a within-trial CI on every percentile and the histogram it shows.
DEPTH = MeasureOptions(warmup="1s", window="1s", min_duration="3s", max_duration="15s")


@dataclass(frozen=True)
class TrialOptions:
    """How many trials each cell gets, as text options (`--trials N|auto`, ...)."""

    trials: str = "auto"
    max_trials: int | None = None  # None: the command's default (SWEEP_MAX_TRIALS, ...)
    precision: str = "5%"


# `benchbox ab` decides on the ratio of two models' figures: a tighter CI per side, since the
# ratio's interval is about the two half-widths together.
AB_TRIALS = TrialOptions(precision="3%")


@dataclass(frozen=True)
class RemoteOptions:
    """A server to measure instead of in-process sessions (`--target URL`) and how to reach it."""

    target: str | None = None
    headers: tuple[str, ...] = ()  # KEY=VALUE
    generators: str = "auto"  # a count, or auto: a short probe per cell chooses it
    request_timeout: str | None = None  # None: the client's default
    ca_cert: str | None = None
    insecure: bool = False


@dataclass(frozen=True)
class RayOptions:
    """A Ray cluster (`--ray ADDRESS`): `fleet` sweeps on its node groups; `sweep --target`
    places its --generators there, one per node of `--ray-group`."""

    address: str | None = "auto"  # `sweep` runs its generators here unless --ray is given
    group_label: str = DEFAULT_GROUP_LABEL
    placement_timeout: str = "60s"
    group: str = "generators"  # the generator nodes' group (KubeRay's worker group name)
    partial: bool = False


@dataclass(frozen=True)
class DataOptions:
    """Requests from the user's own data (`--data SOURCE`) instead of synthesized inputs."""

    source: str | None = None
    data_map: tuple[str, ...] = ()  # COLUMN=INPUT
    limit: str | None = None  # --data-limit, e.g. 512MB (None: a share of the free memory)
    label: str | None = None  # --data-label: the column of each sample's class, for accuracy


@dataclass(frozen=True)
class TraceOptions:
    """Arrival times replayed by `--load trace`: a file of offsets or a column of --data."""

    file: str | None = None  # --trace FILE: one offset (s) a line, or JSON
    column: str | None = None  # --trace-column NAME[:UNIT] of the --data source
    speed: str | None = None  # --speed 2x (None: as recorded)


@dataclass(frozen=True)
class PrecisionOptions:
    """Model variants measured as a sweep dimension, and accuracy against the fp32 reference."""

    precision: str | None = None  # "fp32,fp16,int8-dynamic,int8-static"; None: fp32
    accuracy_samples: int | None = None  # None: the default when accuracy is measured; 0: off
    accuracy: tuple[str, ...] = ()  # bounds: top1>=99%, cosine>=0.999, NAME:max-abs<=1e-3
