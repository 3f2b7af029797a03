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
from ldr_plugin.sources.base import LoadedModel

CACHE_VERSION = 1


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


def cache_key(model_id: str, data: ScoringData, layer: str, weights: list[str]) -> str:
    """A hex digest naming one (model, weights, dataset subsample, layer, host preprocessing)."""
    payload = {
        "v": CACHE_VERSION,
        "model_id": model_id,
        "weights": weights,
        "data": {k: v for k, v in data.describe().items() if k != "n_per_class"},
        "indices": hashlib.sha256(np.ascontiguousarray(data.indices).tobytes()).hexdigest(),
        "layer": layer,
        "preprocessing": "host-default",
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


def _to_input(sample: Any, transform: Callable | None) -> torch.Tensor:
    if isinstance(sample, torch.Tensor):
        if transform is None:
            return sample
        from torchvision.transforms.functional import to_pil_image

        image = to_pil_image(sample)
        sample = image.convert("RGB") if image.mode != "RGB" else image
    elif transform is None:
        from torchvision.transforms.functional import to_tensor

        return to_tensor(sample)
    elif getattr(sample, "mode", "RGB") != "RGB":
        sample = sample.convert("RGB")
    return transform(sample)


def extract_features(
    loaded: LoadedModel, data: ScoringData, layer: str, *, batch_size: int = 64,
    device: str | torch.device = "cpu", progress: bool = True,
) -> np.ndarray:
    """Run ``loaded`` over every sample of ``data`` (in order) and return ``[N, d]`` float32 features."""
    from tqdm.auto import tqdm

    layer = loaded.check_layer(layer)
    parts = []
    bar = tqdm(total=len(data), desc=f"features {loaded.model_id} [{layer}]", unit="img", disable=not progress)
    with torch.inference_mode():
        for start in range(0, len(data), batch_size):
            batch = [_to_input(data.samples[i], loaded.transform) for i in range(start, min(start + batch_size, len(data)))]
            images = torch.stack(batch).to(device)
            try:
                parts.append(loaded.extract(images, (layer,))[layer].numpy())
            except (RuntimeError, ValueError) as exc:
                raise LdrError(
                    f"model {loaded.model_id} failed on dataset {data.spec} (input batch {tuple(images.shape)}, "
                    f"preprocessing {loaded.preprocessing.get('name', loaded.preprocessing)}): "
                    f"{str(exc).splitlines()[0]}; is the dataset the one this model expects?"
                ) from exc
            bar.update(len(batch))
    bar.close()
    if not parts:
        raise LdrError(f"dataset {data.spec} has no samples")
    return np.concatenate(parts).astype(np.float32, copy=False)


def _read_cache(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {"features": npz["features"], "labels": npz["labels"], "meta": json.loads(str(npz["meta"]))}
    except (OSError, ValueError, KeyError, EOFError, MemoryError, zipfile.BadZipFile, zlib.error):
        return None  # a damaged cache file (a bad header, a torn zip, ...) is recomputed and replaced


def get_features(
    model_id: str, data: ScoringData, layer: str, *, load_model: Callable[[], LoadedModel],
    weights_files: list[str], cache_dir: str | Path | None, batch_size: int = 64,
    device: str | torch.device = "cpu", progress: bool = True,
) -> FeatureSet:
    """Cached features of (model, data, layer); ``load_model`` is called only on a cache miss."""
    key = cache_key(model_id, data, layer, weights_fingerprint(weights_files))
    path = Path(cache_dir) / f"{key}.npz" if cache_dir is not None else None
    cached = _read_cache(path) if path is not None else None
    if cached is not None and np.array_equal(cached["labels"], data.labels):
        meta = cached["meta"]
        return FeatureSet(cached["features"], cached["labels"], layer, meta["preprocessing"], True, 0.0, path, meta)
    start = time.perf_counter()
    loaded = load_model()
    features = extract_features(loaded, data, layer, batch_size=batch_size, device=device, progress=progress)
    seconds = time.perf_counter() - start
    meta = {"model_id": model_id, "layer": layer, "preprocessing": loaded.preprocessing,
            "dataset": data.describe(), "extract_seconds": seconds, "source_detail": _jsonable(loaded.detail)}
    if path is not None:
        text = json.dumps(meta, sort_keys=True, default=str)
        try:
            atomic_write_with(path, lambda h: np.savez(h, features=features, labels=data.labels, meta=np.array(text)))
        except OSError as exc:  # disk full, read-only cache: nothing partial is left behind
            raise LdrError(f"cannot write the feature cache {path}: {exc.strerror or exc}") from exc
    return FeatureSet(features, data.labels, layer, loaded.preprocessing, False, seconds, path, meta)


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))
