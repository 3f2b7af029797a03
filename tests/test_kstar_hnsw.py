"""hnsw backend: agrees with exact on moderate N, never below exact, deterministic, reports its distance."""

from __future__ import annotations

import numpy as np
import pytest
from kstar_reference import blobs

from ldr_plugin.errors import LdrError
from ldr_plugin.kstar import kstar_search, kstar_summary


@pytest.fixture(scope="module")
def data():
    return blobs()


def test_hnsw_agrees_with_exact(data):
    x, y = data
    exact = kstar_search(x, y)[0]
    approx = kstar_search(x, y, backend="hnsw", seed=1, num_threads=2)[0]  # default parameters
    assert np.mean(approx.kstar == exact.kstar) >= 0.99
    # the enemy found is a real other-class sample, so its distance is ≥ the true minimum: k* never below
    assert np.all(approx.kstar >= exact.kstar)
    report = approx.info["distance_from_exact"]
    assert report["n_checked"] == 1000 < len(y)
    checked = report["agreement"]
    assert 0.97 <= checked <= 1.0


def test_hnsw_summary_is_close_and_reports_distance(data):
    x, y = data
    exact = kstar_summary(x, y)
    approx = kstar_summary(x, y, backend="hnsw", check=5000, m=16, ef_construction=100, ef=64)
    assert approx.backend == "hnsw"
    assert abs(approx.gamma_prime - exact.gamma_prime) <= 0.02
    assert approx.distance_from_exact["n_checked"] == 1500  # N ≤ check: every sample compared
    assert approx.distance_from_exact["agreement"] == pytest.approx(np.mean(approx.kstar == exact.kstar))


def test_hnsw_is_deterministic_for_a_seed(data):
    x, y = data
    a = kstar_search(x, y, backend="hnsw", seed=3, num_threads=2, check=0, m=8, ef=16)[0]
    b = kstar_search(x, y, backend="hnsw", seed=3, num_threads=2, check=0, m=8, ef=16)[0]
    np.testing.assert_array_equal(a.kstar, b.kstar)
    np.testing.assert_array_equal(a.enemy_sq_distance, b.enemy_sq_distance)


def test_hnsw_exact_same_class_counts_and_ties():
    # duplicates across classes: the enemy is found at distance 0, counting is exact
    rng = np.random.default_rng(5)
    x = rng.integers(0, 3, size=(200, 2)).astype(np.float64)
    y = rng.integers(0, 3, size=200)
    exact = kstar_search(x, y)[0]
    approx = kstar_search(x, y, backend="hnsw", ef=200)[0]
    np.testing.assert_array_equal(approx.kstar, exact.kstar)
    assert approx.ties.sum() == exact.ties.sum() > 0


def test_hnsw_options_are_checked(data):
    x, y = data
    with pytest.raises(LdrError, match="approximate backend, not 'exact'"):
        kstar_search(x, y, ef=10)
    with pytest.raises(LdrError, match="probe_classes must be at least 1"):
        kstar_search(x, y, backend="hnsw", probe_classes=0)
