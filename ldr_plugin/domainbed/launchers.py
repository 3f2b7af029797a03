"""DomainBed command launchers on submitit: ``slurm`` (a Slurm job array) and ``submitit_local``.

DomainBed's ``sweep launch --command_launcher NAME`` calls ``REGISTRY[NAME](commands)`` with
``python -m domainbed.scripts.train --arg value ...`` strings. Each command is split with
:mod:`shlex` and run without a shell, in the directory ``sweep`` was started from (relative
``--output_dir`` / ``--data_dir`` keep their meaning), with DomainBed's root on ``PYTHONPATH`` and
``python`` meaning the interpreter that runs the job. Resources come from ``LDR_*`` environment
variables (see :class:`~ldr_plugin.launchers.resources.Resources`). With
``LDR_SAVE_MODEL_EVERY_CHECKPOINT=1`` each ``domainbed.scripts.train`` command gets train.py's
``--save_model_every_checkpoint`` (``sweep.py`` has no way to pass it; job folders are unchanged, since
DomainBed names them from the job's arguments before the command is built). At the end a summary counts
succeeded and failed jobs and names the log of each failure; any failure raises
:class:`~ldr_plugin.launchers.summary.LaunchFailed` (``sweep`` then exits non-zero), unlike
DomainBed's ``local`` launcher, which ignores exit codes.
"""

from __future__ import annotations

import functools
import os
import shlex
import subprocess
import sys

from ldr_plugin.domainbed.host import domainbed_root
from ldr_plugin.errors import LdrError
from ldr_plugin.launchers.launch import launch
from ldr_plugin.launchers.resources import Resources
from ldr_plugin.launchers.summary import Summary

PYTHON_NAMES = ("python", "python3")


class CommandFailed(LdrError):
    """A DomainBed command that exited with a non-zero status."""


class UnsafeCommandError(LdrError, ValueError):
    """A command that cannot be split into arguments safely (NUL, unclosed quote, empty)."""


def split_command(command: str) -> list[str]:
    """Split a command line into argv with :mod:`shlex` (run with ``shell=False``: metacharacters stay
    literal arguments); reject NUL characters and empty commands."""
    if not isinstance(command, str) or "\0" in command:
        raise UnsafeCommandError(f"command {command!r} is not a string without NUL characters")
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise UnsafeCommandError(f"command {command!r} cannot be split into arguments: {exc}") from exc
    if not argv:
        raise UnsafeCommandError("empty command")
    return argv


def run_command(command: str, cwd: str, pythonpath: tuple[str, ...] = ()) -> int:
    """Run one command without a shell in ``cwd``; raise :class:`CommandFailed` on a non-zero exit."""
    argv = split_command(command)
    if argv[0] in PYTHON_NAMES:
        argv[0] = sys.executable  # the job's interpreter, not whatever 'python' is first on a node's PATH
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*pythonpath, *filter(None, [env.get("PYTHONPATH")])])
    print(f"[ldr] cwd={cwd}\n[ldr] {shlex.join(argv)}", flush=True)
    returncode = subprocess.run(argv, cwd=cwd, env=env, check=False).returncode
    if returncode != 0:
        raise CommandFailed(f"exit code {returncode}: {command}")
    return returncode


def describe_command(command: str) -> str:
    """A short name for a DomainBed train command: algorithm, dataset, test envs, seeds, output dir."""
    try:
        argv = shlex.split(command)
    except ValueError:
        return command
    values: dict[str, list[str]] = {}
    key = None
    for arg in argv:
        if arg.startswith("--"):
            key = arg[2:]
            values[key] = []
        elif key is not None:
            values[key].append(arg)
    if "algorithm" not in values or "dataset" not in values:
        return command

    def get(name: str) -> str:
        return " ".join(values.get(name, [])) or "?"

    return (
        f"{get('algorithm')} on {get('dataset')} test_envs=[{get('test_envs')}] hparams_seed={get('hparams_seed')} "
        f"trial_seed={get('trial_seed')} ({get('output_dir')})"
    )


SAVE_EVERY_CHECKPOINT_ENV = "LDR_SAVE_MODEL_EVERY_CHECKPOINT"
SAVE_FLAG = "--save_model_every_checkpoint"


def with_checkpoint_flag(commands: list[str], environ=os.environ) -> list[str]:
    """``commands``, each train command with ``--save_model_every_checkpoint`` when the environment asks."""
    value = environ.get(SAVE_EVERY_CHECKPOINT_ENV, "").strip().lower()
    if value in ("", "0", "false", "no"):
        return list(commands)
    if value not in ("1", "true", "yes"):
        raise LdrError(f"{SAVE_EVERY_CHECKPOINT_ENV}={environ[SAVE_EVERY_CHECKPOINT_ENV]!r}: expected 1 or 0")
    out = []
    for command in commands:
        argv = split_command(command)
        is_train = "domainbed.scripts.train" in argv or any(a.endswith("domainbed/scripts/train.py") for a in argv)
        out.append(command + " " + SAVE_FLAG if is_train and SAVE_FLAG not in argv else command)
    return out


def launch_commands(commands: list[str], launcher: str, resources: Resources | None = None,
                    progress: bool = True) -> Summary:
    """Run DomainBed commands as submitit jobs, print the summary, raise if any failed."""
    commands = with_checkpoint_flag(commands)
    root = domainbed_root()
    fn = functools.partial(run_command, cwd=os.getcwd(), pythonpath=(str(root),) if root else ())
    summary = launch(list(commands), fn, launcher, resources or Resources.from_env(), names=describe_command,
                     job_name="domainbed", progress=progress)
    print(summary.format(), flush=True)
    return summary.raise_for_failures()


def slurm_launcher(commands: list[str]) -> None:
    """DomainBed launcher ``slurm``: every command a task of a Slurm job array (resources from ``LDR_SLURM_*``)."""
    launch_commands(commands, "slurm")


def local_launcher(commands: list[str]) -> None:
    """DomainBed launcher ``submitit_local``: the same path through submitit's local executor (no Slurm)."""
    launch_commands(commands, "local")
