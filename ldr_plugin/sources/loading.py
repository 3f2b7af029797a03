"""The one safe, checked way a source reads weights: no code runs from a data file, and every
parameter and buffer of the model must have come from the file.

Host libraries (RobustBench, torchvision, timm, open_clip) call ``torch.load`` themselves, some with
``weights_only=False`` (``torch.hub.load_state_dict_from_url``, used by torchvision's and timm's
pretrained weights, does so by default and does not re-check the hash of a cached file), and some
load with ``strict=False`` (RobustBench's ImageNet entries), which leaves layers at their random
initialisation without a word. Within :func:`guarded_load`:

- ``torch.load`` is forced to ``weights_only=True`` unless ``--trust-checkpoint`` (a pickle payload
  in any checkpoint or cache file is refused before it runs);
- ``torch.hub`` cannot download;
- every ``nn.Module.load_state_dict`` call is recorded (what it filled, what was missing, what was
  unexpected), and torch's own strict error is kept for strict calls.

:func:`check_filled` then names every parameter or buffer the file did not fill.

>>> import torch
>>> net = torch.nn.Linear(2, 2)
>>> with guarded_load(trust_checkpoint=False) as log:
...     _ = net.load_state_dict({"weight": torch.zeros(2, 2)}, strict=False)
>>> unfilled(net, log)
(['bias'], [])
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ldr_plugin.sources.base import CheckpointError

NORMALISATION_BUFFERS = frozenset({"mu", "sigma", "mean", "std"})  # constants set by code, not stored


@dataclass
class LoadCall:
    module: nn.Module
    missing: list[str]
    unexpected: list[str]


@dataclass
class LoadLog:
    """The ``load_state_dict`` calls made inside :func:`guarded_load`."""

    calls: list[LoadCall] = field(default_factory=list)


def _refuse_download(url: str, *args: Any, **kwargs: Any) -> None:
    raise CheckpointError(f"a host library tried to download {url}; nothing is downloaded (place the file in "
                          f"{Path(torch.hub.get_dir()) / 'checkpoints'} first)")


@contextlib.contextmanager
def guarded_load(*, trust_checkpoint: bool) -> Iterator[LoadLog]:
    """Within the block: ``torch.load`` is ``weights_only`` unless trusted, ``torch.hub`` does not
    download, and every ``load_state_dict`` call is recorded in the yielded :class:`LoadLog`."""
    log = LoadLog()
    original_load, original_lsd = torch.load, nn.Module.load_state_dict
    original_download = torch.hub.download_url_to_file

    def load(f: Any, *args: Any, **kwargs: Any) -> Any:
        if trust_checkpoint:
            kwargs.setdefault("weights_only", False)
        else:
            kwargs["weights_only"] = True
            kwargs.pop("pickle_module", None)
            args = args[:1]  # (map_location,): a positional pickle_module is dropped too
        return original_load(f, *args, **kwargs)

    def load_state_dict(self: nn.Module, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:
        result = original_lsd(self, state_dict, strict=False, assign=assign)
        log.calls.append(LoadCall(self, list(result.missing_keys), list(result.unexpected_keys)))
        if strict and (result.missing_keys or result.unexpected_keys):
            return original_lsd(self, state_dict, strict=True, assign=assign)  # torch's own error
        return result

    torch.load, nn.Module.load_state_dict = load, load_state_dict
    torch.hub.download_url_to_file = _refuse_download
    try:
        yield log
    finally:
        torch.load, nn.Module.load_state_dict = original_load, original_lsd
        torch.hub.download_url_to_file = original_download


def unfilled(root: nn.Module, log: LoadLog, *, parts: tuple[str, ...] = ("",),
             allow_normalisation: bool = False) -> tuple[list[str], list[str]]:
    """(state-dict keys of ``root`` under ``parts`` no recorded load filled, unexpected keys of the loads).

    ``allow_normalisation`` admits unfilled *buffers* named ``mu``/``sigma``/``mean``/``std``
    (normalisation constants RobustBench's models set in code and its checkpoints do not hold).
    """
    prefixes: dict[int, list[str]] = {}
    for name, module in root.named_modules(remove_duplicate=False):
        prefixes.setdefault(id(module), []).append(f"{name}." if name else "")
    filled: set[str] = set()
    unexpected: list[str] = []
    for call in log.calls:
        missing = set(call.missing)
        keys = [k for k in call.module.state_dict() if k not in missing]
        for prefix in prefixes.get(id(call.module), []):
            filled.update(prefix + k for k in keys)
            unexpected += [prefix + k for k in call.unexpected if prefix + k not in unexpected]
    buffers = {name for name, _ in root.named_buffers(remove_duplicate=False)}
    wanted = [k for k in root.state_dict() if any(k.startswith(p) for p in parts)]
    left = [k for k in wanted if k not in filled
            and not (allow_normalisation and k in buffers and k.rsplit(".", 1)[-1] in NORMALISATION_BUFFERS)]
    return left, unexpected


def check_filled(root: nn.Module, log: LoadLog, files: list[str], model_id: str, **kwargs: Any) -> None:
    """Raise :class:`CheckpointError` (file, id, first missing/unexpected keys) unless every parameter
    and buffer of ``root`` (under ``parts``) came from a recorded load and no load had unexpected keys."""
    left, unexpected = unfilled(root, log, **kwargs)
    if not log.calls:
        raise CheckpointError(f"model {model_id}: no weights were loaded from {', '.join(files) or '(no file)'}; "
                              "its parameters are at their initialisation")
    if left or unexpected:
        total = len([k for k in root.state_dict() if any(k.startswith(p) for p in kwargs.get("parts", ("",)))])
        raise CheckpointError(
            f"model {model_id}: checkpoint {', '.join(files) or '(no file)'} does not fill the model "
            f"({len(left)} of {total} parameters/buffers left at initialisation: {_first(left)}; "
            f"{len(unexpected)} unexpected key(s) in the file: {_first(unexpected)}); "
            "is it the checkpoint of this model id (another architecture, or another format)?")


def _first(keys: list[str], n: int = 5) -> str:
    return "none" if not keys else ", ".join(keys[:n]) + (f" … (+{len(keys) - n})" if len(keys) > n else "")


def weights_file_facts(files: list[str]) -> list[dict[str, Any]]:
    """Which weights files were read: resolved path, size and the sha256 of the first MiB of each."""
    out = []
    for name in files:
        path = Path(name)
        try:
            with open(path, "rb") as handle:
                head = handle.read(1 << 20)
            out.append({"path": str(path.resolve()), "size": os.path.getsize(path),
                        "sha256_first_mib": hashlib.sha256(head).hexdigest()})
        except OSError:
            out.append({"path": str(path), "size": None, "sha256_first_mib": None})
    return out
