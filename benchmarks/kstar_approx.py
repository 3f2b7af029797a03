"""Approximate (screened or hnsw) vs exact k* on clustered data: speed ratio, per-sample agreement,
|ΔΓ′|, crossover.

For each N: the same features go through the approximate backend and (up to ``--max-exact``) the
exact backend in the same run; agreement is over ALL samples. Above ``--max-exact`` the exact time
is ESTIMATED as t_exact(largest measured N)·(N/N_measured)² and marked so, and the approximate
result is compared with exact on ``--check`` sampled rows (computed exactly for those rows).

    python benchmarks/kstar_approx.py --backend screened --sizes 50000 100000 200000 400000 --max-exact 400000
    python benchmarks/kstar_approx.py --backend hnsw --sizes 50000 --max-exact 50000
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from kstar_common import clustered, timed  # the script folder is on sys.path

from ldr_plugin.kstar import kstar_summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["screened", "hnsw"], default="screened")
    parser.add_argument("--sizes", type=int, nargs="+", default=[50000, 100000, 200000, 400000])
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--spread", type=float, default=0.5)
    parser.add_argument("--max-exact", type=int, default=200000)
    parser.add_argument("--check", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--m", type=int, default=32)
    parser.add_argument("--ef-construction", type=int, default=200)
    parser.add_argument("--ef", type=int, default=128)
    parser.add_argument("--k", type=int, default=1)
    parser.add_argument("--refine-rounds", type=int, default=1)
    parser.add_argument("--candidates", type=float, default=0.25, help="screened: fraction of other-class samples")
    parser.add_argument("--cell-size", type=int, default=500, help="screened: queries per k-means cell")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    last = None  # (N, seconds) of the largest exact run
    if args.backend == "hnsw":
        options = {"ef": args.ef, "k": args.k, "m": args.m, "ef_construction": args.ef_construction,
                       "refine_rounds": args.refine_rounds, "num_threads": args.threads}
    else:
        options = {"candidates": args.candidates, "cell_size": args.cell_size}
    print(f"backend={args.backend} d={args.dim} C={args.classes} spread={args.spread} threads={args.threads} "
          + " ".join(f"{k}={v}" for k, v in options.items()))
    for n in args.sizes:
        x, y = clustered(n, args.dim, args.classes, args.spread)
        approx, t_approx = timed(kstar_summary, x, y, backend=args.backend, seed=0, progress=False,
                                 check=0 if n <= args.max_exact else args.check, **options)
        parts = approx.search.get("timings_s", {})
        line = f"N={n:>7}  {args.backend} {t_approx:8.1f} s ({', '.join(f'{k} {v:.1f}' for k, v in parts.items())})"
        if n <= args.max_exact:
            exact, t_exact = timed(kstar_summary, x, y, progress=False)
            last = (n, t_exact)
            agree = float(np.mean(approx.kstar == exact.kstar))
            far = float(np.mean(exact.kstar > 32))
            line += (f"  exact {t_exact:8.1f} s  SPEEDUP {t_exact / t_approx:5.2f}x  agreement {100 * agree:6.2f}%"
                     f"  |dGamma'| {abs(approx.gamma_prime - exact.gamma_prime):.4f}"
                     f"  Gamma' exact {exact.gamma_prime:.4f}  k*>32 for {100 * far:.0f}%")
        else:
            est = last[1] * (n / last[0]) ** 2 if last else float("nan")
            d = approx.distance_from_exact
            line += (f"  exact ESTIMATED {est:8.1f} s (N² scaling from N={last[0] if last else '-'})"
                     f"  SPEEDUP~{est / t_approx:5.2f}x  agreement on {d['n_checked']} sampled rows "
                     f"{100 * d['agreement']:6.2f}%")
        print(line, flush=True)


if __name__ == "__main__":
    main()
