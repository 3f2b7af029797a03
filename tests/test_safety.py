"""Hostile input: real ids pass, traversal / shell / control characters are rejected, escaping is complete."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from html.parser import HTMLParser

import pytest

from ldr_plugin.results import metric, new_record, read_record, record_filename, write_record
from ldr_plugin.safety import (
    UnsafeNameError,
    check_dataset_name,
    check_identifier,
    check_model_id,
    html_escape,
    latex_escape,
    markdown_escape,
    path_within,
    split_command,
)

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


def test_real_registry_ids_pass(shared_data):
    info = shared_data / "robustbench_model_info"
    ids = [f"robustbench:{p.parent.parent.name}/{p.parent.name}/{p.stem}" for p in info.glob("*/*/*.json")]
    with open(shared_data / "openclip" / "openclip_results.csv") as handle:
        ids += [f"openclip:{row['name']}/{row['pretrained']}" for row in csv.DictReader(handle)]
    ids += ["openclip:hf-hub:timm/ViT-B-16-SigLIP", "domainbed:/work/sweeps/0657090f9a83ff76efe083a104fde93a"]
    assert len(ids) > 300
    for model_id in ids:
        assert check_model_id(model_id, allow_absolute=model_id.startswith("domainbed:")) == model_id


@pytest.mark.parametrize("model_id", HOSTILE_IDS)
def test_hostile_model_ids_are_rejected(model_id):
    with pytest.raises(UnsafeNameError):
        check_model_id(model_id)


def test_absolute_paths_only_where_allowed():
    with pytest.raises(UnsafeNameError, match="absolute"):
        check_identifier("/data/run")
    assert check_identifier("/data/run", allow_absolute=True) == "/data/run"
    with pytest.raises(UnsafeNameError, match=r"'\.\.'"):
        check_identifier("/data/../etc", allow_absolute=True)


@pytest.mark.parametrize("name", ["Debug28", "RotatedDigits", "cifar10", "imagenet-c", "PACS", "office_home.v2"])
def test_dataset_names_pass(name):
    assert check_dataset_name(name) == name


@pytest.mark.parametrize("name", ["../etc", "a/b", ".hidden", "a;b", "a b", "", "a\0", "$HOME", "x" * 600])
def test_hostile_dataset_names_are_rejected(name):
    with pytest.raises(UnsafeNameError):
        check_dataset_name(name)


def test_error_names_the_offending_character():
    with pytest.raises(UnsafeNameError, match=r"';'"):
        check_model_id("robustbench:Standard;reboot")
    with pytest.raises(UnsafeNameError, match="code 0"):
        check_dataset_name("a\0b")


def test_path_within_blocks_traversal_and_symlinks_out(tmp_path):
    (tmp_path / "inside").mkdir()
    assert path_within(tmp_path, "inside/file") == (tmp_path / "inside" / "file").resolve()
    for escape in ["../x", "inside/../../x", "/etc/passwd"]:
        with pytest.raises(UnsafeNameError):
            path_within(tmp_path, escape)
    os.symlink("/", tmp_path / "link")
    with pytest.raises(UnsafeNameError, match="outside"):
        path_within(tmp_path, "link/etc")


def test_split_command_runs_metacharacters_as_literal_arguments(tmp_path):
    marker = tmp_path / "pwned"
    hostile = f"a; touch {marker}"
    argv = split_command(f"{sys.executable} -c 'import sys; print(sys.argv[1:])' --name '{hostile}' $(touch {marker})")
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    assert out.strip() == repr(["--name", hostile, "$(touch", f"{marker})"])
    assert not marker.exists()
    for bad in ["", "   ", "a\0b", "unclosed 'quote"]:
        with pytest.raises(UnsafeNameError):
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


def test_html_escape_produces_no_markup():
    text = "<script>alert('x')</script> & \"q\" <img src=x onerror=alert(1)>"
    parser = _Collector()
    parser.feed(f"<td title=\"{html_escape(text)}\">{html_escape(text)}</td>")
    assert parser.tags == ["td"] and parser.data == text


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
