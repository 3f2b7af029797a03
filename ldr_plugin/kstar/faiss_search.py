"""Exact k* with faiss's k-NN search for the rows it can settle, the exact backend for the rest.

Optional (``pip install faiss-cpu``). Every sample asks an exact faiss ``IndexFlatL2`` (over the
centred features, in float32) for its ``k`` nearest neighbours. A row is *settled* from its list
when the list provably holds every sample that matters: faiss's squared distance F is within
``τ_f`` of the float64 reference R, so a sample outside the list has ``R ≥ F_k − τ_f`` (F_k: the
k-th listed value). The candidates near the first other-class neighbour are recomputed exactly
in float64 (``Σ(x_i − x_j)²`` from the caller's values) and give the nearest other-class distance
e; if ``e < F_k − τ_f``, k* = 1 + the listed same-class samples with R < e, ties exactly as the
exact backend decides them. Rows not settled (no other-class sample among their k neighbours, or
too close to F_k) go to the exact backend. The result equals the exact backend's.

``τ_f`` assumes only that faiss computes each squared L2 distance in float32 arithmetic, either as
``Σ(q_i − y_i)²`` or as ``‖q‖² + ‖y‖² − 2q·y``, in any order: both are within
``γ_{d+3}·(|q| + |y|)²`` of the exact value of their float32 inputs (Higham §3.1); the cast of the
centred features and the reference's own rounding are added as in the exact backend.

When it pays: most k* are small (≤ k), i.e. classes overlap (fractured or overlapped spaces); then
one faiss pass settles almost every row. When classes are well clustered (k* near n_c) almost no
row is settled and this is the exact backend plus a wasted faiss pass: use ``exact``.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from ldr_plugin.errors import LdrError
from ldr_plugin.kstar.inputs import Prepared
from ldr_plugin.kstar.neighbors import SearchResult, SortedFeatures, exact_search

_CHUNK_ENTRIES = 1 << 22  # query rows × k per faiss call


def _faiss():
    try:
        import faiss
    except ImportError as exc:
        raise LdrError("the faiss k* backend needs faiss (pip install faiss-cpu)") from exc
    return faiss


def faiss_tolerance(sf: SortedFeatures, q_sq_norms: np.ndarray) -> np.ndarray:
    """Bound on |faiss's float32 squared distance − float64 reference| per query (squared units)."""
    u32, u64, d = 2.0**-24, 2.0**-53, sf.dim
    gamma = (d + 3) * u32 / (1 - (d + 3) * u32)
    ab = (np.sqrt(q_sq_norms) + math.sqrt(sf.max_sq_norm)) ** 2
    return 1.01 * (gamma + 3 * u32 + (d + 3) * u64) * ab + (d + 3) * 2.0**-126


def _settle_chunk(sf: SortedFeatures, codes: np.ndarray, rows: np.ndarray, dist: np.ndarray, nbr: np.ndarray):
    """(settled mask, k*, tie flag, exact e²) for one chunk of sorted query rows and their k-NN lists."""
    n_rows, k = nbr.shape
    tau = faiss_tolerance(sf, sf.sq_norms[torch.as_tensor(rows)].cpu().numpy())
    valid = nbr >= 0
    listed = valid & (nbr != rows[:, None])  # the query itself excluded by index
    other = listed & (codes[np.where(valid, nbr, 0)] != codes[rows][:, None])
    has_other = other.any(1)
    first = np.where(has_other, other.argmax(1), 0)
    f_first = dist[np.arange(n_rows), first]
    # a sample outside the list has F >= F_k; a list of all N samples leaves nothing outside
    f_k = np.full(n_rows, np.inf) if k >= codes.size else dist[:, -1].astype(np.float64)
    # candidates: listed entries up to F_first + 2τ (beyond, R > R_first >= e: neither counted nor tied)
    cand = listed & (dist <= (f_first + 2 * tau)[:, None]) & has_other[:, None]
    r_i, c_i = np.nonzero(cand)
    exact = sf.exact_pairs(torch.as_tensor(rows[r_i]), torch.as_tensor(nbr[r_i, c_i])).cpu().numpy()
    is_other = other[r_i, c_i]
    e_sq = np.full(n_rows, np.inf)
    np.minimum.at(e_sq, r_i[is_other], exact[is_other])
    same_r, same_d = r_i[~is_other], exact[~is_other]
    below = np.bincount(same_r[same_d < e_sq[same_r]], minlength=n_rows)
    tie = np.bincount(same_r[same_d == e_sq[same_r]], minlength=n_rows) > 0
    settled = has_other & (e_sq < f_k - tau)
    return settled, below + 1, tie, e_sq


