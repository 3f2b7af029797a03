"""k* at scale with the approximate (screened) backend: time, peak memory, agreement with exact.

For each N (one fresh subprocess each, so the peak RSS is that run's): clustered features
(benchmarks/kstar_common.py), the screened backend on all N samples (progress lines on stderr),
then on ``--check`` sampled rows (i) the exact backend in float64, for the agreement (k* equal,
mean |Δk̂*|, from the record's ``distance_from_exact``), and (ii) the exact backend in float32,
timed, whose per-row cost at this N (minus the one-off setup, timed alone) gives the exact time for
all N rows: exact's cost is linear in the rows at fixed N. The check's rows (a few hundred per
class) share blocks across classes, which computes their own columns twice (≤ 1/C extra) where the
full run gives large classes blocks of their own: the estimate is slightly high. Prints one line per
N and the crossover (estimated exact / screened). ``--exact-only`` skips the screened run.

    python benchmarks/kstar_scale.py --sizes 1000000 --dim 128 --check 5000
    python benchmarks/kstar_scale.py --sizes 1000000 --dim 128 512 --check 5000 --exact-only
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {bench!r})
import numpy as np, torch
torch.set_num_threads({threads})
from kstar_common import clustered, machine_load
from ldr_plugin.kstar import kstar_summary
from ldr_plugin.kstar.inputs import prepare
from ldr_plugin.kstar.neighbors import SortedFeatures, block_rows, exact_search, tile_columns
load0 = machine_load()
x, y = clustered({n}, {dim}, {classes}, {spread})
rss_input = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
if {screened}:
    s = kstar_summary(x, y, backend="screened", seed=0, check={check}, candidates={candidates})
    d, timings, gamma = s.distance_from_exact, s.search.get("timings_s", {{}}), s.gamma_prime
else:  # --exact-only: the exact estimate alone
    d, timings, gamma = {{"agreement": float("nan"), "mean_abs_diff_normalised": float("nan"),
                          "max_abs_diff_normalised": float("nan"), "n_checked": 0}}, {{}}, float("nan")
t_screened = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
rows = np.sort(np.random.default_rng(1).choice({n}, {check}, replace=False))
prep = prepare(x, y)
t = time.perf_counter()
SortedFeatures(prep, torch.float32)
t_setup = time.perf_counter() - t
t = time.perf_counter()
exact_search(prep, rows_subset=rows, progress=False)
t_rows = time.perf_counter() - t
print(json.dumps({{"n": {n}, "dim": {dim}, "screened_s": t_screened, "timings": timings,
                  "agreement": d["agreement"], "mean_abs_diff": d["mean_abs_diff_normalised"],
                  "max_abs_diff": d["max_abs_diff_normalised"], "n_checked": d["n_checked"],
                  "exact_rows_s": t_rows, "exact_setup_s": t_setup,
                  "exact_est_s": t_setup + (t_rows - t_setup) * {n} / rows.size, "block_rows": block_rows({n}, None), "tile_cols": tile_columns(torch.device("cpu"), None),
                  "gamma_prime": gamma, "peak_gib": peak / 2**20, "input_gib": rss_input / 2**20,
                  "load_before": load0, "load_after": machine_load()}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--spread", type=float, default=0.5)
    parser.add_argument("--candidates", type=float, default=0.25)
    parser.add_argument("--check", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--exact-only", action="store_true", help="skip the screened run: the exact estimate alone")
    args = parser.parse_args()
    bench = str(Path(__file__).resolve().parent)
    print(f"screened backend, d={args.dim} C={args.classes} spread={args.spread} candidates={args.candidates} "
          f"threads={args.threads} float32; check = {args.check} sampled rows", flush=True)
    for n in args.sizes:
        code = CHILD.format(bench=bench, threads=args.threads, n=n, dim=args.dim, classes=args.classes,
                            spread=args.spread, check=args.check, candidates=args.candidates,
                            screened=not args.exact_only)
        out = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        parts = ", ".join(f"{k} {v:.0f}" for k, v in r["timings"].items() if k != "total_before_count")
        if not args.exact_only:
            print(f"N={n:>9,} d={args.dim}: screened {r['screened_s']:8.1f} s ({parts}; incl. the {r['n_checked']}-row "
              f"exact check)  peak RSS {r['peak_gib']:.2f} GiB (input {r['input_gib']:.2f})  "
              f"agreement with exact {100 * r['agreement']:.2f}% (mean |dk^*| {r['mean_abs_diff']:.1e}, "
              f"max {r['max_abs_diff']:.3f})  Gamma' {r['gamma_prime']:.4f}", flush=True)
        print(f"   exact (float32) on {args.check} rows {r['exact_rows_s']:.1f} s (of which {r['exact_setup_s']:.1f} s "
              f"setup, once) -> all N rows ~{r['exact_est_s']:.0f} s (blocks of {r['block_rows']} rows × tiles of {r['tile_cols']})  "
              + (f"peak RSS {r['peak_gib']:.2f} GiB  " if args.exact_only else
                 f"CROSSOVER exact/screened ~{r['exact_est_s'] / r['screened_s']:.2f}x   ")
              + f"load {r['load_before']} -> {r['load_after']}", flush=True)


if __name__ == "__main__":
    main()
