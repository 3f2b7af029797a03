"""CIFAR-10/100 read from a local torchvision-layout root, without torchvision's md5 gate.

torchvision's ``CIFAR10(root, download=False)`` refuses any folder whose files do not match the
official md5 sums, so a folder written by a test (or a re-packed copy) cannot be read through it.
This reader parses the same pickle batches (``cifar-10-batches-py/data_batch_1..5``,
``test_batch``, ``batches.meta``; ``cifar-100-python/train``, ``test``, ``meta``), checks their
structure, and records honestly whether the files match the official md5s (``md5_verified``).

The batches are pickles, and a pickle can run code: each file's checksums are computed first (the
md5 for ``md5_verified``, a sha256 for the data fingerprint), then it is read through
:class:`CifarUnpickler`, which admits only what the format holds (dicts, lists, strings, numbers and
numpy arrays). Anything else is refused before it is constructed.
"""

from __future__ import annotations

import hashlib
import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from ldr_plugin.errors import LdrError
from ldr_plugin.results.io import atomic_write_bytes

LAYOUT = {
    "cifar10": {
        "folder": "cifar-10-batches-py",
        "train": [f"data_batch_{i}" for i in range(1, 6)],
        "test": ["test_batch"],
        "meta": ("batches.meta", "label_names"),
        "labels": "labels",
        "torchvision": "CIFAR10",
    },
    "cifar100": {
        "folder": "cifar-100-python",
        "train": ["train"],
        "test": ["test"],
        "meta": ("meta", "fine_label_names"),
        "labels": "fine_labels",
        "torchvision": "CIFAR100",
    },
}


# the only globals a CIFAR batch (written by Python 2 or 3, numpy 1 or 2) refers to: numpy arrays
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"), ("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor"),
    ("__builtin__", "object"), ("builtins", "object"),
}


class CifarUnpickler(pickle.Unpickler):
    """A pickle reader that refuses every global but numpy's array reconstruction (no code runs)."""

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refused global {module}.{name} (not part of the CIFAR format)")
        return super().find_class(module, name)


def _unpickle(path: Path, raw: bytes) -> dict:
    try:
        batch = CifarUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise LdrError(f"{path}: not a CIFAR pickle batch ({type(exc).__name__}: {exc})") from exc
    if not isinstance(batch, dict):
        raise LdrError(f"{path}: not a CIFAR pickle batch (a {type(batch).__name__}, expected a dict)")
    return batch


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise LdrError(f"{path}: cannot read ({exc.strerror or exc})") from exc


def _official_md5s(kind: str) -> dict[str, str]:
    import torchvision.datasets as tvd

    cls = getattr(tvd, LAYOUT[kind]["torchvision"])
    pairs = list(cls.train_list) + list(cls.test_list) + [[cls.meta["filename"], cls.meta["md5"]]]
    return {name: md5 for name, md5 in pairs}


def _md5_verified(kind: str, contents: dict[Path, bytes]) -> bool:
    official = _official_md5s(kind)
    return all(path.name in official and hashlib.md5(raw, usedforsecurity=False).hexdigest() == official[path.name]
               for path, raw in contents.items())


def _fingerprint(contents: dict[Path, bytes]) -> str:
    """sha256 over the files' names, sizes and sha256s (the data, wherever it lies)."""
    parts = [f"{p.name}:{len(raw)}:{hashlib.sha256(raw).hexdigest()}" for p, raw in contents.items()]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


class CifarImages:
    """Index -> PIL image of an ``[N, H, W, 3]`` uint8 array (images made on access; CIFAR, CIFAR-C)."""

    def __init__(self, array: np.ndarray):
        self.array = array

    def __len__(self) -> int:
        return int(self.array.shape[0])

    def __getitem__(self, i: int) -> Any:
        from PIL import Image

        return Image.fromarray(self.array[i])


def read_cifar(kind: str, root: str, split: str) -> tuple[CifarImages, np.ndarray, list[str], dict]:
    """Images, int labels, class names and info of one split ('train' or 'test') under ``root``."""
    layout = LAYOUT[kind]
    if split not in ("train", "test"):
        raise LdrError(f"{kind} has splits 'train' and 'test', not '{split}'")
    folder = Path(root) / layout["folder"]
    meta_name, meta_key = layout["meta"]
    files = [folder / name for name in layout[split]] + [folder / meta_name]
    missing = [str(p) for p in files if not p.is_file()]
    if missing:
        raise LdrError(
            f"{kind} root {root}: missing {', '.join(missing)} (expected torchvision's layout "
            f"{layout['folder']}/{{{', '.join(layout[split])}, {meta_name}}}); nothing is downloaded"
        )
    contents = {path: _read_bytes(path) for path in files}
    md5_verified = _md5_verified(kind, contents)  # checksums before any byte is unpickled
    data, labels = [], []
    for path in files[:-1]:
        batch = _unpickle(path, contents[path])
        if "data" not in batch or layout["labels"] not in batch:
            raise LdrError(f"{path}: CIFAR batch without 'data' and '{layout['labels']}' (keys: {sorted(batch)})")
        array = np.asarray(batch["data"], dtype=np.uint8)
        if array.ndim != 2 or array.shape[1] != 3072 or len(batch[layout["labels"]]) != array.shape[0]:
            raise LdrError(f"{path}: 'data' should be [N, 3072] uint8 with N labels, got {array.shape}")
        data.append(array.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        labels.extend(batch[layout["labels"]])
    meta = _unpickle(files[-1], contents[files[-1]])
    if meta_key not in meta:
        raise LdrError(f"{files[-1]}: no '{meta_key}' (keys: {sorted(meta)})")
    images = np.ascontiguousarray(np.concatenate(data))
    info = {"root": str(Path(root).resolve()), "md5_verified": md5_verified, "fingerprint": _fingerprint(contents)}
    return CifarImages(images), np.asarray(labels, dtype=np.int64), list(meta[meta_key]), info


def write_cifar_folder(root: str | Path, kind: str, split_arrays: dict[str, tuple[np.ndarray, np.ndarray]],
                       class_names: list[str]) -> Path:
    """Write ``{split: (images [N,32,32,3] uint8, labels [N])}`` in torchvision's CIFAR pickle layout.

    ``train`` is written as one batch (``data_batch_1`` for CIFAR-10) plus empty remaining batches,
    so any small image set can be scored with the CIFAR reader.
    """
    layout = LAYOUT[kind]
    folder = Path(root) / layout["folder"]
    for split, names in (("train", layout["train"]), ("test", layout["test"])):
        images, labels = split_arrays.get(split, (np.zeros((0, 32, 32, 3), np.uint8), np.zeros(0, np.int64)))
        for i, name in enumerate(names):
            part = slice(None) if i == 0 else slice(0, 0)
            data = np.ascontiguousarray(images[part].transpose(0, 3, 1, 2)).reshape(-1, 3072)
            batch = {"batch_label": name, "data": data, layout["labels"]: [int(x) for x in labels[part]]}
            atomic_write_bytes(folder / name, pickle.dumps(batch))
    meta_name, meta_key = layout["meta"]
    atomic_write_bytes(folder / meta_name, pickle.dumps({meta_key: list(class_names)}))
    return folder
