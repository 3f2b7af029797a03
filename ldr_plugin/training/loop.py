"""A small training loop for any DomainBed-interface algorithm, writing DomainBed's run folder.

It follows DomainBed's ``scripts/train.py`` step by step (hyperparameters from the seeds, global
seeding, in/out splits per domain seeded by ``trial_seed``, endless ``drop_last`` loaders over the
training domains' in-splits, evaluation of every domain's in/out split every ``checkpoint_freq``
steps and at the last step), and writes the same files: ``results.jsonl`` (one record per
checkpoint with DomainBed's keys), ``model.pkl``, ``out.txt`` / ``err.txt`` and ``done``. So
DomainBed's ``collect_results`` and this project's leaderboard read its runs like DomainBed's.

>>> from ldr_plugin.training.loop import train
>>> run = train("ERM", "RotatedDigits", [0], "/tmp/ldr-run", steps=3)  # doctest: +SKIP
"""

from __future__ import annotations

import collections
import json
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ldr_plugin.errors import LdrError
from ldr_plugin.results.atomic import atomic_write_text, atomic_write_with
from ldr_plugin.training import loaders
from ldr_plugin.training.console import environment_lines, print_row, tee_output
from ldr_plugin.training.hparams import choose_hparams, hparams_table, python_scalar, seed_hash
from ldr_plugin.training.resolve import hparams_function, import_domainbed, resolve_algorithm, resolve_dataset


def resolve_hparams(algorithm: str, dataset: str, dataset_cls: type, hparams_seed: int, trial_seed: int) -> dict:
    """The hyperparameters DomainBed's ``train.py`` would use (plugin declarations included)."""
    host = import_domainbed("domainbed.hparams_registry")
    base_fn = None
    if host is not None:  # DomainBed's own table (unwrapped, if the hook wrapped it)
        base_fn = getattr(host._hparams, "__wrapped__", host._hparams)
    algorithm_fn = hparams_function(algorithm)

    def table(seed: int):
        return hparams_table(
            algorithm, dataset, seed, base_fn=base_fn, dataset_cls=dataset_cls, algorithm_fn=algorithm_fn
        )

    return choose_hparams(table, hparams_seed, trial_seed)


def _check_test_envs(test_envs: Sequence[int], n_envs: int, dataset: str) -> list[int]:
    envs = [int(e) for e in test_envs]
    bad = [e for e in envs if not 0 <= e < n_envs]
    if bad or len(set(envs)) != len(envs) or len(envs) >= n_envs:
        raise LdrError(
            f"test_envs {envs} invalid for dataset '{dataset}' with {n_envs} domains: "
            f"expected distinct indices in 0..{n_envs - 1}, leaving at least one training domain"
        )
    return envs


def _splits(dataset, test_envs, holdout_fraction, trial_seed, class_balanced):
    in_splits, out_splits = [], []
    for env_i, env in enumerate(dataset):
        out, in_ = loaders.split_dataset(env, int(len(env) * holdout_fraction), seed_hash(trial_seed, env_i))
        if env_i in test_envs:  # DomainBed re-splits a test env by uda_holdout_fraction = 0
            _, in_ = loaders.split_dataset(in_, 0, seed_hash(trial_seed, env_i))
        weights = (loaders.balanced_class_weights(in_), loaders.balanced_class_weights(out)) if class_balanced else (None, None)
        in_splits.append((in_, weights[0]))
        out_splits.append((out, weights[1]))
    return in_splits, out_splits


def _run_args(algorithm, dataset, test_envs, output_dir, hparams, hparams_seed, trial_seed, seed, steps,
              checkpoint_freq, holdout_fraction, data_dir, save_model_every_checkpoint) -> dict[str, Any]:
    # exactly the keys of train.py's argparse namespace (vars(args))
    return {
        "algorithm": algorithm, "checkpoint_freq": checkpoint_freq, "data_dir": data_dir, "dataset": dataset,
        "holdout_fraction": holdout_fraction, "hparams": json.dumps(hparams) if hparams else None,
        "hparams_seed": hparams_seed, "output_dir": str(output_dir), "save_model_every_checkpoint": bool(save_model_every_checkpoint),
        "seed": seed, "skip_model_save": False, "steps": steps, "task": "domain_generalization",
        "test_envs": list(test_envs), "trial_seed": trial_seed, "uda_holdout_fraction": 0,
    }


def train(
    algorithm: str | type,
    dataset: str | type,
    test_envs: Sequence[int],
    output_dir: str | Path,
    *,
    hparams: dict[str, Any] | None = None,
    hparams_seed: int = 0,
    trial_seed: int = 0,
    seed: int = 0,
    steps: int | None = None,
    checkpoint_freq: int | None = None,
    holdout_fraction: float = 0.2,
    data_dir: str | None = None,
    save_model_every_checkpoint: bool = False,
) -> Path:
    """Train ``algorithm`` on ``dataset`` holding out ``test_envs``; return the run folder.

    Names are resolved (unknown ones rejected with close matches) before any data is loaded. A
    folder that already has ``done`` is returned as it is; an unfinished one is started afresh.
    ``save_model_every_checkpoint`` also writes ``model_step<step>.pkl`` at every checkpoint
    (DomainBed's flag of that name), so the checkpoint a selection method picks can be scored;
    these hold what prediction needs (an algorithm's ``inference_state_dict`` when it has one:
    LatentDR's restoration block and key bank are left out), ``model.pkl`` holds everything.
    """
    algorithm_cls, dataset_cls = resolve_algorithm(algorithm), resolve_dataset(dataset)
    algorithm_name = algorithm if isinstance(algorithm, str) else algorithm_cls.__name__
    dataset_name = dataset if isinstance(dataset, str) else dataset_cls.__name__
    test_envs = _check_test_envs(test_envs, len(dataset_cls.ENVIRONMENTS), dataset_name)
    if not 0.0 < holdout_fraction < 1.0:
        raise LdrError(f"holdout_fraction must be in (0, 1), got {holdout_fraction}")
    out = Path(output_dir)
    if (out / "done").exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.jsonl").unlink(missing_ok=True)
    args = _run_args(algorithm_name, dataset_name, test_envs, out, hparams, hparams_seed, trial_seed, seed,
                     steps, checkpoint_freq, holdout_fraction, data_dir, save_model_every_checkpoint)
    with tee_output(out / "out.txt", out / "err.txt"):
        _train(algorithm_cls, dataset_cls, args, hparams or {}, out)
    return out


