"""Every kind of label a cell can carry (`CellWarning.kind`), with its one-line meaning.

A report writes the kind as its string value, so the values are stable: renaming one breaks old
reports' labels. A kind is a *note* when it says how a cell ran rather than that something went
wrong (the views print notes in another colour). The README's list of warnings is tested against
this registry (tests/test_warning_kinds.py). This module imports nothing of benchbox, so the
schema and every stage can use it.
"""

from __future__ import annotations

from enum import StrEnum


class WarningKind(StrEnum):
    """A cell label's kind: its JSON string, its one-line meaning, and whether it is a note."""

    meaning: str
    is_note: bool

    def __new__(cls, value: str, meaning: str, note: bool = False) -> WarningKind:
        member = str.__new__(cls, value)
        member._value_ = value
        member.meaning = meaning
        member.is_note = note
        return member

    # Measuring one cell (measure/cell.py, sweep/runner.py)
    UNSTABLE = "unstable", "the last windows never agreed within --stability; figures cover it all"
    HIGH_VARIATION = "high-variation", "throughput varied by over 10% (CV) across windows"
    SLOW_FIRST_WINDOW = "slow-first-window", "the first window's p99 was over 1.5x the others'"
    TOO_FEW_SAMPLES = "too-few-samples", "too few requests for a p99 confidence bound"
    DURATION_EXTENDED = "duration-extended", "--duration held too few requests; it measured on"
    EARLY_STOP = "early-stop", "the percentile was above the target with confidence: stopped early"
    GENERATOR_BEHIND = "generator-behind", "over 1% of open-loop sends left over 1 ms late"
    POOL_EXHAUSTED = "pool-exhausted", "over 1% of requests waited over 1 ms for a free worker"
    OVERSUBSCRIBED = "oversubscribed", "busy sessions x intra-op threads exceed the cores"
    NO_POWER = "no-power", "no power reading for the cell, and why"
    ACCURACY = "accuracy", "an fp32 cell's outputs already differ from the fp32 CPU reference"
    # Trials (sweep/trials.py)
    UNSTABLE_TRIALS = (
        "unstable-trials",
        "some trials never settled: judged by between-trial bound",
    )
    TRIAL_FAILED = "trial-failed", "one of the cell's trials failed; the others make its figures"
    FEW_TRIALS = (
        "few-trials",
        "under the minimum trials: the cell is clearly out of the decision",
    )
    OWN_SPREAD = "own-spread", "its trials differ far more than the pool's: its own interval stands"
    REPEAT_FASTER = (
        "repeat-faster",
        "a --data request repeated ran over 10% faster than distinct ones of its shape",
    )
    # Remote servers (remote/session.py)
    REQUEST_ERRORS = "request-errors", "requests failed and are not in the latency figures"
    GENERATOR_BUSY = (
        "generator-busy",
        "the load generator was over 85% busy: it may be the limit",
    )
    GENERATOR_LIMIT = (
        "generator-limit",
        "the load generators were the limit: the client's figures, not the server's",
    )
    NO_SERVER_SPLIT = "no-server-split", "the server gives no statistics for a server-side split"
    # Fleets (sweep/fleet/)
    GENERATOR_LOST = (
        "generator-lost",
        "a generator node was lost mid-cell; the other nodes' requests make the figures",
    )
    RAY_NODE = "ray-node", "measured on another node of the group than the report's host node"
    # Notes: how the cell ran (backends/, sweep/peak.py)
    PLACEMENT = "placement", "some graph nodes run on another device than the one asked for", True
    PLUGIN_EP = "plugin-ep", "the execution provider was loaded as a plugin library", True
    HOST_COPIES = "host-copies", "the timed path includes host<->device copies", True
    IO_BINDING = (
        "io-binding",
        "inputs and outputs stay on the device (or no copies exist)",
        True,
    )
    OPENVINO = "openvino", "the OpenVINO device and the settings it ran with", True
    PRECISION = "precision", "OpenVINO computes in lower precision than float32 here", True
    GRAPH_OPTIMIZATION = (
        "graph-optimization",
        "--graph-optimization is for onnxruntime only",
        True,
    )
    PEAK_SEARCH = "peak-search", "the rates the peak-rate search tried, and the peak it found", True
    GENERATORS_AUTO = (
        "generators-auto",
        "the generator counts --generators auto tried, and the one it measured with",
        True,
    )


NOTE_KINDS: frozenset[WarningKind] = frozenset(k for k in WarningKind if k.is_note)
