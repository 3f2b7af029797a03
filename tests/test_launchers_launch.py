"""The generic launcher: inline and submitit's local executor agree; failures are counted and named."""

from __future__ import annotations

import os
import signal
import stat
import sys
from pathlib import Path

import cloudpickle
import pytest

from ldr_plugin.errors import LdrError
from ldr_plugin.launchers.launch import launch, log_folder, make_executor, plan_chunks, submit
from ldr_plugin.launchers.resources import Resources, parse_slurm_time
from ldr_plugin.launchers.summary import LaunchFailed

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests/


def cube_or_fail(x: int) -> int:
    if x % 7 == 3:
        raise ValueError(f"no cube for {x}")
    return x**3


def die_on_five(x: int) -> int:
    if x == 5:
        os.kill(os.getpid(), signal.SIGKILL)
    return x


def test_inline_results_and_failures_match_a_plain_loop():
    items = list(range(20))
    summary = launch(items, cube_or_fail, progress=False)
    expected_fail = [x for x in items if x % 7 == 3]
    assert summary.results == [None if x in expected_fail else x**3 for x in items]
    assert [o.name for o in summary.failed] == [str(x) for x in expected_fail]
    assert "ValueError: no cube for 3" in summary.failed[0].error
    assert "20 item(s)" in summary.format() and "17 succeeded, 3 failed" in summary.format()
    with pytest.raises(LaunchFailed, match="FAILED 10"):
        summary.raise_for_failures()


def test_inline_progress_bar_counts_every_item_under_its_label(capsys):
    launch([1, 2, 3], cube_or_fail, progress=True, desc="sweep (inline)")
    err = capsys.readouterr().err
    assert "sweep (inline): 100%" in err and "3/3" in err


@pytest.mark.slow
def test_unasked_progress_off_a_terminal_is_plain_lines_and_silent_under_quiet(capsys, monkeypatch):
    """progress=None (the demo's phases): off a terminal a start and an end line with the count (a
    log file is not left silent for a long phase), nothing at all under ``ldr -q``."""
    import logging

    monkeypatch.setenv("LDR_PROGRESS_SECONDS", "1")
    assert launch([1, 2, 4], cube_or_fail, "inline", progress=None, desc="train").results == [1, 8, 64]
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert lines[0].startswith("train: 0/3") and lines[-1].startswith("train: 3/3"), lines
    monkeypatch.setattr(logging.getLogger("ldr_plugin"), "level", logging.WARNING)  # what ldr -q sets
    launch([1, 2], cube_or_fail, "inline", progress=None, desc="train")
    assert capsys.readouterr().err == ""


def test_plain_progress_lines_print_each_count_once_and_no_blank_line(capsys, monkeypatch):
    """Off a terminal, an update after the interval prints a line and close() used to print the same
    count again, then a blank line (the full demo's log: '216/216' twice, then an empty line)."""
    import time

    from ldr_plugin.progress import progress

    monkeypatch.setenv("LDR_PROGRESS_SECONDS", "1")  # the shortest interval
    for _ in progress(range(2), desc="train", total=2):
        time.sleep(1.05)  # every update is past the interval: it prints
    lines = capsys.readouterr().err.split("\n")
    assert lines[-1] == "" and all(lines[:-1]), lines  # every line ends in a newline; none is empty
    counts = [line.split()[1] for line in lines[:-1]]
    assert counts == ["0/2", "1/2", "2/2"], lines


def mark_slowly(item: tuple[str, int]) -> int:
    import time

    folder, i = item
    time.sleep(0.4)
    Path(folder, f"done{i}").touch()
    return i


def test_progress_moves_while_one_local_worker_runs_many_items(tmp_path, monkeypatch, capsys):
    """A local worker runs its whole chunk in one job: the bar counted only finished jobs, so a sweep
    with --workers 2 showed 0/66 until half of it was done. ``finished`` (the items' done files)
    now moves it in between."""
    import ldr_plugin.launchers.launch as launch_module

    monkeypatch.setenv("LDR_PROGRESS_SECONDS", "1")
    monkeypatch.setattr(launch_module, "FINISHED_POLL_S", 0.1)
    out = tmp_path / "out"
    out.mkdir()
    items = [(str(out), i) for i in range(8)]
    summary = launch(items, mark_slowly, "local", Resources(local_workers=1), progress=None, desc="runs",
                     folder=tmp_path, finished=lambda: len(list(out.glob("done*"))))
    assert summary.results == list(range(8)) and summary.n_jobs == 1
    counts = [int(line.split()[1].split("/")[0]) for line in capsys.readouterr().err.splitlines()
              if line.startswith("runs:")]
    assert counts[-1] == 8 and any(0 < c < 8 for c in counts), counts


