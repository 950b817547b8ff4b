"""Which profile prices a report, and whether its hardware is the hardware that was measured.

`--profile auto` (the default of `sweep` and `run`) picks the profile (built-in, or yours in
BENCHBOX_PROFILES) whose `[hardware]` matches this host: CPU vendor and family, vCPU count, GPU
model and count (`best_match`). When none does, the report is priced at electricity only, at a
stated default rate (`cost.electricity_only`). Whenever a profile's hardware differs from the
report's host, `mismatch` says how, naming both sides; every view (sweep, recommend, compare,
HTML) renders that one answer. The rules are pure functions over `HostInfo` and `Profile`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from benchbox import cost
from benchbox.schema import HostInfo, Profile, Report

AUTO = "auto"
NONE = "none"

# (vendor, family) from words in a CPU's name; the first family word found wins.
_VENDOR_WORDS = (("AMD", "AMD"), ("INTEL", "Intel"), ("XEON", "Intel"), ("GRAVITON", "AWS"))
_FAMILY_WORDS = {
    "EPYC": "EPYC",
    "RYZEN": "Ryzen",
    "THREADRIPPER": "Threadripper",
    "XEON": "Xeon",
    "CORE": "Core",
    "GRAVITON": "Graviton",
    "NEOVERSE": "Neoverse",
    "ALTRA": "Altra",
}
_ARM_VENDOR = {"NEOVERSE": "Arm", "ALTRA": "Ampere"}
# A part number such as 8488C, 7R13, 9R14, 10700K (letters and digits, starting with a digit).
_PART = re.compile(r"(?<![\w.])(\d[0-9A-Z]{3,5})(?![\w.])")
# Arm cores are told apart by their core design: Neoverse N1 (Graviton2), V1 (Graviton3), V2 (4).
_NEOVERSE = re.compile(r"NEOVERSE[\s-]*([NVE]\d)")
_GPU_NOISE = {"NVIDIA", "TESLA", "GEFORCE", "AMD", "RADEON"}


@dataclass(frozen=True)
class Hardware:
    """The facts matching needs about a machine, from a profile's `[hardware]` or a host."""

    cpu: str = ""
    cpu_vendor: str | None = None
    cpu_family: str | None = None
    cpu_part: str | None = None
    vcpus: int | None = None
    gpu_model: str | None = None
    gpu_count: int = 0

    def cpu_text(self) -> str:
        """The CPU as people name it: the description, else vendor and family."""
        if self.cpu:
            return self.cpu
        return " ".join(p for p in (self.cpu_vendor, self.cpu_family) if p) or "unknown CPU"

    def gpu_text(self) -> str:
        """`1x NVIDIA A10G`, or `no GPU`."""
        if not self.gpu_count:
            return "no GPU"
        return f"{self.gpu_count}x {self.gpu_model or 'GPU'}"


@dataclass(frozen=True)
class Mismatch:
    """How a profile's hardware differs from the host a report measured (both sides named)."""

    profile: str
    differs: tuple[str, ...]  # "CPU", "vCPUs", "GPU"
    profile_side: str
    host_side: str

    def text(self) -> str:
        """One line for every view."""
        return (
            f"pricing on other hardware: profile {self.profile} is {self.profile_side}, but the "
            f"report measured {self.host_side} ({', '.join(self.differs)} differ); its costs "
            "assume the measured figures carry over"
        )


# ---------------------------------------------------------------- reading the two sides


def cpu_traits(name: str) -> tuple[str | None, str | None, str | None]:
    """(vendor, family, part number) from a CPU's name; None where the name does not say."""
    upper = name.upper().replace("(R)", " ").replace("(TM)", " ")
    words = set(re.findall(r"[A-Z]+", upper))
    vendor = next((v for word, v in _VENDOR_WORDS if word in words), None)
    word = next((f for f in _FAMILY_WORDS if f in words), None)
    if vendor is None and word in _ARM_VENDOR:
        vendor = _ARM_VENDOR[word]
    family = _FAMILY_WORDS.get(word) if word else None
    core = _NEOVERSE.search(upper)
    if core:
        vendor, family = "Arm", f"Neoverse {core.group(1)}"
    part = next(iter(_PART.findall(upper)), None)
    return vendor, family, part


