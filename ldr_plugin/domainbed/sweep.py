"""A DomainBed-style sweep: enumerate jobs as ``domainbed.scripts.sweep`` does and run the unfinished ones.

Jobs are trials × datasets × algorithms × test-env sets × hparams seeds; the test-env sets are
every single domain and every pair (pairs are what leave-one-domain-out selection needs), or
singles only with ``single_test_envs``. Each job's arguments, and so its folder name (the md5 of
the JSON of its arguments) and its ``seed``, are exactly DomainBed's, so a folder written here is
the folder DomainBed's sweep would write and ``collect_results`` reads both.

:func:`sweep` picks the engine: DomainBed's own ``python -m domainbed.scripts.sweep launch`` when
DomainBed is importable (:func:`run_domainbed_sweep`, from the DomainBed root), else the built-in
one (:func:`run_sweep`), which trains the jobs without ``done`` with the built-in loop, inline or
through a launcher.

>>> sweep(SweepConfig(["RotatedDigits"], ["ERM", "LatentDR"], n_hparams=1), "sweeps/rd")  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ldr_plugin.domainbed.console import echo_runs
from ldr_plugin.domainbed.host import domainbed_root, import_domainbed, resolve_algorithm, resolve_dataset
from ldr_plugin.domainbed.hparams_table import check_overrides, parse_hparams_json, run_hparams, seed_hash
from ldr_plugin.domainbed.manifest import run_folder_name, write_expected
from ldr_plugin.errors import LdrError
from ldr_plugin.launchers.launch import LAUNCHERS, launch
from ldr_plugin.launchers.resources import Resources
from ldr_plugin.progress import progress
from ldr_plugin.tomlfile import dataclass_from_table

ENGINES = ("auto", "builtin", "domainbed")
STOP_FILE = "STOP"  # <sweep>/STOP: the built-in engine's running jobs finish, no new one starts


def all_test_env_combinations(n: int) -> Iterator[list[int]]:
    """``[0], [0, 1], [0, 2], ..., [1], [1, 2], ...``: every single domain and every pair (n ≥ 3)."""
    if n < 3:
        raise LdrError(f"a sweep over test-env pairs needs at least 3 domains, got {n}")
    for i in range(n):
        yield [i]
        for j in range(i + 1, n):
            yield [i, j]


@dataclass
class SweepConfig:
    """What to sweep: the arguments of DomainBed's ``sweep.py`` (same names, same defaults)."""

    datasets: Sequence[str]
    algorithms: Sequence[str]
    n_trials: int = 3
    n_hparams_from: int = 0
    n_hparams: int = 20
    steps: int | None = None
    hparams: str | None = None
    holdout_fraction: float = 0.2
    single_test_envs: bool = False
    data_dir: str = "./"
    task: str = "domain_generalization"
    # not one of sweep.py's arguments and not part of a job's arguments (so not of its folder name):
    # train.py's --save_model_every_checkpoint, which DomainBed's sweep has no way to forward
    save_model_every_checkpoint: bool = False

    @classmethod
    def from_table(cls, table: dict[str, Any], where: str = "<sweep config>") -> SweepConfig:
        """A config from a TOML table (unknown keys are errors naming ``where`` and the key)."""
        return dataclass_from_table(cls, table, where)


