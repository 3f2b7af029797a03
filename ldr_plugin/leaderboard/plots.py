"""Leaderboard plots beyond the k* scatter (which is ``ldr_plugin.kstar.plot.plot_gamma_scatter``).

Written as SVG with a fixed hash salt and no date, so the same table gives the same bytes.
"""

from __future__ import annotations

import os
from pathlib import Path

from ldr_plugin.leaderboard.tables import Table


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "ldr-plugin"  # stable element ids in SVG output
    plt.rcParams["text.parse_math"] = False  # names are data: '$\frac{$' is drawn as written, never parsed
    return plt


def plot_average_bars(table: Table, column: str, path: str | os.PathLike, *, xlabel: str = "accuracy (%)") -> Path:
    """Horizontal bars of one column (mean ± error) per row; missing cells are listed, not drawn."""
    from ldr_plugin.kstar.plot import save_figure  # matplotlib: only when there is a plot to draw

    plt = _pyplot()
    j = [c.name for c in table.columns].index(column)
    rows = [r for r in table.rows if r.cells[j].value is not None]
    missing = [r.label for r in table.rows if r.cells[j].value is None]
    fig, ax = plt.subplots(figsize=(6.4, 0.45 * max(len(rows), 2) + 1.2))
    labels = [r.label + (" (published)" if r.published else "") for r in rows]
    values = [r.cells[j].value for r in rows]
    errors = [r.cells[j].err or 0.0 for r in rows]
    colours = ["#b8a67a" if r.published else "tab:blue" for r in rows]
    ax.barh(range(len(rows)), values, xerr=errors, color=colours)
    ax.set_yticks(range(len(rows)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    title = f"{table.title} — {column}"
    if missing:
        title += f"\nmissing (X): {', '.join(missing)}"
    ax.set_title(title, fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)
