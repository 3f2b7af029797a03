"""Accuracy measured on the scored subset, from the forward pass that made the features.

A classifier's own head gives clean top-1; an OpenCLIP model gives zero-shot top-1 (class names x
open_clip's OpenAI ImageNet templates). The record keeps the count, the exact (Clopper-Pearson) 99%
interval and, where the subset is drawn from the data a published number was measured on, which
published field it estimates (``compares_to``): a leaderboard flags a model whose published accuracy
lies outside that interval, which is how wrong weights show.

>>> import numpy as np
>>> acc = top1_record(np.array([0, 1, 1, 0]), np.array([0, 1, 0, 0]), "clean top-1", None)
>>> acc["correct"], acc["n"], acc["top1_pct"]
(3, 4, 75.0)
"""

from __future__ import annotations

from typing import Any

import numpy as np

CONFIDENCE = 0.99


def binomial_interval_pct(correct: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Exact (Clopper-Pearson) interval of a proportion, in percent."""
    from scipy.stats import binomtest

    ci = binomtest(int(correct), int(n)).proportion_ci(confidence_level=confidence, method="exact")
    return 100.0 * float(ci.low), 100.0 * float(ci.high)


def compares_to(kind: str, trained_on: str | None, dataset_kind: str, n_classes: int) -> str | None:
    """The published accuracy field a measurement on this data estimates, or None (other data)."""
    if kind.startswith("clean") and trained_on:
        if trained_on in ("cifar10", "cifar100") and dataset_kind == trained_on:
            return "clean_acc_pct"
        if trained_on == "imagenet" and n_classes == 1000:
            return "clean_acc_pct"
    if kind.startswith("zero-shot") and n_classes == 1000:
        return "zeroshot_imagenet_pct"
    return None


def top1_record(predictions: np.ndarray, labels: np.ndarray, kind: str, field: str | None) -> dict[str, Any]:
    """The record's ``accuracy``: top-1 in percent, the count, its 99% interval, what it compares to."""
    correct, n = int((np.asarray(predictions) == np.asarray(labels)).sum()), int(np.asarray(labels).size)
    low, high = binomial_interval_pct(correct, n)
    return {"top1_pct": 100.0 * correct / n, "correct": correct, "n": n, "kind": kind,
            "ci99_pct": [low, high], "compares_to": field}


def measured_accuracy(predictions: np.ndarray | None, labels: np.ndarray, about: dict[str, Any],
                      trained_on: str | None, dataset_kind: str, n_classes: int) -> dict[str, Any]:
    """:func:`top1_record` of a feature set's predictions, or why accuracy was not measured."""
    if predictions is None or "kind" not in about:
        return {"not_measured": about.get("not_measured", "no predictions (features from an older cache?)")}
    kind = str(about["kind"])
    return top1_record(predictions, labels, kind, compares_to(kind, trained_on, dataset_kind, n_classes))
