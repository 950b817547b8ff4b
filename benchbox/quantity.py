"""The grammar of durations, percentiles and latency targets: the text the command line takes
and a report stores (`settings.latency_target` is written as a target's text).

Below `schema` (it imports nothing of benchbox but `errors`), so the report's decoder reads a
target with the same grammar as `--latency-target`; `parse` re-exports these names.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal

from benchbox.errors import BadInput

DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(us|µs|ms|s|m|min|h)?\s*$")
_UNIT_S = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
PERCENTILES = {"p50": 50.0, "p90": 90.0, "p95": 95.0, "p99": 99.0, "p99.9": 99.9}
# A percentile is `p` and a number below 100 with at most this many decimals, so the samples a
# confidence bound needs stay bounded (3688 for p99.9 at 95%); the report stores PERCENTILES.
PERCENTILE_DECIMALS = 1
_PERCENTILE = re.compile(r"^p(\d+)(?:\.(\d+))?$")


def percentile_label(key: str) -> str:
    """'p99_9' -> 'p99.9': a report's percentile key the way users write it."""
    return key.replace("_", ".")


@dataclass(frozen=True)
class LatencyTarget:
    """A bound on one latency percentile, e.g. p99 <= 20 ms."""

    percentile: str  # report key: p50, p90, p95, p99, p99_9
    value_ms: float

    @property
    def q(self) -> float:
        """The percentile as a number in (0, 100)."""
        return PERCENTILES[percentile_label(self.percentile)]

    def __str__(self) -> str:
        return f"{percentile_label(self.percentile)}={self.value_ms:g}ms"

    @property
    def text(self) -> str:
        """The target as `--latency-target` takes it, to the last digit: how a report stores it
        (`str` rounds to 6 digits for messages)."""
        return f"{percentile_label(self.percentile)}={_decimal(self.value_ms)}ms"


def _decimal(x: float) -> str:
    """A float in positional notation (no exponent, which a duration cannot have) that reads
    back as the same float: 50.0 -> '50', 1e-07 -> '0.0000001'."""
    text = format(Decimal(repr(x)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def parse_duration_s(text: str, what: str = "duration", default_unit: str = "s") -> float:
    """'500ms', '2s', '1m' -> seconds (a bare number is in `default_unit`)."""
    m = DURATION.match(str(text))
    if not m:
        raise BadInput(f"{what} {text!r} is not a duration", "write it like 500ms, 2s or 1m")
    value = float(m.group(1)) * _UNIT_S[m.group(2) or default_unit]
    if not math.isfinite(value):
        raise BadInput(f"{what} {text!r} is too large", "write it like 500ms, 2s or 1m")
    if value <= 0:
        raise BadInput(f"{what} {text!r} must be greater than zero", "e.g. 500ms, 2s or 1m")
    return value


def parse_target(text: str) -> LatencyTarget:
    """'p99=20ms' -> LatencyTarget('p99', 20.0)."""
    name, sep, value = str(text).partition("=")
    name = name.strip().lower()
    problem = percentile_problem(name)
    if not sep or problem or name not in PERCENTILES:
        raise BadInput(
            f"latency target {text!r} is not valid" + (f": {problem}" if sep and problem else ""),
            "write it as pNN=VALUE with p50, p90, p95, p99 or p99.9, e.g. p99=20ms",
        )
    if not DURATION.match(value):
        raise BadInput(
            f"latency target {text!r}: {value!r} is not a duration",
            "write it as pNN=VALUE, e.g. p99=20ms or p95=0.5s",
        )
    value_s = parse_duration_s(value, "latency target", default_unit="ms")
    number, unit = DURATION.match(value).groups()
    # In ms as written, not through seconds, so a target's `text` reads back as the same target.
    value_ms = float(number) if unit in (None, "ms") else value_s * 1000.0
    return LatencyTarget(name.replace(".", "_"), value_ms)


def percentile_problem(name: str) -> str | None:
    """Why `name` (like 'p99.9') is outside the percentile grammar, or None when it is inside."""
    m = _PERCENTILE.match(name)
    if not m:
        return f"{name!r} is not a percentile like p99" if name else "the percentile is missing"
    if len(m.group(2) or "") > PERCENTILE_DECIMALS:
        return f"{name} has more than {PERCENTILE_DECIMALS} decimal (the finest is p99.9)"
    if not 0 < float(name[1:]) < 100:
        return f"{name} is out of range (a percentile is above p0 and below p100)"
    return None
