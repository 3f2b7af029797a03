"""Exact k* by blocked matrix products: no sort, memory O(block·N), time O(N²·d).

For a block of queries of one class c (samples are grouped by class, so class c is the column
range ``s:e``) one ``addmm`` gives ``D'_ij = |x_j|² − 2 q_i·x_j`` (the squared distance minus the
row constant ``|q_i|²``). The nearest other-class distance is the minimum over columns outside
``s:e``; k* is 1 + the number of same-class columns strictly below it (self excluded by index).

Rounding guard: every computed ``D'`` is within ``tol_i = 2(d+4)·eps·(|q_i|² + max_j |x_j|²)`` of
its true value (features centred first to keep norms small; the bound covers the cast to the
compute dtype, the norms and the dot products, worst case). A same-class entry within ``2·tol`` of
the minimum is *ambiguous*: for such rows the candidate pairs (other-class entries within ``2·tol``
of the minimum, and the ambiguous same-class entries) are recomputed in float64 as
``Σ(x_i − x_j)²`` from the caller's values, so ties and order are decided exactly as a float64
brute-force reference decides them, in either compute dtype.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ldr_plugin.kstar.inputs import Prepared

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
        mean = prep.features.to(torch.float64).mean(0) if n <= 8192 else _chunked_mean(prep.features)
        self.queries = torch.zeros((n, width), dtype=dtype, device=prep.device)
        self.keys = torch.zeros((n, width), dtype=dtype, device=prep.device)
        self.sq_norms = torch.empty(n, dtype=torch.float64, device=prep.device)
        for r0 in range(0, n, 8192):  # chunks: float32 runs never hold a float64 copy of all features
            idx = self.order_t[r0 : r0 + 8192]
            x = (prep.features.index_select(0, idx).to(torch.float64) - mean).to(dtype)
            norms = (x.to(torch.float64) ** 2).sum(1)
            self.queries[r0 : r0 + 8192, :d] = x
            self.queries[r0 : r0 + 8192, d] = 1.0
            self.keys[r0 : r0 + 8192, :d] = -2.0 * x
            self.keys[r0 : r0 + 8192, d] = norms.to(dtype)
            self.sq_norms[r0 : r0 + 8192] = norms
        self.eps = torch.finfo(dtype).eps
        self.dim = d
        self.dtype = dtype
        self.max_sq_norm = float(self.sq_norms.max())

    def centred(self) -> torch.Tensor:
        """The centred features in the compute dtype (a view)."""
        return self.queries[:, : self.dim]

    def tolerance(self, q_sq_norms: torch.Tensor) -> torch.Tensor:
        """Worst-case absolute error of a computed ``D'`` entry for queries with these norms."""
        return 2.0 * (self.dim + 4) * self.eps * (q_sq_norms + self.max_sq_norm)

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


_LANE_SHIFTS = torch.arange(0, 64, 8)


def row_counts(mask: torch.Tensor) -> torch.Tensor:
    """Number of True entries per row of a 2-D bool tensor (int64).

    ``mask.sum(1)`` converts every entry to an integer first, which costs more than the comparison
    that made the mask. On CPU this reads the mask as int64 words (8 one-byte lanes each), sums at
    most 255 words at a time (no lane can carry into the next) and adds the lanes up.
    """
    rows, cols = mask.shape
    if mask.device.type != "cpu" or rows < 2 or cols < 8 or mask.stride() != (cols, 1):
        return mask.sum(1, dtype=torch.int64)
    if cols % 8:  # the last cols % 8 columns the slow way
        cut = cols - cols % 8
        head = torch.empty((rows, cut), dtype=torch.bool).copy_(mask[:, :cut])
        return row_counts(head) + mask[:, cut:].sum(1, dtype=torch.int64)
    words = mask.view(torch.uint8).view(torch.int64)  # [rows, cols / 8]
    total = torch.zeros(rows, dtype=torch.int64)
    for k in range(0, words.shape[1], 255):
        lanes = words[:, k : k + 255].sum(1)
        total += ((lanes.unsqueeze(1) >> _LANE_SHIFTS) & 0xFF).sum(1)
    return total


def _chunked_mean(features: torch.Tensor) -> torch.Tensor:
    total = torch.zeros(features.shape[1], dtype=torch.float64, device=features.device)
    for r0 in range(0, features.shape[0], 8192):
        total += features[r0 : r0 + 8192].to(torch.float64).sum(0)
    return total / features.shape[0]


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


