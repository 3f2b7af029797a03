"""Cross-model tables: k* Γ′ of each scored model beside its published accuracies, with rank correlations.

Rows come from this project's k* records (``kind = "kstar"``); accuracies are joined on the model id
from the published sources (RobustBench: clean / AutoAttack / corruptions; OpenCLIP: zero-shot),
all in percent. A scored model absent from every published source stays, with visible gaps.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from ldr_plugin.kstar.distance import record_distance
from ldr_plugin.leaderboard.correlation import rank_correlation, stratified_rank_correlation
from ldr_plugin.leaderboard.heldout import FIELD as HELDOUT_FIELD
from ldr_plugin.leaderboard.heldout import SOURCE_KEY as HELDOUT_KEY
from ldr_plugin.leaderboard.published_tables import OC_KEY, RB_KEY
from ldr_plugin.leaderboard.records import ProjectRecords, metric_value
from ldr_plugin.leaderboard.spec import LeaderboardSpec
from ldr_plugin.leaderboard.tables import Cell, Column, Row, Table

ACCURACIES: dict[str, tuple[str, str]] = {
    "clean_acc_pct": ("clean acc (%)", RB_KEY),
    "autoattack_acc_pct": ("AutoAttack acc (%)", RB_KEY),
    "corruptions_acc_pct": ("corruptions acc (%)", RB_KEY),
    "zeroshot_avg_pct": ("zero-shot avg 38 (%)", OC_KEY),
    "zeroshot_imagenet_pct": ("zero-shot ImageNet-1k (%)", OC_KEY),
    HELDOUT_FIELD: ("held-out domain acc (%)", HELDOUT_KEY),
}
REPRODUCED = "reproduced"
STRATA = {"heldout_domain": "held-out domain"}  # spec.stratify -> how the correlation rows name it
FOOTNOTES = {
    "not_published": "—: model id not found in the accuracy source (kept, not dropped)",
    "undefined": "—: Γ′ undefined for this model (no class with finite skewness)",
}


def published_accuracies(robustbench: dict | None, openclip: dict | None) -> dict[str, dict[str, float | None]]:
    """{model_id: {accuracy field: percent}} from the loaded published sources."""
    table: dict[str, dict[str, float | None]] = {}
    for entries in (robustbench or {}, openclip or {}):
        for model_id, entry in entries.items():
            table[model_id] = {f: getattr(entry, f, None) for f in ACCURACIES if hasattr(entry, f)}
    return table


def family_matches(spec_family: str, family: str) -> bool:
    """A spec's ``metric_family`` selects one family ("kstar", "kstar-cosine" …) or, ending in "*",
    every family with that prefix ("kstar*": k* under every distance, rows kept apart by distance)."""
    return family.startswith(spec_family[:-1]) if spec_family.endswith("*") else family == spec_family


def kstar_row_records(spec: LeaderboardSpec, project: ProjectRecords,
                      keep=None) -> dict[tuple[str, str, str, str], list]:
    """(model id, dataset, layer, distance) -> the k* records of that row (one per seed)."""
    rows: dict[tuple[str, str, str, str], list] = {}
    for _, record in project.records:
        if record["kind"] != "kstar" or not family_matches(spec.metric_family, record["metric_family"]):
            continue
        if keep is not None and not keep(record["model_id"]):
            continue
        if (spec.datasets and record["dataset"] not in spec.datasets) or (spec.layer and record["layer"] != spec.layer):
            continue
        if spec.metric not in record["metrics"]:
            continue
        key = (record["model_id"], record["dataset"], record["layer"], record_distance(record))
        rows.setdefault(key, []).append(record)
    return rows


def _metric_cell(values: list[float | None]) -> Cell:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return Cell(missing="—", flags=("undefined",))
    err = float(np.std(np.asarray(finite) / np.sqrt(len(finite)))) if len(finite) > 1 else None
    return Cell(value=float(np.mean(finite)), err=err, n=len(finite), decimals=3)


def _accuracy_fields(spec: LeaderboardSpec, published: dict, model_ids: list[str]) -> list[str]:
    if spec.accuracies:
        unknown = [a for a in spec.accuracies if a not in ACCURACIES]
        if unknown:
            from ldr_plugin.errors import LdrError

            raise LdrError(f"{spec.path}: unknown accuracies {unknown}; expected some of {list(ACCURACIES)}")
        return list(spec.accuracies)
    present = [f for f in ACCURACIES if any(published.get(m, {}).get(f) is not None for m in model_ids)]
    return present or ["clean_acc_pct", "autoattack_acc_pct", "zeroshot_avg_pct"]


def cross_model_table(spec: LeaderboardSpec, project: ProjectRecords, published: dict,
                      keep=None, labels: dict[str, str] | None = None) -> tuple[Table, list[str], list[str]]:
    """Γ′ per scored model (mean ± SE over seeds) and every requested published accuracy; with the
    model id and the k* distance of each row. A row is labelled by ``labels[model_id]`` where given
    (with a dataset/layer suffix if that model was scored on several), else by the model id (with the
    suffix when the table mixes several); a table that mixes distances names each row's distance.
    ``keep(model_id)`` filters models."""
    groups = kstar_row_records(spec, project, keep)
    several = len({(d, layer) for _, d, layer, _ in groups}) > 1
    distances = sorted({dist for *_, dist in groups})
    per_model = Counter((model_id, dist) for model_id, _, _, dist in groups)
    fields = _accuracy_fields(spec, published, [k[0] for k in groups])
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
            cells.append(Cell(value=value, decimals=2, missing="—", flags=flags, source=ACCURACIES[f][1]))
        rows.append((Row(label=label, cells=cells, source=REPRODUCED), model_id, dist))
    rows.sort(key=lambda r: (r[0].cells[0].value is None, r[0].cells[0].value or 0.0, r[0].label))
    model_ids = [model_id for _, model_id, _ in rows]
    row_distances = [dist for _, _, dist in rows]
    rows = [row for row, _, _ in rows]
    columns = [Column("Γ′" if spec.metric == "gamma_prime" else spec.metric)]
    columns += [Column(ACCURACIES[f][0], source=ACCURACIES[f][1]) for f in fields]
    mixed = (f"; distances {', '.join(distances)}: each row names its distance, correlations are computed "
             "per distance, never pooled" if len(distances) > 1 else
             f"; distance {distances[0]}" if distances else "")
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


def correlation_table(spec: LeaderboardSpec, models: Table, strata: list[str | None] | None = None,
                      distances: list[str] | None = None) -> Table:
    """Spearman and Kendall between the metric column and each accuracy column, with CIs; with
    ``strata`` (one per model row, e.g. its held-out domain) also the correlation within strata.
    With ``distances`` (one per model row) naming several k* distances, every correlation is
    computed per distance (rows "… [cosine]"): Γ′ under different distances is never pooled."""
    rows = []
    kw = {"confidence": spec.confidence, "seed": spec.seed, "n_resamples": spec.n_resamples}
    kinds = sorted(set(distances)) if distances and len(set(distances)) > 1 else [None]
    for dist in kinds:
        mine = [i for i in range(len(models.rows)) if dist is None or distances[i] == dist]
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
                  groups: list[str] | None = None, distances: list[str] | None = None) -> list[str]:
    """One Γ′-vs-accuracy scatter per accuracy column (kstar.plot), points coloured by ``groups``
    (one per row, e.g. the algorithm) when given; a table that mixes k* distances gets one scatter
    per distance (the ρ in a title never pools distances). Returns paths relative to out_dir."""
    from ldr_plugin.kstar.plot import plot_gamma_scatter

    written = []
    kinds = sorted(set(distances)) if distances and len(set(distances)) > 1 else [None]
    for dist in kinds:
        mine = [i for i in range(len(models.rows)) if dist is None or distances[i] == dist]
        for j, column in enumerate(models.columns[1:], start=1):
            points: list[tuple[str, Any, Any]] = [(models.rows[i].label, models.rows[i].cells[j].value,
                                                   models.rows[i].cells[0].value) for i in mine]
            if not any(p[1] is not None and p[2] is not None for p in points):
                continue
            name = f"plots/{spec.id}__gamma_vs_{j}{f'__{dist}' if dist else ''}.svg"
            title = spec.title + (f" ({dist} distance)" if dist else "")
            plot_gamma_scatter(points, column.name, out_dir / name, title=title,
                               groups=[groups[i] for i in mine] if groups is not None else None)
            written.append(name)
    return written
