"""Long-tailed splits of the embedded digits: a training domain with an exponential class profile
and a balanced test domain (imbalance ratio 10, 50, 100), in DomainBed's dataset interface.

The paper reports LatentDR gains on long-tail recognition at imbalance ratio 100. These splits
let that claim be tested offline: class ``c`` of the training domain keeps
``floor(n_max * ratio ** (-c / (C - 1)))`` images (the usual CIFAR-LT profile, Cao et al. 2019),
so class 0 has ``n_max`` = 100 and class 9 has ``n_max / ratio``; the test domain holds the same
number of *other* images of every class (70). Images are the 196-d flattened 14×14 digits of
``RotatedDigitsFlat``'s 0° domain (DomainBed's MLP featurizer), chosen by a fixed seed.

Train with ``--test_envs 1``: ``env1_in_acc`` / ``env1_out_acc`` are then accuracies on (random
parts of) the balanced test domain; ``long_tail_report`` gives the exactly balanced accuracy on
all of it and the many / medium / few-shot accuracies (``SHOT_GROUPS``).

>>> ds = LongTailDigits100(None, [1], {})
>>> [len(ds[0]), len(ds[1])], long_tail_counts(100, 10, 100)
([242, 700], [100, 59, 35, 21, 12, 7, 4, 2, 1, 1])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from ldr_plugin.datasets.digits import MultipleDigitsDomains, _FlatDigits, load_digit_images

N_MAX = 100  # training images of the most frequent class
N_TEST = 70  # test images per class (digits has at least 174 images of every class)
SPLIT_SEED = 2  # which images of a class go to training and to test
# Classes by training frequency rank (class 0 is the most frequent): the three most frequent, the
# middle four, the three rarest.
SHOT_GROUPS = {"many": (0, 1, 2), "medium": (3, 4, 5, 6), "few": (7, 8, 9)}


def long_tail_counts(n_max: int, n_classes: int, ratio: float) -> list[int]:
    """Training images per class: ``floor(n_max * ratio ** (-c / (n_classes - 1)))``, at least 1."""
    return [max(1, int(n_max * ratio ** (-c / (n_classes - 1)))) for c in range(n_classes)]


class LongTailDigits(MultipleDigitsDomains):
    """Base class: ``IMBALANCE`` sets the ratio; environments ``train_lt`` and ``test_balanced``."""

    ENVIRONMENTS = ("train_lt", "test_balanced")
    IMBALANCE: ClassVar[float] = 100.0
    INPUT_SHAPE = (196,)
    HPARAMS = _FlatDigits.HPARAMS

    def __init__(self, root: str | None = None, test_envs: Sequence[int] = (), hparams: dict | None = None):
        images, labels = load_digit_images()
        flat = F.avg_pool2d(images, 2).flatten(1)
        counts = long_tail_counts(N_MAX, self.NUM_CLASSES, self.IMBALANCE)
        rng = np.random.RandomState(SPLIT_SEED)
        train, test = [], []
        for c in range(self.NUM_CLASSES):
            idx = rng.permutation(np.flatnonzero(labels.numpy() == c))
            train.extend(idx[: counts[c]].tolist())
            test.extend(idx[-N_TEST:].tolist())
        self.input_shape = tuple(self.INPUT_SHAPE)
        self.num_classes = self.NUM_CLASSES
        self.class_counts = counts
        self.datasets = [TensorDataset(flat[i].contiguous(), labels[i].clone()) for i in (train, test)]


class LongTailDigits10(LongTailDigits):
    """Long-tailed digits, imbalance ratio 10 (100 … 10 training images per class)."""

    IMBALANCE = 10.0


class LongTailDigits50(LongTailDigits):
    """Long-tailed digits, imbalance ratio 50 (100 … 2 training images per class)."""

    IMBALANCE = 50.0


class LongTailDigits100(LongTailDigits):
    """Long-tailed digits, imbalance ratio 100 (100 … 1 training images per class)."""

    IMBALANCE = 100.0


@torch.no_grad()
def long_tail_report(predict: Any, dataset: LongTailDigits, env: int = 1) -> dict[str, float]:
    """Balanced accuracy and many / medium / few-shot accuracy of ``predict(x) -> logits`` on a domain.

    Per-class accuracy over every image of the (balanced) test domain; the groups are
    ``SHOT_GROUPS``. Example: ``long_tail_report(algorithm.predict, LongTailDigits100(None, [1], {}))``.
    """
    x, y = dataset[env].tensors
    pred = torch.cat([predict(x[i : i + 256]).argmax(1) for i in range(0, len(x), 256)])
    per_class = [float((pred[y == c] == c).double().mean()) for c in range(dataset.num_classes)]
    report = {"balanced_acc": float(np.mean(per_class))}
    for group, classes in SHOT_GROUPS.items():
        report[f"{group}_acc"] = float(np.mean([per_class[c] for c in classes]))
    report.update({f"class{c}_acc": a for c, a in enumerate(per_class)})
    return report
