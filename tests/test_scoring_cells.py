"""score_cell end to end on a real RobustBench architecture and a tiny CIFAR folder: records match
an independent computation, re-runs skip, warm caches do no forward pass, interrupted runs resume."""

from __future__ import annotations

import copy
import hashlib
import importlib.util

import msgspec
import numpy as np
import pytest
import torch
from torch import nn

from ldr_plugin.errors import LdrError
from ldr_plugin.metrics.base import Metric, MetricResult
from ldr_plugin.results import read_record
from ldr_plugin.scoring.cells import ScoreCell, score_cell
from ldr_plugin.scoring.cifar import write_cifar_folder
from ldr_plugin.sources import get_source

pytestmark = pytest.mark.skipif(importlib.util.find_spec("robustbench") is None, reason="needs robustbench")
MODEL = "robustbench:cifar10/Linf/Ding2020MMA"


class MeanFeature(Metric):
    """A brute-force 'metric': the mean of every feature coordinate (checkable by hand)."""

    family = "meanfeat"

    def __init__(self):
        self.calls = 0

    def compute(self, features, labels):
        self.calls += 1
        return MetricResult(self.family, {"mean": float(features.mean())}, {"mean": True}, {"n": int(labels.size)})


class Exploding(Metric):
    family = "explodes"

    def __init__(self, fail=True):
        self.fail = fail

    def compute(self, features, labels):
        if self.fail:
            raise KeyboardInterrupt  # stands for an interrupted run
        return MetricResult(self.family, {"ok": 1.0}, {"ok": True})


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from ldr_plugin.sources._compat import import_robustbench

    import_robustbench()
    from robustbench.model_zoo import model_dicts
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

    torch.manual_seed(0)
    model = model_dicts[BenchmarkDataset("cifar10")][ThreatModel("Linf")]["Ding2020MMA"]["model"]().eval()
    root = tmp_path_factory.mktemp("cells")
    (root / "w" / "cifar10" / "Linf").mkdir(parents=True)
    torch.save({"state_dict": model.state_dict()}, root / "w" / "cifar10" / "Linf" / "Ding2020MMA.pt")
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 4)
    images = rng.integers(0, 256, size=(40, 32, 32, 3), dtype=np.uint8)
    write_cifar_folder(root / "data", "cifar10", {"test": (images, labels)}, [f"c{i}" for i in range(10)])
    return model, root, images, labels


def _cell(root, **kw):
    return ScoreCell(MODEL, f"cifar10:{root / 'data'}", n_per_class=3, seed=0, batch_size=8, **kw)


