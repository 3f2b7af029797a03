"""One static HTML page (jinja2, autoescaped) with every table, its footnotes, sources and plots."""

from __future__ import annotations

import jinja2

from ldr_plugin.leaderboard.tables import Table, cell_text

_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{ title }}</title>
<style>
body { font-family: sans-serif; margin: 2em; color: #222; max-width: 80em; }
table { border-collapse: collapse; margin: 0.5em 0 0.3em 0; }
th, td { border-bottom: 1px solid #ccc; padding: 0.25em 0.7em; text-align: right; white-space: nowrap; }
th:first-child, td:first-child, td.src, th:last-child { text-align: left; }
th { white-space: normal; }
thead th { border-bottom: 2px solid #333; }
tr.published td { font-style: italic; background: #f3f1e8; }
td.missing { color: #b00; }
.notes { font-size: 0.85em; color: #444; }
img.plot { max-width: 32em; margin: 0.5em 1em 0.5em 0; border: 1px solid #ddd; }
</style>
</head>
<body>
<h1>{{ title }}</h1>
{% if intro %}<p>{{ intro }}</p>{% endif %}
{% for board in boards %}
<section id="{{ board.id }}">
<h2>{{ board.title }}</h2>
{% if board.description %}<p>{{ board.description }}</p>{% endif %}
{% for t in board.tables %}
{% if t.section_start %}<h3>{{ t.section }}</h3>{% endif %}
<h4>{{ t.title }}</h4>
<table id="{{ t.id }}">
<thead><tr>{% for h in t.header %}<th>{{ h }}</th>{% endfor %}</tr></thead>
<tbody>
{% for r in t.rows %}<tr class="{{ 'published' if r.published else 'reproduced' }}"><td>{{ r.label }}</td>
{% for c in r.cells %}<td{% if c.missing %} class="missing"{% endif %}>{{ c.text }}</td>{% endfor %}
<td class="src">{{ r.source }}</td></tr>
{% endfor %}</tbody>
</table>
<div class="notes">{% for n in t.notes %}<div>{{ n }}</div>{% endfor %}</div>
{% for p in t.plots %}<img class="plot" src="{{ p }}" alt="{{ t.title }}">{% endfor %}
{% endfor %}
</section>
{% endfor %}
</body>
</html>
"""


def _table_context(table: Table, previous_section: str | None) -> dict:
    marks = table.marks()
    header = [table.row_header] + [c.name + (f" [{c.source}]" if c.source else "") for c in table.columns]
    notes = list(table.notes) + [f"{m} {table.footnotes.get(f, f)}" for f, m in marks.items()]
    notes += [f"Source {k}: {table.sources[k]}" for k in sorted(table.sources)]
    rows = [{
        "label": row.label + (" (published)" if row.published else ""), "published": row.published,
        "source": row.source,
        "cells": [{"text": cell_text(c, marks), "missing": c.is_missing} for c in row.cells],
    } for row in table.rows]
    return {"id": table.table_id, "title": table.title, "section": table.section,
            "section_start": bool(table.section) and table.section != previous_section,
            "header": header + ["Source"], "rows": rows, "notes": notes, "plots": table.plots}


def render_html(title: str, boards: list[dict], intro: str = "") -> str:
    """Render boards (dicts with id, title, description, tables) into one self-contained page.

    Every string is HTML-escaped by jinja2's autoescape; plots are referenced as sibling files.
    """
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    contexts = []
    for board in boards:
        tables, previous = [], None
        for table in board["tables"]:
            tables.append(_table_context(table, previous))
            previous = table.section
        contexts.append({"id": board["id"], "title": board["title"],
                         "description": board.get("description", ""), "tables": tables})
    return env.from_string(_TEMPLATE).render(title=title, intro=intro, boards=contexts)
