"""DomainBed run source: a run written by the built-in loop (DomainBed's model.pkl format) is rebuilt,
its environments are split exactly as training split them (the accuracies it logged are reproduced
from our logits), and ``score_cell`` scores its held-out domain."""

from __future__ import annotations

import json
import shutil

import msgspec
import numpy as np
import pytest
import torch

from ldr_plugin.errors import LdrError
from ldr_plugin.metrics.base import Metric, MetricResult
from ldr_plugin.results import read_record
from ldr_plugin.scoring.cells import ScoreCell, score_cell
from ldr_plugin.sources import get_source
from ldr_plugin.sources.base import CheckpointError


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from ldr_plugin.domainbed.loop import TrainConfig, train

    return train(TrainConfig("ERM", "RotatedDigits", [0], tmp_path_factory.mktemp("dbrun") / "run", steps=1, checkpoint_freq=1))


@pytest.mark.slow
def test_logged_accuracies_reproduced_from_our_splits_and_logits(run_dir):
    source = get_source("domainbed")
    loaded = source.load(str(run_dir))
    logged = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()][-1]
    assert source.own_datasets(str(run_dir)) == [f"env{i}" for i in range(6)]
    for env in ("env0", "env1"):  # env0 is the held-out test domain
        for split in ("in", "out"):
            data = source.own_dataset(str(run_dir), env, split)
            x = torch.stack([data.samples[i] for i in range(len(data))])
            feats = loaded.extract(x, ("featurizer", "logits"))
            accuracy = float((feats["logits"].argmax(1).numpy() == data.labels).mean())
            assert accuracy == pytest.approx(logged[f"{env}_{split}_acc"], abs=1e-9)
            with torch.no_grad():
                torch.testing.assert_close(feats["featurizer"], loaded.module.network[0](x).flatten(1))


class Count(Metric):
    family = "count"

    def compute(self, features, labels):
        return MetricResult("count", {"n": float(labels.size)}, {"n": True})


@pytest.mark.slow
def test_score_cell_on_a_run_environment(run_dir, tmp_path):
    cell = ScoreCell(f"domainbed:{run_dir}", "run:env0", split="out", n_per_class=3)
    [path] = score_cell(cell, tmp_path, metrics={"count": Count()}, device="cpu", progress=False)
    record = msgspec.to_builtins(read_record(path))
    assert record["layer"] == "featurizer" and record["split"] == "out" and record["metrics"]["n"]["value"] == 30
    assert record["detail"]["dataset"]["test_env"] is True


@pytest.mark.slow
def test_every_checkpoint_saved_and_loadable_as_the_model_of_its_record(tmp_path):
    """``model_step<k>.pkl`` is the model that logged step k's accuracies (train.py's flag)."""
    from ldr_plugin.domainbed.loop import TrainConfig, train

    run = train(TrainConfig("ERM", "RotatedDigits", [0], tmp_path / "run", steps=3, checkpoint_freq=1,
                save_model_every_checkpoint=True))
    records = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [0, 1, 2] and all(r["args"]["save_model_every_checkpoint"] for r in records)
    assert sorted(p.name for p in run.glob("model*.pkl")) == ["model.pkl", "model_step0.pkl", "model_step1.pkl",
                                                              "model_step2.pkl"]
    source = get_source("domainbed")
    data = source.own_dataset(str(run), "env1", "out")
    x = torch.stack([data.samples[i] for i in range(len(data))])
    for record in records:
        loaded = source.load(str(run / f"model_step{record['step']}.pkl"))
        accuracy = float((loaded.extract(x, ("logits",))["logits"].argmax(1).numpy() == data.labels).mean())
        assert accuracy == pytest.approx(record["env1_out_acc"], abs=1e-9)
    final, last = (torch.load(run / name, weights_only=True)["model_dict"] for name in ("model.pkl", "model_step2.pkl"))
    assert all(torch.equal(final[k], last[k]) for k in final)
    # a step that was not a checkpoint is named, with what would have written it
    with pytest.raises(CheckpointError, match="no model_step7.pkl.*--save_model_every_checkpoint"):
        source.load(str(run / "model_step7.pkl"))
    assert not any(train(TrainConfig("ERM", "RotatedDigits", [0], tmp_path / "plain", steps=2, checkpoint_freq=1)).glob("model_step*"))


