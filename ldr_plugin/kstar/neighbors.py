"""Exact k* by tiled matrix products: no sort, memory O(block·tile), time O(N²·d).

Samples are grouped by class, so class c is the column range ``s:e``. For a block of query rows,
products tile by tile (4096 × 1024 by default: the tile stays in cache, and square-ish products run
near the BLAS peak, where one block × N slab did not) give ``D'_ij = |x_j|² − 2 q_i·x_j`` (the
squared distance minus the row constant ``|q_i|²``). Pass 1 takes the minimum over the columns
outside ``s:e`` (the nearest other-class sample), pass 2 counts the same-class columns strictly
below it (self excluded by index); k* is 1 + that count. Every pair is computed once.

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

DEFAULT_BLOCK_ROWS = 4096  # query rows per block of the exact backend
DEFAULT_TILE_COLS = 1024  # key columns per product tile: a 4096 × 1024 float32 tile (16 MiB) stays in cache


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
    """Features grouped by class and centred, in the compute dtype, with their squared norms.

    ``product(q, columns(c0, c1))`` gives ``D' = |x_j|² − 2 q·x_j`` with one ``addmm`` (the norms
    as the broadcast bias, α = −2: exact), as fast as the bare product; an augmented ``[x, 1]`` ·
    ``[−2x, |x|²]`` product padded to 16 columns cost 18 % more at d = 128 (single thread, measured).
    """

    def __init__(self, prep: Prepared, dtype: torch.dtype):
        self.prep = prep
        self.order_t = torch.as_tensor(prep.order, device=prep.device)
        n, d = prep.features.shape
        mean = prep.features.sum(0, dtype=torch.float64) / n  # accumulated in float64, no float64 copy
        self.x = torch.empty((n, d), dtype=dtype, device=prep.device)
        self.sq_norms = torch.empty(n, dtype=torch.float64, device=prep.device)
        for r0 in range(0, n, 8192):  # chunks: float32 runs never hold a float64 copy of all features
            idx = self.order_t[r0 : r0 + 8192]
            x64 = prep.features.index_select(0, idx).to(torch.float64)
            x = x64.sub_(mean).to(dtype)
            x64 = x.to(torch.float64) if dtype != torch.float64 else x  # norms of the rounded centred x
            self.x[r0 : r0 + 8192] = x
            self.sq_norms[r0 : r0 + 8192] = torch.linalg.vecdot(x64, x64)
        self.key_norms = self.sq_norms.to(dtype)
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
        """The centred features in the compute dtype."""
        return self.x

    def columns(self, c0: int = 0, c1: int | None = None, *, cols: torch.Tensor | None = None):
        """The keys and their norms (compute dtype) of the sorted columns ``c0:c1`` or the indices ``cols``."""
        if cols is None:
            return self.x[c0:c1], self.key_norms[c0:c1]
        return self.x.index_select(0, cols), self.key_norms.index_select(0, cols)

    @staticmethod
    def product(q: torch.Tensor, columns: tuple[torch.Tensor, torch.Tensor], *, out: torch.Tensor | None = None):
        """``D' = |x_j|² − 2 q·x_j`` of query rows ``q`` (centred, compute dtype) against ``columns``."""
        keys, norms = columns
        if out is None:
            return torch.addmm(norms, q, keys.T, alpha=-2)
        return torch.addmm(norms, q, keys.T, alpha=-2, out=out)

    def tolerance(self, q_sq_norms: torch.Tensor, key_sq_norm: float | None = None) -> torch.Tensor:
        """Bound τ on |computed D' − reference D'| for queries with these squared norms (float64).

        With ``a = |q|``, ``b = |x_j|`` (centred, rounded) and u the unit roundoff of the compute
        dtype: ``|x_j|² − 2 q·x_j`` by addmm (d products, the exact scaling by −2 and one addition
        of the bias, in any order) has error ≤ γ_{d+1}·(2ab + b²) (Higham, Accuracy and Stability of
        Numerical Algorithms, §3.1); the cast of |x_j|²
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
    """Query rows per block: ``block_size`` if given, else 4096 (at most N)."""
    if block_size is not None:
        return max(1, int(block_size))
    return max(1, min(DEFAULT_BLOCK_ROWS, n))


def tile_columns(device: torch.device, tile_cols: int | None) -> int:
    """Key columns per product tile: ``tile_cols`` if given, else 1024 on the CPU, 16384 on a GPU."""
    if tile_cols is not None:
        return max(1, int(tile_cols))
    return DEFAULT_TILE_COLS if torch.device(device).type == "cpu" else 16 * DEFAULT_TILE_COLS


def plan_blocks(queries: np.ndarray, bounds: np.ndarray, b: int) -> list[tuple[np.ndarray, list[tuple[int, int, int, int]]]]:
    """Query blocks (sorted indices) of at most ``b`` rows, each with its class segments ``(a, z, s, e)``
    (block rows ``a:z`` belong to the class occupying columns ``s:e``).

    A class with at least ``b/4`` query rows gets blocks of its own (split evenly), so the first pass
    can skip its columns; smaller classes are packed together (a product of a few rows runs far below
    the BLAS peak; a packed block computes its classes' own columns twice, in both passes, which is
    at most ``1/C`` of the work). Measured at N = 20,000, C = 10 (classes of ~2,000 rows): with the
    threshold at ``b/2`` most classes were packed and exact was 1.20× the bare products at d = 512."""
    codes = np.searchsorted(bounds, queries, side="right") - 1
    starts = np.flatnonzero(np.r_[True, np.diff(codes) != 0]) if queries.size else np.zeros(0, dtype=np.int64)
    ends = np.r_[starts[1:], queries.size]
    ranges: list[tuple[int, int]] = []
    pack: list[int] = []  # [first, last) query positions of the current pack of small classes
    for q0, q1 in zip(starts.tolist(), ends.tolist()):
        if 4 * (q1 - q0) >= b:
            ranges += [tuple(pack)] if pack else []
            pack = []
            cuts = np.linspace(q0, q1, -(-(q1 - q0) // b) + 1).round().astype(int)
            ranges += list(zip(cuts[:-1].tolist(), cuts[1:].tolist()))
            continue
        if pack and q1 - pack[0] > b:
            ranges.append(tuple(pack))
            pack = []
        pack = [pack[0] if pack else q0, q1]
    ranges += [tuple(pack)] if pack else []
    blocks = []
    for g0, g1 in ranges:
        rows, c = queries[g0:g1], codes[g0:g1]
        cuts = np.flatnonzero(np.diff(c)) + 1
        seg_a, seg_z = np.r_[0, cuts], np.r_[cuts, rows.size]
        blocks.append((rows, [(int(a), int(z), int(bounds[c[a]]), int(bounds[c[a] + 1])) for a, z in zip(seg_a, seg_z)]))
    return blocks


def local_index(pair_rows: torch.Tensor, n_rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The distinct block rows among ``pair_rows`` and a map block row → its position among them (−1 elsewhere)."""
    unique = torch.unique(pair_rows)
    local = torch.full((n_rows,), -1, dtype=torch.int64, device=pair_rows.device)
    local[unique] = torch.arange(unique.numel(), device=pair_rows.device)
    return unique, local


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


