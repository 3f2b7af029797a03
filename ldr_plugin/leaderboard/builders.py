"""One builder per leaderboard kind: spec + inputs -> a Board (titled list of tables, plots written)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ldr_plugin.errors import LdrError
from ldr_plugin.leaderboard import class_skew, crossmodel, heldout, published_tables
from ldr_plugin.leaderboard.domainbed_tables import domainbed_tables
from ldr_plugin.leaderboard.extras import add_extra_columns
from ldr_plugin.leaderboard.inputs import BuildInputs
from ldr_plugin.leaderboard.plots import plot_average_bars
from ldr_plugin.leaderboard.spec import LeaderboardSpec
from ldr_plugin.leaderboard.tables import Cell, Row, Table

REPRODUCED_METRICS = "reproduced-metrics"


@dataclass
class Board:
    """A built leaderboard: tables in order, plus what a reader must know about how it was made."""

    spec: LeaderboardSpec
    tables: list[Table]
    how: list[str] = field(default_factory=list)


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


def _sort_rows(table: Table, how: str) -> None:
    if how == "domainbed":
        return
    if how != "avg_desc":
        raise LdrError(f"sort {how!r} is not supported for DomainBed tables; use 'domainbed' or 'avg_desc'")
    j = [c.name for c in table.columns].index("Avg")
    table.rows.sort(key=lambda r: (r.cells[j].value is None, -(r.cells[j].value or 0.0)))


def domainbed_board(spec: LeaderboardSpec, inputs: BuildInputs, out_dir: Path) -> Board:
    """DomainBed tables of the sweeps under --results (+ extra metric columns, published rows, plots)."""
    sel = inputs.selection(spec.order)
    if not len(sel.sweep):
        raise LdrError(f"{spec.path}: no DomainBed sweep records (<dir>/<run>/results.jsonl) under "
                       f"{inputs.results_dirs}")
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
        _add_published_rows(table, published)
        _sort_rows(table, spec.sort)
        if table.kind == "domainbed_averages" and any(r.cells[-1].value is not None for r in table.rows):
            name = f"plots/{spec.id}__{table.table_id}.svg"
            plot_average_bars(table, "Avg", out_dir / name)
            table.plots.append(name)
    how = [(f"DomainBed model selection ({', '.join(spec.selection)}) over {len(sel.sweep)} records "
           f"of {len(sel.sweep.runs)} runs; {len(sel.sweep.incomplete_runs())} runs without `done`.")]
    return Board(spec, tables, how)


def cross_model_board(spec: LeaderboardSpec, inputs: BuildInputs, out_dir: Path) -> Board:
    """Γ′ of every scored model joined with published accuracies, rank correlations, scatter plots."""
    rb = inputs.optional_published(spec, "robustbench") if "robustbench" in spec.published else None
    oc = inputs.optional_published(spec, "openclip") if "openclip" in spec.published else None
    accuracies = crossmodel.published_accuracies(rb, oc)
    runs = heldout.heldout_runs(inputs.project) if heldout.FIELD in spec.accuracies or spec.stratify else {}
    if heldout.FIELD in spec.accuracies:  # runs trained here: accuracy on their own held-out domain
        for model_id, run in runs.items():
            accuracies.setdefault(model_id, {})[heldout.FIELD] = run.acc_pct
    keep = (lambda model_id: not heldout.is_run_checkpoint(model_id)) if heldout.FIELD in spec.accuracies else None
    labels = {model_id: run.label for model_id, run in runs.items()}
    models, model_ids, distances = crossmodel.cross_model_table(spec, inputs.project, accuracies, keep, labels)
    models.sources[crossmodel.REPRODUCED] = (f"k* records computed by ldr-plugin, read from "
                                             f"{', '.join(inputs.results_dirs)}")
    if heldout.FIELD in spec.accuracies:
        models.sources[heldout.SOURCE_KEY] = heldout.SOURCE_TEXT
    if rb is not None:
        models.sources[published_tables.RB_KEY] = published_tables.robustbench.SOURCE_TEXT
    if oc is not None:
        models.sources[published_tables.OC_KEY] = published_tables.openclip.SOURCE_TEXT
    strata = None
    if spec.stratify == "heldout_domain":
        strata = [runs[model_id].domain if model_id in runs else None for model_id in model_ids]
    corr = crossmodel.correlation_table(spec, models, strata, distances)
    corr.sources = dict(models.sources)
    if models.rows:
        groups = [runs[m].algorithm for m in model_ids] if runs and all(m in runs for m in model_ids) else None
        corr.plots = crossmodel.scatter_plots(spec, models, out_dir, groups, distances)
    joined = [*spec.published, *(["the runs' own results.jsonl"] if heldout.FIELD in spec.accuracies else [])]
    how = [(f"{len(models.rows)} models with k* '{spec.metric}' records; accuracies joined on the model id "
           f"from {', '.join(joined) or 'no accuracy source'}.")]
    if keep is not None:
        how.append("One point per run, its final model: the earlier checkpoints scored for the "
                   "selected-checkpoint columns (model_step<k>.pkl) are left out.")
    skew = class_skew.class_skew_table(spec, crossmodel.kstar_row_records(spec, inputs.project, keep))
    if skew is not None:
        skew.sources = {class_skew.SOURCE: models.sources[crossmodel.REPRODUCED]}
    return Board(spec, [models, corr, *([skew] if skew is not None else [])], how)


def published_domainbed_board(spec: LeaderboardSpec, inputs: BuildInputs, out_dir: Path) -> Board:
    """DomainBed's published 2020 tables, as published (every row marked)."""
    tables = [t for t in inputs.published(spec, "domainbed_2020")
              if (not spec.datasets or t.table_id.rsplit("__", 1)[0] in spec.datasets + ["averages"])]
    return Board(spec, tables, ["Parsed from DomainBed's results.tex (collect_results --latex output)."])


def published_robustbench_board(spec: LeaderboardSpec, inputs: BuildInputs, out_dir: Path) -> Board:
    """RobustBench leaderboards per dataset and threat model (clean and AutoAttack/corruption accuracy)."""
    entries = inputs.published(spec, "robustbench")
    tables = published_tables.robustbench_tables(entries, spec.datasets, spec.threat_models)
    return Board(spec, tables, [f"{len(entries)} RobustBench model_info entries; percent strings read as numbers."])


def published_openclip_board(spec: LeaderboardSpec, inputs: BuildInputs, out_dir: Path) -> Board:
    """OpenCLIP zero-shot averages (fractions converted to percent)."""
    table = published_tables.openclip_table(inputs.published(spec, "openclip"), spec.limit)
    return Board(spec, [table], ["OpenCLIP openclip_results.csv; fractions × 100."])


BUILDERS = {
    "domainbed": domainbed_board,
    "cross_model": cross_model_board,
    "published_domainbed": published_domainbed_board,
    "published_robustbench": published_robustbench_board,
    "published_openclip": published_openclip_board,
}
