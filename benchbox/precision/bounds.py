"""The `--accuracy` grammar: bounds on a cell's outputs against the fp32 reference.

    [OUTPUT:]METRIC OP VALUE[, ...]

METRIC: `top1` (agreement of the argmax over the last dim, >=, a percentage or a fraction),
`label` (accuracy against a data source's labels, >=), `cosine` (mean per-sample cosine
similarity, >=), `max-abs` (largest absolute error, <=), `rel` (relative L2 error, <=).
Without OUTPUT a bound applies to every output that has the metric. `benchbox.verdict` judges
them (rates by the lower end of their Wilson interval).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from benchbox.errors import BadInput

# metric -> (the only operator it takes, the OutputAccuracy field or rate it reads)
METRICS = {
    "top1": ">=",
    "label": ">=",
    "cosine": ">=",
    "max-abs": "<=",
    "rel": "<=",
}
RATES = ("top1", "label")
_BOUND = re.compile(
    r"^\s*(?:(?P<output>[^:<>=]+):)?\s*(?P<metric>[a-z0-9-]+)\s*(?P<op>>=|<=)\s*(?P<value>\S+)\s*$"
)
EXAMPLE = (
    "e.g. --accuracy top1>=99% or cosine>=0.999 or max-abs<=1e-3 (NAME:cosine>=0.99 per output)"
)


@dataclass(frozen=True)
class AccuracyBound:
    """One bound: metric, operator, value (a fraction for rates), optional output name."""

    metric: str
    op: str
    value: float
    output: str | None = None
    text: str = ""


def parse_bound(text: str) -> AccuracyBound:
    """One bound from its text; BadInput, with an example, when malformed."""
    m = _BOUND.match(text)
    if m is None:
        raise BadInput(f"accuracy bound {text!r} is malformed", EXAMPLE)
    metric, op, raw = m["metric"], m["op"], m["value"]
    if metric not in METRICS:
        raise BadInput(
            f"unknown accuracy metric {metric!r} in {text!r}", f"choose from {', '.join(METRICS)}"
        )
    if op != METRICS[metric]:
        raise BadInput(f"accuracy bound {text!r}: {metric} takes {METRICS[metric]}", EXAMPLE)
    try:
        value = float(raw[:-1]) / 100.0 if raw.endswith("%") else float(raw)
    except ValueError:
        raise BadInput(f"accuracy bound {text!r}: {raw!r} is not a number", EXAMPLE) from None
    if not math.isfinite(value) or value < 0:
        raise BadInput(f"accuracy bound {text!r}: {raw!r} must be a finite number >= 0", EXAMPLE)
    if metric in RATES and value > 1:
        raise BadInput(
            f"accuracy bound {text!r}: a rate is at most 100%",
            "write it as a percentage (99%) or a fraction (0.99)",
        )
    if metric == "cosine" and value > 1:
        raise BadInput(f"accuracy bound {text!r}: a cosine is at most 1", EXAMPLE)
    output = m["output"].strip() if m["output"] else None
    return AccuracyBound(metric, op, value, output, text.strip())


def parse_bounds(items: list[str] | tuple[str, ...] | None) -> tuple[AccuracyBound, ...]:
    """Every bound of the (repeatable, comma-separated) option."""
    out: list[AccuracyBound] = []
    for item in items or ():
        for part in str(item).split(","):
            if part.strip():
                out.append(parse_bound(part))
    return tuple(out)


def check_outputs(bounds: tuple[AccuracyBound, ...], outputs: list[str]) -> None:
    """BadInput when a bound names an output the model does not have."""
    for b in bounds:
        if b.output is not None and b.output not in outputs:
            raise BadInput(
                f"accuracy bound {b.text!r} names output '{b.output}', which the model lacks",
                f"its outputs: {', '.join(outputs) or '(none)'}",
            )
