"""Backends: given a serving config, a callable per instance that runs one batch.

The interface is one function per runtime module, `open_instances(model_path, config) ->
Instances`: each runner takes a dict of input name -> numpy array and runs that batch
synchronously; runners are called from the load drivers' worker threads (several threads may
share one runner when the concurrency exceeds the instances, so runners must be thread-safe).
A device belongs to one runtime (`DeviceSpec.runtime`): onnxruntime for its execution
providers, OpenVINO for `ov:*` devices.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from benchbox.devices.spec import parse_device
from benchbox.schema import CellWarning

Feeds = dict[str, np.ndarray]
Runner = Callable[[Feeds], Any]
# runtime name (DeviceSpec.runtime) -> the module that implements it
RUNTIMES = {
    "onnxruntime": "benchbox.backends.onnxruntime",
    "openvino": "benchbox.backends.openvino",
}


@dataclass
class Instances:
    """The open sessions of one serving config: one runner per instance.

    `notes` are labels for the cells measured on them (what the timed path holds, where the
    model's nodes run, the runtime's own settings).
    """

    runners: list[Runner]
    runtime: str
    providers: list[str] = field(default_factory=list)
    close: Callable[[], None] = lambda: None
    notes: list[CellWarning] = field(default_factory=list)


class CellFailure(Exception):
    """A cell could not run (fallback provider, a model the device rejects); not a user error."""


def open_instances(model_path: str, config: Any) -> Instances:
    """Open `config.instances` sessions for `config.device` on the runtime that owns it."""
    runtime = parse_device(config.device).runtime
    return importlib.import_module(RUNTIMES[runtime]).open_instances(model_path, config)
