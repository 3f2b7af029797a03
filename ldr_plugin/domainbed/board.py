"""The ``domainbed`` leaderboard kind: DomainBed's tables of the sweeps under ``--results``.

The tables ``collect_results`` prints (three model-selection methods, mean ± SE over trials, the
Averages) computed from the one run-folder reader, plus what DomainBed does not have: metric columns
of the selected checkpoints from this project's records (:mod:`~ldr_plugin.domainbed.extras`),
DomainBed's published 2020 rows beside ours, bar plots of the averages, and ``<id>.domainbed.txt``,
DomainBed's own text output of the reproduced rows.
"""

from __future__ import annotations

from dataclasses import replace
from importlib.metadata import entry_points
from pathlib import Path

from ldr_plugin.domainbed import names
from ldr_plugin.domainbed.extras import LABELS, add_extra_columns
from ldr_plugin.domainbed.paired import average_trial_means, incomplete_trials, paired_difference
from ldr_plugin.domainbed.protocols import check_not_mixed, compared_differences, grid_values
from ldr_plugin.domainbed.runs import read_sweep
from ldr_plugin.domainbed.tables import (
    SweepSelection,
    _n_envs,
    domainbed_tables,
    render_domainbed_text,
    sweep_names,
)
from ldr_plugin.errors import LdrError
from ldr_plugin.leaderboard.inputs import BuildInputs
from ldr_plugin.leaderboard.plots import plot_dataset_bars, plot_paired_differences
from ldr_plugin.leaderboard.spec import LeaderboardSpec
from ldr_plugin.leaderboard.spec_names import check_spec_names
from ldr_plugin.leaderboard.tables import Board, Cell, Column, Row, Table
from ldr_plugin.plugins import plugin_group
from ldr_plugin.registry_files import spec_argument

REPRODUCED_METRICS = "reproduced-metrics"


def sweep_selection(inputs: BuildInputs, order: str = "sorted", trials: tuple[int, ...] = (),
                    test_envs: tuple[tuple[str, tuple[int, ...]], ...] = ()) -> SweepSelection:
    """Every sweep record of the build's result folders (of ``trials`` only, if given; of the held-out
    domains ``test_envs`` names, for its datasets), grouped and selected (once per read order, trial
    list and held-out domains)."""
    def load() -> SweepSelection:
        sweep = read_sweep(inputs.results_dirs, order=order, progress=inputs.progress)
        inputs.report(sweep.problems)
        return SweepSelection.build(sweep.only_trials(set(trials)) if trials else sweep,
                                    held_out={d: list(envs) for d, envs in test_envs})

    return inputs.cached(("domainbed sweep", order, trials, test_envs), load)


def _add_published_rows(table: Table, published: dict[str, Table]) -> None:
    """Append the publication's rows of the same table, cells matched by column name."""
    pub = published.get(table.table_id)
    if pub is None:
        return
    names = [c.name for c in pub.columns]
    same_columns = [n for n in names if n != "Avg"] == [c.name for c in table.columns if c.name != "Avg" and not c.extra]
    for row in pub.rows:
        cells = []
        for column in table.columns:
            if column.name == "Avg" and not same_columns:
                cells.append(Cell(missing="—", flags=("avg_elsewhere",)))
            elif column.name in names:
                cells.append(row.cells[names.index(column.name)])
            else:
                cells.append(Cell(missing="—", flags=("not_published",)))
        table.rows.append(Row(label=row.label, cells=cells, source=row.source, published=True))
    table.sources.update(pub.sources)
    table.footnotes["not_published"] = "—: not in the publication"
    table.footnotes["avg_elsewhere"] = "—: the published Avg is over a different set of columns, so it is not comparable"


DELTA_FOOTNOTES = {
    "no_pairs": "—: no trial complete for both this algorithm and the baseline (or the baseline itself)",
    "one_pair": "one trial pairs up: no SE",
    "trials_left_out": ("paired over the trials complete for both: a trial with a run unfinished or not yet "
                        "started is left out (it may still change)"),
}


def delta_column(baseline: str) -> str:
    """The name of the paired-difference column a spec's ``baseline`` adds."""
    return f"Δ vs {baseline} (paired over trials)"


def _add_delta_column(table: Table, sel: SweepSelection, method: str, baseline: str) -> None:
    """Append "Δ vs <baseline>": per trial the row's mean over the table's datasets (or its one
    dataset) minus the baseline's, mean ± SE (sample std / √n) over the n trials both have."""
    datasets = [c.name for c in table.columns if not c.extra and c.name != "Avg"]
    if table.kind == "domainbed_dataset":
        datasets = [table.table_id.rsplit("__", 1)[0]]
    base = average_trial_means(sel, method, datasets, baseline)
    table.columns.append(Column(delta_column(baseline), extra=True))
    for row in table.rows:
        diff = None if row.label == baseline else paired_difference(
            base, average_trial_means(sel, method, datasets, row.label))
        left_out = ("trials_left_out",) if any(incomplete_trials(sel, d, a) for d in datasets
                                               for a in (baseline, row.label)) else ()
        if diff is None:
            row.cells.append(Cell(missing="—", flags=("no_pairs", *left_out)))
        else:
            row.cells.append(Cell(value=diff.mean, err=diff.se, n=diff.n, decimals=2,
                                  flags=(("one_pair",) if diff.se is None else ()) + left_out))
    table.footnotes.update(DELTA_FOOTNOTES)


