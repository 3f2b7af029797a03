"""Declarative leaderboard specs: one TOML file per leaderboard in ``registry/leaderboards/``.

A spec names its kind and what goes in it::

    [leaderboard]
    id = "dg_study"                       # output file stem
    title = "LatentDR vs ERM"
    kind = "domainbed"                    # a ldr_plugin.leaderboard_kinds entry: domainbed | cross_model
                                          # | published_domainbed | published_robustbench | published_openclip
    selection = ["iid", "loo", "oracle"]  # DomainBed model-selection methods
    datasets = []                         # [] = every dataset found
    algorithms = []                       # [] = every algorithm found (DomainBed's order)
    extra_metrics = ["gamma_prime", "alignment", "uniformity"]   # of the selected checkpoints
    published = ["domainbed_2020"]        # ldr_plugin.published_sources entries: rows added beside ours
    sort = "domainbed"                    # or "avg_desc", or a column name for cross-model tables
    baseline = "ERM"                      # domainbed: a "Δ vs ERM" column, paired over trials (± SE, n)
    env_names = { RotatedDigits = ["0", "30", "60"] }
    stratify = "heldout_domain"           # cross_model: also correlate within each run's held-out domain

Unknown keys are errors naming the file and the key, so a typo never silently changes a table.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Any

from ldr_plugin.errors import LdrError
from ldr_plugin.plugins import plugin_group
from ldr_plugin.tomlfile import check_keys, read_toml

SELECTION_METHODS = ("iid", "loo", "oracle")


@dataclass
class LeaderboardSpec:
    """What one leaderboard contains; filled from a TOML file (see the module docstring)."""

    id: str
    title: str
    kind: str
    description: str = ""
    selection: list[str] = field(default_factory=lambda: list(SELECTION_METHODS))
    datasets: list[str] = field(default_factory=list)
    algorithms: list[str] = field(default_factory=list)
    extra_metrics: list[str] = field(default_factory=list)
    published: list[str] = field(default_factory=list)
    published_paths: dict[str, str] = field(default_factory=dict)
    sort: str = "domainbed"
    baseline: str = ""  # domainbed: an algorithm; adds a column "Δ vs <baseline>" paired over trials
    env_names: dict[str, list[str]] = field(default_factory=dict)
    domainbed_only: bool = False
    order: str = "sorted"
    # cross-model tables
    metric: str = "gamma_prime"
    metric_family: str = "kstar"
    layer: str = ""
    accuracies: list[str] = field(default_factory=list)
    ci: str = "fisher"
    stratify: str = ""  # "heldout_domain": also the correlation within each run's held-out domain
    confidence: float = 0.95
    seed: int = 0
    n_resamples: int = 2000
    # published tables
    threat_models: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    limit: int = 0
    path: str = ""


def _check_list(spec: LeaderboardSpec, name: str, allowed: tuple[str, ...]) -> None:
    for value in getattr(spec, name):
        if value not in allowed:
            raise LdrError(f"{spec.path}: '{name}' has unknown value {value!r}; expected one of {list(allowed)}")


def parse_spec(data: dict[str, Any], path: str = "<spec>") -> LeaderboardSpec:
    """Validate a spec's ``[leaderboard]`` table and build the dataclass."""
    table = data.get("leaderboard")
    if not isinstance(table, dict):
        raise LdrError(f"{path}: missing [leaderboard] table")
    check_keys(table, {f.name for f in fields(LeaderboardSpec)} - {"path"}, path, prefix="leaderboard.")
    for key in ("id", "title", "kind"):
        if not isinstance(table.get(key), str) or not table[key]:
            raise LdrError(f"{path}: 'leaderboard.{key}' must be a non-empty string")
    kinds = plugin_group("leaderboards").names()  # every kind is a builder declared by entry point
    if table["kind"] not in kinds:
        raise LdrError(f"{path}: 'leaderboard.kind' is {table['kind']!r}; expected one of {kinds}")
    if not all(c.isalnum() or c in "_-." for c in table["id"]):
        raise LdrError(f"{path}: 'leaderboard.id' {table['id']!r} may hold only letters, digits, _ - .")
    try:
        spec = LeaderboardSpec(**table, path=path)
    except TypeError as exc:
        raise LdrError(f"{path}: {exc}") from exc
    _check_list(spec, "selection", SELECTION_METHODS)
    _check_list(spec, "published", tuple(plugin_group("published").names()))
    if spec.stratify not in ("", "heldout_domain"):
        raise LdrError(f"{path}: 'stratify' must be '' or 'heldout_domain', got {spec.stratify!r}")
    if spec.order not in ("sorted", "listdir"):
        raise LdrError(f"{path}: 'order' must be 'sorted' or 'listdir', got {spec.order!r}")
    if spec.ci not in ("fisher", "bootstrap"):
        raise LdrError(f"{path}: 'ci' must be 'fisher' or 'bootstrap', got {spec.ci!r}")
    return spec


def load_spec(path: str | os.PathLike) -> LeaderboardSpec:
    """Read and validate one TOML spec file."""
    return parse_spec(read_toml(path, "leaderboard spec"), str(path))
