"""This project's result records as a leaderboard reads them: bad files reported and skipped.

A leaderboard reads many files written by many processes; one bad file must not hide the others,
and must not be dropped silently either. :func:`~ldr_plugin.results.io.scan_records` (the one
validator) names each unreadable, invalid or duplicate file as a problem.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ldr_plugin.results.io import scan_records
from ldr_plugin.results.problems import Problem
from ldr_plugin.results.record import Record


@dataclass
class ProjectRecords:
    """Valid records (with their paths) and the problems met while reading."""

    records: list[tuple[Path, Record]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def read_project_records(dirs: list[str | os.PathLike]) -> ProjectRecords:
    """Every ``*.result.json`` below the given folders, validated; problems collected, not raised."""
    return ProjectRecords(*scan_records(dirs))


def metric_value(record: Record, name: str) -> float | None:
    """The value of metric ``name`` in a record (None when absent or null)."""
    entry = record.metrics.get(name)
    return None if entry is None else entry.value
