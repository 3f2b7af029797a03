"""The classification head(s) of a classifier and penultimate features through forward pre-hooks.

The penultimate features of a classifier are the input of its final linear layer. A forward
pre-hook on that layer captures them during the ordinary forward pass (the logits come out of the
same pass), so extraction costs one forward and nothing is re-implemented per architecture.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ldr_plugin.errors import LdrError
from ldr_plugin.sources.base import flatten_features


def find_heads(module: nn.Module, num_classes: int) -> list[str]:
    """Names of the layers that map to ``num_classes`` outputs (``nn.Linear`` or anything with
    ``out_features``), in registration order; a 1x1 conv to the classes counts when no linear does."""
    linear = [
        name for name, sub in module.named_modules()
        if name and getattr(sub, "out_features", None) == num_classes and hasattr(sub, "weight")
    ]
    if linear:
        return linear
    return [
        name for name, sub in module.named_modules()
        if isinstance(sub, nn.Conv2d) and sub.out_channels == num_classes and sub.kernel_size == (1, 1)
    ]


class HookedClassifier:
    """Runs ``module`` once and returns the inputs of its head layer(s) and its logits.

    With several heads (ensembles such as Chen2020Adversarial or CARD decks) the penultimate
    features are the concatenation of every head's input in registration order; every head must
    fire exactly once per forward, else the extraction fails loudly instead of returning stale data.
    """

    def __init__(self, module: nn.Module, head_names: list[str], model_id: str):
        if not head_names:
            raise LdrError(f"model {model_id}: no classification head found; penultimate features unavailable")
        self.module = module
        self.head_names = list(head_names)
        self.model_id = model_id
        modules = dict(module.named_modules())
        self._captured: dict[str, list[torch.Tensor]] = {name: [] for name in head_names}
        for name in head_names:
            modules[name].register_forward_pre_hook(self._hook(name))

    def _hook(self, name: str) -> Callable:
        def capture(_module: nn.Module, inputs: tuple) -> None:
            self._captured[name].append(inputs[0])

        return capture

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, layers: tuple[str, ...]) -> dict[str, torch.Tensor]:
        for store in self._captured.values():
            store.clear()
        logits = self.module(images)
        if isinstance(logits, (tuple, list)):
            logits = logits[0]
        out: dict[str, torch.Tensor] = {}
        if "penultimate" in layers:
            parts = []
            for name in self.head_names:
                got = self._captured[name]
                if len(got) != 1:
                    raise LdrError(
                        f"model {self.model_id}: head '{name}' ran {len(got)} times in one forward "
                        "(expected once); its penultimate features are ambiguous"
                    )
                parts.append(flatten_features(got[0]))
            out["penultimate"] = torch.cat(parts, dim=1)
        if "logits" in layers:
            out["logits"] = flatten_features(logits)
        for store in self._captured.values():
            store.clear()
        return out