def _poison_load(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("model loaded although the cache is warm")

    monkeypatch.setattr(get_source("robustbench"), "load", refuse)


def test_record_matches_independent_features(setup, tmp_path):
    model, root, images, labels = setup
    metric = MeanFeature()
    paths = score_cell(_cell(root), tmp_path / "out", weights_dir=root / "w", cache_dir=tmp_path / "cache",
                       metrics={"meanfeat": metric}, device="cpu", progress=False)
    record = msgspec.to_builtins(read_record(paths[0]))
    rng = np.random.default_rng(0)  # the documented draw: one generator, classes in order
    chosen = np.sort(np.concatenate([rng.choice(np.flatnonzero(labels == c), 3, replace=False) for c in range(10)]))
    headless = copy.deepcopy(model)
    headless.fc = nn.Identity()
    x = torch.tensor(images[chosen]).permute(0, 3, 1, 2).float() / 255.0  # ToTensor by hand
    with torch.no_grad():
        expected = headless(x).numpy().mean()
        correct = int((model(x).argmax(1).numpy() == labels[chosen]).sum())  # the head, independently
    assert record["metrics"]["mean"]["value"] == pytest.approx(float(expected), rel=1e-5)
    from scipy.stats import binomtest

    ci = binomtest(correct, 30).proportion_ci(0.99)
    assert record["accuracy"] == {"top1_pct": pytest.approx(100 * correct / 30), "correct": correct, "n": 30,
                                  "kind": "clean top-1 (the model's own head)", "compares_to": "clean_acc_pct",
                                  "ci99_pct": [pytest.approx(100 * ci.low), pytest.approx(100 * ci.high)]}
    assert record["n_samples"] == 30 and record["n_per_class"]["c3"] == 3
    assert record["dataset"] == "cifar10" and record["split"] == "test" and record["layer"] == "penultimate"
    assert record["preprocessing"]["name"] == "ToTensor" and record["feature_dim"] == 256
    weights_file = root / "w" / "cifar10" / "Linf" / "Ding2020MMA.pt"
    [facts] = record["weights"]["files"]
    assert facts["path"] == str(weights_file.resolve()) and facts["size"] == weights_file.stat().st_size
    assert facts["sha256_first_mib"] == hashlib.sha256(weights_file.read_bytes()[: 1 << 20]).hexdigest()
    assert record["weights"]["hooked"] == "input of fc (forward pre-hook)" and record["weights"]["feature_dim"] == 256


def test_rerun_skips_and_warm_cache_does_no_forward(setup, tmp_path, monkeypatch):
    _, root, _, _ = setup
    kwargs = {"weights_dir": root / "w", "cache_dir": tmp_path / "cache", "device": "cpu", "progress": False}
    first = MeanFeature()
    paths = score_cell(_cell(root), tmp_path / "out", metrics={"meanfeat": first}, **kwargs)
    stamp = paths[0].stat().st_mtime_ns
    _poison_load(monkeypatch)
    again = MeanFeature()
    assert score_cell(_cell(root), tmp_path / "out", metrics={"meanfeat": again}, **kwargs) == paths
    assert again.calls == 0 and paths[0].stat().st_mtime_ns == stamp
    paths[0].unlink()  # records gone, features cached: recomputed without loading the model
    score_cell(_cell(root), tmp_path / "out", metrics={"meanfeat": again}, **kwargs)
    assert again.calls == 1 and read_record(paths[0]).features_from_cache is True


def test_interrupted_run_leaves_no_partial_record_and_resumes(setup, tmp_path):
    _, root, _, _ = setup
    kwargs = {"weights_dir": root / "w", "cache_dir": tmp_path / "cache", "device": "cpu", "progress": False}
    mean = MeanFeature()
    with pytest.raises(KeyboardInterrupt):
        score_cell(_cell(root), tmp_path / "out", metrics={"meanfeat": mean, "explodes": Exploding()}, **kwargs)
    out = tmp_path / "out"
    assert not list(out.rglob(".tmp-*"))  # no partial file
    assert [p.name.split("__")[-3] for p in out.glob("*.result.json")] == ["meanfeat"]
    paths = score_cell(_cell(root), out, metrics={"meanfeat": mean, "explodes": Exploding(False)}, **kwargs)
    assert mean.calls == 1 and all(p.exists() for p in paths) and len(list(out.glob("*.result.json"))) == 2


def test_registered_metrics_write_one_record_each(setup, tmp_path):
    from ldr_plugin.scoring.cells import registered_metrics

    try:
        metrics = registered_metrics()
    except LdrError as exc:  # the metric classes are another part's; skip until they exist
        pytest.skip(f"registered metrics not loadable yet: {exc}")
    _, root, _, _ = setup
    paths = score_cell(_cell(root), tmp_path / "out", weights_dir=root / "w", device="cpu", progress=False)
    families = {read_record(p).metric_family for p in paths}
    assert families == set(metrics) and len(paths) == len(metrics)


def test_disk_full_leaves_no_partial_cache_and_rerun_works(setup, tmp_path, monkeypatch):
    import errno

    _, root, _, _ = setup
    kwargs = {"weights_dir": root / "w", "cache_dir": tmp_path / "cache", "device": "cpu", "progress": False}

    def full(*args, **kw):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(np, "savez", full)
        with pytest.raises(LdrError, match="No space left on device"):
            score_cell(_cell(root), tmp_path / "out", metrics={"meanfeat": MeanFeature()}, **kwargs)
    assert not list((tmp_path / "cache").iterdir()) and not (tmp_path / "out").exists()
    paths = score_cell(_cell(root), tmp_path / "out", metrics={"meanfeat": MeanFeature()}, **kwargs)
    assert read_record(paths[0]).features_from_cache is False and len(list((tmp_path / "cache").iterdir())) == 1


def test_kstar_distance_option_writes_its_own_family(setup, tmp_path):
    from ldr_plugin.kstar.distance import record_distance
    from ldr_plugin.scoring.cells import registered_metrics

    _, root, _, _ = setup
    kwargs = {"weights_dir": root / "w", "device": "cpu", "progress": False}
    out = tmp_path / "out"
    euclid = score_cell(_cell(root), out, metrics={"kstar": registered_metrics()["kstar"]}, **kwargs)
    metrics = registered_metrics({"kstar": {"distance": "cosine"}})
    assert "kstar-cosine" in metrics and "kstar" not in metrics
    cosine = score_cell(_cell(root), out, metrics={"kstar-cosine": metrics["kstar-cosine"]}, **kwargs)
    (a,), (b,) = euclid, cosine
    assert a != b and a.exists() and b.exists()  # two records side by side, neither skipped nor overwritten
    ra, rb = read_record(a), read_record(b)
    assert (ra.metric_family, record_distance(ra)) == ("kstar", "euclidean")
    assert (rb.metric_family, record_distance(rb)) == ("kstar-cosine", "cosine")
    assert rb.detail["metric"]["distance"] == "cosine"
    with pytest.raises(LdrError, match="options for unknown metric"):
        registered_metrics({"kstr": {"distance": "cosine"}})


def _builtin_metrics():
    from ldr_plugin.scoring.cells import registered_metrics

    return {f: m for f, m in registered_metrics().items() if f in ("kstar", "alignment", "uniformity")}


def test_cpu_metrics_equal_a_direct_computation_on_the_cached_features(setup, tmp_path):
    """--device cpu: the features handed to the metrics as a tensor give bit-identical numbers to
    kstar_summary / alignment / uniformity called directly on the numpy features (the former path)."""
    from ldr_plugin.kstar import kstar_summary
    from ldr_plugin.kstar.report import summary_values
    from ldr_plugin.metrics.align_uniform import alignment, uniformity

    _, root, _, _ = setup
    metrics = _builtin_metrics()
    assert set(metrics) == {"kstar", "alignment", "uniformity"}
    paths = score_cell(_cell(root), tmp_path / "out", weights_dir=root / "w", cache_dir=tmp_path / "cache",
                       metrics=metrics, device="cpu", progress=False)
    [cache] = list((tmp_path / "cache").glob("*.npz"))
    with np.load(cache) as npz:
        x, y = npz["features"], npz["labels"]
    assert isinstance(x, np.ndarray) and x.dtype == np.float32 and x.shape == (30, 256)
    records = {r.metric_family: r for r in map(read_record, paths)}
    expected, _ = summary_values(kstar_summary(x, y))
    assert {k: v.value for k, v in records["kstar"].metrics.items()} == pytest.approx(expected, rel=0, abs=0)
    assert records["alignment"].metrics["alignment"].value == alignment(x, y)
    assert records["uniformity"].metrics["uniformity"].value == uniformity(x)
    assert all(r.detail["metric_device"] == "cpu" for r in records.values())


def test_metrics_receive_a_tensor_on_the_extraction_device(setup, tmp_path, monkeypatch):
    """The torch metrics get one tensor on the requested device (not numpy); a metric that keeps the
    default contract still gets numpy; the device is in the record but not in the cell's identity."""
    import ldr_plugin.metrics.align_uniform as au
    import ldr_plugin.metrics.kstar_metric as km
    from ldr_plugin.results.record import identity_digest
    from ldr_plugin.scoring.cells import cell_data, cell_identities

    seen = {}

    def spy(name, real):
        def wrapped(features, *args, **kwargs):
            seen.setdefault(name, []).append((type(features), getattr(features, "device", None),
                                              getattr(features, "dtype", None)))
            return real(features, *args, **kwargs)
        return wrapped

    monkeypatch.setattr(km, "kstar_summary", spy("kstar", km.kstar_summary))
    monkeypatch.setattr(au, "alignment", spy("alignment", au.alignment))
    monkeypatch.setattr(au, "uniformity", spy("uniformity", au.uniformity))
    numpy_metric = MeanFeature()
    numpy_metric.compute = spy("meanfeat", numpy_metric.compute)
    _, root, _, _ = setup
    requested = "cpu"
    cell = _cell(root)
    paths = score_cell(cell, tmp_path / "out", weights_dir=root / "w", metrics={**_builtin_metrics(),
                       "meanfeat": numpy_metric}, device=requested, progress=False)
    for name in ("kstar", "alignment", "uniformity"):
        [(kind, device, dtype)] = seen[name]
        assert issubclass(kind, torch.Tensor) and device == torch.device(requested) and dtype == torch.float32
    [(kind, _, dtype)] = seen["meanfeat"]
    assert kind is np.ndarray and dtype == np.float32
    records = {r.metric_family: r for r in map(read_record, paths)}
    assert {f: r.detail["metric_device"] for f, r in records.items()} == dict.fromkeys(records, requested)
    identities = cell_identities(cell, cell_data(cell), list(records))  # made without any device
    for family, record in records.items():
        assert record.identity == identities[family] and record.identity_digest == identity_digest(identities[family])
        assert "device" not in str(record.identity)


def test_faiss_backend_moves_features_to_the_cpu_itself():
    """KStarMetric with backend faiss takes a tensor and converts at its own edge (faiss is CPU-only)."""
    pytest.importorskip("faiss")
    from ldr_plugin.kstar import kstar_summary
    from ldr_plugin.kstar.report import summary_values
    from ldr_plugin.metrics.kstar_metric import KStarMetric

    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, 5)).astype(np.float32)
    y = np.repeat(np.arange(3), 20)
    result = KStarMetric(backend="faiss").compute(torch.from_numpy(x), y)
    assert result.device == "cpu" and result.values == summary_values(kstar_summary(x, y))[0]
