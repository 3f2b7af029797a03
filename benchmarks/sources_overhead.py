"""Feature-extraction overhead over the bare model forward, and proof that a warm cache does no forward.

(a) Hook overhead: the same RobustBench architecture (random weights), the same batch, the same
device; ``module(x)`` (bare forward) against ``LoadedModel.extract(x, ("penultimate",))`` (pre-hook
capture + flatten + copy to CPU float32), interleaved round by round, medians compared.
(b) End to end: ``extract_features`` over a dataset (PIL -> transform -> batches -> hooks) against the
bare forward over the same, already-transformed batches (the transform's cost is shown separately).
(c) Warm cache: ``get_features`` twice with a cache dir; the second call must not load the model and
must run zero forward passes (counted by a forward hook on the module).

Run:  python benchmarks/sources_overhead.py [--rounds 15] [--batch 64] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings

import numpy as np
import torch


def _model(name: str):
    from ldr_plugin.sources import get_source

    return get_source("robustbench").build_random(name)


def _dataset(root: str, n: int):
    from ldr_plugin.scoring.cifar import write_cifar_folder
    from ldr_plugin.scoring.datasets import load_scoring_dataset

    rng = np.random.default_rng(0)
    labels = np.arange(n) % 10
    write_cifar_folder(root, "cifar10", {"test": (rng.integers(0, 256, (n, 32, 32, 3), np.uint8), labels)},
                       [str(i) for i in range(10)])
    return load_scoring_dataset(f"cifar10:{root}")


def hook_overhead(loaded, batch: int, rounds: int) -> tuple[float, float, float]:
    """Medians of bare and hooked times and the median per-round ratio (order alternates: ABBA)."""
    x = torch.rand(batch, 3, 32, 32)
    bare, hooked, ratios = [], [], []

    def timed(fn) -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    with torch.inference_mode():
        loaded.module(x)  # warm-up
        loaded.extract(x, ("penultimate",))
        for r in range(rounds):
            pair = [lambda: loaded.module(x), lambda: loaded.extract(x, ("penultimate",))]
            times = [timed(f) for f in (pair if r % 2 == 0 else pair[::-1])]
            b, h = times if r % 2 == 0 else times[::-1]
            bare.append(b)
            hooked.append(h)
            ratios.append(h / b)
    return statistics.median(bare), statistics.median(hooked), statistics.median(ratios) - 1


def end_to_end(loaded, data, batch: int, rounds: int) -> tuple[float, float, float, float]:
    """Bare forward over pre-transformed batches vs ``extract_features`` over the dataset, ABBA-interleaved;
    returns the medians, the median per-round ratio - 1, and the transform's own time."""
    from ldr_plugin.scoring.features import _to_input, extract_features

    start = time.perf_counter()
    tensors = [_to_input(data.samples[i], loaded.transform) for i in range(len(data))]
    transform_s = time.perf_counter() - start
    batches = [torch.stack(tensors[i:i + batch]) for i in range(0, len(tensors), batch)]

    def bare() -> float:
        start = time.perf_counter()
        with torch.inference_mode():
            for b in batches:
                loaded.module(b)
        return time.perf_counter() - start

    def full() -> float:
        start = time.perf_counter()
        extract_features(loaded, data, "penultimate", batch_size=batch, progress=False)
        return time.perf_counter() - start

    bares, fulls, ratios = [], [], []
    for r in range(rounds):
        b, f = (bare(), full()) if r % 2 == 0 else tuple(reversed((full(), bare())))
        bares.append(b)
        fulls.append(f)
        ratios.append(f / b)
    return statistics.median(bares), statistics.median(fulls), statistics.median(ratios) - 1, transform_s


def warm_cache(loaded, data) -> tuple[int, int, int, int]:
    from ldr_plugin.scoring.features import get_features

    calls = {"load": 0, "forward": 0}
    loaded.module.register_forward_hook(lambda *a: calls.__setitem__("forward", calls["forward"] + 1))

    def load():
        calls["load"] += 1
        return loaded

    with tempfile.TemporaryDirectory() as cache:
        first = get_features(loaded.model_id, data, "penultimate", load_model=load, weights_files=[],
                             cache_dir=cache, progress=False)
        cold = dict(calls)
        second = get_features(loaded.model_id, data, "penultimate", load_model=load, weights_files=[],
                              cache_dir=cache, progress=False)
        assert second.from_cache and np.array_equal(first.features, second.features)
    return cold["load"], cold["forward"], calls["load"] - cold["load"], calls["forward"] - cold["forward"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--n-images", type=int, default=128)
    parser.add_argument("--e2e-rounds", type=int, default=6)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    ok = True
    with tempfile.TemporaryDirectory() as root:
        data = _dataset(root, args.n_images)
        for name in ("cifar10/Linf/Ding2020MMA", "cifar10/Linf/Sehwag2021Proxy_R18"):
            loaded = _model(name)
            bare, hooked, ratio = hook_overhead(loaded, args.batch, args.rounds)
            ok &= ratio <= 0.10
            print(f"{name}: batch {args.batch}, {args.rounds} rounds: bare forward {bare * 1e3:.1f} ms, "
                  f"extract {hooked * 1e3:.1f} ms, hook overhead (median per-round ratio) {ratio * 100:+.2f}%")
            bare_s, full_s, e2e, transform_s = end_to_end(loaded, data, args.batch, args.e2e_rounds)
            print(f"  end to end over {len(data)} images, {args.e2e_rounds} rounds: bare forward {bare_s:.2f} s, "
                  f"extract_features {full_s:.2f} s (median per-round ratio {e2e * 100:+.1f}%; the transform alone "
                  f"takes {transform_s:.2f} s, {transform_s / bare_s * 100:.1f}% of the bare forward)")
            cold_load, cold_fwd, warm_load, warm_fwd = warm_cache(loaded, data)
            ok &= warm_load == 0 and warm_fwd == 0
            print(f"  cache: cold run loaded the model {cold_load}x and ran {cold_fwd} forward passes; "
                  f"warm run loaded it {warm_load}x and ran {warm_fwd} forward passes")
    print("PASS" if ok else "FAIL", "(hook overhead <= 10% and warm cache without forward)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
