"""What a fleet is asked to do and what it did: groups, the request, each group's outcome."""

from __future__ import annotations

from dataclasses import dataclass, field

from benchbox.compare import MachineComparison
from benchbox.errors import BadInput
from benchbox.options import DEFAULT_GROUP_LABEL
from benchbox.schema import HostInfo, IdlePower, TrialPolicy
from benchbox.sweep.job import SweepRequest

# ---------------------------------------------------------------- data


@dataclass(frozen=True)
class Machine:
    """A node as it reads itself: its host facts, its cores, its idle power."""

    host: HostInfo
    cores: int
    idle: IdlePower | None = None


# How long `ray.init` may take, at most: it has no timeout of its own, and retries an address
# that accepts TCP but never speaks Ray (or one Ray rewrote to an address it cannot reach) for
# minutes. A Ray Client connection to a busy head takes tens of seconds; 120 s leaves room.
CONNECT_BOUND_S = 120.0


@dataclass(frozen=True)
class GroupSpec:
    """A kind of node: its label value and the price profile of its machine type."""

    name: str
    profile: str


@dataclass(frozen=True)
class FleetRequest:
    """A fleet sweep: the ordinary sweep (its `profile` unused) run on every group."""

    sweep: SweepRequest
    groups: tuple[GroupSpec, ...]
    address: str = "auto"
    group_label: str = DEFAULT_GROUP_LABEL
    placement_timeout_s: float = 60.0
    connect_timeout_s: float = CONNECT_BOUND_S  # the bound on connecting to the cluster
    device: str = "cpu"  # the device list as typed; `all` is expanded on each node
    # The trials each group's cells get (`fleet --trials`; `sweep.trials` is not used): one by
    # default for a request built in code, the command's --trials from the command line.
    trials: TrialPolicy = field(default_factory=lambda: TrialPolicy(trials=1))


@dataclass(frozen=True)
class GroupOutcome:
    """How one group's sweep ended: `done`, `incomplete` (cells failed or pending), `failed`."""

    name: str
    profile: str
    report: str | None
    nodes: tuple[str, ...]
    status: str
    cells_measured: int = 0
    cells_total: int = 0
    error: str | None = None


@dataclass(frozen=True)
class FleetResult:
    out_dir: str
    manifest: str
    groups: tuple[GroupOutcome, ...]
    ranking: MachineComparison | None


def parse_groups(items: list[str] | None) -> tuple[GroupSpec, ...]:
    """`--group NAME=PROFILE` options as GroupSpecs; BadInput for a malformed or repeated one."""
    if not items:
        raise BadInput("a fleet needs at least one --group NAME=PROFILE", _GROUP_HINT)
    out: dict[str, GroupSpec] = {}
    for item in items:
        name, sep, profile = item.partition("=")
        name, profile = name.strip(), profile.strip()
        if not sep or not name or not profile:
            raise BadInput(f"--group {item!r} is not NAME=PROFILE", _GROUP_HINT)
        if name in out:
            raise BadInput(f"--group {name} is given twice", "give each node group once")
        out[name] = GroupSpec(name, profile)
    return tuple(out.values())


_GROUP_HINT = "e.g. --group cpu=aws-c7i-2xlarge --group gpu=aws-g6-xlarge (see `benchbox profiles`)"
