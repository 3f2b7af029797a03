"""Built-in loop: DomainBed's run-folder format, its split/seed semantics, errors before data loading."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from domainbed_fake_dist import make_fake_dist

from ldr_plugin.cli import main
from ldr_plugin.domainbed import loaders
from ldr_plugin.domainbed.hparams_table import seed_hash
from ldr_plugin.domainbed.loop import TrainConfig, train
from ldr_plugin.errors import LdrError, UnknownNameError

# vars(args) of DomainBed's train.py argparse (b93c22a)
DOMAINBED_ARGS = {
    "data_dir", "dataset", "algorithm", "task", "hparams", "hparams_seed", "trial_seed", "seed", "steps",
    "checkpoint_freq", "test_envs", "output_dir", "holdout_fraction", "uda_holdout_fraction",
    "skip_model_save", "save_model_every_checkpoint",
}


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """The fake distribution's ``Toy`` algorithm, visible to entry points."""
    root = make_fake_dist(tmp_path / "site")
    monkeypatch.syspath_prepend(str(root))
    import importlib

    return importlib.import_module("toy_plugin_mod").Toy


def _records(run):
    return [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]


def test_run_folder_has_domainbed_format(toy, tmp_path):
    run = train(TrainConfig("Toy", "RotatedDigits", [0], tmp_path / "run", steps=5, checkpoint_freq=2, seed=1))
    assert {p.name for p in run.iterdir()} >= {"results.jsonl", "model.pkl", "done", "out.txt", "err.txt"}
    assert (run / "done").read_text() == "done"
    records = _records(run)
    assert [r["step"] for r in records] == [0, 2, 4]
    env_keys = {f"env{i}_{s}_acc" for i in range(6) for s in ("in", "out")}
    for rec in records:
        assert set(rec) == {"args", "hparams", "step", "epoch", "loss", "step_time", "mem_gb"} | env_keys
        assert set(rec["args"]) == DOMAINBED_ARGS and rec["args"]["test_envs"] == [0]
    # hparams: Python scalars (JSON round trip exact), plugin keys on top of DomainBed's base keys
    hp = records[0]["hparams"]
    assert hp["toy_lr"] == 0.1 and hp["toy_width"] == 32 and hp["lr"] == 1e-3 and hp["batch_size"] == 64
    assert "Args:" in (run / "out.txt").read_text() and "HParams:" in (run / "out.txt").read_text()
    # epoch = step / min over domains of len(in_split) / batch_size, as DomainBed
    smallest_in = min(n - int(n * 0.2) for n in (300, 300, 300, 299, 299, 299))
    assert records[1]["epoch"] == pytest.approx(2 / (smallest_in / 64))
    saved = torch.load(run / "model.pkl", weights_only=True)
    assert set(saved) == {"args", "model_input_shape", "model_num_classes", "model_num_domains",
                          "model_hparams", "model_dict"}
    assert saved["model_num_domains"] == 5 and saved["model_num_classes"] == 10
    assert tuple(saved["model_input_shape"]) == (1, 28, 28)


def test_recorded_accuracies_match_brute_force(toy, tmp_path):
    """Re-evaluate the saved model on splits rebuilt independently with numpy: same accuracies."""
    from ldr_plugin.datasets.digits import RotatedDigits

    run = train(TrainConfig("Toy", "RotatedDigits", [2], tmp_path / "run", steps=4, checkpoint_freq=100, trial_seed=3))
    last = _records(run)[-1]
    saved = torch.load(run / "model.pkl", weights_only=True)
    model = toy((1, 28, 28), 10, 5, saved["model_hparams"])
    model.load_state_dict(saved["model_dict"])
    for i, env in enumerate(RotatedDigits(None, [2], {})):
        keys = np.arange(len(env))
        np.random.RandomState(seed_hash(3, i)).shuffle(keys)
        n_out = int(len(env) * 0.2)
        x, y = env.tensors
        for name, idx in (("out", keys[:n_out]), ("in", keys[n_out:])):
            acc = (model.predict(x[idx]).argmax(1) == y[idx]).float().mean().item()
            assert last[f"env{i}_{name}_acc"] == pytest.approx(acc, abs=1e-6)


def test_deterministic_for_fixed_seed(toy, tmp_path):
    runs = [train(TrainConfig("Toy", "CorruptedDigits", [1], tmp_path / f"r{k}", steps=3, checkpoint_freq=1, seed=7)) for k in (0, 1)]
    a, b = (_records(r) for r in runs)
    for ra, rb in zip(a, b):
        ra.pop("step_time"), rb.pop("step_time"), ra.pop("args"), rb.pop("args")
        assert ra == rb


def test_random_hparams_seeded_like_domainbed(toy, tmp_path):
    run = train(TrainConfig("Toy", "RotatedDigits", [0], tmp_path / "run", steps=1, hparams_seed=2, trial_seed=1))
    hp = _records(run)[0]["hparams"]
    seed = seed_hash(2, 1)
    expected_lr = np.random.RandomState(seed_hash(seed, "toy_lr")).uniform(0.01, 0.2)
    expected_base_lr = 10 ** np.random.RandomState(seed_hash(seed, "lr")).uniform(-4.5, -2.5)
    assert hp["toy_lr"] == expected_lr and hp["lr"] == expected_base_lr
    assert isinstance(hp["toy_width"], int) and hp["toy_width"] in (16, 32, 64)


