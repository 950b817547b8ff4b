"""Parsing of the small languages on the command line: lists, durations, targets, shapes."""

from __future__ import annotations

import json
import math
from enum import StrEnum
from typing import TypeVar

from benchbox.errors import BadInput
from benchbox.files import require_regular_file
from benchbox.quantity import DURATION as _DURATION
from benchbox.quantity import PERCENTILE_DECIMALS as PERCENTILE_DECIMALS
from benchbox.quantity import PERCENTILES as PERCENTILES
from benchbox.quantity import LatencyTarget as LatencyTarget
from benchbox.quantity import parse_duration_s as parse_duration_s
from benchbox.quantity import parse_target as parse_target
from benchbox.quantity import percentile_label as percentile_label
from benchbox.quantity import percentile_problem as percentile_problem
from benchbox.schema import DynamicBatching

Choice = TypeVar("Choice", bound=StrEnum)


def parse_warmup_s(text: str) -> float | None:
    """--warmup: 'auto' (None: until two windows agree), 0 (no warm-up at all), or a duration."""
    stripped = str(text).strip().lower()
    if stripped == "auto":
        return None
    m = _DURATION.match(stripped)
    if m and float(m.group(1)) == 0.0:
        return 0.0
    return parse_duration_s(text, "--warmup")


def parse_int_list(text: str, what: str, minimum: int = 1) -> list[int]:
    """'1,4,16' -> [1, 4, 16]; every value must be an integer >= minimum."""
    items = _split(text, what)
    out = []
    for item in items:
        try:
            value = int(item)
        except ValueError:
            raise BadInput(
                f"--{what} {text!r}: {item!r} is not an integer",
                f"write a comma-separated list like --{what} {list_example(what)}",
            ) from None
        if value < minimum:
            raise BadInput(f"--{what} {text!r}: {value} is below the minimum of {minimum}")
        out.append(value)
    return sorted(set(out))


def parse_float_list(text: str, what: str) -> list[float]:
    """'100,250.5' -> [100.0, 250.5]; every value must be > 0."""
    out = []
    for item in _split(text, what):
        try:
            value = float(item)
        except ValueError:
            raise BadInput(
                f"--{what} {text!r}: {item!r} is not a number",
                f"write a comma-separated list like --{what} {list_example(what)}",
            ) from None
        if not value > 0 or value == float("inf"):
            raise BadInput(f"--{what} {text!r}: {item} must be a positive number")
        out.append(value)
    return sorted(set(out))


def parse_str_list(text: str, what: str) -> list[str]:
    """'cpu,openvino' -> ['cpu', 'openvino'] (order kept, duplicates dropped)."""
    return list(dict.fromkeys(_split(text, what)))


# What a list option looks like, for the hint of a malformed one (default: numbers).
_LIST_EXAMPLES = {"device": "cpu,openvino", "rate": "100,200"}


def list_example(what: str) -> str:
    """An example value of the list option `--what`, e.g. 'cpu,openvino' for --device."""
    return _LIST_EXAMPLES.get(what, "1,2,4")


def _split(text: str, what: str) -> list[str]:
    items = [s.strip() for s in str(text).split(",")]
    example = f"--{what} {list_example(what)}"
    if not str(text).strip():
        raise BadInput(f"--{what} is empty", f"give at least one value, like {example}")
    if any(not s for s in items):
        raise BadInput(
            f"--{what} {text!r} is not a valid list",
            f"write it comma-separated, like {example}",
        )
    return items


BATCH = "batch"  # `--shape NAME=batch` ties a symbolic dim to the batch size


def parse_shapes(items: list[str] | None) -> dict[str, int | str]:
    """['seq=128', 'state_batch=batch'] (or 'seq=128,height=224') -> {'seq': 128, ...}; the
    value 'batch' ties the dim to the batch size."""
    out: dict[str, int | str] = {}
    for item in items or []:
        for part in str(item).split(","):
            name, sep, value = part.partition("=")
            if not sep or not name.strip():
                raise BadInput(
                    f"--shape {part!r} is not NAME=SIZE", "e.g. --shape seq=128 or state=batch"
                )
            if value.strip().lower() == BATCH:
                out[name.strip()] = BATCH
                continue
            try:
                size = int(value)
            except ValueError:
                raise BadInput(
                    f"--shape {part!r}: {value!r} is not an integer (or 'batch')",
                    "e.g. --shape seq=128, or --shape state_batch=batch to follow the batch size",
                ) from None
            if size < 1:
                raise BadInput(f"--shape {part!r}: the size must be at least 1")
            if size > MAX_DIM:
                raise BadInput(f"--shape {part!r}: {size} is above the limit of {MAX_DIM:,}")
            out[name.strip()] = size
    return out


