"""The exact k* backend on a CUDA GPU (torch): N = 200,000, d = 2,048 by default.

Times, in one run on the GPU, the bare blocked products (2·N²·d flops, the floor of any exact
method) and the exact backend, and reports the ratio, the rows re-decided in float64 and the
GPU's peak memory; then checks 2,000 sampled rows against the exact backend in float64. Without
a GPU it prints one line saying so and exits 0 (``benchmarks/gpu_check.sh`` calls it on every
machine).

    python benchmarks/kstar_gpu.py [--n 200000] [--dim 2048] [--classes 100]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch
from kstar_common import bare_products  # the script folder is on sys.path

from ldr_plugin.kstar import kstar_search
from ldr_plugin.kstar.neighbors import block_rows, tile_columns


def timed_bare_products(x: torch.Tensor) -> float:
    torch.cuda.synchronize()
    start = time.perf_counter()
    bare_products(x)
    torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--spread", type=float, default=0.5)
    parser.add_argument("--check", type=int, default=2000)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("kstar_gpu: SKIPPED (no CUDA GPU visible to torch); nothing timed")
        return 0
    device = torch.device("cuda")
    g = torch.Generator(device=device).manual_seed(0)
    centres = torch.randn(args.classes, args.dim, device=device, generator=g) * args.spread
    labels = torch.randint(0, args.classes, (args.n,), device=device, generator=g)
    x = centres[labels] + torch.randn(args.n, args.dim, device=device, generator=g)
    b = block_rows(args.n, None)
    print(f"kstar_gpu: {torch.cuda.get_device_name(device)}, torch {torch.__version__}, N={args.n} d={args.dim} "
          f"C={args.classes} float32 block_rows={b} tile_cols={tile_columns(device, None)}")
    timed_bare_products(x[: min(args.n, 4 * b)])  # warm-up (cuBLAS handles, clocks)
    t_bare = timed_bare_products(x)
    torch.cuda.reset_peak_memory_stats(device)
    torch.cuda.synchronize()
    start = time.perf_counter()
    result, _ = kstar_search(x, labels, progress=False)
    torch.cuda.synchronize()
    t_exact = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) / 2**30
    flops = 2.0 * args.n**2 * args.dim
    print(f"  bare products : {t_bare:8.2f} s  ({flops / t_bare / 1e12:.1f} TFLOP/s)")
    print(f"  exact k*      : {t_exact:8.2f} s  rows re-decided in float64: {result.n_recomputed} "
          f"({100 * result.n_recomputed / args.n:.2f} %)  peak GPU memory {peak:.2f} GiB")
    print(f"  RATIO exact / bare = {t_exact / t_bare:.2f}")
    rows = np.sort(np.random.default_rng(0).choice(args.n, min(args.check, args.n), replace=False))
    from ldr_plugin.kstar.inputs import prepare
    from ldr_plugin.kstar.neighbors import exact_search

    check = exact_search(prepare(x, labels), dtype=torch.float64, rows_subset=rows, progress=False)
    same = bool(np.array_equal(check.kstar[rows], result.kstar[rows]))
    print(f"  float32 k* equal to float64 k* on {rows.size} sampled rows: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
