"""Markdown rendering: one section per table, a Source column, footnotes for flags and sources."""

from __future__ import annotations

from ldr_plugin.leaderboard import escape
from ldr_plugin.leaderboard.tables import Table, cell_text


def _header(table: Table) -> list[str]:
    names = [table.row_header] + [
        c.name + (f" [{c.source}]" if c.source else "") for c in table.columns
    ]
    return [escape.markdown(n) for n in names] + ["Source"]


def render_table_markdown(table: Table, level: int = 3) -> str:
    """One table as Markdown text (heading, table, notes, footnotes, sources)."""
    marks = table.marks()
    lines = [f"{'#' * level} {escape.markdown(table.title)}", ""]
    header = _header(table)
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(header) - 2) + ["---"]) + "|")
    for row in table.rows:
        cells = [escape.markdown(cell_text(c, marks)) for c in row.cells]
        label = escape.markdown(row.label) + (" (published)" if row.published else "")
        lines.append("| " + " | ".join([label, *cells, escape.markdown(row.source)]) + " |")
    lines.append("")
    for note in table.notes:
        lines.append(escape.markdown(note) + "  ")
    for flag, mark in marks.items():
        lines.append(f"{escape.markdown(mark)} {escape.markdown(table.footnotes.get(flag, flag))}  ")
    for key in sorted(table.sources):
        lines.append(f"Source *{escape.markdown(key)}*: {escape.markdown(table.sources[key])}  ")
    for plot in table.plots:
        lines.append(f"\n![{escape.markdown(table.title)}]({plot})")
    lines.append("")
    return "\n".join(lines)


def render_markdown(title: str, tables: list[Table], intro: str = "") -> str:
    """A whole Markdown document for a list of tables."""
    parts = [f"# {escape.markdown(title)}", ""]
    if intro:
        parts += [intro, ""]
    section = None
    for table in tables:
        if table.section and table.section != section:
            section = table.section
            parts += [f"## {escape.markdown(section)}", ""]
        parts.append(render_table_markdown(table))
    return "\n".join(parts).rstrip("\n") + "\n"
