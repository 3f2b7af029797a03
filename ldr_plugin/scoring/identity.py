"""What a scoring cell *is*: the data (not just its name), the layer and the metric options.

Two cells with the same dataset name over different data (another root, other files, other
classes, another subset rule or seed) have different identities, so their records have different
file names and a resumed run never takes one for the other. The identity is cheap: the readers
fingerprint their files by name and size (image folders) or by checksum (CIFAR batches), and the
subsample is named by digests of its indices and labels.

>>> from ldr_plugin.scoring.datasets import load_scoring_dataset
>>> a = load_scoring_dataset("digits", n_per_class=5, seed=0)
>>> b = load_scoring_dataset("digits", n_per_class=5, seed=1)
>>> data_identity(a) == data_identity(b)
False
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

from ldr_plugin.datasets.samples import ScoringData


def _digest(obj: Any) -> str:
    if isinstance(obj, np.ndarray):
        raw = np.ascontiguousarray(obj.astype(np.int64, copy=False)).tobytes()
    else:
        raw = json.dumps(obj, sort_keys=True, ensure_ascii=True, default=str).encode()
    return hashlib.sha256(raw).hexdigest()[:16]


def data_identity(data: ScoringData) -> dict[str, Any]:
    """The data a cell is computed on: kind, resolved root, content fingerprint, class list, split,
    subset rule (n per class requested, seed) and digests of the chosen indices and their labels."""
    info = data.info
    fingerprint = info.get("fingerprint") or _digest({k: v for k, v in info.items() if k != "md5_verified"})
    return {
        "kind": data.spec.partition(":")[0],
        "root": info.get("root") or info.get("run") or info.get("embedded"),
        "fingerprint": fingerprint,
        "classes": _digest(list(data.class_names)),
        "n_classes": len(data.class_names),
        "split": data.split,
        "n_per_class_requested": data.n_per_class_requested,
        "subsample_seed": data.seed,
        "indices": _digest(np.asarray(data.indices)),
        "labels": _digest(np.asarray(data.labels)),
    }


def cell_identity(model_id: str, data: ScoringData, layer: str, metric_options: dict[str, Any], *,
                  amp: bool = False) -> dict[str, Any]:
    """A cell's identity for one metric family (its digest goes into the record's file name).

    The preprocessing is the model source's own transform for ``model_id`` (recorded in full in the
    record's ``preprocessing``); it is not a free choice, so the model id stands for it here.
    """
    identity = {"model_id": model_id, "data": data_identity(data), "layer": layer,
                "metric_options": metric_options, "preprocessing": "source default for model_id"}
    if amp:  # only when on, so the identities (and file names) of fp32 cells stay as they were
        identity["precision"] = "amp"
    return identity
