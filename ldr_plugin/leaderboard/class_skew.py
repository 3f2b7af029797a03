"""Class-skew diagnostics beside a cross-model table: is averaging per-class γ into Γ′ sound?

Per model row (model, dataset, layer, k* distance): the spread of its per-class γ (population std,
min, max: a Γ′ that averages very different values says little about any class), and the mean
Spearman ρ between its per-class γ and those of every other model scored on the same dataset,
layer and distance (classes matched by name, finite γ in both, at least 3): a high ρ means the
classes keep their ranking across models (Γ′ moves them together); a low one means models differ
class by class, which Γ′ hides. Per-class γ come from the records' ``detail`` (``per_class``, or
``metric.per_class`` in ``ldr score`` records), averaged over seeds.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import scipy.stats

from ldr_plugin.leaderboard.tables import Cell, Column, Row, Table

SOURCE = "reproduced"


def class_gammas(record: Any) -> dict[str, float]:
    """Finite per-class γ of one k* record (a Record or its dict), by class name (empty when the
    record has none)."""
    detail = (record.get("detail") if isinstance(record, dict) else record.detail) or {}
    per_class = detail.get("per_class") or (detail.get("metric") or {}).get("per_class") or []
    return {str(c["name"]): float(c["gamma"]) for c in per_class
            if isinstance(c, dict) and isinstance(c.get("gamma"), (int, float)) and math.isfinite(c["gamma"])}


def _mean_gammas(records: list[Any]) -> dict[str, float]:
    values: dict[str, list[float]] = {}
    for record in records:
        for name, gamma in class_gammas(record).items():
            values.setdefault(name, []).append(gamma)
    return {name: float(np.mean(v)) for name, v in values.items()}


def _rho(a: dict[str, float], b: dict[str, float]) -> float:
    shared = sorted(set(a) & set(b))
    if len(shared) < 3:
        return math.nan
    x, y = [a[k] for k in shared], [b[k] for k in shared]
    if len(set(x)) < 2 or len(set(y)) < 2:
        return math.nan
    return float(scipy.stats.spearmanr(x, y).statistic)


def class_skew_table(spec, groups: dict[tuple[str, str, str, str], list[Any]]) -> Table | None:
    """The diagnostics table for the rows of a cross-model table (``groups``: (model id, dataset,
    layer, distance) -> records); None when no record carries per-class γ."""
    gammas = {key: _mean_gammas(records) for key, records in groups.items()}
    if not any(gammas.values()):
        return None
    by_context: dict[tuple[str, str, str], list] = {}
    for key in gammas:
        by_context.setdefault(key[1:], []).append(key)
    rho_of: dict[tuple, list[float]] = {key: [] for key in gammas}
    notes = []
    for context, keys in sorted(by_context.items()):
        pairs = []
        for k1, k2 in itertools.combinations(keys, 2):
            r = _rho(gammas[k1], gammas[k2])
            if not math.isnan(r):
                rho_of[k1].append(r)
                rho_of[k2].append(r)
                pairs.append(r)
        if pairs:
            notes.append(f"{context[0]} / {context[1]} / {context[2]} distance: mean Spearman ρ of per-class γ "
                         f"between models {np.mean(pairs):.3f} over {len(pairs)} pairs "
                         f"(min {np.min(pairs):.3f}, max {np.max(pairs):.3f})")
    rows = []
    for key in sorted(gammas, key=lambda k: (k[1], k[2], k[3], k[0])):
        values = np.array(list(gammas[key].values()))
        model_id, dataset, layer, distance = key
        cells = [Cell(value=float(values.std()) if values.size else None, decimals=3, missing="—"),
                 Cell(value=float(values.min()) if values.size else None, decimals=3, missing="—"),
                 Cell(value=float(values.max()) if values.size else None, decimals=3, missing="—"),
                 Cell(value=values.size, decimals=0),
                 Cell(value=float(np.mean(rho_of[key])) if rho_of[key] else None, decimals=3, missing="—",
                      flags=() if rho_of[key] else ("no_pair",))]
        rows.append(Row(label=f"{model_id} [{dataset}, {layer}, {distance}]", cells=cells, source=SOURCE))
    return Table(
        table_id=f"{spec.id}__class_skew", title=f"{spec.title}: spread of the per-class γ behind Γ′",
        columns=[Column("per-class γ std"), Column("min γ"), Column("max γ"), Column("classes"),
                 Column("mean ρ of per-class γ with other models")],
        rows=rows, row_header="model [dataset, layer, distance]", section=spec.title, kind="class_skew",
        footnotes={"no_pair": ("—: no other model on the same dataset, layer and distance shares ≥ 3 classes "
                               "with finite γ")},
        notes=[("per-class γ: classes with a finite γ, averaged over seeds; ρ only between models of the same "
                "dataset, layer and distance"), *notes],
    )