def gpu_key(name: str | None) -> str | None:
    """A GPU's model without vendor words and sizes: `NVIDIA A100-SXM4-40GB` -> `A100`."""
    if not name:
        return None
    words = [w for w in re.split(r"[\s\-_]+", name.upper()) if w and w not in _GPU_NOISE]
    if not words:
        return None
    if words[0] in ("RTX", "GTX") and len(words) > 1:
        return f"{words[0]} {words[1]}"
    return words[0]


def profile_hardware(profile: Profile) -> Hardware:
    """The matching facts of a profile's `[hardware]`: explicit fields, else read from the text."""
    hw = profile.hardware
    cpu = hw.cpu or ""
    vendor, family, part = cpu_traits(cpu)
    count, model = _gpus_text(hw.gpus or "")
    gpu_count = count if hw.gpu_count is None else hw.gpu_count
    return Hardware(
        cpu=cpu,
        cpu_vendor=hw.cpu_vendor or vendor,
        cpu_family=hw.cpu_family or family,
        cpu_part=part,
        vcpus=hw.vcpus,
        gpu_model=hw.gpu_model or model,
        gpu_count=int(gpu_count or 0),
    )


def host_hardware(host: HostInfo) -> Hardware:
    """The matching facts of the host a report measured."""
    vendor, family, part = cpu_traits(host.cpu_model)
    names = Counter(g.name for g in host.gpus)
    model = names.most_common(1)[0][0] if names else None
    return Hardware(
        cpu=host.cpu_model,
        cpu_vendor=vendor,
        cpu_family=family,
        cpu_part=part,
        vcpus=host.cpu_cores_logical,
        gpu_model=model,
        gpu_count=len(host.gpus),
    )


def _gpus_text(text: str) -> tuple[int, str | None]:
    """(count, model) from `1x NVIDIA A10G 24GB`, `8x NVIDIA H100 80GB SXM5` or `NVIDIA L4`."""
    text = text.strip()
    if not text:
        return 0, None
    m = re.match(r"(\d+)\s*[x×]\s*(.+)", text)
    if m:
        return int(m.group(1)), m.group(2).strip()
    return 1, text


# ---------------------------------------------------------------- the rules


def describe(hw: Hardware) -> str:
    """`AMD EPYC, 2 vCPU` / `AMD EPYC 7R32, 4 vCPU, 1x NVIDIA A10G`: what the match rests on."""
    cpu = " ".join(p for p in (hw.cpu_vendor, hw.cpu_family) if p) or hw.cpu or "unknown CPU"
    parts = [cpu]
    if hw.vcpus:
        parts.append(f"{hw.vcpus} vCPU")
    if hw.gpu_count:
        parts.append(hw.gpu_text())
    return ", ".join(parts)


def matches(profile_hw: Hardware, host_hw: Hardware) -> bool:
    """True when the profile describes this host: same CPU vendor and family, same vCPU count,
    same GPU model and count. A side that does not state a CPU vendor never matches."""
    if profile_hw.cpu_vendor is None or host_hw.cpu_vendor is None:
        return False
    if profile_hw.cpu_vendor.lower() != host_hw.cpu_vendor.lower():
        return False
    if (profile_hw.cpu_family or "").lower() != (host_hw.cpu_family or "").lower():
        return False
    if profile_hw.vcpus is None or profile_hw.vcpus != host_hw.vcpus:
        return False
    if profile_hw.gpu_count != host_hw.gpu_count:
        return False
    return not host_hw.gpu_count or gpu_key(profile_hw.gpu_model) == gpu_key(host_hw.gpu_model)


def best_match(host: HostInfo, profiles: Iterable[Profile]) -> Profile | None:
    """The profile that matches this host; among several, the one naming the host's CPU part
    number, then the cheapest per hour, then by name. None when none matches."""
    host_hw = host_hardware(host)
    found = [p for p in profiles if matches(profile_hardware(p), host_hw)]
    if not found:
        return None

    def rank(p: Profile) -> tuple[bool, float, str]:
        part = profile_hardware(p).cpu_part
        return (not (part and part == host_hw.cpu_part), p.price_per_hour_usd, p.name)

    return min(found, key=rank)