def mark_even(item: tuple[str, int]) -> int | None:
    """Does its work (a done file) for even items only; odd ones return at once, like sweep jobs a
    stop file kept from starting."""
    folder, i = item
    if i % 2:
        return None
    Path(folder, f"done{i}").touch()
    return i


@pytest.mark.parametrize("launcher", ["inline", "local"])
def test_the_bar_ends_at_the_items_done_not_at_the_items_returned(tmp_path, monkeypatch, capsys, launcher):
    """A sweep stopped by its STOP file ended with its bar at 100% (every job had returned); with
    ``finished`` the bar ends at what that count says is done (here 4 of 8)."""
    monkeypatch.setenv("LDR_PROGRESS_SECONDS", "0")
    out = tmp_path / "out"
    out.mkdir()
    items = [(str(out), i) for i in range(8)]
    summary = launch(items, mark_even, launcher, Resources(local_workers=2), progress=None, desc="runs",
                     folder=tmp_path, finished=lambda: len(list(out.glob("done*"))))
    assert summary.results == [0, None, 2, None, 4, None, 6, None]
    counts = [line.split()[1] for line in capsys.readouterr().err.splitlines() if line.startswith("runs:")]
    assert counts and counts[-1] == "4/8", counts


def test_local_executor_matches_inline_and_names_the_log_of_each_failure(tmp_path):
    items = list(range(12))
    resources = Resources(folder=str(tmp_path / "logs"), local_workers=2)
    local = launch(items, cube_or_fail, "local", resources, names=lambda x: f"item-{x}", progress=False)
    inline = launch(items, cube_or_fail, progress=False)
    assert local.results == inline.results and local.n_jobs == 2
    assert [o.name for o in local.failed] == ["item-3", "item-10"]
    for outcome in local.failed:
        log = Path(outcome.log)
        assert log.is_file() and f"ValueError: no cube for {outcome.name[5:]}" in log.read_text()
        assert f"log: {log}" in local.format()


@pytest.mark.slow
def test_a_killed_job_fails_only_its_own_items(tmp_path):
    resources = Resources(folder=str(tmp_path / "logs"), items_per_job=3)
    summary = launch(range(9), die_on_five, "local", resources, progress=False)
    assert summary.n_jobs == 3
    assert [o.name for o in summary.failed] == ["3", "4", "5"]  # the job that held item 5
    assert all("without a result" in o.error for o in summary.failed)
    assert summary.results[:3] == [0, 1, 2] and summary.results[6:] == [6, 7, 8]


def test_local_launch_keeps_submitit_files_in_the_output_folder_not_the_current_one(tmp_path, monkeypatch):
    """`ldr score` / a sweep with local workers: submitit's pickles and logs go to <out>/.submitit
    (they went to ./submitit_logs of whatever folder the user stood in)."""
    monkeypatch.delenv("LDR_SUBMITIT_FOLDER", raising=False)
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    out = tmp_path / "out"
    summary = launch([1, 2], cube_or_fail, "local", Resources(local_workers=1), progress=False, folder=out)
    assert summary.results == [1, 8]
    assert list((tmp_path / "cwd").iterdir()) == []
    assert len(list((out / ".submitit").glob("*_log.out"))) == 1


def test_log_folder_defaults_only_when_nothing_was_asked(monkeypatch, tmp_path):
    monkeypatch.delenv("LDR_SUBMITIT_FOLDER", raising=False)
    assert log_folder(Resources(), tmp_path).folder == str(tmp_path / ".submitit")
    assert log_folder(Resources(), None).folder == "submitit_logs"  # no output folder: submitit's usual place
    assert log_folder(Resources(folder="/logs"), tmp_path).folder == "/logs"  # asked in code
    monkeypatch.setenv("LDR_SUBMITIT_FOLDER", "submitit_logs")  # asked by name, though it is the default
    assert log_folder(Resources.from_env(), tmp_path).folder == "submitit_logs"


def test_chunks_cover_every_item_once():
    local = Resources(local_workers=3)
    assert plan_chunks(10, "local", local) == [range(4), range(4, 8), range(8, 10)]
    assert plan_chunks(3, "slurm", local) == [range(1), range(1, 2), range(2, 3)]
    assert plan_chunks(7, "slurm", Resources(items_per_job=5)) == [range(5), range(5, 7)]
    assert plan_chunks(0, "local", local) == []


