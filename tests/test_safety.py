"""Hostile input: commands run without a shell, record files stay in their folder, escaping is complete."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from html.parser import HTMLParser

import pytest

from ldr_plugin.domainbed.launchers import UnsafeCommandError, split_command
from ldr_plugin.leaderboard.escape import latex as latex_escape
from ldr_plugin.leaderboard.escape import markdown as markdown_escape
from ldr_plugin.leaderboard.render_html import render_html
from ldr_plugin.leaderboard.tables import Cell, Column, Row, Table
from ldr_plugin.results import metric, new_record, read_record, record_filename, write_record

HOSTILE_IDS = [
    "x:../../etc/passwd",
    "x:a/../../b",
    "x:/etc/passwd",
    "x:a;rm -rf ~",
    "x:$(id)",
    "x:`id`",
    "x:a|b",
    "x:a&b",
    "x:a b",
    "x:a\0b",
    "x:a\nb",
    "x:~root/x",
    "x:-rf",
    "x:a//b",
    "x:<script>",
    "x:a'b",
    'x:a"b',
    "x:a\\b",
    "X Y:abc",
    "../x:abc",
    "noprefix",
    "",
]


def test_split_command_runs_metacharacters_as_literal_arguments(tmp_path):
    marker = tmp_path / "pwned"
    hostile = f"a; touch {marker}"
    argv = split_command(f"{sys.executable} -c 'import sys; print(sys.argv[1:])' --name '{hostile}' $(touch {marker})")
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    assert out.strip() == repr(["--name", hostile, "$(touch", f"{marker})"])
    assert not marker.exists()
    for bad in ["", "   ", "a\0b", "unclosed 'quote"]:
        with pytest.raises(UnsafeCommandError):
            split_command(bad)


_LATEX_ESCAPES = re.compile(r"\\(textbackslash|textasciitilde|textasciicircum|textless|textgreater)\{\}|\\[&%$#_{}]")


def test_latex_escape_leaves_no_bare_special():
    text = r"50% & $x_1$ #1 {a} ~b^c <d> \end{tabular}"
    escaped = latex_escape(text)
    rest = _LATEX_ESCAPES.sub("", escaped)
    assert not set(rest) & set("\\&%$#_{}~^<>")
    # every input character is either kept or replaced by exactly one escape
    assert len(rest) + len(_LATEX_ESCAPES.findall(escaped)) == len(text)


def _markdown_cells(row: str) -> list[str]:
    """Split a Markdown table row on unescaped pipes (a backslash escapes the next character)."""
    cells, current, chars = [], "", iter(row.strip().strip("|"))
    for char in chars:
        if char == "\\":
            current += next(chars, "")
        elif char == "|":
            cells.append(current)
            current = ""
        else:
            current += char
    return [*cells, current]


def test_markdown_escape_keeps_one_cell_per_value():
    values = ["a|b", "c\\|d", "`code`", "*bold*", "line\nbreak", "x:[link](http://e)"]
    row = "| " + " | ".join(markdown_escape(v) for v in values) + " |"
    assert "\n" not in row
    assert [c.strip() for c in _markdown_cells(row)] == [v.replace("\n", " ") for v in values]


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.data = [], ""

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        self.data += data


def test_html_page_turns_hostile_names_into_text():
    text = "<script>alert('x')</script> & \"q\" <img src=x onerror=alert(1)>"
    table = Table(table_id="t", title=text, columns=[Column(text)], rows=[Row(label=text, cells=[Cell(text=text)], source=text)])
    page = render_html(text, [{"id": "b", "title": text, "description": text, "tables": [table]}])
    parser = _Collector()
    parser.feed(page)
    assert parser.tags.count("script") == 1 and "img" not in parser.tags  # the page's own sort script only
    assert page.count("<script>") == 1 and page.index("<script>") > page.index("</table>")
    assert parser.data.count(text) == 11  # page title and heading, board title (+ contents), description,
    # table title (+ contents), column header, row label, cell, source


@pytest.mark.parametrize("model_id", [m for m in HOSTILE_IDS if ":" in m] + ["x:" + "a" * 300])
def test_record_file_names_of_hostile_ids_stay_in_their_folder(tmp_path, model_id):
    rec = new_record(kind="kstar", model_id=model_id, dataset="../../" + model_id[-5:], split="te/st",
                     layer="$(id)", metric_family="k*", seed=2**31 - 1,
                     metrics={"g": metric(0.1, higher_is_better=False)})
    name = record_filename(rec)
    assert "/" not in name and "\0" not in name and not name.startswith(".") and len(name) <= 255
    assert re.fullmatch(r"[A-Za-z0-9._-]+", name)
    path = write_record(rec, tmp_path)
    assert path.parent == tmp_path and read_record(path).model_id == model_id
    assert sorted(os.listdir(tmp_path)) == [".locks", name]


def test_ids_that_slug_alike_get_distinct_files(tmp_path):
    ids = ["x:a/b", "x:a_b", "x:a?b", "x:a b", "x:a;b", "x:a__b"]
    names = set()
    for model_id in ids:
        rec = new_record(kind="kstar", model_id=model_id, dataset="d", split="s", layer="l",
                         metric_family="kstar", seed=0, metrics={})
        names.add(write_record(rec, tmp_path).name)
    assert len(names) == len(ids) == len([f for f in os.listdir(tmp_path) if f.endswith(".json")])


def _calls(tree):
    import ast

    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node


def test_package_never_uses_a_shell_and_always_states_weights_only():
    """Static guard over ldr_plugin/: no shell=True / os.system; every torch.load says weights_only."""
    import ast
    from pathlib import Path

    import ldr_plugin

    offences = []
    for path in Path(ldr_plugin.__file__).parent.rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for call in _calls(tree):
            func = ast.unparse(call.func)
            keywords = {k.arg: k.value for k in call.keywords}
            shell = keywords.get("shell")
            if shell is not None and not (isinstance(shell, ast.Constant) and shell.value is False):
                offences.append(f"{path}:{call.lineno}: {func}(shell=...)")
            if func in ("os.system", "os.popen", "subprocess.getoutput", "subprocess.getstatusoutput"):
                offences.append(f"{path}:{call.lineno}: {func}")
            if func == "torch.load" and "weights_only" not in keywords:
                offences.append(f"{path}:{call.lineno}: torch.load without weights_only")
    assert offences == []