def _tiles(ranges: list[tuple[int, int]], w: int) -> list[tuple[int, int]]:
    return [(c0, min(c0 + w, c1)) for r0, c1 in ranges for c0 in range(r0, c1, w)]


def _product(sf: SortedFeatures, q: torch.Tensor, c0: int, c1: int, buffer: torch.Tensor) -> torch.Tensor:
    """``D'`` of the query rows ``q`` against key columns ``c0:c1``, into the front of ``buffer``."""
    return sf.product(q, sf.columns(c0, c1), out=buffer[: q.shape[0] * (c1 - c0)].view(q.shape[0], c1 - c0))


def same_class_pass(sf: SortedFeatures, q: torch.Tensor, rows: torch.Tensor, segments: list[tuple[int, int, int, int]],
                    lo: torch.Tensor, hi: torch.Tensor, w: int, buffer: torch.Tensor):
    """Tile by tile over each segment's own columns: per row the number of same-class entries of
    ``D'`` strictly below ``lo`` (self excluded by index), and the pairs (block row, sorted column)
    of the entries in ``[lo, hi]``, to be decided in float64 (``lo``, ``hi``: [rows, 1])."""
    count = torch.zeros(rows.numel(), dtype=torch.int64, device=q.device)
    pair_rows, pair_cols = [], []
    for a, z, s, e in segments:
        q_seg, self_col = q[a:z], rows[a:z]
        for c0, c1 in _tiles([(s, e)], w):
            d = _product(sf, q_seg, c0, c1, buffer)
            mine = torch.nonzero((self_col >= c0) & (self_col < c1)).flatten()
            d[mine, self_col[mine] - c0] = float("inf")  # the query itself, excluded by index
            # int32 sums (≤ w per row): torch's bool → int64 row sum of a 4,096-row tile took 35× longer
            # on this CPU (2.4× at 3,364 rows; benchmarks/kstar_kernels.py)
            below = (d < lo[a:z]).sum(1, dtype=torch.int32)
            count[a:z] += below
            ambiguous = torch.nonzero((d <= hi[a:z]).sum(1, dtype=torch.int32) > below).flatten()
            if ambiguous.numel():
                sub = d.index_select(0, ambiguous)
                pr, pc = torch.nonzero((sub >= lo[a + ambiguous]) & (sub <= hi[a + ambiguous]), as_tuple=True)
                pair_rows.append(a + ambiguous[pr])
                pair_cols.append(c0 + pc)
    empty = torch.zeros(0, dtype=torch.int64, device=q.device)
    return count, (torch.cat(pair_rows) if pair_rows else empty), (torch.cat(pair_cols) if pair_cols else empty)


