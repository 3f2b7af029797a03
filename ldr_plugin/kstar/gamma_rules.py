"""Γ and Γ′ of many resamples at once (bootstrap): the same rules as :func:`~ldr_plugin.kstar.stats.summarise`,
vectorised over rows.

>>> import numpy as np
>>> v = np.array([[.25, .75, .75, .75], [1., 1., 1., 1.], [.5, .5, .5, .5]])
>>> np.round(row_skewness(v), 4).tolist()
[-1.1547, -inf, nan]
"""

from __future__ import annotations

import math

import numpy as np

from ldr_plugin.kstar.stats import INFINITE_MODES


def row_skewness(values: np.ndarray) -> np.ndarray:
    """Biased g1 of each row; −∞ for a row of 1.0s, NaN for any other constant row (as ``skewness``)."""
    x = np.asarray(values, dtype=np.float64)
    dev = x - x.mean(axis=1, keepdims=True)
    m2 = np.mean(dev**2, axis=1)
    m3 = np.mean(dev**3, axis=1)
    constant = np.all(x == x[:, :1], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = m3 / m2**1.5
    out[constant] = np.where(x[constant, 0] == 1.0, -math.inf, math.nan)
    return out


def gamma_prime_rows(gammas: np.ndarray, sizes: np.ndarray, infinite: str) -> np.ndarray:
    """Γ′ of each row of per-class γ [R, C] under ``infinite`` = exclude / clip / notebook."""
    if infinite not in INFINITE_MODES:
        raise ValueError(f"infinite must be one of {INFINITE_MODES}, got {infinite!r}")
    g = np.array(gammas, dtype=np.float64)
    if infinite == "clip":
        bound = np.where(sizes > 1, (sizes - 2) / np.sqrt(np.maximum(sizes - 1, 1)), 0.0)
        g = np.where(np.isnan(g), 0.0, np.clip(g, -bound, bound))
    elif infinite == "notebook":
        finite = np.isfinite(g)
        low = np.where(finite, g, np.inf).min(axis=1, keepdims=True)
        high = np.where(finite, g, -np.inf).max(axis=1, keepdims=True)
        g = np.where(np.isnan(g), 0.0, g)
        g = np.where(g == -np.inf, low, np.where(g == np.inf, high, g))
        g[~np.isfinite(g).all(axis=1)] = np.nan  # no finite γ to replace −∞ with: undefined
    finite = np.isfinite(g)
    with np.errstate(invalid="ignore"):
        return np.where(finite.any(axis=1), np.where(finite, g, 0.0).sum(1) / finite.sum(1), np.nan)
