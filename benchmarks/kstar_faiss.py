"""Exact k* against what a user would otherwise pick: faiss-cpu's exact k-NN with a growing k.

The faiss method (the obvious one with faiss): an exact ``IndexFlatL2`` over all N samples; every
sample queries its k nearest neighbours; the rows whose k neighbours are all of their own class are
searched again with k ×``--growth`` until an other-class neighbour appears; k* is then the rank of
the first other-class neighbour with the query itself removed by index. Queries run in chunks so
the k-NN arrays stay under ``--max-entries`` entries.

The same features, in the same run, go through the bare blocked matrix products (the floor of any
exact method: 2·N²·d flops, same block rows as the exact backend), the exact backend
(``kstar_search``), the faiss method and our ``faiss`` backend (faiss k-NN lists settle the rows
they provably can, the exact backend the rest), ``--repeats`` times interleaved; the best time of
each is used. Also printed: the share of rows the exact backend re-decided in float64 and how many rows
the two methods disagree on (faiss breaks distance ties arbitrarily; the exact backend is
pessimistic).

    python benchmarks/kstar_faiss.py --n 20000 --dim 512
    python benchmarks/kstar_faiss.py --n 20000 100000 --dim 128 512 --data blobs overlap relu
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import torch
from kstar_common import bare_products, clustered, machine_load, timed  # the script folder is on sys.path

from ldr_plugin.kstar import kstar_search
from ldr_plugin.kstar.neighbors import block_rows, tile_columns


def faiss_kstar(x: np.ndarray, y: np.ndarray, *, k0: int, growth: int, max_entries: int) -> tuple[np.ndarray, int]:
    """k* by faiss IndexFlatL2 k-NN with k grown per row until an other-class neighbour is found.

    Returns (raw k* per sample, number of search passes)."""
    import faiss

    n = x.shape[0]
    index = faiss.IndexFlatL2(x.shape[1])
    index.add(x)
    kstar = np.zeros(n, dtype=np.int64)
    todo, k, passes = np.arange(n), k0, 0
    while todo.size:
        k = min(k, n)
        passes += 1
        step = max(1, max_entries // k)
        missing = []
        for c0 in range(0, todo.size, step):
            rows = todo[c0 : c0 + step]
            _, nbr = index.search(x[rows], k)
            is_self = nbr == rows[:, None]
            other = (y[nbr] != y[rows][:, None]) & ~is_self & (nbr >= 0)
            found = other.any(1)
            first = other.argmax(1)
            self_before = (np.cumsum(is_self, axis=1)[np.arange(rows.size), first] > 0) & found
            kstar[rows[found]] = first[found] + 1 - self_before[found]
            missing.append(rows[~found])
        todo = np.concatenate(missing)
        if k == n:  # cannot happen with >= 2 classes, but never loop forever
            break
        k *= growth
    return kstar, passes


def relu_features(n: int, dim: int, n_classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Penultimate-layer-like features: ReLU of a random projection of clustered data (non-negative,
    correlated, norms varying by sample)."""
    x, y = clustered(n, dim, n_classes, 1.0, seed=seed)
    w = np.random.default_rng(seed + 1).normal(scale=dim**-0.5, size=(dim, dim)).astype(np.float32)
    return np.maximum(x @ w, 0.0).astype(np.float32), y


def one_case(n: int, dim: int, data: str, args) -> None:
    if data in ("blobs", "overlap"):
        feats, labels = clustered(n, dim, args.classes, args.spread if data == "blobs" else args.overlap_spread)
    else:
        feats, labels = relu_features(n, dim, args.classes)
    x = torch.from_numpy(feats)
    b = block_rows(n, None)
    t_mm, t_exact, t_faiss, t_ours = [], [], [], []
    for _ in range(args.repeats):
        t_mm.append(timed(bare_products, x)[1])
        result, t = timed(lambda: kstar_search(feats, labels, progress=False)[0])
        t_exact.append(t)
        (fk, passes), t = timed(faiss_kstar, feats, labels, k0=args.k0, growth=args.growth,
                                max_entries=args.max_entries)
        t_faiss.append(t)
        hybrid, t = timed(lambda: kstar_search(feats, labels, backend="faiss", k=args.k0, progress=False)[0])
        t_ours.append(t)
    differ = int(np.sum(fk != result.kstar))
    hybrid_ok = bool(np.array_equal(hybrid.kstar, result.kstar) and np.array_equal(hybrid.ties, result.ties))
    settled = hybrid.info["faiss"]["settled_by_faiss"]
    print(f"N={n} d={dim} data={data} C={args.classes} threads={args.threads} block_rows={b} tile_cols={tile_columns(x.device, None)} "
          f"load before: {args.load_before}")
    print(f"  bare products : {min(t_mm):8.2f} s  all {np.round(t_mm, 2).tolist()}")
    print(f"  exact k*      : {min(t_exact):8.2f} s  all {np.round(t_exact, 2).tolist()}  "
          f"rows re-decided in float64: {result.n_recomputed} ({100 * result.n_recomputed / n:.2f} %)")
    print(f"  faiss k-NN    : {min(t_faiss):8.2f} s  all {np.round(t_faiss, 2).tolist()}  "
          f"({passes} passes, k0={args.k0}, x{args.growth}; median k* {int(np.median(fk))}, max {int(fk.max())})")
    print(f"  backend=faiss : {min(t_ours):8.2f} s  all {np.round(t_ours, 2).tolist()}  (ours: k={args.k0} lists, "
          f"{100 * settled / n:.1f} % of rows settled by faiss, the rest by exact; equal to exact: {hybrid_ok})")
    print(f"  rows where the faiss method and exact differ: {differ} (exact-backend ties: {int(result.ties.sum())})")
    print(f"  RATIO exact / bare = {min(t_exact) / min(t_mm):.2f}   RATIO faiss method / exact = "
          f"{min(t_faiss) / min(t_exact):.2f}   RATIO faiss method / backend=faiss = {min(t_faiss) / min(t_ours):.2f}"
          f"   load after: {machine_load()}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[20000])
    parser.add_argument("--dim", type=int, nargs="+", default=[512])
    parser.add_argument("--data", choices=["blobs", "overlap", "relu"], nargs="+", default=["blobs", "overlap", "relu"],
                        help="blobs: clustered, --spread (k* near n_c: many faiss passes); overlap: clustered with "
                             "--overlap-spread (small k*: one faiss pass); relu: ReLU of a random projection of blobs")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--spread", type=float, default=1.0)
    parser.add_argument("--overlap-spread", type=float, default=0.15)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--k0", type=int, default=16, help="faiss: first k")
    parser.add_argument("--growth", type=int, default=4, help="faiss: k multiplier for rows still without an enemy")
    parser.add_argument("--max-entries", type=int, default=1 << 24, help="faiss: k-NN entries per query chunk")
    args = parser.parse_args()
    import faiss

    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    print(f"faiss {faiss.__version__}, torch {torch.__version__}, {os.cpu_count()} cores")
    for data in args.data:
        for dim in args.dim:
            for n in args.n:
                args.load_before = machine_load()
                one_case(n, dim, data, args)


if __name__ == "__main__":
    main()