def _block(sf: SortedFeatures, rows: torch.Tensor, s: int, e: int, buffer: torch.Tensor):
    """k* pieces for query rows (sorted indices, all of the class occupying columns ``s:e``).

    ``buffer`` ([≥ rows, N], reused across blocks: fresh multi-GB allocations cost page faults).
    """
    n, dtype, device = sf.keys.shape[0], sf.dtype, sf.keys.device
    r0, r1 = int(rows[0]), int(rows[-1]) + 1
    q = sf.queries[r0:r1] if r1 - r0 == rows.numel() else sf.queries.index_select(0, rows)
    d = buffer[: rows.numel()]
    torch.mm(q, sf.keys.T, out=d)
    parts = [d[:, :s].amin(1)] if s > 0 else []
    parts += [d[:, e:].amin(1)] if e < n else []
    enemy = torch.stack(parts).amin(0) if len(parts) > 1 else parts[0]
    same = d[:, s:e]
    local = torch.arange(rows.numel(), device=device)
    same[local, rows - s] = float("inf")  # the query itself, excluded by index
    q_norms = sf.sq_norms.index_select(0, rows)
    win = 2.0 * sf.tolerance(q_norms)
    lo = (enemy.double() - win).to(dtype).unsqueeze(1)
    hi = (enemy.double() + win).to(dtype).unsqueeze(1)
    count = row_counts(same < lo)
    ambiguous = row_counts(same <= hi) > count
    enemy_sq = enemy.double() + q_norms
    ties = torch.zeros(rows.numel(), dtype=torch.bool, device=device)
    if bool(ambiguous.any()):
        amb = torch.nonzero(ambiguous).flatten()
        sub = d.index_select(0, amb)
        lo_a, hi_a = lo[amb], hi[amb]
        s_r, s_c = torch.nonzero((sub[:, s:e] >= lo_a) & (sub[:, s:e] <= hi_a), as_tuple=True)
        e_mask = sub <= hi_a
        e_mask[:, s:e] = False
        e_r, e_c = torch.nonzero(e_mask, as_tuple=True)
        extra, tie, exact_sq = resolve_ambiguous(sf, rows[amb], s_c + s, s_r, e_r, e_c, amb.numel())
        count[amb] += extra
        ties[amb] = tie
        enemy_sq[amb] = exact_sq
    return count + 1, ties, enemy_sq, int(ambiguous.sum())


def exact_search(
    prep: Prepared,
    *,
    dtype: torch.dtype = torch.float32,
    block_size: int | None = None,
    progress: bool | None = None,
    rows_subset: np.ndarray | None = None,
) -> SearchResult:
    """Exact k* of every sample (or of the input indices ``rows_subset``) by blocked products."""
    from ldr_plugin.progress import progress as progress_bar  # tqdm: only when a search runs

    sf = SortedFeatures(prep, dtype)
    n, b = prep.n, block_rows(prep.n, block_size)
    inverse = np.empty(n, dtype=np.int64)
    inverse[prep.order] = np.arange(n)
    wanted = inverse[np.asarray(rows_subset, dtype=np.int64)] if rows_subset is not None else None
    kstar = np.zeros(n, dtype=np.int64)
    ties = np.zeros(n, dtype=bool)
    enemy = np.full(n, np.nan)
    n_recomputed = 0
    tasks = []
    for c in range(prep.n_classes):
        s, e = int(prep.bounds[c]), int(prep.bounds[c + 1])
        rows_c = np.arange(s, e) if wanted is None else np.sort(wanted[(wanted >= s) & (wanted < e)])
        tasks += [(rows_c[i : i + b], s, e) for i in range(0, rows_c.size, b)]
    buffer = torch.empty((max((t[0].size for t in tasks), default=0), n), dtype=dtype, device=prep.device)
    with torch.no_grad():
        for rows_np, s, e in progress_bar(tasks, desc="k* exact", unit="block", enabled=progress):
            rows = torch.as_tensor(rows_np, device=prep.device)
            k, t, en, amb = _block(sf, rows, s, e, buffer)
            kstar[rows_np], ties[rows_np], enemy[rows_np] = k.cpu().numpy(), t.cpu().numpy(), en.cpu().numpy()
            n_recomputed += amb
    back = prep.order  # sorted row i is input sample order[i]
    out = SearchResult(np.empty_like(kstar), np.empty_like(ties), np.empty_like(enemy), n_recomputed, "exact", {})
    out.kstar[back], out.ties[back], out.enemy_sq_distance[back] = kstar, ties, enemy
    out.info = {"dtype": str(dtype).replace("torch.", ""), "block_rows": b, "device": str(prep.device)}
    return out


def _no_bar(progress: bool | None) -> bool | None:
    return None if progress is None else not progress
