"""Model sources: ids ``source:identifier`` resolved through the ``ldr_plugin.model_sources`` group.

>>> parse_model_id("robustbench:cifar10/Linf/Standard")
('robustbench', 'cifar10/Linf/Standard')
"""

from __future__ import annotations

from typing import Any

from ldr_plugin.errors import LdrError, UnknownNameError
from ldr_plugin.plugins import plugin_group, unknown_name_message
from ldr_plugin.sources.base import CheckpointError, LoadedModel, MissingFile, ModelSource

GROUP = "ldr_plugin.model_sources"

__all__ = [
    "CheckpointError",
    "LoadedModel",
    "MissingFile",
    "ModelSource",
    "check_identifier",
    "get_source",
    "list_model_ids",
    "parse_model_id",
]

_INSTANCES: dict[str, Any] = {}


def get_source(name: str) -> ModelSource:
    """The source registered under ``name`` (instantiated once); unknown names list close matches."""
    if name not in _INSTANCES:
        _INSTANCES[name] = plugin_group(GROUP).load(name)()
    return _INSTANCES[name]


def list_model_ids(source: str) -> list[str]:
    """Every ``source:identifier`` the source's host registry holds, read at run time."""
    return [f"{source}:{ident}" for ident in get_source(source).list_ids()]


def parse_model_id(model_id: str) -> tuple[str, str]:
    """Split ``source:identifier``; a missing prefix or an unknown source is an :class:`LdrError`."""
    if ":" not in model_id:
        names = plugin_group(GROUP).names()
        raise LdrError(
            f"model id '{model_id}' has no source prefix; expected 'source:identifier' "
            f"with source one of {', '.join(names)} (e.g. robustbench:cifar10/Linf/Standard)"
        )
    source, identifier = model_id.split(":", 1)
    names = plugin_group(GROUP).names()
    if source not in names:
        raise UnknownNameError(unknown_name_message(source, names, what="model source"))
    if not identifier:
        raise LdrError(f"model id '{model_id}' has an empty identifier after '{source}:'")
    return source, identifier


def check_identifier(source: str, identifier: str, known: list[str]) -> None:
    """Raise :class:`UnknownNameError` with close matches when ``identifier`` is not in ``known``."""
    if identifier not in set(known):
        raise UnknownNameError(unknown_name_message(identifier, known, what=f"{source} model"))
