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
    trials = [0, 1, 2]                    # domainbed: these trial seeds only ([] = all)
    published = ["domainbed_2020"]        # ldr_plugin.published_sources entries: rows added beside ours
    sort = "domainbed"                    # or "avg_desc", or a column name for cross-model tables
    baseline = "ERM"                      # domainbed: a "Δ vs ERM" column, paired over trials (± SE, n)
    hparams_grid = ["ldr_start_step"]     # domainbed: --hparams fields a grid sets per hparams seed
    env_names = { RotatedDigits = ["0", "30", "60"] }
    test_envs = { RotatedDigits = [0, 5] }  # domainbed: a study holding out only these domains of a dataset
    stratify = "heldout_domain"           # cross_model: also correlate within each run's held-out domain

Unknown keys, values of the wrong type (``limit = "ten"``, ``domainbed_only = "no"``) and values
out of range (``confidence = 2.0``, ``limit = -3``, a name holding ``/``) are errors naming the file
and the key, checked before anything is written, so a typo never silently changes a table.
"""

from __future__ import annotations

import os
import re
import typing
from typing import Annotated, Any, Literal

import msgspec

from ldr_plugin.errors import LdrError
from ldr_plugin.plugins import plugin_group
from ldr_plugin.tomlfile import check_keys, read_toml

SELECTION_METHODS = ("iid", "loo", "oracle")

# A name that may become part of a file name or a table id: no separators, no "..", no leading dot.
Name = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_+-]*(\.[A-Za-z0-9_+-]+)*$")]
Text = Annotated[str, msgspec.Meta(min_length=1)]


class LeaderboardSpec(msgspec.Struct, kw_only=True):
    """What one leaderboard contains; filled from a TOML file (see the module docstring).

    The field types and ranges are the schema every spec is checked against (by msgspec, strictly:
    no string is read as a number or a bool) before anything is built or written.
    """

    id: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.-]+$")]
    title: Text
    kind: Text
    description: str = ""
    selection: list[Literal["iid", "loo", "oracle"]] = msgspec.field(default_factory=lambda: list(SELECTION_METHODS))
    datasets: list[Name] = []
    algorithms: list[Name] = []
    extra_metrics: list[Name] = []
    trials: list[Annotated[int, msgspec.Meta(ge=0)]] = []  # domainbed: only these trial seeds ([] = all)
    published: list[Name] = []
    published_paths: dict[Name, Text] = {}
    sort: Text = "domainbed"
    baseline: str = ""  # domainbed: an algorithm; adds a column "Δ vs <baseline>" paired over trials
    # domainbed: hyperparameters a grid fixes per hparams seed with --hparams; runs differing only there
    # are one row, model selection choosing among them (any other --hparams difference is still refused)
    hparams_grid: list[Name] = []
    env_names: dict[Name, list[Text]] = {}
    # domainbed: a study that holds out only some domains of a dataset: its runs with other test domains are
    # left out, its table shows these columns, and a trial is complete (Δ, Avg) when each has a choice
    test_envs: dict[Name, Annotated[list[Annotated[int, msgspec.Meta(ge=0)]], msgspec.Meta(min_length=1)]] = {}
    domainbed_only: bool = False
    order: Literal["sorted", "listdir"] = "sorted"
    # cross-model tables
    metric: Name = "gamma_prime"
    # one family ("kstar-cosine"), or a prefix ending in "*" ("kstar*": k* under every distance)
    metric_family: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_+-]*\*?$")] = "kstar"
    layer: str = ""
    accuracies: list[Text] = []
    ci: Literal["fisher", "bootstrap"] = "fisher"
    stratify: Literal["", "heldout_domain"] = ""  # "heldout_domain": also the correlation per held-out domain
    confidence: Annotated[float, msgspec.Meta(gt=0, lt=1)] = 0.95
    seed: Annotated[int, msgspec.Meta(ge=0, le=2**32 - 1)] = 0
    n_resamples: Annotated[int, msgspec.Meta(ge=100, le=100_000)] = 2000  # bootstrap memory grows with it
    # published tables
    threat_models: list[Name] = []
    limit: Annotated[int, msgspec.Meta(ge=0)] = 0
    path: str = ""


SPEC_FIELDS = tuple(f for f in LeaderboardSpec.__struct_fields__ if f != "path")


def _check_list(spec: LeaderboardSpec, name: str, allowed: tuple[str, ...]) -> None:
    for value in getattr(spec, name):
        if value not in allowed:
            raise LdrError(f"{spec.path}: '{name}' has unknown value {value!r}; expected one of {list(allowed)}")


def _choices(field: str) -> list[str] | None:
    """The allowed values of a Literal field (or of a list of Literals), else None."""
    hint = typing.get_type_hints(LeaderboardSpec).get(field)
    if typing.get_origin(hint) is list:
        hint = typing.get_args(hint)[0]
    return list(typing.get_args(hint)) if typing.get_origin(hint) is Literal else None


def _schema_error(path: str, exc: msgspec.ValidationError, table: dict[str, Any]) -> LdrError:
    """msgspec's "Expected `int` >= 0, got `-3` - at `$.limit`" as "<file>: 'leaderboard.limit': expected ..."."""
    message, _, where = str(exc).rpartition(" - at `$")
    if not message:
        return LdrError(f"{path}: {exc}")
    where = where.rstrip("`").lstrip(".")
    field = re.split(r"[\[.]", where)[0]
    enum = re.match(r"Invalid enum value (.*)", message)
    if enum and _choices(field) is not None:
        message = f"must be one of {_choices(field)}, got {enum.group(1)}"
    message = re.sub(r"`str` matching regex '.*'", "a name (letters, digits, _ + -, single inner dots)", message)
    message = message.replace("`object`", "a table").replace("`array`", "a list")
    if "got" not in message and field == where and field in table:
        message += f", got {table[field]!r}"
    return LdrError(f"{path}: 'leaderboard.{where}' {message[0].lower()}{message[1:]}")


def parse_spec(data: dict[str, Any], path: str = "<spec>") -> LeaderboardSpec:
    """Check a spec's ``[leaderboard]`` table against the schema and build the struct.

    >>> parse_spec({"leaderboard": {"id": "t", "title": "T", "kind": "domainbed"}}).selection
    ['iid', 'loo', 'oracle']
    """
    table = data.get("leaderboard")
    if not isinstance(table, dict):
        raise LdrError(f"{path}: missing [leaderboard] table")
    check_keys(table, set(SPEC_FIELDS), path, prefix="leaderboard.")
    for key in ("id", "title", "kind"):
        if not isinstance(table.get(key), str) or not table[key]:
            raise LdrError(f"{path}: 'leaderboard.{key}' must be a non-empty string")
    kinds = plugin_group("leaderboards").names()  # every kind is a builder declared by entry point
    if table["kind"] not in kinds:
        raise LdrError(f"{path}: 'leaderboard.kind' is {table['kind']!r}; expected one of {kinds}")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", table["id"]):
        raise LdrError(f"{path}: 'leaderboard.id' {table['id']!r} may hold only letters, digits, _ - .")
    try:
        spec = msgspec.convert({**table, "path": path}, LeaderboardSpec, strict=True)
    except msgspec.ValidationError as exc:
        raise _schema_error(path, exc, table) from exc
    _check_list(spec, "published", tuple(plugin_group("published").names()))
    return spec


def load_spec(path: str | os.PathLike) -> LeaderboardSpec:
    """Read and validate one TOML spec file."""
    return parse_spec(read_toml(path, "leaderboard spec"), str(path))
