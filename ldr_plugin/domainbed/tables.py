"""DomainBed result tables from a sweep: per dataset and selection method, plus the Averages table,
and the text ``collect_results`` prints for them (byte for byte).

Numbers are computed exactly as DomainBed's ``collect_results``: a cell is ``100·mean`` and
``100·std(accs/√n)`` (population std) over trials in group order; "Avg" is the plain mean of the
per-env means (``X`` if one is missing); the Averages table averages each trial over its test envs
first. Beyond DomainBed: datasets outside its list are kept, cells built from runs without
``done`` or lacking runs their sweep expects are flagged, cells with fewer trials than the table's
fullest cell are flagged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ldr_plugin.domainbed import names
from ldr_plugin.domainbed.runs import Sweep
from ldr_plugin.domainbed.selection import METHOD_NAMES, METHODS, Choice, GroupKey, Groups
from ldr_plugin.errors import LdrError
from ldr_plugin.leaderboard.tables import Cell, Column, Row, Table

FLAG_INCOMPLETE = "incomplete"
FLAG_MISSING = "missing"
FLAG_FEWER_TRIALS = "fewer_trials"
FOOTNOTES = {
    FLAG_INCOMPLETE: ("includes runs without a `done` file (unfinished or crashed), or lacks runs the sweep "
                      "expects (not started); may change when they finish"),
    FLAG_MISSING: "X: no checkpoint could be selected (runs missing; for leave-one-domain-out, a pair run missing)",
    FLAG_FEWER_TRIALS: "fewer trials than the fullest cell of this table",
}


@dataclass
class SweepSelection:
    """A sweep with its groups and every method's choices, computed once and reused by tables."""

    sweep: Sweep
    groups: Groups
    choices: dict[str, dict[GroupKey, Choice]] = field(default_factory=dict)
    incomplete_groups: set[GroupKey] = field(default_factory=set)
    # {dataset: the test domains a study holds out}; a dataset not listed: every domain, as DomainBed
    held_out: dict[str, tuple[int, ...]] = field(default_factory=dict)

    @classmethod
    def build(cls, sweep: Sweep, methods: tuple[str, ...] = ("iid", "loo", "oracle"),
              held_out: dict[str, list[int]] | None = None) -> SweepSelection:
        """Group the records and run every selection method.

        ``held_out`` ({dataset: [env, ...]}) is for a study that holds out only some domains of a
        dataset: that dataset's runs with another test domain are left out, its tables show those
        domains only, and a trial is complete when each of them has a choice (without it, a trial
        lacking the other domains never is, and DomainBed's Avg is X)."""
        held = {d: tuple(sorted(set(envs))) for d, envs in (held_out or {}).items()}
        for dataset, envs in held.items():
            n_envs = _n_envs(sweep, dataset)
            if not n_envs:
                raise LdrError(f"dataset {dataset!r} has no runs here, so no domains to hold out")
            if not envs or envs[0] < 0 or envs[-1] >= n_envs:
                raise LdrError(f"held-out domains {list(envs)} of {dataset}: expected indices in 0..{n_envs - 1}")
        if held:
            sweep = sweep.only(lambda key: key[1] not in held or set(key[4]) <= set(held[key[1]]))
        groups = Groups.of(sweep.columns)
        out = cls(sweep, groups, held_out=held)
        for method in methods:
            out.choices[method] = METHODS[method].select(sweep.columns, groups)
        incomplete_runs = set(sweep.incomplete_runs())
        if incomplete_runs:
            unfinished = np.array([run in incomplete_runs for run in sweep.record_runs], dtype=bool)
            touched = np.unique(groups.gs_group[groups.m_gs[unfinished[groups.m_rec]]])
            out.incomplete_groups.update(groups.keys[g] for g in touched)
        for trial, dataset, algorithm, _, envs in sweep.missing.values():  # a grid point or pair not yet run
            out.incomplete_groups.update((trial, dataset, algorithm, env) for env in envs)
        return out

    def test_domains(self, dataset: str) -> tuple[int, ...]:
        """The test domains of ``dataset`` its tables show and a complete trial has: every domain, or
        the ones ``held_out`` names."""
        return self.held_out.get(dataset) or tuple(range(_n_envs(self.sweep, dataset)))


def format_mean(values: list[float]) -> tuple[float | None, float | None]:
    """DomainBed's cell: (100·mean, 100·population-std(values/√n)), or (None, None) when empty."""
    if len(values) == 0:
        return None, None
    mean = 100 * np.mean(list(values))
    err = 100 * np.std(np.asarray(list(values)) / np.sqrt(len(values)))
    return float(mean), float(err)


def _avg_cell(means: list[float | None]) -> Cell:
    if not means or any(m is None for m in means):
        return Cell(value=None, flags=(FLAG_MISSING,))
    return Cell(value=float(sum(means) / len(means)))  # Python sum over the cells, as DomainBed


def _n_envs(sweep: Sweep, dataset: str) -> int:
    if dataset in names.DATASET_ENVIRONMENTS:
        return len(names.DATASET_ENVIRONMENTS[dataset])
    registered = names.registered_environments(dataset)
    if registered:
        return len(registered)
    columns = sweep.columns
    rows = np.isin(columns.args_ix, [i for i, k in enumerate(columns.args_keys) if k[1] == dataset])
    return int(columns.n_out[rows].max(initial=0))


def _mean_cell(accs: list[float], incomplete: bool) -> Cell:
    mean, err = format_mean(accs)
    flags = (FLAG_MISSING,) if mean is None else ()
    if incomplete:
        flags += (FLAG_INCOMPLETE,)
    return Cell(value=mean, err=err, n=len(accs), flags=flags)


