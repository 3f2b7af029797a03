"""Cost of LatentDR's ``update`` relative to ERM's, same featurizer and batch, measured interleaved.

Usage: python benchmarks/latentdr_overhead.py [--steps 3] [--per-domain 32] [--skip-resnet] [--skip-cnn]
                                             [--device cuda] [--amp bf16] [--clock cpu]
Prints per-featurizer median step times and the LatentDR/ERM ratio (target <= 1.10).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from ldr_plugin.domainbed.algorithm import LatentDR
from ldr_plugin.domainbed.erm import ERM

HPARAMS = {"lr": 1e-3, "weight_decay": 0.0, "nonlinear_classifier": False, "resnet18": False,
           "resnet50_augmix": False, "resnet_dropout": 0.0, "freeze_bn": False}


def batches(shape, n_domains=3, per_domain=32, num_classes=10, seed=0):
    """Fixed minibatches: one (x, y) per domain."""
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(per_domain, *shape, generator=g), torch.randint(0, num_classes, (per_domain,), generator=g))
            for _ in range(n_domains)]


AMP = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def measure(shape, steps: int, per_domain: int = 32, warmup: int = 1, device: str = "cpu",
            amp: str = "none", clock: str = "wall") -> tuple[float, float]:
    """Median seconds per update for ERM and LatentDR, alternating which runs first each round.

    ``amp`` runs both under ``torch.autocast`` of that dtype on ``device``; on CUDA each update is
    timed to its end (``torch.cuda.synchronize``). ``clock="cpu"`` times the process's CPU time
    (all threads) instead of wall time: on a machine shared with other work it does not count the
    time spent waiting for a core.
    """
    now = time.process_time if clock == "cpu" else time.perf_counter
    torch.manual_seed(0)
    erm = ERM(shape, 10, 3, HPARAMS).to(device)
    torch.manual_seed(0)
    ldr = LatentDR(shape, 10, 3, HPARAMS).to(device)
    mb = [(x.to(device), y.to(device)) for x, y in batches(shape, per_domain=per_domain)]
    sync = torch.cuda.synchronize if str(device).startswith("cuda") else (lambda: None)
    times = {"erm": [], "ldr": []}
    for step in range(warmup + steps):
        order = [("erm", erm), ("ldr", ldr)] if step % 2 == 0 else [("ldr", ldr), ("erm", erm)]
        for name, algo in order:
            sync()
            t0 = now()
            with torch.autocast(torch.device(device).type, dtype=AMP[amp], enabled=AMP[amp] is not None):
                algo.update(mb)
            sync()
            if step >= warmup:
                times[name].append(now() - t0)
    return statistics.median(times["erm"]), statistics.median(times["ldr"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--cnn-steps", type=int, default=20)
    parser.add_argument("--skip-resnet", action="store_true")
    parser.add_argument("--skip-cnn", action="store_true")
    parser.add_argument("--per-domain", type=int, default=32, help="batch per domain (3 domains)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp", choices=sorted(AMP), default="none")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (with --clock cpu use 1: idle "
                        "threads of a busy machine spin and count as CPU time)")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="cpu: process CPU time (robust to other work sharing the cores)")
    args = parser.parse_args()
    if args.device == "cpu":
        torch.set_num_threads(args.threads)
    os.environ["LDR_BUILTIN_NETWORKS"] = "1"  # DomainBed's ResNet would download weights; same architecture
    cases = [] if args.skip_cnn else [("MNIST_CNN 28x28 (d=128)", (1, 28, 28), args.cnn_steps)]
    if not args.skip_resnet:
        cases.append(("ResNet-50 224x224 (d=2048)", (3, 224, 224), args.steps))
    print(f"batch 3 domains x {args.per_domain}, torch {torch.__version__}, device {args.device}, amp {args.amp}, "
          f"threads {torch.get_num_threads()}, clock {args.clock}")
    print(f"{'featurizer':28s} {'steps':>5s} {'ERM s/step':>11s} {'LatentDR s/step':>16s} {'ratio':>7s}")
    for label, shape, steps in cases:
        t_erm, t_ldr = measure(shape, steps, args.per_domain, device=args.device, amp=args.amp, clock=args.clock)
        print(f"{label:28s} {steps:5d} {t_erm:11.3f} {t_ldr:16.3f} {t_ldr / t_erm:7.3f}", flush=True)


if __name__ == "__main__":
    main()