MAX_DIM = 1 << 24  # a symbolic dim's largest size: larger ones only exhaust memory


def parse_input_values(items: list[str] | None) -> dict[str, float | list]:
    """['sr=16000', 'state=0', 'ids=[[1,2,3]]'] -> {'sr': 16000.0, ...}: a number fills the
    input, a JSON array is its value (broadcast to the input's shape)."""
    out: dict[str, float | list] = {}
    for item in items or []:
        if str(item).startswith("@"):  # @values.json: {"NAME": VALUE, ...}
            out.update(_input_values_file(str(item)[1:]))
            continue
        name, sep, value = str(item).partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            raise BadInput(f"--input {item!r} is not NAME=VALUE", "e.g. --input sr=16000")
        if value.startswith("["):
            try:
                array = json.loads(value)
            except (ValueError, RecursionError):
                raise BadInput(
                    f"--input {item!r}: {value[:40]!r} is not a JSON array of numbers",
                    "e.g. --input ids=[[1,2,3]]",
                ) from None
            if not _numbers(array):
                raise BadInput(f"--input {item!r}: the array must hold numbers only")
            out[name] = array
            continue
        try:
            number = float(value)
        except ValueError:
            raise BadInput(
                f"--input {item!r}: {value!r} is not a number or a JSON array",
                "e.g. --input sr=16000 or --input state=0",
            ) from None
        if not math.isfinite(number):
            raise BadInput(f"--input {item!r}: the value must be a finite number")
        out[name] = number
    return out


MAX_VALUES_FILE_BYTES = 1 << 20


