"""Peak resident memory of exact k* at N = 50,000, d = 512, measured in a fresh subprocess.

The child builds float32 features, runs the exact backend and reports ``ru_maxrss`` (peak RSS of
that process, which includes the Python/torch runtime and the 100 MB input itself).

    python benchmarks/kstar_memory.py --n 50000 --dim 512
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {bench!r})
import torch
torch.set_num_threads({threads})
from kstar_common import clustered
from ldr_plugin.kstar import kstar_search
x, y = clustered({n}, {dim}, {classes}, 1.0)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
r = kstar_search(x, y, progress=False)[0]
seconds = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"rss_before_kib": before, "peak_kib": peak, "seconds": seconds, "block_rows": r.info["block_rows"]}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=50000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    from pathlib import Path

    code = CHILD.format(bench=str(Path(__file__).resolve().parent), threads=args.threads, n=args.n,
                        dim=args.dim, classes=args.classes)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    stats = json.loads(out.stdout.strip().splitlines()[-1])
    gib = stats["peak_kib"] / 2**20
    print(f"N={args.n} d={args.dim} C={args.classes} block_rows={stats['block_rows']} "
          f"time={stats['seconds']:.1f} s")
    print(f"RSS after building the input: {stats['rss_before_kib'] / 2**20:.2f} GiB")
    print(f"PEAK RSS = {gib:.2f} GiB  (target < 2 GiB: {'met' if gib < 2 else 'NOT met'})")


if __name__ == "__main__":
    main()
