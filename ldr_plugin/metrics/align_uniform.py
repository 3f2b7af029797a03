"""Alignment and uniformity of L2-normalised features (Wang & Isola, ICML 2020).

alignment = E ‖ẑ_i − ẑ_j‖² over same-class pairs i ≠ j (every pair weighs the same);
uniformity = log E exp(−2‖ẑ_i − ẑ_j‖²) over all pairs i ≠ j. Lower is better for both.
Alignment has a closed form per class (O(N·d)); uniformity is a blocked log-sum-exp over row
blocks (memory O(block·N)), so N in the tens of thousands is fine.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ldr_plugin.errors import LdrError
from ldr_plugin.kstar.inputs import _as_tensor, _check_features, _label_values, map_classes
from ldr_plugin.metrics.base import Metric, MetricResult


def _normalised(features: Any) -> torch.Tensor:

    z = _as_tensor(features, None)
    _check_features(z)
    z = z.to(torch.float64)
    norms = z.norm(dim=1)
    zero = torch.nonzero(norms == 0).flatten()
    if zero.numel():
        raise LdrError(
            f"features have {zero.numel()} all-zero rows (first: index {int(zero[0])}); "
            "they cannot be L2-normalised"
        )
    return z / norms.unsqueeze(1)


def alignment(features: Any, labels: Any) -> float:
    """Mean squared distance between L2-normalised features of same-class pairs (lower = better)."""

    z = _normalised(features)
    values = _label_values(labels)
    if values.size != z.shape[0]:
        raise LdrError(f"labels and features have different lengths: {values.size} labels, {z.shape[0]} feature rows")
    codes, _ = map_classes(values)
    codes_t = torch.as_tensor(codes, device=z.device)
    n_c = torch.bincount(codes_t).to(torch.float64)
    sums = torch.zeros((n_c.numel(), z.shape[1]), dtype=torch.float64, device=z.device).index_add_(0, codes_t, z)
    pairs = float((n_c * (n_c - 1)).sum())
    if pairs == 0:
        raise LdrError("alignment needs a class with at least 2 samples; every class has one")
    # Σ_{i≠j in c} ‖z_i − z_j‖² = 2·n_c(n_c − 1) − 2(‖Σ_i z_i‖² − n_c) for unit vectors
    total = (2 * n_c * (n_c - 1) - 2 * ((sums**2).sum(1) - n_c)).sum()
    return float(total / pairs)


def uniformity(features: Any, *, t: float = 2.0, block_size: int = 1024) -> float:
    """log of the mean of exp(−t‖ẑ_i − ẑ_j‖²) over all pairs i ≠ j (lower = more uniform)."""
    z = _normalised(features)
    n = z.shape[0]
    if n < 2:
        raise LdrError("uniformity needs at least 2 samples")
    parts = []
    for r0 in range(0, n, block_size):
        q = z[r0 : r0 + block_size]
        sq = (2.0 - 2.0 * q @ z.T).clamp_min_(0.0)  # ‖a − b‖² of unit vectors
        logits = -t * sq
        rows = torch.arange(q.shape[0], device=z.device)
        logits[rows, rows + r0] = -math.inf  # exclude i = j
        parts.append(torch.logsumexp(logits.flatten(), 0))
    return float(torch.logsumexp(torch.stack(parts), 0) - math.log(n * (n - 1)))


def _device_of(features: Any) -> str:
    return str(features.device) if isinstance(features, torch.Tensor) else "cpu"


class AlignmentMetric(Metric):
    """``alignment`` (lower is better): same-class pairs of normalised features close together."""

    family = "alignment"
    takes_tensors = True  # computed in torch on the features' device

    def compute(self, features, labels) -> MetricResult:
        value = alignment(features, labels)
        return MetricResult(self.family, {"alignment": value}, {"alignment": False},
                            {"definition": "E||z_i - z_j||^2 over same-class pairs, z L2-normalised"},
                            device=_device_of(features))


class UniformityMetric(Metric):
    """``uniformity`` (lower is better): normalised features spread over the sphere."""

    family = "uniformity"
    takes_tensors = True  # computed in torch on the features' device

    def __init__(self, t: float = 2.0):
        self.t = t

    def compute(self, features, labels) -> MetricResult:
        n_labels = _label_values(labels).size
        if n_labels != len(features):
            raise LdrError(f"labels and features have different lengths: {n_labels} labels, {len(features)} rows")
        value = uniformity(features, t=self.t)
        return MetricResult(self.family, {"uniformity": value}, {"uniformity": False},
                            {"definition": f"log E exp(-{self.t}||z_i - z_j||^2) over pairs i != j", "t": self.t},
                            device=_device_of(features))
