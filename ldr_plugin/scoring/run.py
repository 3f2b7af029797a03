"""``score``: many models × datasets × layers → cells → records, one failing model never stopping the rest.

Before any work every id is resolved and every weights file checked; absent files stop the run
with the full list (and download ids). Then cells run inline (a loop, each model loaded once) or as
submitit jobs (``local`` / ``slurm``, :mod:`ldr_plugin.launchers`), each running the same
:func:`~ldr_plugin.scoring.cells.score_cell`, so the result files are the ones an inline run writes.
"""

from __future__ import annotations

import functools
import json
import os
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ldr_plugin.errors import DatasetError, LdrError
from ldr_plugin.launchers.launch import launch
from ldr_plugin.launchers.resources import Resources
from ldr_plugin.names import check_name
from ldr_plugin.scoring.cells import ScoreCell, chosen_metrics, score_cell
from ldr_plugin.scoring.datasets import load_scoring_dataset
from ldr_plugin.scoring.layouts import CIFAR_C_FOLDERS, cifar_c_corruptions
from ldr_plugin.sources import ModelId, get_source
from ldr_plugin.sources.base import CheckpointError, missing_files_message
from ldr_plugin.tomlfile import check_keys, read_toml


@dataclass
class ScoreConfig:
    """Everything ``ldr score`` needs (filled from flags or a selection TOML)."""

    models: list[str]
    datasets: list[str]
    out_dir: str = "results/scores"
    layers: list[str | None] = field(default_factory=lambda: [None])
    split: str = "test"
    n_per_class: int | None = None
    seed: int = 0
    batch_size: int = 64
    weights_dir: str | None = None
    cache_dir: str | None = None
    trust_checkpoint: bool = False
    device: str | None = None
    launcher: str = "inline"
    metric_options: dict[str, dict[str, Any]] = field(default_factory=dict)  # family -> options
    metric_names: list[str] | None = None  # families to compute (None: every registered one)
    num_workers: int | None = None  # DataLoader processes (None: one per CPU but one, at most 8)
    amp: bool = False


@dataclass
class CellOutcome:
    """What happened to one cell: its record paths, or the error that stopped it."""

    cell: ScoreCell
    paths: list[Path] = field(default_factory=list)
    error: str | None = None
    notes: list[str] = field(default_factory=list)  # healed or superseded files


def _cells_for(config: ScoreConfig, model: ModelId) -> list[ScoreCell]:
    cells = []
    for dataset in config.datasets:
        if dataset == "run":  # the model's own datasets (a DomainBed run's environments), in and out
            splits = [config.split] if config.split in ("in", "out") else ["in", "out"]
            pairs = [(f"run:{name}", split) for name in model.model_source.own_datasets(model.identifier)
                     for split in splits]
        elif dataset.partition(":")[0] in CIFAR_C_FOLDERS and config.split == "test":  # every corruption x severity
            kind, _, root = dataset.partition(":")
            pairs = [(dataset, f"{c}-{s}") for c in cifar_c_corruptions(kind, root) for s in range(1, 6)]
        else:
            pairs = [(dataset, config.split)]
        siblings = tuple(layer for layer in config.layers if layer is not None)
        for spec, split in pairs:
            for layer in config.layers:
                cells.append(ScoreCell(str(model), spec, split, layer, config.seed, config.n_per_class, config.batch_size,
                                       config.amp, siblings if len(config.layers) > 1 else ()))
    return cells


def plan_cells(config: ScoreConfig) -> list[ScoreCell]:
    """Resolve every id (unknown ids list close matches) and check every weights file, then list the cells."""
    if not config.models:
        raise LdrError("no model id given (ldr score MODEL_ID... or --selection FILE)")
    if not config.datasets:
        raise LdrError("no dataset given (--dataset D or a selection's 'datasets')")
    models = [ModelId.parse(model_id) for model_id in config.models]
    by_source: dict[str, list[str]] = {}
    for model in models:
        by_source.setdefault(model.source, []).append(model.identifier)
    missing = []
    for source_name, identifiers in by_source.items():
        source = get_source(source_name)
        source.check_ids(identifiers)
        missing += source.check_available(identifiers, config.weights_dir)
    if missing:
        raise CheckpointError(missing_files_message(missing))
    chosen_metrics(config.metric_options, config.metric_names)  # an unknown family or option: before any work
    check_inputs(config, models)
    return [cell for model in models for cell in _cells_for(config, model)]


def check_device(device: str | None) -> None:
    """A device name torch knows and this machine has (``--device cuda`` without a GPU: one line)."""
    if device is None:
        return
    import torch

    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise LdrError(f"--device {device!r} is not a torch device (expected cpu, cuda, cuda:1, mps ...)") from exc
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise LdrError(f"--device {device}: this machine has no CUDA device (torch.cuda.is_available() is False); "
                       "use --device cpu")


