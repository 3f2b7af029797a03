"""The exact backend's rounding bound holds against float64, and the faiss backend equals brute force."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from kstar_reference import blobs, brute_force

from ldr_plugin.errors import LdrError
from ldr_plugin.kstar import kstar_search
from ldr_plugin.kstar.inputs import prepare
from ldr_plugin.kstar.neighbors import SortedFeatures


def _cases():
    rng = np.random.default_rng(0)
    yield "unit", rng.normal(size=(300, 16)).astype(np.float32)
    yield "offset", (rng.normal(size=(300, 16)) + 1e3).astype(np.float32)  # cancellation in |x|² − 2q·x
    yield "scales", (rng.normal(size=(300, 40)) * np.geomspace(1e-3, 1e3, 40)).astype(np.float32)
    yield "wide", rng.normal(size=(200, 700)).astype(np.float32)
    yield "relu", np.maximum(rng.normal(size=(300, 64)) @ rng.normal(size=(64, 64)), 0).astype(np.float32)
    yield "one_dim", rng.normal(size=(300, 1)) * 1e-20  # tiny values: the underflow term
    yield "float64", rng.normal(size=(300, 16)) * rng.uniform(0.1, 10, size=(300, 1))


@pytest.mark.parametrize("name,x", list(_cases()), ids=[c[0] for c in _cases()])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_every_computed_entry_is_within_the_bound(name, x, dtype):
    """|computed D' − (float64 reference |f_q − f_j|² − |q|²)| ≤ τ(|q|, max |x|) for every pair."""
    y = np.arange(len(x)) % 3
    sf = SortedFeatures(prepare(x, y), dtype)
    computed = sf.product(sf.x, sf.columns()).double()
    f = torch.as_tensor(x, dtype=torch.float64)[torch.as_tensor(sf.prep.order)]
    reference = ((f[:, None, :] - f[None, :, :]) ** 2).sum(-1) - sf.sq_norms[:, None]
    tau = sf.tolerance(sf.sq_norms)
    error = (computed - reference).abs()
    assert bool((error <= tau[:, None]).all()), float((error / tau[:, None]).max())
    assert float((error / tau[:, None]).max()) > 1e-4  # the bound is not vacuous (nor absurdly loose)


def test_features_too_large_for_float32_are_searched_in_float64_not_inf():
    x = np.array([[0.0], [1e20], [2e20], [3e20]])
    result = kstar_search(x, [0, 0, 1, 1])[0]  # float32 asked for: squared distances would overflow
    assert result.info["dtype"] == "float64" and result.kstar.tolist() == [2, 1, 1, 2]
    assert kstar_search(x, [0, 0, 1, 1], dtype="float64")[0].kstar.tolist() == [2, 1, 1, 2]


def _grid(seed: int, n: int = 150, d: int = 3, c: int = 4):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 3, size=(n, d)).astype(np.float64)  # exact duplicates within and across classes
    y = rng.integers(0, c, size=n)
    y[:c] = np.arange(c)
    return x, y


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("k", [1, 3, 16, 400])
def test_faiss_backend_equals_brute_force_with_duplicates_and_ties(seed, k):
    pytest.importorskip("faiss")
    x, y = _grid(seed)
    ref, ties = brute_force(x, y)
    assert ties > 0
    result = kstar_search(x, y, backend="faiss", k=k)[0]
    np.testing.assert_array_equal(result.kstar, ref)
    assert int(result.ties.sum()) == ties
    info = result.info["faiss"]
    assert info["settled_by_faiss"] + info["exact_fallback_rows"] == len(y)


@pytest.mark.parametrize("spread", [0.05, 0.6, 3.0])
def test_faiss_backend_settles_small_kstar_rows_itself(spread):
    pytest.importorskip("faiss")
    rng = np.random.default_rng(3)
    y = rng.integers(0, 5, size=800)
    x = (rng.normal(size=(800, 12)) + rng.normal(scale=spread, size=(5, 12))[y]).astype(np.float32)
    ref, _ = brute_force(x, y)
    result = kstar_search(x, y, backend="faiss", k=16)[0]
    np.testing.assert_array_equal(result.kstar, ref)
    settled = result.info["faiss"]["settled_by_faiss"]
    assert settled >= np.sum(ref <= 8)  # every row with a small k* is settled from its list...
    assert settled <= np.sum(ref <= 16)  # ...and no row whose k* exceeds the list


def test_faiss_backend_bad_options():
    pytest.importorskip("faiss")
    x, y = blobs(60, 4, 3)
    with pytest.raises(LdrError, match="k must be at least 1"):
        kstar_search(x, y, backend="faiss", k=0)
    with pytest.raises(LdrError, match="has no option"):
        kstar_search(x, y, backend="faiss", candidates=0.5)


def test_a_callers_reduced_matmul_precision_is_overridden_and_restored():
    x = np.random.default_rng(0).normal(size=(300, 24)).astype(np.float32) + 30.0
    y = np.arange(300) % 3
    ref, _ = brute_force(x, y)
    before = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("medium")  # would allow TF32 / bfloat16 products
        for backend, options in (("exact", {}), ("screened", {"candidates": 1.0, "check": 0})):
            np.testing.assert_array_equal(kstar_search(x, y, backend=backend, **options)[0].kstar, ref)
            assert torch.get_float32_matmul_precision() == "medium"
    finally:
        torch.set_float32_matmul_precision(before)
