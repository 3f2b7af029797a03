"""The sweep's list of expected runs: a run not started (no folder at all) is reported and flags the
cells it would change, so a partial grid is never selected over silently."""

from __future__ import annotations

import json
import shutil

import pytest
from domainbed_fake_dist import make_fake_dist

from ldr_plugin.domainbed.manifest import expected_files, read_expected, write_expected
from ldr_plugin.domainbed.runs import check_run_folders, read_sweep
from ldr_plugin.domainbed.sweep import SweepConfig, job_dir, make_args_list, run_sweep
from ldr_plugin.domainbed.tables import FLAG_INCOMPLETE, SweepSelection, dataset_table


@pytest.fixture
def toy(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(make_fake_dist(tmp_path / "site")))


def _config(n_hparams: int) -> SweepConfig:
    return SweepConfig(datasets=["ToyDomains"], algorithms=["Toy"], n_trials=1, n_hparams=n_hparams, steps=1,
                       single_test_envs=True, hparams='{"batch_size": 16}')


def _flags(sweep_dir) -> list[bool]:
    """Per test env: is the training-domain-validation cell flagged incomplete?"""
    table, _ = dataset_table(SweepSelection.build(read_sweep(sweep_dir, progress=False), ("iid",)), "iid",
                             "ToyDomains", ["Toy"], None, "test")
    return [FLAG_INCOMPLETE in cell.flags for cell in table.rows[0].cells[:3]]


def test_a_run_never_started_is_named_and_flags_its_cell(toy, tmp_path):
    sweep_dir = tmp_path / "sweep"
    config = _config(n_hparams=2)
    run_sweep(config, sweep_dir)
    expected = {job_dir(sweep_dir, args).name for args in make_args_list(config)}
    assert set(read_expected(sweep_dir, [])) == expected and len(expected) == 6  # 3 test envs x 2 hparams seeds
    sweep = read_sweep(sweep_dir, progress=False)
    assert not sweep.missing and not sweep.problems and sweep.unfinished_runs() == 0
    assert _flags(sweep_dir) == [False, False, False]
    assert all(p.is_dir() for p in sweep_dir.iterdir() if p.name != expected_files(sweep_dir)[0].name)

    lost = next(a for a in make_args_list(config) if a["hparams_seed"] == 1 and a["test_envs"] == [2])
    shutil.rmtree(job_dir(sweep_dir, lost))  # as if its job had not started yet
    sweep = read_sweep(sweep_dir, progress=False)
    assert sweep.missing == {job_dir(sweep_dir, lost).name: (0, "ToyDomains", "Toy", 1, (2,))}
    (problem,) = sweep.problems
    assert problem.kind == "missing_run" and job_dir(sweep_dir, lost).name in problem.path
    assert "hparams seed 1" in problem.message and sweep.unfinished_runs() == 1
    assert _flags(sweep_dir) == [False, False, True]  # only the held-out env whose grid lacks a point
    assert sweep.only_trials({1}).missing == {} and sweep.only_trials({0}).missing == sweep.missing
    _, problems = check_run_folders(sweep_dir)
    assert [p.kind for p in problems] == ["missing_run"]

    assert run_sweep(config, sweep_dir)["trained"] == 1  # the same sweep again: same list, the run trained
    assert len(expected_files(sweep_dir)) == 1
    assert _flags(sweep_dir) == [False, False, False]


def test_sweeps_into_one_folder_add_their_lists(toy, tmp_path):
    sweep_dir = tmp_path / "sweep"
    run_sweep(_config(n_hparams=1), sweep_dir)
    wider = _config(n_hparams=2)
    write_expected(sweep_dir, make_args_list(wider))  # a wider grid announced, none of its new runs started
    assert len(expected_files(sweep_dir)) == 2
    sweep = read_sweep(sweep_dir, progress=False)
    assert sorted(key[3] for key in sweep.missing.values()) == [1, 1, 1]
    assert _flags(sweep_dir) == [True, True, True]


def test_an_unreadable_list_is_named_not_trusted(toy, tmp_path):
    sweep_dir = tmp_path / "sweep"
    run_sweep(_config(n_hparams=1), sweep_dir)
    (path,) = expected_files(sweep_dir)
    content = json.loads(path.read_text())
    name = next(iter(content["runs"]))
    content["runs"][name]["trial_seed"] = 7  # arguments that no longer name their folder
    path.write_text(json.dumps(content))
    problems = []
    assert read_expected(sweep_dir, problems) == {}
    assert [p.kind for p in problems] == ["bad_manifest"] and "do not hash" in problems[0].message
    path.write_text("{not json")
    sweep = read_sweep(sweep_dir, progress=False)
    assert [(p.kind, p.path) for p in sweep.problems] == [("bad_manifest", str(path))]
    assert not sweep.missing


def test_a_sweep_without_a_list_reads_as_before(shared_data):
    sweep = read_sweep(shared_data / "domainbed" / "test_sweep_data", progress=False)
    assert not sweep.missing and sweep.unfinished_runs() == 0 and len(sweep.records) == 200
