"""Embedded multi-domain datasets built from scikit-learn's digits (ships offline, 1797 images).

Both classes follow DomainBed's dataset interface (``(root, test_envs, hparams)`` constructor,
``ENVIRONMENTS``, ``N_STEPS``, ``CHECKPOINT_FREQ``, ``N_WORKERS``, ``input_shape``, ``num_classes``,
a list of ``TensorDataset`` per domain) without importing DomainBed, so the same class trains
under DomainBed's ``train.py`` (registered through the ``domainbed.datasets`` entry point) and
under this project's built-in loop.

Construction, as DomainBed's ``RotatedMNIST``: the 1797 images are shuffled once with a fixed
seed and dealt to the domains in turn (``images[i::n_domains]``), so **domains hold disjoint
images** (about 300 per domain for 6 domains): a held-out domain never contains a rotated or
corrupted copy of a training image. Each 8×8 image (values 0–16) is scaled to [0, 1],
upsampled bilinearly to 20×20 and zero-padded to 28×28 (MNIST's layout: the digit in a 20×20
box centred in 28×28), so rotations keep the digit inside the frame and DomainBed picks its
``MNIST_CNN`` featurizer for the ``(1, 28, 28)`` input. Everything is deterministic (fixed
seeds, independent of the global RNG).

>>> ds = RotatedDigits(None, [0], {})
>>> len(ds), ds.input_shape, ds.num_classes, len(ds[0]) + len(ds[5]) > 0
(6, (1, 28, 28), 10, True)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

SHUFFLE_SEED = 0  # the fixed permutation that deals images to domains
CORRUPTION_SEED = 1  # per-image randomness of corruptions (noise, occluder position)


def _small_batch_hparams(r: np.random.RandomState) -> int:
    # DomainBed draws small-image batch sizes from 2**U(3, 9) (up to 511); a digits domain has
    # about 240 in-split images and DomainBed's drop_last loader never yields a batch larger
    # than its split (it hangs), so the random range here is 2**U(3, 7) (8 to 127).
    return int(2 ** r.uniform(3, 7))


def load_digit_images() -> tuple[torch.Tensor, torch.Tensor]:
    """sklearn's digits as float images ``[1797, 1, 28, 28]`` in [0, 1] and int64 labels, shuffled."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    order = np.random.RandomState(SHUFFLE_SEED).permutation(len(digits.target))
    images = torch.tensor(digits.images[order] / 16.0, dtype=torch.float32).unsqueeze(1)
    labels = torch.tensor(digits.target[order], dtype=torch.int64)
    images = F.interpolate(images, size=(20, 20), mode="bilinear", align_corners=False)
    images = F.pad(images, (4, 4, 4, 4)).clamp_(0.0, 1.0)
    return images, labels


class MultipleDigitsDomains:
    """Base class: deals the shuffled digits to ``ENVIRONMENTS`` and transforms each share.

    Subclasses set ``ENVIRONMENTS`` and implement ``transform(images, env_index)``.
    """

    ENVIRONMENTS: ClassVar[Sequence[str]] = ()
    N_STEPS = 1001
    CHECKPOINT_FREQ = 100
    N_WORKERS = 0  # in-memory tensors: worker processes only cost start-up time
    INPUT_SHAPE = (1, 28, 28)
    NUM_CLASSES = 10
    # Read by ldr_plugin.domainbed.register when DomainBed builds hyperparameters: take DomainBed's
    # base keys as for this DomainBed dataset (small-image lr, batch size, weight decay) ...
    DOMAINBED_HPARAMS_AS = "RotatedMNIST"
    # ... then (re)define these, each drawn with DomainBed's per-name seeding: {name: (default, fn(r))}.
    HPARAMS: ClassVar[dict[str, tuple[Any, Callable[[np.random.RandomState], Any]]]] = {
        "batch_size": (64, _small_batch_hparams),
    }

    def __init__(self, root: str | None = None, test_envs: Sequence[int] = (), hparams: dict | None = None):
        images, labels = load_digit_images()
        n_envs = len(self.ENVIRONMENTS)
        self.input_shape = tuple(self.INPUT_SHAPE)  # a tuple: DomainBed compares input_shape[1:3] == (28, 28)
        self.num_classes = self.NUM_CLASSES
        self.datasets = [
            TensorDataset(self.transform(images[i::n_envs].clone(), i).contiguous(), labels[i::n_envs].clone())
            for i in range(n_envs)
        ]

    def transform(self, images: torch.Tensor, env_index: int) -> torch.Tensor:
        raise NotImplementedError

    def __getitem__(self, index: int) -> TensorDataset:
        return self.datasets[index]

    def __len__(self) -> int:
        return len(self.datasets)


