"""``ldr train``: the built-in loop (one run) or, with ``--sweep``, a DomainBed-style sweep.

Option names are DomainBed's (``--test_envs``, ``--hparams_seed`` ...; dashes work too).
Unknown algorithm or dataset names are rejected with close matches before any data is loaded.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import click

from ldr_plugin.errors import LdrError


def _ints(text: str | None, what: str) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(t) for t in re.split(r"[,\s]+", text.strip()) if t]
    except ValueError as exc:
        raise LdrError(f"{what} must be integers separated by commas or spaces, got {text!r}") from exc


def _names(values: tuple[str, ...]) -> list[str]:
    return [n for v in values for n in re.split(r"[,\s]+", v) if n]


@click.command("train")
@click.option("--algorithm", "--algorithms", "algorithms", multiple=True, default=("ERM",), show_default=True,
              help="Algorithm name(s); several (repeat or comma list) only with --sweep.")
@click.option("--dataset", "--datasets", "datasets", multiple=True, default=("RotatedDigits",), show_default=True,
              help="Dataset name(s); several only with --sweep.")
@click.option("--test_envs", "--test-envs", default="0", show_default=True, help="Held-out domains, e.g. '0' or '0,1'.")
@click.option("--output_dir", "--output-dir", type=click.Path(file_okay=False), default="train_output", show_default=True)
@click.option("--hparams", default=None, help="JSON overrides, e.g. '{\"batch_size\": 8}'.")
@click.option("--hparams_seed", "--hparams-seed", type=int, default=0, show_default=True, help="0 = default hparams.")
@click.option("--trial_seed", "--trial-seed", type=int, default=0, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--steps", type=int, default=None, help="Default: the dataset's N_STEPS.")
@click.option("--checkpoint_freq", "--checkpoint-freq", type=int, default=None)
@click.option("--holdout_fraction", "--holdout-fraction", type=float, default=0.2, show_default=True)
@click.option("--data_dir", "--data-dir", default=None, help="Data root (the embedded digits need none).")
@click.option("--sweep", is_flag=True, help="Run a sweep into --output_dir instead of one run.")
@click.option("--n_trials", "--n-trials", type=int, default=3, show_default=True, help="Sweep: trials.")
@click.option("--n_hparams", "--n-hparams", type=int, default=20, show_default=True, help="Sweep: hparams seeds.")
@click.option("--n_hparams_from", "--n-hparams-from", type=int, default=0, show_default=True)
@click.option("--single_test_envs", "--single-test-envs", is_flag=True, help="Sweep: no test-env pairs.")
@click.option("--engine", type=click.Choice(["auto", "builtin", "domainbed"]), default="auto", show_default=True,
              help="Sweep: DomainBed's own sweep when importable (auto), or the built-in one.")
@click.option("--save_model_every_checkpoint", "--save-model-every-checkpoint", is_flag=True,
              help="Also write model_step<step>.pkl at every checkpoint (train.py's flag; built-in loop only, "
                   "DomainBed's sweep cannot forward it).")
@click.option("--launcher", type=click.Choice(["inline", "local", "slurm"]), default=None,
              help="Sweep, built-in engine: inline (one job after another, the default), local (--workers jobs "
                   "at once on this machine, one CPU thread each; submitit) or slurm (a job array; LDR_SLURM_*).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Sweep, built-in engine: jobs at once for --launcher local (implies it; default: "
                   "LDR_LOCAL_WORKERS, else the number of CPUs).")
def train(algorithms, datasets, test_envs, output_dir, hparams, hparams_seed, trial_seed, seed, steps,
          checkpoint_freq, holdout_fraction, data_dir, sweep, n_trials, n_hparams, n_hparams_from,
          single_test_envs, engine, save_model_every_checkpoint, launcher, workers):
    """Train a DomainBed-interface algorithm on a dataset with the built-in loop (or sweep)."""
    from ldr_plugin.domainbed.host import resolve_algorithm, resolve_dataset
    from ldr_plugin.domainbed.hparams_table import parse_hparams_json

    algorithm_names, dataset_names = _names(algorithms), _names(datasets)
    for name in algorithm_names:
        resolve_algorithm(name)
    for name in dataset_names:
        resolve_dataset(name)
    overrides = parse_hparams_json(hparams)
    if sweep:
        _sweep(algorithm_names, dataset_names, output_dir, hparams, steps, holdout_fraction, data_dir,
               n_trials, n_hparams, n_hparams_from, single_test_envs, engine, save_model_every_checkpoint,
               launcher, workers)
        return
    if launcher is not None or workers is not None:
        raise LdrError("--launcher / --workers run the jobs of a sweep; pass --sweep (one run is one process)")
    if len(algorithm_names) != 1 or len(dataset_names) != 1:
        raise LdrError("one --algorithm and one --dataset per run; pass --sweep to train several")
    from ldr_plugin.domainbed.loop import train as train_run

    run = train_run(algorithm_names[0], dataset_names[0], _ints(test_envs, "--test_envs"), output_dir,
                    hparams=overrides or None, hparams_seed=hparams_seed, trial_seed=trial_seed, seed=seed,
                    steps=steps, checkpoint_freq=checkpoint_freq, holdout_fraction=holdout_fraction,
                    data_dir=data_dir, save_model_every_checkpoint=save_model_every_checkpoint)
    click.echo(f"run folder: {run}")


def _sweep(algorithms, datasets, output_dir, hparams, steps, holdout_fraction, data_dir, n_trials, n_hparams,
           n_hparams_from, single_test_envs, engine, save_model_every_checkpoint, launcher, workers):
    from ldr_plugin.domainbed.host import import_domainbed
    from ldr_plugin.domainbed.sweep import SweepConfig, run_domainbed_sweep, run_sweep

    config = SweepConfig(datasets=datasets, algorithms=algorithms, n_trials=n_trials, n_hparams_from=n_hparams_from,
                         n_hparams=n_hparams, steps=steps, hparams=hparams, holdout_fraction=holdout_fraction,
                         single_test_envs=single_test_envs, data_dir=data_dir or "./",
                         save_model_every_checkpoint=save_model_every_checkpoint)
    if workers is not None and launcher in (None, "local"):
        launcher = "local"
    elif workers is not None:
        raise LdrError(f"--workers is the number of local workers; it does not apply to --launcher {launcher}")
    if (save_model_every_checkpoint or launcher is not None) and engine == "auto":
        engine = "builtin"  # DomainBed's sweep cannot forward the flag; its runs are the same either way
    if launcher is not None and engine == "domainbed":
        raise LdrError("--launcher / --workers are the built-in engine's; DomainBed's sweep runs its jobs "
                       "through its --command_launcher (ours: slurm, submitit_local; see docs/scale-out.md)")
    host = import_domainbed("domainbed") if engine != "builtin" else None
    if engine == "domainbed" and host is None:
        raise LdrError("--engine domainbed: DomainBed is not importable (set DOMAINBED_DIR to a clone)")
    if host is not None:
        root = Path(os.environ.get("DOMAINBED_DIR") or Path(host.__file__).resolve().parents[1])
        counts = run_domainbed_sweep(config, Path(output_dir).resolve(), root)
    else:
        from ldr_plugin.launchers.resources import Resources

        resources = Resources.from_env(local_workers=workers) if launcher not in (None, "inline") else None
        counts = run_sweep(config, output_dir, launcher=launcher or "inline", resources=resources)
    click.echo(f"sweep {output_dir}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
