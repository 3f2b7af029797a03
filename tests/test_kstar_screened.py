"""screened backend: exact with every candidate, never below exact, close with few, deterministic."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from kstar_reference import blobs, brute_force

from ldr_plugin.errors import LdrError
from ldr_plugin.kstar import kstar_search, kstar_summary
from ldr_plugin.kstar.screened import kmeans_cells


@pytest.fixture(scope="module")
def data():
    return blobs()


def test_every_candidate_is_exact(data):
    x, y = data
    approx = kstar_search(x, y, backend="screened", candidates=1.0, cell_size=50, check=0)[0]
    np.testing.assert_array_equal(approx.kstar, brute_force(x, y)[0])


def test_few_candidates_never_below_exact_and_close(data):
    x, y = data
    exact = kstar_search(x, y)[0]
    approx = kstar_search(x, y, backend="screened", candidates=0.3, cell_size=60, check=400)[0]
    assert np.all(approx.kstar >= exact.kstar)  # the sample found is a real other-class sample
    assert np.all(approx.enemy_sq_distance >= exact.enemy_sq_distance * (1 - 1e-5))  # exact's is float32
    assert np.mean(approx.kstar == exact.kstar) >= 0.9
    report = approx.info["distance_from_exact"]
    assert report["n_checked"] == 400
    assert report["agreement"] >= 0.85
    # fewer candidates cannot find more: agreement falls as the candidate fraction shrinks
    tiny = kstar_search(x, y, backend="screened", candidates=0.02, cell_size=60, check=0)[0]
    assert np.mean(tiny.kstar == exact.kstar) < np.mean(approx.kstar == exact.kstar)


def test_summary_close_and_reports(data):
    x, y = data
    exact = kstar_summary(x, y)
    approx = kstar_summary(x, y, backend="screened", candidates=0.5, check=5000)
    assert approx.backend == "screened"
    assert abs(approx.gamma_prime - exact.gamma_prime) <= 0.02
    assert approx.distance_from_exact["n_checked"] == 1500
    assert approx.distance_from_exact["agreement"] == pytest.approx(np.mean(approx.kstar == exact.kstar))
    assert set(approx.search["timings_s"]) >= {"cells", "rank", "search", "same_class_count"}


def test_deterministic_for_a_seed(data):
    x, y = data
    a = kstar_search(x, y, backend="screened", candidates=0.1, seed=4, check=0)[0]
    b = kstar_search(x, y, backend="screened", candidates=0.1, seed=4, check=0)[0]
    np.testing.assert_array_equal(a.kstar, b.kstar)
    np.testing.assert_array_equal(a.enemy_sq_distance, b.enemy_sq_distance)


def test_duplicates_and_ties_are_exact():
    rng = np.random.default_rng(5)
    x = rng.integers(0, 3, size=(200, 2)).astype(np.float64)
    y = rng.integers(0, 3, size=200)
    exact = kstar_search(x, y)[0]
    approx = kstar_search(x, y, backend="screened", candidates=1.0, dtype="float64")[0]
    np.testing.assert_array_equal(approx.kstar, brute_force(x, y)[0])
    assert approx.ties.sum() == exact.ties.sum() > 0


def test_kmeans_cells_matches_lloyd_reference():
    rng = np.random.default_rng(2)
    x = torch.as_tensor(rng.normal(size=(300, 5)))
    centroids, cell = kmeans_cells(x, 4, iters=3, seed=0)
    init = x[torch.randperm(300, generator=torch.Generator().manual_seed(0))[:4]].numpy()
    c = init.copy()
    for _ in range(3):  # plain numpy Lloyd
        a = ((x.numpy()[:, None] - c[None]) ** 2).sum(-1).argmin(1)
        c = np.stack([x.numpy()[a == j].mean(0) if (a == j).any() else c[j] for j in range(4)])
    np.testing.assert_allclose(centroids.numpy(), c, atol=1e-9)
    np.testing.assert_array_equal(cell.numpy(), ((x.numpy()[:, None] - c[None]) ** 2).sum(-1).argmin(1))


def test_options_are_checked(data):
    x, y = data
    with pytest.raises(LdrError, match="candidates must be a fraction"):
        kstar_search(x, y, backend="screened", candidates=0)
    with pytest.raises(LdrError, match="has no option"):
        kstar_search(x, y, backend="screened", ef=3)


@pytest.mark.parametrize("w", [1, 7, 64, 1000])
def test_nearest_over_key_tiles_equals_one_argmin(w):
    """The screened search's tiled minimum (any tile width) = the minimum of the whole row of D'."""
    from ldr_plugin.kstar.inputs import prepare
    from ldr_plugin.kstar.neighbors import SortedFeatures
    from ldr_plugin.kstar.screened import _nearest

    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 9))
    sf = SortedFeatures(prepare(x, np.arange(300) % 3), torch.float64)
    q, keys = sf.x[:40], sf.x[100:]
    buffer = torch.empty(40 * w, dtype=torch.float64)
    value, arg = _nearest(sf, q, keys, sf.key_norms[100:], w, buffer)
    full = sf.key_norms[100:] - 2 * q @ keys.T
    np.testing.assert_allclose(value.numpy(), full.min(1).values.numpy(), rtol=1e-12)
    np.testing.assert_array_equal(arg.numpy(), full.argmin(1).numpy())  # continuous data: no ties