def faiss_search(
    prep: Prepared,
    *,
    dtype: torch.dtype = torch.float32,
    block_size: int | None = None,
    progress: bool | None = None,
    k: int = 16,
    num_threads: int | None = None,
) -> SearchResult:
    """Exact k*: faiss k-NN lists (``k`` neighbours) settle what they provably can, exact blocked
    products the rest; see the module docstring. ``dtype`` applies to the exact fallback."""
    faiss = _faiss()
    if int(k) < 1:
        raise LdrError(f"k must be at least 1, got {k}")
    if prep.device.type != "cpu":
        raise LdrError("the faiss k* backend runs on CPU; use backend='exact' for features on a GPU")
    t0 = time.perf_counter()
    faiss.omp_set_num_threads(num_threads or torch.get_num_threads())
    sf = SortedFeatures(prep, torch.float32)
    x = np.ascontiguousarray(sf.centred().cpu().numpy(), dtype=np.float32)
    index = faiss.IndexFlatL2(x.shape[1])
    index.add(x)
    codes = np.repeat(np.arange(prep.n_classes), prep.counts)
    kk = min(int(k) + 1, prep.n)  # + 1: the query itself is usually listed
    n = prep.n
    kstar, ties, enemy = np.zeros(n, np.int64), np.zeros(n, bool), np.full(n, np.nan)
    settled = np.zeros(n, bool)
    step = max(1, _CHUNK_ENTRIES // kk)
    t_search = t_settle = 0.0
    for r0 in range(0, n, step):
        rows = np.arange(r0, min(n, r0 + step))
        ta = time.perf_counter()
        dist, nbr = index.search(x[rows], kk)
        tb = time.perf_counter()
        ok, k_rows, tie, e_sq = _settle_chunk(sf, codes, rows, dist, nbr)
        t_search, t_settle = t_search + tb - ta, t_settle + time.perf_counter() - tb
        settled[rows], kstar[rows], ties[rows], enemy[rows] = ok, k_rows, tie, e_sq
    del index
    rest = np.flatnonzero(~settled)
    t1 = time.perf_counter()
    out = SearchResult(np.empty(n, np.int64), np.empty(n, bool), np.empty(n), 0, "faiss", {})
    inverse_rows = prep.order  # sorted row i is input sample order[i]
    if rest.size:
        fallback = exact_search(prep, dtype=dtype, block_size=block_size, progress=progress,
                                rows_subset=inverse_rows[rest])
        kstar[rest] = fallback.kstar[inverse_rows[rest]]
        ties[rest] = fallback.ties[inverse_rows[rest]]
        enemy[rest] = fallback.enemy_sq_distance[inverse_rows[rest]]
        out.n_recomputed = fallback.n_recomputed
    out.kstar[inverse_rows], out.ties[inverse_rows], out.enemy_sq_distance[inverse_rows] = kstar, ties, enemy
    out.info = {"dtype": str(dtype).replace("torch.", ""), "device": "cpu",
                "faiss": {"k": int(k), "version": faiss.__version__, "settled_by_faiss": int(settled.sum()),
                          "exact_fallback_rows": int(rest.size)},
                "timings_s": {"faiss_search": t_search, "settle": t_settle,
                              "exact_fallback": time.perf_counter() - t1, "total": time.perf_counter() - t0}}
    return out
