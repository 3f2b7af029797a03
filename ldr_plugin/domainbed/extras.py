"""Extra columns for DomainBed tables: k* Γ′ and alignment/uniformity of the selected checkpoints.

Join key (documented in docs/leaderboard.md): a project record belongs to a selected checkpoint when
its ``model_id`` is ``domainbed:<run folder>`` — the folder's name or a path ending in it, optionally
``.../model.pkl``, ``.../model_step<k>.pkl`` or ``...@<k>`` — and its (dataset, split) names the test
env ``t`` of the checkpoint: ``(<Dataset>, env<t>_in)``, ``(run:<t>|run:env<t>|run:<env name>, in)``,
then ``env<t>``, the env name, and the ``out`` splits, preferred in that order. A record with a step
matches only that checkpoint; one without is the run's final model, used with a footnote when no
record of the selected step exists.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from ldr_plugin.domainbed import names
from ldr_plugin.domainbed.paired import incomplete_trials
from ldr_plugin.domainbed.tables import FLAG_INCOMPLETE, SweepSelection
from ldr_plugin.domainbed.tables import FOOTNOTES as TABLE_FOOTNOTES
from ldr_plugin.errors import LdrError
from ldr_plugin.leaderboard.records import ProjectRecords, metric_value
from ldr_plugin.leaderboard.tables import Cell, Column, Table
from ldr_plugin.results.record import data_version

FLAG_FINAL = "final_checkpoint"
FLAG_PARTIAL = "partially_scored"
FOOTNOTES = {
    FLAG_FINAL: "metric of the run's final model: the selected checkpoint itself was not saved/scored",
    FLAG_PARTIAL: "not every selected checkpoint of this row was scored; mean over the scored ones",
    "not_scored": "—: no scored checkpoint for this row",
}
LABELS = {"gamma_prime": "Γ′ (selected)", "alignment": "alignment (selected)", "uniformity": "uniformity (selected)"}


def parse_run_model_id(model_id: str) -> tuple[str, int | None] | None:
    """(run folder name, step or None) of a ``domainbed:`` model id; None for other sources."""
    source, _, ident = model_id.partition(":")
    if source != "domainbed" or not ident:
        return None
    ident, _, step = ident.partition("@")
    path = PurePosixPath(ident.rstrip("/"))
    if path.suffix == ".pkl":
        match = re.fullmatch(r"model_step(\d+)", path.stem)
        step = match.group(1) if match else step
        path = path.parent
    return path.name, (int(step) if step.isdigit() else None)


def index_records(project: ProjectRecords) -> dict[tuple[str, int | None], list[dict[str, Any]]]:
    """{(run folder name, step or None): [records]} for ``domainbed:`` model ids."""
    index: dict[tuple[str, int | None], list[dict[str, Any]]] = {}
    for _, record in project.records:
        parsed = parse_run_model_id(record.model_id)
        if parsed is not None:
            index.setdefault(parsed, []).append(record)
    return index


def _split_rank(dataset: str, split: str, run_dataset: str, env: int, env_name: str) -> int | None:
    runs = (f"run:{env}", f"run:env{env}", f"run:{env_name}")
    order = [(run_dataset, f"env{env}_in"), *((r, "in") for r in runs), (run_dataset, f"env{env}"),
             (run_dataset, env_name), (run_dataset, f"env{env}_out"), *((r, "out") for r in runs)]
    return order.index((dataset, split)) if (dataset, split) in order else None


def _find(candidates: list[dict[str, Any]], run_dataset: str, env: int, env_name: str, metric: str,
          layer: str = "", where: str = "") -> float | None:
    """The metric of the best-matching record: split preference, then layer (``featurizer`` first), seed.

    The records of the best (split, layer) must share what they were computed on (data version and
    metric family, e.g. the k* distance): other seeds of one computation may stand in for each other,
    different data or options may not, so two of them are an error naming both, never a silent pick.
    """
    ranked = []
    for record in candidates:
        rank = _split_rank(record.dataset, record.split, run_dataset, env, env_name)
        value = metric_value(record, metric)
        if rank is None or value is None or (layer and record.layer != layer):
            continue
        ranked.append(((rank, record.layer != "featurizer", record.layer), record.seed, value, record))
    if not ranked:
        return None
    best = min(ranked, key=lambda r: r[:2])
    group = [r for r in ranked if r[0] == best[0]]
    versions = {(data_version(r[3]), r[3].metric_family): r[3] for r in group}
    if len(versions) > 1:
        listed = "; ".join(f"{rec.metric_family} on {rec.dataset}/{rec.split} (data version {ver or 'schema 1'}, "
                           f"file {rec.identity_digest or rec.model_id})" for (ver, _), rec in sorted(versions.items()))
        raise LdrError(f"{where or run_dataset}: the {metric} records of one selected checkpoint (layer "
                       f"{best[3].layer}, split {best[3].dataset}/{best[3].split}) were computed on {len(versions)} "
                       f"different data sets or options: {listed}. A column would mix them; keep one of them "
                       f"under --results (or give the spec a 'layer').")
    return best[2]


def last_steps(sel: SweepSelection) -> dict[str, int]:
    """The last checkpoint step of every run (its saved final model)."""
    out: dict[str, int] = {}
    for step, run in zip(sel.sweep.columns.step.tolist(), sel.sweep.record_runs):
        out[run] = max(out.get(run, step), step)
    return out


def selected_checkpoints(sel: SweepSelection) -> set[tuple[str, int, int]]:
    """(run folder path, step, test env) of every checkpoint some method selected that is not its
    run's final model: the checkpoints to score so the extra columns need no final-model stand-in."""
    final_steps = last_steps(sel)
    out = set()
    for choices in sel.choices.values():
        for key, choice in choices.items():
            run_index = sel.sweep.record_runs[choice.record_index]
            step = int(sel.sweep.columns.step[choice.record_index])
            if step != final_steps[run_index]:
                out.add((str(sel.sweep.runs[run_index].path), int(step), int(key[3])))
    return out


