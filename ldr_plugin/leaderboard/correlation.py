"""Rank correlations (Spearman ρ, Kendall τ) with confidence intervals, from scipy.stats.

CI methods: ``fisher`` — Fisher z-transform with the rank-correlation standard errors of Fieller,
Hartley & Pearson (1957): √(1.06/(n−3)) for Spearman, √(0.437/(n−4)) for Kendall; ``bootstrap``
— scipy.stats.bootstrap (paired, percentile) with a seeded generator, so results are reproducible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.stats

_FISHER_VAR = {"spearman": (1.06, 3), "kendall": (0.437, 4)}


@dataclass(frozen=True)
class RankCorrelation:
    """A rank correlation with its p-value and confidence interval (NaN where undefined)."""

    method: str
    statistic: float
    pvalue: float
    ci_low: float
    ci_high: float
    n: int
    ci_method: str
    confidence: float


def _statistic(method: str, x, y) -> tuple[float, float]:
    if method == "spearman":
        res = scipy.stats.spearmanr(x, y)
    elif method == "kendall":
        res = scipy.stats.kendalltau(x, y)
    else:
        raise ValueError(f"unknown rank correlation {method!r}; expected 'spearman' or 'kendall'")
    return float(res.statistic), float(res.pvalue)


def _fisher_ci(method: str, r: float, n: int, confidence: float) -> tuple[float, float]:
    num, offset = _FISHER_VAR[method]
    if n <= offset or not math.isfinite(r):
        return math.nan, math.nan
    z = math.atanh(min(max(r, -0.999999), 0.999999))
    half = scipy.stats.norm.ppf(0.5 + confidence / 2) * math.sqrt(num / (n - offset))
    return math.tanh(z - half), math.tanh(z + half)


def _bootstrap_ci(method: str, x, y, confidence: float, seed: int, n_resamples: int) -> tuple[float, float]:
    def stat(a, b):
        return _statistic(method, a, b)[0]

    res = scipy.stats.bootstrap((x, y), stat, paired=True, vectorized=False, n_resamples=n_resamples,
                                confidence_level=confidence, method="percentile",
                                rng=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def _complete(a, b) -> bool:
    """Both values present and finite (a pair the correlations use)."""
    return a is not None and b is not None and math.isfinite(float(a)) and math.isfinite(float(b))


def rank_correlation(x, y, method: str = "spearman", *, ci: str = "fisher", confidence: float = 0.95,
                     seed: int = 0, n_resamples: int = 2000) -> RankCorrelation:
    """Rank correlation of paired values (pairs with a missing value are dropped first).

    >>> round(rank_correlation([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]).statistic, 3)
    0.8
    """
    pairs = [(float(a), float(b)) for a, b in zip(x, y) if _complete(a, b)]
    n = len(pairs)
    xs, ys = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    if n < 3 or len(set(xs)) < 2 or len(set(ys)) < 2:
        return RankCorrelation(method, math.nan, math.nan, math.nan, math.nan, n, ci, confidence)
    r, p = _statistic(method, xs, ys)
    if ci == "fisher":
        low, high = _fisher_ci(method, r, n, confidence)
    elif ci == "bootstrap":
        low, high = _bootstrap_ci(method, xs, ys, confidence, seed, n_resamples)
    else:
        raise ValueError(f"unknown CI method {ci!r}; expected 'fisher' or 'bootstrap'")
    return RankCorrelation(method, r, p, low, high, n, ci, confidence)


def _batch_spearman(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman ρ of each row pair of ``x``, ``y`` [R, n] (average ranks for ties)."""
    rx, ry = scipy.stats.rankdata(x, axis=1), scipy.stats.rankdata(y, axis=1)
    rx -= rx.mean(axis=1, keepdims=True)
    ry -= ry.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (rx * ry).sum(1) / np.sqrt((rx * rx).sum(1) * (ry * ry).sum(1))


def _batch_kendall(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Kendall τ-b of each row pair of ``x``, ``y`` [R, n] (scipy's default variant)."""
    sx = np.sign(x[:, :, None] - x[:, None, :])
    sy = np.sign(y[:, :, None] - y[:, None, :])
    with np.errstate(invalid="ignore", divide="ignore"):
        return (sx * sy).sum((1, 2)) / np.sqrt(np.abs(sx).sum((1, 2)) * np.abs(sy).sum((1, 2)))


_BATCH = {"spearman": _batch_spearman, "kendall": _batch_kendall}


def _pooled(method: str, groups: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Size-weighted mean over groups of the per-group statistic, one value per resample row
    (a group whose resample is constant in x or y has no statistic and is left out of that row)."""
    total = weight = 0.0
    for x, y in groups:
        stat = _BATCH[method](x, y)
        ok = np.isfinite(stat)
        total = total + np.where(ok, stat, 0.0) * x.shape[1]
        weight = weight + ok * x.shape[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / weight


def stratified_rank_correlation(x, y, strata, method: str = "spearman", *, confidence: float = 0.95,
                                seed: int = 0, n_resamples: int = 2000) -> RankCorrelation:
    """Rank correlation *within* strata: the size-weighted mean of each stratum's ρ (or τ-b).

    A pooled correlation over strata of different difficulty (held-out domains, datasets) mixes the
    between-strata relation into the one asked about; this one compares only points of the same
    stratum. Points without a stratum (``None``), strata with fewer than 3 complete pairs, and
    strata constant in x or y are left out. CI:
    stratified paired bootstrap (percentile; resampling inside each stratum); p-value: two-sided
    permutation test shuffling y inside each stratum. Both seeded, so results are reproducible.

    >>> r = stratified_rank_correlation([1, 2, 3, 10, 20, 30], [3, 2, 1, 30, 20, 10], ["a"] * 3 + ["b"] * 3)
    >>> round(r.statistic, 3), r.n
    (-1.0, 6)
    """
    if method not in _BATCH:
        raise ValueError(f"unknown rank correlation {method!r}; expected 'spearman' or 'kendall'")
    by_stratum: dict = {}
    for a, b, s in zip(x, y, strata):
        if s is not None and _complete(a, b):
            by_stratum.setdefault(s, []).append((float(a), float(b)))
    groups = [(np.array([p[0] for p in pts])[None], np.array([p[1] for p in pts])[None])
              for pts in by_stratum.values() if len(pts) >= 3 and len({p[0] for p in pts}) > 1
              and len({p[1] for p in pts}) > 1]
    n = sum(g[0].shape[1] for g in groups)
    if not groups:
        return RankCorrelation(method, math.nan, math.nan, math.nan, math.nan, n, "stratified bootstrap", confidence)
    statistic = float(_pooled(method, groups)[0])
    rng = np.random.default_rng(seed)
    boot, perm = [], []
    for gx, gy in groups:
        m = gx.shape[1]
        idx = rng.integers(0, m, size=(n_resamples, m))
        boot.append((gx[0][idx], gy[0][idx]))
        perm.append((np.broadcast_to(gx, (n_resamples, m)), rng.permuted(np.broadcast_to(gy, (n_resamples, m)), axis=1)))
    boot_stats = _pooled(method, boot)
    boot_stats = boot_stats[np.isfinite(boot_stats)]
    alpha = (1 - confidence) / 2
    low, high = (np.quantile(boot_stats, [alpha, 1 - alpha]) if boot_stats.size else (math.nan, math.nan))
    null = _pooled(method, perm)
    pvalue = (1 + int(np.sum(np.abs(null) >= abs(statistic) - 1e-12))) / (1 + n_resamples)
    return RankCorrelation(method, statistic, float(pvalue), float(low), float(high), n, "stratified bootstrap",
                           confidence)
