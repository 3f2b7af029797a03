"""Labelled samples a model is scored on, subsampled per class with a fixed seed.

Every dataset ``ldr score`` reads (a dataset spec, or a model's own datasets such as a DomainBed
run's environments) ends as one :class:`ScoringData`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ldr_plugin.errors import LdrError


@dataclass
class ScoringData:
    """Samples (PIL images or tensors) with int labels, after per-class subsampling."""

    spec: str
    split: str
    samples: Any  # sequence of PIL images or tensors, indexable
    labels: np.ndarray
    class_names: list[str]
    indices: np.ndarray  # positions in the full split, kept for provenance
    n_per_class_requested: int | None
    seed: int
    info: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.labels.size)

    def n_per_class(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(self.class_names))
        return {self.class_names[c]: int(counts[c]) for c in range(len(self.class_names)) if counts[c] > 0}

    @classmethod
    def subsampled(cls, spec: str, split: str, samples: Any, labels: np.ndarray, class_names: list[str],
                   n_per_class: int | None, seed: int, info: dict[str, Any]) -> ScoringData:
        """Up to ``n_per_class`` samples of each class (seeded, sorted indices), at least 2 of each."""
        indices = subsample_per_class(labels, n_per_class, seed)
        data = cls(spec, split, Subset(samples, indices), labels[indices], class_names, indices, n_per_class, seed, info)
        return check_two_per_class(data)

    def describe(self) -> dict[str, Any]:
        """What goes into records and the feature-cache key."""
        return {
            "spec": self.spec,
            "split": self.split,
            "n_samples": len(self),
            "n_per_class": self.n_per_class(),
            "n_per_class_requested": self.n_per_class_requested,
            "subsample_seed": self.seed,
            **self.info,
        }


def subsample_per_class(labels: np.ndarray, n_per_class: int | None, seed: int) -> np.ndarray:
    """Sorted indices: up to ``n_per_class`` of each class, drawn without replacement with ``seed``."""
    if n_per_class is None:
        return np.arange(labels.size)
    if n_per_class < 2:
        raise LdrError(f"--n-per-class {n_per_class}: k* needs at least 2 samples per class")
    rng = np.random.default_rng(seed)
    chosen = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        take = min(n_per_class, members.size)
        chosen.append(np.sort(rng.choice(members, size=take, replace=False)))
    return np.sort(np.concatenate(chosen)) if chosen else np.arange(0)


def check_two_per_class(data: ScoringData) -> ScoringData:
    small = {name: n for name, n in data.n_per_class().items() if n < 2}
    if small:
        shown = ", ".join(f"'{k}' ({v})" for k, v in list(small.items())[:10])
        raise LdrError(
            f"dataset {data.spec} split {data.split}: {len(small)} class(es) have fewer than 2 samples "
            f"after subsampling: {shown}; k* needs at least 2 per class"
        )
    return data


class Subset:
    """``samples[indices[i]]`` without copying images."""

    def __init__(self, samples: Any, indices: np.ndarray):
        self.samples, self.indices = samples, indices

    def __len__(self) -> int:
        return int(self.indices.size)

    def __getitem__(self, i: int) -> Any:
        return self.samples[int(self.indices[i])]
