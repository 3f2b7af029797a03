"""Against a real DomainBed clone (DOMAINBED_DIR): its unmodified scripts and unit tests see our plugins.

Subprocess tests run DomainBed's own entry points from its root with this interpreter first on PATH
(as a user would); each trains a few steps only.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ldr_plugin.plugins import plugin_group

pytestmark = pytest.mark.domainbed
TESTS_DIR = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def domainbed_root() -> Path:
    import domainbed

    return Path(domainbed.__file__).resolve().parents[1]


def _env(domainbed_root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DOMAINBED_PLUGINS_DISABLE"}
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = os.pathsep.join([str(domainbed_root), str(TESTS_DIR)])
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # leave the clone untouched
    return env


def _run(args: list[str], domainbed_root: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, *args], cwd=domainbed_root, env=_env(domainbed_root),
                          capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]


def _plugin_algorithms() -> list[str]:
    return plugin_group("algorithms").names()


@pytest.mark.slow
@pytest.mark.parametrize(("dataset", "extra"), [("RotatedDigits", []), ("Debug28", ["--hparams", '{"batch_size": 8}'])])
def test_domainbed_train_runs_latentdr(domainbed_root, tmp_path, dataset, extra):
    run = tmp_path / "run"
    _run(["-m", "domainbed.scripts.train", "--algorithm", "LatentDR", "--dataset", dataset, "--steps", "2",
          "--checkpoint_freq", "1", "--test_envs", "1", "--output_dir", str(run), *extra], domainbed_root)
    records = _records(run)
    assert [r["step"] for r in records] == [0, 1] and (run / "done").exists()
    assert {"loss", "env0_in_acc", "env1_out_acc"} <= set(records[0])
    assert any(k.startswith("ldr_") for k in records[0]["hparams"])
    saved = torch.load(run / "model.pkl", weights_only=True)  # Python scalars only: torch >= 2.6 default load
    assert saved["args"]["algorithm"] == "LatentDR"


@pytest.mark.slow
def test_builtin_loop_reproduces_domainbed_train(domainbed_root, tmp_path):
    """Same arguments, same seeds: the built-in loop writes DomainBed's records, value for value."""
    from ldr_plugin.domainbed.loop import TrainConfig, train

    args = ["--algorithm", "ERM", "--dataset", "CorruptedDigits", "--test_envs", "2", "--steps", "3",
            "--checkpoint_freq", "2", "--seed", "5", "--trial_seed", "1", "--hparams", '{"batch_size": 16}']
    _run(["-m", "domainbed.scripts.train", *args, "--output_dir", str(tmp_path / "host")], domainbed_root)
    ours = train(TrainConfig("ERM", "CorruptedDigits", [2], tmp_path / "ours", steps=3, checkpoint_freq=2, seed=5, trial_seed=1,
                 hparams={"batch_size": 16}))
    host, mine = _records(tmp_path / "host"), _records(ours)
    assert len(host) == len(mine) == 2
    for h, m in zip(host, mine):
        h.pop("step_time"), m.pop("step_time")
        h["args"].pop("output_dir"), m["args"].pop("output_dir")
        h["args"].pop("hparams"), m["args"].pop("hparams")  # the same JSON, spelled by different writers
        assert m == h


@pytest.mark.slow
def test_domainbed_unit_tests_pick_up_plugins(domainbed_root):
    """DomainBed's test_models / test_hparams_registry generate tests for our names, and ours pass."""
    plugins = _plugin_algorithms()
    host_algorithms = importlib.import_module("domainbed.algorithms")
    host_datasets = importlib.import_module("domainbed.datasets")
    n_alg, n_ds = len(host_algorithms.ALGORITHMS), len(host_datasets.DATASETS)
    assert set(plugins) <= set(host_algorithms.ALGORITHMS) and {"RotatedDigits", "CorruptedDigits"} <= set(host_datasets.DATASETS)
    test_dir = domainbed_root / "domainbed" / "test"
    files = [str(test_dir / "test_models.py"), str(test_dir / "test_hparams_registry.py")]
    collected = _run(["-m", "pytest", "-p", "domainbed_cpu", "-p", "no:cacheprovider", "--collect-only", "-q", *files],
                     domainbed_root)
    assert re.search(rf"\b{2 * n_alg + n_alg * n_ds} tests collected", collected.stdout), collected.stdout[-500:]
    # run the generated tests of our algorithms: test_models on Debug28 (Debug224 needs weight downloads)
    # and test_hparams_registry for every dataset; parameterized names them by index and first argument
    indices = [host_algorithms.ALGORITHMS.index(name) for name in plugins]
    selected = " or ".join([f"test_init_update_predict_{i}_Debug28" for i in indices] + [f"_{n}" for n in plugins])
    proc = _run(["-m", "pytest", "-p", "domainbed_cpu", "-p", "no:cacheprovider", "-q", *files, "-k", selected],
                domainbed_root)
    expected = len(plugins) + len(plugins) * n_ds
    assert re.search(rf"\b{expected} passed", proc.stdout), proc.stdout[-1500:]