def check_inputs(config: ScoreConfig, models: list[ModelId]) -> None:
    """Bad input found before any model is loaded: the numbers, the device, every layer against every
    source's layers, and every dataset read once (missing root, unknown kind, a split it lacks,
    too few samples per class)."""
    for name, value, low in (("--batch-size", config.batch_size, 1), ("--n-per-class", config.n_per_class, 2),
                             ("--seed", config.seed, 0), ("--num-workers", config.num_workers, 0)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
            raise LdrError(f"{name} {value!r}: expected an integer >= {low}")
    check_device(config.device)
    for model in models:
        offered = model.model_source.layers
        bad = [layer for layer in config.layers if layer is not None and offered and layer not in offered]
        if bad:
            raise LdrError(f"model {model}: no layer {', '.join(map(repr, bad))}; {model.source} models offer "
                           f"{', '.join(offered)}")
    for spec in dict.fromkeys(d for d in config.datasets if d != "run"):
        split = config.split
        if spec.partition(":")[0] in CIFAR_C_FOLDERS and split == "test":  # expanded: check one of the cells
            kind, _, root = spec.partition(":")
            present = cifar_c_corruptions(kind, root)
            if not present:
                raise LdrError(f"{spec}: no <corruption>.npy besides labels.npy")
            split = f"{present[0]}-1"
        load_scoring_dataset(spec, split=split, n_per_class=config.n_per_class, seed=config.seed)


def _score_kwargs(config: ScoreConfig) -> dict[str, Any]:
    cache = config.cache_dir or os.path.join(config.out_dir, ".features")
    return {"weights_dir": config.weights_dir, "cache_dir": cache, "trust_checkpoint": config.trust_checkpoint,
            "device": config.device, "metric_options": config.metric_options, "metric_names": config.metric_names,
            "num_workers": config.num_workers}


def run_inline(cells: list[ScoreCell], out_dir: str, **kwargs: Any) -> list[CellOutcome]:
    """Score cells in this process; a model that fails once is not retried for its other cells
    (a dataset the cell cannot score fails that cell only)."""
    outcomes, broken, loaded = [], {}, {}
    for cell in cells:
        if cell.model_id in broken:
            outcomes.append(CellOutcome(cell, error=f"skipped: {broken[cell.model_id]}"))
            continue
        if loaded and cell.model_id not in loaded:
            loaded.clear()  # cells come grouped by model: keep one model in memory
        notes: list[str] = []
        try:
            outcomes.append(CellOutcome(cell, score_cell(cell, out_dir, loaded_models=loaded, notes=notes, **kwargs),
                                        notes=notes))
        except DatasetError as exc:
            outcomes.append(CellOutcome(cell, error=str(exc), notes=notes))
        except LdrError as exc:
            broken[cell.model_id] = str(exc)
            outcomes.append(CellOutcome(cell, error=str(exc), notes=notes))
        except Exception as exc:  # noqa: BLE001 -- a host library failure: report it, go on with the others
            message = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}"
            broken[cell.model_id] = message
            outcomes.append(CellOutcome(cell, error=message, notes=notes))
    return outcomes


_LOADED: dict[str, Any] = {}  # per worker process: the model of the previous cell, reused by the next


def score_one(cell: ScoreCell, out_dir: str, score_kwargs: dict[str, Any]) -> list[str]:
    """Score one cell in a submitit worker (keeping one loaded model between cells of the same job)."""
    if _LOADED and cell.model_id not in _LOADED:
        _LOADED.clear()
    return [str(p) for p in score_cell(cell, out_dir, loaded_models=_LOADED, progress=False, **score_kwargs)]


def cell_name(cell: ScoreCell) -> str:
    layer = f" layer={cell.layer}" if cell.layer else ""
    return f"{cell.model_id} on {cell.dataset_name} [{cell.split}]{layer} seed={cell.seed}"


def run_cells(cells: list[ScoreCell], out_dir: str | Path, *, executor: str = "local", resources: Resources | None = None,
              progress: bool = True, **score_kwargs: Any) -> list[CellOutcome]:
    """Score ``cells`` as submitit jobs (``executor`` = ``local`` or ``slurm``); one outcome per cell.

    ``score_kwargs`` go to :func:`score_cell`; resources default to the ``LDR_*`` environment. A
    cell whose records exist is skipped, so re-running after a crash computes only what is missing.
    """
    fn = functools.partial(score_one, out_dir=str(out_dir), score_kwargs=score_kwargs)
    summary = launch(cells, fn, executor, resources or Resources.from_env(), names=cell_name, job_name="ldr-score",
                     progress=progress, folder=out_dir)
    outcomes = []
    for cell, outcome in zip(cells, summary.outcomes):
        if outcome.ok:
            outcomes.append(CellOutcome(cell, [Path(p) for p in outcome.result]))
        else:
            outcomes.append(CellOutcome(cell, error=f"{outcome.reason} (log: {outcome.log})" if outcome.log
                                        else outcome.error))
    return outcomes


