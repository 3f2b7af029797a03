"""Images/s of ``ldr score``'s extraction pass against a bare loop over the same model and loader.

Both sides read the same CIFAR-layout folder through the same ``DataLoader`` (the host transform in
the workers, ``--num-workers`` N); the bare loop only calls ``module(x)``, while ``ldr score``'s pass
(:func:`ldr_plugin.scoring.extraction.extract`) also captures the penultimate features through the
hook, computes the head's top-1 and copies float32 arrays out. Rounds alternate (ABBA) and the
median per-round ratio is reported, because the machine is shared. Also counts forward passes when
two layers are asked (must equal the number of batches).

Run:  python benchmarks/score_throughput.py [--model cifar10/Linf/Sehwag2021Proxy_R18] [--n-images 192]
      [--batch 64] [--rounds 4] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings

import numpy as np
import torch


def _data(root: str, n: int):
    from ldr_plugin.scoring.cifar import write_cifar_folder
    from ldr_plugin.scoring.datasets import load_scoring_dataset

    rng = np.random.default_rng(0)
    labels = np.arange(n) % 10
    write_cifar_folder(root, "cifar10", {"test": (rng.integers(0, 256, (n, 32, 32, 3), np.uint8), labels)},
                       [str(i) for i in range(10)])
    return load_scoring_dataset(f"cifar10:{root}")


def bare_loop(loaded, data, batch: int, workers: int) -> float:
    from ldr_plugin.scoring.extraction import _Inputs

    loader = torch.utils.data.DataLoader(_Inputs(data, loaded.transform), batch_size=batch, num_workers=workers)
    start = time.perf_counter()
    with torch.inference_mode():
        for images in loader:
            loaded.module(images)
    return time.perf_counter() - start


def score_pass(loaded, data, batch: int, workers: int) -> float:
    from ldr_plugin.scoring.extraction import extract

    start = time.perf_counter()
    extract(loaded, data, ("penultimate",), batch_size=batch, progress=False, num_workers=workers)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    from ldr_plugin.scoring.extraction import default_num_workers, extract
    from ldr_plugin.sources import get_source

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cifar10/Linf/Sehwag2021Proxy_R18")
    parser.add_argument("--n-images", type=int, default=192)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    loaded = get_source("robustbench").build_random(args.model)
    with tempfile.TemporaryDirectory() as root:
        data = _data(root, args.n_images)
        bare_loop(loaded, data, args.batch, 0)  # warm-up
        for workers in sorted({0, default_num_workers()}):
            bares, scores, ratios = [], [], []
            for r in range(args.rounds):
                pair = [lambda w=workers: bare_loop(loaded, data, args.batch, w),
                        lambda w=workers: score_pass(loaded, data, args.batch, w)]
                times = [f() for f in (pair if r % 2 == 0 else pair[::-1])]
                b, s = times if r % 2 == 0 else times[::-1]
                bares.append(b)
                scores.append(s)
                ratios.append(b / s)  # throughput of ldr score relative to the bare loop
            n = len(data)
            print(f"{args.model}, {n} images, batch {args.batch}, --num-workers {workers}, {args.rounds} rounds: "
                  f"bare loop {n / statistics.median(bares):.1f} img/s, ldr score pass {n / statistics.median(scores):.1f} "
                  f"img/s, ratio (median per round) {statistics.median(ratios):.3f}x")
        calls = []
        loaded.module.register_forward_hook(lambda *a: calls.append(1))
        got = extract(loaded, data, ("penultimate", "logits"), batch_size=args.batch, progress=False, num_workers=0)
        batches = -(-len(data) // args.batch)
        print(f"two layers (penultimate, logits): {len(calls)} forward passes of the model for {batches} batches "
              f"(extract counted {got.forward_passes})")
        return 0 if len(calls) == batches else 1


if __name__ == "__main__":
    raise SystemExit(main())
