"""Scoring datasets: what a model is scored on, subsampled per class with a fixed seed.

Specs (``--dataset``): ``cifar10:ROOT`` / ``cifar100:ROOT`` (a torchvision-layout root, read
locally, never downloaded), ``imagefolder:PATH`` (one sub-folder per class, e.g. ImageNet val;
split ``rb5000``: RobustBench's 5,000-image list in it),
``digits`` (sklearn's digits, embedded), ``RotatedDigits:ENV`` / ``CorruptedDigits:ENV`` (one
domain of the embedded multi-domain digits). DomainBed run environments come from the
``domainbed`` source (see :mod:`ldr_plugin.domainbed.source`).

>>> data = load_scoring_dataset("digits", n_per_class=5, seed=0)
>>> len(data), data.describe()["n_per_class"]["0"]
(50, 5)
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from ldr_plugin.datasets.samples import ScoringData
from ldr_plugin.errors import LdrError
from ldr_plugin.scoring.cifar import read_cifar
from ldr_plugin.scoring.layouts import (
    CIFAR_C_FOLDERS,
    ArrayImages,
    PathImages,
    read_cifar_c,
    read_imagenet_val,
    read_rb5000_folder,
)

IMAGEFOLDER_SPLITS = ("test", "val", "all")  # names that describe a whole folder; nothing else is accepted


def _imagefolder(path: str, split: str) -> tuple[list, np.ndarray, list[str], dict]:
    root = Path(path)
    if not root.is_dir():
        raise LdrError(f"imagefolder root {root} does not exist (expected one sub-folder of images per class)")
    from torchvision.datasets import ImageFolder

    try:
        folder = ImageFolder(str(root))
    except (FileNotFoundError, RuntimeError) as exc:
        raise LdrError(f"imagefolder root {root} is not an image folder: {exc}") from exc

    class _Lazy:
        def __len__(self) -> int:
            return len(folder.samples)

        def __getitem__(self, i: int):
            return folder.loader(folder.samples[i][0])

    listing = [f"{Path(f).relative_to(root)}:{Path(f).stat().st_size}" for f, _ in folder.samples]
    fingerprint = hashlib.sha256("\n".join(listing).encode()).hexdigest()[:16]  # file names + sizes
    info = {"root": str(root.resolve()), "fingerprint": fingerprint}
    return _Lazy(), np.asarray(folder.targets, dtype=np.int64), list(folder.classes), info


def _digits_domain(name: str, env: str) -> tuple[Any, np.ndarray, list[str], dict]:
    from ldr_plugin.datasets import digits as digits_module  # scikit-learn: only for the embedded digits

    cls = getattr(digits_module, name)
    if env not in cls.ENVIRONMENTS:
        raise LdrError(f"{name} has no environment '{env}'; environments: {', '.join(cls.ENVIRONMENTS)}")
    tensors = cls(None, [], {})[list(cls.ENVIRONMENTS).index(env)].tensors
    return tensors[0], tensors[1].numpy(), [str(i) for i in range(10)], {"embedded": f"{name}:{env}"}


def _raw_split(kind: str, arg: str | None, split: str) -> tuple[Any, np.ndarray, list[str], dict]:
    if kind in ("cifar10", "cifar100"):
        if not arg:
            raise LdrError(f"dataset '{kind}' needs a root: --dataset {kind}:/path/to/torchvision/root")
        return read_cifar(kind, arg, split)
    if kind == "imagefolder":
        if not arg:
            raise LdrError("dataset 'imagefolder' needs a path: --dataset imagefolder:/path/to/folder")
        if split == "rb5000":  # RobustBench's 5,000-image ImageNet list, in RobustBench's DATA_DIR/val
            paths, labels, names, info = read_rb5000_folder(arg)
            return PathImages(paths), labels, names, info
        if split not in IMAGEFOLDER_SPLITS:  # a label that does not select anything would mislead
            raise LdrError(
                f"imagefolder:{arg} is one folder of classes, so its split is the folder itself: --split may be "
                f"{', '.join(repr(s) for s in IMAGEFOLDER_SPLITS)} (a label for the whole folder) or 'rb5000' "
                f"(RobustBench's list), not {split!r}; to score another split, point --dataset at its folder "
                "(e.g. imagefolder:/data/imagenet/train)"
            )
        return _imagefolder(arg, split)
    if kind == "digits":
        from ldr_plugin.datasets.digits import load_digit_images  # scikit-learn: only for the digits

        images, labels = load_digit_images()
        return images, labels.numpy(), [str(i) for i in range(10)], {"embedded": "sklearn digits 28x28"}
    if kind in ("RotatedDigits", "CorruptedDigits"):
        return _digits_domain(kind, arg or "")
    if kind in CIFAR_C_FOLDERS:
        if not arg:
            raise LdrError(f"dataset '{kind}' needs a root: --dataset {kind}:/path/with/{CIFAR_C_FOLDERS[kind]}")
        images, labels, names, info = read_cifar_c(kind, arg, split)
        return ArrayImages(images), labels, names, info
    if kind == "imagenet-val":
        if not arg:
            raise LdrError("dataset 'imagenet-val' needs a path: --dataset imagenet-val:/path/to/flat/val")
        paths, labels, names, info = read_imagenet_val(arg, split)
        return PathImages(paths), labels, names, info
    raise LdrError(
        f"unknown dataset '{kind}'; expected cifar10:ROOT, cifar100:ROOT, cifar10c:ROOT, cifar100c:ROOT, "
        "imagefolder:PATH, imagenet-val:PATH, digits, RotatedDigits:ENV or CorruptedDigits:ENV"
    )


def load_scoring_dataset(spec: str, *, split: str = "test", n_per_class: int | None = None, seed: int = 0
                         ) -> ScoringData:
    """Read the dataset named by ``spec``, keep ``n_per_class`` per class (seeded), check >= 2 per class."""
    kind, _, arg = spec.partition(":")
    if kind in ("digits", "RotatedDigits", "CorruptedDigits"):
        split = "all"  # embedded digits have no train/test split: every image of the domain
    samples, labels, class_names, info = _raw_split(kind, arg or None, split)
    return ScoringData.subsampled(spec, split, samples, labels, class_names, n_per_class, seed, info)
