"""The submitit launchers on real DomainBed sweeps (Debug28, batch size 8, one step: seconds per job).

Needs DOMAINBED_DIR (a clone); every test here starts DomainBed training processes, so all are slow.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from ldr_plugin.domainbed.launchers import describe_command, launch_commands
from ldr_plugin.launchers.resources import Resources
from ldr_plugin.launchers.summary import LaunchFailed

pytestmark = [pytest.mark.domainbed, pytest.mark.slow]

HPARAMS = json.dumps({"batch_size": 8})  # Debug28 with the default batch size hangs forever


def _root() -> Path:
    import domainbed

    return Path(domainbed.__file__).resolve().parent.parent


def _jobs(sweep, out_dir: Path, algorithms=("ERM",)):
    args = sweep.make_args_list(
        n_trials=1, dataset_names=["Debug28"], algorithms=list(algorithms), n_hparams_from=0, n_hparams=1,
        steps=1, data_dir=str(out_dir / "data"), task="domain_generalization", holdout_fraction=0.2,
        single_test_envs=True, hparams=HPARAMS,
    )
    return [sweep.Job(a, str(out_dir / "sweep")) for a in args]


def _states(sweep, out_dir):
    jobs = _jobs(sweep, out_dir)
    return {state: [j for j in jobs if j.state == state] for state in (sweep.Job.DONE, sweep.Job.INCOMPLETE, sweep.Job.NOT_LAUNCHED)}


def test_sweep_jobs_run_failures_are_named_and_relaunch_runs_only_the_unfinished(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(_root())
    from domainbed.scripts import sweep

    resources = Resources(folder=str(tmp_path / "logs"), local_workers=2, items_per_job=1)
    jobs = _jobs(sweep, tmp_path)
    assert len(jobs) == 3 and all(j.state == sweep.Job.NOT_LAUNCHED for j in jobs)
    broken = jobs[1]
    os.makedirs(Path(broken.output_dir) / "out.txt")  # train.py cannot open its log: this job fails

    def launcher(commands):
        launch_commands(commands, "local", resources, progress=False)

    with pytest.raises(LaunchFailed) as info:
        sweep.Job.launch(jobs, launcher)
    out = capsys.readouterr().out
    assert "3 item(s) in 3 job(s) via local" in out and "2 succeeded, 1 failed" in out
    assert f"FAILED {describe_command(broken.command_str)}: " in out and broken.output_dir in str(info.value)
    failure = info.value.summary.failed[0]
    assert "IsADirectoryError" in Path(failure.log).read_text()  # the named log holds the job's traceback

    states = _states(sweep, tmp_path)
    assert [j.output_dir for j in states[sweep.Job.INCOMPLETE]] == [broken.output_dir]
    assert len(states[sweep.Job.DONE]) == 2
    sweep.Job.delete(states[sweep.Job.INCOMPLETE])  # what `sweep delete_incomplete` does
    to_launch = [j for j in _jobs(sweep, tmp_path) if j.state == sweep.Job.NOT_LAUNCHED]
    assert [j.output_dir for j in to_launch] == [broken.output_dir]
    sweep.Job.launch(to_launch, launcher)
    assert "1 item(s) in 1 job(s) via local" in capsys.readouterr().out
    assert len(_states(sweep, tmp_path)[sweep.Job.DONE]) == 3


def test_sweep_cli_through_the_registration_hook(tmp_path):
    """`python -m domainbed.scripts.sweep launch --command_launcher submitit_local` sees our launcher."""
    root = _root()
    probe = "from domainbed import command_launchers as c; print('submitit_local' in c.REGISTRY)"
    hook = subprocess.run([sys.executable, "-c", probe], check=False, cwd=root, capture_output=True, text=True)
    if hook.stdout.strip() != "True":
        pytest.skip("the DomainBed registration hook is not installed (submitit_local not in REGISTRY)")
    env = {**os.environ, "LDR_SUBMITIT_FOLDER": str(tmp_path / "logs"), "LDR_LOCAL_WORKERS": "2",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(root),
           "LDR_SAVE_MODEL_EVERY_CHECKPOINT": "1"}
    cmd = (f"{shlex.quote(sys.executable)} -m domainbed.scripts.sweep launch --datasets Debug28 "
           f"--algorithms ERM NoSuchAlgorithm --n_hparams 1 --n_trials 1 --single_test_envs --steps 1 "
           f"--hparams {shlex.quote(HPARAMS)} --data_dir {tmp_path / 'data'} --output_dir {tmp_path / 'sweep'} "
           f"--command_launcher submitit_local --skip_confirmation")
    first = subprocess.run(shlex.split(cmd), check=False, cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert first.returncode != 0, first.stdout[-2000:]
    assert "6 item(s) in 2 job(s) via local" in first.stdout and "3 succeeded, 3 failed" in first.stdout
    assert first.stdout.count("FAILED NoSuchAlgorithm on Debug28") == 3
    assert len(list((tmp_path / "sweep").glob("*/done"))) == 3
    # LDR_SAVE_MODEL_EVERY_CHECKPOINT: DomainBed's train.py saved its one checkpoint (step 0) as well
    assert len(list((tmp_path / "sweep").glob("*/model_step0.pkl"))) == 3
    again = subprocess.run(shlex.split(cmd.replace(" launch ", " delete_incomplete ")), check=False, cwd=root, env=env,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "About to delete 3 jobs." in again.stdout
