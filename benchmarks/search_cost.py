"""Cost of DomainBed's random search at 5001 steps (issue 16, part 3), measured per hyperparameter draw.

For every run of ``studies/random_search_5001.sh`` (ERM, Mixup, LatentDR; RotatedDigitsFlat and
CorruptedDigitsFlat; 5 hparams seeds; 3 trials; every domain held out alone) this times the
algorithm's ``update`` with the hyperparameters that run would draw (the same registry and seeds as
``ldr train --sweep``), on random inputs of the dataset's shape and that run's batch (batch size per
training domain), in CPU seconds of this process (``time.process_time``, one torch thread: work
sharing the cores does not count), median of ``--steps`` after one warm-up. A run's cost is
5001 × its step; the evaluations every 100 steps (about 1,800 images through the featurizer) are
left out. Prints, per algorithm, the core-hours of the search, the longest run and how many runs
take longer than ``--session`` hours on one core.

``--calibrate N`` first trains one real run per algorithm (hparams seed 0, RotatedDigitsFlat, domain
0 held out, N steps, checkpoints every 100 steps) and prints its wall seconds per step (data,
update, evaluations, start-up) beside the update alone as timed here: the ratio to apply to the
totals for what a sweep takes.

Usage: python benchmarks/search_cost.py [--steps 3] [--session 2.5] [--algorithms ERM,Mixup,LatentDR]
                                        [--calibrate 500]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import time

import torch

from ldr_plugin.domainbed.host import resolve_algorithm, resolve_dataset
from ldr_plugin.domainbed.hparams_table import run_hparams

DATASETS = ("RotatedDigitsFlat", "CorruptedDigitsFlat")
STEPS = 5001


def step_seconds(algorithm: str, input_shape: tuple, n_classes: int, n_domains: int, hparams: dict, steps: int) -> float:
    """Median CPU seconds of one ``update`` on random minibatches of ``hparams['batch_size']`` per domain."""
    torch.manual_seed(0)
    model = resolve_algorithm(algorithm)(input_shape, n_classes, n_domains, hparams)
    g = torch.Generator().manual_seed(0)
    batch = [(torch.randn(hparams["batch_size"], *input_shape, generator=g),
              torch.randint(0, n_classes, (hparams["batch_size"],), generator=g)) for _ in range(n_domains)]
    times = []
    for step in range(1 + steps):
        t0 = time.process_time()
        model.update(batch, None)
        if step:
            times.append(time.process_time() - t0)
    return statistics.median(times)


def calibrate(algorithm: str, steps: int, n_steps: int) -> tuple[float, float]:
    """(wall seconds per step of a real ``train`` run of ``n_steps``, CPU seconds of its update alone)."""
    import tempfile

    from ldr_plugin.domainbed.loop import TrainConfig, train

    name = DATASETS[0]
    cls = resolve_dataset(name)
    hp = run_hparams(algorithm, name, cls, 0, 0)
    data = cls(None, [0], {"data_augmentation": False})
    update = step_seconds(algorithm, data.input_shape, data.num_classes, len(cls.ENVIRONMENTS) - 1, hp, steps)
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):  # (its log is in tmp)
        t0 = time.perf_counter()
        train(TrainConfig(algorithm=algorithm, dataset=name, test_envs=[0], steps=n_steps, output_dir=tmp))
        wall = (time.perf_counter() - t0) / n_steps
    return wall, update


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="timed updates per draw (after one warm-up)")
    parser.add_argument("--session", type=float, default=2.5, help="hours a run must fit in")
    parser.add_argument("--algorithms", default="ERM,Mixup,LatentDR")
    parser.add_argument("--n_hparams", type=int, default=5)
    parser.add_argument("--n_trials", type=int, default=3)
    parser.add_argument("--calibrate", type=int, default=0, metavar="N", help="train one real N-step run per "
                        "algorithm first and print its wall time per step beside the update alone")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for algorithm in args.algorithms.split(",") if args.calibrate else []:
        wall, update = calibrate(algorithm, args.steps, args.calibrate)
        print(f"calibration {algorithm:<9} real run {wall * 1000:7.1f} ms/step (wall, {args.calibrate} steps) vs update "
              f"{update * 1000:7.1f} ms (CPU): ratio {wall / update:.2f}")
    total_hours = 0.0
    for algorithm in args.algorithms.split(","):
        runs = []  # (hours, dataset, hparams seed, trial, width, bank, batch)
        for name in DATASETS:
            cls = resolve_dataset(name)
            n_envs = len(cls.ENVIRONMENTS)
            data = cls(None, [0], {"data_augmentation": False})
            seen: dict[str, float] = {}
            for hseed in range(args.n_hparams):
                for trial in range(args.n_trials):
                    hp = run_hparams(algorithm, name, cls, hseed, trial)
                    key = repr(sorted(hp.items()))
                    if key not in seen:
                        seen[key] = step_seconds(algorithm, data.input_shape, data.num_classes, n_envs - 1, hp, args.steps)
                    hours = seen[key] * STEPS / 3600
                    runs += [(hours, name, hseed, trial, hp.get("mlp_width"), hp.get("ldr_bank_size"), hp["batch_size"])
                             for _ in range(n_envs)]  # every domain held out alone: same draw, same cost
        hours = sum(r[0] for r in runs)
        total_hours += hours
        longest = max(runs)
        over = [r for r in runs if r[0] > args.session]
        print(f"{algorithm:<9} {len(runs)} runs, {hours:7.1f} core-hours; longest run {longest[0]:.2f} h "
              f"({longest[1]}, hparams seed {longest[2]}, trial {longest[3]}: width {longest[4]}, bank {longest[5]}, "
              f"batch {longest[6]}); {len(over)} runs over {args.session} h")
    print(f"total     {total_hours:.1f} core-hours = {total_hours / 2:.1f} hours of two cores (evaluations left out)")


if __name__ == "__main__":
    main()
