"""A k* summary as record metrics (numbers with ``higher_is_better``), record detail and a text table."""

from __future__ import annotations

import math
from typing import Any

from ldr_plugin.kstar.stats import KStarSummary

# name -> (summary attribute, higher_is_better). Γ and Γ′: lower is better (less fracturing).
METRIC_FIELDS: dict[str, tuple[str, bool]] = {
    "gamma_prime": ("gamma_prime", False),
    "gamma": ("gamma_pooled", False),
    "mu": ("mu", True),
    "n_fractured": ("n_fractured", False),
    "n_overlapped": ("n_overlapped", False),
    "n_clustered": ("n_clustered", True),
    "n_ties": ("n_ties", False),
    "n_gamma_excluded": ("n_gamma_excluded", False),
}


def summary_values(summary: KStarSummary) -> tuple[dict[str, float | None], dict[str, bool]]:
    """Metric values (None where infinite/undefined) and their ``higher_is_better`` flags."""
    values: dict[str, float | None] = {}
    for name, (attr, _) in METRIC_FIELDS.items():
        value = getattr(summary, attr)
        values[name] = value if isinstance(value, int) else (float(value) if math.isfinite(value) else None)
    return values, {name: hib for name, (_, hib) in METRIC_FIELDS.items()}


def summary_detail(summary: KStarSummary) -> dict[str, Any]:
    """Per-class statistics and everything needed to interpret the aggregates (JSON-ready)."""
    data = summary.to_dict()
    return {
        "per_class": data["classes"],
        "n_classes": summary.n_classes,
        "gamma_excluded_classes": summary.gamma_excluded_classes,
        "options": data["options"],
        "backend": summary.backend,
        "search": data["search"],
        "distance_from_exact": data["distance_from_exact"],
        "distance": summary.distance,
        "distance_info": data["distance_info"],
        "class_skew": data["class_skew"],
        "tie_rule": "pessimistic (strict <): a same-class sample at the nearest other-class distance does not count",
    }


def _cell(value: float) -> str:
    if math.isnan(value):
        return "undef"
    return "-inf" if value == -math.inf else f"{value:.4f}"


def summary_table(summary: KStarSummary, *, max_rows: int = 40) -> str:
    """A short readable table: one row per class (up to ``max_rows``), then the aggregates."""
    lines = [f"{'class':<24} {'n':>7} {'mu':>8} {'sigma':>8} {'gamma':>8}  pattern"]
    for c in summary.classes[:max_rows]:
        lines.append(f"{c.name[:24]:<24} {c.n:>7} {c.mu:>8.4f} {c.sigma:>8.4f} {_cell(c.gamma):>8}  {c.pattern}")
    if summary.n_classes > max_rows:
        lines.append(f"... {summary.n_classes - max_rows} more classes (see the record)")
    lines.append(
        f"N = {summary.n_samples}, C = {summary.n_classes}, distance = {summary.distance}, "
        f"backend = {summary.backend}, ties = {summary.n_ties}"
    )
    excluded = f" ({summary.n_gamma_excluded} classes with infinite/undefined γ excluded)"
    rule = summary.options.get("infinite", "exclude")
    lines.append(
        f"Γ′ = {_cell(summary.gamma_prime)}{excluded if summary.n_gamma_excluded else ''}"
        f"{f' [infinite={rule}]' if rule != 'exclude' else ''}, "
        f"Γ = {_cell(summary.gamma_pooled)}, μ = {summary.mu:.4f}"
    )
    spread = summary.class_skew
    if spread.get("n_finite", 0) > 1:
        lines.append(
            f"per-class γ: std {spread['std']:.3f}, from {spread['min']:.3f} ({spread['min_class']}) "
            f"to {spread['max']:.3f} ({spread['max_class']})"
        )
    lines.append(
        f"patterns: {summary.n_fractured} fractured, {summary.n_overlapped} overlapped, "
        f"{summary.n_clustered} clustered"
    )
    if summary.distance_from_exact:
        d = summary.distance_from_exact
        lines.append(
            f"distance from exact ({d['n_checked']} sampled queries): "
            f"{100 * d['agreement']:.2f}% equal k*, mean |Δk̂*| = {d['mean_abs_diff_normalised']:.2e}"
        )
    return "\n".join(lines)
