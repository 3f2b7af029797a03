"""A small training loop for any DomainBed-interface algorithm, writing DomainBed's run folder.

It follows DomainBed's ``scripts/train.py`` step by step (hyperparameters from the seeds, global
seeding, in/out splits per domain seeded by ``trial_seed``, endless ``drop_last`` loaders over the
training domains' in-splits, evaluation of every domain's in/out split every ``checkpoint_freq``
steps and at the last step), and writes the same files: ``results.jsonl`` (one record per
checkpoint with DomainBed's keys), ``model.pkl``, ``out.txt`` / ``err.txt`` and ``done``. So
DomainBed's ``collect_results`` and this project's leaderboard read its runs like DomainBed's.
A run is one :class:`TrainConfig` (train.py's arguments), filled from flags or a TOML file.

>>> from ldr_plugin.domainbed.loop import TrainConfig, train
>>> run = train(TrainConfig("ERM", "RotatedDigits", [0], "/tmp/ldr-run", steps=3))  # doctest: +SKIP
"""

from __future__ import annotations

import collections
import json
import random
import sys
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ldr_plugin.domainbed import loaders
from ldr_plugin.domainbed.console import echo_runs, environment_lines, print_row, tee_output
from ldr_plugin.domainbed.host import resolve_algorithm, resolve_dataset
from ldr_plugin.domainbed.hparams_table import check_overrides, run_hparams, seed_hash
from ldr_plugin.domainbed.runs import read_run_records
from ldr_plugin.errors import LdrError
from ldr_plugin.results.io import atomic_write_text, atomic_write_with
from ldr_plugin.tomlfile import dataclass_from_table


@dataclass
class TrainConfig:
    """One run: the arguments of DomainBed's ``train.py`` (same names, same defaults).

    ``algorithm`` / ``dataset`` are names (or classes); ``hparams`` are overrides of the
    hyperparameters the seeds choose (train.py's ``--hparams`` JSON). With
    ``save_model_every_checkpoint`` the run also writes ``model_step<step>.pkl`` at every
    checkpoint, so the checkpoint a selection method picks can be scored; these hold what
    prediction needs (an algorithm's ``inference_state_dict`` when it has one: LatentDR's
    restoration block and key bank are left out), ``model.pkl`` holds everything.
    """

    algorithm: str | type
    dataset: str | type
    test_envs: list[int] = field(default_factory=lambda: [0])
    output_dir: str | Path = "train_output"
    hparams: dict[str, Any] | None = None
    hparams_seed: int = 0
    trial_seed: int = 0
    seed: int = 0
    steps: int | None = None
    checkpoint_freq: int | None = None
    holdout_fraction: float = 0.2
    data_dir: str | None = None
    save_model_every_checkpoint: bool = False

    @classmethod
    def from_table(cls, table: dict[str, Any], where: str = "<train config>") -> TrainConfig:
        """A config from a TOML table (unknown keys are errors naming ``where`` and the key)."""
        return dataclass_from_table(cls, table, where)

    def run_args(self, algorithm: str, dataset: str) -> dict[str, Any]:
        """Exactly the keys of train.py's argparse namespace (``vars(args)``), as records hold them."""
        return {
            "algorithm": algorithm, "checkpoint_freq": self.checkpoint_freq, "data_dir": self.data_dir,
            "dataset": dataset, "holdout_fraction": self.holdout_fraction,
            "hparams": json.dumps(self.hparams) if self.hparams else None, "hparams_seed": self.hparams_seed,
            "output_dir": str(Path(self.output_dir)), "save_model_every_checkpoint": bool(self.save_model_every_checkpoint),
            "seed": self.seed, "skip_model_save": False, "steps": self.steps, "task": "domain_generalization",
            "test_envs": list(self.test_envs), "trial_seed": self.trial_seed, "uda_holdout_fraction": 0,
        }


TRAIN_FIELDS = tuple(f.name for f in fields(TrainConfig))


def _check_test_envs(test_envs, n_envs: int, dataset: str) -> list[int]:
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


