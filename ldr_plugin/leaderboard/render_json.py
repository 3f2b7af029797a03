"""Tables as JSON (``--json`` of the commands that print tables): numbers, not formatted strings.

>>> from ldr_plugin.leaderboard.tables import Cell, Column, Row, Table
>>> t = Table("x", "X", [Column("Avg")], [Row("ERM", [Cell(80.0, 0.5, 3)], "reproduced")])
>>> render_json([t]).splitlines()[1]
'  "tables": ['
"""

from __future__ import annotations

import json
from typing import Any

from ldr_plugin.leaderboard.tables import Cell, Table


def _cell(cell: Cell) -> dict[str, Any]:
    return {"value": cell.value, "err": cell.err, "n": cell.n, "text": cell.text, "flags": list(cell.flags)}


def table_dict(table: Table) -> dict[str, Any]:
    """One table: id, title, section, columns, rows (label, published, source, cells), footnotes used."""
    used = {flag for row in table.rows for cell in row.cells for flag in cell.flags}
    return {"table": table.table_id, "title": table.title, "section": table.section,
            "columns": [c.name for c in table.columns], "row_header": table.row_header,
            "rows": [{"label": r.label, "published": r.published, "source": r.source,
                      "cells": [_cell(c) for c in r.cells]} for r in table.rows],
            "footnotes": {k: v for k, v in table.footnotes.items() if k in used},
            "sources": table.sources}


def render_json(tables: list[Table], **extra: Any) -> str:
    """``{"tables": [...], **extra}`` as indented JSON with a final newline."""
    return json.dumps({"tables": [table_dict(t) for t in tables], **extra}, indent=2, sort_keys=False) + "\n"
