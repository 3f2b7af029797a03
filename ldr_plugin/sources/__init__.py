"""Model sources: ids ``source:identifier`` resolved through the ``ldr_plugin.model_sources`` group.

A model id is parsed once into a :class:`ModelId`; its source (a :class:`ModelSource`) does the rest.

>>> ModelId.parse("robustbench:cifar10/Linf/Standard")
ModelId(source='robustbench', identifier='cifar10/Linf/Standard')
"""

from __future__ import annotations

from dataclasses import dataclass

from ldr_plugin.errors import LdrError, UnknownNameError
from ldr_plugin.plugins import plugin_group, unknown_name_message
from ldr_plugin.sources.base import (
    CheckpointError,
    LoadedModel,
    MissingFile,
    ModelSource,
    check_identifier,
)

GROUP = "ldr_plugin.model_sources"

__all__ = [
    "CheckpointError",
    "LoadedModel",
    "MissingFile",
    "ModelId",
    "ModelSource",
    "check_identifier",
    "get_source",
    "list_model_ids",
]

_INSTANCES: dict[str, ModelSource] = {}


def get_source(name: str) -> ModelSource:
    """The source registered under ``name`` (instantiated once); unknown names list close matches."""
    if name not in _INSTANCES:
        source = plugin_group(GROUP).load(name)()
        if not isinstance(source, ModelSource):
            entry = plugin_group(GROUP).get(name)
            raise LdrError(f"model source '{name}' ({entry.value} from '{entry.distribution}') is not a "
                           "ldr_plugin.sources.ModelSource subclass")
        _INSTANCES[name] = source
    return _INSTANCES[name]


def list_model_ids(source: str) -> list[str]:
    """Every ``source:identifier`` the source's host lists, read at run time."""
    return [f"{source}:{ident}" for ident in get_source(source).list_ids()]


@dataclass(frozen=True)
class ModelId:
    """A parsed ``source:identifier`` (the source is a registered one, the identifier is not empty)."""

    source: str
    identifier: str

    @classmethod
    def parse(cls, text: str) -> ModelId:
        """Split ``source:identifier``; a missing prefix or an unknown source is an :class:`LdrError`."""
        names = plugin_group(GROUP).names()
        if ":" not in text:
            raise LdrError(f"model id '{text}' has no source prefix; expected 'source:identifier' "
                           f"with source one of {', '.join(names)} (e.g. robustbench:cifar10/Linf/Standard)")
        source, identifier = text.split(":", 1)
        if source not in names:
            raise UnknownNameError(unknown_name_message(source, names, what="model source"))
        if not identifier:
            raise LdrError(f"model id '{text}' has an empty identifier after '{source}:'")
        return cls(source, identifier)

    @property
    def model_source(self) -> ModelSource:
        return get_source(self.source)

    def __str__(self) -> str:
        return f"{self.source}:{self.identifier}"
