"""Machine profiles (what an hour costs, what the machine draws) and the cost formulas.

A profile is a TOML file: built-ins live in `benchbox/profiles/`, users add their own in folders
named by `BENCHBOX_PROFILES` (os.pathsep-separated; each must be an existing folder; a user
profile with the same name as a built-in wins, and `shadowed_builtin` says so). The formulas are
pure functions; `price_report` applies them to a report. `electricity_only` is the profile a
host that matches no machine profile is priced with.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import tomllib
from pathlib import Path
from typing import Any

from benchbox import schema
from benchbox.errors import BadInput
from benchbox.files import require_regular_file
from benchbox.schema import PowerSpec, Profile, ProfileHardware

BUILTIN_DIR = Path(__file__).resolve().parent / "profiles"
ENV_VAR = "BENCHBOX_PROFILES"
SECONDS_PER_HOUR = 3600.0
JOULES_PER_KWH = 3.6e6
MILLION = 1e6

# The fallback when no profile matches the host: no machine price, electricity at a stated rate.
ELECTRICITY_ONLY = "electricity-only"
DEFAULT_USD_PER_KWH = 0.146
DEFAULT_RATE_SOURCE = (
    "U.S. average commercial rate, 14.6 cents/kWh, EIA Electric Power Monthly Table 5.6.A as "
    "republished in energypricestoday.com/data/sources/electricity-prices.json, 2026-04-26"
)
# Full-load watts per vCPU for the estimate: 350 W TDP over the 112 threads of a Xeon Platinum
# 8480+ (Intel ARK), as the aws-c7i profiles use; idle is 30% of it (an assumption, not a figure).
DEFAULT_W_PER_VCPU = 3.125


# ---------------------------------------------------------------- formulas (pure)


def capacity_usd_per_million(price_per_hour_usd: float, throughput_ips: float) -> float:
    """Machine-time cost of a million inferences (SageMaker's CostPerInference * 1e6)."""
    if not throughput_ips > 0:
        raise ValueError(f"throughput_ips must be positive, got {throughput_ips}")
    return price_per_hour_usd / (SECONDS_PER_HOUR * throughput_ips) * MILLION


def energy_usd_per_million(
    power_w: float, pue: float, throughput_ips: float, usd_per_kwh: float
) -> float:
    """What a million inferences cost in electricity: W * PUE / ips is J per inference."""
    if not throughput_ips > 0:
        raise ValueError(f"throughput_ips must be positive, got {throughput_ips}")
    return power_w * pue / throughput_ips / JOULES_PER_KWH * usd_per_kwh * MILLION


def energy_j_per_inference(power_w: float, throughput_ips: float) -> float:
    """Joules one inference takes at this average power and throughput."""
    if not throughput_ips > 0:
        raise ValueError(f"throughput_ips must be positive, got {throughput_ips}")
    return power_w / throughput_ips


def estimate_power_w(cpu_util_pct: float, idle_w: float, tdp_w: float) -> float:
    """Linear power model: idle + util/100 * (tdp - idle), with util clamped to 0..100."""
    util = min(max(float(cpu_util_pct), 0.0), 100.0)
    return idle_w + util / 100.0 * (tdp_w - idle_w)


def usd_per_million(profile: Profile, throughput_ips: float, power_w: float | None) -> float | None:
    """Capacity cost plus, for machines that pay for their own power, the energy cost.

    None when the throughput is not a positive number (nothing to price).
    """
    if not _positive(throughput_ips):
        return None
    total = capacity_usd_per_million(profile.price_per_hour_usd, throughput_ips)
    spec = profile.power
    if not spec.energy_included and power_w is not None and spec.usd_per_kwh is not None:
        total += energy_usd_per_million(power_w, spec.pue, throughput_ips, spec.usd_per_kwh)
    return total


def fleet_size(
    qps: float,
    throughput_ips: float,
    headroom: float = 0.8,
    price_per_hour_usd: float | None = None,
) -> schema.Fleet:
    """Replicas needed to serve `qps` with each replica run at `headroom` of its throughput."""
    if not qps > 0:
        raise BadInput(f"the target rate must be positive, got {qps:g} requests/s")
    if not 0 < headroom <= 1:
        raise BadInput(f"headroom must be in (0, 1], got {headroom:g}", "e.g. 0.8 keeps 20% spare")
    if not _positive(throughput_ips):
        raise BadInput(f"throughput must be positive to size a fleet, got {throughput_ips}")
    # Round away float noise (e.g. 800 / (1000 * 0.8) = 1.0000000000000002) before ceil.
    replicas = max(1, math.ceil(round(qps / (throughput_ips * headroom), 9)))
    usd_per_hour = None if price_per_hour_usd is None else replicas * price_per_hour_usd
    return schema.Fleet(qps=qps, replicas=replicas, headroom=headroom, usd_per_hour=usd_per_hour)


def _positive(x: float | None) -> bool:
    return x is not None and isinstance(x, int | float) and math.isfinite(x) and x > 0


# ---------------------------------------------------------------- pricing a report


def price_report(report: schema.Report, profile: Profile) -> schema.Report:
    """A copy of the report priced on this profile: power estimates redone from the profile,
    energy per inference and cost per million filled in for every cell with a result.

    Measured power (nvml, rapl) is kept; estimated or missing power is re-estimated from the
    profile when the CPU utilisation is known. Cells without a result are left as they are.
    """
    cells = tuple(_price_cell(cell, profile) for cell in report.cells)
    return schema.replace(report, cells=cells, profile=profile)


def _price_cell(cell: schema.Cell, profile: Profile) -> schema.Cell:
    result = cell.result
    if result is None:
        return cell
    power_w = result.power_w
    source = result.power_source
    above_idle = result.power_above_idle_w
    if source in (None, "estimate") and result.cpu_util_pct is not None:
        spec = profile.power
        power_w = estimate_power_w(result.cpu_util_pct, spec.idle_w, spec.tdp_w)
        source = "estimate"
        above_idle = power_w - spec.idle_w
    elif source in (None, "estimate"):
        # An estimate made from another profile says nothing about this one.
        power_w, source, above_idle = None, None, None
    throughput = result.throughput_ips
    energy = (
        energy_j_per_inference(power_w, throughput)
        if power_w is not None and _positive(throughput)
        else None
    )
    new = schema.replace(
        result,
        power_w=power_w,
        power_source=source,
        power_above_idle_w=above_idle,
        energy_j_per_inference=energy,
        cost_usd_per_million=usd_per_million(profile, throughput, power_w),
    )
    return schema.replace(cell, result=new)


# ---------------------------------------------------------------- loading profiles


def profile_dirs() -> list[Path]:
    """Folders searched by name, first match wins: BENCHBOX_PROFILES folders, then built-ins.

    BadInput when a BENCHBOX_PROFILES entry is missing or is not a folder: a typo there would
    otherwise price a sweep on a built-in the user meant to replace.
    """
    dirs = [Path(p).expanduser() for p in os.environ.get(ENV_VAR, "").split(os.pathsep) if p]
    for folder in dirs:
        if not folder.exists():
            raise BadInput(
                f"{ENV_VAR} names {folder}, which does not exist",
                f"create the folder, or set {ENV_VAR} to existing folders (separated by "
                f"'{os.pathsep}')",
            )
        if not folder.is_dir():
            raise BadInput(
                f"{ENV_VAR} names {folder}, which is a file, not a folder",
                f"set {ENV_VAR} to the folder that holds your .toml profiles",
            )
    return [*dirs, BUILTIN_DIR]


def _index() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for folder in profile_dirs():
        for path in sorted(folder.glob("*.toml")):
            found.setdefault(path.stem, path)
    return found


def shadowed_builtin(profile: Profile) -> Path | None:
    """The built-in file a user profile of the same name overrides, or None."""
    if profile.path is None:
        return None
    builtin = BUILTIN_DIR / f"{profile.name}.toml"
    if not builtin.is_file():
        return None
    return None if Path(profile.path).resolve() == builtin.resolve() else builtin


def electricity_only(vcpus: int) -> Profile:
    """The profile of a host no machine profile describes: no hourly price, electricity at the
    default rate, power estimated from CPU use at DEFAULT_W_PER_VCPU per vCPU."""
    tdp_w = DEFAULT_W_PER_VCPU * max(int(vcpus), 1)
    return Profile(
        name=ELECTRICITY_ONLY,
        description=(
            f"No machine price: electricity only, at {DEFAULT_USD_PER_KWH:g} USD/kWh, "
            f"power estimated at {DEFAULT_W_PER_VCPU:g} W per vCPU at full load"
        ),
        price_per_hour_usd=0.0,
        price_source=DEFAULT_RATE_SOURCE,
        price_date="2026-04-26",
        power=PowerSpec(
            idle_w=round(0.3 * tdp_w, 3),
            tdp_w=tdp_w,
            pue=1.0,
            usd_per_kwh=DEFAULT_USD_PER_KWH,
            energy_included=False,
        ),
        hardware=ProfileHardware(vcpus=int(vcpus)),
    )


def profile_names() -> list[str]:
    """Names of every profile that `load_profile` can find by name."""
    return sorted(_index())


def load_profile(name_or_path: str) -> Profile:
    """A profile by built-in name, by name in a BENCHBOX_PROFILES folder, or by path to a .toml."""
    text = str(name_or_path).strip()
    if not text:
        raise BadInput("the profile name is empty", _known_hint())
    candidate = Path(text).expanduser()
    looks_like_path = text.endswith(".toml") or os.sep in text or (os.altsep or "\0") in text
    if candidate.exists() and (looks_like_path or text not in _index()):
        return _load_file(candidate)
    if looks_like_path:
        raise BadInput(f"profile file {text} does not exist", _known_hint())
    path = _index().get(text)
    if path is None:
        raise BadInput(f"unknown profile {text!r}", _known_hint())
    return _load_file(path)


def list_profiles() -> list[Profile]:
    """Every profile findable by name (user folders shadow built-ins), sorted by name."""
    return [_load_file(path) for _, path in sorted(_index().items())]


def _known_hint() -> str:
    names = profile_names()
    known = ", ".join(names) if names else "(none found)"
    return f"known profiles: {known}; or pass a path to a .toml file (see `benchbox profiles`)"


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _load_file(path: Path) -> Profile:
    where = _display(path)
    require_regular_file(path, "profile")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise BadInput(f"cannot read profile {where}: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadInput(f"{where}: not a text file (profiles are UTF-8 TOML)") from None
    except RecursionError:
        raise BadInput(f"{where}: nested too deeply to be a profile") from None
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(
            f"{where}: not valid TOML ({exc})",
            "see benchbox/profiles/*.toml for the expected layout",
        ) from None
    return with_origin(_from_mapping(data, where, path=str(path)))


def with_origin(profile: Profile) -> Profile:
    """The profile with where it came from recorded: built in, or a user's over a built-in."""
    if profile.path is None:
        return profile
    builtin = Path(profile.path).resolve().parent == BUILTIN_DIR.resolve()
    shadows = shadowed_builtin(profile) is not None
    return schema.replace(profile, builtin=builtin, shadows_builtin=shadows)


def profile_to_dict(profile: Profile) -> dict[str, Any]:
    """The profile as plain JSON-ready data (its form in a report's `profile`)."""
    return schema.to_dict(profile)


def profile_from_dict(data: dict[str, Any]) -> Profile:
    """The inverse of `profile_to_dict` (checks the data, as a report may be hand-edited)."""
    if not isinstance(data, dict):
        raise BadInput("report profile: expected an object")
    path = data.get("path")
    profile = _from_mapping(data, "report profile", path=path if isinstance(path, str) else None)
    origin = {k: data[k] for k in ("builtin", "shadows_builtin") if isinstance(data.get(k), bool)}
    return schema.replace(profile, **origin) if origin else profile


# ---------------------------------------------------------------- validation

# The [hardware] keys a profile may state, and their types (matching reads all but memory_gb).
HARDWARE_KEYS = (
    ("cpu", str),
    ("cpu_vendor", str),
    ("cpu_family", str),
    ("vcpus", int),
    ("memory_gb", float),
    ("gpus", str),
    ("gpu_model", str),
    ("gpu_count", int),
)


def _from_mapping(data: dict[str, Any], where: str, path: str | None) -> Profile:
    name = _get_str(data, "name", where)
    power = data.get("power")
    if not isinstance(power, dict):
        raise BadInput(
            f"{where}: missing [power] table"
            if power is None
            else f"{where}: power must be a table",
            "add [power] with idle_w, tdp_w, pue, usd_per_kwh, energy_included",
        )
    hardware = data.get("hardware", {})
    if not isinstance(hardware, dict):
        raise BadInput(f"{where}: hardware must be a table")
    price = _get_number(data, "price_per_hour_usd", where)
    idle_w = _get_number(power, "idle_w", where, "[power].")
    tdp_w = _get_number(power, "tdp_w", where, "[power].")
    pue = _get_number(power, "pue", where, "[power].", default=1.0)
    kwh = power.get("usd_per_kwh")
    usd_per_kwh = None if kwh is None else _get_number(power, "usd_per_kwh", where, "[power].")
    included = power.get("energy_included", True)
    if not isinstance(included, bool):
        raise BadInput(f"{where}: [power].energy_included must be true or false")
    for key, kind in HARDWARE_KEYS:
        if key in hardware:
            _check_type(hardware[key], kind, f"{where}: [hardware].{key}")
    profile = Profile(
        name=name,
        description=_get_str(data, "description", where, required=False),
        price_per_hour_usd=price,
        price_source=_get_str(data, "price_source", where),
        price_date=_get_date(data, where),
        power=PowerSpec(
            idle_w=idle_w,
            tdp_w=tdp_w,
            pue=pue,
            usd_per_kwh=usd_per_kwh,
            energy_included=included,
        ),
        hardware=_plain(hardware),
        path=path,
    )
    check_profile(profile, where)
    return profile


def check_profile(profile: Profile, where: str) -> None:
    """BadInput when a profile's values cannot describe a machine (a negative price, idle power
    above full-load power, ...); the TOML loader and `--resume` of a report both check this."""
    price, spec = profile.price_per_hour_usd, profile.power
    if price < 0:
        raise BadInput(f"{where}: price_per_hour_usd must not be negative (got {price:g})")
    if spec.idle_w < 0:
        raise BadInput(f"{where}: [power].idle_w must not be negative (got {spec.idle_w:g})")
    if spec.tdp_w <= 0:
        raise BadInput(f"{where}: [power].tdp_w must be positive (got {spec.tdp_w:g})")
    if spec.idle_w > spec.tdp_w:
        raise BadInput(
            f"{where}: [power].idle_w ({spec.idle_w:g}) is above [power].tdp_w ({spec.tdp_w:g})",
            "idle power cannot exceed full-load power",
        )
    if spec.pue < 1:
        raise BadInput(f"{where}: [power].pue must be at least 1 (got {spec.pue:g})")
    if spec.usd_per_kwh is not None and spec.usd_per_kwh < 0:
        raise BadInput(f"{where}: [power].usd_per_kwh must not be negative")
    if not spec.energy_included and spec.usd_per_kwh is None:
        raise BadInput(
            f"{where}: [power].usd_per_kwh is required when energy_included = false",
            "a machine that pays for its own power needs the price of a kWh",
        )


def _get_number(
    table: dict[str, Any], key: str, where: str, prefix: str = "", default: float | None = None
) -> float:
    if key not in table:
        if default is not None:
            return default
        raise BadInput(f"{where}: missing {prefix}{key}")
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadInput(f"{where}: {prefix}{key} must be a number (got {value!r})")
    return float(value)


def _get_str(table: dict[str, Any], key: str, where: str, required: bool = True) -> str:
    value = table.get(key)
    if value is None and not required:
        return ""
    if value is None:
        raise BadInput(f"{where}: missing {key}")
    if not isinstance(value, str) or (required and not value.strip()):
        raise BadInput(f"{where}: {key} must be a non-empty string (got {value!r})")
    return value


def _get_date(table: dict[str, Any], where: str) -> str:
    value = table.get("price_date")
    if value is None:
        raise BadInput(
            f"{where}: missing price_date", "the date of the price page, e.g. 2026-11-28"
        )
    if isinstance(value, _dt.date):  # TOML reads a bare 2026-11-28 as a date
        return value.isoformat()
    if isinstance(value, str) and value.strip():
        return value
    raise BadInput(f"{where}: price_date must be a date such as 2026-11-28 (got {value!r})")


def _check_type(value: Any, kind: type, label: str) -> None:
    if kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, kind)
    if not ok:
        expected = {str: "a string", int: "an integer", float: "a number"}[kind]
        raise BadInput(f"{label} must be {expected} (got {value!r})")


def _plain(value: Any) -> Any:
    """TOML values as JSON-ready data (dates become ISO strings)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, _dt.date | _dt.time):
        return value.isoformat()
    return value
