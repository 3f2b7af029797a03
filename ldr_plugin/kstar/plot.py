"""k* plots (spec §7): per-class violins of k̂* and the multi-model Γ′-vs-accuracy scatter.

Both write PNG or SVG (by the file suffix) atomically, with the Agg backend and fixed metadata, so
the same input gives byte-identical files.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ldr_plugin.errors import LdrError
from ldr_plugin.kstar.stats import CLUSTERED, FRACTURED, OVERLAPPED, KStarSummary
from ldr_plugin.results import atomic_write_with

PATTERN_COLOURS = {FRACTURED: "tab:blue", OVERLAPPED: "tab:red", CLUSTERED: "tab:green"}
FORMATS = {".png": "png", ".svg": "svg"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "ldr-plugin"  # stable element ids in SVG output
    plt.rcParams["text.parse_math"] = False  # names are data: '$\frac{$' is drawn as written, never parsed
    plt.rcParams["svg.fonttype"] = "none"  # keep text as text: searchable, smaller files
    return plt


def save_figure(fig, path: str | os.PathLike) -> Path:
    """Save ``fig`` to ``path`` (.png or .svg) atomically with date-free metadata; closes the figure."""
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise LdrError(f"plot file {path} must end in .png or .svg")
    metadata = {"Date": None, "Creator": None} if fmt == "svg" else {"Software": None}
    try:
        return atomic_write_with(path, lambda fh: fig.savefig(fh, format=fmt, metadata=metadata, dpi=100, bbox_inches="tight"))
    finally:
        _pyplot().close(fig)


def gamma_text(gamma: float) -> str:
    """'γ = 0.23', 'γ = −∞' or 'γ = undefined'."""
    if math.isnan(gamma):
        return "γ = undefined"
    if math.isinf(gamma):
        return "γ = −∞" if gamma < 0 else "γ = +∞"
    return f"γ = {gamma:.2f}"


def _draw_panel(ax, summary: KStarSummary, indices: list[int]) -> None:
    values = summary.kstar_normalised
    for pos, c in enumerate(indices):
        stats, data = summary.classes[c], values[summary.codes == c]
        y = len(indices) - 1 - pos  # first class at the top
        colour = PATTERN_COLOURS[stats.pattern]
        if np.ptp(data) > 0:  # matplotlib's KDE spans [min, max] of the data: clipped to the observed range
            parts = ax.violinplot([data], positions=[y], orientation="horizontal", showextrema=False, widths=0.8)
            for body in parts["bodies"]:
                body.set_facecolor(colour)
                body.set_alpha(0.35)
        else:
            ax.plot([data[0]] * 2, [y - 0.35, y + 0.35], color=colour, lw=3)
        ax.boxplot([data], positions=[y], orientation="horizontal", widths=0.18, showfliers=False,
                   medianprops={"color": "black"}, manage_ticks=False)
        ax.plot([stats.mu], [y], marker="D", color="black", markersize=4, zorder=3)
        ax.text(1.02, y, f"{gamma_text(stats.gamma)} {stats.pattern}", color=colour, va="center",
                fontsize=8, transform=ax.get_yaxis_transform(), clip_on=False)
    ax.set_yticks(range(len(indices)))
    ax.set_yticklabels([summary.classes[c].name for c in reversed(indices)], fontsize=8)
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(-0.7, len(indices) - 0.3)
    ax.set_xlabel("normalised k* (k*/n_c)")


def plot_violins(
    summary: KStarSummary, path: str | os.PathLike, *, title: str | None = None, classes_per_panel: int = 20
) -> Path:
    """One horizontal violin per class (box overlay, mean ◆, γ and pattern beside it) to PNG/SVG.

    More than ``classes_per_panel`` classes are split over several panels of one figure.
    """
    if summary.kstar_normalised is None or summary.codes is None:
        raise LdrError("plot_violins needs a summary with per-sample k* (from kstar_summary)")
    plt = _pyplot()
    chunks = [list(range(i, min(i + classes_per_panel, summary.n_classes)))
              for i in range(0, summary.n_classes, classes_per_panel)]
    ncols = min(len(chunks), 4)
    nrows = math.ceil(len(chunks) / ncols)
    height = 0.35 * min(summary.n_classes, classes_per_panel) + 1.6
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.2 * ncols, height * nrows), squeeze=False)
    for ax, chunk in zip(axes.flat, chunks):
        _draw_panel(ax, summary, chunk)
    for ax in list(axes.flat)[len(chunks):]:
        ax.axis("off")
    head = title or "k* distribution"
    fig.suptitle(
        f"{head}\nΓ′ = {_fmt(summary.gamma_prime)}, Γ = {_fmt(summary.gamma_pooled)} "
        f"({summary.n_fractured} fractured / {summary.n_overlapped} overlapped / {summary.n_clustered} clustered)",
        fontsize=9,
    )
    fig.tight_layout()
    return save_figure(fig, path)


def _fmt(value: float) -> str:
    return f"{value:.3f}" if math.isfinite(value) else "n/a"


MAX_LABELLED = 25
DENSE = 200  # beyond this many points the scatter uses small translucent markers


def plot_gamma_scatter(
    points: Sequence[tuple[str, float | None, float | None]],
    x_label: str,
    path: str | os.PathLike,
    *,
    title: str | None = None,
    y_label: str = "Γ′ (mean per-class k* skewness; lower = less fractured)",
    annotate: bool | None = None,
    groups: Sequence[str] | None = None,
) -> Path:
    """Scatter of Γ′ (y) against an accuracy (x), one point per model, Spearman ρ in the title.

    ``points``: (model label, x value, Γ′) triples; a triple with a missing or non-finite value is
    left out and counted in the title. Points are labelled with their model when ``annotate`` is
    true (default: only up to ``MAX_LABELLED`` points, beyond which labels hide the data).
    ``groups`` (one name per point, e.g. the algorithm) colours the points, with a legend.
    Writes PNG or SVG by the suffix of ``path``.

    >>> plot_gamma_scatter([("a", 70.1, 1.2), ("b", 75.0, 0.8), ("c", 80.2, 0.5)],
    ...                    "clean accuracy (%)", "/tmp/scatter.svg")  # doctest: +SKIP
    """
    import scipy.stats

    if groups is not None and len(groups) != len(points):
        raise LdrError(f"plot_gamma_scatter: {len(groups)} groups for {len(points)} points")
    named = zip(points, groups if groups is not None else [""] * len(points))
    ok = [(str(n), float(x), float(y), g) for (n, x, y), g in named
          if x is not None and y is not None and math.isfinite(float(x)) and math.isfinite(float(y))]
    skipped = len(points) - len(ok)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    xs, ys = [p[1] for p in ok], [p[2] for p in ok]
    names = sorted({p[3] for p in ok})
    dense = len(ok) > DENSE  # many points: smaller and translucent, so overlaps stay visible
    for i, group in enumerate(names):
        mine = [p for p in ok if p[3] == group]
        ax.scatter([p[1] for p in mine], [p[2] for p in mine], zorder=3, label=group or None,
                   color=f"C{i % 10}" if groups is not None else "tab:blue",
                   s=10 if dense else None, alpha=0.6 if dense else None, linewidths=0 if dense else None)
    if groups is not None and names:
        ax.legend(fontsize=8, title=None)
    if annotate if annotate is not None else len(ok) <= MAX_LABELLED:
        for name, x, y, _ in ok:
            ax.annotate(name, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    rho_text = "Spearman ρ = n/a (fewer than 3 models)"
    if len(ok) >= 3 and len(set(xs)) > 1 and len(set(ys)) > 1:
        rho, pval = scipy.stats.spearmanr(xs, ys)
        rho_text = f"Spearman ρ = {rho:.3f} (p = {pval:.3g})"
    parts = [title] if title else []
    parts.append(f"{rho_text}, n = {len(ok)}" + (f", {skipped} without values" if skipped else ""))
    ax.set_title("\n".join(parts), fontsize=9)
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label, fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)
