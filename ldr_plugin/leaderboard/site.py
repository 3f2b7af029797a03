"""One page that links every leaderboard folder under a root (``leaderboards/index.html``).

Each folder written by ``ldr leaderboard build`` has an ``index.html`` and a ``README.md`` whose
``## <title> (`<id>`)`` headings name its leaderboards; the site index lists every such folder
(recursively, sorted) with those titles as its one-line summary, and a link to its STUDY.md when
there is one. Only files are read; the page is static and works offline.

>>> summary_of("# Leaderboards\\n\\n## LatentDR vs ERM (`dg_study`)\\n\\n## k* vs accuracy (`kstar`)\\n")
'LatentDR vs ERM · k* vs accuracy'
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import jinja2

from ldr_plugin.results import atomic_write_text

_HEADING = re.compile(r"^## (.+?)(?: \(`[^`]*`\))?\s*$", re.MULTILINE)

_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>
body { font-family: sans-serif; margin: 1em auto; padding: 0 1em; color: #222; max-width: 60em; overflow-wrap: anywhere; }
li { margin: 0.4em 0; }
.what { color: #444; }
</style>
</head>
<body>
<h1>{{ title }}</h1>
<p>{{ folders|length }} leaderboard folders, each written by <code>ldr leaderboard build</code> (its README
holds the command that regenerates it).</p>
<ul>
{% for f in folders %}<li><a href="{{ f.href }}">{{ f.name }}</a> — <span class="what">{{ f.summary }}</span>{% if f.study %} (<a href="{{ f.study }}">how it was made</a>){% endif %}</li>
{% endfor %}</ul>
</body>
</html>
"""


def summary_of(readme: str) -> str:
    """The leaderboard titles a build README names (its ``## ...`` headings but 'Input problems')."""
    titles = [t for t in _HEADING.findall(readme) if not t.startswith("Input problems")]
    return " · ".join(titles)


def site_folders(root: str | os.PathLike) -> list[dict[str, str]]:
    """Every folder under ``root`` with an ``index.html`` (its own excepted): name, links, summary."""
    root = Path(root)
    found = []
    for page in sorted(root.rglob("index.html")):
        folder = page.parent
        if folder == root:
            continue
        readme = folder / "README.md"
        summary = summary_of(readme.read_text(encoding="utf-8")) if readme.is_file() else ""
        study = next((p for p in (folder / "STUDY.md", folder.parent / "STUDY.md") if p.is_file() and p.parent != root),
                     None)
        found.append({"name": folder.relative_to(root).as_posix(), "href": page.relative_to(root).as_posix(),
                      "summary": summary or "(no README)",
                      "study": study.relative_to(root).as_posix() if study else ""})
    return found


def write_site_index(root: str | os.PathLike, title: str = "ldr-plugin leaderboards") -> Path:
    """Write ``root/index.html`` linking every leaderboard folder under it; returns its path."""
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    page = env.from_string(_TEMPLATE).render(title=title, folders=site_folders(root))
    return atomic_write_text(Path(root) / "index.html", page)
