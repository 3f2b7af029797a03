"""DomainBed's published results tables (``results.tex`` as ``collect_results --latex`` writes it).

Parsed into the leaderboard table model, every row marked as published with its source, so the
2020 numbers can be rendered on their own or shown beside reproduced rows.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ldr_plugin.errors import LdrError
from ldr_plugin.files import read_text
from ldr_plugin.leaderboard.published import PublishedSource
from ldr_plugin.leaderboard.spec import LeaderboardSpec
from ldr_plugin.leaderboard.tables import Cell, Column, Row, Table

SOURCE_KEY = "published-domainbed-2020"
SOURCE_TEXT = "Gulrajani & Lopez-Paz 2021 (DomainBed results 2020_10_06)"
_METHOD_KEYS = {
    "training-domain validation set": "iid",
    "leave-one-domain-out cross-validation": "loo",
    "test-domain validation set (oracle)": "oracle",
}
_MEAN_ERR = re.compile(r"^(-?\d+(?:\.\d+)?)\s*\$\\pm\$\s*(-?\d+(?:\.\d+)?)$")
_NUMBER = re.compile(r"^-?\d+(?:\.\d+)?$")


def _unlatex(text: str) -> str:
    text = text.strip()
    match = re.fullmatch(r"\\textbf\{(.*)\}", text)
    if match:
        text = match.group(1)
    return text.replace("\\%", "%").replace("\\_", "_").replace("\\&", "&").strip()


def _cell(text: str, path: Path, line: int) -> Cell:
    text = text.strip()
    if text == "X":
        return Cell(value=None, flags=("missing",))
    match = _MEAN_ERR.match(text)
    if match:
        return Cell(value=float(match.group(1)), err=float(match.group(2)))
    if _NUMBER.match(text):
        return Cell(value=float(text))
    raise LdrError(f"{path}:{line}: cell {text!r} is neither 'mean $\\pm$ err', a number nor X")


def _split_row(line: str) -> list[str]:
    return [p.strip() for p in line.rstrip().removesuffix("\\\\").split(" & ")]


def read_domainbed_tex(path: str | os.PathLike) -> list[Table]:
    """Every table of a DomainBed ``results.tex``, in file order, rows marked published."""
    path = Path(path)
    lines = read_text(path, what="DomainBed results.tex").splitlines()  # regular UTF-8 file, or a named problem
    tables: list[Table] = []
    method = dataset = None
    header: list[str] | None = None
    rows: list[Row] = []
    for number, line in enumerate(lines, start=1):
        if m := re.match(r"\\subsection\{Model selection: (.*)\}", line):
            method = m.group(1)
        elif m := re.match(r"\\subsubsection\{(.*)\}", line):
            dataset, header, rows = m.group(1), None, []
        elif line.startswith("\\textbf{"):
            header = [_unlatex(p) for p in _split_row(line)]
        elif header is not None and line == "\\bottomrule":
            tables.append(_table(path, method, dataset, header, rows))
            header = None
        elif header is not None and line not in ("\\midrule",) and " & " in line:
            parts = _split_row(line)
            if len(parts) != len(header):
                raise LdrError(f"{path}:{number}: row has {len(parts)} cells, header has {len(header)}")
            rows.append(Row(label=_unlatex(parts[0]), cells=[_cell(p, path, number) for p in parts[1:]],
                            source=SOURCE_KEY, published=True))
    if not tables:
        raise LdrError(f"{path}: no DomainBed result tables found")
    return tables


def _table(path: Path, method: str | None, dataset: str | None, header: list[str], rows: list[Row]) -> Table:
    if method not in _METHOD_KEYS or dataset is None:
        raise LdrError(f"{path}: table outside a known '\\subsection{{Model selection: ...}}' ({method!r})")
    averages = dataset == "Averages"
    title = (f"Averages, model selection method: {method}" if averages
             else f"Dataset: {dataset}, model selection method: {method}")
    return Table(
        table_id=f"{'averages' if averages else dataset}__{_METHOD_KEYS[method]}", title=title,
        columns=[Column(h) for h in header[1:]], rows=rows, row_header=header[0], section=method,
        sources={SOURCE_KEY: SOURCE_TEXT},
        footnotes={"missing": "X: not reported in the publication"},
        kind="domainbed_averages" if averages else "domainbed_dataset",
    )


class DomainBedPublished(PublishedSource):
    """DomainBed's published 2020 tables (``results.tex``, as ``collect_results --latex`` writes it)."""

    name, default_path, key, text = "domainbed_2020", "domainbed/results_2020_10_06.tex", SOURCE_KEY, SOURCE_TEXT

    def read(self, path: Path) -> list[Table]:
        return read_domainbed_tex(path)

    def tables(self, entries: list[Table], spec: LeaderboardSpec) -> list[Table]:
        """The published tables of the spec's datasets (all when it names none) and the Averages."""
        return [t for t in entries if not spec.datasets or t.table_id.rsplit("__", 1)[0] in [*spec.datasets, "averages"]]

    def how(self, entries: list[Table]) -> str:
        return "Parsed from DomainBed's results.tex (collect_results --latex output)."
