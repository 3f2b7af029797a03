"""``ldr score``'s metrics on CUDA vs CPU, on the same features (a random-initialised RobustBench
model over a random CIFAR-layout folder of ``--n-images`` images).

Runs ``ldr score``'s own code (:func:`ldr_plugin.scoring.run.score`) twice into two result folders
that share one feature cache: first with ``--device cuda`` (extracts the features and caches them),
then with ``--device cpu`` (reads the same features from the cache). Prints, per metric family, the
``timings_s.metric`` of both records, their ratio, where each ran (``detail.metric_device``) and
the largest difference of their values. Without a CUDA device it prints one line and exits 0
(``benchmarks/gpu_check.sh`` calls it on every machine).

    python benchmarks/score_metrics_device.py [--n-images 10000] [--model cifar10/Linf/Sehwag2021Proxy_R18]
    python benchmarks/score_metrics_device.py --devices cpu cpu --n-images 200   # the code path, no GPU
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch


def _setup(root: Path, model: str, n: int) -> tuple[str, str]:
    from ldr_plugin.scoring.cifar import write_cifar_folder
    from ldr_plugin.sources._compat import import_robustbench

    import_robustbench()
    from robustbench.model_zoo import model_dicts
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

    dataset, threat, name = model.split("/")
    torch.manual_seed(0)
    net = model_dicts[BenchmarkDataset(dataset)][ThreatModel(threat)][name]["model"]()
    (root / "w" / dataset / threat).mkdir(parents=True)
    torch.save({"state_dict": net.state_dict()}, root / "w" / dataset / threat / f"{name}.pt")
    rng = np.random.default_rng(0)
    write_cifar_folder(root / "data", "cifar10", {"test": (rng.integers(0, 256, (n, 32, 32, 3), np.uint8),
                                                           np.arange(n) % 10)}, [f"c{i}" for i in range(10)])
    return str(root / "w"), f"cifar10:{root / 'data'}"


def _records(out: Path) -> dict:
    from ldr_plugin.results import read_record

    return {r.metric_family: r for r in map(read_record, sorted(out.glob("*.result.json")))}


def main(argv: list[str] | None = None) -> int:
    from ldr_plugin.scoring.run import ScoreConfig, score

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cifar10/Linf/Sehwag2021Proxy_R18")
    parser.add_argument("--n-images", type=int, default=10_000)
    parser.add_argument("--devices", nargs=2, default=["cuda", "cpu"], metavar=("FIRST", "SECOND"))
    args = parser.parse_args(argv)
    if "cuda" in args.devices and not torch.cuda.is_available():
        print("score_metrics_device: SKIPPED (no CUDA GPU visible to torch); nothing timed")
        return 0
    warnings.filterwarnings("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        weights, dataset = _setup(root, args.model, args.n_images)
        runs = {}
        for i, device in enumerate(args.devices):
            out = root / f"out{i}-{device}"
            [outcome] = score(ScoreConfig(models=[f"robustbench:{args.model}"], datasets=[dataset], out_dir=str(out),
                                          weights_dir=weights, cache_dir=str(root / "cache"), device=device))
            if outcome.error:
                print(f"score_metrics_device: {device} run failed: {outcome.error}")
                return 1
            runs[device if device not in runs else f"{device}'"] = _records(out)
        (a, ra), (b, rb) = runs.items()
        if not all(r.features_from_cache for r in rb.values()):
            print("score_metrics_device: the second run did not read the first run's features; not comparable")
            return 1
        print(f"score_metrics_device: robustbench:{args.model}, N={args.n_images}, "
              f"d={next(iter(ra.values())).feature_dim}, torch {torch.__version__}"
              + (f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""))
        for family in sorted(ra):
            ta, tb = ra[family].timings_s["metric"], rb[family].timings_s["metric"]
            diff = max(abs((ra[family].metrics[k].value or 0) - (rb[family].metrics[k].value or 0))
                       for k in ra[family].metrics)
            print(f"  {family:12s} {a} ({ra[family].detail['metric_device']}) {ta:8.3f} s   "
                  f"{b} ({rb[family].detail['metric_device']}) {tb:8.3f} s   {b}/{a} = {tb / ta:6.2f}   "
                  f"max |value diff| {diff:.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
