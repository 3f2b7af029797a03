"""One pass of a loaded model over a dataset: the features of every asked layer and the accuracy
head's predictions, from one forward pass per batch.

Batches come from a ``torch.utils.data.DataLoader`` (``num_workers`` processes decode and transform
images while the model runs; pinned memory when the device is CUDA); ``amp`` runs the forward under
``torch.autocast`` (bf16, or fp16 on a CUDA device without bf16). Features are stored as float32.

>>> default_num_workers() >= 0
True
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ldr_plugin.datasets.samples import ScoringData
from ldr_plugin.errors import DatasetError, LdrError
from ldr_plugin.sources.base import LoadedModel


@dataclass
class Extraction:
    """Features per layer and, when the model can classify the dataset, its top-1 predictions."""

    features: dict[str, np.ndarray]  # layer -> [N, d] float32
    predictions: np.ndarray | None
    accuracy: dict[str, Any]  # how the predictions were made, or why there are none
    forward_passes: int


def to_input(sample: Any, transform: Callable | None) -> torch.Tensor:
    """One sample (PIL image or tensor) as the model's input tensor, through the host's transform."""
    if isinstance(sample, torch.Tensor):
        if transform is None:
            return sample
        from torchvision.transforms.functional import to_pil_image

        image = to_pil_image(sample)
        sample = image.convert("RGB") if image.mode != "RGB" else image
    elif transform is None:
        from torchvision.transforms.functional import to_tensor

        return to_tensor(sample)
    elif getattr(sample, "mode", "RGB") != "RGB":
        sample = sample.convert("RGB")
    return transform(sample)


class _Inputs(torch.utils.data.Dataset):
    def __init__(self, data: ScoringData, transform: Callable | None):
        self.data, self.transform = data, transform

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> torch.Tensor:
        return to_input(self.data.samples[i], self.transform)


def default_num_workers() -> int:
    """Loader processes by default: one per CPU but one (for the model), at most 8."""
    return min(8, max(0, (os.cpu_count() or 1) - 1))


def check_input_size(loaded: LoadedModel, data: ScoringData) -> None:
    """A model that takes one input size (a CIFAR model: 3x32x32, no resize in its transform) and a
    dataset of another size is bad input: said before any forward pass, nothing cached."""
    expected = loaded.detail.get("input_size")
    if not expected or not len(data):
        return
    got = tuple(to_input(data.samples[0], loaded.transform).shape)
    if got != tuple(expected):
        raise DatasetError(
            f"model {loaded.model_id} takes {'x'.join(map(str, expected))} inputs and its preprocessing "
            f"({loaded.preprocessing.get('name', 'host default')}) does not resize; dataset {data.spec} gives "
            f"{'x'.join(map(str, got))}: score it on images of its own size (e.g. CIFAR's 32 px)"
        )


def autocast_for(device: str | torch.device, amp: bool) -> contextlib.AbstractContextManager:
    """``torch.autocast`` in bf16 (fp16 on a CUDA device without bf16) when ``amp``, else nothing."""
    if not amp:
        return contextlib.nullcontext()
    kind = torch.device(device).type
    dtype = torch.float16 if kind == "cuda" and not torch.cuda.is_bf16_supported() else torch.bfloat16
    return torch.autocast(device_type=kind, dtype=dtype)


def extract(
    loaded: LoadedModel, data: ScoringData, layers: tuple[str, ...], *, batch_size: int = 64,
    device: str | torch.device = "cpu", progress: bool = True, measure_accuracy: bool = True,
    num_workers: int | None = None, amp: bool = False,
) -> Extraction:
    """Run ``loaded`` over every sample of ``data`` (in order): float32 features of each of ``layers``
    and the accuracy head's top-1 predictions, all from one forward pass per batch."""
    from tqdm.auto import tqdm

    layers = tuple(dict.fromkeys(loaded.check_layer(layer) for layer in layers))
    head = loaded.head_for(data.class_names) if measure_accuracy else None
    about: dict[str, Any] = {"kind": head.kind, "layer": head.layer} if head else {"not_measured": "no classification head"}
    check_input_size(loaded, data)
    workers = default_num_workers() if num_workers is None else num_workers
    loader = torch.utils.data.DataLoader(
        _Inputs(data, loaded.transform), batch_size=batch_size, shuffle=False,
        num_workers=workers if len(data) > batch_size else 0, pin_memory=torch.device(device).type == "cuda")
    parts: dict[str, list[np.ndarray]] = {layer: [] for layer in layers}
    predicted, passes = [], 0
    bar = tqdm(total=len(data), desc=f"features {loaded.model_id} [{', '.join(layers)}]", unit="img",
               disable=not progress)
    with torch.inference_mode():
        for images in loader:
            images = images.to(device, non_blocking=True)
            wanted = tuple(dict.fromkeys(layers + ((head.layer,) if head else ())))
            out = _forward(loaded, images, wanted, data, device, amp)
            passes += 1
            for layer in layers:
                parts[layer].append(out[layer].float().numpy())
            if head is not None:
                head, about = _predict(head, out[head.layer], data, predicted, about)
            bar.update(len(images))
    bar.close()
    if not passes:
        raise LdrError(f"dataset {data.spec} has no samples")
    predictions = np.concatenate(predicted).astype(np.int64) if head is not None else None
    features = {layer: np.concatenate(p).astype(np.float32, copy=False) for layer, p in parts.items()}
    return Extraction(features, predictions, about, passes)


def _forward(loaded: LoadedModel, images: torch.Tensor, layers: tuple[str, ...], data: ScoringData,
             device: str | torch.device, amp: bool) -> dict[str, torch.Tensor]:
    try:
        with autocast_for(device, amp):
            return loaded.extract(images, layers)
    except (RuntimeError, ValueError) as exc:
        if "DataLoader worker" in str(exc):  # a loader process died (killed, out of memory): not the model
            raise LdrError(f"model {loaded.model_id} on dataset {data.spec}: {str(exc).splitlines()[0]}; "
                           "run again (finished cells are kept), or load in this process with --num-workers 0"
                           ) from exc
        raise LdrError(
            f"model {loaded.model_id} failed on dataset {data.spec} (input batch {tuple(images.shape)}, "
            f"preprocessing {loaded.preprocessing.get('name', loaded.preprocessing)}): "
            f"{str(exc).splitlines()[0]}; is the dataset the one this model expects?"
        ) from exc


def _predict(head: Any, outputs: torch.Tensor, data: ScoringData, predicted: list, about: dict) -> tuple[Any, dict]:
    scores = head.scores(outputs)
    if scores.shape[1] != len(data.class_names):  # e.g. a 1000-class head on a 5-class folder
        return None, {"not_measured": f"the head has {scores.shape[1]} outputs, the dataset "
                                      f"{len(data.class_names)} classes"}
    predicted.append(scores.argmax(1).cpu().numpy())
    return head, about
