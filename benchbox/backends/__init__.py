"""Backends: given a serving config, a callable per instance that runs one batch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Feeds = dict[str, np.ndarray]
Runner = Callable[[Feeds], Any]


@dataclass
class Instances:
    """The open sessions of one serving config: one runner per instance."""

    runners: list[Runner]
    runtime: str
    providers: list[str] = field(default_factory=list)
    close: Callable[[], None] = lambda: None
    notes: list[str] = field(default_factory=list)


class CellFailure(Exception):
    """A cell could not run (fallback provider, a model the device rejects); not a user error."""


def open_instances(model_path: str, config: Any) -> Instances:
    """Open `config.instances` sessions for `config.device` with its session options."""
    from benchbox.backends import onnxruntime as ort_backend

    return ort_backend.open_instances(model_path, config)
