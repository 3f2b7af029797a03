"""Splits and data loaders with the semantics of DomainBed's ``train.py`` (no DomainBed needed).

- :func:`split_dataset`: a seeded shuffle of indices (``np.random.RandomState(seed)``), the first
  ``n`` to one part and the rest to the other, as ``misc.split_dataset``.
- :func:`infinite_batches`: batches drawn with replacement (or by class-balancing weights),
  ``drop_last=True``, forever — as ``InfiniteDataLoader``. A split smaller than the batch size
  would never yield a batch (DomainBed hangs there); here it is an error.
- :func:`eval_loader`: every sample once per pass in batches of 64, in an order reshuffled from
  the global torch RNG, from one persistent iterator — as ``FastDataLoader`` — so the global RNG
  is consumed as DomainBed consumes it and a run reproduces DomainBed's run for the same seeds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, Sampler, WeightedRandomSampler

from ldr_plugin.errors import LdrError


class IndexedSplit(Dataset):
    """A view of ``dataset`` at the given indices."""

    def __init__(self, dataset: Dataset, keys: Sequence[int]):
        self.underlying_dataset = dataset
        self.keys = list(keys)

    def __getitem__(self, index: int):
        return self.underlying_dataset[self.keys[index]]

    def __len__(self) -> int:
        return len(self.keys)


def split_dataset(dataset: Dataset, n: int, seed: int = 0) -> tuple[IndexedSplit, IndexedSplit]:
    """Random split: ``n`` samples in the first part, the rest in the second (seeded)."""
    if not 0 <= n <= len(dataset):
        raise LdrError(f"cannot split {n} samples off a dataset of {len(dataset)}")
    keys = list(range(len(dataset)))
    np.random.RandomState(seed).shuffle(keys)
    return IndexedSplit(dataset, keys[:n]), IndexedSplit(dataset, keys[n:])


def balanced_class_weights(dataset: Dataset) -> torch.Tensor:
    """Per-sample weights ``1 / (count(y) * n_classes)``, as DomainBed's class balancing."""
    labels = [int(y) for _, y in dataset]
    counts = Counter(labels)
    return torch.tensor([1.0 / (counts[y] * len(counts)) for y in labels])


class _Forever(Sampler):
    """Re-iterate a (batch) sampler without end; each pass re-draws its randomness."""

    def __init__(self, sampler: Sampler):
        self.sampler = sampler

    def __iter__(self):
        while True:
            yield from self.sampler


def infinite_batches(
    dataset: Dataset, weights: torch.Tensor | None, batch_size: int, num_workers: int
) -> Iterator:
    """An endless iterator of ``batch_size`` batches sampled with replacement, ``drop_last=True``."""
    if len(dataset) < batch_size:
        raise LdrError(
            f"batch_size {batch_size} is larger than a training split of {len(dataset)} samples; "
            "no full batch can be drawn (pass a smaller batch_size, e.g. --hparams '{\"batch_size\": 8}')"
        )
    if weights is not None:
        sampler: Sampler = WeightedRandomSampler(weights, replacement=True, num_samples=batch_size)
    else:
        sampler = RandomSampler(dataset, replacement=True)
    batches = BatchSampler(sampler, batch_size=batch_size, drop_last=True)
    return iter(DataLoader(dataset, num_workers=num_workers, batch_sampler=_Forever(batches)))


class EvalLoader:
    """Each pass yields every sample once (batches of ``batch_size``), from one persistent iterator."""

    def __init__(self, dataset: Dataset, batch_size: int = 64, num_workers: int = 0):
        batches = BatchSampler(RandomSampler(dataset, replacement=False), batch_size=batch_size, drop_last=False)
        self._length = len(batches)
        self._iterator = iter(DataLoader(dataset, num_workers=num_workers, batch_sampler=_Forever(batches)))

    def __iter__(self):
        for _ in range(self._length):
            yield next(self._iterator)

    def __len__(self) -> int:
        return self._length


def eval_loader(dataset: Dataset, num_workers: int = 0) -> EvalLoader:
    return EvalLoader(dataset, 64, num_workers)


@torch.no_grad()
def accuracy(algorithm: torch.nn.Module, loader: EvalLoader, device: str) -> float:
    """Fraction of correct ``predict`` outputs (one logit: ``> 0`` is class 1), in eval mode."""
    correct, total = 0.0, 0.0
    algorithm.eval()
    try:
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            p = algorithm.predict(x)
            if p.size(1) == 1:
                correct += p.gt(0).eq(y.view(-1, 1)).float().sum().item()
            else:
                correct += p.argmax(1).eq(y).float().sum().item()
            total += len(x)
    finally:
        algorithm.train()
    return correct / total if total else float("nan")
