"""Shared helpers of the k* benchmarks: clustered synthetic features and a timer."""

from __future__ import annotations

import os
import time

import numpy as np


def clustered(n: int, dim: int, n_classes: int, spread: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian blobs: class centres ~ N(0, spread²·I), samples = centre + N(0, I), float32."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=spread, size=(n_classes, dim)).astype(np.float32)
    labels = rng.integers(0, n_classes, n)
    feats = centres[labels] + rng.normal(size=(n, dim)).astype(np.float32)
    return feats, labels


def timed(fn, *args, **kwargs):
    """(result, seconds) of one call."""
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def machine_load() -> str:
    """The 1-minute load average (as a string), to print next to timings."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:  # pragma: no cover - not on every platform
        return "n/a"
