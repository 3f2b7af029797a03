"""A scoring cell — (model, dataset, split, layer, seed, n per class) — and the function that scores it.

:func:`score_cell` is idempotent: records that already exist are skipped, missing ones are
computed (from cached features when present) and written atomically, one per metric family of
the ``ldr_plugin.metrics`` registry. An interrupted run leaves no partial record; the next run
resumes where it stopped.

>>> cell = Cell("robustbench:cifar10/Linf/Standard", "cifar10:/data", n_per_class=100)
>>> cell.dataset_name, cell.split
('cifar10', 'test')
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from ldr_plugin.errors import DatasetError, LdrError
from ldr_plugin.results import expected_path, new_record, read_record, write_record
from ldr_plugin.scoring.datasets import ScoringData, load_scoring_dataset
from ldr_plugin.scoring.features import FeatureSet, get_features
from ldr_plugin.sources import get_source, parse_model_id
from ldr_plugin.sources.base import CheckpointError, LoadedModel, missing_files_message

RECORD_KIND = "kstar"  # records written by the scoring flow (every metric family of a model score)


@dataclass(frozen=True)
class Cell:
    """One unit of scoring work; ``layer=None`` means the source's default layer.

    ``dataset`` is a spec of :func:`~ldr_plugin.scoring.datasets.load_scoring_dataset`, or
    ``run:ENV`` (an environment of a DomainBed run, split ``in`` or ``out``) for ``domainbed:`` models.
    """

    model_id: str
    dataset: str
    split: str = "test"
    layer: str | None = None
    seed: int = 0
    n_per_class: int | None = None
    batch_size: int = 64

    @property
    def dataset_name(self) -> str:
        """The dataset as recorded: the spec without its local path (``cifar10``, ``val`` of an imagefolder)."""
        kind, _, arg = self.dataset.partition(":")
        if kind in ("cifar10", "cifar100"):
            return kind
        if kind == "imagefolder":
            return f"imagefolder:{Path(arg.rstrip('/')).name}"
        return self.dataset

    def resolved_layer(self) -> str:
        source, _ = parse_model_id(self.model_id)
        return self.layer or get_source(source).layers[0]

    def record_path(self, out_dir: str | Path, metric_family: str) -> Path:
        return expected_path(
            out_dir, model_id=self.model_id, dataset=self.dataset_name, split=self.split,
            layer=self.resolved_layer(), metric_family=metric_family, seed=self.seed,
        )


def registered_metrics(options: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """family -> metric object, for every entry of the ``ldr_plugin.metrics`` group; ``options``
    (entry-point name -> keyword arguments, e.g. ``{"kstar": {"distance": "cosine"}}``) configure them."""
    from ldr_plugin.registry import Registry

    registry = Registry("ldr_plugin.metrics")
    unknown = sorted(set(options or {}) - set(registry.names()))
    if unknown:
        raise LdrError(f"options for unknown metric(s) {unknown}; registered: {registry.names()}")
    metrics = {}
    for name in registry.names():
        obj = registry.load(name)(**(options or {}).get(name, {}))
        metrics[obj.family] = obj
    return metrics


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def cell_data(cell: Cell) -> ScoringData:
    """The cell's samples: a dataset spec, or a DomainBed run's environment for ``run:ENV``."""
    if cell.dataset.startswith("run:"):
        source_name, identifier = parse_model_id(cell.model_id)
        source = get_source(source_name)
        if not hasattr(source, "run_dataset"):
            raise LdrError(f"dataset '{cell.dataset}' (a run's environment) needs a domainbed: model, not {cell.model_id}")
        return source.run_dataset(identifier, cell.dataset[4:], cell.split, n_per_class=cell.n_per_class, seed=cell.seed)
    return load_scoring_dataset(cell.dataset, split=cell.split, n_per_class=cell.n_per_class, seed=cell.seed)


def _check_existing(path: Path, cell: Cell) -> None:
    record = read_record(path)
    asked = record.get("n_per_class_requested")
    if asked != cell.n_per_class:
        raise LdrError(
            f"{path} exists with n_per_class_requested={asked}, but this run asks for {cell.n_per_class}; "
            "score into a different --out directory"
        )


def score_cell(
    cell: Cell, out_dir: str | Path, *, weights_dir: str | Path | None = None, cache_dir: str | Path | None = None,
    trust_checkpoint: bool = False, device: str | None = None, metrics: dict[str, Any] | None = None,
    loaded_models: dict[str, LoadedModel] | None = None, progress: bool = True,
) -> list[Path]:
    """Write one record per metric family for ``cell`` into ``out_dir``; skip those that exist.

    ``metrics`` defaults to every registered metric; ``loaded_models`` lets a caller share loaded
    models between cells. Returns the record paths (existing and new).
    """
    metrics = registered_metrics() if metrics is None else metrics
    if not metrics:
        raise LdrError("no metric is registered in ldr_plugin.metrics; nothing to compute")
    paths = {family: cell.record_path(out_dir, family) for family in metrics}
    todo = [family for family, path in paths.items() if not path.exists()]
    for family in set(paths) - set(todo):
        _check_existing(paths[family], cell)
    if not todo:
        return list(paths.values())
    source_name, identifier = parse_model_id(cell.model_id)
    source = get_source(source_name)
    device = device or default_device()
    files = [p for p, _ in source.required_files(identifier, weights_dir)]

    def load() -> LoadedModel:
        if loaded_models is not None and cell.model_id in loaded_models:
            return loaded_models[cell.model_id]
        missing = source.check_available([identifier], weights_dir)
        if missing:
            raise CheckpointError(missing_files_message(missing))
        loaded = source.load(identifier, weights_dir=weights_dir, device=device, trust_checkpoint=trust_checkpoint)
        if loaded_models is not None:
            loaded_models[cell.model_id] = loaded
        return loaded

    try:
        data = cell_data(cell)
    except CheckpointError:  # a run's dataset is read from its checkpoint: that is the model's problem
        raise
    except LdrError as exc:
        raise DatasetError(str(exc)) from exc
    feats = get_features(
        cell.model_id, data, cell.resolved_layer(), load_model=load, weights_files=files,
        cache_dir=cache_dir, batch_size=cell.batch_size, device=device, progress=progress,
    )
    for family in todo:
        _write_metric_record(cell, family, metrics[family], feats, data, out_dir)
    return list(paths.values())


def _write_metric_record(cell: Cell, family: str, metric: Any, feats: FeatureSet, data: ScoringData,
                         out_dir: str | Path) -> Path:
    start = time.perf_counter()
    result = metric.compute(feats.features, feats.labels)
    seconds = time.perf_counter() - start
    record = new_record(
        kind=RECORD_KIND, model_id=cell.model_id, dataset=cell.dataset_name, split=cell.split,
        layer=feats.layer, metric_family=family, seed=cell.seed, metrics=result.as_record_metrics(),
        n_samples=int(feats.labels.size), n_per_class=data.n_per_class(), preprocessing=feats.preprocessing,
        detail={"metric": result.detail, "dataset": data.describe(), "cell": asdict(cell)},
        timings_s={"features": feats.seconds, "metric": seconds},
        extra={"n_per_class_requested": cell.n_per_class, "features_from_cache": feats.from_cache,
               "feature_dim": int(feats.features.shape[1])},
    )
    return write_record(record, out_dir)
