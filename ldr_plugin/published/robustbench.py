"""RobustBench's published leaderboard entries (``model_info/<dataset>/<threat_model>/<name>.json``).

RobustBench stores accuracies as percent strings (``"clean_acc": "89.69"``); they are read as
numbers with the unit in the name (``clean_acc_pct``). Model ids follow the model sources'
spelling, ``robustbench:<dataset>/<threat_model>/<name>``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ldr_plugin.errors import LdrError

SOURCE_TEXT = "published by RobustBench (Croce et al. 2021), model_info entries of the RobustBench repository"


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
        info = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise LdrError(f"{path}: not a readable RobustBench model_info JSON file ({exc})") from exc
    if not isinstance(info, dict):
        raise LdrError(f"{path}: expected a JSON object")
    name = path.stem
    return RobustBenchEntry(
        model_id=f"robustbench:{dataset}/{threat_model}/{name}", dataset=dataset, threat_model=threat_model,
        name=name, clean_acc_pct=_pct(info.get("clean_acc"), path, "clean_acc"),
        autoattack_acc_pct=_pct(info.get("autoattack_acc"), path, "autoattack_acc"),
        corruptions_acc_pct=_pct(info.get("corruptions_acc"), path, "corruptions_acc"),
        architecture=str(info.get("architecture") or ""), venue=str(info.get("venue") or ""),
        paper=str(info.get("name") or ""), eps=None if info.get("eps") is None else str(info["eps"]),
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
