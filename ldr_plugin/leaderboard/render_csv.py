"""CSV rendering in long form: one line per number, with its error, count, flags and provenance."""

from __future__ import annotations

import csv
import io

from ldr_plugin.leaderboard.escape import csv_text
from ldr_plugin.leaderboard.tables import Table

FIELDS = ("table", "section", "row", "column", "value", "err", "n", "text", "flags", "published", "source",
          "source_text")


def _num(x: float | None, decimals: int = 10) -> str:
    return "" if x is None else repr(round(float(x), decimals))


def render_csv(tables: list[Table]) -> str:
    """Every cell of every table as a CSV row (values unrounded, as computed; missing cells kept)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(FIELDS)
    for table in tables:
        for row in table.rows:
            for j, cell in enumerate(row.cells):
                source = table.cell_source(row, j)
                writer.writerow([
                    csv_text(table.table_id), csv_text(table.section), csv_text(row.label),
                    csv_text(table.columns[j].name), _num(cell.value), _num(cell.err),
                    "" if cell.n is None else cell.n,
                    csv_text(cell.text if cell.text is not None else ("" if cell.value is not None else cell.missing)),
                    ";".join(cell.flags), int(row.published), csv_text(source),
                    csv_text(table.sources.get(source, "")),
                ])
    return buf.getvalue()
