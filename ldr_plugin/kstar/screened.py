"""Approximate k* by screened exact search: k-means cells of queries, each searching a candidate subset.

k*_p needs e_p (the distance to the nearest other-class sample) and the number of same-class
samples strictly nearer than e_p; the count is exact (``same_class_counts``, ≈ N²·d/C work). For
e_p, the samples of each class are grouped into k-means cells of about ``cell_size`` samples; a
cell searches, by one blocked matrix product, only the fraction ``candidates`` of the other-class
samples nearest its centroid. In high dimension nearest neighbours concentrate on "hubs" (samples
that are the nearest other-class sample of many queries; measured in BENCHMARKS.md), so a small
fraction holds the nearest other-class sample of almost every query, while the search keeps the
efficiency of dense products, which graph indices (HNSW) lose when the intrinsic dimension is high.

Every (query, found) pair is also tried in reverse, and the distance of the sample found is
recomputed exactly in float64, so e_p is never below the true value: an approximate k* can only
be too large, never too small. ``candidates=1.0`` searches every other-class sample (exact e_p).
Cost: ≈ N²·d·(1/C + candidates·(1 − 1/C)) multiply-adds, against N²·d for the exact backend.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from ldr_plugin.errors import LdrError
from ldr_plugin.kstar.approximate import result_from_enemies, reverse_update
from ldr_plugin.kstar.inputs import Prepared
from ldr_plugin.kstar.neighbors import (
    DEFAULT_BLOCK_ROWS,
    SearchResult,
    SortedFeatures,
    full_precision_matmul,
    tile_columns,
)
from ldr_plugin.kstar.progress import Progress


def kmeans_cells(x: torch.Tensor, n_cells: int, *, iters: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means from ``n_cells`` seeded random samples: (centroids [m, d], cell of each row)."""
    g = torch.Generator().manual_seed(seed)
    centroids = x[torch.randperm(x.shape[0], generator=g)[:n_cells].to(x.device)].clone()
    norms = (x * x).sum(1, keepdim=True)
    for step in range(iters + 1):
        cell = torch.addmm(norms, x, centroids.T, alpha=-2).add_((centroids * centroids).sum(1)).argmin(1)
        if step == iters:
            return centroids, cell
        counts = torch.bincount(cell, minlength=n_cells).to(x.dtype).unsqueeze(1)
        sums = torch.zeros_like(centroids).index_add_(0, cell, x)
        centroids = torch.where(counts > 0, sums / counts.clamp_min(1), centroids)  # empty cells keep their centre
    raise AssertionError("unreachable")


def screened_work(bounds: np.ndarray, candidates: float) -> float:
    """Distance computations of the screened search (rows × candidate columns), for progress."""
    sizes = np.diff(bounds).astype(float)
    others = sizes.sum() - sizes
    return float(np.sum(sizes * np.maximum(1, np.minimum(others, np.ceil(candidates * others)))))


