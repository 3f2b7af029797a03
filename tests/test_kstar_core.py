"""k* core against a brute-force full-sort reference, scipy, and every test vector of the spec."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
import torch
from kstar_reference import brute_force

from ldr_plugin.kstar import kstar_search, kstar_summary, kstar_tie_count, kstar_values, skewness


def _duplicated_data(seed: int, n: int = 120, d: int = 3, c: int = 4):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 3, size=(n, d)).astype(np.float64)  # a small grid: many exact duplicates and ties
    y = rng.integers(0, c, size=n)
    y[:c] = np.arange(c)
    y[c : 2 * c] = np.arange(c)
    return x, y


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_matches_brute_force_with_duplicates_and_ties(seed, dtype):
    x, y = _duplicated_data(seed)
    ref, ref_ties = brute_force(x, y)
    assert ref_ties > 0  # the data does exercise the tie rule
    result, _ = kstar_search(x, y, dtype=dtype, block_size=17)
    np.testing.assert_array_equal(result.kstar, ref)
    assert int(result.ties.sum()) == ref_ties
    assert kstar_tie_count(x, y, dtype=dtype) == ref_ties


@pytest.mark.parametrize("seed", [3, 4])
def test_matches_brute_force_on_continuous_data_with_shifted_duplicates(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(150, 6)) + 50.0  # large offset: float32 cancellation without the guard
    y = rng.integers(0, 5, size=150)
    x[10] = x[20]  # duplicates within and across classes
    y[10], y[20] = 0, 1
    x[30] = x[31]
    y[30] = y[31] = 2
    ref, ref_ties = brute_force(x, y)
    for dtype in ("float32", "float64"):
        got = kstar_search(x, y, dtype=dtype, block_size=32)[0]
        np.testing.assert_array_equal(got.kstar, ref)
        assert int(got.ties.sum()) == ref_ties


def test_float32_and_float64_agree_on_clustered_data(clustered_features):
    x, y = clustered_features(n_per_class=80, n_classes=5, dim=24, spread=1.0)
    a = kstar_values(x, y, dtype="float32")
    b = kstar_values(x, y, dtype="float64")
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, brute_force(x, y)[0])


def test_torch_input_and_string_labels_keep_names():
    x, y = _duplicated_data(5)
    names = np.array(["cat", "dog", "eel", "fox"])[y]
    s = kstar_summary(torch.from_numpy(x), names)
    assert [c.name for c in s.classes] == ["cat", "dog", "eel", "fox"]
    np.testing.assert_array_equal(s.kstar, brute_force(x, y)[0])


def test_query_excluded_by_index_not_by_order():
    # two identical points of one class and one of another at distance 0: self must not count
    x = np.array([[0.0], [0.0], [0.0], [5.0]])
    y = np.array([0, 0, 1, 1])
    np.testing.assert_array_equal(kstar_values(x, y), brute_force(x, y)[0])
    assert kstar_values(x, y).tolist() == [1, 1, 1, 1]


def test_toy1_vector():
    x = np.array([0, 1, 2, 3, 2.6, 10, 11, 12], dtype=np.float64).reshape(-1, 1)
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    assert kstar_values(x, y, dtype="float64").tolist() == [3, 3, 1, 1, 1, 3, 3, 3]
    s = kstar_summary(x, y, dtype="float64")
    c0, c1 = s.classes
    assert (c0.mu, c0.sigma, c0.gamma, c0.pattern) == (0.5, 0.25, 0.0, "Overlapped")
    assert c1.mu == 0.625 and c1.sigma == pytest.approx(0.2165, abs=5e-5)
    assert c1.gamma == pytest.approx(-1.1547, abs=5e-5) and c1.pattern == "Clustered"
    assert s.gamma_pooled == pytest.approx(-0.5164, abs=5e-5)
    assert s.gamma_prime == pytest.approx(-0.5774, abs=5e-5)
    assert (s.n_fractured, s.n_overlapped, s.n_clustered, s.n_ties) == (0, 1, 1, 0)


def test_toy2_vector_degenerate_classes():
    x = np.array(
        [[0, 0], [0, 1], [1, 0], [5, 5], [5, 6], [6, 5], [0.5, 0.4], [9, 9], [9, 10], [10, 9]], dtype=float
    )
    y = np.array([0, 0, 0, 1, 1, 1, 1, 2, 2, 2])
    assert kstar_values(x, y).tolist() == [1, 1, 1, 3, 3, 3, 1, 3, 3, 3]
    s = kstar_summary(x, y)
    c0, c1, c2 = s.classes
    assert math.isnan(c0.gamma) and c0.pattern == "Overlapped"
    assert c1.gamma == pytest.approx(-1.1547, abs=5e-5) and c1.pattern == "Clustered"
    assert c2.gamma == -math.inf and c2.pattern == "Clustered"
    assert s.gamma_pooled == pytest.approx(-0.1099, abs=5e-5)
    assert s.n_gamma_excluded == 2 and s.gamma_excluded_classes == ["0", "2"]
    assert s.gamma_prime == pytest.approx(c1.gamma)  # only the finite class is averaged
    d = s.to_dict()
    assert d["classes"][2]["gamma"] is None and d["classes"][2]["gamma_state"] == "-inf"
    assert d["classes"][0]["gamma_state"] == "undefined"
    clipped = kstar_summary(x, y, infinite="clip")
    bound = (3 - 2) / math.sqrt(2)  # most negative finite g1 for n = 3
    assert clipped.gamma_prime == pytest.approx((0.0 + c1.gamma - bound) / 3)


def _synthetic():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 8))
    y = np.repeat(np.arange(3), 100)
    x[y == 1] += 1.5
    x[y == 2] += 3.0
    return x, y


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_seeded_synthetic_vector(dtype):
    x, y = _synthetic()
    s = kstar_summary(x, y, dtype=dtype, adjusted=True)
    assert s.kstar[:10].tolist() == [1, 81, 19, 75, 3, 1, 10, 27, 9, 7]
    expected = [(0.367300, 0.249278, 0.220553), (0.147900, 0.107390, 0.802978), (0.214300, 0.163066, 0.681819)]
    for stats, (mu, sigma, g1) in zip(s.classes, expected):
        assert (stats.mu, stats.sigma, stats.gamma) == pytest.approx((mu, sigma, g1), abs=5e-7)
    assert s.classes[0].adjusted_gamma == pytest.approx(0.223926, abs=5e-7)
    assert s.gamma_pooled == pytest.approx(1.009334, abs=5e-7)
    assert s.gamma_prime == pytest.approx(0.568450, abs=5e-7)
    np.testing.assert_array_equal(s.kstar, brute_force(x, y)[0])


def test_gamma_equals_scipy_skew(clustered_features):
    x, y = clustered_features(n_per_class=60, n_classes=4, dim=8, spread=1.5, seed=7)
    s = kstar_summary(x, y, adjusted=True)
    for c, stats in enumerate(s.classes):
        values = s.kstar_normalised[y == c]
        assert stats.gamma == pytest.approx(scipy.stats.skew(values), rel=1e-12, abs=1e-12)
        assert stats.adjusted_gamma == pytest.approx(scipy.stats.skew(values, bias=False), rel=1e-12)
        assert stats.sigma == pytest.approx(np.std(values), rel=1e-12)
    assert s.gamma_pooled == pytest.approx(scipy.stats.skew(s.kstar_normalised), rel=1e-12)
    raw = kstar_summary(x, y, pooling="raw")
    assert raw.gamma_pooled == pytest.approx(scipy.stats.skew(raw.kstar.astype(float)), rel=1e-12)


def test_skewness_zero_variance_rules():
    assert skewness(np.ones(5)) == -math.inf
    assert math.isnan(skewness(np.full(5, 0.4)))


def test_pattern_threshold_is_strict_and_configurable():
    from ldr_plugin.kstar import pattern_of

    assert pattern_of(0.5) == "Overlapped" and pattern_of(0.5000001) == "Fractured"
    assert pattern_of(-0.5) == "Overlapped" and pattern_of(-0.6) == "Clustered"
    assert pattern_of(0.3, threshold=0.2) == "Fractured"
    assert pattern_of(float("nan")) == "Overlapped"


def test_float32_near_tie_is_decided_in_float64(monkeypatch):
    # same-class at distance 1, other class at 1 + 3e-8: equal in float32, not in float64
    x = np.array([[0.0], [1.0], [-(1 + 3e-8)], [7.0], [9.0]])
    y = np.array([0, 0, 1, 1, 0])
    ref, _ = brute_force(x, y)
    assert ref[0] == 2
    result = kstar_search(x, y, dtype="float32")[0]
    np.testing.assert_array_equal(result.kstar, ref)
    assert result.n_recomputed >= 1
    from ldr_plugin.kstar import neighbors

    # without the guard, float32 sees a tie and the pessimistic rule gives the wrong k*
    monkeypatch.setattr(neighbors.SortedFeatures, "tolerance", lambda self, q: torch.zeros_like(q))
    assert kstar_search(x, y, dtype="float32")[0].kstar[0] == 1
