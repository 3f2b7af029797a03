"""The two kernel choices behind the k* backends' speed, timed side by side in one run.

1. Row counts of a compare mask (the same-class pass counts, per query row, the entries below a
   threshold): torch's default ``mask.sum(1)`` (bool → int64) against ``mask.sum(1, dtype=int32)``,
   on a tile of 4,096 × 1,024 (the exact backend's full tile) and of 3,364 × 1,024 (a block of a
   class of 10,091 rows).
2. The screened search's nearest candidate per row: one slab of rows × all candidates
   (``2**25 // candidates`` rows at a time, the old code) against tiles of 1,024 candidates with a
   running minimum (the current code), 500 rows (one k-means cell) × 45,000 candidates.

Each is timed ``--repeats`` times, interleaved; the best is used. Prints the times and the ratios.

    python benchmarks/kstar_kernels.py
"""

from __future__ import annotations

import argparse
import time

import torch


def best_of(repeats: int, fns: dict) -> dict[str, float]:
    times = {name: float("inf") for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            fn()  # warm
            t = time.perf_counter()
            fn()
            times[name] = min(times[name], time.perf_counter() - t)
    return times


def mask_sums(rows: int, repeats: int) -> dict[str, float]:
    d = torch.randn(rows, 1024)
    lo = torch.quantile(d[:, :64], 0.1, dim=1, keepdim=True)
    mask = d < lo
    reference = mask.sum(1)
    assert torch.equal(mask.sum(1, dtype=torch.int32).to(torch.int64), reference)
    return best_of(repeats, {"bool->int64": lambda: mask.sum(1), "int32": lambda: mask.sum(1, dtype=torch.int32)})


def nearest(rows: int, keys: int, dim: int, repeats: int) -> dict[str, float]:
    q, k = torch.randn(rows, dim), torch.randn(keys, dim)
    norms = (k * k).sum(1)
    step = max(1, (1 << 25) // keys)
    slab = torch.empty(min(step, rows), keys)
    tile = torch.empty(rows, 1024)

    def slabs():
        return torch.cat([torch.addmm(norms, q[r0 : r0 + step], k.T, alpha=-2, out=slab[: min(step, rows - r0)]).min(1)[0]
                          for r0 in range(0, rows, step)])

    def tiles():
        best = torch.full((rows,), float("inf"))
        for c0 in range(0, keys, 1024):
            c1 = min(c0 + 1024, keys)
            value = torch.addmm(norms[c0:c1], q, k[c0:c1].T, alpha=-2, out=tile[:, : c1 - c0]).min(1)[0]
            best = torch.minimum(best, value)
        return best

    torch.testing.assert_close(slabs(), tiles())
    return best_of(repeats, {"slabs": slabs, "tiles": tiles})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, best of {args.repeats}")
    for rows in (4096, 3364):
        t = mask_sums(rows, args.repeats)
        print(f"mask row sums, {rows} x 1024: bool->int64 {1e3 * t['bool->int64']:.2f} ms, int32 "
              f"{1e3 * t['int32']:.2f} ms  ratio {t['bool->int64'] / t['int32']:.1f}x")
    for dim in (128, 512):
        t = nearest(500, 45_000, dim, args.repeats)
        flops = 2 * 500 * 45_000 * dim
        print(f"nearest candidate, 500 rows x 45,000 keys, d={dim}: slabs {1e3 * t['slabs']:.1f} ms "
              f"({flops / t['slabs'] / 1e9:.0f} GFLOP/s), tiles {1e3 * t['tiles']:.1f} ms "
              f"({flops / t['tiles'] / 1e9:.0f} GFLOP/s)  ratio {t['slabs'] / t['tiles']:.2f}x")


if __name__ == "__main__":
    main()