def train(config: TrainConfig) -> Path:
    """Train ``config.algorithm`` on ``config.dataset`` holding out ``config.test_envs``; return the run folder.

    Names, counts, seeds and ``hparams`` overrides are checked (unknown names rejected with close
    matches) before any data is loaded or file written. A folder that already holds this run with
    ``done`` is returned as it is; this run unfinished is started afresh; a different run is refused.
    """
    algorithm_cls, dataset_cls = resolve_algorithm(config.algorithm), resolve_dataset(config.dataset)
    algorithm_name = config.algorithm if isinstance(config.algorithm, str) else algorithm_cls.__name__
    dataset_name = config.dataset if isinstance(config.dataset, str) else dataset_cls.__name__
    test_envs = _check_test_envs(config.test_envs, len(dataset_cls.ENVIRONMENTS), dataset_name)
    if not 0.0 < config.holdout_fraction < 1.0:
        raise LdrError(f"holdout_fraction must be in (0, 1), got {config.holdout_fraction}")
    _check_counts(config)
    args = config.run_args(algorithm_name, dataset_name)
    args["test_envs"] = test_envs
    hparams = run_hparams(algorithm_name, dataset_name, dataset_cls, config.hparams_seed, config.trial_seed)
    hparams.update(check_overrides(hparams, config.hparams or {}, f"{algorithm_name} on {dataset_name}"))
    out = Path(config.output_dir)
    if _folder_holds_run(out, args):
        return out
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.jsonl").unlink(missing_ok=True)
    with tee_output(out / "out.txt", out / "err.txt"):
        _train(algorithm_cls, dataset_cls, args, hparams, out)
    return out


def _check_counts(config: TrainConfig) -> None:
    """Steps and checkpoint frequency are positive, seeds integers numpy accepts: else bad input."""
    for name in ("steps", "checkpoint_freq"):
        value = getattr(config, name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise LdrError(f"{name} must be a positive integer, got {value!r}")
    for name in ("seed", "hparams_seed", "trial_seed"):
        value = getattr(config, name)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**32:
            raise LdrError(f"{name} must be an integer in [0, 2**32), got {value!r}")


# What makes two runs the same run (the output folder aside: one folder can be spelt two ways)
RUN_IDENTITY = ("algorithm", "dataset", "test_envs", "hparams_seed", "trial_seed", "seed", "steps", "hparams",
                "holdout_fraction", "task")


def _folder_holds_run(out: Path, args: dict[str, Any]) -> bool:
    """True when ``out`` holds this run finished (skip it); False when it is new or this run unfinished
    (train afresh). A folder holding a different run, finished or not, is refused: never overwritten."""
    done = (out / "done").exists()
    records = read_run_records(out) if out.is_dir() else []
    if not records:
        if done:
            raise LdrError(f"{out} has 'done' but no readable results.jsonl, so which run it holds is unknown; "
                           "remove the folder or choose another --output_dir")
        return False
    theirs = records[0].get("args", {})
    differ = [k for k in RUN_IDENTITY if theirs.get(k) != args.get(k)]
    if differ:
        what = ", ".join(f"{k} {theirs.get(k)!r} there, {args.get(k)!r} here" for k in differ[:4])
        raise LdrError(f"{out} holds {'a finished' if done else 'an unfinished'} different run ({what}); "
                       "choose another --output_dir (or remove that folder to replace it)")
    return done


def _train(algorithm_cls: type, dataset_cls: type, args: dict, hparams: dict, out: Path) -> None:
    for line in environment_lines():
        print(line)
    print("Args:")
    for k, v in sorted(args.items()):
        print(f"\t{k}: {v}")
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
    checkpoint_vals: dict[str, list] = collections.defaultdict(list)
    last_keys = None
    for step in tqdm(range(n_steps), desc=f"{args['algorithm']} {args['dataset']} {args['test_envs']}",
                     file=sys.__stderr__, disable=None if echo_runs() else True, leave=False):
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
            with tqdm.external_write_mode(file=sys.__stderr__):  # rows never land on the step bar's line
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
