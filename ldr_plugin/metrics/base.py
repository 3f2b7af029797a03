"""The metric contract of the ``ldr_plugin.metrics`` entry-point group.

An entry point names a class; ``cls()`` gives an object with ``family`` (the record's
``metric_family``) and ``compute(features, labels) -> MetricResult``. Values are plain floats
(``None`` where undefined) and each states whether higher is better.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ldr_plugin.results.record import MetricValue, metric


@dataclass
class MetricResult:
    """What one metric family computed over (features, labels)."""

    family: str
    values: dict[str, float | None]
    higher_is_better: dict[str, bool]
    detail: dict[str, Any] = field(default_factory=dict)

    def as_record_metrics(self) -> dict[str, MetricValue]:
        return {k: metric(v, higher_is_better=self.higher_is_better[k]) for k, v in self.values.items()}


class Metric(Protocol):
    family: str

    def compute(self, features: np.ndarray, labels: np.ndarray) -> MetricResult: ...