def check_sweep_config(config: SweepConfig) -> dict[str, Any]:
    """Bad counts, names and ``hparams`` overrides are errors before any job starts; returns the overrides."""
    for name in ("n_trials", "n_hparams"):
        value = getattr(config, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise LdrError(f"{name} must be a positive integer, got {value!r}")
    if not isinstance(config.n_hparams_from, int) or not 0 <= config.n_hparams_from < config.n_hparams:
        raise LdrError(f"n_hparams_from must be in [0, n_hparams = {config.n_hparams}), got {config.n_hparams_from!r}")
    if config.steps is not None and (not isinstance(config.steps, int) or isinstance(config.steps, bool)
                                     or config.steps < 1):
        raise LdrError(f"steps must be a positive integer, got {config.steps!r}")
    if not 0.0 < config.holdout_fraction < 1.0:
        raise LdrError(f"holdout_fraction must be in (0, 1), got {config.holdout_fraction}")
    overrides = parse_hparams_json(config.hparams)
    for dataset in config.datasets:
        dataset_cls = resolve_dataset(dataset)
        for algorithm in config.algorithms:
            resolve_algorithm(algorithm)
            table = run_hparams(algorithm, dataset, dataset_cls, 0, 0)
            check_overrides(table, overrides, f"{algorithm} on {dataset}")
    return overrides


def make_args_list(config: SweepConfig) -> list[dict[str, Any]]:
    """Every job's training arguments, in DomainBed's order and with DomainBed's keys and seeds."""
    args_list = []
    for trial_seed in range(config.n_trials):
        for dataset in config.datasets:
            n_envs = len(resolve_dataset(dataset).ENVIRONMENTS)
            for algorithm in config.algorithms:
                test_env_sets = [[i] for i in range(n_envs)] if config.single_test_envs else all_test_env_combinations(n_envs)
                for test_envs in test_env_sets:
                    for hparams_seed in range(config.n_hparams_from, config.n_hparams):
                        args: dict[str, Any] = {
                            "dataset": dataset, "algorithm": algorithm, "test_envs": test_envs,
                            "holdout_fraction": config.holdout_fraction, "hparams_seed": hparams_seed,
                            "data_dir": config.data_dir, "task": config.task, "trial_seed": trial_seed,
                            "seed": seed_hash(dataset, algorithm, test_envs, hparams_seed, trial_seed),
                        }
                        if config.steps is not None:
                            args["steps"] = config.steps
                        if config.hparams is not None:
                            args["hparams"] = config.hparams
                        args_list.append(args)
    return args_list


def job_dir(sweep_dir: str | Path, train_args: dict[str, Any]) -> Path:
    """``sweep_dir / md5(json.dumps(train_args, sort_keys=True))``, DomainBed's job folder."""
    return Path(sweep_dir) / run_folder_name(train_args)


def train_job(job: tuple[dict[str, Any], Path], overrides: dict | None = None, save_every: bool = False,
              threads: int | None = None, stop_file: str | None = None) -> str | None:
    """Train one sweep job ``(args, run folder)``; returns the folder, or ``None`` without starting it
    when ``stop_file`` exists (a stop asked for while the sweep runs). ``threads`` sets torch's CPU
    thread count first (the parallel sweep's one thread per job, see :func:`run_sweep`)."""
    if stop_file is not None and os.path.exists(stop_file):
        return None
    import torch  # torch and the loop: only in the process that trains (not the one launching DomainBed)

    from ldr_plugin.domainbed.loop import TrainConfig, train  # (torch, as above)

    args, path = job
    if threads is not None:
        torch.set_num_threads(threads)
    same = ("algorithm", "dataset", "test_envs", "hparams_seed", "trial_seed", "seed", "holdout_fraction", "data_dir")
    train(TrainConfig(**{k: args[k] for k in same}, output_dir=path, hparams=overrides or None,
                      steps=args.get("steps"), save_model_every_checkpoint=save_every))
    return str(path)


def _show_progress(launcher: str, n_todo: int) -> bool | None:
    """Progress over jobs (for launchers and several inline jobs; one inline job echoes its own
    output): ``None``, i.e. a bar on a terminal, a plain line a minute elsewhere (a log file: a
    forced bar wrote a carriage-return redraw per job into it), nothing under ``ldr -q``."""
    return False if echo_runs() and launcher == "inline" and n_todo <= 1 else None


def _n_done(paths: list[Path]) -> int:
    """How many of these run folders have their ``done`` file."""
    return sum((path / "done").exists() for path in paths)


def _job_name(job: tuple[dict[str, Any], Path]) -> str:
    args, path = job
    return f"{path.name} ({args['algorithm']} {args['dataset']} {args['test_envs']})"


def run_sweep(config: SweepConfig, sweep_dir: str | Path, launcher: str = "inline",
              resources: Any = None, progress: bool | None = None) -> dict[str, int]:
    """Train every job of ``config`` that has no ``done`` file; return counts by outcome.

    ``launcher``: ``inline`` trains the jobs one after another in this process; ``local`` trains
    them in ``resources.local_workers`` processes of this machine at once through submitit's local
    executor, ``slurm`` as a Slurm job array (:mod:`ldr_plugin.launchers.launch`; resources from
    ``LDR_*`` variables by default). Local workers train with one CPU thread each: on CPU, runs
    with attention layers differ in their last digits across thread counts, so this makes their
    records the same as a serial sweep's at one thread (``OMP_NUM_THREADS=1``), whatever the number
    of workers. Jobs are dealt to local workers in turn, so each gets a mix of algorithms. Names
    are checked first; a job that fails (or whose worker dies) is reported and the others go on;
    if any failed, :class:`LdrError` lists them at the end (DomainBed's local launcher would
    ignore them).

    To stop a sweep without losing the runs in flight (a session or an allocation ending), create
    ``<sweep_dir>/STOP``: every job checks for it before it starts, so the running ones finish and
    the others are not started; :class:`LdrError` then counts them. A sweep does not start while
    the file is there (delete it, then run the same command to train the rest).
    """
    if launcher not in LAUNCHERS:
        raise LdrError(f"unknown launcher '{launcher}'; expected one of {', '.join(LAUNCHERS)}")
    stop = Path(sweep_dir) / STOP_FILE
    if stop.exists():
        raise LdrError(f"{stop} exists: it asked an earlier run of this sweep to stop after its running jobs; "
                       "delete it, then run the same command to train the jobs not done")
    overrides = check_sweep_config(config)
    args_list = make_args_list(config)
    write_expected(sweep_dir, args_list)  # so a reader can tell this grid from a part of it
    jobs = [(args, job_dir(sweep_dir, args)) for args in args_list]
    todo = [(args, path) for args, path in jobs if not (path / "done").exists()]
    if launcher == "local":  # (submitit's files go to <sweep>/.submitit: launch's default for folder=sweep_dir)
        resources = resources or Resources.from_env()
        if "LDR_SLURM_TIME" not in os.environ:
            resources = resources.with_(timeout_min=7 * 24 * 60)  # a worker trains many runs; no 4-hour cap
        # deal jobs in turn (launch cuts contiguous chunks): worker k gets k, k + W, ...
        w = min(resources.local_workers, len(todo)) or 1
        todo = [todo[i] for k in range(w) for i in range(k, len(todo), w)]
        resources = resources.with_(local_workers=w)
    fn = functools.partial(train_job, overrides=overrides, save_every=config.save_model_every_checkpoint,
                           threads=1 if launcher == "local" else None, stop_file=os.path.abspath(stop))
    summary = launch(todo, fn, launcher, resources, names=_job_name, job_name="ldr-train",
                     desc=f"sweep ({launcher})" if echo_runs() else "train", folder=sweep_dir,
                     progress=progress if progress is not None else _show_progress(launcher, len(todo)),
                     finished=lambda: _n_done([path for _, path in todo]))  # a worker runs many
    failed = [f"{o.name}: {o.reason}" + (f" (log: {o.log})" if o.log else "") for o in summary.failed]
    not_started = sum(o.ok and o.result is None for o in summary.outcomes)
    counts = {"jobs": len(jobs), "already_done": len(jobs) - len(todo),
              "trained": len(todo) - len(failed) - not_started, "failed": len(failed)}
    stopped = (f"{not_started} of {len(todo)} jobs not started: {stop} asked to stop ({counts['trained']} trained); "
               "delete it, then run the same command to train them") if not_started else ""
    if failed:
        raise LdrError(f"{len(failed)} of {len(todo)} sweep jobs failed:\n  " + "\n  ".join(sorted(failed))
                       + (f"\n{stopped}" if stopped else ""))
    if stopped:
        raise LdrError(stopped)
    return counts


def domainbed_sweep_command(config: SweepConfig, sweep_dir: str | Path, launcher: str = "local") -> list[str]:
    """``python -m domainbed.scripts.sweep launch ...`` for the same jobs (run it from the DomainBed root)."""
    if config.save_model_every_checkpoint:
        raise LdrError("DomainBed's sweep.py cannot pass --save_model_every_checkpoint to train.py; "
                       "use the built-in engine (--engine builtin) to save every checkpoint")
    cmd = [sys.executable, "-m", "domainbed.scripts.sweep", "launch",
           "--datasets", *config.datasets, "--algorithms", *config.algorithms,
           "--n_trials", str(config.n_trials), "--n_hparams_from", str(config.n_hparams_from),
           "--n_hparams", str(config.n_hparams), "--holdout_fraction", str(config.holdout_fraction),
           "--data_dir", config.data_dir, "--output_dir", str(sweep_dir), "--task", config.task,
           "--command_launcher", launcher, "--skip_confirmation"]
    if config.steps is not None:
        cmd += ["--steps", str(config.steps)]
    if config.hparams is not None:
        cmd += ["--hparams", config.hparams]
    if config.single_test_envs:
        cmd.append("--single_test_envs")
    return cmd


def run_domainbed_sweep(config: SweepConfig, sweep_dir: str | Path, domainbed_root: str | Path,
                        launcher: str = "local") -> dict[str, int]:
    """Run DomainBed's own sweep (cwd = its root, this Python first on ``PATH``); count ``done`` files.

    DomainBed's local launcher ignores exit codes, so success is counted from ``done`` files.
    """
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = str(domainbed_root) + os.pathsep + env.get("PYTHONPATH", "")
    sweep_dir = Path(sweep_dir).resolve()
    args_list = make_args_list(config)
    write_expected(sweep_dir, args_list)
    jobs = [job_dir(sweep_dir, args) for args in args_list]
    command = domainbed_sweep_command(config, sweep_dir, launcher)
    if echo_runs():
        returncode = subprocess.run(command, cwd=domainbed_root, env=env, check=False).returncode
        log = ""
    else:  # quiet: the sweep's own output to a file (each run's is in its out.txt), one bar here
        sweep_dir.mkdir(parents=True, exist_ok=True)
        log_path = sweep_dir / "domainbed_sweep_output.txt"
        with open(log_path, "ab") as handle:
            returncode = _run_with_bar(command, domainbed_root, env, handle, jobs)
        log = f", the sweep's output in {log_path}"
    done = _n_done(jobs)
    if returncode != 0 or done < len(jobs):
        raise LdrError(f"DomainBed sweep in {sweep_dir}: {done} of {len(jobs)} jobs done "
                       f"(exit code {returncode}); see each job's err.txt{log}")
    return {"jobs": len(jobs), "done": done}


def _run_with_bar(command: list[str], cwd, env: dict, handle, jobs: list[Path]) -> int:
    """Run ``command`` with its output to ``handle``; a progress bar counts the jobs' ``done`` files."""
    proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=handle, stderr=subprocess.STDOUT)
    counted = _n_done(jobs)
    with progress(total=len(jobs), initial=counted, desc="train", unit="run") as bar:  # lines in a log, none under -q
        while proc.poll() is None:
            time.sleep(1.0)
            now = _n_done(jobs)
            bar.update(now - counted)
            counted = now
    return proc.returncode


