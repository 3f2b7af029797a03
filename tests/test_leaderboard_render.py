"""Renderers and the build: hostile names escaped in every format, byte-for-byte determinism, CLI."""

from __future__ import annotations

import csv
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from ldr_plugin.cli import main
from ldr_plugin.cli.leaderboard_cmd import leaderboard
from ldr_plugin.errors import LdrError
from ldr_plugin.leaderboard import escape
from ldr_plugin.leaderboard.build import build_leaderboards
from ldr_plugin.leaderboard.spec import load_spec

HOSTILE = 'Evil&Co 100% $x$ #1 a_b {c} ~d ^e \\f <script>alert(1)</script> "q" |p|'
REGISTRY = Path(__file__).resolve().parents[1] / "registry" / "leaderboards"


def _write_sweep(root: Path, algorithm: str, dataset: str = "VLCS") -> None:
    """A tiny complete sweep (1 trial, 1 hparams seed, singles + pairs of 4 envs) for one algorithm."""
    import itertools

    envs_sets = [[i] for i in range(4)] + [list(p) for p in itertools.combinations(range(4), 2)]
    for k, envs in enumerate(envs_sets):
        run = root / f"{abs(hash(algorithm)) % 1000}_{k}"
        run.mkdir(parents=True)
        lines = []
        for step in range(3):
            rec = {"args": {"algorithm": algorithm, "dataset": dataset, "trial_seed": 0, "hparams_seed": 0,
                            "test_envs": envs}, "step": step}
            for e in range(4):
                rec[f"env{e}_in_acc"] = 0.5 + 0.01 * e + 0.02 * step
                rec[f"env{e}_out_acc"] = 0.4 + 0.03 * step - 0.01 * e
            lines.append(json.dumps(rec))
        (run / "results.jsonl").write_text("\n".join(lines) + "\n")
        (run / "done").write_text("done")


def _spec(tmp_path: Path, **fields) -> Path:
    body = "[leaderboard]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in fields.items())
    path = tmp_path / f"{fields['id']}.toml"
    path.write_text(body)
    return path


class _Cells(HTMLParser):
    def __init__(self):
        super().__init__()
        self.cells, self._in, self.scripts = [], False, 0

    def handle_starttag(self, tag, attrs):
        self._in = tag == "td"
        self.scripts += tag == "script"
        if self._in:
            self.cells.append("")

    def handle_endtag(self, tag):
        self._in = False if tag == "td" else self._in

    def handle_data(self, data):
        if self._in:
            self.cells[-1] += data


@pytest.fixture
def hostile_build(tmp_path):
    sweep = tmp_path / "sweep"
    _write_sweep(sweep, HOSTILE)
    _write_sweep(sweep, "ERM")
    spec = _spec(tmp_path, id="hostile", title=f"Board {HOSTILE}", kind="domainbed", selection=["iid", "loo"])
    out = tmp_path / "out"
    build_leaderboards([spec], [sweep], out, progress=False)
    return out


def test_hostile_names_escaped_in_html(hostile_build):
    parser = _Cells()
    page = (hostile_build / "index.html").read_text()
    parser.feed(page)
    from ldr_plugin.leaderboard.render_html import _SCRIPT

    assert parser.scripts == 1 and f"<script>{_SCRIPT}</script>" in page  # only the page's own sort script
    assert HOSTILE in parser.cells  # the name survives a real HTML parser unchanged


def test_hostile_names_escaped_in_latex(hostile_build):
    tex = (hostile_build / "hostile.tex").read_text()
    row = next(line for line in tex.splitlines() if line.startswith("Evil"))
    label = row.split(" & ")[0]
    assert label == escape.latex(HOSTILE)
    # after removing the escape sequences no LaTeX special character is left raw
    residue = re.sub(r"\\(textbackslash|textasciitilde|textasciicircum|textless|textgreater|textquotedbl|textbar)\{\}"
                     r"|\\[&%$#_{}]", "", label)
    assert not re.search(r"[&%$#_{}~^\\<>\"|]", residue)
    assert "\\toprule" in tex and "\\midrule" in tex and "\\bottomrule" in tex  # booktabs