def _nearest(sf: SortedFeatures, q: torch.Tensor, keys: torch.Tensor, key_norms: torch.Tensor, w: int,
             buffer: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per query row the smallest ``D'`` (as float64) over ``keys`` and its key index, in tiles of
    ``w`` keys (tiles stay in cache; slabs of 2²⁵ entries ran 1.07–1.11× slower in
    ``benchmarks/kstar_kernels.py``, and the whole search at 200,000 × 128 took 27.1 s instead of 21.1 s)."""
    best = torch.full((q.shape[0],), math.inf, dtype=sf.dtype, device=q.device)
    arg = torch.zeros(q.shape[0], dtype=torch.int64, device=q.device)
    for c0 in range(0, keys.shape[0], w):
        c1 = min(c0 + w, keys.shape[0])
        block = buffer[: q.shape[0] * (c1 - c0)].view(q.shape[0], c1 - c0)
        value, at = sf.product(q, (keys[c0:c1], key_norms[c0:c1]), out=block).min(1)
        better = value < best
        best = torch.where(better, value, best)
        arg = torch.where(better, at + c0, arg)
    return best.to(torch.float64), arg


def screened_enemies(sf: SortedFeatures, bounds: np.ndarray, *, candidates: float, cell_size: int, iters: int,
                     seed: int, progress: Progress | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """Sorted index of the approximate nearest other-class sample of every sample, and timings."""
    n, device = sf.x.shape[0], sf.x.device
    x = sf.centred()
    best_d = torch.full((n,), math.inf, dtype=torch.float64, device=device)
    best_j = torch.full((n,), -1, dtype=torch.int64, device=device)
    timings = {"cells": 0.0, "rank": 0.0, "search": 0.0}
    w = tile_columns(device, None)
    buffer = torch.empty(DEFAULT_BLOCK_ROWS * w, dtype=sf.dtype, device=device)  # reused: no page faults per tile
    for c in range(len(bounds) - 1):
        s, e = int(bounds[c]), int(bounds[c + 1])
        if progress is not None:
            progress.set_phase(f"search, class {c + 1}/{len(bounds) - 1}")
        others = torch.cat([torch.arange(0, s, device=device), torch.arange(e, n, device=device)])
        if e == s or others.numel() == 0:
            continue
        t0 = time.perf_counter()
        n_cells = max(1, min(e - s, round((e - s) / cell_size)))
        centroids, cell = kmeans_cells(x[s:e], n_cells, iters=iters, seed=seed + c)
        t1 = time.perf_counter()
        take = max(1, min(others.numel(), math.ceil(candidates * others.numel())))
        if take < others.numel():  # |x_o|² − 2 x_o·ν_j ranks the other-class samples by distance to centroid j
            score = torch.addmm(sf.sq_norms[others].to(x.dtype).unsqueeze(1), x[others], centroids.T, alpha=-2)
            chosen = torch.topk(score, take, dim=0, largest=False, sorted=False).indices  # [take, n_cells]
            del score
        t2 = time.perf_counter()
        for j in range(n_cells):
            rows = torch.nonzero(cell == j).flatten() + s
            if rows.numel() == 0:
                continue
            cols = others if take == others.numel() else others[torch.sort(chosen[:, j]).values]
            keys, key_norms = sf.columns(cols=cols)
            for r0 in range(0, rows.numel(), DEFAULT_BLOCK_ROWS):
                r = rows[r0 : r0 + DEFAULT_BLOCK_ROWS]
                value, arg = _nearest(sf, x.index_select(0, r), keys, key_norms, w, buffer)
                best_d[r] = value + sf.sq_norms[r]
                best_j[r] = cols[arg]
                if progress is not None:
                    progress.update(r.numel() * cols.numel())
        timings["cells"] += t1 - t0
        timings["rank"] += t2 - t1
        timings["search"] += time.perf_counter() - t2
    found = best_j.cpu().numpy()
    d, j = best_d.cpu().numpy(), found.copy()
    reverse_update(d, j, found, np.arange(n), best_d.cpu().numpy())  # q found p: q is a candidate for p
    return torch.as_tensor(j, device=device), timings


def screened_search(
    prep: Prepared,
    *,
    dtype: torch.dtype = torch.float32,
    block_size: int | None = None,
    progress: bool | None = None,
    candidates: float = 0.25,
    cell_size: int = 500,
    iters: int = 6,
    seed: int = 0,
    check: int = 1000,
) -> SearchResult:
    """k* with the screened nearest other-class search; see the module docstring for what is exact."""
    if not 0 < candidates <= 1:
        raise LdrError(f"candidates must be a fraction in (0, 1], got {candidates}")
    if int(cell_size) < 1 or int(iters) < 0:
        raise LdrError(f"cell_size must be >= 1 and iters >= 0, got cell_size={cell_size}, iters={iters}")
    t0 = time.perf_counter()
    sf = SortedFeatures(prep, dtype)
    sizes = np.diff(prep.bounds).astype(float)
    bar = Progress(screened_work(prep.bounds, candidates) + float(np.sum(sizes**2)), "k* screened", progress)
    with torch.no_grad(), full_precision_matmul():
        enemy, timings = screened_enemies(sf, prep.bounds, candidates=candidates, cell_size=int(cell_size),
                                          iters=int(iters), seed=seed, progress=bar)
        enemy_sq = sf.exact_pairs(torch.arange(prep.n, device=prep.device), enemy)
    timings["total_before_count"] = time.perf_counter() - t0
    info = {"screened": {"candidates": candidates, "cell_size": int(cell_size), "iters": int(iters), "seed": seed},
            "timings_s": timings}
    with full_precision_matmul():
        return result_from_enemies(prep, sf, enemy_sq, backend="screened", block_size=block_size, info=info,
                                   check=check, seed=seed, progress=bar)
