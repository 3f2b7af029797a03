"""Cross-model tables: k* Γ′ of each scored model beside its accuracies, with rank correlations.

Rows come from this project's records of the spec's metric family; accuracies are joined on the
model id from the published sources the spec names (each declares its accuracy fields: RobustBench
clean / AutoAttack / corruptions, OpenCLIP zero-shot) and from what a model's own source says about
it (:meth:`~ldr_plugin.sources.base.ModelSource.describe`: a DomainBed run's accuracy on its held-out
domain, its label, its domain as a stratum), all in percent. A scored model absent from every
source stays, with visible gaps.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from ldr_plugin.errors import LdrError
from ldr_plugin.kstar.distance import DISTANCES, metric_family, record_distance
from ldr_plugin.leaderboard import class_skew
from ldr_plugin.leaderboard.correlation import rank_correlation, stratified_rank_correlation
from ldr_plugin.leaderboard.inputs import BuildInputs
from ldr_plugin.leaderboard.published import published_source
from ldr_plugin.leaderboard.records import ProjectRecords, metric_value
from ldr_plugin.leaderboard.spec import LeaderboardSpec
from ldr_plugin.leaderboard.spec_names import check_spec_names
from ldr_plugin.leaderboard.tables import Board, Cell, Column, ModelFacts, Row, Scatter, Table
from ldr_plugin.plugins import plugin_group
from ldr_plugin.results.record import data_version

HELDOUT = "heldout_acc_pct"  # a model's accuracy on its own held-out domain (its source's ModelFacts)
FACT_FIELDS = {HELDOUT: ("held-out domain acc (%)", "reproduced-runs")}  # field: (column label, source key)
REPRODUCED = "reproduced"
STRATA = {"heldout_domain": "held-out domain"}  # spec.stratify -> how the correlation rows name it
FOOTNOTES = {
    "not_published": "—: model id not found in the accuracy source (kept, not dropped)",
    "undefined": "—: Γ′ undefined for this model (no class with finite skewness)",
    "accuracy_mismatch": ("the published accuracy lies outside the exact 99% binomial interval of the top-1 "
                          "measured on the scored subset: are these the published weights?"),
}
MEASURED = "measured top-1 (%)"


def family_matches(spec_family: str, family: str) -> bool:
    """A spec's ``metric_family`` selects one family ("kstar", "kstar-cosine" …) or, ending in "*",
    every family with that prefix ("kstar*": k* under every distance, rows kept apart by distance)."""
    return family.startswith(spec_family[:-1]) if spec_family.endswith("*") else family == spec_family


def kstar_row_records(spec: LeaderboardSpec, project: ProjectRecords,
                      keep=None) -> dict[tuple[str, str, str, str], list]:
    """(model id, dataset, layer, distance) -> the k* records of that row (one per seed). Records of
    one dataset name computed on different data (another root, files, classes, subset rule or
    metric options: :func:`~ldr_plugin.results.record.data_version`) are different rows, the
    dataset named ``name@version``; never averaged as if they were seeds."""
    chosen = []
    for _, record in project.records:
        if not family_matches(spec.metric_family, record.metric_family):  # (old records: kind "kstar" for all)
            continue
        if keep is not None and not keep(record.model_id):
            continue
        if (spec.datasets and record.dataset not in spec.datasets) or (spec.layer and record.layer != spec.layer):
            continue
        if spec.metric in record.metrics:
            chosen.append(((record.model_id, record.dataset, record.layer, record_distance(record)),
                           data_version(record), record))
    versions: dict[tuple, set[str]] = {}
    for key, version, _ in chosen:
        versions.setdefault(key, set()).add(version)
    rows: dict[tuple[str, str, str, str], list] = {}
    for (model_id, dataset, layer, distance), version, record in chosen:
        if len(versions[(model_id, dataset, layer, distance)]) > 1:
            dataset = f"{dataset}@{version or 'schema1'}"
        rows.setdefault((model_id, dataset, layer, distance), []).append(record)
    return rows


def _measured(records: list) -> tuple[int, int, str | None] | None:
    """(correct, n, published field it estimates) summed over a row's records (its seeds), from the
    ``accuracy`` that ``ldr score`` measured in the forward pass of the features; None without any."""
    measured = [r.accuracy for r in records if isinstance(r.accuracy.get("n"), int) and r.accuracy["n"] > 0]
    if not measured:
        return None
    return (sum(int(a["correct"]) for a in measured), sum(int(a["n"]) for a in measured),
            measured[0].get("compares_to"))


def _measured_cell(measured: tuple[int, int, str | None] | None, published: dict[str, Any]) -> Cell:
    if measured is None:
        return Cell(missing="—")
    from scipy.stats import binomtest

    correct, n, field = measured
    low, high = binomtest(correct, n).proportion_ci(confidence_level=0.99, method="exact")
    reference = published.get(field) if field else None
    flagged = reference is not None and not 100 * low <= reference <= 100 * high
    return Cell(value=100.0 * correct / n, decimals=2, n=n, flags=("accuracy_mismatch",) if flagged else ())


def _metric_cell(values: list[float | None]) -> Cell:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return Cell(missing="—", flags=("undefined",))
    err = float(np.std(np.asarray(finite) / np.sqrt(len(finite)))) if len(finite) > 1 else None
    return Cell(value=float(np.mean(finite)), err=err, n=len(finite), decimals=3)


def accuracy_columns(spec: LeaderboardSpec) -> dict[str, tuple[str, str]]:
    """Every accuracy field a cross-model table may show: (column label, source key), the spec's
    published sources first (in its order), then the other registered ones, then the model facts."""
    names = [*spec.published, *(n for n in plugin_group("published").names() if n not in spec.published)]
    columns = {}
    for name in names:
        source = published_source(name)
        columns.update({f: (label, source.key) for f, label in source.accuracy_fields.items() if f not in columns})
    return {**columns, **FACT_FIELDS}


def _accuracy_fields(spec: LeaderboardSpec, columns: dict, published: dict, model_ids: list[str]) -> list[str]:
    if spec.accuracies:
        unknown = [a for a in spec.accuracies if a not in columns]
        if unknown:
            raise LdrError(f"{spec.path}: unknown accuracies {unknown}; expected some of {list(columns)}")
        return list(spec.accuracies)
    present = [f for f in columns if any(published.get(m, {}).get(f) is not None for m in model_ids)]
    return present or ["clean_acc_pct", "autoattack_acc_pct", "zeroshot_avg_pct"]


def cross_model_table(spec: LeaderboardSpec, project: ProjectRecords, published: dict,
                      keep=None, labels: dict[str, str] | None = None,
                      known: dict[str, tuple[str, str]] | None = None) -> tuple[Table, list[str], list[str]]:
    """Γ′ per scored model (mean ± SE over seeds) and every requested published accuracy; with the
    model id and the k* distance of each row. A row is labelled by ``labels[model_id]`` where given
    (with a dataset/layer suffix if that model was scored on several), else by the model id (with the
    suffix when the table mixes several); a table that mixes distances names each row's distance.
    ``keep(model_id)`` filters models."""
    groups = kstar_row_records(spec, project, keep)
    several = len({(d, layer) for _, d, layer, _ in groups}) > 1
    distances = sorted({dist for *_, dist in groups})
    per_model = Counter((model_id, dist) for model_id, _, _, dist in groups)
    measured = any(_measured(records) for records in groups.values())
    known = accuracy_columns(spec) if known is None else known
    fields = _accuracy_fields(spec, known, published, [k[0] for k in groups])
    rows = []
    for (model_id, dataset, layer, dist), records in groups.items():
        if labels and model_id in labels:  # a named run: its label names the domain it is scored on
            label = labels[model_id] + (f" [{dataset}, {layer}]" if per_model[(model_id, dist)] > 1 else "")
        else:
            label = model_id + (f" [{dataset}, {layer}]" if several else "")
        label += f" [{dist}]" if len(distances) > 1 else ""
        cells = [_metric_cell([metric_value(r, spec.metric) for r in records])]
        for f in fields:
            value = published.get(model_id, {}).get(f)
            flags = () if value is not None else ("not_published",)
            cells.append(Cell(value=value, decimals=2, missing="—", flags=flags, source=known[f][1]))
        if measured:
            cells.append(_measured_cell(_measured(records), published.get(model_id, {})))
        rows.append((Row(label=label, cells=cells, source=REPRODUCED), model_id, dist))
    rows.sort(key=lambda r: (r[0].cells[0].value is None, r[0].cells[0].value or 0.0, r[0].label))
    model_ids = [model_id for _, model_id, _ in rows]
    row_distances = [dist for _, _, dist in rows]
    rows = [row for row, _, _ in rows]
    mixed = (f"; distances {', '.join(distances)}: each row names its distance, correlations are computed "
             "per distance, never pooled" if len(distances) > 1 else
             f"; distance {distances[0]}" if distances else "")
    columns = [Column("Γ′" if spec.metric == "gamma_prime" else spec.metric)]
    columns += [Column(known[f][0], source=known[f][1]) for f in fields]
    columns += [Column(MEASURED)] if measured else []
    table = Table(table_id=f"{spec.id}__models", title=f"{spec.title}: {spec.metric} and accuracy",
                  columns=columns, rows=rows, row_header="model id", section=spec.title, kind="cross_model",
                  footnotes=dict(FOOTNOTES),
                  notes=[f"{len(rows)} scored models; k* records of family '{spec.metric_family}'"
                         + (f", layer {spec.layer}" if spec.layer else "") + mixed])
    return table, model_ids, row_distances


def _ci_text(low: float, high: float) -> str:
    return "—" if math.isnan(low) else f"[{low:.3f}, {high:.3f}]"


def _correlation_row(label: str, results: list) -> Row:
    cells: list[Cell] = []
    for rc in results:
        ok = not math.isnan(rc.statistic)
        cells += [Cell(value=rc.statistic if ok else None, decimals=3, missing="—", flags=() if ok else ("too_few",)),
                  Cell(text=_ci_text(rc.ci_low, rc.ci_high)),
                  Cell(value=rc.pvalue if ok else None, decimals=4, missing="—")]
    return Row(label=label, cells=[Cell(value=results[-1].n, decimals=0), *cells], source=REPRODUCED)


def _per_distance(distances: list[str] | None, n_rows: int) -> list[tuple[str | None, list[int]]]:
    """(distance, row indices) groups: one group of all rows unless the rows mix k* distances."""
    if not distances or len(set(distances)) < 2:
        return [(None, list(range(n_rows)))]
    return [(d, [i for i in range(n_rows) if distances[i] == d]) for d in sorted(set(distances))]


def correlation_table(spec: LeaderboardSpec, models: Table, strata: list[str | None] | None = None,
                      distances: list[str] | None = None) -> Table:
    """Spearman and Kendall between the metric column and each accuracy column, with CIs; with
    ``strata`` (one per model row, e.g. its held-out domain) also the correlation within strata.
    With ``distances`` (one per model row) naming several k* distances, every correlation is
    computed per distance (rows "… [cosine]"): Γ′ under different distances is never pooled."""
    rows = []
    kw = {"confidence": spec.confidence, "seed": spec.seed, "n_resamples": spec.n_resamples}
    for dist, mine in _per_distance(distances, len(models.rows)):
        tag = f" [{dist}]" if dist else ""
        gamma = [models.rows[i].cells[0].value for i in mine]
        for j, column in enumerate(models.columns[1:], start=1):
            acc = [models.rows[i].cells[j].value for i in mine]
            rows.append(_correlation_row(column.name + tag, [rank_correlation(acc, gamma, m, ci=spec.ci, **kw)
                                                             for m in ("spearman", "kendall")]))
            if strata is not None:
                within = [strata[i] for i in mine]
                rows.append(_correlation_row(f"{column.name}, within {STRATA[spec.stratify]}{tag}",
                                             [stratified_rank_correlation(acc, gamma, within, m, **kw)
                                              for m in ("spearman", "kendall")]))
    pct = f"{100 * spec.confidence:g}%"
    return Table(
        table_id=f"{spec.id}__correlation", title=f"{spec.title}: rank correlation of Γ′ with accuracy",
        columns=[Column("n models"), Column("Spearman ρ"), Column(f"ρ {pct} CI"), Column("ρ p"),
                 Column("Kendall τ"), Column(f"τ {pct} CI"), Column("τ p")],
        rows=rows, row_header="accuracy", section=spec.title, kind="correlation",
        footnotes={"too_few": "—: fewer than 3 models with both values (or a constant column)"},
        notes=[f"CI: {spec.ci}" + (f" (seed {spec.seed}, {spec.n_resamples} resamples)" if spec.ci == "bootstrap"
                                    else " z-transform, Fieller–Hartley–Pearson standard errors")]
        + ([(f"'within {STRATA[spec.stratify]}' rows: size-weighted mean of the per-stratum "
              f"correlations (strata with ≥ 3 models); CI by stratified paired bootstrap, p by permutation "
              f"inside strata (seed {spec.seed}, {spec.n_resamples} resamples)")] if strata is not None else []),
    )


def scatter_plots(spec: LeaderboardSpec, models: Table, out_dir: Path,
                  groups: list[str] | None = None, distances: list[str] | None = None) -> list[Scatter]:
    """One Γ′-vs-accuracy scatter per accuracy column (kstar.plot), points coloured by ``groups``
    (one per row, e.g. the algorithm) when given; a table that mixes k* distances gets one scatter
    per distance (the ρ in a title never pools distances). Returns each plot's file name (relative
    to out_dir) with its drawn points (for the page's interactive scatter)."""
    from ldr_plugin.kstar.plot import plot_gamma_scatter  # matplotlib: only when there is a plot to draw

    written = []
    for dist, mine in _per_distance(distances, len(models.rows)):
        for j, column in enumerate(models.columns[1:], start=1):
            points: list[tuple[str, Any, Any]] = [(models.rows[i].label, models.rows[i].cells[j].value,
                                                   models.rows[i].cells[0].value) for i in mine]
            if not any(p[1] is not None and p[2] is not None for p in points):
                continue
            name = f"plots/{spec.id}__gamma_vs_{j}{f'__{dist}' if dist else ''}.svg"
            title = spec.title + (f" ({dist} distance)" if dist else "")
            mine_groups = [groups[i] for i in mine] if groups is not None else None
            plot_gamma_scatter(points, column.name, out_dir / name, title=title, groups=mine_groups)
            drawn = tuple((label, float(x), float(y), g) for (label, x, y), g
                          in zip(points, mine_groups or [""] * len(points))
                          if x is not None and y is not None and math.isfinite(x) and math.isfinite(y))
            written.append(Scatter(name, title, column.name, models.columns[0].name, drawn, groups is not None))
    return written


def model_facts(project: ProjectRecords) -> dict[str, ModelFacts]:
    """What each scored model's source says about it (the first record it describes), by model id."""
    group, sources, facts = plugin_group("models"), {}, {}
    for _, record in project.records:
        name, _, identifier = record.model_id.partition(":")
        if record.model_id in facts or name not in group.names():
            continue
        if name not in sources:
            sources[name] = group.load(name)()
        described = sources[name].describe(identifier, record.dataset)
        if described is not None:
            facts[record.model_id] = described
    return facts


def _check_names(spec: LeaderboardSpec, inputs: BuildInputs) -> None:
    """A typo in the spec's metric_family or metric is an error with close matches."""
    known = {*plugin_group("metrics").names(), *(metric_family(d) for d in DISTANCES)}
    found = {r.metric_family for _, r in inputs.project.records}
    family = spec.metric_family
    if family.endswith("*"):  # a prefix: some family must start with it
        family = next((f for f in sorted(known | found) if f.startswith(family[:-1])), family[:-1])
    check_spec_names(spec.path, "metric_family", [family], found=found, registered=known)
    records = [r for _, r in inputs.project.records if family_matches(spec.metric_family, r.metric_family)]
    if records:  # no records: an empty table that says so
        found = {name for r in records for name in r.metrics}
        inputs.report(check_spec_names(spec.path, "metric", [spec.metric], found=found, registered=set()))


def cross_model_board(spec: LeaderboardSpec, inputs: BuildInputs, out_dir: Path) -> Board:
    """Γ′ of every scored model joined with its accuracies, rank correlations, scatter plots."""
    _check_names(spec, inputs)
    columns, accuracies, sources = accuracy_columns(spec), {}, {}
    for name in spec.published:
        entries = inputs.optional_published(spec, name)
        if entries is not None:
            source = published_source(name)
            for model_id, values in source.accuracies(entries).items():
                accuracies.setdefault(model_id, {}).update(values)
            sources[source.key] = source.text
    facts = model_facts(inputs.project) if HELDOUT in spec.accuracies or spec.stratify else {}
    own = {m: f for m, f in facts.items() if not f.checkpoint}  # trained models (final weights)
    if HELDOUT in spec.accuracies:  # a model's own accuracy on its held-out domain
        for model_id, fact in own.items():
            accuracies.setdefault(model_id, {})[HELDOUT] = fact.accuracies.get(HELDOUT)
            sources[FACT_FIELDS[HELDOUT][1]] = fact.provenance[0]
    keep = (lambda model_id: not (model_id in facts and facts[model_id].checkpoint)) if HELDOUT in spec.accuracies else None
    labels = {model_id: fact.label for model_id, fact in own.items() if fact.label}
    models, model_ids, distances = cross_model_table(spec, inputs.project, accuracies, keep, labels, columns)
    models.sources = {REPRODUCED: f"k* records computed by ldr-plugin, read from {', '.join(inputs.results_dirs)}",
                      **sources}
    strata = [own[m].stratum if m in own else None for m in model_ids] if spec.stratify == "heldout_domain" else None
    corr = correlation_table(spec, models, strata, distances)
    corr.sources = dict(models.sources)
    if models.rows:
        groups = [own[m].group for m in model_ids] if own and all(m in own for m in model_ids) else None
        corr.scatters = scatter_plots(spec, models, out_dir, groups, distances)
        corr.plots = [s.plot for s in corr.scatters]
    joined = [*spec.published, *sorted({f.provenance[1] for f in own.values()} if HELDOUT in spec.accuracies else ())]
    how = [(f"{len(models.rows)} models with k* '{spec.metric}' records; accuracies joined on the model id "
           f"from {', '.join(joined) or 'no accuracy source'}.")]
    if keep is not None:
        how.append("One point per run, its final model: the earlier checkpoints scored for the "
                   "selected-checkpoint columns (model_step<k>.pkl) are left out.")
    skew = class_skew.class_skew_table(spec, kstar_row_records(spec, inputs.project, keep))
    if skew is not None:
        skew.sources = {class_skew.SOURCE: models.sources[REPRODUCED]}
    # the headline (ρ, CI, n) before the per-model rows
    return Board(spec, [corr, models, *([skew] if skew is not None else [])], how)