def test_hostile_names_escaped_in_markdown_and_csv(hostile_build):
    md = (hostile_build / "hostile.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| Evil"))
    assert "<script>" not in md and "&lt;script&gt;" in row
    unescaped_pipes = len(re.findall(r"(?<!\\)\|", row))
    header = next(line for line in md.splitlines() if line.startswith("| Algorithm"))
    assert unescaped_pipes == len(re.findall(r"(?<!\\)\|", header))  # the name does not add columns
    rows = list(csv.DictReader(io.StringIO((hostile_build / "hostile.csv").read_text())))
    assert HOSTILE in {r["row"] for r in rows}


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_build_is_deterministic_and_atomic(shared_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    specs = [str(REGISTRY / "domainbed_sweep.toml"), str(REGISTRY / "kstar_vs_accuracy.toml")]
    args = {'published_root': shared_data, 'progress': False}
    build_leaderboards(specs, [shared_data / "domainbed" / "test_sweep_data"], "out", **args)
    first = _snapshot(tmp_path / "out")
    build_leaderboards(specs, [shared_data / "domainbed" / "test_sweep_data"], "out", **args)
    assert _snapshot(tmp_path / "out") == first
    assert any(name.endswith(".svg") for name in first) and "index.html" in first and "README.md" in first
    assert not [n for n in first if ".tmp-" in n]
    text = first["domainbed_sweep.domainbed.txt"].decode()
    assert text == (shared_data / "domainbed" / "collect_results_output.txt").read_text()
    assert b"ldr leaderboard build" in first["README.md"]


def test_published_rows_marked_and_avg_not_mixed(shared_data, tmp_path):
    spec = _spec(tmp_path, id="withpub", title="t", kind="domainbed", published=["domainbed_2020"])
    build_leaderboards([spec], [shared_data / "domainbed" / "test_sweep_data"], tmp_path / "o",
                       published_root=shared_data, progress=False)
    rows = list(csv.DictReader(io.StringIO((tmp_path / "o" / "withpub.csv").read_text())))
    pub = [r for r in rows if r["published"] == "1" and r["table"] == "VLCS__iid" and r["row"] == "ERM"]
    assert {r["column"]: r["value"] for r in pub}["C"] == "97.7"  # DomainBed 2020, VLCS, ERM, C
    assert all(r["source"] == "published-domainbed-2020" for r in pub)
    avg = [r for r in rows if r["table"] == "averages__iid" and r["published"] == "1" and r["column"] == "Avg"]
    assert avg and all(r["value"] == "" and "avg_elsewhere" in r["flags"] for r in avg)


def test_spec_errors_name_file_and_key(tmp_path):
    bad = _spec(tmp_path, id="x", title="t", kind="domainbed", selction=["iid"])
    with pytest.raises(LdrError, match=r"x\.toml: unknown key 'leaderboard.selction'"):
        load_spec(bad)
    with pytest.raises(LdrError, match="kind"):
        load_spec(_spec(tmp_path, id="y", title="t", kind="nope"))


def test_cli_build_and_errors(shared_data, tmp_path):
    out = tmp_path / "cli_out"
    result = CliRunner().invoke(leaderboard, [
        "build", str(REGISTRY / "published_openclip.toml"), "--published-data", str(shared_data), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "openclip.md").is_file() and "ldr leaderboard build" in (out / "README.md").read_text()
    assert main(["leaderboard", "build", str(tmp_path / "missing.toml")]) == 2


def test_cli_collect_prints_domainbed_text(shared_data):
    result = CliRunner().invoke(leaderboard, ["collect", "--input_dir", str(shared_data / "domainbed" / "test_sweep_data")])
    assert result.exit_code == 0, result.output
    assert result.output == (shared_data / "domainbed" / "collect_results_output.txt").read_text()


def test_cli_reports_skipped_lines(shared_data, tmp_path):
    import shutil

    sweep = tmp_path / "sweep"
    shutil.copytree(shared_data / "domainbed" / "test_sweep_data", sweep)
    run = min(p for p in sweep.iterdir() if p.is_dir())
    with (run / "results.jsonl").open("a") as handle:
        handle.write("{not json\n")
    result = CliRunner().invoke(leaderboard, ["collect", "--input_dir", str(sweep)])
    assert result.exit_code == 0
    assert "1 lines skipped" in result.output and f"{run / 'results.jsonl'}:6" in result.output


def test_every_shipped_spec_parses_and_ids_are_unique():
    from ldr_plugin.leaderboard.spec import load_spec

    ids = [load_spec(path).id for path in sorted(REGISTRY.glob("*.toml"))]
    assert len(ids) >= 14 and len(set(ids)) == len(ids)  # a build writes <id>.md: ids must not collide


def test_latex_fragment_by_default_and_standalone_document_on_request(shared_data, tmp_path):
    from ldr_plugin.domainbed.runs import read_sweep
    from ldr_plugin.domainbed.tables import SweepSelection, domainbed_tables
    from ldr_plugin.leaderboard.render_latex import render_latex, render_table_latex

    sweep = shared_data / "domainbed" / "test_sweep_data"
    fragment = CliRunner().invoke(leaderboard, ["collect", "--input_dir", str(sweep), "--latex"]).stdout
    document = CliRunner().invoke(leaderboard, ["collect", "--input_dir", str(sweep), "--latex-document"]).stdout
    assert "\\documentclass" not in fragment and "\\begin{document}" not in fragment
    assert document.startswith("\\documentclass{article}") and document.rstrip().endswith("\\end{document}")
    tables = domainbed_tables(SweepSelection.build(read_sweep(str(sweep), progress=False)), domainbed_only=True)
    for table in tables:  # the same tables in both, each once
        assert fragment.count(render_table_latex(table)) == 1 and document.count(render_table_latex(table)) == 1
    assert render_latex("t", tables, document=True).count("\\usepackage{booktabs}") == 1
    out = tmp_path / "o"
    result = CliRunner().invoke(leaderboard, ["build", "domainbed_sweep", "--results", str(sweep), "--out", str(out),
                                              "--latex-document"])
    assert result.exit_code == 0, result.output
    assert (out / "domainbed_sweep.tex").read_text().startswith("\\documentclass")
    assert "--latex-document" in (out / "README.md").read_text()


def test_site_index_links_every_leaderboard_folder(shared_data, tmp_path):
    from ldr_plugin.leaderboard.site import site_folders, write_site_index

    sweep = shared_data / "domainbed" / "test_sweep_data"
    for name in ("a", "nested/b"):
        build_leaderboards([REGISTRY / "domainbed_sweep.toml"], [sweep], tmp_path / name, progress=False)
    (tmp_path / "a" / "STUDY.md").write_text("how")
    page = write_site_index(tmp_path).read_text()
    folders = site_folders(tmp_path)
    assert [f["name"] for f in folders] == ["a", "nested/b"]
    assert all(f["summary"] == "DomainBed sweep results" for f in folders)
    assert '<a href="a/index.html">a</a>' in page and '<a href="nested/b/index.html">' in page
    assert '<a href="a/STUDY.md">' in page and '<meta name="viewport"' in page
    # the checked-in site index lists every checked-in folder
    checked_in = Path(__file__).resolve().parents[1] / "leaderboards"
    listed = (checked_in / "index.html").read_text()
    assert all(f'href="{p.relative_to(checked_in).as_posix()}"' in listed
               for p in checked_in.rglob("index.html") if p.parent != checked_in)
