"""Why the screened k* backend works: nearest other-class samples concentrate on "hubs".

    python benchmarks/kstar_hubs.py [--n 50000] [--dim 128] [--fractions 0.15 0.2 0.25]

On clustered data (benchmarks/kstar_common.py) it finds every sample's exact nearest other-class
sample (blocked products), then prints how many distinct samples serve as someone's nearest
other-class sample, how many queries the most-used ones serve, and, for each candidate fraction,
how often the screened backend's search (k-means cells, candidates nearest the cell centroid) finds
exactly that sample.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from kstar_common import clustered  # the script folder is on sys.path

from ldr_plugin.kstar.inputs import prepare
from ldr_plugin.kstar.neighbors import SortedFeatures
from ldr_plugin.kstar.screened import screened_enemies


def exact_enemies(sf: SortedFeatures, codes: torch.Tensor, block: int = 2048) -> torch.Tensor:
    """Sorted index of every sample's nearest other-class sample (ties: lowest index)."""
    n = codes.numel()
    out = torch.empty(n, dtype=torch.int64)
    for r0 in range(0, n, block):
        d = sf.product(sf.x[r0 : r0 + block], sf.columns())
        d[codes[r0 : r0 + block, None] == codes[None, :]] = float("inf")
        out[r0 : r0 + block] = d.argmin(1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=50000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--spread", type=float, default=0.5)
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.15, 0.2, 0.25])
    parser.add_argument("--cell-size", type=int, default=500)
    args = parser.parse_args()
    torch.set_num_threads(2)
    x, y = clustered(args.n, args.dim, args.classes, args.spread)
    prep = prepare(x, y)
    sf = SortedFeatures(prep, torch.float32)
    codes = torch.as_tensor(np.repeat(np.arange(prep.n_classes), np.diff(prep.bounds)))
    enemy = exact_enemies(sf, codes)
    uses = torch.sort(torch.bincount(enemy, minlength=args.n), descending=True).values
    print(f"N={args.n} d={args.dim} C={args.classes} spread={args.spread}")
    print(f"distinct nearest other-class samples: {int((uses > 0).sum())} ({(uses > 0).float().mean():.1%} of N)")
    for top in (0.01, 0.05, 0.1, 0.2):
        print(f"  the {top:.0%} most used serve {uses[: int(top * args.n)].sum().item() / args.n:.1%} of the queries")
    for fraction in args.fractions:
        found, _ = screened_enemies(sf, prep.bounds, candidates=fraction, cell_size=args.cell_size, iters=6, seed=0)
        d_found = sf.exact_pairs(torch.arange(args.n), found)
        d_true = sf.exact_pairs(torch.arange(args.n), enemy)
        print(f"screened search, {fraction:.0%} candidates: nearest other-class sample found for "
              f"{(d_found <= d_true).float().mean():.2%} of queries")


if __name__ == "__main__":
    main()