def _train(algorithm_cls: type, dataset_cls: type, args: dict, overrides: dict, out: Path) -> None:
    for line in environment_lines():
        print(line)
    print("Args:")
    for k, v in sorted(args.items()):
        print(f"\t{k}: {v}")
    hparams = resolve_hparams(args["algorithm"], args["dataset"], dataset_cls, args["hparams_seed"], args["trial_seed"])
    hparams.update({k: python_scalar(v) for k, v in overrides.items()})
    print("HParams:")
    for k, v in sorted(hparams.items()):
        print(f"\t{k}: {v}")

    random.seed(args["seed"])
    np.random.seed(args["seed"])
    torch.manual_seed(args["seed"])
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    device = "cuda" if torch.cuda.is_available() else "cpu"
    test_envs = args["test_envs"]

    dataset = dataset_cls(args["data_dir"], test_envs, hparams)
    in_splits, out_splits = _splits(dataset, test_envs, args["holdout_fraction"], args["trial_seed"],
                                    hparams.get("class_balanced", False))
    n_workers = getattr(dataset, "N_WORKERS", 0)
    train_iters = [loaders.infinite_batches(env, w, hparams["batch_size"], n_workers)
                   for i, (env, w) in enumerate(in_splits) if i not in test_envs]
    evals = [(f"env{i}_in", loaders.eval_loader(env, n_workers)) for i, (env, _) in enumerate(in_splits)]
    evals += [(f"env{i}_out", loaders.eval_loader(env, n_workers)) for i, (env, _) in enumerate(out_splits)]

    n_domains = len(dataset) - len(test_envs)
    model = algorithm_cls(dataset.input_shape, dataset.num_classes, n_domains, hparams)
    model.to(device)
    steps_per_epoch = min(len(env) / hparams["batch_size"] for env, _ in in_splits)
    n_steps = args["steps"] or dataset.N_STEPS
    checkpoint_freq = args["checkpoint_freq"] or dataset.CHECKPOINT_FREQ

    def save_checkpoint(filename: str, inference_only: bool = False) -> None:  # train.py's keys
        save = {
            "args": args, "model_input_shape": dataset.input_shape, "model_num_classes": dataset.num_classes,
            "model_num_domains": n_domains, "model_hparams": hparams, "model_dict": model.state_dict(),
        }
        if inference_only and hasattr(model, "inference_state_dict"):  # e.g. LatentDR: no restoration block
            save.update(model_dict=model.inference_state_dict(), inference_only=True)
        atomic_write_with(out / filename, lambda handle: torch.save(save, handle))

    _run_steps(model, train_iters, evals, device, n_steps, checkpoint_freq, steps_per_epoch, hparams, args, out,
               save_checkpoint)
    save_checkpoint("model.pkl")
    atomic_write_text(out / "done", "done")


def _run_steps(model, train_iters, evals, device, n_steps, checkpoint_freq, steps_per_epoch, hparams, args, out,
               save_checkpoint):
    from tqdm.auto import tqdm

    checkpoint_vals: dict[str, list] = collections.defaultdict(list)
    last_keys = None
    for step in tqdm(range(n_steps), desc=f"{args['algorithm']} {args['dataset']} {args['test_envs']}",
                     file=sys.__stderr__, disable=None, leave=False):
        start = time.time()
        minibatches = [(x.to(device), y.to(device)) for x, y in (next(it) for it in train_iters)]
        step_vals = model.update(minibatches, None)
        checkpoint_vals["step_time"].append(time.time() - start)
        for key, val in step_vals.items():
            checkpoint_vals[key].append(float(val))
        if step % checkpoint_freq == 0 or step == n_steps - 1:
            results: dict[str, Any] = {"step": step, "epoch": step / steps_per_epoch}
            results.update({key: float(np.mean(vals)) for key, vals in checkpoint_vals.items()})
            for name, loader in evals:
                results[name + "_acc"] = loaders.accuracy(model, loader, device)
            results["mem_gb"] = torch.cuda.max_memory_allocated() / 1024.0**3 if torch.cuda.is_available() else 0.0
            keys = sorted(results)
            if keys != last_keys:
                print_row(keys)
                last_keys = keys
            print_row([results[k] for k in keys])
            results.update({"hparams": hparams, "args": args})
            with open(out / "results.jsonl", "a") as handle:
                handle.write(json.dumps(results, sort_keys=True) + "\n")
            checkpoint_vals = collections.defaultdict(list)
            if args["save_model_every_checkpoint"]:  # for scoring the selected checkpoint: predict-only state
                save_checkpoint(f"model_step{step}.pkl", inference_only=True)
