"""Approximate k* with hnswlib: approximate nearest other-class distance, exact same-class counts.

k*_p needs only e_p (distance to the nearest other-class sample) and the number of same-class
samples strictly nearer than e_p. The count is computed exactly within each class by blocked
matrix products (≈ N²·d/C work, same rounding guard as the exact backend). e_p comes from one
HNSW index per class: a sample of class y queries, with k = 1, the index of every other class
(or of the ``probe_classes`` classes whose centroids are nearest), so the nearest other-class
sample is found directly, with no top-k search for it. Every (query, found) pair is also a
candidate in reverse, and ``refine_rounds`` of propagation try the enemies of a sample's
same-class neighbours and the same-class neighbours of its enemy. The distance of the sample
found is recomputed exactly in float64, so e_p is never below the true value: an approximate k*
can only be too large, never too small.

Cost: N·(C−1) HNSW queries, so this pays off for large N and few classes (measured crossover in
BENCHMARKS.md); for hundreds of classes use the exact backend.

Distance from exact: ``check`` randomly chosen samples (seeded) are also computed with the exact
backend; the agreement is reported in ``info["distance_from_exact"]``.
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from ldr_plugin.errors import LdrError
from ldr_plugin.kstar.inputs import Prepared
from ldr_plugin.kstar.neighbors import (
    SearchResult,
    SortedFeatures,
    block_rows,
    exact_search,
    full_precision_matmul,
    local_index,
    outward,
    resolve_ambiguous,
    same_class_pass,
    tile_columns,
)
from ldr_plugin.kstar.progress import Progress
from ldr_plugin.progress import progress as progress_bar


def _hnswlib():
    try:
        import hnswlib
    except ImportError as exc:  # pragma: no cover - hnswlib is a declared dependency
        raise LdrError("the hnsw k* backend needs hnswlib (pip install hnswlib)") from exc
    return hnswlib


def build_class_indices(x: np.ndarray, bounds: np.ndarray, *, m: int, ef_construction: int, seed: int,
                        num_threads: int) -> list:
    """One HNSW (squared L2) index per class, each built single-threaded (so deterministic),
    ``num_threads`` classes at a time."""
    hnswlib = _hnswlib()

    def build(c: int):
        s, e = int(bounds[c]), int(bounds[c + 1])
        index = hnswlib.Index(space="l2", dim=x.shape[1])
        index.init_index(max_elements=e - s, M=m, ef_construction=ef_construction, random_seed=seed + c)
        index.add_items(x[s:e], np.arange(s, e), num_threads=1)
        return index

    with ThreadPoolExecutor(max_workers=max(1, num_threads)) as pool:
        return list(pool.map(build, range(len(bounds) - 1)))


def nearest_enemies(x: np.ndarray, bounds: np.ndarray, indices: list, *, ef: int, k: int, num_threads: int,
                    probe_classes: int | None, progress) -> np.ndarray:
    """Sorted index of the approximate nearest other-class sample of every sample.

    Each query of class-c index returns its ``k`` nearest class-c samples; every returned pair
    (query q, found p) is also a candidate for p (the reverse direction), which raises recall
    for the samples near a class boundary at no extra search cost.
    """
    n, n_classes = x.shape[0], len(indices)
    codes = np.repeat(np.arange(n_classes), np.diff(bounds))
    best_d = np.full(n, np.inf, dtype=np.float64)
    best_j = np.full(n, -1, dtype=np.int64)
    probe = _probe_mask(x, bounds, codes, probe_classes)
    for index in indices:
        index.set_ef(ef)
    for c in progress(range(n_classes)):
        queries = np.flatnonzero((codes != c) & probe[:, c])
        if queries.size == 0:
            continue
        kk = min(k, int(bounds[c + 1] - bounds[c]))
        labels, dists = indices[c].knn_query(x[queries], k=kk, num_threads=num_threads)
        labels = labels.astype(np.int64)
        better = dists[:, 0] < best_d[queries]
        best_d[queries[better]] = dists[better, 0]
        best_j[queries[better]] = labels[better, 0]
        reverse_update(best_d, best_j, labels.ravel(), np.repeat(queries, kk), dists.ravel())
    return best_j


def reverse_update(best_d, best_j, found, query, dist) -> None:
    """For each found sample keep the nearest query that found it, if nearer than its best so far."""
    order = np.lexsort((dist, found))  # by found sample, then distance
    found, query, dist = found[order], query[order], dist[order]
    first = np.r_[True, found[1:] != found[:-1]]
    found, query, dist = found[first], query[first], dist[first]
    better = dist < best_d[found]
    best_d[found[better]] = dist[better]
    best_j[found[better]] = query[better]


def own_class_neighbours(x: np.ndarray, bounds: np.ndarray, indices: list, *, k: int, ef: int,
                         num_threads: int) -> np.ndarray:
    """Approximate ``k`` nearest same-class samples of every sample (sorted indices; self dropped)."""
    n = x.shape[0]
    out = np.repeat(np.arange(n)[:, None], k, axis=1)
    for c, index in enumerate(indices):
        s, e = int(bounds[c]), int(bounds[c + 1])
        kk = min(k + 1, e - s)
        index.set_ef(max(ef, kk))
        labels, _ = index.knn_query(x[s:e], k=kk, num_threads=num_threads)
        labels = labels.astype(np.int64)
        is_self = labels == np.arange(s, e)[:, None]  # drop self wherever it sits (duplicates may precede it)
        keep = np.take_along_axis(labels, np.argsort(is_self, axis=1, kind="stable"), axis=1)[:, :k]
        # (self, when kept in a tiny class, is a harmless candidate: its enemy is p's own)
        out[s:e, : keep.shape[1]] = keep
    return out


def refine_enemies(sf: SortedFeatures, enemy: torch.Tensor, enemy_sq: torch.Tensor, own: torch.Tensor,
                   rounds: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Candidate propagation: the enemies of p's same-class neighbours, and the same-class
    neighbours of p's enemy, are all other-class samples for p; keep the nearest (exact float64)."""
    n = enemy.numel()
    rows = torch.arange(n, device=enemy.device)
    for _ in range(rounds):
        cand = torch.cat([enemy[own], own[enemy]], dim=1)  # [N, 2k]
        k2 = cand.shape[1]
        d = sf.exact_pairs(rows.repeat_interleave(k2), cand.reshape(-1)).view(n, k2)
        best, arg = d.min(1)
        better = best < enemy_sq
        if not bool(better.any()):
            break
        enemy = torch.where(better, cand[rows, arg], enemy)
        enemy_sq = torch.where(better, best, enemy_sq)
    return enemy, enemy_sq


