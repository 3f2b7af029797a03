"""Metric plugins: alignment/uniformity against naive O(N²) numpy, k* plugin against kstar_summary."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ldr_plugin.errors import LdrError
from ldr_plugin.metrics.align_uniform import AlignmentMetric, UniformityMetric, alignment, uniformity
from ldr_plugin.metrics.kstar_metric import KStarMetric


def _naive(x, y, t=2.0):
    z = x / np.linalg.norm(x, axis=1, keepdims=True)
    sq = ((z[:, None, :] - z[None, :, :]) ** 2).sum(-1)
    off = ~np.eye(len(z), dtype=bool)
    same = (y[:, None] == y[None, :]) & off
    return sq[same].mean(), math.log(np.exp(-t * sq[off]).mean())


@pytest.mark.parametrize("seed", [0, 1])
def test_alignment_and_uniformity_match_naive(seed, clustered_features):
    x, y = clustered_features(n_per_class=[30, 45][seed], n_classes=3 + seed, dim=7, spread=1.0, seed=seed)
    x = x.astype(np.float64)
    y = y.copy()
    y[:5] = y.max()  # unequal class sizes
    align_ref, unif_ref = _naive(x, y)
    assert alignment(x, y) == pytest.approx(align_ref, rel=1e-10)
    assert uniformity(x, block_size=13) == pytest.approx(unif_ref, rel=1e-10)
    res = AlignmentMetric().compute(x, y)
    assert res.family == "alignment" and res.higher_is_better == {"alignment": False}
    res = UniformityMetric().compute(x, y)
    assert res.values["uniformity"] == pytest.approx(unif_ref, rel=1e-10)
    assert res.as_record_metrics()["uniformity"].higher_is_better is False


def test_alignment_uniformity_bad_input():
    x = np.ones((4, 3))
    x[2] = 0
    with pytest.raises(LdrError, match="all-zero rows.*index 2"):
        uniformity(x)
    with pytest.raises(LdrError, match="3 labels, 4 feature rows"):
        alignment(np.ones((4, 3)), [0, 1, 2])
    with pytest.raises(LdrError, match="at least 2 samples"):
        alignment(np.eye(3), [0, 1, 2])


def test_kstar_metric_plugin_matches_summary():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 8))
    y = np.repeat(np.arange(3), 100)
    x[y == 1] += 1.5
    x[y == 2] += 3.0
    res = KStarMetric(dtype="float64").compute(x, y)
    assert res.family == "kstar"
    assert res.values["gamma_prime"] == pytest.approx(0.568450, abs=5e-7)
    assert res.values["gamma"] == pytest.approx(1.009334, abs=5e-7)
    assert res.values["n_fractured"] == 2 and res.higher_is_better["gamma_prime"] is False
    assert res.detail["per_class"][1]["gamma"] == pytest.approx(0.802978, abs=5e-7)
    assert res.detail["n_per_class"] == {"0": 100, "1": 100, "2": 100}
    rec = res.as_record_metrics()
    assert rec["mu"].higher_is_better is True


def test_kstar_metric_infinite_gamma_is_none():
    x = np.array([[0, 0], [0, 1], [1, 0], [5, 5], [5, 6], [6, 5], [0.5, 0.4], [9, 9], [9, 10], [10, 9]], float)
    y = np.array([0, 0, 0, 1, 1, 1, 1, 2, 2, 2])
    res = KStarMetric().compute(x, y)
    assert res.values["n_gamma_excluded"] == 2
    assert res.detail["per_class"][2]["gamma"] is None and res.detail["per_class"][2]["gamma_state"] == "-inf"


def test_entry_points_resolve_to_these_classes():
    from importlib.metadata import entry_points

    eps = {ep.name: ep for ep in entry_points(group="ldr_plugin.metrics")}
    assert eps["kstar"].load() is KStarMetric
    assert eps["alignment"].load() is AlignmentMetric and eps["uniformity"].load() is UniformityMetric


def test_metric_options_kinds_and_a_changed_option_on_resume(tiny_plugin, tmp_path, capsys):
    """Options reach the metric and its records; each family labels its own records; resuming with other
    options is refused (the existing record would silently stand for another computation)."""
    from ldr_plugin.cli import main
    from ldr_plugin.results import iter_record_paths, read_record
    from ldr_plugin.scoring.cells import ScoreCell, cell_data
    from ldr_plugin.sources import get_source

    out = tmp_path / "out"
    args = ["score", "tiny:net4", "--dataset", "digits", "--n-per-class", "5", "--out", str(out)]
    assert main([*args, "--metric-option", "uniformity.t=3", "--metric-option", "kstar.threshold=0.25"]) == 0
    records = {r.metric_family: r for r in map(read_record, iter_record_paths(out))}
    assert {family: r.kind for family, r in records.items()} == {f: f for f in ("alignment", "kstar", "uniformity")}
    assert records["uniformity"].metric_options == {"t": 3} and records["alignment"].metric_options == {}
    assert records["kstar"].metric_options == {"threshold": 0.25}
    data = cell_data(ScoreCell("tiny:net4", "digits", n_per_class=5))
    images = torch.stack([data.samples[i] for i in range(len(data))])  # embedded digits: tensors
    features = get_source("tiny").load("net4").features(images, "linear").numpy().astype(np.float64)
    value = records["uniformity"].metrics["uniformity"].value  # against the naive O(N²) reference
    assert value == pytest.approx(_naive(features, data.labels, t=3.0)[1], rel=1e-6)
    assert value != pytest.approx(_naive(features, data.labels, t=2.0)[1], rel=1e-6)
    assert main([*args, "--metric-option", "uniformity.t=2"]) == 0  # another option: another cell, the first kept
    uniformity = [r for r in map(read_record, iter_record_paths(out)) if r.metric_family == "uniformity"]
    assert sorted(r.metric_options["t"] for r in uniformity) == [2, 3]
    capsys.readouterr()
    assert main([*args, "--metric-option", "alignment.nope=1"]) == 2  # an option the metric does not take
    assert "metric 'alignment' does not take" in capsys.readouterr().err
