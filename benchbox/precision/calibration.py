"""The samples int8-static is calibrated on, and the accuracy check's fixed input sets.

Real samples come from a data source (`samples=` here: a list of input dicts, one batch each, as
`benchbox.data` readers give them). Without one, synthetic inputs are made from the model's input
specs (`model.synthesize_inputs`: normal floats, small-vocabulary ids, masks of ones), and the
report says so. Synthetic inputs cannot stand in for calibration when an input's values carry a
meaning benchbox cannot guess: an integer input that is neither an index with a known bound (an
embedding lookup) nor named like ids, tokens, masks or segments (a count, a size, a top-k), or an
input whose dtype cannot be synthesized at all. Those models need real samples (`needs_data`).
"""

from __future__ import annotations

from typing import Any

from benchbox import model as model_mod
from benchbox.errors import BadInput
from benchbox.schema import ModelInfo

CALIBRATION_SAMPLES = 64
_ID_WORDS = ("id", "ids", "token", "tokens", "mask", "segment", "position", "index", "indices")
_INT_DTYPES = {"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"}


def sample_batch(info: ModelInfo, batch_size: int | None = None) -> int:
    """The batch size samples are made at: the given one, else the model's fixed batch, else 1."""
    if batch_size is not None:
        return batch_size
    return info.batch if isinstance(info.batch, int) else 1


def needs_data_reason(info: ModelInfo) -> str | None:
    """Why synthetic inputs cannot calibrate this model (it needs real samples), else None."""
    reason = model_mod.batch_skip_reason(info, sample_batch(info))
    if reason and "not supported" in reason:
        return reason
    limits = model_mod.index_limits(info.path) if info.path else {}
    for spec in info.inputs:
        if spec.name in info.input_values or spec.dtype not in _INT_DTYPES:
            continue
        words = set(spec.name.lower().replace("-", "_").split("_"))
        named_like_ids = bool(words & set(_ID_WORDS)) or spec.name.lower().endswith("ids")
        if spec.name not in limits and not named_like_ids:
            return (
                f"integer input '{spec.name}' is not an index with a known bound nor named like "
                "ids or a mask, so synthetic values would calibrate on meaningless data"
            )
    return None


def synthetic_samples(
    info: ModelInfo, count: int, seed: int, batch_size: int | None = None
) -> list[dict[str, Any]]:
    """`count` deterministic input sets at the sample batch size."""
    return model_mod.synthesize_inputs(info, sample_batch(info, batch_size), count, seed)


def calibration_samples(
    info: ModelInfo,
    samples: list[dict[str, Any]] | None = None,
    source: str | None = None,
    count: int = CALIBRATION_SAMPLES,
    seed: int = 0,
) -> tuple[list[dict[str, Any]], str]:
    """The calibration input sets and where they came from, in words (for the report).

    `samples`: real input sets from a data source named `source`; None: synthetic ones, refused
    with BadInput when the model needs real data (see `needs_data_reason`).
    """
    if samples:
        return list(samples[:count]), f"{source or 'data'} ({min(count, len(samples))} samples)"
    reason = needs_data_reason(info)
    if reason:
        raise BadInput(
            f"int8-static needs calibration data for this model: {reason}",
            "give real samples with --data, or measure int8-dynamic instead",
        )
    return synthetic_samples(info, count, seed), f"synthetic ({count} samples from input specs)"


def data_reader(samples: list[dict[str, Any]]) -> Any:
    """An onnxruntime CalibrationDataReader over the input sets."""
    from onnxruntime.quantization import CalibrationDataReader

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._items = iter(samples)

        def get_next(self) -> dict[str, Any] | None:
            return next(self._items, None)

        def rewind(self) -> None:
            self._items = iter(samples)

    return _Reader()
