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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ldr_plugin.errors import DatasetError, LdrError
from ldr_plugin.results import atomic_write_with
from ldr_plugin.scoring.datasets import ScoringData
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


@dataclass
class Extraction:
    """Features of one layer and, when the model can classify the dataset, its top-1 predictions."""

    features: np.ndarray
    predictions: np.ndarray | None
    accuracy: dict[str, Any]  # how the predictions were made, or why there are none


def extract(
    loaded: LoadedModel, data: ScoringData, layer: str, *, batch_size: int = 64,
    device: str | torch.device = "cpu", progress: bool = True, measure_accuracy: bool = True,
) -> Extraction:
    """Run ``loaded`` over every sample of ``data`` (in order): ``[N, d]`` float32 features of
    ``layer`` and the accuracy head's top-1 predictions, both from one forward pass per batch."""
    from tqdm.auto import tqdm

    layer = loaded.check_layer(layer)
    head = loaded.head_for(data.class_names) if measure_accuracy else None
    about: dict[str, Any] = {"kind": head.kind, "layer": head.layer} if head else {"not_measured": "no classification head"}
    layers = tuple(dict.fromkeys((layer, head.layer))) if head else (layer,)
    check_input_size(loaded, data)
    parts, predicted = [], []
    bar = tqdm(total=len(data), desc=f"features {loaded.model_id} [{layer}]", unit="img", disable=not progress)
    with torch.inference_mode():
        for start in range(0, len(data), batch_size):
            batch = [_to_input(data.samples[i], loaded.transform) for i in range(start, min(start + batch_size, len(data)))]
            images = torch.stack(batch).to(device)
            try:
                out = loaded.extract(images, layers)
            except (RuntimeError, ValueError) as exc:
                raise LdrError(
                    f"model {loaded.model_id} failed on dataset {data.spec} (input batch {tuple(images.shape)}, "
                    f"preprocessing {loaded.preprocessing.get('name', loaded.preprocessing)}): "
                    f"{str(exc).splitlines()[0]}; is the dataset the one this model expects?"
                ) from exc
            parts.append(out[layer].numpy())
            if head is not None:
                scores = head.scores(out[head.layer])
                if scores.shape[1] != len(data.class_names):  # e.g. a 1000-class head on a 5-class folder
                    about = {"not_measured": f"the head has {scores.shape[1]} outputs, the dataset "
                                             f"{len(data.class_names)} classes"}
                    head, layers = None, (layer,)
                else:
                    predicted.append(scores.argmax(1).cpu().numpy())
            bar.update(len(batch))
    bar.close()
    if not parts:
        raise LdrError(f"dataset {data.spec} has no samples")
    predictions = np.concatenate(predicted).astype(np.int64) if head is not None else None
    return Extraction(np.concatenate(parts).astype(np.float32, copy=False), predictions, about)


def check_input_size(loaded: LoadedModel, data: ScoringData) -> None:
    """A model that takes one input size (a CIFAR model: 3x32x32, no resize in its transform) and a
    dataset of another size is bad input: said before any forward pass, nothing cached."""
    expected = loaded.detail.get("input_size")
    if not expected or not len(data):
        return
    got = tuple(_to_input(data.samples[0], loaded.transform).shape)
    if got != tuple(expected):
        raise DatasetError(
            f"model {loaded.model_id} takes {'x'.join(map(str, expected))} inputs and its preprocessing "
            f"({loaded.preprocessing.get('name', 'host default')}) does not resize; dataset {data.spec} gives "
            f"{'x'.join(map(str, got))}: score it on images of its own size (e.g. CIFAR's 32 px)"
        )


def extract_features(
    loaded: LoadedModel, data: ScoringData, layer: str, *, batch_size: int = 64,
    device: str | torch.device = "cpu", progress: bool = True,
) -> np.ndarray:
    """Run ``loaded`` over every sample of ``data`` (in order) and return ``[N, d]`` float32 features."""
    return extract(loaded, data, layer, batch_size=batch_size, device=device, progress=progress,
                   measure_accuracy=False).features


def _read_cache(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            predictions = npz["predictions"] if "predictions" in npz.files else None
            return {"features": npz["features"], "labels": npz["labels"], "meta": json.loads(str(npz["meta"])),
                    "predictions": None if predictions is None or predictions.size == 0 else predictions}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, TypeError):
        return None  # a damaged cache file (header, member, metadata) is recomputed and replaced


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
        return FeatureSet(cached["features"], cached["labels"], layer, meta["preprocessing"], True, 0.0, path, meta,
                          cached["predictions"])
    start = time.perf_counter()
    loaded = load_model()
    got = extract(loaded, data, layer, batch_size=batch_size, device=device, progress=progress)
    features = got.features
    seconds = time.perf_counter() - start
    meta = {"model_id": model_id, "layer": layer, "preprocessing": loaded.preprocessing,
            "dataset": data.describe(), "extract_seconds": seconds, "source_detail": _jsonable(loaded.detail),
            "accuracy": got.accuracy}
    if path is not None:
        text = json.dumps(meta, sort_keys=True, default=str)
        predictions = got.predictions if got.predictions is not None else np.zeros(0, np.int64)
        try:
            atomic_write_with(path, lambda h: np.savez(h, features=features, labels=data.labels, meta=np.array(text),
                                                       predictions=predictions))
        except OSError as exc:  # disk full, read-only cache: nothing partial is left behind
            raise LdrError(f"cannot write the feature cache {path}: {exc.strerror or exc}") from exc
    return FeatureSet(features, data.labels, layer, loaded.preprocessing, False, seconds, path, meta, got.predictions)


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))
