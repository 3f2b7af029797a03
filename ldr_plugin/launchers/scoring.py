"""``ldr score --launcher local|slurm``: scoring cells distributed over submitit jobs.

The same :func:`~ldr_plugin.scoring.cells.score_cell` runs in every job, so the result files are
the ones an inline run writes; a cell whose records exist is skipped, so re-running after a crash
computes only what is missing.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from ldr_plugin.launchers.launch import launch
from ldr_plugin.launchers.resources import Resources

_LOADED: dict[str, Any] = {}  # per worker process: the model of the previous cell, reused by the next


def score_one(cell: Any, out_dir: str, score_kwargs: dict[str, Any]) -> list[str]:
    """Score one cell in a worker (keeping one loaded model between cells of the same job)."""
    from ldr_plugin.scoring.cells import score_cell

    if _LOADED and cell.model_id not in _LOADED:
        _LOADED.clear()
    paths = score_cell(cell, out_dir, loaded_models=_LOADED, progress=False, **score_kwargs)
    return [str(p) for p in paths]


def cell_name(cell: Any) -> str:
    layer = f" layer={cell.layer}" if getattr(cell, "layer", None) else ""
    return f"{cell.model_id} on {cell.dataset_name} [{cell.split}]{layer} seed={cell.seed}"


def run_cells(cells: list[Any], out_dir: str | Path, *, executor: str = "local",
              resources: Resources | None = None, progress: bool = True, **score_kwargs: Any) -> list[Any]:
    """Score ``cells`` through submitit (``executor`` = ``local`` or ``slurm``); one ``CellOutcome`` per cell.

    ``score_kwargs`` go to ``score_cell`` (``weights_dir``, ``cache_dir``, ``trust_checkpoint``,
    ``device``); resources default to the ``LDR_*`` environment (see :class:`Resources`).
    """
    from ldr_plugin.scoring.run import CellOutcome

    fn = functools.partial(score_one, out_dir=str(out_dir), score_kwargs=score_kwargs)
    summary = launch(cells, fn, executor, resources or Resources.from_env(), names=cell_name,
                     job_name="ldr-score", progress=progress)
    outcomes = []
    for cell, outcome in zip(cells, summary.outcomes):
        if outcome.ok:
            outcomes.append(CellOutcome(cell, [Path(p) for p in outcome.result]))
        else:
            last = (outcome.error or "failed").strip().splitlines()[-1]
            outcomes.append(CellOutcome(cell, error=f"{last} (log: {outcome.log})" if outcome.log else outcome.error))
    return outcomes
