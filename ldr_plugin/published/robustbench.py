"""RobustBench's published leaderboard entries (``model_info/<dataset>/<threat_model>/<name>.json``).

RobustBench stores accuracies as percent strings (``"clean_acc": "89.69"``); they are read as
numbers with the unit in the name (``clean_acc_pct``). Model ids follow the model sources'
spelling, ``robustbench:<dataset>/<threat_model>/<name>``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ldr_plugin.errors import LdrError
from ldr_plugin.files import UnreadableFile, read_json
from ldr_plugin.leaderboard.published import PublishedSource
from ldr_plugin.leaderboard.spec import LeaderboardSpec
from ldr_plugin.leaderboard.tables import Cell, Column, Row, Table

_BREAK = re.compile(r"\s*<br\s*/?>\s*", re.IGNORECASE)


def _plain(value) -> str:
    """A text field as plain text: RobustBench writes HTML line breaks (``GitHub,<br>Sep 2019``)."""
    return _BREAK.sub(" ", str(value or "")).strip()


SOURCE_TEXT = "published by RobustBench (Croce et al. 2021), model_info entries of the RobustBench repository"
RB_KEY = "published-robustbench"
ACCURACY_FIELDS = {"clean_acc_pct": "clean acc (%)", "autoattack_acc_pct": "AutoAttack acc (%)",
                   "corruptions_acc_pct": "corruptions acc (%)"}


@dataclass(frozen=True)
class RobustBenchEntry:
    """One published RobustBench entry, numbers in percent."""

    model_id: str
    dataset: str
    threat_model: str
    name: str
    clean_acc_pct: float | None
    autoattack_acc_pct: float | None
    corruptions_acc_pct: float | None
    architecture: str
    venue: str
    paper: str
    eps: str | None
    path: str


def _pct(value, path: Path, field: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise LdrError(f"{path}: field '{field}' should be a percentage like \"89.69\", got {value!r}") from None
    if not 0.0 <= number <= 100.0:
        raise LdrError(f"{path}: field '{field}' = {number} is outside [0, 100] percent")
    return number


def read_entry(path: Path, dataset: str, threat_model: str) -> RobustBenchEntry:
    """Read one model_info JSON file."""
    try:
        info = read_json(path, max_bytes=16 * 1024**2, what="RobustBench model_info JSON file")
    except UnreadableFile as exc:
        raise LdrError(f"{exc} (expected a RobustBench model_info JSON file)") from exc
    if not isinstance(info, dict):
        raise LdrError(f"{path}: expected a JSON object")
    name = path.stem
    return RobustBenchEntry(
        model_id=f"robustbench:{dataset}/{threat_model}/{name}", dataset=dataset, threat_model=threat_model,
        name=name, clean_acc_pct=_pct(info.get("clean_acc"), path, "clean_acc"),
        autoattack_acc_pct=_pct(info.get("autoattack_acc"), path, "autoattack_acc"),
        corruptions_acc_pct=_pct(info.get("corruptions_acc"), path, "corruptions_acc"),
        architecture=_plain(info.get("architecture")), venue=_plain(info.get("venue")),
        paper=_plain(info.get("name")), eps=None if info.get("eps") is None else str(info["eps"]),
        path=str(path),
    )


def read_robustbench(root: str | os.PathLike) -> dict[str, RobustBenchEntry]:
    """Every entry under ``root/<dataset>/<threat_model>/*.json``, keyed by model id (sorted)."""
    root = Path(root)
    if not root.is_dir():
        raise LdrError(f"RobustBench model_info folder {root} not found")
    entries = {}
    for path in sorted(root.glob("*/*/*.json")):
        entry = read_entry(path, path.parent.parent.name, path.parent.name)
        entries[entry.model_id] = entry
    if not entries:
        raise LdrError(f"{root}: no <dataset>/<threat_model>/<name>.json files found")
    return entries


def _pct_cell(value: float | None) -> Cell:
    return Cell(value=value, decimals=2, missing="—", flags=() if value is not None else ("not_reported",))


def robustbench_tables(entries: dict[str, RobustBenchEntry], datasets: list[str],
                       threat_models: list[str]) -> list[Table]:
    """One table per (dataset, threat model), sorted as RobustBench's leaderboards (robust accuracy)."""
    groups: dict[tuple[str, str], list[RobustBenchEntry]] = {}
    for entry in entries.values():
        if (not datasets or entry.dataset in datasets) and (not threat_models or entry.threat_model in threat_models):
            groups.setdefault((entry.dataset, entry.threat_model), []).append(entry)
    tables = []
    for (dataset, threat), group in sorted(groups.items()):
        corruptions = threat.startswith("corruptions")
        robust = "corruptions_acc_pct" if corruptions else "autoattack_acc_pct"
        group.sort(key=lambda e: (-(getattr(e, robust) or -1.0), -(e.clean_acc_pct or -1.0), e.name))
        rows = [Row(label=e.name, source=RB_KEY, published=True, cells=[
            _pct_cell(e.clean_acc_pct), _pct_cell(getattr(e, robust)), Cell(text=e.eps or "—"),
            Cell(text=e.architecture), Cell(text=e.venue)]) for e in group]
        tables.append(Table(
            table_id=f"robustbench__{dataset}__{threat}", title=f"RobustBench {dataset}, {threat}",
            columns=[Column("clean acc (%)"), Column("corruptions acc (%)" if corruptions else "AutoAttack acc (%)"),
                     Column("eps"), Column("architecture"), Column("venue")],
            rows=rows, row_header="model", section="RobustBench", kind="published",
            sources={RB_KEY: SOURCE_TEXT},
            footnotes={"not_reported": "—: not reported in the model_info entry"},
            notes=[f"{len(rows)} entries; model id = robustbench:{dataset}/{threat}/<model>"],
        ))
    return tables


class RobustBenchPublished(PublishedSource):
    """RobustBench's leaderboard entries (``model_info/<dataset>/<threat_model>/<name>.json``)."""

    name, default_path, key, text = "robustbench", "robustbench_model_info", RB_KEY, SOURCE_TEXT
    accuracy_fields = ACCURACY_FIELDS

    def read(self, path: Path) -> dict[str, RobustBenchEntry]:
        return read_robustbench(path)

    def tables(self, entries: dict[str, RobustBenchEntry], spec: LeaderboardSpec) -> list[Table]:
        return robustbench_tables(entries, spec.datasets, spec.threat_models)

    def accuracies(self, entries: dict[str, RobustBenchEntry]) -> dict[str, dict[str, float | None]]:
        return {model_id: {f: getattr(entry, f) for f in ACCURACY_FIELDS} for model_id, entry in entries.items()}

    def how(self, entries: dict[str, RobustBenchEntry]) -> str:
        return f"{len(entries)} RobustBench model_info entries; percent strings read as numbers."
