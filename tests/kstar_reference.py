"""Independent k* reference for tests: a full sort of every row (the spec's definition, brute force)."""

from __future__ import annotations

import numpy as np


def brute_force(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, int]:
    """Full sort of every row (other class first among equal distances), first other-class rank."""
    x = np.asarray(x, dtype=np.float64)
    return brute_force_from_distances(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1), y)


def brute_force_from_distances(d: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, int]:
    """k* and tie count from a full distance matrix (any metric, e.g. scipy.spatial.distance.cdist)."""
    y = np.asarray(y)
    out, ties = np.zeros(len(y), dtype=np.int64), 0
    for p in range(len(y)):
        others = np.delete(np.arange(len(y)), p)
        same = (y[others] == y[p]).astype(int)
        order = np.lexsort((same, d[p, others]))  # by distance, then other class (0) before same (1)
        out[p] = int(np.flatnonzero(same[order] == 0)[0]) + 1
        enemy = d[p, others][same == 0].min()
        ties += bool(np.any(d[p, others][same == 1] == enemy))
    return out, ties


def blobs(n: int = 1500, dim: int = 16, classes: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian class blobs (centres ~ N(0, 0.36 I)), float32 features and integer labels."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=0.6, size=(classes, dim))
    y = rng.integers(0, classes, n)
    return (centres[y] + rng.normal(size=(n, dim))).astype(np.float32), y
