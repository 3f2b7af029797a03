"""k* under each distance against a brute-force reference built from scipy's cdist with that metric."""

from __future__ import annotations

import numpy as np
import pytest
from kstar_reference import brute_force_from_distances
from scipy.spatial.distance import cdist
from sklearn.covariance import LedoitWolf

from ldr_plugin.errors import LdrError
from ldr_plugin.kstar import kstar_search, kstar_summary, kstar_values
from ldr_plugin.kstar.distance import DISTANCES


def _anisotropic(seed: int, n: int = 240, d: int = 6, c: int = 4):
    """Classes with different means, correlated features of very different scales, varying norms."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, size=n)
    y[:c] = np.arange(c)
    mix = rng.normal(size=(d, d)) * np.geomspace(0.1, 10, d)
    x = (rng.normal(size=(n, d)) + rng.normal(scale=1.5, size=(c, d))[y]) @ mix
    return x * rng.uniform(0.5, 2.0, size=(n, 1)), y  # row scales: cosine differs from Euclidean


def shrunk_within_class_covariance(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The spec'd Mahalanobis covariance, computed independently: class-centred samples, S = RᵀR/N,
    Ledoit–Wolf shrinkage δ from sklearn's estimator, Σ = (1 − δ)S + δ·tr(S)/d·I."""
    resid = x.astype(np.float64).copy()
    for c in np.unique(y):
        resid[y == c] -= resid[y == c].mean(0)
    s = resid.T @ resid / len(y)
    delta = LedoitWolf(assume_centered=True).fit(resid).shrinkage_
    return (1 - delta) * s + delta * np.trace(s) / x.shape[1] * np.eye(x.shape[1])


def reference(x, y, distance):
    if distance == "euclidean":
        return brute_force_from_distances(cdist(x, x, "sqeuclidean"), y)
    if distance == "cosine":
        return brute_force_from_distances(cdist(x, x, "cosine"), y)
    vi = np.linalg.inv(shrunk_within_class_covariance(x, y))
    return brute_force_from_distances(cdist(x, x, "mahalanobis", VI=vi), y)


@pytest.mark.parametrize("distance", DISTANCES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("seed", [0, 1])
def test_exact_matches_cdist_brute_force(distance, dtype, seed):
    x, y = _anisotropic(seed)
    ref, ties = reference(x, y, distance)
    result = kstar_search(x, y, distance=distance, dtype=dtype, block_size=37)[0]
    np.testing.assert_array_equal(result.kstar, ref)
    assert int(result.ties.sum()) == ties


def test_the_distances_do_rank_differently_on_this_data():
    x, y = _anisotropic(0)
    ks = {d: kstar_values(x, y, distance=d) for d in DISTANCES}
    assert not np.array_equal(ks["euclidean"], ks["cosine"])
    assert not np.array_equal(ks["euclidean"], ks["mahalanobis"])


@pytest.mark.parametrize("distance", DISTANCES)
@pytest.mark.parametrize("backend", ["screened", "hnsw", "faiss"])
def test_every_backend_takes_the_distance(distance, backend):
    pytest.importorskip("faiss") if backend == "faiss" else None
    x, y = _anisotropic(2, n=300)
    ref, _ = reference(x, y, distance)
    options = {"screened": {"candidates": 1.0, "check": 0}, "hnsw": {"check": 0}, "faiss": {"k": 8}}[backend]
    result = kstar_search(x, y, distance=distance, backend=backend, **options)[0]
    assert result.info["distance"]["distance"] == distance
    if backend == "hnsw":  # approximate: only the nearest other-class distance can be too large
        assert np.all(result.kstar >= ref) and np.mean(result.kstar == ref) > 0.95
    else:  # screened with every candidate, and faiss, are exact
        np.testing.assert_array_equal(result.kstar, ref)


def test_mahalanobis_with_fewer_samples_than_dimensions_is_defined():
    rng = np.random.default_rng(5)
    y = np.repeat(np.arange(3), 10)
    x = rng.normal(size=(30, 50)) + rng.normal(size=(3, 50))[y]  # N = 30 < d = 50: S is singular
    s = kstar_summary(x, y, distance="mahalanobis")
    assert 0 < s.distance_info["shrinkage"] <= 1
    assert "Ledoit-Wolf" in s.distance_info["covariance"]
    np.testing.assert_array_equal(s.kstar, reference(x, y, "mahalanobis")[0])


def test_mahalanobis_is_invariant_to_rotation_and_scale_of_the_features():
    # the shrinkage target tr(S)/d·I turns with the data, so rotating or scaling changes nothing
    # (an arbitrary linear map would: Ledoit–Wolf is not affine-equivariant, only unshrunk Σ is)
    x, y = _anisotropic(3)
    q, _ = np.linalg.qr(np.random.default_rng(9).normal(size=(6, 6)))
    np.testing.assert_array_equal(kstar_values(x, y, distance="mahalanobis", dtype="float64"),
                                  kstar_values(3.7 * x @ q, y, distance="mahalanobis", dtype="float64"))


def test_cosine_ignores_row_scale_by_powers_of_two():
    x, y = _anisotropic(4)
    scales = 2.0 ** np.random.default_rng(1).integers(-3, 4, size=(len(y), 1))
    np.testing.assert_array_equal(kstar_values(x, y, distance="cosine"), kstar_values(x * scales, y, distance="cosine"))


def test_cosine_zero_vector_is_an_error_naming_the_rows():
    x, y = _anisotropic(0, n=40)
    x[[3, 17]] = 0.0
    with pytest.raises(LdrError, match=r"2 row\(s\) are all zeros \(rows \[3, 17\]\)"):
        kstar_values(x, y, distance="cosine")


def test_mahalanobis_without_within_class_variance_is_an_error():
    x = np.repeat(np.eye(3), 4, axis=0)  # every class is one point, repeated
    with pytest.raises(LdrError, match="within-class covariance is zero"):
        kstar_values(x, np.repeat(np.arange(3), 4), distance="mahalanobis")


def test_unknown_distance_is_an_error():
    with pytest.raises(LdrError, match="unknown k\\* distance 'manhattan'"):
        kstar_values(np.eye(4), [0, 0, 1, 1], distance="manhattan")


def test_summary_and_detail_record_the_distance():
    from ldr_plugin.kstar.report import summary_detail, summary_table

    x, y = _anisotropic(0, n=60)
    for distance in DISTANCES:
        s = kstar_summary(x, y, distance=distance)
        assert s.distance == distance and summary_detail(s)["distance"] == distance
        assert f"distance = {distance}" in summary_table(s)
        assert "distance" not in s.search
