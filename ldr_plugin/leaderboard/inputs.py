"""What a leaderboard build reads, each loaded once and shared by every spec of the build."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ldr_plugin.errors import LdrError
from ldr_plugin.leaderboard.published import published_source
from ldr_plugin.leaderboard.records import ProjectRecords, read_project_records
from ldr_plugin.leaderboard.spec import LeaderboardSpec
from ldr_plugin.results.problems import Problem


@dataclass
class BuildInputs:
    """Result folders (DomainBed sweeps and/or project records) and the published-data root."""

    results_dirs: list[str]
    published_root: Path | None = None
    progress: bool = True
    _cache: dict[Any, Any] = field(default_factory=dict)
    _problems: list[Problem] = field(default_factory=list)

    def cached(self, key: Any, load: Callable[[], Any]) -> Any:
        """``load()`` once per build (e.g. a kind's reading of the result folders), then its value."""
        if key not in self._cache:
            self._cache[key] = load()
        return self._cache[key]

    def report(self, problems: list[Problem]) -> None:
        """Problems a reader met (listed in the output's README and by the CLI)."""
        self._problems.extend(problems)

    @property
    def project(self) -> ProjectRecords:
        """This project's result records under the result folders."""
        return self.cached("project", lambda: self._read_project())

    def _read_project(self) -> ProjectRecords:
        records = read_project_records(self.results_dirs)
        self.report(records.problems)
        return records

    def published_path(self, spec: LeaderboardSpec, source: str) -> Path:
        """Where a published source's file is: the spec's path, else the source's default under the root."""
        path = Path(spec.published_paths.get(source) or published_source(source).default_path)
        if not path.is_absolute():
            if self.published_root is None:
                raise LdrError(f"{spec.path}: published source '{source}' needs --published-data DIR")
            path = self.published_root / path
        if not path.exists():
            raise LdrError(f"{spec.path}: published source '{source}' not found at {path}")
        return path

    def published(self, spec: LeaderboardSpec, source: str) -> Any:
        """A published source's entries, read by its ``ldr_plugin.published_sources`` entry."""
        path = self.published_path(spec, source)
        return self.cached(("published", source, str(path)), lambda: published_source(source).read(path))

    def optional_published(self, spec: LeaderboardSpec, source: str) -> Any:
        """Like :meth:`published`, but an unavailable source becomes a reported problem and None.

        For add-ons (published rows beside ours, accuracies in a cross-model table); the published_*
        kinds use :meth:`published` and fail instead.
        """
        try:
            return self.published(spec, source)
        except LdrError as exc:
            message = f"{str(exc).removeprefix(spec.path + ': ')}; its numbers are left out (cells shown as missing)"
            self.report([Problem("published_missing", spec.path, message)])
            return None

    def problems(self) -> list[Problem]:
        """Everything skipped or suspicious in what was read so far (each once)."""
        return list({(p.kind, p.path, p.line, p.message): p for p in self._problems}.values())
