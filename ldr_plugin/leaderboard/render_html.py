"""One static HTML page (jinja2, autoescaped) with every table, its footnotes, sources and plots.

The page works offline and on a phone: a viewport tag, tables that scroll sideways in their own
box, a table of contents, and a small inline script (no CDN, no library) that sorts a table when
its header is clicked (numbers by value, missing cells last) and filters its rows by a text box.
Each sortable cell carries its number in ``data-v``. The best value of every accuracy column of a
DomainBed table is marked (bold, ``class="best"``); ``±`` cells show ``n`` beside them and the
column header says what ``±`` is. Tables of more than 40 rows (per-run rows) start collapsed.
Plots are the sibling files, but a scatter of more than 200 points is drawn inline, interactive
(hover shows each point's row: :mod:`ldr_plugin.leaderboard.render_scatter`).
"""

from __future__ import annotations

import jinja2
from markupsafe import Markup

from ldr_plugin.leaderboard.render_scatter import CSS as SCATTER_CSS
from ldr_plugin.leaderboard.render_scatter import INTERACTIVE_POINTS, scatter_html
from ldr_plugin.leaderboard.render_scatter import SCRIPT as SCATTER_SCRIPT
from ldr_plugin.leaderboard.tables import Table, cell_text

PM_HEADER = {
    "domainbed_dataset": "mean ± SE over trials (n = trials)",
    "domainbed_averages": "per trial the mean over test domains, then mean ± SE over trials (n = trials)",
}

_SCRIPT = """
(function () {
  function key(td) {
    var v = td.getAttribute('data-v');
    return v === null || v === '' ? null : parseFloat(v);
  }
  function sortBy(table, col, th) {
    var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
    var dir = th.getAttribute('aria-sort') === 'descending' ? 1 : -1;
    var numeric = rows.some(function (r) { return r.cells[col] && key(r.cells[col]) !== null; });
    rows.sort(function (a, b) {
      if (numeric) {
        var x = key(a.cells[col]), y = key(b.cells[col]);
        if (x === null && y === null) return 0;
        if (x === null) return 1;
        if (y === null) return -1;
        return dir * (x - y);
      }
      return dir * a.cells[col].textContent.localeCompare(b.cells[col].textContent);
    });
    rows.forEach(function (r) { body.appendChild(r); });
    Array.prototype.forEach.call(th.parentNode.cells, function (h) { h.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', dir === -1 ? 'descending' : 'ascending');
  }
  Array.prototype.forEach.call(document.querySelectorAll('table.board'), function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
      th.addEventListener('click', function () { sortBy(table, col, th); });
    });
    var box = document.getElementById(table.id + '__filter');
    if (box) box.addEventListener('input', function () {
      var q = box.value.toLowerCase();
      Array.prototype.forEach.call(table.tBodies[0].rows, function (r) {
        r.style.display = r.textContent.toLowerCase().indexOf(q) === -1 ? 'none' : '';
      });
    });
  });
})();
"""