def saved_selected_checkpoints(sel: SweepSelection) -> tuple[list[tuple[Path, int]], list[Path]]:
    """(``model_step<k>.pkl`` file, test env) of every :func:`selected_checkpoints` entry whose file
    exists (``--save_model_every_checkpoint``), sorted; and the files of those that were not saved."""
    saved, missing = [], []
    for run, step, env in sorted(selected_checkpoints(sel)):
        path = Path(run).resolve() / f"model_step{step}.pkl"
        if path.is_file():
            saved.append((path, env))
        else:
            missing.append(path)
    return saved, missing


def selected_metric_by_group(sel: SweepSelection, method: str, index, metric: str, dataset: str, algorithm: str,
                             env_names: dict[str, list[str]] | None, final_steps: dict[str, int] | None = None,
                             layer: str = "") -> tuple[dict[tuple, float | None], bool]:
    """Metric of the checkpoint ``method`` selected, per group key (trial, dataset, algorithm, test env)
    of one (dataset, algorithm) (None: no record), and whether a final-model record stood in for an
    earlier selected checkpoint."""
    final_steps = last_steps(sel) if final_steps is None else final_steps
    values: dict[tuple, float | None] = {}
    used_final = False
    for key, choice in sel.choices[method].items():
        if key[1:3] != (dataset, algorithm):
            continue
        step = int(sel.sweep.columns.step[choice.record_index])
        run = sel.sweep.runs[sel.sweep.record_runs[choice.record_index]]
        env_name = names.environment_names(dataset, key[3] + 1, env_names)[key[3]]
        where = f"run {run.path} (test env {key[3]}, step {step})"
        value = _find(index.get((run.path.name, step), []), dataset, key[3], env_name, metric, layer, where)
        if value is None:
            value = _find(index.get((run.path.name, None), []), dataset, key[3], env_name, metric, layer, where)
            earlier = step != final_steps[sel.sweep.record_runs[choice.record_index]]
            used_final = used_final or (value is not None and earlier)
        values[key] = None if value is None else float(value)
    return values, used_final


def selected_metric(sel: SweepSelection, method: str, index, metric: str, dataset: str, algorithm: str,
                    env_names: dict[str, list[str]] | None, final_steps: dict[str, int] | None = None,
                    layer: str = "") -> tuple[list[float], int, bool]:
    """Metric values of every selected checkpoint of one (dataset, algorithm): (values, expected, final).

    ``final`` is True when a final-model record stood in for an earlier selected checkpoint.
    """
    by_group, used_final = selected_metric_by_group(sel, method, index, metric, dataset, algorithm, env_names,
                                                    final_steps, layer)
    return [v for v in by_group.values() if v is not None], len(by_group), used_final


def add_extra_columns(table: Table, sel: SweepSelection, method: str, dataset: str, metrics: list[str],
                      project: ProjectRecords, env_names: dict[str, list[str]] | None, source: str,
                      layer: str = "") -> None:
    """Append one column per metric to a dataset table: mean ± SE over the row's selected checkpoints.

    ``layer`` restricts to records of that feature layer; otherwise ``featurizer`` is preferred.
    """
    index = index_records(project)
    final_steps = last_steps(sel)
    for metric in metrics:
        label = LABELS.get(metric, f"{metric} (selected)")
        table.columns.append(Column(label.replace(")", f", {layer})") if layer else label, extra=True, source=source))
        for row in table.rows:
            values, expected, final = selected_metric(sel, method, index, metric, dataset, row.label, env_names,
                                                      final_steps, layer)
            if not values:
                row.cells.append(Cell(missing="—", flags=("not_scored",), source=source))
                continue
            err = float(np.std(np.asarray(values) / np.sqrt(len(values))))
            flags = ((FLAG_PARTIAL,) if len(values) < expected else ()) + ((FLAG_FINAL,) if final else ())
            if incomplete_trials(sel, dataset, row.label):
                flags += (FLAG_INCOMPLETE,)  # as the accuracy cells beside it: selected over a partial grid
            row.cells.append(Cell(value=float(np.mean(values)), err=err, n=len(values), decimals=3,
                                  flags=flags, source=source))
    table.footnotes.update(FOOTNOTES)
    table.footnotes.setdefault(FLAG_INCOMPLETE, TABLE_FOOTNOTES[FLAG_INCOMPLETE])
