"""Synthetic DomainBed sweep folders in DomainBed's exact on-disk schema (for tests and benchmarks).

Every run folder gets ``results.jsonl`` (one record per checkpoint with ``args``, ``env{i}_in_acc``
/ ``env{i}_out_acc`` as correct/total fractions, ``epoch``, ``hparams``, ``loss``, ``step``,
``step_time``) and ``done``. Accuracies are coarse fractions so ties occur, which exercises the
tie-breaking DomainBed's selection does. Test envs are every single env and every pair, as
DomainBed's ``sweep`` launches by default.

>>> write_synthetic_sweep("/tmp/sweep", n_records=2000, seed=0)   # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from pathlib import Path

import numpy as np

from ldr_plugin.domainbed.names import DATASET_ENVIRONMENTS

DEFAULT_DATASETS = {"VLCS": 4, "PACS": 4, "RotatedMNIST": 6, "SVIRO": 10}
DEFAULT_ALGORITHMS = ("ERM", "IRM", "CORAL", "LatentDR")


def _run_records(rng: np.random.Generator, args: dict, n_envs: int, steps: int, grid: int) -> list[str]:
    base = rng.uniform(0.3, 0.9, size=n_envs)
    rng.integers(8, 64), rng.uniform(-5, -3.5)  # (drawn as before, so the rest of the stream is unchanged)
    # as DomainBed: the hyperparameters depend on (algorithm, dataset, hparams seed, trial) only
    key = json.dumps([args["algorithm"], args["dataset"], args["hparams_seed"], args["trial_seed"]])
    own = np.random.default_rng(int(hashlib.md5(key.encode()).hexdigest()[:8], 16))
    hparams = {"batch_size": int(own.integers(8, 64)), "lr": float(10 ** own.uniform(-5, -3.5))}
    lines = []
    for s in range(steps):
        record: dict = {"args": args}
        for e in range(n_envs):
            for split in ("in", "out"):
                acc = np.clip(base[e] + 0.05 * s / steps + rng.normal(scale=0.03), 0, 1)
                record[f"env{e}_{split}_acc"] = float(round(acc * grid) / grid)
        record.update({"epoch": float(s), "hparams": hparams, "loss": float(rng.uniform(0, 2)),
                       "step": s * 300, "step_time": float(rng.uniform(0.1, 1))})
        lines.append(json.dumps(record))
    return lines


def _test_env_sets(n_envs: int) -> list[list[int]]:
    return [[i] for i in range(n_envs)] + [list(p) for p in itertools.combinations(range(n_envs), 2)]


def write_synthetic_sweep(
    out_dir: str | os.PathLike,
    *,
    n_records: int,
    seed: int = 0,
    datasets: dict[str, int] | None = None,
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS,
    n_trials: int = 3,
    steps: int = 5,
    grid: int = 40,
    drop_fraction: float = 0.0,
) -> int:
    """Write runs until ``n_records`` records exist (or every job is written); returns the record count.

    ``drop_fraction`` leaves out that fraction of jobs at random (missing pair runs → ``X`` cells).
    """
    rng = np.random.default_rng(seed)
    datasets = datasets or DEFAULT_DATASETS
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    jobs = []
    n_hparams = 1
    while len(jobs) * steps < n_records and n_hparams < 10_000:
        jobs = [(d, a, t, h, envs) for d in datasets for a in algorithms for t in range(n_trials)
                for h in range(n_hparams) for envs in _test_env_sets(datasets[d])]
        n_hparams += 1
    written = 0
    for job in rng.permutation(len(jobs)):
        dataset, algorithm, trial, hseed, envs = jobs[job]
        if written >= n_records:
            break
        if drop_fraction and rng.random() < drop_fraction:
            continue
        args = {"algorithm": algorithm, "checkpoint_freq": None, "data_dir": "/data", "dataset": dataset,
                "holdout_fraction": 0.2, "hparams": None, "hparams_seed": hseed, "output_dir": "",
                "save_model_every_checkpoint": False, "seed": int(rng.integers(2**31)),
                "skip_model_save": False, "steps": steps * 300, "task": "domain_generalization",
                "test_envs": envs, "trial_seed": trial, "uda_holdout_fraction": 0}
        name = hashlib.md5(json.dumps(args, sort_keys=True).encode()).hexdigest()
        args["output_dir"] = str(out / name)
        n_envs = datasets[dataset] if dataset not in DATASET_ENVIRONMENTS else len(DATASET_ENVIRONMENTS[dataset])
        lines = _run_records(rng, args, n_envs, min(steps, n_records - written), grid)
        (out / name).mkdir(exist_ok=True)
        (out / name / "results.jsonl").write_text("\n".join(lines) + "\n")
        (out / name / "done").write_text("done")
        written += len(lines)
    return written
