"""OpenCLIP's published zero-shot results (``docs/openclip_results.csv``): fractions read as percent.

Keys follow the model sources' spelling, ``openclip:<architecture>/<pretrained tag>``.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path

from ldr_plugin.errors import LdrError
from ldr_plugin.files import read_text
from ldr_plugin.leaderboard.published import PublishedSource
from ldr_plugin.leaderboard.spec import LeaderboardSpec
from ldr_plugin.leaderboard.tables import Cell, Column, Row, Table

SOURCE_TEXT = "published by OpenCLIP (Ilharco et al.; Cherti et al. 2023), docs/openclip_results.csv"
AVERAGE_COLUMN = "Average perf. on 38 datasets"
REQUIRED = ("name", "pretrained", AVERAGE_COLUMN, "ImageNet 1k")
OC_KEY = "published-openclip"
ACCURACY_FIELDS = {"zeroshot_avg_pct": "zero-shot avg 38 (%)", "zeroshot_imagenet_pct": "zero-shot ImageNet-1k (%)"}


@dataclass(frozen=True)
class OpenCLIPEntry:
    """Zero-shot accuracies of one (architecture, tag), in percent."""

    model_id: str
    architecture: str
    tag: str
    zeroshot_avg_pct: float | None
    zeroshot_imagenet_pct: float | None
    params_m: float | None
    per_dataset_pct: dict[str, float | None] = field(default_factory=dict)


def _fraction_to_pct(value: str, path: Path, line: int, column: str) -> float | None:
    if value.strip() == "":
        return None
    try:
        number = float(value)
    except ValueError:
        raise LdrError(f"{path}:{line}: column '{column}' should be a fraction, got {value!r}") from None
    if not 0.0 <= number <= 1.0:
        raise LdrError(f"{path}:{line}: column '{column}' = {number} is not a fraction in [0, 1]")
    return round(100.0 * number, 8)  # the CSV has 4 decimals: no float noise in the percent


def read_openclip(path: str | os.PathLike) -> dict[str, OpenCLIPEntry]:
    """Read the results CSV, keyed by model id in file order."""
    path = Path(path)
    text = read_text(path, what="OpenCLIP results CSV")  # a regular UTF-8 file, or a named problem
    try:
        return _parse_openclip(text, path)
    except csv.Error as exc:  # a field over the csv module's limit, a NUL byte ...
        raise LdrError(f"{path}: not a readable CSV ({exc})") from exc


def _parse_openclip(text: str, path: Path) -> dict[str, OpenCLIPEntry]:
    reader = csv.DictReader(text.splitlines())
    missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
    if missing:
        raise LdrError(f"{path}: missing column(s) {missing}; expected OpenCLIP's openclip_results.csv")
    entries = {}
    skip = {"name", "pretrained", "params (M)", "FLOPs (B)"}
    for line, row in enumerate(reader, start=2):
        if None in row or None in row.values():  # more or fewer fields than the header names
            raise LdrError(f"{path}:{line}: {len(reader.fieldnames)} columns in the header, not in this row")
        per = {c: _fraction_to_pct(v or "", path, line, c) for c, v in row.items() if c not in skip}
        params = row.get("params (M)") or ""
        model_id = f"openclip:{row['name']}/{row['pretrained']}"
        entries[model_id] = OpenCLIPEntry(
            model_id=model_id, architecture=row["name"], tag=row["pretrained"],
            zeroshot_avg_pct=per.pop(AVERAGE_COLUMN), zeroshot_imagenet_pct=per.get("ImageNet 1k"),
            params_m=float(params) if params.strip() else None, per_dataset_pct=per,
        )
    return entries


def _pct_cell(value: float | None) -> Cell:
    return Cell(value=value, decimals=2, missing="—", flags=() if value is not None else ("not_reported",))


def openclip_table(entries: dict[str, OpenCLIPEntry], limit: int = 0) -> Table:
    """OpenCLIP zero-shot averages, best first (ties by id)."""
    ordered = sorted(entries.values(), key=lambda e: (-(e.zeroshot_avg_pct or -1.0), e.model_id))
    if limit:
        ordered = ordered[:limit]
    rows = [Row(label=f"{e.architecture}/{e.tag}", source=OC_KEY, published=True, cells=[
        _pct_cell(e.zeroshot_avg_pct), _pct_cell(e.zeroshot_imagenet_pct),
        Cell(value=e.params_m, decimals=2, missing="—")]) for e in ordered]
    return Table(
        table_id="openclip__zeroshot", title="OpenCLIP zero-shot accuracy (average over 38 datasets)",
        columns=[Column("avg 38 datasets (%)"), Column("ImageNet-1k (%)"), Column("params (M)")],
        rows=rows, row_header="architecture/tag", section="OpenCLIP", kind="published",
        sources={OC_KEY: SOURCE_TEXT},
        footnotes={"not_reported": "—: not reported"},
        notes=[f"{len(rows)} models; model id = openclip:<architecture>/<tag>; fractions converted to percent"],
    )


class OpenCLIPPublished(PublishedSource):
    """OpenCLIP's zero-shot results CSV (``docs/openclip_results.csv``)."""

    name, default_path, key, text = "openclip", "openclip/openclip_results.csv", OC_KEY, SOURCE_TEXT
    accuracy_fields = ACCURACY_FIELDS

    def read(self, path: Path) -> dict[str, OpenCLIPEntry]:
        return read_openclip(path)

    def tables(self, entries: dict[str, OpenCLIPEntry], spec: LeaderboardSpec) -> list[Table]:
        return [openclip_table(entries, spec.limit)]

    def accuracies(self, entries: dict[str, OpenCLIPEntry]) -> dict[str, dict[str, float | None]]:
        return {model_id: {f: getattr(entry, f) for f in ACCURACY_FIELDS} for model_id, entry in entries.items()}

    def how(self, entries: dict[str, OpenCLIPEntry]) -> str:
        return "OpenCLIP openclip_results.csv; fractions × 100."
