"""The metric contract of the ``ldr_plugin.metrics`` entry-point group.

An entry point names a :class:`Metric` subclass; ``cls(**options)`` gives an object with ``family``
(the records' ``metric_family``), ``kind`` (the records' ``kind``: the family, unless it says
otherwise) and ``compute(features, labels) -> MetricResult``. Options are the keyword arguments of
the class (``ldr score --metric-option kstar.backend=hnsw``); they are written into every record.
Values are plain floats (``None`` where undefined) and each states whether higher is better.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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


class Metric:
    """Base class of ``ldr_plugin.metrics`` entries (subclass it; keyword arguments are its options)."""

    family: str = ""

    @property
    def kind(self) -> str:
        """The ``kind`` of the records this metric's results are written as."""
        return self.family

    def compute(self, features: np.ndarray, labels: np.ndarray) -> MetricResult:
        raise NotImplementedError
