"""Feature extraction with a progress bar, cached on disk per (model, dataset, layer, preprocessing).

The cache key is a hash of the model id, a fingerprint of its weights files (path, size, mtime),
the dataset description (spec, split, subsample seed, chosen indices), the layer and the
preprocessing (the host's own for that id). A warm cache returns the stored arrays without
loading the model or running any forward pass. Cache files are written atomically.
"""

from __future__ import annotations

import hashlib
import json
import time
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ldr_plugin.errors import LdrError
from ldr_plugin.results import atomic_write_with
from ldr_plugin.scoring.datasets import ScoringData
from ldr_plugin.scoring.extraction import extract, to_input
from ldr_plugin.sources.base import LoadedModel

CACHE_VERSION = 2  # 2: predictions of the accuracy head stored beside the features


@dataclass
class FeatureSet:
    """Features [N, d] float32 with their labels, how they were made, and whether they came from cache."""

    features: np.ndarray
    labels: np.ndarray
    layer: str
    preprocessing: dict[str, Any]
    from_cache: bool
    seconds: float
    cache_path: Path | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    predictions: np.ndarray | None = None  # the accuracy head's top-1 class per sample, same forward pass


def cache_key(model_id: str, data: ScoringData, layer: str, weights: list[str], amp: bool = False) -> str:
    """A hex digest naming one (model, weights, dataset subsample, layer, host preprocessing, precision)."""
    payload = {
        "v": CACHE_VERSION,
        "model_id": model_id,
        "weights": weights,
        "data": {k: v for k, v in data.describe().items() if k != "n_per_class"},
        "indices": hashlib.sha256(np.ascontiguousarray(data.indices).tobytes()).hexdigest(),
        "layer": layer,
        "preprocessing": "host-default",
        **({"precision": "amp"} if amp else {}),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:24]


def weights_fingerprint(files: list[str]) -> list[str]:
    """``path:size:mtime_ns`` per file, so replacing a checkpoint invalidates its cached features."""
    out = []
    for name in files:
        path = Path(name)
        stat = path.stat() if path.exists() else None
        out.append(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}" if stat else f"{path}:absent")
    return out


_to_input = to_input  # the name benchmarks and older callers use


def extract_features(
    loaded: LoadedModel, data: ScoringData, layer: str, *, batch_size: int = 64,
    device: str | torch.device = "cpu", progress: bool = True, num_workers: int | None = None,
) -> np.ndarray:
    """Run ``loaded`` over every sample of ``data`` (in order) and return ``[N, d]`` float32 features."""
    return extract(loaded, data, (layer,), batch_size=batch_size, device=device, progress=progress,
                   measure_accuracy=False, num_workers=num_workers).features[layer]


def _read_cache(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            predictions = npz["predictions"] if "predictions" in npz.files else None
            return {"features": npz["features"], "labels": npz["labels"], "meta": json.loads(str(npz["meta"])),
                    "predictions": None if predictions is None or predictions.size == 0 else predictions}
    except (OSError, ValueError, KeyError, EOFError, MemoryError, zipfile.BadZipFile, zlib.error, TypeError):
        return None  # a damaged cache file (header, member, metadata, a torn zip) is recomputed and replaced


def get_features(
    model_id: str, data: ScoringData, layer: str, *, load_model: Callable[[], LoadedModel],
    weights_files: list[str], cache_dir: str | Path | None, batch_size: int = 64,
    device: str | torch.device = "cpu", progress: bool = True, extra_layers: tuple[str, ...] = (),
    num_workers: int | None = None, amp: bool = False,
) -> FeatureSet:
    """Cached features of (model, data, layer); ``load_model`` is called only on a cache miss.

    On a miss the ``extra_layers`` not cached yet come from the same forward pass and are cached
    too, so scoring several layers of one model on one dataset runs the model once.
    """
    fingerprint = weights_fingerprint(weights_files)
    paths = {name: Path(cache_dir) / f"{cache_key(model_id, data, name, fingerprint, amp)}.npz"
             if cache_dir is not None else None for name in dict.fromkeys((layer, *extra_layers))}
    cached = _read_cache(paths[layer]) if paths[layer] is not None else None
    if cached is not None and np.array_equal(cached["labels"], data.labels):
        meta = cached["meta"]
        return FeatureSet(cached["features"], cached["labels"], layer, meta["preprocessing"], True, 0.0, paths[layer],
                          meta, cached["predictions"])
    start = time.perf_counter()
    loaded = load_model()
    todo = [layer] + [name for name, path in paths.items() if name != layer and path is not None
                      and name in loaded.layers and _read_cache(path) is None]
    got = extract(loaded, data, tuple(todo), batch_size=batch_size, device=device, progress=progress,
                  num_workers=num_workers, amp=amp)
    seconds = time.perf_counter() - start
    meta = {"model_id": model_id, "preprocessing": loaded.preprocessing, "dataset": data.describe(),
            "extract_seconds": seconds, "source_detail": _jsonable(loaded.detail), "accuracy": got.accuracy,
            "precision": "amp" if amp else "fp32", "layers_of_the_pass": todo}
    for name in todo:
        if paths[name] is not None:
            _write_cache(paths[name], got.features[name], data.labels, {**meta, "layer": name}, got.predictions)
    return FeatureSet(got.features[layer], data.labels, layer, loaded.preprocessing, False, seconds, paths[layer],
                      {**meta, "layer": layer}, got.predictions)


def _write_cache(path: Path, features: np.ndarray, labels: np.ndarray, meta: dict[str, Any],
                 predictions: np.ndarray | None) -> None:
    text = json.dumps(meta, sort_keys=True, default=str)
    stored = predictions if predictions is not None else np.zeros(0, np.int64)
    try:
        atomic_write_with(path, lambda h: np.savez(h, features=features, labels=labels, meta=np.array(text),
                                                   predictions=stored))
    except OSError as exc:  # disk full, read-only cache: nothing partial is left behind
        raise LdrError(f"cannot write the feature cache {path}: {exc.strerror or exc}") from exc


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))