def _probe_mask(x: np.ndarray, bounds: np.ndarray, codes: np.ndarray, probe_classes: int | None) -> np.ndarray:
    n_classes = len(bounds) - 1
    if probe_classes is None or probe_classes >= n_classes - 1:
        return np.ones((x.shape[0], n_classes), dtype=bool)
    if probe_classes < 1:
        raise LdrError(f"probe_classes must be at least 1, got {probe_classes}")
    centroids = np.stack([x[bounds[c] : bounds[c + 1]].mean(0) for c in range(n_classes)])
    dist = (x**2).sum(1, keepdims=True) - 2 * x @ centroids.T + (centroids**2).sum(1)
    dist[np.arange(x.shape[0]), codes] = np.inf
    nearest = np.argsort(dist, axis=1, kind="stable")[:, :probe_classes]
    mask = np.zeros_like(dist, dtype=bool)
    np.put_along_axis(mask, nearest, True, axis=1)
    return mask


def same_class_counts(sf: SortedFeatures, bounds: np.ndarray, enemy_sq: torch.Tensor, b: int | None = None,
                      progress: Progress | None = None):
    """Exact 1 + #(same-class samples strictly nearer than the given e_p), and tie flags, per sorted row.

    ``b`` query rows per block (default 4,096), the exact backend's tiles over the class's own columns
    (:func:`ldr_plugin.kstar.neighbors.same_class_pass`).
    """
    n, dtype, device = sf.x.shape[0], sf.dtype, sf.x.device
    kstar = torch.ones(n, dtype=torch.int64, device=device)
    ties = torch.zeros(n, dtype=torch.bool, device=device)
    widest = int(np.diff(bounds).max())
    b = block_rows(widest, b)
    w = tile_columns(device, None)
    buffer = torch.empty(min(b, widest) * min(w, widest), dtype=dtype, device=device)  # reused, contiguous
    for c in range(len(bounds) - 1):
        s, e = int(bounds[c]), int(bounds[c + 1])
        if progress is not None:
            progress.set_phase(f"same-class counts, class {c + 1}/{len(bounds) - 1}")
        for r0 in range(s, e, b):
            rows = torch.arange(r0, min(e, r0 + b), device=device)
            q_norms = sf.sq_norms[rows]
            # e² is a float64 reference value here, so only the same-class entries carry the error τ
            thr = enemy_sq[rows] - q_norms
            win = sf.tolerance(q_norms) + 4 * torch.finfo(torch.float64).eps * thr.abs()
            lo = outward(thr - win, dtype, -math.inf).unsqueeze(1)
            hi = outward(thr + win, dtype, math.inf).unsqueeze(1)
            count, pair_rows, pair_cols = same_class_pass(sf, sf.x[r0 : r0 + rows.numel()], rows,
                                                          [(0, rows.numel(), s, e)], lo, hi, w, buffer)
            if pair_rows.numel():
                unsure, local = local_index(pair_rows, rows.numel())
                extra, tie, _ = resolve_ambiguous(sf, rows[unsure], pair_cols, local[pair_rows], None, None,
                                                  unsure.numel(), enemy_sq=enemy_sq[rows[unsure]])
                count[unsure] += extra
                ties[rows[unsure]] = tie
            kstar[rows] += count
            if progress is not None:
                progress.update(rows.numel() * (e - s))
    return kstar, ties


