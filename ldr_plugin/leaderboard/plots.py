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


def algorithm_colours(labels: list[str]) -> dict[str, str]:
    """One colour per algorithm (published rows share their algorithm's), in first-seen order."""
    names = list(dict.fromkeys(labels))
    palette = [f"C{i}" for i in range(10)] + ["#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
    return {name: palette[i % len(palette)] for i, name in enumerate(names)}


def axis_limits(lows: list[float], highs: list[float]) -> tuple[float, float]:
    """An axis that starts near the data (not at 0): the span of the error bars plus 10 % (at least
    half a point) each side.

    >>> axis_limits([85.0, 87.0], [86.0, 89.5])
    (84.5, 90.0)
    """
    lo, hi = min(lows), max(highs)
    pad = max(0.1 * (hi - lo), 0.5)
    return round(lo - pad, 6), round(hi + pad, 6)


def plot_dataset_bars(table: Table, path: str | os.PathLike, *, xlabel: str = "accuracy (%)") -> Path | None:
    """Grouped horizontal bars of every column with errors (the per-dataset cells, mean ± SE over
    trials; not Avg, which has none): one colour per algorithm (published rows hatched), error bars,
    and an axis near the data. Missing cells are listed under the title. None if nothing to draw."""
    from ldr_plugin.kstar.plot import save_figure  # matplotlib: only when there is a plot to draw

    columns = [j for j, c in enumerate(table.columns) if not c.extra and c.name != "Avg"
               and any(r.cells[j].value is not None for r in table.rows)]
    if not columns:
        return None
    plt = _pyplot()
    colours = algorithm_colours([r.label for r in table.rows])
    n = len(table.rows)
    height = 0.8 / n
    fig, ax = plt.subplots(figsize=(6.4, 0.5 + len(columns) * (0.22 * n + 0.35)))
    lows, highs, missing = [], [], []
    for k, j in enumerate(columns):
        for i, row in enumerate(table.rows):
            cell = row.cells[j]
            if cell.value is None:
                missing.append(f"{row.label} / {table.columns[j].name}")
                continue
            err = cell.err or 0.0
            label = (row.label + (" (published)" if row.published else "")) if k == 0 else None
            ax.barh(k + (i - (n - 1) / 2) * height, cell.value, height=height * 0.9, xerr=err,
                    color=colours[row.label], hatch="//" if row.published else None, edgecolor="white",
                    error_kw={"elinewidth": 1, "capsize": 2}, label=label)
            lows.append(cell.value - err)
            highs.append(cell.value + err)
    ax.set_xlim(*axis_limits(lows, highs))
    ax.set_yticks(range(len(columns)), [table.columns[j].name for j in columns], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel + " — mean ± SE over trials (axis not from 0)")
    title = table.title + (f"\nmissing (X): {', '.join(missing)}" if missing else "")
    ax.set_title(title, fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    return save_figure(fig, path)


FOREST_COLUMNS = 3  # panels a row of a forest plot


def paired_points(table: Table, column: str,
                  baseline: str | None = None) -> tuple[list[tuple[str, float, float, bool]], list[str]]:
    """The rows of one paired-difference ``column`` a forest plot draws: (label, mean, SE, detected =
    |mean| > 2 SE), and the labels it cannot draw (no value, or one pair: no SE). Published rows
    (no trials to pair) and the baseline's own row are skipped."""
    j = [c.name for c in table.columns].index(column)
    points, skipped = [], []
    for row in table.rows:
        cell = row.cells[j]
        if row.published or row.label == baseline:
            continue
        if cell.value is None or cell.err is None:
            skipped.append(row.label)
        else:
            points.append((row.label, cell.value, cell.err, abs(cell.value) > 2 * cell.err))
    return points, skipped


def plot_paired_differences(tables: list[Table], column: str, path: str | os.PathLike, *,
                            baseline: str | None = None, xlabel: str = "paired difference (points)") -> Path | None:
    """One panel per table: each row's paired difference (``column``, mean over trials) with whiskers
    of ±2 SE (the decision rule's threshold) and a line at 0; filled marker = detected (the whiskers
    miss 0), hollow = not. Rows without a drawable value are listed under the panel's title. None
    if no table has a point."""
    from ldr_plugin.kstar.plot import save_figure  # matplotlib: only when there is a plot to draw

    panels = [(table, *paired_points(table, column, baseline)) for table in tables
              if column in [c.name for c in table.columns]]
    panels = [p for p in panels if p[1]]
    if not panels:
        return None
    plt = _pyplot()
    n_points = max(len(points) for _, points, _ in panels)
    n_cols = min(len(panels), FOREST_COLUMNS)
    n_grid = -(-len(panels) // n_cols)  # a grid of at most FOREST_COLUMNS panels a row, not one wide strip
    fig, axes = plt.subplots(n_grid, n_cols, figsize=(3.6 * n_cols + 1.6, (0.4 * n_points + 1.4) * n_grid),
                             squeeze=False, sharey=False)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax, (table, points, skipped) in zip(axes.flat, panels):
        for i, (label, mean, se, detected) in enumerate(points):
            colour = "tab:blue" if mean >= 0 else "tab:red"
            ax.errorbar(mean, i, xerr=2 * se, fmt="o", color=colour, mfc=colour if detected else "white",
                        capsize=3, elinewidth=1)
        ax.axvline(0.0, color="black", linewidth=0.8)
        ax.set_yticks(range(len(points)), [p[0] for p in points], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel(xlabel, fontsize=8)
        title = table.title.split(",")[0].removeprefix("Dataset: ")
        if skipped:
            title += f"\nnot drawn (fewer than 2 paired trials): {', '.join(skipped)}"
        ax.set_title(title, fontsize=8)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(f"{column}: mean ± 2 SE over trials (filled: |mean| > 2 SE)", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)
