"""Plugin groups: one small typed lookup over ``importlib.metadata`` entry-point groups.

Every pluggable thing (DomainBed algorithms, hparams, datasets, launchers, model sources, metrics,
published sources, leaderboard kinds) is found here, lazily: listing names reads only package
metadata (once per process and ``sys.path``), and a value is imported on ``load(name)``. Our own
built-ins are declared in our ``pyproject.toml`` under the same groups, so third parties and
built-ins share one code path. (``registry/`` is something else: the folder of declarative TOML
files, see :mod:`ldr_plugin.registry_files`.)

>>> from ldr_plugin.plugins import plugin_group
>>> "kstar" in plugin_group("metrics").names()
True
"""

from __future__ import annotations

import difflib
import functools
import importlib.metadata as md
import sys
import warnings
from dataclasses import dataclass
from typing import Any

from ldr_plugin.errors import LdrError, UnknownNameError

OUR_DISTRIBUTION = "ldr-plugin"

GROUPS = {
    "algorithms": "domainbed.algorithms",
    "hparams": "domainbed.hparams",
    "datasets": "domainbed.datasets",
    "launchers": "domainbed.command_launchers",
    "models": "ldr_plugin.model_sources",
    "metrics": "ldr_plugin.metrics",
    "published": "ldr_plugin.published_sources",
    "leaderboards": "ldr_plugin.leaderboard_kinds",
}


class ClashError(LdrError):
    """Two distributions (neither of them ldr-plugin) declare the same name in one group."""


@dataclass(frozen=True)
class Entry:
    """One declared name: where its value lives and which distribution declares it."""

    group: str
    name: str
    value: str  # "module:attr"
    distribution: str

    def load(self) -> Any:
        try:
            return md.EntryPoint(self.name, self.value, self.group).load()
        except Exception as exc:  # a provider's import error is reported, named
            raise LdrError(
                f"{self.group} entry '{self.name}' ({self.value}) from distribution "
                f"'{self.distribution}' failed to load: {type(exc).__name__}: {exc}"
            ) from exc


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-")


def declared_entries(group: str) -> list[Entry]:
    """Every entry point of ``group`` with its distribution's name, from one ``entry_points()`` read.

    The same distribution visible twice on ``sys.path`` (an editable install and a build folder)
    counts once.
    """
    seen: dict[tuple[str, str], Entry] = {}
    for ep in md.entry_points(group=group):
        dist_name = (ep.dist.metadata["Name"] if ep.dist is not None else None) or "?"
        seen.setdefault((ep.name, _canonical(dist_name)), Entry(group, ep.name, ep.value, dist_name))
    return list(seen.values())


class PluginGroup:
    """The names declared in one entry-point group.

    A name declared by two third-party distributions is a :class:`ClashError` naming both;
    a third party that re-declares one of our own names is ignored with a warning (built-ins win).
    """

    def __init__(self, group: str, entries: list[Entry]):
        self.group = group
        self._raw = entries
        self._by_name: dict[str, Entry] | None = None
        self._loaded: dict[str, Any] = {}

    def entries(self) -> dict[str, Entry]:
        if self._by_name is None:
            self._by_name = self._resolve()
        return self._by_name

    def _resolve(self) -> dict[str, Entry]:
        by_name: dict[str, Entry] = {}
        for entry in sorted(self._raw, key=lambda e: (e.name, e.distribution)):
            other = by_name.get(entry.name)
            if other is None or other == entry:
                by_name[entry.name] = entry
                continue
            ours = [e for e in (other, entry) if _canonical(e.distribution) == OUR_DISTRIBUTION]
            if not ours:
                raise ClashError(
                    f"{self.group}: the name '{entry.name}' is declared by two distributions, "
                    f"'{other.distribution}' ({other.value}) and '{entry.distribution}' ({entry.value}); "
                    "uninstall one of them"
                )
            theirs = entry if ours[0] is other else other
            warnings.warn(f"{self.group}: '{entry.name}' from '{theirs.distribution}' is ignored; "
                          f"the built-in from '{OUR_DISTRIBUTION}' wins", stacklevel=3)
            by_name[entry.name] = ours[0]
        return by_name

    def names(self) -> list[str]:
        return sorted(self.entries())

    def get(self, name: str) -> Entry:
        entries = self.entries()
        if name in entries:
            return entries[name]
        raise UnknownNameError(unknown_name_message(name, list(entries), what=f"name in {self.group}"))

    def load(self, name: str) -> Any:
        if name not in self._loaded:
            self._loaded[name] = self.get(name).load()
        return self._loaded[name]


@functools.lru_cache(maxsize=64)
def _cached_group(group: str, search_path: tuple[str, ...]) -> PluginGroup:
    return PluginGroup(group, declared_entries(group))


def plugin_group(group: str) -> PluginGroup:
    """The :class:`PluginGroup` of ``group`` (a key of :data:`GROUPS` or a full group name).

    Entry points are read once per process and ``sys.path`` (reading them parses every installed
    distribution's metadata, ~8 ms); a distribution added to ``sys.path`` is seen at the next call.
    """
    group = GROUPS.get(group, group)
    return _cached_group(group, tuple(sys.path))


def unknown_name_message(name: str, known: list[str], *, what: str) -> str:
    """'unknown X 'foo'; did you mean: ...' with close matches (case-insensitive)."""
    lower = {k.lower(): k for k in known}
    close = [lower[m] for m in difflib.get_close_matches(name.lower(), list(lower), n=5, cutoff=0.5)]
    hint = f"; did you mean: {', '.join(close)}?" if close else ""
    listing = f" Known: {', '.join(sorted(known))}." if len(known) <= 40 else f" ({len(known)} known.)"
    return f"unknown {what} '{name}'{hint}{listing}"
