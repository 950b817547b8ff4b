"""The device-spec grammar: `cpu`, `cuda:0?opt=v`, `openvino:GPU`, `ov:CPU` -> DeviceSpec.

A device belongs to one runtime:

- onnxruntime, through an execution provider: `cpu`, `cuda:N`, `tensorrt:N`, `rocm:N`,
  `migraphx:N`, `dml:N`, `coreml`, and `openvino[:CPU|GPU|NPU]` (the OpenVINO *execution
  provider*, built into onnxruntime-openvino or loaded as the onnxruntime 1.23+ plugin library
  of `onnxruntime-ep-openvino`). Options after `?` are provider options.
- the OpenVINO runtime itself (`pip install 'benchbox[openvino]'`): `ov[:CPU|GPU|GPU.1|NPU|AUTO]`.
  It runs ONNX files directly, including on non-Intel x86 CPUs where the onnxruntime plugin
  offers no device. Options after `?` are OpenVINO properties, e.g.
  `ov:CPU?INFERENCE_PRECISION_HINT=f32`.

Pure text in, data out: nothing here looks at the host.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from benchbox.errors import BadInput

ORT_GPU = "pip install onnxruntime-gpu (in place of onnxruntime)"
OV_EXTRA = "pip install 'benchbox[openvino]'"
# kind -> (onnxruntime provider, takes a device index, what to install when missing)
PROVIDERS: dict[str, tuple[str, bool, str]] = {
    "cpu": ("CPUExecutionProvider", False, "onnxruntime"),
    "cuda": ("CUDAExecutionProvider", True, ORT_GPU),
    "tensorrt": (
        "TensorrtExecutionProvider",
        True,
        "pip install onnxruntime-gpu tensorrt (in place of onnxruntime)",
    ),
    "rocm": ("ROCMExecutionProvider", True, "an onnxruntime build with ROCm (and AMD drivers)"),
    "migraphx": ("MIGraphXExecutionProvider", True, "an onnxruntime build with MIGraphX"),
    "dml": ("DmlExecutionProvider", True, "pip install onnxruntime-directml (Windows)"),
    "coreml": ("CoreMLExecutionProvider", False, "onnxruntime on macOS"),
    "openvino": (
        "OpenVINOExecutionProvider",
        False,
        "pip install onnxruntime-ep-openvino (the onnxruntime>=1.23 plugin, Intel CPUs/GPUs/NPUs) "
        f"or onnxruntime-openvino; on other CPUs use the OpenVINO runtime: {OV_EXTRA} and "
        "--device ov:CPU",
    ),
}
# The OpenVINO runtime is a second runtime, not an onnxruntime provider.
OV_KIND = "ov"
OV_INSTALL = f"{OV_EXTRA} (or pip install openvino)"
KINDS = (*PROVIDERS, OV_KIND)
GPU_KINDS = {"cuda", "tensorrt", "rocm", "migraphx", "dml"}
NVIDIA_KINDS = ("cuda", "tensorrt")
_TARGET = re.compile(r"^[A-Z][A-Z0-9_]*(\.[0-9]+)?$")
DEVICE_SPELLING = (
    "devices are written cpu, cuda:0, tensorrt:0, rocm:0, migraphx:0, dml:0, coreml, openvino, "
    "openvino:GPU (onnxruntime) or ov:CPU, ov:GPU (the OpenVINO runtime), or all; "
    "see `benchbox devices`"
)


@dataclass(frozen=True)
class DeviceSpec:
    """A parsed device: kind, index (GPU ordinal) or target (`GPU` for openvino/ov), options."""

    kind: str
    index: int | None = None
    target: str | None = None
    options: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """Canonical text: `cuda:0`, `openvino:GPU`, `ov:CPU`, `cpu` (options not included)."""
        if self.index is not None:
            return f"{self.kind}:{self.index}"
        if self.target:
            return f"{self.kind}:{self.target}"
        return self.kind

    @property
    def runtime(self) -> str:
        """`onnxruntime` or `openvino`: which backend runs this device."""
        return "openvino" if self.kind == OV_KIND else "onnxruntime"

    @property
    def provider(self) -> str:
        """The onnxruntime execution provider (`OpenVINO` for the OpenVINO runtime)."""
        return "OpenVINO" if self.kind == OV_KIND else PROVIDERS[self.kind][0]

    @property
    def is_gpu(self) -> bool:
        """Whether the model runs on a GPU (its memory and power are not the host's)."""
        if self.kind in GPU_KINDS:
            return True
        return self.kind in ("openvino", OV_KIND) and (self.target or "").startswith("GPU")


def parse_device(text: str) -> DeviceSpec:
    """`cuda:0?cudnn_conv_algo_search=HEURISTIC` -> DeviceSpec('cuda', 0, options=...)."""
    raw = str(text).strip()
    head, _, query = raw.partition("?")
    kind, _, arg = head.partition(":")
    kind, arg = kind.strip().lower(), arg.strip()
    if kind not in KINDS:
        hint = DEVICE_SPELLING
        if kind == "gpu":
            hint = "name the GPU's runtime: cuda:0 (NVIDIA), rocm:0 (AMD), dml:0 (Windows), ov:GPU"
        raise BadInput(f"unknown device {raw!r}", hint)
    try:
        options = (
            dict(parse_qsl(query, keep_blank_values=True, strict_parsing=True)) if query else {}
        )
    except ValueError:
        raise BadInput(
            f"device {raw!r}: options {query!r} are not NAME=VALUE pairs",
            "write options like cuda:0?cudnn_conv_algo_search=HEURISTIC&arena_extend_strategy="
            "kSameAsRequested",
        ) from None
    if kind in PROVIDERS and PROVIDERS[kind][1]:
        try:
            index = int(arg) if arg else 0
        except ValueError:
            raise BadInput(
                f"device {raw!r}: {arg!r} is not a device number", f"e.g. {kind}:0"
            ) from None
        if index < 0:
            raise BadInput(f"device {raw!r}: the device number must be 0 or more")
        return DeviceSpec(kind, index=index, options=options)
    if kind in ("openvino", OV_KIND):
        target = arg.upper() or "CPU"
        if not _TARGET.match(target):
            raise BadInput(
                f"device {raw!r}: {arg!r} is not an OpenVINO device name",
                f"e.g. {kind}:CPU, {kind}:GPU, {kind}:GPU.1 or {kind}:NPU",
            )
        return DeviceSpec(kind, target=target, options=options)
    if arg:
        raise BadInput(f"device {raw!r}: {kind} takes no ':' part", f"write it as {kind}")
    return DeviceSpec(kind, options=options)


def device_key(spec: DeviceSpec) -> str:
    """The device as written in reports: canonical name plus sorted options."""
    if not spec.options:
        return spec.name
    return spec.name + "?" + "&".join(f"{k}={v}" for k, v in sorted(spec.options.items()))