def _sort_rows(table: Table, how: str) -> None:
    if how == "domainbed":
        return
    if how != "avg_desc":
        raise LdrError(f"sort {how!r} is not supported for DomainBed tables; use 'domainbed' or 'avg_desc'")
    j = [c.name for c in table.columns].index("Avg")
    table.rows.sort(key=lambda r: (r.cells[j].value is None, -(r.cells[j].value or 0.0)))


def _check_names(spec: LeaderboardSpec, sel: SweepSelection, inputs: BuildInputs) -> None:
    """Typos in the spec's datasets / algorithms / extra_metrics are errors (close matches); known
    names without results are reported problems."""
    algorithms, datasets = sweep_names(sel.sweep)
    registered = {group: {e.name for e in entry_points(group=group)}
                  for group in ("domainbed.algorithms", "domainbed.datasets")}
    problems = check_spec_names(spec.path, "datasets", spec.datasets, found=set(datasets),
                                registered=set(names.DATASET_ORDER) | registered["domainbed.datasets"])
    problems += check_spec_names(spec.path, "algorithms", spec.algorithms, found=set(algorithms),
                                 registered=set(names.ALGORITHM_ORDER) | registered["domainbed.algorithms"])
    if spec.baseline:
        check_spec_names(spec.path, "baseline", [spec.baseline], found=set(algorithms), registered=set())
    for field, wanted, present in (("datasets", spec.datasets, datasets), ("algorithms", spec.algorithms, algorithms)):
        if wanted and not set(wanted) & set(present):
            raise LdrError(f"{spec.path}: none of the spec's {field} {wanted} has results under "
                           f"{inputs.results_dirs} (found: {', '.join(present)}); the tables would be empty")
    scored = {name for _, record in inputs.project.records for name in record.metrics}
    if scored:  # no records at all: every metric column says 'not scored'
        known = set(LABELS) | set(plugin_group("metrics").names())  # (a family's name is often its metric's)
        problems += check_spec_names(spec.path, "extra_metrics", spec.extra_metrics, found=scored, registered=known)
    inputs.report(problems)


def _check_domains(spec: LeaderboardSpec, sel: SweepSelection) -> None:
    """The spec's per-dataset domain fields fit the sweep: `test_envs` names datasets it has, and
    `env_names` gives one name per domain (fewer would shift every column after the gap)."""
    found = sweep_names(sel.sweep)[1]
    for dataset in spec.test_envs:
        if dataset not in found:
            raise LdrError(f"{spec_argument(spec.path)}: 'test_envs' names dataset {dataset!r}, which has no runs "
                           f"here (found: {', '.join(found)})")
    for dataset, given in spec.env_names.items():
        n_envs = _n_envs(sel.sweep, dataset) if dataset in found else 0
        if n_envs and len(given) != n_envs:
            raise LdrError(f"{spec_argument(spec.path)}: 'env_names.{dataset}' has {len(given)} names; "
                           f"{dataset} has {n_envs} domains, one name each")