def test_bad_runs(tmp_path):
    source = get_source("domainbed")
    with pytest.raises(CheckpointError, match="no model.pkl"):
        source.load(str(tmp_path))
    torch.save({"args": {}}, tmp_path / "model.pkl")
    with pytest.raises(CheckpointError, match="missing key.*model_dict"):
        source.load(str(tmp_path))
    assert [m.path for m in source.check_available([str(tmp_path / "x")])] == [str(tmp_path / "x" / "model.pkl")]


def test_wrong_state_dict_is_named(run_dir, tmp_path):
    save = torch.load(run_dir / "model.pkl", weights_only=True)
    key = next(iter(save["model_dict"]))
    save["model_dict"][key] = torch.zeros(1)
    torch.save(save, tmp_path / "model.pkl")
    with pytest.raises(CheckpointError, match=f"state-dict mismatch.*{key.split('.')[0]}"):
        get_source("domainbed").load(str(tmp_path))
    with pytest.raises(LdrError, match="env0 … env5"):
        get_source("domainbed").own_dataset(str(run_dir), "env9", "in")
    assert np.all(np.bincount(get_source("domainbed").own_dataset(str(run_dir), "env1", "in", n_per_class=2).labels) == 2)


def test_lenient_algorithm_cannot_leave_its_featurizer_random(run_dir, tmp_path, monkeypatch):
    """An algorithm whose load_state_dict is not strict (a plugin may do that): a model.pkl without
    one featurizer tensor is refused, naming the key, instead of scoring a half-random featurizer."""
    from torch import nn

    from ldr_plugin.domainbed.source import resolve_algorithm

    save = torch.load(run_dir / "model.pkl", weights_only=True)
    key = next(k for k in save["model_dict"] if k.startswith("featurizer."))
    del save["model_dict"][key]
    torch.save(save, tmp_path / "model.pkl")
    cls = resolve_algorithm(save["args"]["algorithm"])
    monkeypatch.setattr(cls, "load_state_dict",
                        lambda self, sd, strict=True, assign=False: nn.Module.load_state_dict(self, sd, strict=False),
                        raising=False)
    with pytest.raises(CheckpointError, match=f"left at initialisation: {key}"):
        get_source("domainbed").load(str(tmp_path))
    assert get_source("domainbed").load(str(run_dir)).detail["hooked"] == "featurizer (output)"


@pytest.mark.domainbed
@pytest.mark.slow
def test_run_written_by_domainbeds_own_train_script(tmp_path):
    """DomainBed's unmodified train.py writes the run; our source rebuilds it with DomainBed's ERM and
    reproduces the accuracies DomainBed logged, from our own splits and logits."""
    import importlib
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = str(Path(importlib.import_module("domainbed").__file__).resolve().parents[1])
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    subprocess.run([sys.executable, "-m", "domainbed.scripts.train", "--dataset", "RotatedDigits", "--algorithm",
                    "ERM", "--test_envs", "0", "--steps", "1", "--checkpoint_freq", "1", "--output_dir", str(run)],
                   check=True, env=env, capture_output=True, timeout=600)
    source = get_source("domainbed")
    loaded = source.load(str(run))
    assert type(loaded.module).__module__ == "domainbed.algorithms"
    logged = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()][-1]
    for env_name in ("env0", "env1"):
        for split in ("in", "out"):
            data = source.own_dataset(str(run), env_name, split)
            x = torch.stack([data.samples[i] for i in range(len(data))])
            logits = loaded.extract(x, ("logits",))["logits"]
            accuracy = float((logits.argmax(1).numpy() == data.labels).mean())
            assert accuracy == pytest.approx(logged[f"{env_name}_{split}_acc"], abs=1e-9)