def _flag_fewer_trials(rows: list[Row], n_columns: int) -> None:
    counts = [c.n for r in rows for c in r.cells[:n_columns] if c.n]
    fullest = max(counts, default=0)
    for row in rows:
        for cell in row.cells[:n_columns]:
            if cell.n and cell.n < fullest:
                cell.flags += (FLAG_FEWER_TRIALS,)


def dataset_table(sel: SweepSelection, method: str, dataset: str, algorithms: list[str],
                  env_names: dict[str, list[str]] | None, source: str) -> tuple[Table, dict[str, float | None]]:
    """One dataset's table for one method; also returns each algorithm's Avg (for sorting/joins)."""
    envs = sel.test_domains(dataset)
    choices = sel.choices[method]
    rows, avgs = [], {}
    for algorithm in algorithms:
        cells, means = [], []
        for env in envs:
            keys = [k for k in choices if k[1:] == (dataset, algorithm, env)]
            cell = _mean_cell([choices[k].test_acc for k in keys], any(k in sel.incomplete_groups for k in keys))
            cells.append(cell)
            means.append(cell.value)
        avg = _avg_cell(means)
        avgs[algorithm] = avg.value
        rows.append(Row(label=algorithm, cells=[*cells, avg], source=source))
    _flag_fewer_trials(rows, len(envs))
    every = names.environment_names(dataset, _n_envs(sel.sweep, dataset), env_names)
    columns = [Column(every[env]) for env in envs] + [Column("Avg")]
    table = Table(
        table_id=f"{dataset}__{method}", title=f"Dataset: {dataset}, model selection method: {METHOD_NAMES[method]}",
        columns=columns, rows=rows, section=METHOD_NAMES[method], kind="domainbed_dataset",
    )
    return table, avgs


def averages_table(sel: SweepSelection, method: str, datasets: list[str], algorithms: list[str],
                   source: str) -> Table:
    """DomainBed's "Averages" table: per trial the mean over test envs, then mean ± SE over trials."""
    choices = sel.choices[method]
    rows = []
    for algorithm in algorithms:
        cells, means = [], []
        for dataset in datasets:
            keys = [k for k in choices if k[1:3] == (dataset, algorithm)]
            by_trial: dict[int, list[float]] = {}
            for k in keys:
                by_trial.setdefault(k[0], []).append(choices[k].test_acc)
            trial_means = [float(np.mean(by_trial[t])) for t in sorted(by_trial)]
            cell = _mean_cell(trial_means, any(k in sel.incomplete_groups for k in keys))
            cells.append(cell)
            means.append(cell.value)
        rows.append(Row(label=algorithm, cells=[*cells, _avg_cell(means)], source=source))
    return Table(
        table_id=f"averages__{method}", title=f"Averages, model selection method: {METHOD_NAMES[method]}",
        columns=[Column(d) for d in datasets] + [Column("Avg")], rows=rows, section=METHOD_NAMES[method],
        kind="domainbed_averages",
    )


def sweep_names(sweep: Sweep, domainbed_only: bool = False) -> tuple[list[str], list[str]]:
    """(algorithms, datasets) present in the sweep, in DomainBed's order."""
    keys = sweep.columns.args_keys  # in order of first appearance, as the records
    algorithms = list(dict.fromkeys(k[2] for k in keys))
    datasets = list(dict.fromkeys(k[1] for k in keys))
    return names.order_algorithms(algorithms), names.order_datasets(datasets, domainbed_only=domainbed_only)


def domainbed_tables(
    sel: SweepSelection,
    methods: tuple[str, ...] = ("iid", "loo", "oracle"),
    *,
    source: str = "reproduced",
    source_text: str = "reproduced by ldr-plugin from DomainBed sweep records",
    env_names: dict[str, list[str]] | None = None,
    datasets: list[str] | None = None,
    algorithms: list[str] | None = None,
    domainbed_only: bool = False,
) -> list[Table]:
    """Every table ``collect_results`` prints, in its order: per method, each dataset then Averages."""
    all_algorithms, all_datasets = sweep_names(sel.sweep, domainbed_only)
    algorithms = [a for a in all_algorithms if algorithms is None or a in algorithms]
    datasets = [d for d in all_datasets if datasets is None or d in datasets]
    tables = []
    for method in methods:
        for dataset in datasets:
            tables.append(dataset_table(sel, method, dataset, algorithms, env_names, source)[0])
        tables.append(averages_table(sel, method, datasets, algorithms, source))
    for table in tables:
        table.sources[source] = source_text
        table.footnotes.update(FOOTNOTES)
    return tables


_WIDTH = {"domainbed_dataset": 20, "domainbed_averages": 25}


def _row(values: list[str], width: int) -> str:
    # DomainBed pads/truncates every value to the column width, joins with two spaces and
    # prints a trailing space (print(..., "")).
    return "  ".join(str(v).ljust(width)[:width] for v in values) + " \n"


def render_domainbed_text(tables: list[Table], total_records: int) -> str:
    """The text ``collect_results`` writes to ``results.txt`` for these tables."""
    out = [f"Total records: {total_records}\n"]
    for table in tables:
        width = _WIDTH.get(table.kind)
        if width is None:
            continue
        core = [i for i, c in enumerate(table.columns) if not c.extra]
        out.append("\n")
        out.append(f"-------- {table.title}\n")
        out.append(_row([table.row_header] + [table.columns[i].name for i in core], width))
        for row in table.rows:
            out.append(_row([row.label] + [row.cells[i].plain("+/-") for i in core], width))
    return "".join(out)
