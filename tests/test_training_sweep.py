"""Built-in sweep: DomainBed's job enumeration and folder names, resume by ``done``, failures reported."""

from __future__ import annotations

import hashlib
import json

import pytest
from domainbed_fake_dist import make_fake_dist

from ldr_plugin.cli import main
from ldr_plugin.domainbed.hparams_table import seed_hash
from ldr_plugin.domainbed.sweep import (
    SweepConfig,
    all_test_env_combinations,
    domainbed_sweep_command,
    job_dir,
    make_args_list,
    run_sweep,
)
from ldr_plugin.errors import LdrError


@pytest.fixture
def toy(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(make_fake_dist(tmp_path / "site")))


def test_test_env_sets_are_singles_and_pairs():
    sets = list(all_test_env_combinations(4))
    assert sets == [[0], [0, 1], [0, 2], [0, 3], [1], [1, 2], [1, 3], [2], [2, 3], [3]]
    with pytest.raises(LdrError, match="at least 3"):
        list(all_test_env_combinations(2))


def test_args_list_enumerates_like_domainbed(toy):
    config = SweepConfig(datasets=["RotatedDigits", "CorruptedDigits"], algorithms=["Toy", "ERM"], n_trials=2,
                         n_hparams_from=1, n_hparams=3, steps=5, hparams='{"batch_size": 8}', data_dir="/d")
    args = make_args_list(config)
    # trials x datasets x algorithms x (n singles + n(n-1)/2 pairs) x hparams seeds
    assert len(args) == 2 * 2 * (21 + 15) * 2
    first = args[0]
    assert first == {"dataset": "RotatedDigits", "algorithm": "Toy", "test_envs": [0], "holdout_fraction": 0.2,
                     "hparams_seed": 1, "data_dir": "/d", "task": "domain_generalization", "trial_seed": 0,
                     "seed": seed_hash("RotatedDigits", "Toy", [0], 1, 0), "steps": 5, "hparams": '{"batch_size": 8}'}
    digest = hashlib.md5(json.dumps(first, sort_keys=True).encode()).hexdigest()
    assert job_dir("/s", first).name == digest
    assert len({job_dir("/s", a) for a in args}) == len(args)
    singles = make_args_list(SweepConfig(datasets=["CorruptedDigits"], algorithms=["Toy"], n_trials=1, n_hparams=1,
                                         single_test_envs=True))
    assert [a["test_envs"] for a in singles] == [[0], [1], [2], [3], [4]] and "steps" not in singles[0]


def test_run_sweep_trains_unfinished_jobs_once(toy, tmp_path):
    config = SweepConfig(datasets=["ToyDomains"], algorithms=["Toy"], n_trials=1, n_hparams=1, steps=1,
                         single_test_envs=True, hparams='{"batch_size": 16}')
    counts = run_sweep(config, tmp_path / "sweep")
    assert counts == {"jobs": 3, "already_done": 0, "trained": 3, "failed": 0}
    for args in make_args_list(config):
        run = job_dir(tmp_path / "sweep", args)
        record = json.loads((run / "results.jsonl").read_text().splitlines()[-1])
        assert (run / "done").exists() and record["args"]["test_envs"] == args["test_envs"]
        assert record["args"]["seed"] == args["seed"] and record["hparams"]["batch_size"] == 16
    assert run_sweep(config, tmp_path / "sweep")["already_done"] == 3


def test_a_stop_file_lets_the_running_job_finish_and_starts_no_new_one(toy, tmp_path, monkeypatch, capsys):
    from ldr_plugin.domainbed import loop

    config = SweepConfig(datasets=["ToyDomains"], algorithms=["Toy"], n_trials=1, n_hparams=1, steps=1,
                         single_test_envs=True, hparams='{"batch_size": 16}')
    sweep_dir = tmp_path / "sweep"
    real_train = loop.train

    def train_then_ask_to_stop(run_config):  # the stop is asked for while the first job runs
        folder = real_train(run_config)
        (sweep_dir / "STOP").touch()
        return folder

    monkeypatch.setattr(loop, "train", train_then_ask_to_stop)
    with pytest.raises(LdrError, match=r"2 of 3 jobs not started: .*STOP asked to stop \(1 trained\)"):
        run_sweep(config, sweep_dir)
    runs = [p for p in sweep_dir.iterdir() if p.is_dir()]
    assert len(runs) == 1 and (runs[0] / "done").exists()  # the running job finished; the others have no folder
    cli = ["train", "--sweep", "--engine", "builtin", "--algorithm", "Toy", "--dataset", "ToyDomains", "--n_trials",
           "1", "--n_hparams", "1", "--single_test_envs", "--steps", "1", "--hparams", '{"batch_size": 16}',
           "--output_dir", str(sweep_dir)]
    assert main(cli) == 2  # while the file is there, the sweep does not start
    assert "STOP exists" in capsys.readouterr().err and [p for p in sweep_dir.iterdir() if p.is_dir()] == runs
    monkeypatch.setattr(loop, "train", real_train)
    (sweep_dir / "STOP").unlink()
    assert run_sweep(config, sweep_dir) == {"jobs": 3, "already_done": 1, "trained": 2, "failed": 0}
    assert len(list(sweep_dir.glob("*/done"))) == 3


