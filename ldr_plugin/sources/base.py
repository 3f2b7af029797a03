"""The ``ModelSource`` contract of the ``ldr_plugin.model_sources`` entry-point group.

A source enumerates the model ids its host registry holds (at run time, never a copied list),
checks that the weights a set of ids needs are on disk before any work starts, and loads one id
into a :class:`LoadedModel`: the module, its own preprocessing transform, and the feature layers
it can return.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from ldr_plugin.errors import LdrError


class CheckpointError(LdrError):
    """A checkpoint that is missing, truncated, an HTML page, unsafe to unpickle, or of the wrong architecture."""


@dataclass(frozen=True)
class MissingFile:
    """One weights file a model needs that is not on disk, with what to download it by."""

    model_id: str
    path: str
    download_id: str

    def __str__(self) -> str:
        return f"{self.model_id}: {self.path} (download id: {self.download_id})"


def missing_files_message(missing: list[MissingFile]) -> str:
    """The one error text for absent weights: every missing file and its download id."""
    lines = "\n  ".join(str(m) for m in missing)
    return (
        f"{len(missing)} weights file(s) missing (nothing is downloaded; place them there first):\n  {lines}"
    )


# extract(images, layers) -> {layer: features [B, d]} from ONE forward pass
Extractor = Callable[[torch.Tensor, tuple[str, ...]], dict[str, torch.Tensor]]


@dataclass
class LoadedModel:
    """A loaded model ready for feature extraction.

    ``transform`` maps a PIL image to the input tensor the model expects (the host's own
    preprocessing); ``layers`` are the names ``extract`` accepts, ``default_layer`` the first of
    them; ``preprocessing`` describes the transform (it goes into records and the cache key).
    """

    model_id: str
    module: torch.nn.Module
    transform: Callable[[Any], torch.Tensor] | None
    layers: tuple[str, ...]
    extract: Extractor
    preprocessing: dict[str, Any] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def default_layer(self) -> str:
        return self.layers[0]

    def check_layer(self, layer: str | None) -> str:
        """The layer to use (default when ``None``); an unknown name is an :class:`LdrError`."""
        if layer is None:
            return self.default_layer
        if layer not in self.layers:
            raise LdrError(f"model {self.model_id} has no layer '{layer}'; available: {', '.join(self.layers)}")
        return layer

    @torch.no_grad()
    def features(self, images: torch.Tensor, layer: str | None = None) -> torch.Tensor:
        """Features of one batch at ``layer`` (default layer when ``None``), shape [B, d]."""
        layer = self.check_layer(layer)
        return self.extract(images, (layer,))[layer]


class ModelSource(Protocol):
    """What an entry point of ``ldr_plugin.model_sources`` provides (``cls()`` gives one)."""

    name: str
    layers: tuple[str, ...]  # layer names load() offers; the first is the default

    def list_ids(self) -> list[str]:
        """Every identifier (without the ``source:`` prefix) the host registry holds now."""
        ...

    def check_available(self, ids: list[str], weights_dir: str | Path | None) -> list[MissingFile]:
        """Weights files the given identifiers need that are absent (empty list: all present)."""
        ...

    def required_files(self, identifier: str, weights_dir: str | Path | None) -> list[tuple[str, str]]:
        """(path, download id) of every weights file the identifier reads (for checks and cache keys)."""
        ...

    def load(
        self,
        identifier: str,
        *,
        weights_dir: str | Path | None = None,
        device: str | torch.device = "cpu",
        trust_checkpoint: bool = False,
    ) -> LoadedModel:
        """Load one identifier offline; raise :class:`LdrError` naming the problem otherwise."""
        ...


def flatten_features(tensor: torch.Tensor) -> torch.Tensor:
    """[B, ...] -> [B, d] float32 on CPU (features are stored and scored as float32)."""
    return tensor.detach().reshape(tensor.shape[0], -1).float().cpu()
