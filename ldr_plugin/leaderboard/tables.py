"""The table model every renderer reads: rows of cells, each number with its provenance and flags.

A cell holds numbers (mean, standard error, count), not strings; renderers format them. A missing
value is a cell with ``value=None`` that renders as its ``missing`` mark (``X`` as DomainBed, or
``—``) and carries a flag explained in a footnote: nothing is dropped silently. Every row names a
source (reproduced here, or published by whom); a cell may override it (a published accuracy
beside a reproduced k*).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ldr_plugin.leaderboard.spec import LeaderboardSpec

FOOTNOTE_MARKS = ("*", "†", "‡", "§", "¶", "#", "**", "††", "‡‡")


@dataclass
class Cell:
    """One table cell: a number (± standard error over ``n`` values), a text, or a visible gap."""

    value: float | None = None
    err: float | None = None
    n: int | None = None
    text: str | None = None
    decimals: int = 1
    flags: tuple[str, ...] = ()
    source: str | None = None  # key into Table.sources; None means the row's source
    missing: str = "X"

    @property
    def is_missing(self) -> bool:
        return self.value is None and self.text is None

    def plain(self, pm: str = "±") -> str:
        """The cell's text without footnote marks (``pm`` joins mean and error)."""
        if self.text is not None:
            return self.text
        if self.value is None:
            return self.missing
        d = self.decimals
        if self.err is None:
            return f"{self.value:.{d}f}"
        return f"{self.value:.{d}f} {pm} {self.err:.{d}f}"


@dataclass
class Column:
    """A column header; ``extra`` marks columns DomainBed's own tables do not have."""

    name: str
    extra: bool = False
    source: str | None = None  # provenance of the whole column, if it differs from the rows'


@dataclass
class Row:
    """A row label and its cells; ``published`` rows hold numbers copied from a publication."""

    label: str
    cells: list[Cell]
    source: str
    published: bool = False


@dataclass(frozen=True)
class Scatter:
    """The points of one scatter plot, kept for the HTML page's interactive version (hover shows
    each point's row label and values): ``plot`` is the static plot's file name (relative to the
    output dir, what Markdown and LaTeX show), ``points`` (row label, x, y, group) the drawn ones."""

    plot: str
    title: str
    x_label: str
    y_label: str
    points: tuple[tuple[str, float, float, str], ...]
    grouped: bool = False  # points coloured by group (with a legend)


@dataclass
class Table:
    """A titled table with the sources and footnotes its cells refer to."""

    table_id: str
    title: str
    columns: list[Column]
    rows: list[Row]
    row_header: str = "Algorithm"
    section: str = ""
    sources: dict[str, str] = field(default_factory=dict)
    footnotes: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)  # file names (relative to the output dir)
    scatters: list[Scatter] = field(default_factory=list)  # the data of those plots that are scatters
    kind: str = "table"  # domainbed_dataset, domainbed_averages, cross_model, correlation, published

    def marks(self) -> dict[str, str]:
        """Footnote mark of every flag used in this table, in first-use order."""
        used: list[str] = []
        for row in self.rows:
            for cell in row.cells:
                for flag in cell.flags:
                    if flag not in used:
                        used.append(flag)
        return {flag: FOOTNOTE_MARKS[i % len(FOOTNOTE_MARKS)] * (1 + i // len(FOOTNOTE_MARKS))
                for i, flag in enumerate(used)}

    def cell_source(self, row: Row, column_index: int) -> str:
        """Provenance key of one cell (cell, then column, then row)."""
        cell = row.cells[column_index]
        return cell.source or self.columns[column_index].source or row.source


def cell_text(cell: Cell, marks: dict[str, str], pm: str = "±") -> str:
    """Plain cell text followed by its footnote marks."""
    return cell.plain(pm) + "".join(marks[f] for f in cell.flags if f in marks)


@dataclass
class Board:
    """A built leaderboard: tables in order, what a reader must know about how it was made, and any
    other text files of its own (name -> text, e.g. DomainBed's ``collect_results`` output)."""

    spec: LeaderboardSpec
    tables: list[Table]
    how: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelFacts:
    """What a model's source says about it for a cross-model table: a row label, accuracies (percent)
    by field, a stratum to correlate within (its held-out domain), a group to colour by, whether it is
    an intermediate checkpoint rather than final weights, and where its accuracies come from
    (source text, and the files they are read from)."""

    label: str | None = None
    accuracies: dict[str, float | None] = field(default_factory=dict)
    stratum: str | None = None
    group: str | None = None
    checkpoint: bool = False
    provenance: tuple[str, str] = ("", "")