@pytest.mark.slow
def test_dataset_run_expands_to_every_environment_and_split(run_dir):
    from ldr_plugin.scoring.run import ScoreConfig, plan_cells

    cells = plan_cells(ScoreConfig(models=[f"domainbed:{run_dir}"], datasets=["run"]))
    assert [(c.dataset, c.split) for c in cells] == [(f"run:env{i}", s) for i in range(6) for s in ("in", "out")]


@pytest.mark.slow
def test_dataset_run_keeps_an_explicit_in_or_out_split(run_dir):
    from ldr_plugin.scoring.run import ScoreConfig, plan_cells

    cells = plan_cells(ScoreConfig(models=[f"domainbed:{run_dir}"], datasets=["run"], split="in"))
    assert [(c.dataset, c.split) for c in cells] == [(f"run:env{i}", "in") for i in range(6)]


@pytest.mark.slow
def test_a_dataset_a_cell_cannot_score_fails_that_cell_only(run_dir, tmp_path):
    """A run's split with too few samples of a class (or an unknown environment) is the dataset's
    problem, not the model's: the model's other cells are still scored."""
    from ldr_plugin.errors import DatasetError
    from ldr_plugin.scoring.run import run_inline

    model = f"domainbed:{run_dir}"
    bad = ScoreCell(model, "run:env9", split="in", n_per_class=3)
    good = ScoreCell(model, "run:env0", split="out", n_per_class=3)
    with pytest.raises(DatasetError, match="unknown environment 'env9'"):
        score_cell(bad, tmp_path, device="cpu", progress=False)
    first, second = run_inline([bad, good], str(tmp_path), device="cpu")
    assert "unknown environment 'env9'" in first.error and "skipped" not in first.error
    assert second.error is None and all(p.exists() for p in second.paths)


@pytest.mark.slow
def test_scoring_every_cell_of_a_run_reads_its_checkpoint_once(run_dir, tmp_path, monkeypatch):
    """Planning, the model and the environment cells of a run share one read of model.pkl; a
    rewritten file is read again."""
    from ldr_plugin.domainbed import source as domainbed_runs
    from ldr_plugin.scoring.run import ScoreConfig, plan_cells, run_inline

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    reads = []
    real_load = torch.load
    monkeypatch.setattr(domainbed_runs.torch, "load", lambda *a, **k: reads.append(a[0]) or real_load(*a, **k))
    cells = plan_cells(ScoreConfig(models=[f"domainbed:{run}"], datasets=["run"], split="in", n_per_class=3))
    outcomes = run_inline(cells, str(tmp_path / "scores"), device="cpu", metrics={"count": Count()}, progress=False)
    assert len(outcomes) == 6 and all(o.error is None for o in outcomes)
    assert reads == [run / "model.pkl"]

    save = real_load(run / "model.pkl", map_location="cpu", weights_only=True)
    torch.save({**save, "args": {**save["args"], "trial_seed": 7}}, run / "model.pkl")
    assert domainbed_runs.read_model_pkl(str(run))["args"]["trial_seed"] == 7
    assert reads == [run / "model.pkl"] * 2


@pytest.mark.slow
def test_an_inference_only_latentdr_checkpoint_loads_as_the_full_one(tmp_path):
    from ldr_plugin.domainbed.algorithm import export_inference_checkpoint
    from ldr_plugin.domainbed.loop import TrainConfig, train

    run = train(TrainConfig("LatentDR", "RotatedDigitsFlat", [0], tmp_path / "run", steps=3, checkpoint_freq=1))
    export_inference_checkpoint(run / "model.pkl", tmp_path / "small" / "model.pkl")
    shutil.copy(run / "results.jsonl", tmp_path / "small" / "results.jsonl")
    source = get_source("domainbed")
    full, small = source.load(str(run)), source.load(str(tmp_path / "small"))
    x = torch.stack([source.own_dataset(str(run), "env0", "in").samples[i] for i in range(20)])
    for layer in ("featurizer", "logits"):
        torch.testing.assert_close(small.extract(x, (layer,))[layer], full.extract(x, (layer,))[layer],
                                   rtol=0, atol=0)
    assert (tmp_path / "small" / "model.pkl").stat().st_size < (run / "model.pkl").stat().st_size / 2