def hnsw_search(
    prep: Prepared,
    *,
    dtype: torch.dtype = torch.float32,
    block_size: int | None = None,
    progress: bool | None = None,
    m: int = 32,
    ef_construction: int = 200,
    ef: int = 128,
    k: int = 1,
    neighbours: int = 4,
    refine_rounds: int = 1,
    num_threads: int | None = None,
    probe_classes: int | None = None,
    seed: int = 0,
    check: int = 1000,
) -> SearchResult:
    """k* with HNSW nearest other-class search; see the module docstring for what is exact."""
    threads = num_threads or torch.get_num_threads()
    t0 = time.perf_counter()
    sf = SortedFeatures(prep, dtype)
    x32 = np.ascontiguousarray(sf.centred().to(torch.float32).cpu().numpy())
    indices = build_class_indices(x32, prep.bounds, m=m, ef_construction=ef_construction, seed=seed,
                                  num_threads=threads)
    t_build = time.perf_counter()
    bar = lambda it: progress_bar(it, desc="k* hnsw queries", unit="class", enabled=progress)
    enemy = nearest_enemies(x32, prep.bounds, indices, ef=ef, k=k, num_threads=threads, probe_classes=probe_classes,
                            progress=bar)
    own = own_class_neighbours(x32, prep.bounds, indices, k=neighbours, ef=ef, num_threads=threads) \
        if refine_rounds else None
    del indices
    t_query = time.perf_counter()
    rows = torch.arange(prep.n, device=prep.device)
    enemy_t = torch.as_tensor(enemy, device=prep.device)
    enemy_sq = sf.exact_pairs(rows, enemy_t)
    if refine_rounds:
        enemy_t, enemy_sq = refine_enemies(sf, enemy_t, enemy_sq, torch.as_tensor(own, device=prep.device),
                                           refine_rounds)
    t_refine = time.perf_counter()
    info = {"hnsw": {"M": m, "ef_construction": ef_construction, "ef": ef, "k": k, "neighbours": neighbours,
                     "refine_rounds": refine_rounds, "probe_classes": probe_classes,
                     "num_threads": threads, "seed": seed},
            "timings_s": {"build": t_build - t0, "query": t_query - t_build, "refine": t_refine - t_query}}
    counts = Progress(float(np.sum(np.diff(prep.bounds).astype(float) ** 2)), "k* hnsw same-class counts", progress)
    with full_precision_matmul():
        return result_from_enemies(prep, sf, enemy_sq, backend="hnsw", block_size=block_size, info=info,
                                   check=check, seed=seed, progress=counts)


def result_from_enemies(prep: Prepared, sf: SortedFeatures, enemy_sq: torch.Tensor, *, backend: str,
                        block_size: int | None, info: dict, check: int, seed: int,
                        progress: Progress | None = None) -> SearchResult:
    """Finish an approximate search: exact same-class counts for the found (exact float64) enemy
    distances, results in input order, and the comparison with exact on ``check`` samples."""
    t0 = time.perf_counter()
    kstar_sorted, ties_sorted = same_class_counts(sf, prep.bounds, enemy_sq, block_size, progress)
    if progress is not None:
        progress.close()
    out = SearchResult(np.empty(prep.n, np.int64), np.empty(prep.n, bool), np.empty(prep.n), 0, backend, {})
    out.kstar[prep.order] = kstar_sorted.cpu().numpy()
    out.ties[prep.order] = ties_sorted.cpu().numpy()
    out.enemy_sq_distance[prep.order] = enemy_sq.cpu().numpy()
    out.info = {"dtype": str(sf.dtype).replace("torch.", ""), "device": str(prep.device), **info}
    out.info.setdefault("timings_s", {})["same_class_count"] = time.perf_counter() - t0
    if check:
        t1 = time.perf_counter()
        out.info["distance_from_exact"] = distance_from_exact(prep, out, n_check=check, seed=seed)
        out.info["timings_s"]["exact_check"] = time.perf_counter() - t1
    return out


def distance_from_exact(prep: Prepared, approx: SearchResult, *, n_check: int, seed: int) -> dict:
    """Compare with exact (float64) k* on ``n_check`` seeded random samples (all if N ≤ n_check)."""
    rng = np.random.default_rng(seed)
    rows = np.arange(prep.n) if prep.n <= n_check else np.sort(rng.choice(prep.n, n_check, replace=False))
    exact = exact_search(prep, dtype=torch.float64, rows_subset=rows, progress=False)
    counts = prep.counts[prep.codes[rows]]
    diff = np.abs(approx.kstar[rows] - exact.kstar[rows]) / counts
    e_true = np.sqrt(exact.enemy_sq_distance[rows])
    e_approx = np.sqrt(approx.enemy_sq_distance[rows])
    rel = np.divide(e_approx - e_true, e_true, out=np.zeros_like(e_true), where=e_true > 0)
    return {
        "n_checked": int(rows.size),
        "agreement": float(np.mean(diff == 0)),
        "mean_abs_diff_normalised": float(diff.mean()),
        "max_abs_diff_normalised": float(diff.max()),
        "enemy_distance_exact_fraction": float(np.mean(rel <= 1e-6)),
        "enemy_distance_mean_rel_excess": float(rel.mean()),
    }
