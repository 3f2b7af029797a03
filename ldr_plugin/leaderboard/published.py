"""Published numbers (a file someone else made) as a leaderboard input: the ``ldr_plugin.published_sources`` group.

An entry names a :class:`PublishedSource` subclass; built-ins are DomainBed's ``results.tex``
(``domainbed_2020``), RobustBench's ``model_info`` folder (``robustbench``) and OpenCLIP's results
CSV (``openclip``). A spec's ``published = [...]`` names them; a ``published_<x>`` leaderboard
shows one source's own tables, a ``cross_model`` one joins its accuracies to k* records by model id.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from ldr_plugin.errors import LdrError
from ldr_plugin.leaderboard.spec import LeaderboardSpec
from ldr_plugin.leaderboard.tables import Table
from ldr_plugin.plugins import plugin_group


class PublishedSource:
    """Base class of ``ldr_plugin.published_sources`` entries (``cls()`` gives one)."""

    name: str = ""
    default_path: str = ""  # relative to --published-data
    key: str = ""  # provenance key of its numbers in tables, e.g. "published-robustbench"
    text: str = ""  # provenance text: who published them, where
    accuracy_fields: ClassVar[dict[str, str]] = {}  # cross-model accuracy field -> column label (percent)

    def read(self, path: Path) -> Any:
        """The source's entries from its file (an :class:`LdrError` naming the file and field when bad)."""
        raise NotImplementedError

    def tables(self, entries: Any, spec: LeaderboardSpec) -> list[Table]:
        """The source's own tables (a ``published_*`` leaderboard), as published."""
        raise LdrError(f"published source '{self.name}' has no tables of its own")

    def accuracies(self, entries: Any) -> dict[str, dict[str, float | None]]:
        """``{model_id: {accuracy field: percent}}`` for a cross-model table."""
        return {}

    def how(self, entries: Any) -> str:
        """How its numbers were read (a line of the leaderboard's README)."""
        return f"Read from the published source '{self.name}'."


def published_source(name: str) -> PublishedSource:
    """The registered published source ``name`` (unknown names list close matches)."""
    source = plugin_group("published").load(name)()
    if not isinstance(source, PublishedSource):
        raise LdrError(f"published source '{name}' ({plugin_group('published').get(name).value}) is not a "
                       "ldr_plugin.leaderboard.published.PublishedSource subclass")
    return source
