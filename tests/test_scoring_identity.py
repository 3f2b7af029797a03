"""A cell is what its data is, not what its dataset is called: another root, other files, another
subset or other metric options is another record; damaged records heal; old records still read."""

from __future__ import annotations

import importlib.util
import json

import msgspec
import numpy as np
import pytest
import torch
from PIL import Image

from ldr_plugin.metrics.base import Metric, MetricResult
from ldr_plugin.results import read_record
from ldr_plugin.results.record import lacks_identity
from ldr_plugin.scoring.cells import ScoreCell, score_cell
from ldr_plugin.scoring.cifar import write_cifar_folder

pytestmark = pytest.mark.skipif(importlib.util.find_spec("robustbench") is None, reason="needs robustbench")
MODEL = "robustbench:cifar10/Linf/Ding2020MMA"


class Count(Metric):
    """Counts samples and calls (the number a wrong resume would get wrong)."""

    family = "count"

    def __init__(self):
        self.calls = 0

    def compute(self, features, labels):
        self.calls += 1
        return MetricResult(self.family, {"n": int(labels.size), "classes": int(np.unique(labels).size)},
                            {"n": True, "classes": True})


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    from ldr_plugin.sources._compat import import_robustbench

    import_robustbench()
    from robustbench.model_zoo import model_dicts
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

    torch.manual_seed(0)
    model = model_dicts[BenchmarkDataset("cifar10")][ThreatModel("Linf")]["Ding2020MMA"]["model"]().eval()
    root = tmp_path_factory.mktemp("w")
    (root / "cifar10" / "Linf").mkdir(parents=True)
    torch.save({"state_dict": model.state_dict()}, root / "cifar10" / "Linf" / "Ding2020MMA.pt")
    return root


def _cifar(root, n_classes, seed):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n_classes), 3)
    images = rng.integers(0, 256, size=(labels.size, 32, 32, 3), dtype=np.uint8)
    write_cifar_folder(root, "cifar10", {"test": (images, labels)}, [f"c{i}" for i in range(n_classes)])
    return root


def _imagefolder(root, n_classes, seed):
    rng = np.random.default_rng(seed)
    for c in range(n_classes):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(2):
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(root / f"class{c}" / f"{i}.png")
    return root


def _score(cell, out, weights, metric, **kw):
    return score_cell(cell, out, weights_dir=weights, cache_dir=out / ".features", metrics={"count": metric},
                      device="cpu", progress=False, **kw)


def test_same_cifar_name_other_root_is_a_new_cell(weights, tmp_path):
    a, b = _cifar(tmp_path / "a", 10, 0), _cifar(tmp_path / "b", 5, 1)
    first, second = Count(), Count()
    [pa] = _score(ScoreCell(MODEL, f"cifar10:{a}"), tmp_path / "out", weights, first)
    [pb] = _score(ScoreCell(MODEL, f"cifar10:{b}"), tmp_path / "out", weights, second)
    assert pa != pb and first.calls == 1 and second.calls == 1  # never "already done"
    ra, rb = read_record(pa), read_record(pb)
    assert ra.dataset == rb.dataset == "cifar10"
    assert (ra.metrics["classes"].value, rb.metrics["classes"].value) == (10, 5)
    assert ra.identity["data"]["root"] == str(a.resolve()) and rb.identity["data"]["root"] == str(b.resolve())
    again = Count()  # and each is done for itself
    assert _score(ScoreCell(MODEL, f"cifar10:{b}"), tmp_path / "out", weights, again) == [pb] and again.calls == 0


def test_same_imagefolder_name_other_files_is_a_new_cell(weights, tmp_path):
    a, b = _imagefolder(tmp_path / "x" / "val", 5, 0), _imagefolder(tmp_path / "y" / "val", 3, 1)
    first, second = Count(), Count()
    [pa] = _score(ScoreCell(MODEL, f"imagefolder:{a}"), tmp_path / "out", weights, first)
    [pb] = _score(ScoreCell(MODEL, f"imagefolder:{b}"), tmp_path / "out", weights, second)
    assert pa != pb and second.calls == 1
    assert read_record(pa).dataset == read_record(pb).dataset == "imagefolder:val"
    assert read_record(pb).metrics["classes"].value == 3 and read_record(pb).n_samples == 6
    # same root, one more file: other data, a new cell
    Image.new("RGB", (32, 32)).save(b / "class0" / "extra.png")
    third = Count()
    [pc] = _score(ScoreCell(MODEL, f"imagefolder:{b}"), tmp_path / "out", weights, third)
    assert pc not in (pa, pb) and third.calls == 1 and read_record(pc).n_samples == 7