def choose_engine(engine: str = "auto", *, needs_builtin: bool = False) -> str:
    """``"domainbed"`` (DomainBed's own sweep) or ``"builtin"`` for ``engine`` auto | builtin | domainbed.

    ``auto`` is DomainBed's sweep when DomainBed is importable, unless ``needs_builtin`` (a
    feature DomainBed's sweep cannot do: saving every checkpoint, our launchers).
    """
    if engine not in ENGINES:
        raise LdrError(f"unknown engine '{engine}'; expected one of {', '.join(ENGINES)}")
    if engine == "builtin" or (engine == "auto" and needs_builtin):
        return "builtin"
    if import_domainbed("domainbed") is not None:
        return "domainbed"
    if engine == "domainbed":
        raise LdrError("--engine domainbed: DomainBed is not importable (set DOMAINBED_DIR to a clone)")
    return "builtin"


def sweep(config: SweepConfig, sweep_dir: str | Path, *, engine: str = "auto", launcher: str | None = None,
          workers: int | None = None) -> dict[str, int]:
    """Run (or resume) a sweep with the engine :func:`choose_engine` picks; return counts by outcome.

    ``launcher`` / ``workers`` run the built-in engine's jobs (``workers`` implies ``local``);
    DomainBed's sweep runs its jobs through its own ``--command_launcher``.
    """
    if workers is not None and launcher in (None, "local"):
        launcher = "local"
    elif workers is not None:
        raise LdrError(f"--workers is the number of local workers; it does not apply to --launcher {launcher}")
    if launcher is not None and engine == "domainbed":
        raise LdrError("--launcher / --workers are the built-in engine's; DomainBed's sweep runs its jobs "
                       "through its --command_launcher (ours: slurm, submitit_local; see docs/scale-out.md)")
    check_sweep_config(config)  # unknown names (with close matches), bad counts or overrides: before any job
    chosen = choose_engine(engine, needs_builtin=config.save_model_every_checkpoint or launcher is not None)
    if chosen == "domainbed":
        return run_domainbed_sweep(config, Path(sweep_dir).resolve(), domainbed_root())
    resources = Resources.from_env(local_workers=workers) if launcher not in (None, "inline") else None
    return run_sweep(config, sweep_dir, launcher=launcher or "inline", resources=resources)
