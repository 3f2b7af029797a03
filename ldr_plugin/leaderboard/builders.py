"""The ``published_*`` leaderboard kinds: one published source's own tables, as published.

Every leaderboard kind is a builder ``(spec, inputs, out_dir) -> Board`` declared in the
``ldr_plugin.leaderboard_kinds`` entry-point group (``domainbed`` is DomainBed's adapter's,
``cross_model`` is :func:`ldr_plugin.leaderboard.crossmodel.cross_model_board`).
"""

from __future__ import annotations

from pathlib import Path

from ldr_plugin.errors import LdrError
from ldr_plugin.leaderboard.inputs import BuildInputs
from ldr_plugin.leaderboard.published import published_source
from ldr_plugin.leaderboard.spec import LeaderboardSpec
from ldr_plugin.leaderboard.tables import Board


def published_board(spec: LeaderboardSpec, inputs: BuildInputs, out_dir: Path) -> Board:
    """The tables of the one source the spec's ``published`` names (every row marked published)."""
    if len(spec.published) != 1:
        raise LdrError(f"{spec.path}: a {spec.kind} leaderboard shows one published source; 'published' "
                       f"names {spec.published}")
    source = published_source(spec.published[0])
    entries = inputs.published(spec, source.name)
    return Board(spec, source.tables(entries, spec), [source.how(entries)])
