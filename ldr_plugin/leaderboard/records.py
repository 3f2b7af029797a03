"""Reading this project's result records for leaderboards: bad files are reported and skipped.

A leaderboard reads many files written by many processes; one bad file must not hide the others,
and must not be dropped silently either. Each unreadable or invalid record (wrong JSON, unsupported
``schema_version``, missing field) becomes a :class:`~ldr_plugin.results.problems.Problem` naming the
file; two files for the same cell are reported as duplicates and the first (sorted path) is used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ldr_plugin.results import RecordError, iter_record_paths, read_record
from ldr_plugin.results.problems import Problem
from ldr_plugin.results.record import cell_key


@dataclass
class ProjectRecords:
    """Valid records (with their paths) and the problems met while reading."""

    records: list[tuple[Path, dict[str, Any]]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[tuple[Path, dict[str, Any]]]:
        return [(p, r) for p, r in self.records if r["kind"] == kind]


def read_project_records(dirs: list[str | os.PathLike]) -> ProjectRecords:
    """Every ``*.result.json`` below the given folders, validated; problems collected, not raised."""
    out = ProjectRecords()
    seen: dict[tuple, Path] = {}
    for directory in dirs:
        for path in iter_record_paths(directory):
            try:
                record = read_record(path)
            except RecordError as exc:
                kind = "schema_version" if "schema_version" in str(exc) else "bad_record"
                out.problems.append(Problem(kind, str(path), f"{exc}; file skipped".replace(f"{path}: ", "")))
                continue
            key = cell_key(record)
            if key in seen:
                out.problems.append(Problem("duplicate_record", str(path),
                                            f"same cell as {seen[key]}; this copy is ignored"))
                continue
            seen[key] = path
            out.records.append((path, record))
    return out


def metric_value(record: dict[str, Any], name: str) -> float | None:
    """The value of metric ``name`` in a record (None when absent or null)."""
    entry = record["metrics"].get(name)
    return None if entry is None else entry.get("value")
