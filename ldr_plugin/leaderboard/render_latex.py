"""LaTeX rendering with booktabs: one ``tabular`` per table, flags and sources as table notes.

By default a fragment to ``\\input`` into a paper (as DomainBed's ``collect_results --latex`` prints:
tables only; the preamble needs ``booktabs`` and ``adjustbox``); ``document=True`` wraps it in a
standalone document that compiles as it is.
"""

from __future__ import annotations

from ldr_plugin.leaderboard import escape
from ldr_plugin.leaderboard.tables import Table


def _cell(cell, marks: dict[str, str]) -> str:
    text = escape.latex(cell.plain("±"))
    return text + "".join(f"$^{{{escape.latex(marks[f])}}}$" if marks[f].startswith("*")
                          else escape.latex(marks[f]) for f in cell.flags if f in marks)


def render_table_latex(table: Table) -> str:
    """One table as a booktabs tabular inside a centred adjustbox (as DomainBed's LaTeX)."""
    marks = table.marks()
    ncols = len(table.columns)
    out = [f"\\subsubsection*{{{escape.latex(table.title)}}}", "", "\\begin{center}",
           "\\adjustbox{max width=\\textwidth}{%", "\\begin{tabular}{l" + "c" * ncols + "l}", "\\toprule"]
    header = [table.row_header] + [c.name + (f" [{c.source}]" if c.source else "") for c in table.columns]
    out.append(" & ".join(f"\\textbf{{{escape.latex(h)}}}" for h in header) + " & \\textbf{Source} \\\\")
    out.append("\\midrule")
    for row in table.rows:
        label = escape.latex(row.label)
        if row.published:
            label = f"\\textit{{{label}}} (published)"
        cells = [_cell(c, marks) for c in row.cells]
        out.append(" & ".join([label, *cells, escape.latex(row.source)]) + " \\\\")
    out += ["\\bottomrule", "\\end{tabular}}", "\\end{center}"]
    notes = list(table.notes)
    notes += [f"{marks[f]} {table.footnotes.get(f, f)}" for f in marks]
    notes += [f"Source {k}: {table.sources[k]}" for k in sorted(table.sources)]
    if notes:
        out += ["{\\footnotesize", "\\begin{itemize}"] + [f"\\item {escape.latex(n)}" for n in notes]
        out += ["\\end{itemize}}"]
    return "\n".join(out) + "\n"


PACKAGES = ("\\usepackage[T1]{fontenc}", "\\usepackage[utf8]{inputenc}", "\\usepackage{booktabs}",
            "\\usepackage{adjustbox}")


def render_latex(title: str, tables: list[Table], document: bool = False) -> str:
    """Every table as a LaTeX fragment, or (``document``) a standalone document (booktabs, adjustbox)."""
    if document:
        out = ["\\documentclass{article}", *PACKAGES, "\\begin{document}", f"\\section*{{{escape.latex(title)}}}", ""]
    else:
        out = [(f"% {' '.join(title.split())}: a fragment for \\input; the preamble needs \\usepackage{{booktabs}} and "
               "\\usepackage{adjustbox}"), ""]
    section = None
    for table in tables:
        if table.section and table.section != section:
            section = table.section
            out += [f"\\subsection*{{{escape.latex(section)}}}", ""]
        out += [render_table_latex(table), ""]
    if document:
        out.append("\\end{document}")
    return "\n".join(out) + "\n"
