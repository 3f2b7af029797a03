"""Metric plugins: alignment/uniformity against naive O(N²) numpy, k* plugin against kstar_summary."""

from __future__ import annotations

import math

import numpy as np
import pytest

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
