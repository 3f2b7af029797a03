"""A scoring cell — (model, dataset, split, layer, seed, n per class) — and the function that scores it.

:func:`score_cell` is idempotent: records that already exist are skipped, missing ones are
computed (from cached features when present) and written atomically, one per metric family of
the ``ldr_plugin.metrics`` group. An interrupted run leaves no partial record; the next run
resumes where it stopped.

>>> cell = ScoreCell("robustbench:cifar10/Linf/Standard", "cifar10:/data", n_per_class=100)
>>> cell.dataset_name, cell.split
('cifar10', 'test')
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import torch

from ldr_plugin.errors import DatasetError, LdrError
from ldr_plugin.metrics.base import Metric
from ldr_plugin.plugins import plugin_group
from ldr_plugin.results.io import read_record, write_record
from ldr_plugin.results.record import RecordError, expected_path, identity_digest, new_record
from ldr_plugin.scoring.accuracy import measured_accuracy
from ldr_plugin.scoring.datasets import ScoringData, load_scoring_dataset
from ldr_plugin.scoring.features import FeatureSet, get_features
from ldr_plugin.scoring.identity import cell_identity
from ldr_plugin.sources import ModelId
from ldr_plugin.sources.base import CheckpointError, LoadedModel, missing_files_message
from ldr_plugin.sources.loading import weights_file_facts


@dataclass(frozen=True)
class ScoreCell:
    """One unit of scoring work; ``layer=None`` means the source's default layer.

    ``dataset`` is a spec of :func:`~ldr_plugin.scoring.datasets.load_scoring_dataset`, or
    ``run:NAME``, one of the model's own datasets (a DomainBed run's environment, split ``in`` or ``out``).
    """

    model_id: str
    dataset: str
    split: str = "test"
    layer: str | None = None
    seed: int = 0
    n_per_class: int | None = None
    batch_size: int = 64
    amp: bool = False  # forward under autocast (part of the cell: it changes the features)
    sibling_layers: tuple[str, ...] = ()  # layers scored beside this one: extracted in the same pass

    @property
    def dataset_name(self) -> str:
        """The dataset as recorded: the spec without its local path (``cifar10``, ``val`` of an imagefolder)."""
        kind, _, arg = self.dataset.partition(":")
        if kind in ("cifar10", "cifar100", "cifar10c", "cifar100c", "imagenet-val"):
            return kind
        if kind == "imagefolder":
            return f"imagefolder:{Path(arg.rstrip('/')).name}"
        return self.dataset

    @cached_property
    def model(self) -> ModelId:
        """The model id, parsed once (an unknown source is an error naming close matches)."""
        return ModelId.parse(self.model_id)

    def resolved_layer(self) -> str:
        return self.layer or self.model.model_source.layers[0]

    def record_path(self, out_dir: str | Path, metric_family: str, identity_digest: str | None = None) -> Path:
        """The record file of one metric family; ``identity_digest`` None gives the schema-1 name."""
        return expected_path(
            out_dir, model_id=self.model_id, dataset=self.dataset_name, split=self.split,
            layer=self.resolved_layer(), metric_family=metric_family, seed=self.seed,
            identity_digest=identity_digest,
        )


def registered_metrics(options: dict[str, dict[str, Any]] | None = None) -> dict[str, Metric]:
    """family -> metric object, for every entry of the ``ldr_plugin.metrics`` group, each made with
    its ``options`` (``{"kstar": {"backend": "hnsw"}}``); an option a metric does not take is an error."""
    group, options = plugin_group("metrics"), options or {}
    unknown = set(options) - set(group.names())
    if unknown:
        raise LdrError(f"options for unknown metric(s) {sorted(unknown)}; registered: {', '.join(group.names())}")
    metrics = {}
    for name in group.names():
        try:
            obj = group.load(name)(**options.get(name, {}))
        except TypeError as exc:
            raise LdrError(f"metric '{name}' does not take the options {options.get(name)}: {exc}") from exc
        if not isinstance(obj, Metric):
            raise LdrError(f"metric '{name}' ({group.get(name).value}) is not a ldr_plugin.metrics.base.Metric subclass")
        metrics[obj.family] = obj
    return metrics


def chosen_metrics(options: dict[str, dict[str, Any]] | None = None, names: list[str] | None = None
                   ) -> dict[str, Metric]:
    """The registered metrics (made with ``options``), only those named in ``names`` when given (a
    family, or its entry-point name: ``kstar`` also selects ``kstar-cosine``); an unknown name is an
    error naming the registered ones."""
    metrics = registered_metrics(options)
    if not names:
        return metrics
    chosen = {f: m for f, m in metrics.items() if f in names or f.split("-", 1)[0] in names}
    unknown = [n for n in names if not any(f == n or f.split("-", 1)[0] == n for f in metrics)]
    if unknown:
        raise LdrError(f"--metric {', '.join(unknown)}: not a registered metric family; registered: "
                       f"{', '.join(sorted(metrics))}")
    return chosen


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def cell_data(cell: ScoreCell) -> ScoringData:
    """The cell's samples: a dataset spec, or a DomainBed run's environment for ``run:ENV``."""
    if cell.dataset.startswith("run:"):
        return cell.model.model_source.own_dataset(cell.model.identifier, cell.dataset[4:], cell.split,
                                                   n_per_class=cell.n_per_class, seed=cell.seed)
    return load_scoring_dataset(cell.dataset, split=cell.split, n_per_class=cell.n_per_class, seed=cell.seed)


def cell_identities(cell: ScoreCell, data: ScoringData, families: list[str],
                    metric_options: dict[str, dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """family -> the cell's identity for that metric family (see :mod:`ldr_plugin.scoring.identity`)."""
    options = metric_options or {}
    return {f: cell_identity(cell.model_id, data, cell.resolved_layer(), options.get(f, {}), amp=cell.amp)
            for f in families}