def score(config: ScoreConfig) -> list[CellOutcome]:
    """Plan, check, and score every cell of ``config``; returns one outcome per cell."""
    cells = plan_cells(config)
    kwargs = _score_kwargs(config)
    if config.launcher == "inline":
        return run_inline(cells, config.out_dir, **kwargs)
    if config.launcher not in ("local", "slurm"):
        raise LdrError(f"unknown launcher '{config.launcher}'; expected inline, local or slurm")
    return run_cells(cells, config.out_dir, executor=config.launcher, **kwargs)


def load_selection(path: str | Path, *, data_root: str | None = None) -> dict[str, Any]:
    """A selection TOML (``models``, ``datasets`` and optional ``layers``, ``split``, ``n_per_class``,
    ``seed``, ``[metric_options.<family>]``); ``{data_root}`` in dataset specs is replaced by
    ``data_root`` or ``$LDR_DATA_ROOT``."""
    table = read_toml(path, "selection")
    check_keys(table, {"name", "description", "models", "datasets", "layers", "split", "n_per_class", "seed",
                       "metric_options"}, f"selection {path}")
    for key in ("models", "datasets"):
        if not isinstance(table.get(key), list) or not all(isinstance(x, str) for x in table[key]):
            raise LdrError(f"selection {path}: field '{key}' should be a list of strings")
    if "layers" in table and not isinstance(table["layers"], list):  # "featurizer" is not ["f", "e", ...]
        raise LdrError(f"selection {path}: field 'layers' should be a list of strings, e.g. [\"featurizer\"]")
    for layer in table.get("layers", []):
        check_name(layer, f"selection {path}: layer")
    if "split" in table:
        check_name(table["split"], f"selection {path}: split")
    for key, low in (("seed", 0), ("n_per_class", 1)):
        if key in table and (type(table[key]) is not int or table[key] < low):
            raise LdrError(f"selection {path}: field '{key}' should be an integer >= {low}, got {table[key]!r}")
    root = data_root or os.environ.get("LDR_DATA_ROOT")
    if any("{data_root}" in d for d in table["datasets"]) and not root:
        raise LdrError(f"selection {path}: datasets use {{data_root}}; pass --data-root or set LDR_DATA_ROOT")
    table["datasets"] = [d.replace("{data_root}", root or "") for d in table["datasets"]]
    options = table.get("metric_options", {})
    if not isinstance(options, dict) or not all(isinstance(v, dict) for v in options.values()):
        raise LdrError(f"selection {path}: 'metric_options' should be tables, e.g. [metric_options.kstar]")
    return table


def selection_cells(path: str | Path) -> list[dict[str, Any]]:
    """The cells a ``registry/selections/*.toml`` asks ``ldr score`` for: models x datasets (x layers),
    as record key fields (for ``ldr results check --expect``).

    Split, seed and layers are expected only when the selection states them; ``run`` datasets (a
    DomainBed run's environments) are known only from the run and are not expected.
    """
    table = load_selection(path, data_root=os.environ.get("LDR_DATA_ROOT") or ".")  # names drop the root
    fixed = {k: table[k] for k in ("split", "seed") if k in table}
    cells = []
    for model_id in table["models"]:
        for dataset in (d for d in table["datasets"] if d != "run"):
            base = {"model_id": model_id, "dataset": ScoreCell(model_id, dataset).dataset_name, **fixed}
            cells += [{**base, "layer": layer} for layer in table.get("layers") or []] or [base]
    return cells


def parse_metric_options(flags: tuple[str, ...] | list[str], base: dict[str, dict[str, Any]] | None = None
                         ) -> dict[str, dict[str, Any]]:
    """``["kstar.backend=hnsw", "uniformity.t=3"]`` on top of ``base`` (a selection's ``metric_options``)
    -> ``{"kstar": {"backend": "hnsw"}, "uniformity": {"t": 3}}``; a value is JSON when it parses as JSON."""
    options = {family: dict(values) for family, values in (base or {}).items()}
    for flag in flags:
        name, sep, raw = flag.partition("=")
        family, dot, key = name.partition(".")
        if not (sep and dot and family and key):
            raise LdrError(f"metric option {flag!r} should be FAMILY.NAME=VALUE, e.g. kstar.backend=hnsw")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        options.setdefault(family, {})[key] = value
    return options
