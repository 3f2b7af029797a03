"""The metric contract of the ``ldr_plugin.metrics`` entry-point group.

An entry point names a :class:`Metric` subclass; ``cls(**options)`` gives an object with ``family``
(the records' ``metric_family``), ``kind`` (the records' ``kind``: the family, unless it says
otherwise) and ``compute(features, labels) -> MetricResult``. Options are the keyword arguments of
the class (``ldr score --metric-option kstar.backend=hnsw``); they are written into every record.
Values are plain floats (``None`` where undefined) and each states whether higher is better.

Features reach ``compute`` as a numpy array on the CPU, unless the class sets ``takes_tensors =
True``: then they are a float32 ``torch.Tensor`` on the scoring device (``ldr score --device``),
so a torch metric runs where the features were extracted (the built-in k*, alignment and
uniformity do; a metric that needs numpy keeps the default). Labels are always a numpy array.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ldr_plugin.results.record import MetricValue, metric


@dataclass
class MetricResult:
    """What one metric family computed over (features, labels)."""

    family: str
    values: dict[str, float | None]
    higher_is_better: dict[str, bool]
    detail: dict[str, Any] = field(default_factory=dict)
    device: str | None = None  # where it was computed, when the metric knows (e.g. moved to the CPU itself)

    def as_record_metrics(self) -> dict[str, MetricValue]:
        return {k: metric(v, higher_is_better=self.higher_is_better[k]) for k, v in self.values.items()}


class Metric:
    """Base class of ``ldr_plugin.metrics`` entries (subclass it; keyword arguments are its options)."""

    family: str = ""
    takes_tensors: bool = False  # True: ``compute`` gets a torch.Tensor on the scoring device, not numpy

    @property
    def kind(self) -> str:
        """The ``kind`` of the records this metric's results are written as."""
        return self.family

    def compute(self, features: np.ndarray | torch.Tensor, labels: np.ndarray) -> MetricResult:
        raise NotImplementedError