def _input_values_file(path: str) -> dict[str, float | list]:
    """The input values of a small JSON file ({"sr": 16000, "state": [[0.0]]})."""
    p = require_regular_file(path, "input values file")
    if p.stat().st_size > MAX_VALUES_FILE_BYTES:
        raise BadInput(f"input values file {p} is over 1 MiB", "give small values only")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise BadInput(f"input values file {p} is not readable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise BadInput(f"input values file {p} must hold an object of NAME: VALUE")
    out: dict[str, float | list] = {}
    for name, value in data.items():
        if not _numbers(value):
            raise BadInput(f"input values file {p}: {name!r} must be a number or an array of them")
        out[str(name)] = float(value) if isinstance(value, int | float) else value
    return out


def _numbers(x: object, depth: int = 0) -> bool:
    if isinstance(x, list):
        return depth < 32 and all(_numbers(v, depth + 1) for v in x)
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def parse_choice(kind: type[Choice], text: str, what: str, flag: str | None = None) -> Choice:
    """The member of the vocabulary `kind` that `text` names (any case), else a one-line BadInput.

    `what` names the vocabulary ("objective"); `flag` ("--objective") the option it came from.
    """
    if isinstance(text, kind):
        return text
    try:
        return kind(str(text).strip().lower())
    except ValueError:
        message = f"{flag} {text!r}: unknown {what}" if flag else f"unknown {what} {text!r}"
        raise BadInput(message, "choose one of " + ", ".join(kind)) from None


def parse_percent(text: str, what: str) -> float:
    """'5%' or '0.05' -> 0.05; a bare number above 1 ('5') is refused as ambiguous."""
    s = str(text).strip()
    try:
        value = float(s[:-1]) / 100.0 if s.endswith("%") else float(s)
    except ValueError:
        raise BadInput(f"--{what} {text!r} is not a percentage", "write it like 5%") from None
    if not math.isfinite(value):
        raise BadInput(f"--{what} {text!r} is not a finite percentage", "write it like 5%")
    if value < 0:
        raise BadInput(f"--{what} {text!r} must not be negative", "write it like 5%")
    if not s.endswith("%") and value > 1:
        raise BadInput(
            f"--{what} {text!r} is a bare number: a percentage needs its % sign",
            f"write --{what} {s}% for {s} percent (or a fraction like 0.05)",
        )
    return value


_DB_HINT = "write it like max_batch=16,delay=2ms[,preferred=4|8] (';' between several), or auto"
AUTO_MAX_BATCH = 32
AUTO_DELAYS_MS = (0.0, 0.5, 1.0, 2.0, 5.0)


def parse_dynamic_batching(
    text: str, auto_max_batch: int = AUTO_MAX_BATCH, target_ms: float | None = None
) -> list[DynamicBatching]:
    """'max_batch=16,delay=2ms,preferred=4|8' (';' between several) -> DynamicBatching settings.

    `auto` is no batching (max_batch 1), then max_batch in powers of two up to `auto_max_batch`,
    each with the delays 0, 0.5, 1, 2 and 5 ms that are below `target_ms`.
    """
    if str(text).strip().lower() == "auto":
        delays = [d for d in AUTO_DELAYS_MS if target_ms is None or d < target_ms]
        auto = [DynamicBatching(1, 0.0)]
        b = 2
        while b <= auto_max_batch:
            auto += [DynamicBatching(b, d) for d in delays]
            b *= 2
        return auto
    out: list[DynamicBatching] = []
    for chunk in str(text).split(";"):
        if not chunk.strip():
            raise BadInput(f"--dynamic-batching {text!r} has an empty setting", _DB_HINT)
        fields: dict[str, str] = {}
        for part in chunk.split(","):
            key, sep, value = part.partition("=")
            key = key.strip().lower().replace("-", "_")
            if not sep:
                why = f"{part.strip()!r} is not KEY=VALUE" if part.strip() else "an empty part"
                raise BadInput(f"--dynamic-batching {chunk.strip()!r}: {why}", _DB_HINT)
            if key not in ("max_batch", "delay", "preferred"):
                raise BadInput(
                    f"--dynamic-batching {chunk.strip()!r}: unknown key {key!r}"
                    " (the keys are max_batch, delay and preferred)",
                    _DB_HINT,
                )
            if key in fields:
                raise BadInput(f"--dynamic-batching {chunk.strip()!r}: {key} given twice", _DB_HINT)
            fields[key] = value.strip()
        if "max_batch" not in fields:
            raise BadInput(f"--dynamic-batching {chunk.strip()!r} needs max_batch", _DB_HINT)
        max_batch = _db_int(fields["max_batch"], "max_batch", chunk)
        delay = fields.get("delay", "0")
        zero = _DURATION.match(delay)
        if zero and float(zero.group(1)) == 0:
            delay_ms = 0.0
        else:
            try:
                delay_ms = parse_duration_s(delay, "delay", default_unit="ms") * 1000.0
            except BadInput:
                raise BadInput(
                    f"--dynamic-batching {chunk.strip()!r}: delay {delay!r} is not a duration",
                    "write it like delay=2ms, delay=500us or delay=0",
                ) from None
        preferred = tuple(
            sorted({_db_int(p, "preferred", chunk) for p in fields.get("preferred", "").split("|")})
            if fields.get("preferred")
            else ()
        )
        too_big = [b for b in preferred if b > max_batch]
        if too_big:
            raise BadInput(
                f"--dynamic-batching {chunk.strip()!r}: preferred size {too_big[0]} is above "
                f"max_batch {max_batch}",
                "preferred sizes must be at most max_batch, as Triton requires",
            )
        out.append(DynamicBatching(max_batch, delay_ms, preferred))
    return list(dict.fromkeys(out))


def _db_int(value: str, what: str, chunk: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise BadInput(
            f"--dynamic-batching {chunk.strip()!r}: {what} {value!r} must be a whole number >= 1",
            _DB_HINT,
        )
    return n


def parse_request_timeout_s(text: str | None) -> float | None:
    """--request-timeout as seconds (None: the default); BadInput unless positive."""
    if text is None:
        return None
    value = parse_duration_s(text, "--request-timeout")
    if not value > 0:
        raise BadInput(f"--request-timeout {text} must be more than 0", "e.g. --request-timeout 5s")
    return value


def parse_generators(text: str | int) -> int | None:
    """--generators as a count of at least 1, or None for `auto`; BadInput otherwise."""
    raw = str(text).strip().lower()
    if raw == "auto":
        return None
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1 or str(n) != raw.lstrip("+"):
        raise BadInput(f"--generators {text}: give a count of at least 1, or auto")
    return n


def parse_arrival(text: str, flag: str = "--arrival") -> str:  # an Arrival where it is one
    """An open loop's arrival process, canonical: 'poisson', 'constant' or 'gamma:cv=N' (gaps of
    mean 1/rate with coefficient of variation N > 0: N=1 is poisson, above 1 bursty)."""
    from benchbox.kinds import Arrival

    raw = str(text).strip().lower().replace(" ", "")
    if raw in {a.value for a in Arrival}:
        return Arrival(raw)
    kind, _, params = raw.partition(":")
    if kind != "gamma":
        raise BadInput(
            f"{flag} '{text}': unknown arrival distribution",
            "choose one of poisson, constant, gamma:cv=N (e.g. gamma:cv=2 for bursts)",
        )
    name, _, value = params.partition("=")
    try:
        cv = float(value) if name == "cv" else math.nan
    except ValueError:
        cv = math.nan
    if not (math.isfinite(cv) and cv > 0):
        raise BadInput(
            f"{flag} {text}: gamma needs cv=N with N above 0", "e.g. --arrival gamma:cv=2"
        )
    return f"gamma:cv={cv:g}"


def arrival_cv(distribution: str) -> float:
    """The coefficient of variation of an arrival process's gaps (canonical text)."""
    if distribution == "constant":
        return 0.0
    if distribution.startswith("gamma:cv="):
        return float(distribution.split("=", 1)[1])
    return 1.0


# ---- rate profiles, trace speeds and trace columns (issue 22: arrivals from a shape of traffic)

# A rate profile's segment: (rate at its start, rate at its end, duration), in requests/s and s.
Segment = tuple[float, float, float]
_PROFILE_HINT = (
    "write RATE:DURATION steps or FROM..TO:DURATION ramps, comma-separated, e.g. "
    "--rate 100:30s,500:30s or --rate 100..500:60s"
)


def is_rate_profile(text: str | None) -> bool:
    """Whether `--rate` text is a profile (one cell whose rate changes) rather than a list."""
    return text is not None and (":" in str(text) or ".." in str(text))


def parse_rate_profile(text: str) -> tuple[Segment, ...]:
    """'100:30s,500:30s' (steps) or '100..500:60s' (a linear ramp), mixed freely, as segments.

    A rate may be 0 (a pause), not every rate; each duration is more than 0."""
    segments = []
    for part in _split(text, "rate"):
        rates, sep, duration = part.rpartition(":")
        if not sep or not rates.strip():
            raise BadInput(f"--rate {text!r}: {part!r} has no :DURATION", _PROFILE_HINT)
        start, dots, end = rates.partition("..")
        first = _profile_rate(start, text, part)
        last = _profile_rate(end, text, part) if dots else first
        zero = _DURATION.match(duration.strip())
        if zero and float(zero.group(1)) == 0:
            raise BadInput(f"--rate {text!r}: {part!r} lasts 0s", "each step lasts more than 0s")
        try:
            seconds = parse_duration_s(duration.strip(), "--rate duration")
        except BadInput:
            raise BadInput(
                f"--rate {text!r}: {duration.strip()!r} in {part!r} is not a duration",
                _PROFILE_HINT,
            ) from None
        segments.append((first, last, seconds))
    if not any(a > 0 or b > 0 for a, b, _ in segments):
        raise BadInput(f"--rate {text!r}: every rate is 0", "give at least one rate above 0")
    return tuple(segments)


def _profile_rate(value: str, text: str, part: str) -> float:
    try:
        rate = float(value)
    except ValueError:
        raise BadInput(
            f"--rate {text!r}: {value.strip()!r} in {part!r} is not a rate", _PROFILE_HINT
        ) from None
    if not (math.isfinite(rate) and rate >= 0):
        raise BadInput(f"--rate {text!r}: {value.strip()!r} in {part!r} must be 0 or more")
    return rate


def profile_text(segments: tuple[Segment, ...]) -> str:
    """The canonical text of a rate profile: '100:30s,100..500:60s'."""
    return ",".join(f"{a:g}:{d:g}s" if a == b else f"{a:g}..{b:g}:{d:g}s" for a, b, d in segments)


def profile_duration_s(segments: tuple[Segment, ...]) -> float:
    """A rate profile's length: the measured duration of its cell."""
    return float(sum(d for _, _, d in segments))


def profile_mean_rps(segments: tuple[Segment, ...]) -> float:
    """A rate profile's mean rate: its expected requests over its length."""
    return sum((a + b) / 2 * d for a, b, d in segments) / profile_duration_s(segments)


def parse_speed(text: str) -> float:
    """--speed '2x', '0.5x' or '2' (times as fast as recorded) as a factor above 0."""
    raw = str(text).strip().lower()
    try:
        speed = float(raw[:-1] if raw.endswith("x") else raw)
    except ValueError:
        speed = math.nan
    if not (math.isfinite(speed) and speed > 0):
        raise BadInput(
            f"--speed {text!r} is not a speed above 0",
            "write it like 2x (twice as fast), 0.5x or 1",
        )
    return speed


# The units a --trace-column's timestamps may be in, as seconds.
TRACE_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


def parse_trace_column(text: str) -> tuple[str, str]:
    """--trace-column 'ts' or 'ts:ms' -> (column, unit); the unit is s unless given."""
    name, _, unit = str(text).strip().rpartition(":") if ":" in str(text) else (text, "", "s")
    name, unit = str(name).strip(), unit.strip().lower()
    if not name:
        raise BadInput(f"--trace-column {text!r} names no column", "e.g. --trace-column ts:ms")
    if unit not in TRACE_UNITS:
        raise BadInput(
            f"--trace-column {text!r}: unknown unit {unit!r}",
            "the units are s, ms, us and ns, e.g. --trace-column ts:ms",
        )
    return name, unit