_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>
body { font-family: sans-serif; margin: 1em auto; padding: 0 1em; color: #222; max-width: 80em; overflow-wrap: anywhere; }
table { overflow-wrap: normal; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; margin: 0.5em 0 0.3em 0; }
th, td { border-bottom: 1px solid #ccc; padding: 0.25em 0.7em; text-align: right; white-space: nowrap; }
th:first-child, td:first-child, td.src, th:last-child { text-align: left; }
th { white-space: normal; cursor: pointer; user-select: none; }
th[aria-sort=descending]::after { content: " \\25BE"; }
th[aria-sort=ascending]::after { content: " \\25B4"; }
thead th { border-bottom: 2px solid #333; }
th small { font-weight: normal; color: #555; }
tr.published td { font-style: italic; background: #f3f1e8; }
td.missing { color: #b00; }
td.best { font-weight: bold; }
td .n { color: #777; font-size: 0.8em; }
input.filter { margin: 0.3em 0; font-size: 0.9em; }
.notes { font-size: 0.85em; color: #444; }
nav.toc { font-size: 0.9em; border-left: 3px solid #ddd; padding-left: 0.8em; }
img.plot { max-width: 100%; width: 32em; margin: 0.5em 1em 0.5em 0; border: 1px solid #ddd; }
{% if interactive %}{{ scatter_css }}{% endif %}</style>
</head>
<body>
<h1>{{ title }}</h1>
{% if intro %}<p>{{ intro }}</p>{% endif %}
<nav class="toc"><strong>Contents</strong><ul>
{% for board in boards %}<li><a href="#{{ board.id }}">{{ board.title }}</a><ul>
{% for t in board.tables %}<li><a href="#{{ t.id }}__h">{{ t.title }}</a></li>
{% endfor %}</ul></li>
{% endfor %}</ul></nav>
{% for board in boards %}
<section id="{{ board.id }}">
<h2>{{ board.title }}</h2>
{% if board.description %}<p>{{ board.description }}</p>{% endif %}
{% for t in board.tables %}
{% if t.section_start %}<h3>{{ t.section }}</h3>{% endif %}
<h4 id="{{ t.id }}__h">{{ t.title }}</h4>
{% if t.rows|length > 5 %}<input class="filter" id="{{ t.id }}__filter" type="search" placeholder="filter rows" aria-label="filter rows of {{ t.title }}">{% endif %}
{% if t.rows|length > 40 %}<details><summary>{{ t.rows|length }} rows (show)</summary>{% endif %}
<div class="scroll">
<table class="board" id="{{ t.id }}">
<thead><tr>{% for h in t.header %}<th title="click to sort">{{ h.name }}{% if h.pm %}<br><small>{{ h.pm }}</small>{% endif %}</th>{% endfor %}</tr></thead>
<tbody>
{% for r in t.rows %}<tr class="{{ 'published' if r.published else 'reproduced' }}"><td>{{ r.label }}</td>
{% for c in r.cells %}<td data-v="{{ c.value }}"{% if c.classes %} class="{{ c.classes }}"{% endif %}>{{ c.text }}{% if c.n %} <span class="n">n={{ c.n }}</span>{% endif %}</td>{% endfor %}
<td class="src">{{ r.source }}</td></tr>
{% endfor %}</tbody>
</table>
</div>
{% if t.rows|length > 40 %}</details>{% endif %}
<div class="notes">{% for n in t.notes %}<div>{{ n }}</div>{% endfor %}</div>
{% for p in t.plots %}{% if p.interactive %}{{ p.interactive }}{% else %}<img class="plot" src="{{ p.src }}" alt="{{ t.title }}">{% endif %}{% endfor %}
{% endfor %}
</section>
{% endfor %}
<script>{{ script }}{% if interactive %}{{ scatter_script }}{% endif %}</script>
</body>
</html>
"""


def _best(table: Table) -> set[tuple[int, int]]:
    """(row, column) of the highest value of every accuracy column of a DomainBed table (ties: all)."""
    if table.kind not in PM_HEADER:
        return set()
    best = set()
    for j, column in enumerate(table.columns):
        if column.extra:
            continue  # metric columns: which way is better depends on the metric
        values = [(i, r.cells[j].value) for i, r in enumerate(table.rows) if r.cells[j].value is not None]
        if len(values) > 1:
            top = max(v for _, v in values)
            best |= {(i, j) for i, v in values if v == top}
    return best


def _table_context(table: Table, previous_section: str | None) -> dict:
    marks = table.marks()
    pm = PM_HEADER.get(table.kind, "")
    has_err = {j for j in range(len(table.columns)) if any(r.cells[j].err is not None for r in table.rows)}
    header = [{"name": table.row_header, "pm": ""}]
    header += [{"name": c.name + (f" [{c.source}]" if c.source else ""),
                "pm": (pm or "mean ± SE (n values)") if j in has_err else ""} for j, c in enumerate(table.columns)]
    notes = list(table.notes) + [f"{m} {table.footnotes.get(f, f)}" for f, m in marks.items()]
    notes += [f"Source {k}: {table.sources[k]}" for k in sorted(table.sources)]
    best = _best(table)
    rows = [{
        "label": row.label + (" (published)" if row.published else ""), "published": row.published,
        "source": row.source,
        "cells": [{"text": cell_text(c, marks), "value": "" if c.value is None else repr(float(c.value)),
                   "n": c.n if c.err is not None else None,
                   "classes": " ".join(k for k, on in (("missing", c.is_missing), ("best", (i, j) in best)) if on)}
                  for j, c in enumerate(row.cells)],
    } for i, row in enumerate(table.rows)]
    return {"id": table.table_id, "title": table.title, "section": table.section,
            "section_start": bool(table.section) and table.section != previous_section,
            "header": [*header, {"name": "Source", "pm": ""}], "rows": rows, "notes": notes, "plots": _plots(table)}


def _plots(table: Table) -> list[dict]:
    """Each plot of a table: its file, and for a scatter of many points the interactive figure."""
    scatters = {s.plot: s for s in table.scatters}
    return [{"src": p, "interactive": scatter_html(scatters[p]) if p in scatters
             and len(scatters[p].points) > INTERACTIVE_POINTS else ""} for p in table.plots]


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
    interactive = any(p["interactive"] for b in contexts for t in b["tables"] for p in t["plots"])
    return env.from_string(_TEMPLATE).render(title=title, intro=intro, boards=contexts, script=Markup(_SCRIPT),
                                             interactive=interactive, scatter_css=Markup(SCATTER_CSS),
                                             scatter_script=Markup(SCATTER_SCRIPT))
