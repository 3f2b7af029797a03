"""Two more on-disk layouts users score on, read exactly as their hosts lay them out.

- **CIFAR-10-C / CIFAR-100-C** in RobustBench's layout: ``ROOT/CIFAR-10-C/<corruption>.npy``
  (``[5n, 32, 32, 3]`` uint8, severities 1..5 stacked in order) and ``labels.npy`` (``n`` or ``5n``
  labels). A split is ``<corruption>-<severity>`` (e.g. ``gaussian_noise-5``); ``ldr score`` makes
  one cell per corruption x severity by default. Arrays are memory-mapped (``allow_pickle=False``).
- **ImageNet val, raw**: a flat folder of ``ILSVRC2012_val_*.JPEG`` and the devkit
  (``ILSVRC2012_devkit_t12/data/meta.mat`` and ``ILSVRC2012_validation_ground_truth.txt``, in the
  folder or beside it). Devkit ids are mapped to the sorted-wnid class order (torchvision's and every
  ImageNet model's). Splits: ``val`` (alias ``test``: all 50,000) and ``rb5000`` (RobustBench's fixed
  5,000-image list, ``robustbench/helper_files/imagenet_test_image_ids.txt``).
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from ldr_plugin.errors import LdrError
from ldr_plugin.scoring.cifar import CifarImages

CIFAR_C_FOLDERS = {"cifar10c": "CIFAR-10-C", "cifar100c": "CIFAR-100-C"}
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
DEVKIT = "ILSVRC2012_devkit_t12"
ArrayImages = CifarImages  # index -> PIL image of an [N, H, W, 3] uint8 array (CIFAR-C arrays too)


def cifar_c_folder(kind: str, root: str) -> Path:
    folder = Path(root) / CIFAR_C_FOLDERS[kind]
    if not (folder / "labels.npy").is_file():
        raise LdrError(f"{kind} root {root}: no {folder / 'labels.npy'} (expected RobustBench's layout "
                       f"{CIFAR_C_FOLDERS[kind]}/{{labels.npy, <corruption>.npy}}); nothing is downloaded")
    return folder


def cifar_c_corruptions(kind: str, root: str) -> list[str]:
    """The corruptions present under ``root`` (one ``.npy`` each besides ``labels.npy``)."""
    return sorted(p.stem for p in cifar_c_folder(kind, root).glob("*.npy") if p.stem != "labels")


def _cifar_c_classes(kind: str, n_labels: int) -> list[str]:
    if kind == "cifar10c":
        return list(CIFAR10_CLASSES)
    return [f"class{i}" for i in range(n_labels)]  # CIFAR-100-C ships no class names


def read_cifar_c(kind: str, root: str, split: str) -> tuple[np.ndarray, np.ndarray, list[str], dict[str, Any]]:
    """Images ``[n, 32, 32, 3]``, labels, class names and info of one ``<corruption>-<severity>``."""
    folder = cifar_c_folder(kind, root)
    corruption, _, severity = split.rpartition("-")
    present = cifar_c_corruptions(kind, root)
    if corruption not in present or severity not in {"1", "2", "3", "4", "5"}:
        raise LdrError(f"{kind} split '{split}': expected <corruption>-<severity 1..5> with a corruption of "
                       f"{folder}: {', '.join(present) or '(none)'}")
    try:
        images = np.load(folder / f"{corruption}.npy", mmap_mode="r", allow_pickle=False)
        labels = np.load(folder / "labels.npy", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise LdrError(f"{folder}: cannot read {corruption}.npy / labels.npy ({exc})") from exc
    if images.ndim != 4 or images.shape[1:] != (32, 32, 3) or images.dtype != np.uint8 or images.shape[0] % 5:
        raise LdrError(f"{folder / (corruption + '.npy')}: expected [5n, 32, 32, 3] uint8 (five severities), "
                       f"got {list(images.shape)} {images.dtype}")
    n, s = images.shape[0] // 5, int(severity)
    if labels.shape not in ((n,), (5 * n,)):
        raise LdrError(f"{folder / 'labels.npy'}: {labels.shape[0]} labels for {n} images per severity")
    part = slice((s - 1) * n, s * n)
    chosen = np.asarray(labels[part] if labels.shape[0] == 5 * n else labels, dtype=np.int64)
    fingerprint = hashlib.sha256(np.ascontiguousarray(images[part]).tobytes() + chosen.tobytes()).hexdigest()[:16]
    info = {"root": str(Path(root).resolve()), "corruption": corruption, "severity": s, "fingerprint": fingerprint}
    return np.asarray(images[part]), chosen, _cifar_c_classes(kind, int(chosen.max()) + 1), info


def _devkit(root: Path) -> Path:
    for base in (root, root.parent):
        data = base / DEVKIT / "data"
        if (data / "meta.mat").is_file() and (data / "ILSVRC2012_validation_ground_truth.txt").is_file():
            return data
    raise LdrError(f"imagenet-val root {root}: no devkit ({DEVKIT}/data/meta.mat and "
                   f"ILSVRC2012_validation_ground_truth.txt) in it or beside it")


def _wnids_by_devkit_id(data: Path) -> dict[int, tuple[str, str]]:
    from scipy.io import loadmat

    synsets = loadmat(str(data / "meta.mat"), squeeze_me=True)["synsets"]
    leaves = [s for s in synsets if int(s["num_children"]) == 0]
    return {int(s["ILSVRC2012_ID"]): (str(s["WNID"]), str(s["words"]) if "words" in s.dtype.names else "")
            for s in leaves}


def _rb5000() -> list[str]:
    spec = importlib.util.find_spec("robustbench")
    if spec is None or not spec.origin:
        raise LdrError("split 'rb5000' reads RobustBench's list of 5,000 ImageNet images: pip install robustbench")
    listing = Path(spec.origin).parent / "helper_files" / "imagenet_test_image_ids.txt"
    return [line.strip() for line in listing.read_text().splitlines() if line.strip()]


def read_imagenet_val(root: str, split: str) -> tuple[list[str], np.ndarray, list[str], dict[str, Any]]:
    """Image paths, labels (sorted-wnid order), wnids and info of the raw val folder."""
    if split not in ("val", "test", "rb5000"):
        raise LdrError(f"imagenet-val has splits 'val' (alias 'test') and 'rb5000', not '{split}'")
    folder = Path(root)
    if not folder.is_dir():
        raise LdrError(f"imagenet-val root {folder} does not exist (a flat folder of ILSVRC2012_val_*.JPEG)")
    data = _devkit(folder)
    by_id = _wnids_by_devkit_id(data)
    wnids = sorted(w for w, _ in by_id.values())
    index = {w: i for i, w in enumerate(wnids)}
    truth = [int(x) for x in (data / "ILSVRC2012_validation_ground_truth.txt").read_text().split()]
    names = [f"ILSVRC2012_val_{i:08d}.JPEG" for i in range(1, len(truth) + 1)]
    wnid_of = {name: by_id[t][0] for name, t in zip(names, truth)}
    if split == "rb5000":
        listed = [entry.split("/") for entry in _rb5000()]
        wrong = [f"{w}/{n}" for w, n in listed if wnid_of.get(n) != w]
        if wrong:
            raise LdrError(f"imagenet-val {folder}: the devkit labels disagree with RobustBench's list for {wrong[:3]}")
        names = [n for _, n in listed]
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise LdrError(f"imagenet-val {folder}: {len(missing)} of {len(names)} images missing, e.g. {missing[:3]}")
    listing = "\n".join(f"{n}:{(folder / n).stat().st_size}" for n in names)
    info = {"root": str(folder.resolve()), "devkit": str(data.resolve()),
            "fingerprint": hashlib.sha256(listing.encode()).hexdigest()[:16]}
    return [str(folder / n) for n in names], np.asarray([index[wnid_of[n]] for n in names], np.int64), wnids, info


class PathImages:
    """Index -> PIL image read from a path list (RGB)."""

    def __init__(self, paths: list[str]):
        self.paths = paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> Any:
        from PIL import Image

        with Image.open(self.paths[i]) as image:
            return image.convert("RGB")
