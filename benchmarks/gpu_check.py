"""The one check to run on a lent GPU machine: prints one table, within about 5 minutes on one GPU.

Rows: LatentDR vs ERM ``update`` time on ResNet-50 at 224x224 with 3 x 32 (fp32 and bf16 autocast),
and exact k* (torch on CUDA) at N = 200,000, d = 2,048. Without a CUDA device every GPU row is
skipped with one line saying so, and the script exits 0 (it is safe to run anywhere).

    python benchmarks/gpu_check.py            # or benchmarks/gpu_check.sh
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))


def latentdr_rows(steps: int) -> list[tuple[str, str]]:
    import latentdr_overhead

    os.environ["LDR_BUILTIN_NETWORKS"] = "1"  # DomainBed's ResNet would download weights
    rows = []
    for amp in ("none", "bf16"):
        erm, ldr = latentdr_overhead.measure((3, 224, 224), steps, 32, device="cuda", amp=amp)
        label = "fp32" if amp == "none" else amp
        rows.append((f"LatentDR / ERM update, ResNet-50 224², 3 × 32, {label}",
                     f"ERM {erm * 1e3:.0f} ms, LatentDR {ldr * 1e3:.0f} ms, ratio {ldr / erm:.3f}"))
    return rows


def kstar_row(n: int, d: int) -> tuple[str, str]:
    from ldr_plugin.kstar import kstar_values

    g = torch.Generator(device="cuda").manual_seed(0)
    labels = torch.randint(0, 100, (n,), device="cuda", generator=g)
    features = torch.randn(n, d, device="cuda", generator=g) + 0.5 * torch.randn(100, d, device="cuda")[labels]
    torch.cuda.synchronize()
    start = time.perf_counter()
    kstar_values(features, labels.cpu().numpy())
    torch.cuda.synchronize()
    return (f"exact k*, N = {n:,}, d = {d:,}, 100 classes (CUDA)", f"{time.perf_counter() - start:.1f} s")


def main() -> int:
    print(f"torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}")
    if not torch.cuda.is_available():
        print("no CUDA device: every GPU row skipped (LatentDR ResNet-50 step time fp32/bf16, exact k* at "
              "N = 200,000, d = 2,048)")
        return 0
    print(f"device: {torch.cuda.get_device_name(0)}")
    rows = latentdr_rows(steps=5) + [kstar_row(200_000, 2_048)]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:{width}s}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