def record_paths(cell: ScoreCell, out_dir: str | Path, families: list[str],
                 metric_options: dict[str, dict[str, Any]] | None = None) -> dict[str, Path]:
    """family -> where ``score_cell`` writes (or finds) the cell's record; reads the cell's data."""
    identities = cell_identities(cell, cell_data(cell), families, metric_options)
    return {f: cell.record_path(out_dir, f, identity_digest(identities[f])) for f in families}


def _done(path: Path, notes: list[str]) -> bool:
    """Whether a valid record is at ``path``; a corrupt or partial one is moved aside (``*.corrupt``)
    so the cell is recomputed, and does not stop the model's other cells."""
    if not path.exists():
        return False
    try:
        read_record(path)
        return True
    except RecordError as exc:
        aside = path.with_name(path.name + ".corrupt")
        n = 1
        while aside.exists():
            aside, n = path.with_name(f"{path.name}.{n}.corrupt"), n + 1
        try:
            path.rename(aside)
        except FileNotFoundError:  # another worker healed it first
            return False
        notes.append(f"moved a damaged record aside to {aside.name} and recomputed it ({str(exc)[-160:]})")
        return False


def _legacy_note(cell: ScoreCell, out_dir: str | Path, family: str, notes: list[str]) -> None:
    legacy = cell.record_path(out_dir, family)
    if legacy.exists():
        notes.append(f"{legacy.name} was written before cell identity (schema 1): it names the dataset "
                     f"'{cell.dataset_name}' but not which data, so it is not reused; this cell is recomputed "
                     "(remove the old file once the new one is there)")


