"""The exact backend's tiled products: every block and tile shape gives the brute-force k*."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from kstar_reference import brute_force

from ldr_plugin.kstar.inputs import prepare
from ldr_plugin.kstar.neighbors import exact_search, plan_blocks


def _uneven_grid(seed: int, kind: str = "grid"):
    """One large class and several small ones, so blocks of a few rows hold a class of their own,
    split it, and pack several small classes together. ``grid``: integer points (many exact ties);
    ``offset``: continuous points and one far outlier (float32's windows hold many near neighbours
    of both kinds, so many rows are decided in float64) with a few exact duplicates."""
    rng = np.random.default_rng(seed)
    sizes = [70, 3, 9, 2, 25, 12]
    y = np.repeat(np.arange(len(sizes)), sizes)
    rng.shuffle(y)
    if kind == "grid":
        return rng.integers(0, 3, size=(y.size, 3)).astype(np.float64), y
    x = rng.normal(size=(y.size, 4))
    x[:6:2] = x[1:6:2]
    x[7] = 600.0  # one far sample: the rounding bound (largest key norm) covers many near neighbours
    return x, y


@pytest.mark.parametrize("block_size,tile_cols", [(1, 1), (5, 3), (16, 7), (40, 1), (64, 200), (None, None)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind", ["grid", "offset"])
def test_any_block_and_tile_shape_equals_brute_force(block_size, tile_cols, dtype, kind):
    x, y = _uneven_grid(0, kind)
    ref, ref_ties = brute_force(x, y)
    assert ref_ties > 0 or kind == "offset"
    result = exact_search(prepare(x, y), dtype=dtype, block_size=block_size, tile_cols=tile_cols, progress=False)
    assert kind == "grid" or dtype == torch.float64 or result.n_recomputed > 30  # the float64 path is exercised
    np.testing.assert_array_equal(result.kstar, ref)
    assert int(result.ties.sum()) == ref_ties
    d = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    enemy = np.where(y[:, None] != y[None, :], d, np.inf).min(1)
    # rows not decided in float64 report the float32 product's e² (within the rounding bound)
    np.testing.assert_allclose(result.enemy_sq_distance, enemy, rtol=1e-9 if dtype == torch.float64 else 1e-4,
                               atol=1e-9 if dtype == torch.float64 else 1e-4)


def test_continuous_data_near_ties_decided_in_float64_with_small_tiles():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 5)) + 40.0  # large offset: float32 cancellation, many rows need the guard
    y = rng.integers(0, 4, size=200)
    x[10], y[10], y[11] = x[11], 0, 1
    ref, ref_ties = brute_force(x, y)
    result = exact_search(prepare(x, y), dtype=torch.float32, block_size=24, tile_cols=9, progress=False)
    np.testing.assert_array_equal(result.kstar, ref)
    assert int(result.ties.sum()) == ref_ties
    assert result.n_recomputed > 0  # the float64 path (candidates recomputed tile by tile) was taken


def test_rows_subset_equals_the_full_search_on_those_rows():
    x, y = _uneven_grid(1)
    full = exact_search(prepare(x, y), block_size=8, tile_cols=5, progress=False)
    rows = np.array([5, 0, 77, 120, 42, 3])
    part = exact_search(prepare(x, y), block_size=8, tile_cols=5, progress=False, rows_subset=rows)
    np.testing.assert_array_equal(part.kstar[rows], full.kstar[rows])
    np.testing.assert_array_equal(part.ties[rows], full.ties[rows])


@pytest.mark.parametrize("b", [1, 2, 7, 30, 200])
def test_plan_blocks_covers_every_query_once_in_class_segments(b):
    bounds = np.array([0, 70, 73, 82, 84, 109, 121])
    queries = np.arange(121)
    blocks = plan_blocks(queries, bounds, b)
    np.testing.assert_array_equal(np.concatenate([rows for rows, _ in blocks]), queries)
    for rows, segments in blocks:
        assert rows.size <= b
        assert [seg[0] for seg in segments] == [0] + [seg[1] for seg in segments[:-1]] and segments[-1][1] == rows.size
        for a, z, s, e in segments:
            assert np.all((rows[a:z] >= s) & (rows[a:z] < e))
        sizes = [bounds[i + 1] - bounds[i] for i in range(6) if any(s == bounds[i] for _, _, s, _ in segments)]
        if len(segments) > 1:  # packed blocks hold small classes only
            assert all(4 * size < b for size in sizes)
