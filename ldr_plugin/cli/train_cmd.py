"""``ldr train``: the built-in loop (one run) or, with ``--sweep``, a DomainBed-style sweep.

Option names are DomainBed's (``--test_envs``, ``--hparams_seed`` ...; dashes work too), and the
same options can come from a TOML file (``--config run.toml``). They fill one
:class:`~ldr_plugin.domainbed.loop.TrainConfig` (a run) or
:class:`~ldr_plugin.domainbed.sweep.SweepConfig` (a sweep). Unknown algorithm or dataset names
are rejected with close matches before any data is loaded.
"""

from __future__ import annotations

import json
import re
from typing import Any

import click

from ldr_plugin.cli.hostwarnings import quiet_host_warnings
from ldr_plugin.domainbed.hparams_table import parse_hparams_json
from ldr_plugin.domainbed.sweep import SweepConfig, sweep
from ldr_plugin.errors import LdrError
from ldr_plugin.tomlfile import check_keys, read_toml

RUN_ONLY = ("test_envs", "hparams_seed", "trial_seed", "seed", "checkpoint_freq")
SWEEP_ONLY = ("n_trials", "n_hparams", "n_hparams_from", "single_test_envs")


def _ints(value: str | list[int], what: str) -> list[int]:
    if not isinstance(value, str):
        return [int(v) for v in value]
    try:
        return [int(t) for t in re.split(r"[,\s]+", value.strip()) if t]
    except ValueError as exc:
        raise LdrError(f"{what} must be integers separated by commas or spaces, got {value!r}") from exc


def _names(values: str | list[str] | tuple[str, ...]) -> list[str]:
    values = [values] if isinstance(values, str) else values
    return [n for v in values for n in re.split(r"[,\s]+", v) if n]


def _values(ctx: click.Context, options: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """Every option: from the command line if given there, else from ``--config``, else its default;
    and the names given on the command line or in the config (not left at their default)."""
    config = options.pop("config")
    given = {k for k in options if ctx.get_parameter_source(k) == click.core.ParameterSource.COMMANDLINE}
    if config is not None:
        table = read_toml(config, "training config")
        check_keys(table, set(options), config)
        options.update({k: v for k, v in table.items() if k not in given})
        given |= set(table)
    return options, given


def _check_scope(is_sweep: bool, given: set[str]) -> None:
    """A run's option given to a sweep (or a sweep's to a run) would be ignored: refuse it instead."""
    ignored = sorted(given & set(RUN_ONLY if is_sweep else SWEEP_ONLY))
    if ignored:
        names = ", ".join(f"--{k}" for k in ignored)
        raise LdrError(f"{names}: {'one run' if is_sweep else 'a sweep'}'s option(s), which "
                       + ("a sweep sets per job (test envs, seeds) or does not have; drop them or train one run "
                          "without --sweep" if is_sweep else "one run does not use; add --sweep or drop them"))


@click.command("train")
@click.option("--algorithm", "--algorithms", "algorithms", multiple=True, default=("ERM",), show_default=True,
              help="Algorithm name(s); several (repeat or comma list) only with --sweep.")
@click.option("--dataset", "--datasets", "datasets", multiple=True, default=("RotatedDigits",), show_default=True,
              help="Dataset name(s); several only with --sweep.")
@click.option("--test_envs", "--test-envs", default="0", show_default=True, help="Held-out domains, e.g. '0' or '0,1'.")
@click.option("--output_dir", "--output-dir", "--out", type=click.Path(file_okay=False), default="train_output", show_default=True)
@click.option("--hparams", default=None, help="JSON overrides, e.g. '{\"batch_size\": 8}'.")
@click.option("--hparams_seed", "--hparams-seed", type=int, default=0, show_default=True, help="0 = default hparams.")
@click.option("--trial_seed", "--trial-seed", type=int, default=0, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--steps", type=int, default=None, help="Default: the dataset's N_STEPS.")
@click.option("--checkpoint_freq", "--checkpoint-freq", type=int, default=None)
@click.option("--holdout_fraction", "--holdout-fraction", type=float, default=0.2, show_default=True)
@click.option("--data_dir", "--data-dir", default=None, help="Data root (the embedded digits need none).")
@click.option("--sweep", is_flag=True, help="Run a sweep into --output_dir instead of one run (built-in engine: "
              "create <output_dir>/STOP to let the running jobs finish and start no new one).")
@click.option("--n_trials", "--n-trials", "--trials", type=int, default=3, show_default=True, help="Sweep: trials.")
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
@click.option("--config", type=click.Path(dir_okay=False, exists=True), default=None,
              help="A TOML file of these options (names with underscores); flags given on the command line win.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Sweep, built-in engine: jobs at once for --launcher local (implies it; default: "
                   "LDR_LOCAL_WORKERS, else the number of CPUs).")
@quiet_host_warnings
def train_command(**options: Any) -> None:
    """Train a DomainBed-interface algorithm on a dataset with the built-in loop (or sweep)."""
    values, given = _values(click.get_current_context(), options)
    _check_scope(values["sweep"], given)
    algorithms, datasets = _names(values.pop("algorithms")), _names(values.pop("datasets"))
    hparams = parse_hparams_json(values.pop("hparams"))
    is_sweep, engine, launcher, workers = (values.pop(k) for k in ("sweep", "engine", "launcher", "workers"))
    run_only, sweep_only = {k: values.pop(k) for k in RUN_ONLY}, {k: values.pop(k) for k in SWEEP_ONLY}
    output_dir, data_dir = values.pop("output_dir"), values.pop("data_dir")
    if is_sweep:
        config = SweepConfig(datasets, algorithms, hparams=json.dumps(hparams) if hparams else None,
                             data_dir=data_dir or "./", **sweep_only, **values)
        counts = sweep(config, output_dir, engine=engine, launcher=launcher, workers=workers)
        click.echo(f"sweep {output_dir}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        return
    if launcher is not None or workers is not None:
        raise LdrError("--launcher / --workers run the jobs of a sweep; pass --sweep (one run is one process)")
    if len(algorithms) != 1 or len(datasets) != 1:
        raise LdrError("one --algorithm and one --dataset per run; pass --sweep to train several")
    from ldr_plugin.domainbed.loop import TrainConfig, train  # torch: only when this process trains

    run_only["test_envs"] = _ints(run_only["test_envs"], "--test_envs")
    config = TrainConfig(algorithms[0], datasets[0], output_dir=output_dir, hparams=hparams or None,
                         data_dir=data_dir, **run_only, **values)
    click.echo(f"run folder: {train(config)}")
