"""``score``: many models × datasets × layers → cells → records, one failing model never stopping the rest.

Before any work every id is resolved and every weights file checked; absent files stop the run
with the full list (and download ids). Then cells run inline (a loop, each model loaded once) or
through a launcher of :mod:`ldr_plugin.launchers` (``local`` / ``slurm``, submitit).
"""

from __future__ import annotations

import importlib
import os
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ldr_plugin.errors import DatasetError, LdrError
from ldr_plugin.scoring.cells import Cell, score_cell
from ldr_plugin.sources import check_identifier, get_source, parse_model_id
from ldr_plugin.sources.base import CheckpointError, missing_files_message

LAUNCHER_FUNCTION = "ldr_plugin.launchers.scoring:run_cells"


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
    metric_options: dict[str, dict[str, Any]] = field(default_factory=dict)  # entry point -> kwargs


@dataclass
class CellOutcome:
    """What happened to one cell: its record paths, or the error that stopped it."""

    cell: Cell
    paths: list[Path] = field(default_factory=list)
    error: str | None = None


def _cells_for(config: ScoreConfig, model_id: str) -> list[Cell]:
    cells = []
    source_name, identifier = parse_model_id(model_id)
    for dataset in config.datasets:
        if dataset == "run":
            source = get_source(source_name)
            if not hasattr(source, "run_environments"):
                raise LdrError(f"--dataset run needs a domainbed: model (a run's environments), not {model_id}")
            splits = [config.split] if config.split in ("in", "out") else ["in", "out"]
            pairs = [(f"run:{env}", split) for env in source.run_environments(identifier) for split in splits]
        else:
            pairs = [(dataset, config.split)]
        for spec, split in pairs:
            for layer in config.layers:
                cells.append(Cell(model_id, spec, split, layer, config.seed, config.n_per_class, config.batch_size))
    return cells


def plan_cells(config: ScoreConfig) -> list[Cell]:
    """Resolve every id (unknown ids list close matches) and check every weights file, then list the cells."""
    if not config.models:
        raise LdrError("no model id given (ldr score MODEL_ID... or --selection FILE)")
    if not config.datasets:
        raise LdrError("no dataset given (--dataset D or a selection's 'datasets')")
    by_source: dict[str, list[str]] = {}
    for model_id in config.models:
        source_name, identifier = parse_model_id(model_id)
        by_source.setdefault(source_name, []).append(identifier)
    missing = []
    for source_name, identifiers in by_source.items():
        source = get_source(source_name)
        if source_name != "domainbed":
            known = source.list_ids()
            for identifier in identifiers:
                check_identifier(source_name, identifier, known)
        missing += source.check_available(identifiers, config.weights_dir)
    if missing:
        raise CheckpointError(missing_files_message(missing))
    return [cell for model_id in config.models for cell in _cells_for(config, model_id)]


def _score_kwargs(config: ScoreConfig) -> dict[str, Any]:
    cache = config.cache_dir or os.path.join(config.out_dir, ".features")
    kwargs = {"weights_dir": config.weights_dir, "cache_dir": cache,
              "trust_checkpoint": config.trust_checkpoint, "device": config.device}
    if config.metric_options:
        from ldr_plugin.scoring.cells import registered_metrics

        kwargs["metrics"] = registered_metrics(config.metric_options)
    return kwargs


def run_inline(cells: list[Cell], out_dir: str, **kwargs: Any) -> list[CellOutcome]:
    """Score cells in this process; a model that fails once is not retried for its other cells
    (a dataset the cell cannot score fails that cell only)."""
    outcomes, broken, loaded = [], {}, {}
    for cell in cells:
        if cell.model_id in broken:
            outcomes.append(CellOutcome(cell, error=f"skipped: {broken[cell.model_id]}"))
            continue
        if loaded and cell.model_id not in loaded:
            loaded.clear()  # cells come grouped by model: keep one model in memory
        try:
            outcomes.append(CellOutcome(cell, score_cell(cell, out_dir, loaded_models=loaded, **kwargs)))
        except DatasetError as exc:
            outcomes.append(CellOutcome(cell, error=str(exc)))
        except LdrError as exc:
            broken[cell.model_id] = str(exc)
            outcomes.append(CellOutcome(cell, error=str(exc)))
        except Exception as exc:  # noqa: BLE001 -- a host library failure: report it, go on with the others
            message = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}"
            broken[cell.model_id] = message
            outcomes.append(CellOutcome(cell, error=message))
    return outcomes


def _launcher_function() -> Any:
    module_name, attr = LAUNCHER_FUNCTION.split(":")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise LdrError(
            f"launchers 'local'/'slurm' are unavailable: {LAUNCHER_FUNCTION} not found ({exc}); use --launcher inline"
        ) from exc


def score(config: ScoreConfig) -> list[CellOutcome]:
    """Plan, check, and score every cell of ``config``; returns one outcome per cell."""
    cells = plan_cells(config)
    kwargs = _score_kwargs(config)
    if config.launcher == "inline":
        return run_inline(cells, config.out_dir, **kwargs)
    if config.launcher not in ("local", "slurm"):
        raise LdrError(f"unknown launcher '{config.launcher}'; expected inline, local or slurm")
    return _launcher_function()(cells, config.out_dir, executor=config.launcher, **kwargs)


def load_selection(path: str | Path, *, data_root: str | None = None) -> dict[str, Any]:
    """A selection TOML (``models``, ``datasets`` and optional ``layers``, ``split``, ``n_per_class``,
    ``seed``); ``{data_root}`` in dataset specs is replaced by ``data_root`` or ``$LDR_DATA_ROOT``."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]

    path = Path(path)
    try:
        table = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise LdrError(f"selection {path}: cannot read ({exc})") from exc
    allowed = {"name", "description", "models", "datasets", "layers", "split", "n_per_class", "seed"}
    unknown = set(table) - allowed
    if unknown:
        raise LdrError(f"selection {path}: unknown field(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    for key in ("models", "datasets"):
        if not isinstance(table.get(key), list) or not all(isinstance(x, str) for x in table[key]):
            raise LdrError(f"selection {path}: field '{key}' should be a list of strings")
    root = data_root or os.environ.get("LDR_DATA_ROOT")
    if any("{data_root}" in d for d in table["datasets"]) and not root:
        raise LdrError(f"selection {path}: datasets use {{data_root}}; pass --data-root or set LDR_DATA_ROOT")
    table["datasets"] = [d.replace("{data_root}", root or "") for d in table["datasets"]]
    return table