def domainbed_board(spec: LeaderboardSpec, inputs: BuildInputs, out_dir: Path) -> Board:
    """DomainBed tables of the sweeps under --results (+ extra metric columns, published rows, plots)."""
    held_out = tuple(sorted((d, tuple(sorted(set(e)))) for d, e in spec.test_envs.items()))
    try:
        sel = sweep_selection(inputs, spec.order, tuple(sorted(spec.trials)), held_out)
    except LdrError as exc:  # held-out domains out of range
        raise LdrError(f"{spec_argument(spec.path)}: 'test_envs': {exc}") from None
    if not len(sel.sweep):
        raise LdrError(f"{spec.path}: no DomainBed sweep records (<dir>/<run>/results.jsonl) under "
                       f"{inputs.results_dirs}")
    check_not_mixed(sel.sweep, spec_argument(spec.path), frozenset(spec.hparams_grid))
    _check_names(spec, sel, inputs)
    _check_domains(spec, sel)
    if spec.baseline:  # each row one protocol, but the Δ column pairs a row with the baseline's row
        algorithms, datasets = sweep_names(sel.sweep)
        differ = [f"{d} / {a} vs {spec.baseline}: {x}" for d in datasets for a in algorithms
                  if (x := compared_differences(sel.sweep, d, spec.baseline, a))]
        if differ:
            raise LdrError(f"{spec_argument(spec.path)}: the Δ vs {spec.baseline} column would pair runs trained under "
                           "different protocols:\n  " + "\n  ".join(differ[:10]) + "\nbuild each budget from its own "
                           "folders, or compare them with `ldr leaderboard compare LABEL=DIR LABEL=DIR`")
    text = f"reproduced by ldr-plugin from DomainBed sweep records in {', '.join(inputs.results_dirs)}"
    tables = domainbed_tables(sel, tuple(spec.selection), source_text=text, env_names=spec.env_names,
                              datasets=spec.datasets or None, algorithms=spec.algorithms or None,
                              domainbed_only=spec.domainbed_only)
    published = {}
    if "domainbed_2020" in spec.published:
        published = {t.table_id: t for t in inputs.optional_published(spec, "domainbed_2020") or []}
    for table in tables:
        dataset, method = table.table_id.rsplit("__", 1)
        if table.kind == "domainbed_dataset" and spec.extra_metrics:
            add_extra_columns(table, sel, method, dataset, spec.extra_metrics, inputs.project, spec.env_names,
                              REPRODUCED_METRICS, spec.layer)
            table.sources[REPRODUCED_METRICS] = ("computed by ldr-plugin (ldr score) on features of the selected "
                                                 "checkpoints: project result records")
        if spec.baseline:
            _add_delta_column(table, sel, method, spec.baseline)
        _add_published_rows(table, published)
        _sort_rows(table, spec.sort)
        if table.kind == "domainbed_averages":  # per dataset (mean ± SE over trials), per-algorithm colours
            name = f"plots/{spec.id}__{table.table_id}.svg"
            if plot_dataset_bars(table, out_dir / name) is not None:
                table.plots.append(name)
    if spec.baseline:  # per selection method: every dataset's paired differences in one forest plot
        for table in [t for t in tables if t.kind == "domainbed_averages"]:
            method = table.table_id.rsplit("__", 1)[1]
            per_dataset = [t for t in tables if t.kind == "domainbed_dataset" and t.table_id.endswith(f"__{method}")]
            name = f"plots/{spec.id}__delta__{method}.svg"
            if plot_paired_differences(per_dataset, delta_column(spec.baseline), out_dir / name,
                                       baseline=spec.baseline, xlabel=f"row − {spec.baseline} (points)") is not None:
                table.plots.append(name)
    how = [(f"DomainBed model selection ({', '.join(spec.selection)}) over {len(sel.sweep)} records "
           f"of {len(sel.sweep.runs)} runs; {len(sel.sweep.incomplete_runs())} runs without `done`"
           + (f", {len(sel.sweep.missing)} expected runs without results." if sel.sweep.missing else ".")
           + (f" Trials {', '.join(map(str, sorted(spec.trials)))} only (the spec's `trials`)." if spec.trials else "")
           + "".join(f" {d}: held-out domains {_domain_text(sel, d, spec.env_names)} only (the spec's `test_envs`); "
                     "a trial is complete, and averaged, over these." for d, _ in held_out)
           + (f" A grid over {_grid_text(sel, spec.hparams_grid)} (set per hparams seed with "
              "`--hparams`): the selection method chooses among its points as among hparams seeds."
              if spec.hparams_grid else ""))]
    ours = [replace(t, rows=[r for r in t.rows if not r.published]) for t in tables]
    if held_out:  # collect_results's text shows every run and domain (X where a trial has none), whatever the spec keeps
        sel = sweep_selection(inputs, spec.order, tuple(sorted(spec.trials)))
        ours = domainbed_tables(sel, tuple(spec.selection), source_text=text, env_names=spec.env_names,
                                datasets=spec.datasets or None, algorithms=spec.algorithms or None,
                                domainbed_only=spec.domainbed_only)
    return Board(spec, tables, how, files={f"{spec.id}.domainbed.txt": render_domainbed_text(ours, len(sel.sweep))})


def _domain_text(sel: SweepSelection, dataset: str, env_names: dict[str, list[str]]) -> str:
    """'0 (0°), 5 (75°)': the held-out domains' indices with their column names."""
    every = names.environment_names(dataset, _n_envs(sel.sweep, dataset), env_names)
    return ", ".join(f"{env} ({every[env]})" for env in sel.test_domains(dataset))


def _grid_text(sel: SweepSelection, grid: list[str]) -> str:
    """'`ldr_start_step` ∈ {500, 1250, 2500}': each grid field with the values its runs set (so a grid
    whose later points never ran shows in the README), or the bare name when no run sets it."""
    found = grid_values(sel.sweep, frozenset(grid))
    return ", ".join(f"`{g}` ∈ {{{', '.join(map(str, found[g]))}}}" if g in found else f"`{g}`" for g in grid)
