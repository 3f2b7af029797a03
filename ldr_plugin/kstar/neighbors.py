"""Exact k* by blocked matrix products: no sort, memory O(block·N), time O(N²·d).

For a block of queries of one class c (samples are grouped by class, so class c is the column
range ``s:e``) one ``addmm`` gives ``D'_ij = |x_j|² − 2 q_i·x_j`` (the squared distance minus the
row constant ``|q_i|²``). The nearest other-class distance is the minimum over columns outside
``s:e``; k* is 1 + the number of same-class columns strictly below it (self excluded by index).

Rounding guard: for a query of norm ``a`` and keys of norm at most ``b`` (centred, as rounded to
the compute dtype), every computed ``D'`` is within ``τ(a, b)`` of the value a float64 brute-force
reference computes from the caller's values (:meth:`SortedFeatures.tolerance`, Higham's worst-case
bound for a dot product in any summation order plus the casts and the reference's own rounding).
A same-class entry within ``2τ`` of the row minimum is *ambiguous*: for such rows the candidate
pairs (other-class entries within ``2τ`` of the minimum, and the ambiguous same-class entries) are
recomputed in float64 as ``Σ(x_i − x_j)²`` from the caller's values, so ties and order are decided
exactly as a float64 brute-force reference decides them, in either compute dtype.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import numpy as np
import torch

from ldr_plugin.errors import LdrError
from ldr_plugin.kstar.inputs import Prepared
from ldr_plugin.kstar.progress import Progress

DEFAULT_TARGET_ELEMENTS = 1 << 25  # block_rows × N entries per block (128 MiB in float32)


@dataclass
class SearchResult:
    """Raw k*, tie flags and nearest other-class squared distance per sample, in input order."""

    kstar: np.ndarray
    ties: np.ndarray
    enemy_sq_distance: np.ndarray
    n_recomputed: int  # rows whose order was decided in float64 by the rounding guard
    backend: str
    info: dict


class SortedFeatures:
    """Features grouped by class and centred, as two augmented matrices in the compute dtype.

    ``queries = [x, 1, 0…]`` and ``keys = [−2x, |x|², 0…]`` (padded to a multiple of 16 columns),
    so one plain product ``queries[rows] @ keys.T`` gives ``D' = |x_j|² − 2 q·x_j`` with no extra
    pass over the block to add the norms.
    """

    def __init__(self, prep: Prepared, dtype: torch.dtype):
        self.prep = prep
        self.order_t = torch.as_tensor(prep.order, device=prep.device)
        n, d = prep.features.shape
        width = -(-(d + 1) // 16) * 16
        mean = prep.features.sum(0, dtype=torch.float64) / n  # accumulated in float64, no float64 copy
        self.queries = torch.empty((n, width), dtype=dtype, device=prep.device)
        self.keys = torch.empty((n, width), dtype=dtype, device=prep.device)
        self.queries[:, d + 1 :] = 0.0  # the padding; columns :d + 1 are all written below
        self.keys[:, d + 1 :] = 0.0
        self.sq_norms = torch.empty(n, dtype=torch.float64, device=prep.device)
        for r0 in range(0, n, 8192):  # chunks: float32 runs never hold a float64 copy of all features
            idx = self.order_t[r0 : r0 + 8192]
            x64 = prep.features.index_select(0, idx).to(torch.float64)
            x = x64.sub_(mean).to(dtype)
            x64 = x.to(torch.float64) if dtype != torch.float64 else x  # norms of the rounded centred x
            norms = torch.linalg.vecdot(x64, x64)
            self.queries[r0 : r0 + 8192, :d] = x
            self.queries[r0 : r0 + 8192, d] = 1.0
            self.keys[r0 : r0 + 8192, :d] = -2.0 * x
            self.keys[r0 : r0 + 8192, d] = norms.to(dtype)
            self.sq_norms[r0 : r0 + 8192] = norms
        self.dim = d
        self.dtype = dtype
        self.max_sq_norm = float(self.sq_norms.max())
        if self.max_sq_norm > torch.finfo(dtype).max / 16:
            raise LdrError(
                f"features too large for {str(dtype).replace('torch.', '')}: the largest squared norm after "
                f"centring is {self.max_sq_norm:.3g}; use dtype='float64' or rescale the features"
            )
        unit = torch.finfo(dtype).eps / 2  # unit roundoff u of the compute dtype
        terms = d + 3  # the d + 1 products of one entry, the cast of |x|², the outward-rounded window
        self._gamma = terms * unit / (1 - terms * unit)
        self._cast = 3.0 * unit + terms * torch.finfo(torch.float64).eps / 2
        self._underflow = terms * 2.0 * torch.finfo(dtype).smallest_normal * unit

    def centred(self) -> torch.Tensor:
        """The centred features in the compute dtype (a view)."""
        return self.queries[:, : self.dim]

    def tolerance(self, q_sq_norms: torch.Tensor, key_sq_norm: float | None = None) -> torch.Tensor:
        """Bound τ on |computed D' − reference D'| for queries with these squared norms (float64).

        With ``a = |q|``, ``b = |x_j|`` (centred, rounded) and u the unit roundoff of the compute
        dtype: the product ``[q, 1]·[−2x_j, |x_j|²]`` has error ≤ γ_{d+1}·(2ab + b²) in any summation
        order (Higham, Accuracy and Stability of Numerical Algorithms, §3.1); the cast of |x_j|²
        adds u·b², rounding the decision window outward adds at most u·|D'| ≤ u·(2ab + b²); the
        cast of the centred features moves the squared distance by ≤ (2u + u²)(a + b)², and the
        float64 reference's own rounding by ≤ (d + 3)·u₆₄·(a + b)². Hence
        ``τ = 1.01·[γ_{d+3}(2ab + b²) + (3u + (d+3)u₆₄)(a + b)²]`` plus an underflow term, with
        b = ``key_sq_norm``^½ (default: the largest key norm). The 1 % covers the float64 arithmetic
        of τ itself. This is a proof, not an estimate: the typical error is ≈ √d·u, not d·u.
        """
        b_sq = self.max_sq_norm if key_sq_norm is None else key_sq_norm
        a = q_sq_norms.clamp(min=0).sqrt()
        b = math.sqrt(b_sq)
        return 1.01 * (self._gamma * (2.0 * a * b + b_sq) + self._cast * (a + b) ** 2) + self._underflow

    def exact_pairs(self, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """Float64 ``Σ(x_i − x_j)²`` for sorted-index pairs, from the caller's original values."""
        feats, order = self.prep.features, self.order_t
        out = torch.empty(rows.numel(), dtype=torch.float64, device=feats.device)
        step = max(1, (1 << 22) // max(1, self.dim))
        for p0 in range(0, rows.numel(), step):
            a = feats.index_select(0, order[rows[p0 : p0 + step]]).to(torch.float64)
            b = feats.index_select(0, order[cols[p0 : p0 + step]]).to(torch.float64)
            out[p0 : p0 + step] = ((a - b) ** 2).sum(1)
        return out


def block_rows(n: int, block_size: int | None) -> int:
    """Rows per query block: ``block_size`` if given, else about 2**25 / N (64..4096)."""
    if block_size is not None:
        return max(1, int(block_size))
    return int(min(4096, max(64, DEFAULT_TARGET_ELEMENTS // max(1, n))))


def resolve_ambiguous(
    sf: SortedFeatures,
    rows: torch.Tensor,
    same_cols: torch.Tensor,
    same_rows_local: torch.Tensor,
    enemy_rows_local: torch.Tensor,
    enemy_cols: torch.Tensor,
    n_rows: int,
    enemy_sq: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Decide ambiguous rows exactly: returns (extra same-class count, tie flag, exact e²) per row.

    Candidate enemies (local row, sorted col) give the exact minimum unless ``enemy_sq`` (exact
    squared enemy distances per local row) is given; ambiguous same-class pairs are then compared
    strictly against it.
    """
    device = rows.device
    if enemy_sq is None:
        d_enemy = sf.exact_pairs(rows[enemy_rows_local], enemy_cols)
        enemy_sq = torch.full((n_rows,), float("inf"), dtype=torch.float64, device=device)
        enemy_sq.scatter_reduce_(0, enemy_rows_local, d_enemy, reduce="amin")
    d_same = sf.exact_pairs(rows[same_rows_local], same_cols)
    thr = enemy_sq[same_rows_local]
    extra = torch.zeros(n_rows, dtype=torch.int64, device=device)
    extra.scatter_add_(0, same_rows_local, (d_same < thr).to(torch.int64))
    tie = torch.zeros(n_rows, dtype=torch.int64, device=device)
    tie.scatter_add_(0, same_rows_local, (d_same == thr).to(torch.int64))
    return extra, tie > 0, enemy_sq


@contextlib.contextmanager
def full_precision_matmul():
    """Float32 products in float32 for the duration (the rounding bound assumes it): a caller's
    ``torch.set_float32_matmul_precision("high"/"medium")`` would allow TF32 or bfloat16 products,
    whose error is far above the bound. The caller's setting is restored afterwards."""
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(before)


def outward(values: torch.Tensor, dtype: torch.dtype, direction: float) -> torch.Tensor:
    """Float64 ``values`` cast to ``dtype``, rounded towards ``direction`` (−inf: down, +inf: up)."""
    cast = values.to(dtype)
    if dtype == torch.float64:
        return cast
    wrong = cast.double() > values if direction < 0 else cast.double() < values
    return torch.where(wrong, torch.nextafter(cast, torch.full_like(cast, direction)), cast)


def _block(sf: SortedFeatures, rows: torch.Tensor, segments: list[tuple[int, int, int, int]], buffer: torch.Tensor):
    """k* pieces for query rows (sorted indices, ascending): one product for the whole block, then
    per class segment ``(a, b, s, e)`` (block rows ``a:b``, all of the class occupying columns ``s:e``)
    the enemy minimum and the same-class counts on a view of it.

    ``buffer`` ([≥ rows, N], reused across blocks: fresh multi-GB allocations cost page faults).
    """
    r0, r1 = int(rows[0]), int(rows[-1]) + 1
    q = sf.queries[r0:r1] if r1 - r0 == rows.numel() else sf.queries.index_select(0, rows)
    d = buffer[: rows.numel()]
    torch.mm(q, sf.keys.T, out=d)
    parts = [_class_rows(sf, rows[a:b], d[a:b], s, e) for a, b, s, e in segments]
    return (torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]), torch.cat([p[2] for p in parts]),
            sum(p[3] for p in parts))


def _class_rows(sf: SortedFeatures, rows: torch.Tensor, d: torch.Tensor, s: int, e: int):
    """k* pieces of query rows of the class occupying columns ``s:e``, from their rows ``d`` of D'."""
    n, dtype, device = sf.keys.shape[0], sf.dtype, sf.keys.device
    parts = [d[:, :s].amin(1)] if s > 0 else []
    parts += [d[:, e:].amin(1)] if e < n else []
    enemy = torch.minimum(parts[0], parts[1]) if len(parts) > 1 else parts[0]
    same = d[:, s:e]
    local = torch.arange(rows.numel(), device=device)
    same[local, rows - s] = float("inf")  # the query itself, excluded by index
    q_norms = sf.sq_norms.index_select(0, rows)
    win = 2.0 * sf.tolerance(q_norms)
    lo = outward(enemy.double() - win, dtype, -math.inf).unsqueeze(1)
    hi = outward(enemy.double() + win, dtype, math.inf).unsqueeze(1)
    count = (same < lo).sum(1)  # one op per pass: under load every parallel op can stall a time slice
    ambiguous = (same <= hi).sum(1) > count
    enemy_sq = enemy.double() + q_norms
    ties = torch.zeros(rows.numel(), dtype=torch.bool, device=device)
    n_amb = int(ambiguous.sum())
    if n_amb:
        amb = torch.nonzero(ambiguous).flatten()
        sub = d.index_select(0, amb) if n_amb < rows.numel() else d
        # one pass: other-class entries in [lo, hi] are the candidate enemies (all are >= the minimum),
        # same-class entries in [lo, hi] the pairs to decide (self is +inf, never a candidate)
        c_r, c_c = torch.nonzero((sub >= lo[amb]) & (sub <= hi[amb]), as_tuple=True)
        in_class = (c_c >= s) & (c_c < e)
        extra, tie, exact_sq = resolve_ambiguous(sf, rows[amb], c_c[in_class], c_r[in_class], c_r[~in_class],
                                                 c_c[~in_class], n_amb)
        count[amb] += extra
        ties[amb] = tie
        enemy_sq[amb] = exact_sq
    return count + 1, ties, enemy_sq, n_amb


def exact_search(
    prep: Prepared,
    *,
    dtype: torch.dtype = torch.float32,
    block_size: int | None = None,
    progress: bool | None = None,
    rows_subset: np.ndarray | None = None,
) -> SearchResult:
    """Exact k* of every sample (or of the input indices ``rows_subset``) by blocked products."""

    sf = SortedFeatures(prep, dtype)
    n, b = prep.n, block_rows(prep.n, block_size)
    inverse = np.empty(n, dtype=np.int64)
    inverse[prep.order] = np.arange(n)
    wanted = inverse[np.asarray(rows_subset, dtype=np.int64)] if rows_subset is not None else None
    kstar = np.zeros(n, dtype=np.int64)
    ties = np.zeros(n, dtype=bool)
    enemy = np.full(n, np.nan)
    n_recomputed = 0
    queries = np.arange(n) if wanted is None else np.unique(wanted)
    # blocks of b query rows that may span classes (one full-size product each: a thin block per class
    # end runs the product below the BLAS peak), cut into per-class segments for the counting passes
    tasks = []
    for r in range(0, queries.size, b):
        rows_b = queries[r : r + b]
        codes = np.searchsorted(prep.bounds, rows_b, side="right") - 1
        cuts = np.flatnonzero(np.diff(codes)) + 1
        starts, ends = np.r_[0, cuts], np.r_[cuts, rows_b.size]
        tasks.append((rows_b, [(int(a), int(z), int(prep.bounds[codes[a]]), int(prep.bounds[codes[a] + 1]))
                               for a, z in zip(starts, ends)]))
    buffer = torch.empty((max((t[0].size for t in tasks), default=0), n), dtype=dtype, device=prep.device)
    bar = Progress(sum(t[0].size for t in tasks) * n, "k* exact", progress)
    with torch.no_grad(), full_precision_matmul():
        for rows_np, segments in tasks:
            rows = torch.as_tensor(rows_np, device=prep.device)
            k, t, en, amb = _block(sf, rows, segments, buffer)
            kstar[rows_np], ties[rows_np], enemy[rows_np] = k.cpu().numpy(), t.cpu().numpy(), en.cpu().numpy()
            n_recomputed += amb
            bar.update(rows_np.size * n)
    bar.close()
    back = prep.order  # sorted row i is input sample order[i]
    out = SearchResult(np.empty_like(kstar), np.empty_like(ties), np.empty_like(enemy), n_recomputed, "exact", {})
    out.kstar[back], out.ties[back], out.enemy_sq_distance[back] = kstar, ties, enemy
    out.info = {"dtype": str(dtype).replace("torch.", ""), "block_rows": b, "device": str(prep.device)}
    return out