def score_cell(
    cell: ScoreCell, out_dir: str | Path, *, weights_dir: str | Path | None = None, cache_dir: str | Path | None = None,
    trust_checkpoint: bool = False, device: str | None = None, metrics: dict[str, Metric] | None = None,
    metric_options: dict[str, dict[str, Any]] | None = None, loaded_models: dict[str, LoadedModel] | None = None,
    progress: bool = True, notes: list[str] | None = None, metric_names: list[str] | None = None,
    num_workers: int | None = None,
) -> list[Path]:
    """Write one record per metric family for ``cell`` into ``out_dir``; skip those that exist.

    A record's file name includes the digest of the cell's identity (the data, not only its name;
    the layer; the metric options), so other data under the same name is another cell. A damaged
    record is moved aside and recomputed. ``metrics`` defaults to every registered metric made with
    ``metric_options``; ``loaded_models`` lets a caller share loaded models between cells; ``notes``
    collects what a user should know (healed or superseded files). Returns the record paths.
    """
    metric_options = metric_options or {}
    notes = [] if notes is None else notes
    metrics = chosen_metrics(metric_options, metric_names) if metrics is None else metrics
    if not metrics:
        raise LdrError("no metric is registered in ldr_plugin.metrics; nothing to compute")
    try:
        data = cell_data(cell)
    except CheckpointError:  # a run's dataset is read from its checkpoint: that is the model's problem
        raise
    except LdrError as exc:
        raise DatasetError(str(exc)) from exc
    identities = cell_identities(cell, data, list(metrics), metric_options)
    paths = {family: cell.record_path(out_dir, family, identity_digest(identities[family])) for family in metrics}
    todo = [family for family, path in paths.items() if not _done(path, notes)]
    for family in todo:
        _legacy_note(cell, out_dir, family, notes)
    if not todo:
        return list(paths.values())
    source, identifier = cell.model.model_source, cell.model.identifier
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

    feats = get_features(
        cell.model_id, data, cell.resolved_layer(), load_model=load, weights_files=files,
        cache_dir=cache_dir, batch_size=cell.batch_size, device=device, progress=progress,
        extra_layers=cell.sibling_layers, num_workers=num_workers, amp=cell.amp,
    )
    on_device = features_on_device(feats, device) if any(metrics[f].takes_tensors for f in todo) else None
    for family in todo:
        _write_metric_record(cell, metrics[family], metric_options.get(family, {}), feats, data, out_dir,
                             identities[family], weights_facts(files, feats), accuracy_facts(feats, data), on_device)
    return list(paths.values())


def features_on_device(feats: FeatureSet, device: str | torch.device) -> torch.Tensor:
    """The cell's features as one float32 tensor on ``device``, made once for every metric that
    takes tensors. On the CPU it shares the array's memory (no copy, the same numbers); on a GPU it
    is one host-to-device copy of [N, d] (batches come to the host for the feature cache)."""
    return torch.from_numpy(feats.features).to(torch.device(device))


def weights_facts(files: list[str], feats: FeatureSet) -> dict[str, Any]:
    """Which weights the features came from: each file (path, size, sha256 of its first MiB), the
    hooked module, the feature width (the load itself checked that the files filled the model)."""
    source_detail = feats.detail.get("source_detail", {}) if isinstance(feats.detail, dict) else {}
    return {"files": weights_file_facts(files), "hooked": source_detail.get("hooked"),
            "feature_dim": int(feats.features.shape[1])}


def accuracy_facts(feats: FeatureSet, data: ScoringData) -> dict[str, Any]:
    """Top-1 of the model's head (or zero-shot) on the scored subset, from the features' forward pass."""
    detail = feats.detail if isinstance(feats.detail, dict) else {}
    trained_on = detail.get("source_detail", {}).get("trained_on")
    return measured_accuracy(feats.predictions, feats.labels, detail.get("accuracy", {}), trained_on,
                             data.spec.partition(":")[0], len(data.class_names))


def _write_metric_record(cell: ScoreCell, metric: Metric, options: dict[str, Any], feats: FeatureSet,
                         data: ScoringData, out_dir: str | Path, identity: dict[str, Any],
                         weights: dict[str, Any], accuracy: dict[str, Any], on_device: torch.Tensor | None) -> Path:
    features = on_device if metric.takes_tensors and on_device is not None else feats.features
    start = time.perf_counter()
    result = metric.compute(features, feats.labels)
    seconds = time.perf_counter() - start
    device = result.device or (str(features.device) if isinstance(features, torch.Tensor) else "cpu")
    record = new_record(
        kind=metric.kind, model_id=cell.model_id, dataset=cell.dataset_name, split=cell.split,
        layer=feats.layer, metric_family=metric.family, seed=cell.seed, metrics=result.as_record_metrics(),
        n_samples=int(feats.labels.size), n_per_class=data.n_per_class(), preprocessing=feats.preprocessing,
        detail={"metric": result.detail, "dataset": data.describe(), "cell": asdict(cell), "metric_device": device},
        timings_s={"features": feats.seconds, "metric": seconds},
        n_per_class_requested=cell.n_per_class, metric_options=options, features_from_cache=feats.from_cache,
        feature_dim=int(feats.features.shape[1]), identity=identity, identity_digest=identity_digest(identity),
        weights=weights, accuracy=accuracy,
    )
    return write_record(record, out_dir)