def test_failed_jobs_are_reported_not_hidden(toy, tmp_path):
    config = SweepConfig(datasets=["ToyDomains"], algorithms=["Toy"], n_trials=1, n_hparams=1, steps=1,
                         single_test_envs=True, hparams='{"batch_size": 100000}')
    with pytest.raises(LdrError, match="3 of 3 sweep jobs failed") as info:
        run_sweep(config, tmp_path / "sweep")
    assert "batch_size 100000" in str(info.value)
    assert not list((tmp_path / "sweep").glob("*/done"))


def test_cli_builtin_sweep(toy, tmp_path, capsys):
    code = main(["train", "--sweep", "--engine", "builtin", "--algorithm", "Toy", "--dataset", "ToyDomains",
                 "--n_trials", "1", "--n_hparams", "1", "--single_test_envs", "--steps", "1",
                 "--hparams", '{"batch_size": 8}', "--output_dir", str(tmp_path / "s")])
    assert code == 0 and len(list((tmp_path / "s").glob("*/done"))) == 3
    assert "jobs 3" in capsys.readouterr().out
    assert main(["train", "--sweep", "--algorithm", "Toy,Nope", "--output_dir", str(tmp_path / "t")]) == 2
    assert not (tmp_path / "t").exists()


def test_save_model_every_checkpoint_keeps_domainbeds_folder_names(toy, tmp_path):
    config = SweepConfig(datasets=["ToyDomains"], algorithms=["Toy"], n_trials=1, n_hparams=1, steps=2,
                         single_test_envs=True, save_model_every_checkpoint=True)
    code = main(["train", "--sweep", "--algorithm", "Toy", "--dataset", "ToyDomains", "--n_trials", "1",
                 "--n_hparams", "1", "--single_test_envs", "--steps", "2", "--save_model_every_checkpoint",
                 "--output_dir", str(tmp_path / "s")])
    assert code == 0
    for args in make_args_list(config):  # the flag is not a job argument: the folder is DomainBed's
        run = job_dir(tmp_path / "s", args)
        assert sorted(p.name for p in run.glob("model*.pkl")) == ["model.pkl", "model_step0.pkl", "model_step1.pkl"]
    with pytest.raises(LdrError, match="sweep.py cannot pass --save_model_every_checkpoint"):
        domainbed_sweep_command(config, tmp_path / "d")


def _records_without_timing(run):
    """The run's records without what differs between two copies of one run: timings and its folder."""
    records = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]
    for record in records:
        del record["step_time"], record["mem_gb"], record["args"]["output_dir"]
    return records


@pytest.mark.slow
def test_local_workers_train_what_a_serial_one_thread_sweep_trains(tmp_path):
    """LatentDR's attention sums depend on the CPU thread count; local workers (submitit) use one
    thread each, so two of them must write the same records as a serial sweep at one thread."""
    import torch

    from ldr_plugin.launchers.resources import Resources

    config = SweepConfig(datasets=["RotatedDigitsFlat"], algorithms=["LatentDR"], n_trials=1, n_hparams=1, steps=3,
                         single_test_envs=True, hparams='{"batch_size": 8}')
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert run_sweep(config, tmp_path / "serial")["trained"] == 6
    finally:
        torch.set_num_threads(threads)
    resources = Resources(folder=str(tmp_path / "logs"), local_workers=2)
    counts = run_sweep(config, tmp_path / "parallel", "local", resources, progress=False)
    assert counts == {"jobs": 6, "already_done": 0, "trained": 6, "failed": 0}
    assert len(list((tmp_path / "logs").glob("*_log.err"))) == 2  # two submitit jobs, three runs each
    for args in make_args_list(config):
        serial, parallel = job_dir(tmp_path / "serial", args), job_dir(tmp_path / "parallel", args)
        assert (parallel / "done").exists() and "CPU threads: 1" in (parallel / "out.txt").read_text()
        assert _records_without_timing(parallel) == _records_without_timing(serial)
    assert run_sweep(config, tmp_path / "parallel", "local", resources)["already_done"] == 6