def test_subset_and_metric_options_are_part_of_the_cell(weights, tmp_path):
    a = _cifar(tmp_path / "a", 10, 0)
    counts = [Count() for _ in range(3)]
    [p2] = _score(ScoreCell(MODEL, f"cifar10:{a}", n_per_class=2), tmp_path / "out", weights, counts[0])
    [p3] = _score(ScoreCell(MODEL, f"cifar10:{a}", n_per_class=3), tmp_path / "out", weights, counts[1])
    [po] = _score(ScoreCell(MODEL, f"cifar10:{a}", n_per_class=2), tmp_path / "out", weights, counts[2],
                  metric_options={"count": {"x": 1}})
    assert len({p2, p3, po}) == 3 and [c.calls for c in counts] == [1, 1, 1]
    assert read_record(p2).n_samples == 20 and read_record(p3).n_samples == 30
    assert read_record(po).metric_options == {"x": 1}


def test_damaged_record_is_moved_aside_and_recomputed(weights, tmp_path):
    a = _cifar(tmp_path / "a", 10, 0)
    [path] = _score(ScoreCell(MODEL, f"cifar10:{a}"), tmp_path / "out", weights, Count())
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])  # a torn record
    notes, metric = [], Count()
    assert _score(ScoreCell(MODEL, f"cifar10:{a}"), tmp_path / "out", weights, metric, notes=notes) == [path]
    assert metric.calls == 1 and read_record(path).metrics["n"].value == 30
    assert (path.parent / (path.name + ".corrupt")).read_bytes() == good[: len(good) // 2]
    assert "moved a damaged record aside" in notes[0]


def test_damaged_record_does_not_block_the_models_other_cells(weights, tmp_path, monkeypatch):
    from ldr_plugin.scoring import cells as cells_module
    from ldr_plugin.scoring.run import run_inline

    a, b = _cifar(tmp_path / "a", 10, 0), _cifar(tmp_path / "b", 5, 1)
    cells = [ScoreCell(MODEL, f"cifar10:{a}"), ScoreCell(MODEL, f"cifar10:{b}")]
    out = tmp_path / "out"
    [first] = _score(cells[0], out, weights, Count())
    first.write_text("{not json")
    monkeypatch.setattr(cells_module, "registered_metrics", lambda options=None: {"count": Count()})
    outcomes = run_inline(cells, str(out), weights_dir=weights, cache_dir=out / ".features", device="cpu",
                          progress=False, metric_options={})
    assert [o.error for o in outcomes] == [None, None]
    assert outcomes[0].paths == [first] and read_record(first).metrics["n"].value == 30
    assert read_record(outcomes[1].paths[0]).metrics["n"].value == 15
    assert (first.parent / (first.name + ".corrupt")).read_text() == "{not json"
    assert "damaged record" in outcomes[0].notes[0]


def test_schema_1_record_still_reads_and_is_not_taken_for_done(weights, tmp_path):
    a = _cifar(tmp_path / "a", 10, 0)
    cell = ScoreCell(MODEL, f"cifar10:{a}")
    [path] = _score(cell, tmp_path / "out", weights, Count())
    data = msgspec.to_builtins(read_record(path))
    for key in ("identity", "identity_digest", "weights", "accuracy"):
        data.pop(key, None)
    data["schema_version"] = 1
    legacy = cell.record_path(tmp_path / "old", "count")
    legacy.parent.mkdir()
    legacy.write_text(json.dumps(data))
    old = read_record(legacy)
    assert old.schema_version == 1 and lacks_identity(old) and not lacks_identity(read_record(path))
    notes, metric = [], Count()
    [new] = _score(cell, tmp_path / "old", weights, metric, notes=notes)
    assert new != legacy and metric.calls == 1 and legacy.exists()
    assert "schema 1" in notes[0] and legacy.name in notes[0]


@pytest.mark.parametrize("damage", [lambda raw: raw[: len(raw) // 2], lambda raw: b"PK\x03\x04" + raw[40:],
                                    lambda raw: raw[:30] + b"\x00" * 64 + raw[94:]])
def test_damaged_feature_cache_is_recomputed(weights, tmp_path, damage):
    a = _cifar(tmp_path / "a", 10, 0)
    [path] = _score(ScoreCell(MODEL, f"cifar10:{a}"), tmp_path / "out", weights, Count())
    [cache] = (tmp_path / "out" / ".features").glob("*.npz")
    cache.write_bytes(damage(cache.read_bytes()))
    path.unlink()
    metric = Count()
    assert _score(ScoreCell(MODEL, f"cifar10:{a}"), tmp_path / "out", weights, metric) == [path]
    assert metric.calls == 1 and read_record(path).features_from_cache is False
    assert np.load(cache)["features"].shape == (30, 256)  # replaced by a whole file