def _block(sf: SortedFeatures, rows: torch.Tensor, segments: list[tuple[int, int, int, int]], w: int,
           buffer: torch.Tensor):
    """k* pieces (raw k*, tie flags, e², rows re-decided) for one block of query rows (sorted indices).

    Pass 1: per tile of other-class columns, each row's minimum of ``D'`` (own-class columns masked;
    a single-class block skips them) → the nearest other-class entry ``e`` and the window
    ``[e − 2τ, e + 2τ]``. Pass 2: per tile of each segment's own columns, the entries below the window
    (counted) and in it (ambiguous pairs, kept). Rows with ambiguous pairs are decided in float64
    against every other-class entry in the window, recomputed from the tiles whose pass-1 minimum
    reaches it (any entry's computed value is within τ of the reference, so the nearest one is among them).
    """
    n, dtype, device = sf.x.shape[0], sf.dtype, sf.x.device
    r0, r1 = int(rows[0]), int(rows[-1]) + 1
    q = sf.x[r0:r1] if r1 - r0 == rows.numel() else sf.x.index_select(0, rows)
    ranges = [(0, segments[0][2]), (segments[0][3], n)] if len(segments) == 1 else [(0, n)]
    tiles = [t for t in _tiles(ranges, w) if t[1] > t[0]]
    minima = torch.empty((len(tiles), rows.numel()), dtype=dtype, device=device)  # [tile, row]
    for t, (c0, c1) in enumerate(tiles):
        d = _product(sf, q, c0, c1, buffer)
        for a, z, s, e in segments:
            if len(segments) > 1 and max(s, c0) < min(e, c1):
                d[a:z, max(s, c0) - c0 : min(e, c1) - c0] = float("inf")
        torch.amin(d, 1, out=minima[t])
    enemy = minima.amin(0)
    q_norms = sf.sq_norms.index_select(0, rows)
    win = 2.0 * sf.tolerance(q_norms)
    lo = outward(enemy.double() - win, dtype, -math.inf).unsqueeze(1)
    hi = outward(enemy.double() + win, dtype, math.inf).unsqueeze(1)
    count, pair_rows, pair_cols = same_class_pass(sf, q, rows, segments, lo, hi, w, buffer)
    enemy_sq = enemy.double() + q_norms
    ties = torch.zeros(rows.numel(), dtype=torch.bool, device=device)
    if not pair_rows.numel():
        return count + 1, ties, enemy_sq, 0
    amb, local = local_index(pair_rows, rows.numel())
    own_s = torch.empty(rows.numel(), dtype=torch.int64, device=device)
    own_e = torch.empty_like(own_s)
    for a, z, s, e in segments:
        own_s[a:z], own_e[a:z] = s, e
    reach = minima.index_select(1, amb).T <= hi[amb]  # [ambiguous rows, tiles]
    enemy_rows, enemy_cols = [], []
    for t in torch.nonzero(reach.any(0)).flatten().tolist():
        c0, c1 = tiles[t]
        r = amb[reach[:, t]]
        d = _product(sf, q.index_select(0, r), c0, c1, buffer)
        cols = torch.arange(c0, c1, device=device)
        d[(cols >= own_s[r, None]) & (cols < own_e[r, None])] = float("inf")
        er, ec = torch.nonzero((d >= lo[r]) & (d <= hi[r]), as_tuple=True)
        enemy_rows.append(local[r[er]])
        enemy_cols.append(c0 + ec)
    extra, tie, exact_sq = resolve_ambiguous(sf, rows[amb], pair_cols, local[pair_rows], torch.cat(enemy_rows),
                                             torch.cat(enemy_cols), amb.numel())
    count[amb] += extra
    ties[amb] = tie
    enemy_sq[amb] = exact_sq
    return count + 1, ties, enemy_sq, amb.numel()


def exact_search(
    prep: Prepared,
    *,
    dtype: torch.dtype = torch.float32,
    block_size: int | None = None,
    progress: bool | None = None,
    rows_subset: np.ndarray | None = None,
    tile_cols: int | None = None,
) -> SearchResult:
    """Exact k* of every sample (or of the input indices ``rows_subset``) by tiled products."""

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
    w = tile_columns(prep.device, tile_cols)
    blocks = plan_blocks(queries, prep.bounds, b)
    # one reused tile buffer (fresh allocations per tile cost page faults); tiles of b × w stay in cache
    buffer = torch.empty(min(b, max(1, queries.size)) * min(w, n), dtype=dtype, device=prep.device)
    bar = Progress(queries.size * n, "k* exact", progress)
    with torch.no_grad(), full_precision_matmul():
        for rows_np, segments in blocks:
            rows = torch.as_tensor(rows_np, device=prep.device)
            k, t, en, amb = _block(sf, rows, segments, w, buffer)
            kstar[rows_np], ties[rows_np], enemy[rows_np] = k.cpu().numpy(), t.cpu().numpy(), en.cpu().numpy()
            n_recomputed += amb
            bar.update(rows_np.size * n)
    bar.close()
    back = prep.order  # sorted row i is input sample order[i]
    out = SearchResult(np.empty_like(kstar), np.empty_like(ties), np.empty_like(enemy), n_recomputed, "exact", {})
    out.kstar[back], out.ties[back], out.enemy_sq_distance[back] = kstar, ties, enemy
    out.info = {"dtype": str(dtype).replace("torch.", ""), "block_rows": b, "tile_cols": w, "device": str(prep.device)}
    return out