@pytest.mark.parametrize(
    "text, minutes", [("90", 90), ("5:30", 6), ("2:00:00", 120), ("1-0", 1440), ("1-02:30", 1590), ("0-0:0:1", 1)]
)
def test_slurm_time_formats(text, minutes):
    assert parse_slurm_time(text) == minutes


def test_resources_from_environment_and_overrides():
    env = {"LDR_SLURM_PARTITION": "gpu", "LDR_SLURM_GPUS": "2", "LDR_SLURM_TIME": "3:00:00",
           "LDR_SLURM_ARRAY_PARALLELISM": "8", "LDR_SLURM_MEM_GB": "31.5", "LDR_SUBMITIT_FOLDER": "/x/logs"}
    res = Resources.from_env(env, array_parallelism=4, partition=None)
    assert (res.partition, res.gpus_per_node, res.timeout_min, res.array_parallelism, res.mem_gb, res.folder) == (
        "gpu", 2, 180, 4, 31.5, "/x/logs")
    with pytest.raises(LdrError, match="LDR_SLURM_GPUS='two'"):
        Resources.from_env({"LDR_SLURM_GPUS": "two"})
    with pytest.raises(LdrError, match="array_parallelism"):
        Resources.from_env({"LDR_SLURM_ARRAY_PARALLELISM": "0"})


def test_unknown_launcher_and_missing_slurm_are_clear_errors(tmp_path, monkeypatch):
    with pytest.raises(LdrError, match="unknown launcher 'pbs'"):
        launch([1], str, "pbs")
    monkeypatch.setenv("PATH", str(tmp_path))  # no srun
    with pytest.raises(LdrError, match="slurm.*unavailable"):
        make_executor("slurm", Resources(folder=str(tmp_path / "logs")))


FAKE_SBATCH = """#!/bin/sh
cp "$1" "{dest}"
echo "Submitted batch job 4242"
"""


def test_slurm_job_array_carries_the_resources(tmp_path, monkeypatch):
    """With fake srun/sbatch on PATH, submitit writes the sbatch file our resources ask for."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in {"srun": "#!/bin/sh\nexit 0\n", "sbatch": FAKE_SBATCH.format(dest=tmp_path / "job.sh")}.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(stat.S_IRWXU)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    resources = Resources.from_env(
        {"LDR_SLURM_PARTITION": "gpu", "LDR_SLURM_GPUS": "1", "LDR_SLURM_TIME": "2:00:00", "LDR_SLURM_CPUS": "4",
         "LDR_SLURM_MEM_GB": "16", "LDR_SLURM_ARRAY_PARALLELISM": "2", "LDR_SLURM_ACCOUNT": "lab"},
        folder=str(tmp_path / "logs"),
    )
    executor = make_executor("slurm", resources, job_name="ldr-test")
    jobs = submit(list(range(5)), cube_or_fail, executor, plan_chunks(5, "slurm", resources))
    assert [j.job_id for j in jobs] == [f"4242_{i}" for i in range(5)]
    sbatch = (tmp_path / "job.sh").read_text()
    for line in ["--array=0-4%2", "--partition=gpu", "--gpus-per-node=1", "--time=120", "--cpus-per-task=4",
                 "--mem=16GB", "--account=lab", "--job-name=ldr-test"]:
        assert f"#SBATCH {line}\n" in sbatch, line


def test_checkpoint_flag_is_added_to_train_commands_only_when_asked():
    from ldr_plugin.domainbed.launchers import with_checkpoint_flag

    train = "python -m domainbed.scripts.train --dataset Debug28 --output_dir 'a b'"
    other = "python -m domainbed.scripts.collect_results --input_dir x"
    assert with_checkpoint_flag([train, other], {}) == [train, other]
    assert with_checkpoint_flag([train], {"LDR_SAVE_MODEL_EVERY_CHECKPOINT": "0"}) == [train]
    flagged = with_checkpoint_flag([train, other], {"LDR_SAVE_MODEL_EVERY_CHECKPOINT": "1"})
    assert flagged == [train + " --save_model_every_checkpoint", other]
    assert with_checkpoint_flag(flagged, {"LDR_SAVE_MODEL_EVERY_CHECKPOINT": "yes"}) == flagged  # not twice
    with pytest.raises(LdrError, match="LDR_SAVE_MODEL_EVERY_CHECKPOINT='maybe': expected 1 or 0"):
        with_checkpoint_flag([train], {"LDR_SAVE_MODEL_EVERY_CHECKPOINT": "maybe"})