@pytest.mark.slow
def test_local_workers_see_a_stop_asked_for_after_the_sweep_started(tmp_path, monkeypatch):
    """The stop file is looked for in each worker process, before each job: a stop asked for once the
    sweep has started (here: as it writes its list of expected runs) leaves every job not started."""
    from ldr_plugin.domainbed import sweep as sweep_module
    from ldr_plugin.launchers.resources import Resources

    config = SweepConfig(datasets=["RotatedDigitsFlat"], algorithms=["ERM"], n_trials=1, n_hparams=1, steps=1,
                         single_test_envs=True)
    write_expected = sweep_module.write_expected

    def write_then_ask_to_stop(sweep_dir, args_list):
        path = write_expected(sweep_dir, args_list)
        (tmp_path / "sweep" / "STOP").touch()
        return path

    monkeypatch.setattr(sweep_module, "write_expected", write_then_ask_to_stop)
    resources = Resources(folder=str(tmp_path / "logs"), local_workers=2)
    with pytest.raises(LdrError, match=r"^6 of 6 jobs not started: .*STOP asked to stop \(0 trained\)"):
        run_sweep(config, tmp_path / "sweep", "local", resources, progress=False)
    assert not [p for p in (tmp_path / "sweep").iterdir() if p.is_dir() and not p.name.startswith(".")]


@pytest.mark.slow
def test_local_workers_report_failed_jobs_with_their_logs(tmp_path):
    from ldr_plugin.launchers.resources import Resources

    config = SweepConfig(datasets=["RotatedDigitsFlat"], algorithms=["ERM"], n_trials=1, n_hparams=1, steps=1,
                         single_test_envs=True, hparams='{"batch_size": 100000}')
    resources = Resources(folder=str(tmp_path / "logs"), local_workers=2)
    with pytest.raises(LdrError, match="6 of 6 sweep jobs failed") as info:
        run_sweep(config, tmp_path / "sweep", "local", resources, progress=False)
    assert "batch_size 100000" in str(info.value) and "(log: " in str(info.value)
    with pytest.raises(LdrError, match="unknown launcher 'cluster'"):
        run_sweep(config, tmp_path / "sweep", "cluster")


@pytest.mark.slow
def test_local_workers_keep_their_logs_in_the_sweep_folder_not_the_current_one(tmp_path, monkeypatch, capsys):
    """`ldr train --sweep --workers 2` from some folder: submitit's pickles and job logs go to
    <sweep>/.submitit (they went to ./submitit_logs, wherever the user stood), and the sweep still
    reads as 6 finished runs with no problem. Off a terminal the progress is plain lines (a log
    file got a carriage-return redraw of a bar per job)."""
    from ldr_plugin.domainbed.runs import read_sweep

    monkeypatch.delenv("LDR_SUBMITIT_FOLDER", raising=False)
    monkeypatch.chdir(tmp_path)
    sweep = tmp_path / "out" / "sweep"
    assert main(["train", "--sweep", "--engine", "builtin", "--workers", "2", "--algorithm", "ERM",
                 "--dataset", "RotatedDigitsFlat", "--n_trials", "1", "--n_hparams", "1", "--single_test_envs",
                 "--steps", "1", "--hparams", '{"batch_size": 8}', "--output_dir", str(sweep)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert len(list((sweep / ".submitit").glob("*_log.out"))) == 2
    err = capsys.readouterr().err
    assert "\r" not in err and "sweep (local): 6/6" in err, err
    read = read_sweep(sweep)
    assert len(read.runs) == 6 and all(run.done for run in read.runs.values()) and not read.problems
    monkeypatch.setenv("LDR_SUBMITIT_FOLDER", "submitit_logs")  # asked for by name: kept, though it is the default
    assert main(["train", "--sweep", "--engine", "builtin", "--workers", "2", "--algorithm", "ERM",
                 "--dataset", "RotatedDigitsFlat", "--n_trials", "1", "--n_hparams", "1", "--single_test_envs",
                 "--steps", "2", "--hparams", '{"batch_size": 8}', "--output_dir", str(sweep)]) == 0
    assert len(list((tmp_path / "submitit_logs").glob("*_log.out"))) == 2


def test_cli_launcher_needs_a_builtin_sweep(toy, tmp_path, capsys):
    assert main(["train", "--algorithm", "Toy", "--dataset", "ToyDomains", "--workers", "2",
                 "--output_dir", str(tmp_path / "one")]) == 2
    assert "pass --sweep" in capsys.readouterr().err
    assert main(["train", "--sweep", "--engine", "domainbed", "--algorithm", "Toy", "--dataset", "ToyDomains",
                 "--workers", "2", "--output_dir", str(tmp_path / "d")]) == 2
    assert "are the built-in engine's" in capsys.readouterr().err
    assert main(["train", "--sweep", "--launcher", "slurm", "--workers", "2", "--algorithm", "Toy",
                 "--dataset", "ToyDomains", "--output_dir", str(tmp_path / "s")]) == 2
    assert "does not apply to --launcher slurm" in capsys.readouterr().err
    assert not any((tmp_path / d).exists() for d in ("one", "d", "s"))
