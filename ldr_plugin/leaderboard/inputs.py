"""What a leaderboard build reads, each loaded once and shared by every spec of the build."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ldr_plugin.domainbed.runs import read_sweep
from ldr_plugin.domainbed.tables import SweepSelection
from ldr_plugin.leaderboard.records import ProjectRecords, read_project_records
from ldr_plugin.leaderboard.spec import LeaderboardSpec
from ldr_plugin.results.problems import Problem


@dataclass
class BuildInputs:
    """Result folders (DomainBed sweeps and/or project records) and the published-data root."""

    results_dirs: list[str]
    published_root: Path | None = None
    progress: bool = True
    _selections: dict[str, SweepSelection] = field(default_factory=dict)
    _project: ProjectRecords | None = None
    _published: dict[tuple[str, str], Any] = field(default_factory=dict)
    _extra_problems: list[Problem] = field(default_factory=list)

    def selection(self, order: str = "sorted") -> SweepSelection:
        """Every sweep record of the result folders, grouped and selected (cached per read order)."""
        if order not in self._selections:
            sweep = read_sweep(self.results_dirs, order=order, progress=self.progress)
            self._selections[order] = SweepSelection.build(sweep)
        return self._selections[order]

    @property
    def project(self) -> ProjectRecords:
        """This project's result records under the result folders."""
        if self._project is None:
            self._project = read_project_records(self.results_dirs)
        return self._project

    def published(self, spec: LeaderboardSpec, source: str) -> Any:
        """A published source's entries (RobustBench dict, OpenCLIP dict or DomainBed tables)."""
        path = spec.published_path(source, self.published_root)
        key = (source, str(path))
        if key not in self._published:
            if source == "robustbench":
                from ldr_plugin.published.robustbench import read_robustbench as reader
            elif source == "openclip":
                from ldr_plugin.published.openclip import read_openclip as reader
            else:
                from ldr_plugin.domainbed.published import read_domainbed_tex as reader
            self._published[key] = reader(path)
        return self._published[key]

    def optional_published(self, spec: LeaderboardSpec, source: str) -> Any:
        """Like :meth:`published`, but an unavailable source becomes a reported problem and None.

        For add-ons (published rows beside ours, accuracies in a cross-model table); the published_*
        kinds use :meth:`published` and fail instead.
        """
        from ldr_plugin.errors import LdrError

        try:
            return self.published(spec, source)
        except LdrError as exc:
            self._extra_problems.append(Problem("published_missing", spec.path,
                                                f"{str(exc).removeprefix(spec.path + ': ')}; its numbers are left out (cells shown as missing)"))
            return None

    def problems(self) -> list[Problem]:
        """Everything skipped or suspicious in what was read so far."""
        out = [p for sel in self._selections.values() for p in sel.sweep.problems] + self._extra_problems
        if self._project is not None:
            out += self._project.problems
        unique = {(p.kind, p.path, p.line, p.message): p for p in out}
        return list(unique.values())
