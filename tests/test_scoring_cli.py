"""``ldr score``: several models, one failing; missing weights stop before work; unknown ids; selections."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from ldr_plugin.cli import main
from ldr_plugin.metrics.base import Metric, MetricResult
from ldr_plugin.results import iter_record_paths, read_record
from ldr_plugin.scoring import cells as cells_module
from ldr_plugin.scoring.cifar import write_cifar_folder
from ldr_plugin.scoring.run import load_selection

pytestmark = pytest.mark.skipif(importlib.util.find_spec("robustbench") is None, reason="needs robustbench")
GOOD, BAD = "robustbench:cifar10/Linf/Ding2020MMA", "robustbench:cifar10/L2/Ding2020MMA"


class Norm(Metric):
    family = "norm"

    def compute(self, features, labels):
        return MetricResult("norm", {"mean_norm": float(np.linalg.norm(features, axis=1).mean())}, {"mean_norm": True})


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    from ldr_plugin.sources._compat import import_robustbench

    import_robustbench()
    from robustbench.model_zoo import model_dicts
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

    model = model_dicts[BenchmarkDataset("cifar10")][ThreatModel("Linf")]["Ding2020MMA"]["model"]()
    for threat in ("Linf", "L2"):
        (tmp_path / "w" / "cifar10" / threat).mkdir(parents=True)
    torch.save({"state_dict": model.state_dict()}, tmp_path / "w" / "cifar10" / "Linf" / "Ding2020MMA.pt")
    broken = dict(model.state_dict())
    broken.pop("fc.bias")
    torch.save({"state_dict": broken}, tmp_path / "w" / "cifar10" / "L2" / "Ding2020MMA.pt")
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 2)
    write_cifar_folder(tmp_path / "data", "cifar10", {"test": (rng.integers(0, 256, (20, 32, 32, 3), np.uint8), labels)},
                       [f"c{i}" for i in range(10)])
    monkeypatch.setattr(cells_module, "registered_metrics", lambda options=None: {"norm": Norm()})
    return tmp_path


def test_failing_model_is_reported_and_others_continue(workspace, capsys):
    args = ["score", BAD, GOOD, "--dataset", f"cifar10:{workspace / 'data'}", "--weights-dir", str(workspace / "w"),
            "--out", str(workspace / "out"), "--device", "cpu"]
    assert main(args) == 1
    captured = capsys.readouterr()
    assert "FAILED  robustbench:cifar10/L2/Ding2020MMA" in captured.err and "fc.bias" in captured.err
    records = [read_record(p) for p in iter_record_paths(workspace / "out")]
    assert [r.model_id for r in records] == [GOOD]
    assert main(["score", GOOD] + args[3:]) == 0  # re-run: skipped, succeeds


def test_missing_weights_stop_before_any_work(workspace, capsys):
    code = main(["score", GOOD, "robustbench:cifar10/Linf/Wong2020Fast", "--dataset", "digits",
                 "--weights-dir", str(workspace / "w"), "--out", str(workspace / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "Wong2020Fast.pt" in err and "download id: gdrive:" in err
    assert not (workspace / "out").exists()


def test_unknown_model_lists_close_matches(workspace, capsys):
    assert main(["score", "robustbench:cifar10/Linf/Ding2020MM", "--dataset", "digits"]) == 2
    assert "did you mean: cifar10/Linf/Ding2020MMA" in capsys.readouterr().err


def test_selection_file(tmp_path):
    path = tmp_path / "sel.toml"
    path.write_text('models = ["robustbench:cifar10/Linf/Standard"]\ndatasets = ["cifar10:{data_root}/c"]\n')
    assert load_selection(path, data_root="/d")["datasets"] == ["cifar10:/d/c"]
    path.write_text('models = ["x"]\ndatasets = ["digits"]\nmodel = 1\n')
    with pytest.raises(Exception, match="unknown key .model."):
        load_selection(path)


def _score_args(workspace, *extra, dataset=None):
    return ["score", GOOD, "--dataset", dataset or f"cifar10:{workspace / 'data'}", "--weights-dir",
            str(workspace / "w"), "--out", str(workspace / "out"), "--device", "cpu", *extra]


@pytest.mark.parametrize(("extra", "dataset", "says"), [
    ((), "cifar10:/nonexistent/root", "missing /nonexistent/root"),
    ((), "cifar11:/x", "unknown dataset 'cifar11'"),
    (("--split", "val"), None, "splits 'train' and 'test', not 'val'"),
    (("--n-per-class", "1"), None, "--n-per-class"),
    (("--batch-size", "0"), None, "--batch-size"),
    (("--seed", "-1"), None, "--seed"),
    (("--layer", "pixels"), None, "no layer 'pixels'; robustbench models offer penultimate, logits"),
])
def test_bad_input_is_exit_2_before_any_model_is_loaded(workspace, capsys, monkeypatch, extra, dataset, says):
    from ldr_plugin.sources import get_source

    def refuse(*a, **k):
        raise AssertionError("a model was loaded despite bad input")

    monkeypatch.setattr(get_source("robustbench"), "load", refuse)
    assert main(_score_args(workspace, *extra, dataset=dataset)) == 2
    assert says in capsys.readouterr().err
    assert not (workspace / "out").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without CUDA")
def test_cuda_without_a_gpu_is_one_line(workspace, capsys):
    assert main(_score_args(workspace)[:-1] + ["cuda"]) == 2
    err = capsys.readouterr().err.strip()
    assert "no CUDA device" in err and "--device cpu" in err and len(err.splitlines()) == 1


def test_cifar_model_on_large_images_fails_before_extracting(workspace, capsys):
    from PIL import Image

    for c in range(2):
        (workspace / "big" / f"c{c}").mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (64, 64), (i * 90, c * 90, 0)).save(workspace / "big" / f"c{c}" / f"{i}.png")
    assert main(_score_args(workspace, dataset=f"imagefolder:{workspace / 'big'}")) == 1
    err = capsys.readouterr().err
    assert "takes 3x32x32 inputs" in err and "gives 3x64x64" in err
    assert not list((workspace / "out").rglob("*.npz")) and not list(iter_record_paths(workspace / "out"))


def test_json_summary_and_metric_selection(workspace, capsys, monkeypatch):
    import json

    monkeypatch.undo()  # the registered metrics: kstar, alignment, uniformity
    args = _score_args(workspace, "--metric", "kstar", "--backend", "hnsw", "--json")
    assert main(args) == 0
    captured = capsys.readouterr()
    [row] = json.loads(captured.out)["cells"]
    [path] = row["records"]
    record = read_record(path)
    assert record.metric_family == "kstar" and record.metric_options == {"backend": "hnsw"}
    assert row["status"] == "ok" and row["gamma_prime"] == record.metrics["gamma_prime"].value
    assert row["top1_pct"] == record.accuracy["top1_pct"] and row["layer"] == "penultimate"
    assert "ok      " in captured.err and "ok      " not in captured.out
    assert main(_score_args(workspace, "--metric", "kstar")) == 0  # the human table, Γ′ and top-1 columns
    out = capsys.readouterr().out
    assert "Γ′" in out and "top-1 (%)" in out and f"{record.accuracy['top1_pct']:.2f}" in out
    assert main(_score_args(workspace, "--metric", "nope")) == 2
    assert "not a registered metric family; registered: alignment, kstar, uniformity" in capsys.readouterr().err


def test_two_layers_come_from_one_forward_pass(workspace, monkeypatch):
    from ldr_plugin.sources.heads import HookedClassifier

    calls = []
    original = HookedClassifier.__call__

    def counted(self, images, layers):
        calls.append(tuple(layers))
        return original(self, images, layers)

    monkeypatch.setattr(HookedClassifier, "__call__", counted)
    args = _score_args(workspace, "--layer", "penultimate", "--layer", "logits", "--batch-size", "8",
                       "--num-workers", "1")
    assert main(args) == 0
    assert len(calls) == 3 and all(set(c) == {"penultimate", "logits"} for c in calls)  # 20 images / 8: 3 batches
    records = {r.layer: r for r in map(read_record, iter_record_paths(workspace / "out"))}
    assert set(records) == {"penultimate", "logits"} and records["logits"].feature_dim == 10
    assert records["logits"].features_from_cache is True  # written by the penultimate cell's pass
    calls.clear()  # the same numbers as a run of the logits layer alone, in-process loading
    assert main(_score_args(workspace, "--layer", "logits", "--num-workers", "0", "--cache-dir",
                            str(workspace / "fresh")) + ["--out", str(workspace / "alone")]) == 0
    [alone] = map(read_record, iter_record_paths(workspace / "alone"))
    assert len(calls) == 1 and alone.metrics == records["logits"].metrics


def test_amp_is_its_own_cell_and_close_to_fp32(workspace):
    assert main(_score_args(workspace, "--num-workers", "0")) == 0
    assert main(_score_args(workspace, "--num-workers", "0", "--amp")) == 0
    records = {r.identity.get("precision", "fp32"): r for r in map(read_record, iter_record_paths(workspace / "out"))}
    assert set(records) == {"fp32", "amp"} and records["amp"].identity_digest != records["fp32"].identity_digest
    fp32, amp = records["fp32"].metrics["mean_norm"].value, records["amp"].metrics["mean_norm"].value
    assert amp == pytest.approx(fp32, rel=3e-2) and amp != fp32  # bf16 autocast on the CPU


def test_cifar10c_is_one_cell_per_corruption_and_severity(workspace, capsys):
    folder = workspace / "c" / "CIFAR-10-C"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for corruption in ("fog", "snow"):
        np.save(folder / f"{corruption}.npy", rng.integers(0, 256, (5 * 20, 32, 32, 3), dtype=np.uint8))
    np.save(folder / "labels.npy", np.tile(np.repeat(np.arange(10), 2), 5))
    assert main(_score_args(workspace, "--num-workers", "0", dataset=f"cifar10c:{workspace / 'c'}")) == 0
    records = list(map(read_record, iter_record_paths(workspace / "out")))
    assert sorted(r.split for r in records) == sorted(f"{c}-{s}" for c in ("fog", "snow") for s in range(1, 6))
    assert {r.dataset for r in records} == {"cifar10c"} and {r.n_samples for r in records} == {20}


def test_distance_option_reaches_the_kstar_metric(workspace, monkeypatch):
    from ldr_plugin.metrics.kstar_metric import KStarMetric

    seen = []

    def metrics(options=None):
        seen.append(options)
        return {"kstar-cosine": KStarMetric(**options["kstar"])}

    monkeypatch.setattr(cells_module, "registered_metrics", metrics)
    args = ["score", GOOD, "--dataset", f"cifar10:{workspace / 'data'}", "--weights-dir", str(workspace / "w"),
            "--out", str(workspace / "out"), "--device", "cpu", "--distance", "cosine"]
    assert main(args) == 0
    assert seen and all(s == {"kstar": {"distance": "cosine"}} for s in seen)  # the plan's check and the cell
    (record,) = [read_record(p) for p in iter_record_paths(workspace / "out")]
    assert record.metric_family == "kstar-cosine" and record.detail["metric"]["distance"] == "cosine"
