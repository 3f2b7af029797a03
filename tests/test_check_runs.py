"""``studies/check_runs.py``: the runs a study keeps in the repository pass when they are the sweep's
finished runs, copied whole; each way a kept run can be wrong (cut short, another run's records,
a checkpoint, unfinished, not listed, not the sweep's bytes) is named with its folder and exits 1."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from domainbed_fake_dist import make_fake_dist

from ldr_plugin.domainbed.sweep import SweepConfig, job_dir, make_args_list, run_sweep

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "studies" / "check_runs.py"


def _check(kept: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(kept), *extra],
        check=False,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )


@pytest.fixture
def kept_sweep(tmp_path, monkeypatch):
    """(sweep folder, kept copy, the sweep's args list): 3 toy runs of 5 steps (a record every 2: the toy dataset's CHECKPOINT_FREQ), kept by keep_runs.sh."""
    monkeypatch.syspath_prepend(str(make_fake_dist(tmp_path / "site")))
    config = SweepConfig(
        datasets=["ToyDomains"],
        algorithms=["Toy"],
        n_trials=1,
        n_hparams=1,
        steps=5,
        single_test_envs=True,
        hparams='{"batch_size": 16}',
    )
    sweep = tmp_path / "sweep"
    run_sweep(config, sweep)
    kept = tmp_path / "kept"
    done = subprocess.run(
        ["bash", str(ROOT / "studies" / "keep_runs.sh"), str(sweep), str(kept)],
        check=False,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    return sweep, kept, make_args_list(config)


def test_the_sweeps_finished_runs_pass_and_are_counted(kept_sweep):
    sweep, kept, args_list = kept_sweep
    steps = [json.loads(line)["step"] for line in (job_dir(kept, args_list[0]) / "results.jsonl").open()]
    assert steps == [0, 2, 4]  # the runs checked have more than one record
    result = _check(kept, "--against", str(sweep))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[0] == "3 runs, 0 bad"
    assert "ToyDomains Toy trial 0: 3 of 3" in result.stdout


def test_each_wrong_run_is_named(kept_sweep):
    sweep, kept, args_list = kept_sweep
    first, second, third = (job_dir(kept, args) for args in args_list)
    lines = (first / "results.jsonl").read_text().splitlines(keepends=True)
    (first / "results.jsonl").write_text("".join(lines[:-1]))  # cut short: the last step missing
    (second / "done").unlink()
    (second / "model.pkl").write_bytes(b"x")
    swapped = third.with_name("0" * 32)  # a listed run's records under a name no listed run has
    third.rename(swapped)
    result = _check(kept, "--against", str(sweep))
    assert result.returncode == 1
    out = result.stdout
    assert out.splitlines()[0] == "3 runs, 3 bad"
    assert f"{first.name}: last step 2, expected 4" in out
    assert f"{first.name}: results.jsonl is not the same as" in out
    assert f"{second.name}: holds a checkpoint model.pkl" in out and f"{second.name}: no 'done' file" in out
    assert f"{swapped.name}: not in the kept lists of expected runs" in out
    assert "ToyDomains Toy trial 0: 2 of 3" in out

    swapped.rename(third)  # a listed name holding another listed run's records
    shutil.rmtree(second)
    shutil.copytree(third, second)
    out = _check(kept).stdout
    assert f"{second.name}: record 0: args seed, test_envs differ from the listed ones" in out

    (kept / ".keep.abc123").mkdir()  # a copy keep_runs.sh left cut short: never committed unnoticed
    with (third / "results.jsonl").open("a") as handle:
        handle.write("{not json\n")  # a line the leaderboard's reader would skip
    out = _check(kept).stdout
    assert out.splitlines()[0] == "4 runs, 4 bad"  # first, second, third and the hidden copy
    assert ".keep.abc123: not in the kept lists of expected runs" in out
    assert f"{third.name}: results.jsonl line 4: not JSON" in out

    (listed,) = kept.glob("expected_runs-*.json")
    listed.write_text(listed.read_text()[:50])  # a list cut short: named, no traceback
    result = _check(kept)
    assert result.returncode == 1 and f"{listed} is not a list of expected runs" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_record_lost_at_the_start_is_named(kept_sweep):
    _, kept, args_list = kept_sweep
    first = job_dir(kept, args_list[0])
    lines = (first / "results.jsonl").read_text().splitlines(keepends=True)
    (first / "results.jsonl").write_text("".join(lines[1:]))  # step 0 lost, the last step still there
    result = _check(kept)  # without --against: the steps themselves show it
    assert result.returncode == 1
    assert result.stdout.splitlines()[0] == "3 runs, 1 bad"
    assert f"{first.name}: steps are not 0, f, 2f, ... and the last (a record missing?): [2, 4]" in result.stdout


def test_a_folder_without_a_list_is_refused(tmp_path):
    (tmp_path / "runs").mkdir()
    result = _check(tmp_path / "runs")
    assert result.returncode == 2 and "holds no expected_runs-*.json" in result.stderr
