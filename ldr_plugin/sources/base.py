"""The ``ModelSource`` contract of the ``ldr_plugin.model_sources`` entry-point group.

A source enumerates the model ids its host lists (at run time, never a copied list),
checks that the weights a set of ids needs are on disk before any work starts, and loads one id
into a :class:`LoadedModel`: the module, its own preprocessing transform, and the feature layers
it can return.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ldr_plugin.datasets.samples import ScoringData
from ldr_plugin.errors import LdrError, UnknownNameError
from ldr_plugin.leaderboard.tables import ModelFacts
from ldr_plugin.plugins import unknown_name_message


class CheckpointError(LdrError):
    """A checkpoint that is missing, truncated, an HTML page, unsafe to unpickle, or of the wrong architecture."""


@dataclass(frozen=True)
class MissingFile:
    """One weights file a model needs that is not on disk, with what to download it by."""

    model_id: str
    path: str
    download_id: str
    searched: tuple[str, ...] = ()  # alternative places, any one of which would do (path is the first)

    def __str__(self) -> str:
        if len(self.searched) > 1:
            return (f"{self.model_id}: not in any of the {len(self.searched)} places searched: "
                    f"{', '.join(self.searched)} (download id: {self.download_id})")
        return f"{self.model_id}: {self.path} (download id: {self.download_id})"


def missing_files_message(missing: list[MissingFile]) -> str:
    """The one error text for absent weights: every missing file (or set of alternative places, once)
    and its download id."""
    lines = "\n  ".join(str(m) for m in missing)
    return (
        f"{len(missing)} weights file(s) missing (nothing is downloaded; place them there first):\n  {lines}"
    )


# extract(images, layers) -> {layer: features [B, d]} from ONE forward pass
Extractor = Callable[[torch.Tensor, tuple[str, ...]], dict[str, torch.Tensor]]


@dataclass
class AccuracyHead:
    """How a loaded model classifies the scored images, from an output of the same forward pass:
    ``scores(outputs[layer])`` -> [B, n_classes] in the dataset's class order."""

    layer: str
    scores: Callable[[torch.Tensor], torch.Tensor]
    kind: str  # "clean top-1 (the model's own head)", "zero-shot top-1 (...)"


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
    # class names -> the head measuring accuracy (None: the default, a classifier's 'logits' layer)
    accuracy_head: Callable[[list[str]], AccuracyHead | None] | None = None

    @property
    def default_layer(self) -> str:
        return self.layers[0]

    def head_for(self, class_names: list[str]) -> AccuracyHead | None:
        """The head that classifies a dataset with ``class_names``: the source's own (OpenCLIP:
        zero-shot), else a classifier's ``logits`` layer, else None (accuracy not measured)."""
        if self.accuracy_head is not None:
            return self.accuracy_head(list(class_names))
        if "logits" in self.layers:
            return AccuracyHead("logits", lambda z: z, "clean top-1 (the model's own head)")
        return None

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


class ModelSource:
    """Base class of the ``ldr_plugin.model_sources`` entry points (``cls()`` gives one).

    A source enumerates the ids its host lists (at run time, never a copied list), says
    which weights files an id needs (checked before any work starts), and loads one id offline.
    The defaults fit a source whose ids are all in :meth:`list_ids` and whose models come without
    datasets of their own; a source overrides what differs (the ``domainbed`` source: ids are run
    folders, its models have their environments as datasets, and they can describe themselves).
    """

    name: str = ""
    layers: tuple[str, ...] = ()  # layer names load() offers; the first is the default

    def list_ids(self) -> list[str]:
        """Every identifier (without the ``source:`` prefix) the host lists now."""
        return []

    def check_ids(self, identifiers: list[str]) -> None:
        """Raise :class:`~ldr_plugin.errors.UnknownNameError` (close matches) for an unknown identifier."""
        known = self.list_ids()
        for identifier in identifiers:
            check_identifier(self.name, identifier, known)

    def required_files(self, identifier: str, weights_dir: str | Path | None = None) -> list[tuple[str, str]]:
        """(path, download id) of every weights file the identifier reads (for checks and cache keys)."""
        return []

    def check_available(self, ids: list[str], weights_dir: str | Path | None = None) -> list[MissingFile]:
        """Weights files the given identifiers need that are absent (empty list: all present)."""
        return [MissingFile(f"{self.name}:{i}", p, d) for i in ids for p, d in self.required_files(i, weights_dir)
                if not Path(p).is_file()]

    def load(self, identifier: str, *, weights_dir: str | Path | None = None, device: str | torch.device = "cpu",
             trust_checkpoint: bool = False) -> LoadedModel:
        """Load one identifier offline; raise :class:`LdrError` naming the problem otherwise."""
        raise NotImplementedError

    def own_datasets(self, identifier: str) -> list[str]:
        """Names of the datasets that come with a model (``ldr score --dataset run``)."""
        raise LdrError(f"dataset 'run' (a model's own datasets) needs a model that has some, such as a "
                       f"domainbed: run; {self.name}:{identifier} has none")

    def own_dataset(self, identifier: str, name: str, split: str, *, n_per_class: int | None = None,
                    seed: int = 0) -> ScoringData:
        """One of :meth:`own_datasets` (``--dataset run:NAME``), subsampled like any dataset."""
        self.own_datasets(identifier)
        raise LdrError(f"{self.name}:{identifier} has no dataset '{name}'")

    def describe(self, identifier: str, dataset: str) -> ModelFacts | None:
        """What a leaderboard may show about a model scored on ``dataset`` beyond its records (e.g. a
        run's accuracy on its held-out domain), or None."""
        return None


def check_identifier(source: str, identifier: str, known: list[str]) -> None:
    """Raise :class:`UnknownNameError` with close matches when ``identifier`` is not in ``known``."""
    if identifier not in set(known):
        raise UnknownNameError(unknown_name_message(identifier, known, what=f"{source} model"))


def flatten_features(tensor: torch.Tensor) -> torch.Tensor:
    """[B, ...] -> [B, d] float32 on CPU (features are stored and scored as float32)."""
    return tensor.detach().reshape(tensor.shape[0], -1).float().cpu()
