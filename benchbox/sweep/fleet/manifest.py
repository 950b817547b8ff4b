"""`fleet.json`: a fleet's folder keeps its groups and reports, so `--resume DIR` can finish it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from benchbox.errors import BadInput
from benchbox.parse import LatencyTarget
from benchbox.schema import from_dict, to_dict
from benchbox.store import atomic_write_text
from benchbox.sweep.fleet.data import DEFAULT_GROUP_LABEL
from benchbox.sweep.prepare import now_iso

MANIFEST = "fleet.json"
MANIFEST_SCHEMA = "benchbox.fleet/1"


@dataclass(frozen=True)
class ManifestGroup:
    name: str
    profile: str
    report: str  # file name inside the fleet folder


@dataclass(frozen=True)
class Manifest:
    """`fleet.json`: what `resume_fleet` needs to finish a fleet's reports."""

    groups: tuple[ManifestGroup, ...]
    group_label: str = DEFAULT_GROUP_LABEL
    address: str = "auto"
    latency_target: LatencyTarget | None = None  # written as its text, e.g. "p99=50ms"
    created: str = ""
    schema: str = MANIFEST_SCHEMA


def fleet_out_dir(out: str | None) -> str:
    """The folder of a new fleet: `out`, or reports/fleet-TIME; BadInput when it already holds
    a fleet (resume it instead)."""
    if out is None:
        return str(Path("reports") / f"fleet-{now_iso().replace(':', '').replace('-', '')[:15]}")
    if (Path(out) / MANIFEST).exists():
        raise BadInput(
            f"{out} already holds a fleet",
            f"finish it with `benchbox fleet --resume {out}`, or choose another --out",
        )
    return out


def write_manifest(out_dir: Path, manifest: Manifest) -> Path:
    return atomic_write_text(out_dir / MANIFEST, json.dumps(to_dict(manifest), indent=1) + "\n")


def read_manifest(folder: Path) -> Manifest:
    """The fleet folder's manifest; BadInput when the folder holds no fleet."""
    path = folder / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(
            f"{folder} holds no fleet ({MANIFEST} is missing)",
            "pass the --out folder of a `benchbox fleet` run",
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInput(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict) or data.get("schema") != MANIFEST_SCHEMA:
        raise BadInput(f"{path} is not a benchbox fleet manifest")
    return from_dict(Manifest, data, str(path))
