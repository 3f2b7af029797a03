"""Issue 20: ``ldr train`` refuses bad counts, unknown or ill-typed hparams, options its mode would
ignore, and a folder holding a different run; nothing is written for bad input."""

from __future__ import annotations

import pytest

from ldr_plugin.cli import main
from ldr_plugin.domainbed.loop import TrainConfig, train
from ldr_plugin.errors import LdrError

RUN = {"--algorithm": "ERM", "--dataset": "RotatedDigits", "--test_envs": "0"}


def _train_cli(out, *extra: str, **options: str) -> list[str]:
    """``ldr train`` arguments: RUN with ``options`` replacing its values (``test_envs=None`` drops it)."""
    merged = {**RUN, **{f"--{k}": v for k, v in options.items()}}
    return ["train", *(t for k, v in merged.items() if v is not None for t in (k, v)), "--output_dir", str(out), *extra]


@pytest.mark.parametrize("extra, named", [
    (["--steps", "-1"], "steps"),
    (["--steps", "0"], "steps"),
    (["--checkpoint_freq", "0"], "checkpoint_freq"),
    (["--seed", "-3"], "seed"),
    (["--hparams", '{"batch_size": 0}'], "batch_size"),
    (["--hparams", '{"batch_size": -4}'], "batch_size"),
    (["--hparams", '{"batch_size": 8.5}'], "batch_size"),
    (["--hparams", '{"lr": "fast"}'], "lr"),
    (["--hparams", '{"lr": NaN}'], "lr"),
    (["--hparams", '{"lr": 0}'], "lr"),
    (["--hparams", '{"batch_sise": 8}'], "did you mean batch_size"),
    (["--hparams", '{"not_a_hparam": 1}'], "not_a_hparam"),
    (["--hparams", '{"data_augmentation": 1}'], "data_augmentation"),
    (["--sweep", "--test_envs", "0"], "--test_envs"),
    (["--sweep", "--seed", "3"], "--seed"),
    (["--sweep", "--checkpoint_freq", "5"], "--checkpoint_freq"),
    (["--sweep", "--n_trials", "0"], "n_trials"),
    (["--sweep", "--steps", "-1"], "steps"),
    (["--sweep", "--hparams", '{"batch_sise": 8}'], "batch_sise"),
    (["--n_trials", "2"], "--n_trials"),
])
def test_bad_train_input_is_exit_2_and_writes_nothing(tmp_path, capsys, extra, named):
    out = tmp_path / "run"
    sweeping = "--sweep" in extra and "--test_envs" not in extra
    assert main(_train_cli(out, *extra, **({"test_envs": None} if sweeping else {}))) == 2
    err = capsys.readouterr().err
    assert named in err and "Traceback" not in err, err
    assert not out.exists()


def test_a_folder_holding_a_different_run_is_refused_and_kept(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(_train_cli(out, "--steps", "2")) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    for other in ({"algorithm": "Mixup"}, {"dataset": "CorruptedDigits"}, {"test_envs": "1"}, {"seed": "1"},
                  {"steps": "3"}, {"hparams": '{"batch_size": 8}'}):
        assert main(_train_cli(out, **{"steps": "2", **other})) == 2, other
        err = capsys.readouterr().err
        assert f"{out} holds a finished different run" in err and "Traceback" not in err
    assert main(_train_cli(out, "--steps", "2")) == 0  # the same run: skipped
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    # unfinished: a different run is refused, this run is trained afresh
    (out / "done").unlink()
    with pytest.raises(LdrError, match="holds an unfinished different run"):
        train(TrainConfig("ERM", "RotatedDigits", [1], out, steps=2))
    assert not (out / "done").exists()
    train(TrainConfig("ERM", "RotatedDigits", [0], out, steps=2))
    assert (out / "done").exists()
    (out / "results.jsonl").unlink()
    with pytest.raises(LdrError, match="has 'done' but no readable results.jsonl"):
        train(TrainConfig("ERM", "RotatedDigits", [0], out, steps=2))


def test_an_unwritable_output_dir_is_one_line(capsys):
    assert main(_train_cli("/proc/ldr-x/run", "--steps", "1")) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "/proc/ldr-x" in err and len(err.strip().splitlines()) == 1