def mismatch(profile: Profile, host: HostInfo) -> Mismatch | None:
    """How the profile's hardware differs from the host, or None when nothing it states does.

    Only what both sides state is compared: a CPU whose vendor, family or part number differ,
    a different vCPU count, a different GPU model or count.
    """
    if profile.name == cost.ELECTRICITY_ONLY:  # priced for this host, by construction
        return None
    p, h = profile_hardware(profile), host_hardware(host)
    differs = []
    if _cpu_differs(p, h):
        differs.append("CPU")
    if p.vcpus is not None and p.vcpus != h.vcpus:
        differs.append("vCPUs")
    if _gpu_differs(p, h):
        differs.append("GPU")
    if not differs:
        return None
    return Mismatch(profile.name, tuple(differs), _side(p), _side(h))


def _cpu_differs(p: Hardware, h: Hardware) -> bool:
    for a, b in ((p.cpu_vendor, h.cpu_vendor), (p.cpu_family, h.cpu_family)):
        if a and b and a.lower() != b.lower():
            return True
    return bool(p.cpu_part and h.cpu_part and p.cpu_part != h.cpu_part)


def _gpu_differs(p: Hardware, h: Hardware) -> bool:
    if p.cpu == "host not included" and not p.vcpus:  # a GPU-only profile: compare its GPUs
        return p.gpu_count != h.gpu_count or gpu_key(p.gpu_model) != gpu_key(h.gpu_model)
    if p.gpu_count != h.gpu_count:
        return True
    return bool(p.gpu_count) and gpu_key(p.gpu_model) != gpu_key(h.gpu_model)


def _side(hw: Hardware) -> str:
    parts = [hw.cpu_text()]
    if hw.vcpus:
        parts.append(f"{hw.vcpus} vCPU")
    parts.append(hw.gpu_text())
    return ", ".join(parts)


# ---------------------------------------------------------------- choosing and saying


def choose_profile(text: str | None, host: HostInfo) -> Profile | None:
    """The profile `--profile TEXT` means on this host: `none` (or None) prices nothing,
    `auto` the matching built-in or, failing that, electricity only; else a name or a file."""
    key = NONE if text is None else text.strip().lower()
    if key == NONE:
        return None
    if key == AUTO:
        found = best_match(host, cost.list_profiles())
        return found if found is not None else cost.electricity_only(host.cpu_cores_logical)
    return cost.load_profile(text)


def check_choice(text: str | None) -> None:
    """BadInput now, before anything is measured, for a `--profile` that cannot be loaded (and,
    for `auto`, for a BENCHBOX_PROFILES that names no folder)."""
    key = NONE if text is None else text.strip().lower()
    if key == AUTO:
        cost.profile_dirs()
    elif key != NONE:
        cost.load_profile(text)


def pricing_lines(report: Report) -> list[str]:
    """What the sweep says about its price: which profile, why, and any hardware mismatch."""
    profile = report.profile
    if profile is None:
        return []
    asked = (report.settings.profile if report.settings else None) or ""
    host_hw = host_hardware(report.host)
    if profile.name == cost.ELECTRICITY_ONLY:
        kwh = profile.power.usd_per_kwh or 0.0
        return [
            f"no built-in profile matches this host ({describe(host_hw)}): priced at electricity "
            f"only, {kwh:g} USD/kWh (default rate, {cost.DEFAULT_RATE_SOURCE}), power estimated "
            "from CPU use",
            "for a machine's hourly price pass --profile NAME (`benchbox profiles list`) or a "
            ".toml file; --profile none turns pricing off",
        ]
    line = f"priced as {profile.name}"
    if asked.strip().lower() == AUTO:
        line += f" (matches {describe(host_hw)})"
    if profile.shadows_builtin:  # recorded by the sweep, not asked of this install
        line += f"; your {profile.path} wins over the built-in of that name"
    lines = [line]
    found = mismatch(profile, report.host)
    if found is not None:
        lines.append(found.text())
    return lines


def mismatch_text(report: Report) -> str | None:
    """The report's hardware mismatch line, or None (no profile, or the hardware agrees)."""
    if report.profile is None:
        return None
    found = mismatch(report.profile, report.host)
    return found.text() if found else None
