"""The k* family as an ``ldr_plugin.metrics`` plugin: a thin class over :func:`ldr_plugin.kstar.kstar_summary`."""

from __future__ import annotations

from typing import Any

import torch

from ldr_plugin.kstar import kstar_summary
from ldr_plugin.kstar.distance import metric_family
from ldr_plugin.kstar.report import summary_detail, summary_values
from ldr_plugin.metrics.base import Metric, MetricResult


class KStarMetric(Metric):
    """k* metrics: Γ′ (``gamma_prime``), Γ (``gamma``), μ, pattern and tie counts; per-class detail.

    ``distance`` (euclidean / cosine / mahalanobis) picks the metric family the records are written
    under, so scores under different distances never overwrite or pool with each other.
    Features may be a torch tensor on any device: the search runs there (the ``faiss`` backend is
    CPU-only, so its features are moved to the CPU here).

    >>> import numpy as np
    >>> x = np.array([[0.], [1.], [2.], [3.], [2.6], [10.], [11.], [12.]])
    >>> round(KStarMetric().compute(x, [0] * 4 + [1] * 4).values["gamma_prime"], 4)
    -0.5774
    """

    takes_tensors = True

    def __init__(self, backend: str = "exact", distance: str = "euclidean", **options: Any):

        self.backend = backend
        self.distance = distance
        self.family = metric_family(distance)  # "kstar" (Euclidean), "kstar-cosine", "kstar-mahalanobis"
        self.options = options

    def compute(self, features, labels) -> MetricResult:
        if self.backend == "faiss" and isinstance(features, torch.Tensor):
            features = features.cpu()  # faiss searches host memory
        summary = kstar_summary(features, labels, backend=self.backend, distance=self.distance, **self.options)
        values, higher_is_better = summary_values(summary)
        detail = summary_detail(summary)
        detail["n_per_class"] = {c.name: c.n for c in summary.classes}
        device = summary.search.get("device") or (str(features.device) if isinstance(features, torch.Tensor) else "cpu")
        return MetricResult(self.family, values, higher_is_better, detail, device=device)
