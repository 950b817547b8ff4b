"""Precision as a sweep dimension: model variants (fp16, int8) and their accuracy.

- `variants`: each precision built once from the source model (onnxruntime's float16 converter,
  `quantize_dynamic`, `quantize_static` in QDQ form) and cached by the source's sha256, the
  method and the converter's version; a conversion that fails is a one-line reason.
- `calibration`: the samples int8-static is calibrated on (a data source's, or synthetic ones
  from the model's input specs), and when synthetic ones cannot stand in.
- `accuracy`: a cell's outputs against the fp32 CPU reference on the same fixed samples.
- `bounds`: the `--accuracy` grammar (`top1>=99%`, `cosine>=0.999`, `max-abs<=1e-3`,
  `NAME:cosine>=...`); `benchbox.verdict` judges them.

This room sits below `sweep/`: it imports model-level code only (schema, errors, model).
"""

from __future__ import annotations

from benchbox.errors import BadInput
from benchbox.schema import PRECISIONS

DEFAULT_ACCURACY_SAMPLES = 400  # enough for 400/400 agreeing to show top-1 >= 99% at 95%
ALIASES = {"int8d": "int8-dynamic", "int8s": "int8-static", "float16": "fp16", "float32": "fp32"}


def parse_precisions(text: str | None) -> tuple[str, ...]:
    """`fp32,fp16,int8-dynamic` as a tuple of precisions (fp32 when None); BadInput when unknown."""
    if text is None:
        return ("fp32",)
    out: list[str] = []
    for part in (p.strip().lower() for p in text.split(",")):
        if not part:
            continue
        name = ALIASES.get(part, part)
        if name not in PRECISIONS:
            raise BadInput(f"unknown precision {part!r}", f"choose from {', '.join(PRECISIONS)}")
        if name not in out:
            out.append(name)
    if not out:
        raise BadInput("--precision is empty", f"e.g. --precision {','.join(PRECISIONS)}")
    return tuple(out)


def accuracy_plan(
    precisions: tuple[str, ...],
    samples: int | None,
    bounds: tuple[str, ...] | list[str] | None,
    model_path: str,
    shapes: dict | None = None,
    input_values: dict | None = None,
    has_data: bool = False,
) -> tuple[int | None, tuple[str, ...]]:
    """(accuracy samples per cell, or None: not measured; the bounds, checked) for a sweep.

    Accuracy is measured when a precision other than fp32 is swept, when bounds are given or
    when `samples` is; `samples` 0 turns it off (and then bounds are refused). Checks, before
    anything is measured: malformed bounds, bounds on outputs the model lacks, int8-static on a
    model that synthetic calibration cannot serve (`calibration.needs_data_reason`) when no
    --data is given (`has_data`: int8-static then calibrates on the data's samples).
    """
    from benchbox import model as model_mod
    from benchbox.precision.bounds import check_outputs, parse_bounds

    parsed = parse_bounds(list(bounds or ()))
    if samples is not None and not 0 <= samples <= 100_000:
        raise BadInput(f"--accuracy-samples {samples} must be between 0 and 100000")
    if samples == 0 and parsed:
        raise BadInput("--accuracy bounds need outputs compared; --accuracy-samples is 0")
    wanted = samples != 0 and (samples is not None or parsed or precisions != ("fp32",))
    if not wanted and "int8-static" not in precisions:
        return None, ()
    info = model_mod.inspect_model(model_path, shapes or {}, input_values or {})
    check_outputs(parsed, [o.name for o in info.outputs])
    if "int8-static" in precisions and not has_data:
        from benchbox.precision.calibration import needs_data_reason

        reason = needs_data_reason(info)
        if reason:
            raise BadInput(
                f"int8-static needs calibration data for this model: {reason}",
                "give real samples with --data, or measure int8-dynamic instead",
            )
    if not wanted:
        return None, ()
    return (samples or DEFAULT_ACCURACY_SAMPLES), tuple(b.text for b in parsed)