class RotatedDigits(MultipleDigitsDomains):
    """Diversity shift by rotation, as DomainBed's RotatedMNIST: domains at 0, 15, ..., 75 degrees."""

    ENVIRONMENTS = ("0", "15", "30", "45", "60", "75")

    def transform(self, images: torch.Tensor, env_index: int) -> torch.Tensor:
        from torchvision.transforms.functional import InterpolationMode, rotate

        angle = float(self.ENVIRONMENTS[env_index])
        if angle == 0:
            return images
        return rotate(images, angle, interpolation=InterpolationMode.BILINEAR, fill=[0.0])


def _gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = math.ceil(3 * sigma)
    grid = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-(grid**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    out = F.conv2d(F.pad(images, (radius, radius, 0, 0), mode="reflect"), kernel.view(1, 1, 1, -1))
    return F.conv2d(F.pad(out, (0, 0, radius, radius), mode="reflect"), kernel.view(1, 1, -1, 1))


class CorruptedDigits(MultipleDigitsDomains):
    """Appearance shift by image corruption, in the spirit of MNIST-C / ImageNet-C (one per domain).

    Unlike rotations (a geometric change of the digit's shape in the frame), the digit's geometry
    is unchanged and the low-level statistics change: ``clean``; ``noise`` (additive Gaussian,
    σ = 0.35, clipped); ``blur`` (Gaussian, σ = 1.5 px); ``fog`` (contrast 0.35 on a 0.45 grey
    veil); ``occlusion`` (a random 10×10 black square inside the digit box). Per-image randomness
    is seeded, so the dataset is identical in every process.
    """

    ENVIRONMENTS = ("clean", "noise", "blur", "fog", "occlusion")

    def transform(self, images: torch.Tensor, env_index: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(CORRUPTION_SEED * 1000 + env_index)
        kind = self.ENVIRONMENTS[env_index]
        if kind == "noise":
            return (images + 0.35 * torch.randn(images.shape, generator=gen)).clamp_(0.0, 1.0)
        if kind == "blur":
            return _gaussian_blur(images, sigma=1.5).clamp_(0.0, 1.0)
        if kind == "fog":
            return 0.35 * images + 0.45
        if kind == "occlusion":
            out = images.clone()
            corners = torch.randint(4, 4 + 20 - 10 + 1, (len(images), 2), generator=gen)
            for img, (top, left) in zip(out, corners.tolist()):
                img[:, top : top + 10, left : left + 10] = 0.0
            return out
        return images


class _FlatDigits:
    """Mixin: the same domains as 14×14 images flattened to 196-d vectors.

    DomainBed picks its ``MLP`` featurizer for 1-D inputs (``mlp_width`` × ``mlp_depth``), about
    300× fewer multiply-adds per image than ``MNIST_CNN``: the CPU-sized variant, used by the demo
    and the study that must train hundreds of runs on two cores. Domains and images are those of
    the 28×28 class (transformed at 28×28, then 2×2 average-pooled).
    """

    INPUT_SHAPE = (196,)
    # DomainBed's MLP featurizer reads these; DomainBed declares them only for DANN/CDANN
    # (same defaults and random ranges as there).
    HPARAMS: ClassVar[dict[str, tuple[Any, Callable[[np.random.RandomState], Any]]]] = {
        **MultipleDigitsDomains.HPARAMS,
        "mlp_width": (256, lambda r: int(2 ** r.uniform(6, 10))),
        "mlp_depth": (3, lambda r: int(r.choice([3, 4, 5]))),
        "mlp_dropout": (0.0, lambda r: float(r.choice([0.0, 0.1, 0.5]))),
    }

    def transform(self, images: torch.Tensor, env_index: int) -> torch.Tensor:
        return F.avg_pool2d(super().transform(images, env_index), 2).flatten(1)


class RotatedDigitsFlat(_FlatDigits, RotatedDigits):
    """:class:`RotatedDigits` as 196-d vectors (MLP featurizer): rotation shift at CPU cost."""


class CorruptedDigitsFlat(_FlatDigits, CorruptedDigits):
    """:class:`CorruptedDigits` as 196-d vectors (MLP featurizer): corruption shift at CPU cost."""
