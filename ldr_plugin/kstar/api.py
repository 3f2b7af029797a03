"""The public k* functions: one search entry point over the exact and approximate backends."""

from __future__ import annotations

import inspect
import logging
import math
import time
from typing import Any

import numpy as np
import torch

from ldr_plugin.errors import LdrError
from ldr_plugin.kstar.distance import apply_distance, check_distance
from ldr_plugin.kstar.inputs import prepare
from ldr_plugin.kstar.neighbors import SearchResult, exact_search
from ldr_plugin.kstar.stats import KStarSummary, summarise

LOG = logging.getLogger(__name__)
BACKENDS = ("exact", "hnsw", "screened", "faiss")
_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _dtype(dtype: str | torch.dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in _DTYPES:
        raise LdrError(f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")
    return _DTYPES[dtype]


def _distance_bound(features: torch.Tensor) -> tuple[float, float]:
    """(max|x|, an upper bound of every squared distance between centred rows)."""
    if not torch.is_floating_point(features) or features.numel() == 0:
        return 0.0, 0.0
    largest = float(features.abs().max())
    return largest, 16.0 * largest * largest * features.shape[1] if math.isfinite(largest) else math.inf


def safe_dtype(features: torch.Tensor, dtype: torch.dtype) -> torch.dtype:
    """The compute dtype in which no squared distance of ``features`` overflows: ``dtype``, else float64.

    Centred features are at most ``2·max|x|`` apart per dimension, so every squared distance (and
    norm) is below ``16·max|x|²·d``. float32 overflows there from ``max|x|`` ≈ 4.6e18/√d (a silent
    ``inf`` that makes Γ′ undefined); such features are computed in float64, and features too large
    even for float64 are bad input. Example: ``safe_dtype(torch.full((2, 4), 1e30), torch.float32)``
    is ``torch.float64``.
    """
    largest, bound = _distance_bound(features)
    if bound < torch.finfo(dtype).max:
        return dtype
    if bound < torch.finfo(torch.float64).max:
        LOG.warning("features as large as %.3g overflow squared distances in %s; computing in float64",
                    largest, str(dtype).removeprefix("torch."))
        return torch.float64
    raise LdrError(f"features as large as {largest:.3g} overflow squared distances even in float64; "
                   "rescale them (k* does not change under a common scale factor)")


def kstar_search(
    features: Any,
    labels: Any,
    *,
    backend: str = "exact",
    dtype: str | torch.dtype = "float32",
    block_size: int | None = None,
    device: str | torch.device | None = None,
    class_names: Any = None,
    progress: bool | None = None,
    distance: str = "euclidean",
    **backend_options: Any,
) -> tuple[SearchResult, Any]:
    """Validate inputs and run a backend; returns (SearchResult, prepared inputs).

    ``features``: numpy array or torch tensor [N, d] (a tensor's device is used, CUDA included);
    ``labels``: N integers or strings. ``distance``: "euclidean" (the papers'), "cosine" or
    "mahalanobis" (see :mod:`ldr_plugin.kstar.distance`; recorded in ``result.info["distance"]``).
    ``backend_options`` go to the approximate backend
    (``hnsw``: :func:`~ldr_plugin.kstar.approximate.hnsw_search`; ``screened``:
    :func:`~ldr_plugin.kstar.screened.screened_search`) or to ``faiss`` (exact, optional:
    :func:`~ldr_plugin.kstar.faiss_search.faiss_search`).
    """
    if backend not in BACKENDS:
        raise LdrError(f"unknown k* backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    check_distance(distance)
    prep = prepare(features, labels, class_names=class_names, device=device)
    prep, distance_info = apply_distance(prep, distance)
    dtype = safe_dtype(prep.features, _dtype(dtype))
    if backend == "exact":
        if backend_options:
            raise LdrError(f"options {sorted(backend_options)} apply to an approximate backend, not 'exact'")
        result = exact_search(prep, dtype=dtype, block_size=block_size, progress=progress)
        result.info["distance"] = distance_info
        result.info["dtype"] = str(dtype).removeprefix("torch.")
        return result, prep
    if backend == "hnsw" and _distance_bound(prep.features)[1] >= torch.finfo(torch.float32).max:  # hnswlib searches in float32 whatever the dtype
        raise LdrError("features this large overflow hnswlib's float32 distances; use --backend exact or screened")
    if backend == "hnsw":  # approximate backends are imported only when used (hnswlib)
        from ldr_plugin.kstar.approximate import hnsw_search as search
    elif backend == "faiss":
        from ldr_plugin.kstar.faiss_search import faiss_search as search  # (faiss: optional)
    else:
        from ldr_plugin.kstar.screened import screened_search as search  # (as above)
    accepted = set(inspect.signature(search).parameters) - {"prep", "dtype", "block_size", "progress"}
    unknown = sorted(set(backend_options) - accepted)
    if unknown:
        raise LdrError(f"k* backend {backend!r} has no option(s) {unknown}; its options: {sorted(accepted)}")
    result = search(prep, dtype=dtype, block_size=block_size, progress=progress, **backend_options)
    result.info["distance"] = distance_info
    result.info["dtype"] = str(dtype).removeprefix("torch.")
    return result, prep


def kstar_values(features: Any, labels: Any, *, backend: str = "exact", **options: Any) -> np.ndarray:
    """Raw k* per sample (int64, input order): 1 + same-class samples strictly nearer than the nearest
    other-class sample. Options: ``distance`` ("euclidean"/"cosine"/"mahalanobis"), ``dtype``
    ("float32"/"float64"), ``block_size``, ``device``."""
    return kstar_search(features, labels, backend=backend, **options)[0].kstar


def kstar_tie_count(features: Any, labels: Any, *, backend: str = "exact", **options: Any) -> int:
    """Samples with a same-class sample at exactly the nearest other-class distance (pessimistic ties)."""
    return int(kstar_search(features, labels, backend=backend, **options)[0].ties.sum())


def kstar_summary(
    features: Any,
    labels: Any,
    *,
    backend: str = "exact",
    threshold: float = 0.5,
    adjusted: bool = False,
    infinite: str = "exclude",
    pooling: str = "normalised",
    **options: Any,
) -> KStarSummary:
    """Per-class n, μ, σ, γ, pattern plus Γ, Γ′, μ, pattern and tie counts (spec §2–3).

    ``threshold``: pattern threshold t (strict); ``adjusted``: also report G1; ``infinite``:
    "exclude" (count classes with infinite/undefined γ and leave them out of Γ′), "clip" or
    "notebook" (the k* authors' rule, :func:`~ldr_plugin.kstar.stats.notebook_gammas`);
    ``pooling``: Γ over normalised k̂* ("normalised") or raw k* ("raw"). Other options
    (``distance``, ``dtype``, backend options …) as :func:`kstar_search`.

    >>> import numpy as np
    >>> x = np.array([[0.], [1.], [2.], [3.], [2.6], [10.], [11.], [12.]])
    >>> s = kstar_summary(x, [0] * 4 + [1] * 4)
    >>> round(s.gamma_prime, 4), s.distance, s.class_skew["range"] > 1
    (-0.5774, 'euclidean', True)
    """
    if not (isinstance(threshold, (int, float)) and math.isfinite(threshold) and threshold >= 0):
        raise LdrError(f"the pattern threshold must be a finite number >= 0, got {threshold!r}")
    start = time.perf_counter()
    result, prep = kstar_search(features, labels, backend=backend, **options)
    elapsed = time.perf_counter() - start
    summary = summarise(
        result.kstar,
        prep.codes,
        prep.class_names,
        n_ties=int(result.ties.sum()),
        threshold=threshold,
        adjusted=adjusted,
        infinite=infinite,
        pooling=pooling,
    )
    summary.backend = result.backend
    info = dict(result.info)
    summary.distance_info = info.pop("distance")
    summary.distance = summary.distance_info["distance"]
    summary.search = {**info, "n_recomputed_float64": result.n_recomputed, "seconds": elapsed}
    summary.distance_from_exact = info.get("distance_from_exact")
    return summary