def test_unknown_names_fail_before_data_is_loaded(toy, tmp_path, monkeypatch):
    from ldr_plugin.datasets import digits

    def boom():
        raise AssertionError("data loaded")

    monkeypatch.setattr(digits, "load_digit_images", boom)
    with pytest.raises(UnknownNameError, match="did you mean: Toy"):
        train(TrainConfig("Tyo", "RotatedDigits", [0], tmp_path / "x"))
    with pytest.raises(UnknownNameError, match="did you mean: RotatedDigits"):
        train(TrainConfig("Toy", "RotatedDigit", [0], tmp_path / "x"))
    with pytest.raises(LdrError, match="test_envs"):
        train(TrainConfig("Toy", "RotatedDigits", [6], tmp_path / "x"))
    assert not (tmp_path / "x").exists()


def test_batch_larger_than_split_is_an_error_not_a_hang(toy, tmp_path):
    with pytest.raises(LdrError, match="batch_size 500"):
        train(TrainConfig("Toy", "RotatedDigits", [0], tmp_path / "run", steps=2, hparams={"batch_size": 500}))


def test_done_run_is_not_retrained(toy, tmp_path):
    run = train(TrainConfig("Toy", "RotatedDigits", [0], tmp_path / "run", steps=1))
    before = (run / "results.jsonl").read_text()
    train(TrainConfig("Toy", "RotatedDigits", [0], run, steps=1))
    assert (run / "results.jsonl").read_text() == before
    with pytest.raises(LdrError, match="holds a finished different run"):  # other steps: another run
        train(TrainConfig("Toy", "RotatedDigits", [0], run, steps=3))
    assert (run / "results.jsonl").read_text() == before


def test_split_matches_domainbed_definition():
    data = list(range(37))
    out, in_ = loaders.split_dataset(data, 7, seed=11)
    keys = list(range(37))
    np.random.RandomState(11).shuffle(keys)
    assert [out[i] for i in range(len(out))] == keys[:7] and [in_[i] for i in range(len(in_))] == keys[7:]


def test_infinite_batches_drop_last_and_balanced_weights():
    data = torch.utils.data.TensorDataset(torch.arange(10.0), torch.tensor([0] * 8 + [1] * 2))
    it = loaders.infinite_batches(data, None, 4, 0)
    assert all(len(next(it)[0]) == 4 for _ in range(20))
    weights = loaders.balanced_class_weights(data)
    assert torch.allclose(weights[:8], torch.full((8,), 1 / 16)) and torch.allclose(weights[8:], torch.full((2,), 1 / 4))
    assert math.isclose(float(weights.sum()), 1.0)


def test_cli_train_and_unknown_name(toy, tmp_path, capsys):
    code = main(["train", "--algorithm", "Toy", "--dataset", "RotatedDigits", "--test_envs", "1",
                 "--steps", "2", "--output_dir", str(tmp_path / "cli"), "--hparams", '{"batch_size": 8}'])
    assert code == 0 and (tmp_path / "cli" / "done").exists()
    assert _records(tmp_path / "cli")[0]["hparams"]["batch_size"] == 8
    code = main(["train", "--algorithm", "Toyy", "--dataset", "RotatedDigits", "--output_dir", str(tmp_path / "y")])
    assert code == 2 and "did you mean: Toy" in capsys.readouterr().err
    assert main(["train", "--algorithm", "Toy", "--hparams", "[1]", "--output_dir", str(tmp_path / "z")]) == 2


def test_cli_train_from_a_toml_config_flags_win(toy, tmp_path, capsys):
    config = tmp_path / "run.toml"
    config.write_text('algorithms = "Toy"\ndatasets = ["CorruptedDigits"]\ntest_envs = [2]\nsteps = 5\n'
                      'checkpoint_freq = 1\ntrial_seed = 3\nhparams = \'{"batch_size": 8}\'\n'
                      f'output_dir = "{tmp_path / "from_toml"}"\n')
    assert main(["train", "--config", str(config), "--steps", "2"]) == 0  # the flag wins over the file's 5
    args = _records(tmp_path / "from_toml")[-1]["args"]
    assert (args["algorithm"], args["dataset"], args["test_envs"], args["trial_seed"]) == ("Toy", "CorruptedDigits", [2], 3)
    assert [r["step"] for r in _records(tmp_path / "from_toml")] == [0, 1]
    direct = train(TrainConfig.from_table({"algorithm": "Toy", "dataset": "CorruptedDigits", "test_envs": [2], "steps": 2,
                                           "checkpoint_freq": 1, "trial_seed": 3, "hparams": {"batch_size": 8},
                                           "output_dir": str(tmp_path / "direct")}))
    ours, theirs = _records(direct), _records(tmp_path / "from_toml")
    for a, b in zip(ours, theirs):  # the same run, whichever way it was configured
        for r in (a, b):
            r.pop("step_time"), r["args"].pop("output_dir")
        assert a == b
    config.write_text('algorithms = "Toy"\nstep = 5\n')
    assert main(["train", "--config", str(config)]) == 2
    assert "run.toml: unknown key 'step'" in capsys.readouterr().err
    with pytest.raises(LdrError, match="unknown key 'algoritm'"):
        TrainConfig.from_table({"algoritm": "Toy", "dataset": "RotatedDigits"}, "run.toml")