@pytest.mark.slow
def test_domainbed_sweep_and_collect_results(domainbed_root, tmp_path):
    sweep_dir = tmp_path / "sweep"
    _run(["-m", "domainbed.scripts.sweep", "launch", "--datasets", "RotatedDigits", "--algorithms", "ERM", "LatentDR",
          "--n_hparams", "1", "--n_trials", "1", "--single_test_envs", "--steps", "1", "--data_dir", str(tmp_path),
          "--output_dir", str(sweep_dir), "--command_launcher", "local", "--skip_confirmation"], domainbed_root, 1800)
    done = sorted(p.parent.name for p in sweep_dir.glob("*/done"))
    assert len(done) == 12  # the local launcher ignores exit codes: count done files
    from ldr_plugin.domainbed.sweep import SweepConfig, job_dir, make_args_list

    config = SweepConfig(datasets=["RotatedDigits"], algorithms=["ERM", "LatentDR"], n_trials=1, n_hparams=1,
                         steps=1, single_test_envs=True, data_dir=str(tmp_path))
    assert sorted(job_dir(sweep_dir, a).name for a in make_args_list(config)) == done
    from ldr_plugin.domainbed.manifest import write_expected

    write_expected(sweep_dir, make_args_list(config))  # what `ldr train --sweep` leaves: collect_results passes it
    out = _run(["-m", "domainbed.scripts.collect_results", "--input_dir", str(sweep_dir)], domainbed_root).stdout
    assert "Dataset: RotatedDigits" in out
    # rows "LatentDR   10.1 +/- 0.0   ..." under the RotatedDigits header of each selection method
    tables = out.split("-------- Dataset: RotatedDigits, model selection method: ")[1:]
    assert len(tables) == 3  # training-domain validation, leave-one-domain-out (cells X: no pair runs), oracle
    for table in tables:
        assert re.search(r"^ERM\s+\S", table, re.MULTILINE) and re.search(r"^LatentDR\s+\S", table, re.MULTILINE)
    assert re.search(r"^LatentDR\s+\d+\.\d \+/- \d+\.\d", tables[0], re.MULTILINE)


def test_host_free_base_hparams_equal_domainbed(domainbed_root):
    from ldr_plugin.domainbed.hparams_table import host_free_base, seed_hash

    registry = importlib.import_module("domainbed.hparams_registry")
    misc = importlib.import_module("domainbed.lib.misc")
    original = getattr(registry._hparams, "__wrapped__", registry._hparams)
    for dataset in ("RotatedMNIST", "VLCS", "Debug28"):
        for seed in (0, 1, 12345):
            assert host_free_base("ERM", dataset, seed) == original("ERM", dataset, seed)
    assert all(seed_hash(*a) == misc.seed_hash(*a) for a in [(0,), (3, 1), ("RotatedDigits", "ERM", [0, 1], 2, 0)])


def test_sweep_jobs_equal_domainbed_sweep(domainbed_root, tmp_path):
    host_sweep = importlib.import_module("domainbed.scripts.sweep")
    from ldr_plugin.domainbed.sweep import SweepConfig, job_dir, make_args_list

    config = SweepConfig(datasets=["RotatedDigits", "Debug28"], algorithms=["ERM", "LatentDR"], n_trials=2,
                         n_hparams_from=1, n_hparams=3, steps=7, hparams='{"batch_size": 8}', data_dir="/data")
    ours = make_args_list(config)
    theirs = host_sweep.make_args_list(n_trials=2, dataset_names=["RotatedDigits", "Debug28"],
                                       algorithms=["ERM", "LatentDR"], n_hparams_from=1, n_hparams=3, steps=7,
                                       data_dir="/data", task="domain_generalization", holdout_fraction=0.2,
                                       single_test_envs=False, hparams='{"batch_size": 8}')
    assert ours == theirs and len(ours) == 2 * 2 * (21 + 6) * 2
    assert [str(job_dir(tmp_path, a)) for a in ours] == [host_sweep.Job(a, str(tmp_path)).output_dir for a in theirs]


def test_register_unregister_on_real_domainbed(domainbed_root):
    from ldr_plugin.domainbed import register

    algorithms = importlib.import_module("domainbed.algorithms")
    datasets = importlib.import_module("domainbed.datasets")
    registry = importlib.import_module("domainbed.hparams_registry")
    register.register()
    plugins = _plugin_algorithms()
    try:
        patched = list(algorithms.ALGORITHMS)
        assert patched[:34][-1] == "URM" and patched[34:] == plugins
        register.unregister()
        assert len(algorithms.ALGORITHMS) == 34 and "RotatedDigits" not in datasets.DATASETS
        assert "RotatedDigits" not in vars(datasets) and not hasattr(algorithms, "LatentDR")
        with pytest.raises(NotImplementedError):
            algorithms.get_algorithm_class("LatentDR")
        assert "ldr_lambda_d" not in registry.default_hparams("LatentDR", "RotatedDigits")
    finally:
        register.register()
    assert list(algorithms.ALGORITHMS) == patched
    assert registry.default_hparams("LatentDR", "RotatedDigits")["ldr_lambda_d"] == 1.0


@pytest.mark.slow
def test_ldr_train_sweep_delegates_to_domainbed(domainbed_root, tmp_path, monkeypatch):
    """`ldr train --sweep` runs DomainBed's own sweep when DomainBed is importable; a third-party plugin
    (fake distribution on PYTHONPATH) is seen by every job's fresh interpreter."""
    from domainbed_fake_dist import make_fake_dist

    from ldr_plugin.cli import main

    dist = make_fake_dist(tmp_path / "dist")
    monkeypatch.syspath_prepend(str(dist))
    monkeypatch.setenv("PYTHONPATH", str(dist))
    monkeypatch.setenv("DOMAINBED_DIR", str(domainbed_root))
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    code = main(["train", "--sweep", "--algorithm", "Toy", "--dataset", "Debug28", "--n_trials", "1", "--n_hparams", "1",
                 "--single_test_envs", "--steps", "1", "--hparams", '{"batch_size": 8}', "--output_dir", str(tmp_path / "s")])
    assert code == 0
    runs = sorted((tmp_path / "s").glob("*/done"))
    assert len(runs) == 3
    record = json.loads((runs[0].parent / "results.jsonl").read_text().splitlines()[0])
    assert record["args"]["algorithm"] == "Toy" and record["hparams"]["toy_lr"] == 0.1
