"""DomainBed-compatible text output: what ``collect_results`` prints, byte for byte, for DomainBed tables.

Only the DomainBed columns are printed (no extra metric columns, no footnote marks), so the text of
a sweep DomainBed knows is identical to its ``results.txt``.
"""

from __future__ import annotations

from ldr_plugin.leaderboard.tables import Table

_WIDTH = {"domainbed_dataset": 20, "domainbed_averages": 25}


def _row(values: list[str], width: int) -> str:
    # DomainBed pads/truncates every value to the column width, joins with two spaces and
    # prints a trailing space (print(..., "")).
    return "  ".join(str(v).ljust(width)[:width] for v in values) + " \n"


def render_domainbed_text(tables: list[Table], total_records: int) -> str:
    """The text ``collect_results`` writes to ``results.txt`` for these tables."""
    out = [f"Total records: {total_records}\n"]
    for table in tables:
        width = _WIDTH.get(table.kind)
        if width is None:
            continue
        core = [i for i, c in enumerate(table.columns) if not c.extra]
        out.append("\n")
        out.append(f"-------- {table.title}\n")
        out.append(_row([table.row_header] + [table.columns[i].name for i in core], width))
        for row in table.rows:
            out.append(_row([row.label] + [row.cells[i].plain("+/-") for i in core], width))
    return "".join(out)
