"""The Slurm path end to end against a fake Slurm: ``sbatch`` runs the array's tasks in the background
with the ``SLURM_*`` environment a real node sets, ``srun`` writes the per-task logs, ``sacct`` knows
nothing. submitit's own sbatch file, pickles and result files are used unchanged.
"""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import cloudpickle
import pytest

from ldr_plugin.domainbed.launchers import launch_commands
from ldr_plugin.launchers.launch import launch
from ldr_plugin.launchers.resources import Resources
from ldr_plugin.launchers.summary import LaunchFailed

cloudpickle.register_pickle_by_value(sys.modules[__name__])

FAKE_SBATCH = """#!{python}
import os, re, subprocess, sys
script = sys.argv[-1]
text = open(script).read()
match = re.search(r"#SBATCH --array=0-(\\d+)", text)
tasks = range(int(match.group(1)) + 1) if match else [None]
job = str(4000 + len(os.listdir(os.path.dirname(os.path.abspath(script)))))
for i in tasks:  # in the background, like a scheduler: sbatch returns at once
    env = dict(os.environ, SLURM_JOB_ID=job if i is None else f"{{job}}{{i}}", SLURM_NTASKS="1",
               SLURM_JOB_NUM_NODES="1", SLURM_NODEID="0", SLURM_PROCID="0", SLURM_LOCALID="0",
               SLURM_JOB_NODELIST="fakenode")
    if i is not None:
        env.update(SLURM_ARRAY_JOB_ID=job, SLURM_ARRAY_TASK_ID=str(i))
    subprocess.Popen(["bash", script], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     start_new_session=True)
print(f"Submitted batch job {{job}}")
"""

FAKE_SRUN = """#!{python}
import os, subprocess, sys
args, files = sys.argv[1:], {{}}
while args and args[0].startswith("--"):
    flag = args.pop(0)
    if flag in ("--output", "--error"):
        files[flag] = args.pop(0)
def expand(path):
    return (path.replace("%A", os.environ.get("SLURM_ARRAY_JOB_ID", "")).replace("%a", os.environ.get("SLURM_ARRAY_TASK_ID", ""))
            .replace("%j", os.environ["SLURM_JOB_ID"]).replace("%t", "0"))
with open(expand(files["--output"]), "a") as out, open(expand(files["--error"]), "a") as err:
    sys.exit(subprocess.run(args, stdout=out, stderr=err).returncode)
"""


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    scripts = {"sbatch": FAKE_SBATCH, "srun": FAKE_SRUN, "sacct": "#!/bin/sh\nexit 0\n", "scancel": "#!/bin/sh\nexit 0\n"}
    for name, text in scripts.items():
        (bin_dir / name).write_text(text.format(python=sys.executable))
        (bin_dir / name).chmod(stat.S_IRWXU)
    monkeypatch.setenv("PATH", f"{bin_dir}:{Path(sys.executable).parent}:/usr/bin:/bin")
    return Resources(folder=str(tmp_path / "logs"), array_parallelism=2, partition="debug")


def half_or_fail(x: int) -> float:
    if x == 4:
        raise RuntimeError("four is not welcome")
    return x / 2


@pytest.mark.slow
def test_slurm_array_results_and_failures(fake_slurm):
    summary = launch(range(6), half_or_fail, "slurm", fake_slurm, progress=False)
    assert summary.n_jobs == 6
    assert summary.results == [0.0, 0.5, 1.0, 1.5, None, 2.5]
    [failure] = summary.failed
    assert failure.name == "4" and failure.job_id.endswith("_4")
    assert "RuntimeError: four is not welcome" in Path(failure.log).read_text()


@pytest.mark.slow
def test_domainbed_slurm_launcher_names_the_failing_command(fake_slurm, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    ok = "python -c 'import sys; open(\"ran.txt\", \"w\").write(sys.executable)'"
    bad = "python -c 'import sys; sys.exit(3)'"
    with pytest.raises(LaunchFailed):
        launch_commands([ok, bad], "slurm", fake_slurm, progress=False)
    out = capsys.readouterr().out
    assert "2 item(s) in 2 job(s) via slurm" in out and "1 succeeded, 1 failed" in out
    assert f"FAILED {bad}: " in out and "exit code 3" in out and "log: " in out
    assert (tmp_path / "ran.txt").read_text() == sys.executable  # 'python' is the job's interpreter, cwd kept
