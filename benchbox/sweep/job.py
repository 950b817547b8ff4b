"""What a sweep is asked to measure (`SweepRequest`, a server to measure instead of sessions)
and what its report keeps of that (`sweep_settings`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from benchbox.measure.cell import MeasureSettings
from benchbox.options import DataOptions
from benchbox.parse import LatencyTarget
from benchbox.schema import SweepSettings, TrialPolicy
from benchbox.sweep.plan import SweepSpec


@dataclass(frozen=True)
class SweepRequest:
    """Everything a sweep needs, as parsed from the command line."""

    model_path: str
    spec: SweepSpec
    settings: MeasureSettings
    shapes: dict[str, int | str] = field(default_factory=dict)
    input_values: dict[str, float | list] = field(default_factory=dict)
    out_dir: str = "reports"
    search: str = "grid"
    latency_target: LatencyTarget | None = None
    profile: str | None = None  # a name, a .toml file, "auto" (match this host) or None/"none"
    model_label: str | None = None
    isolate: bool = True  # each device group in its own worker process
    cell_timeout_s: float | None = None  # None: worker.default_cell_timeout_s(settings)
    trials: TrialPolicy = field(default_factory=TrialPolicy)
    target: RemoteTarget | None = None  # a server (--target URL) instead of in-process sessions
    # (precision) Accuracy samples per cell (None: outputs not compared) and the bounds as given.
    accuracy_samples: int | None = None
    accuracy: tuple[str, ...] = ()
    data: DataOptions = field(default_factory=DataOptions)  # --data: requests from samples


@dataclass(frozen=True)
class RayGenerators:
    """Where a remote sweep's generators run (`--ray ADDRESS`): one per node of a group."""

    address: str
    group: str  # --ray-group: the value of group_label on the generator nodes
    group_label: str
    placement_timeout_s: float
    partial: bool = False  # --ray-partial: a lost node's cell finishes on the others, flagged


@dataclass(frozen=True)
class RemoteTarget:
    """A server to measure (`--target URL`): its URL, the headers to send, the generators.

    `model_path` of the request is then a local ONNX file for the inputs, or "" for the server's
    model metadata. Headers are not stored in the report: they may hold secrets."""

    url: str
    headers: tuple[tuple[str, str], ...] = ()
    generators: int | None = None  # None: --generators auto
    request_timeout_s: float | None = None  # None: remote.REQUEST_TIMEOUT_S
    ca_cert: str | None = None
    insecure: bool = False
    ray: RayGenerators | None = None  # None: the generators run on this machine


def sweep_settings(req: SweepRequest) -> SweepSettings:
    """The sweep's options as stored in the report (enough to resume it)."""
    return SweepSettings(
        model=req.model_label or req.model_path,
        spec=req.spec,
        measure=req.settings,
        shapes=dict(req.shapes),
        search=req.search,
        latency_target=req.latency_target,
        profile=req.profile,
        trials=req.trials,
        accuracy_samples=req.accuracy_samples,
        accuracy=req.accuracy,
    )
