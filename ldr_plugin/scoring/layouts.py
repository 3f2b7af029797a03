"""Two more on-disk layouts users score on, read exactly as their hosts lay them out.

- **CIFAR-10-C / CIFAR-100-C** in RobustBench's layout: ``ROOT/CIFAR-10-C/<corruption>.npy``
  (``[5n, 32, 32, 3]`` uint8, severities 1..5 stacked in order) and ``labels.npy`` (``n`` or ``5n``
  labels). A split is ``<corruption>-<severity>`` (e.g. ``gaussian_noise-5``); ``ldr score`` makes
  one cell per corruption x severity by default. Arrays are memory-mapped (``allow_pickle=False``).
- **ImageNet val, raw**: a flat folder of ``ILSVRC2012_val_*.JPEG`` and the devkit
  (``ILSVRC2012_devkit_t12/data/meta.mat`` and ``ILSVRC2012_validation_ground_truth.txt``, in the
  folder or beside it). Devkit ids are mapped to the sorted-wnid class order (torchvision's and every
  ImageNet model's). Splits: ``val`` (alias ``test``: all 50,000) and ``rb5000``.
- **RobustBench's 5,000-image ImageNet subset** (split ``rb5000``), of the raw layout above or of
  RobustBench's own (``imagefolder:DATA_DIR/val``: one ``<wnid>/`` folder per class). The list is
  robustbench's ``helper_files/imagenet_test_image_ids.txt`` (lines ``<wnid>/<file>.JPEG``, in that
  order) and the labels come from its ``imagenet_class_to_id_map.json`` (wnid -> index, the heads'
  order; RobustBench's loader gives the same labels when all 1000 folders are present). The list
  has 37 classes with a single image: k* needs 2 per class, so those images are left out (4,963
  images in 960 classes; ``info.rb5000`` says how many and which classes).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections import Counter
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


def rb5000_files() -> tuple[Path, Path]:
    """RobustBench's list of the 5,000 images and its wnid -> class index map (read from the installed
    package's files: robustbench itself need not import)."""
    spec = importlib.util.find_spec("robustbench")
    if spec is None or not spec.origin:
        raise LdrError("split 'rb5000' reads RobustBench's list of 5,000 ImageNet images: pip install robustbench")
    helper = Path(spec.origin).parent / "helper_files"
    return helper / "imagenet_test_image_ids.txt", helper / "imagenet_class_to_id_map.json"


def read_rb5000() -> tuple[list[tuple[str, str]], list[str], dict[str, Any]]:
    """The listed ``(wnid, file name)`` in the list's order, less the images of classes listed once;
    the wnids in class-index order; and info (what was left out, a digest of both files)."""
    listing, class_map = rb5000_files()
    try:
        lines, mapping = listing.read_text(), json.loads(class_map.read_text())
    except (OSError, ValueError) as exc:
        raise LdrError(f"cannot read RobustBench's ImageNet subset files {listing}, {class_map}: {exc}") from exc
    if not isinstance(mapping, dict) or sorted(mapping.values()) != list(range(len(mapping))):
        raise LdrError(f"{class_map}: expected a JSON object wnid -> class index 0..K-1")
    wnids = sorted(mapping, key=mapping.get)
    entries = []
    for number, line in enumerate(lines.splitlines(), 1):
        if not line.strip():
            continue
        wnid, sep, name = line.strip().partition("/")
        if not sep or "/" in name or wnid not in mapping or not name:
            raise LdrError(f"{listing} line {number}: expected <wnid>/<file> with a wnid of {class_map.name}, "
                           f"got {line.strip()!r}")
        entries.append((wnid, name))
    counts = Counter(w for w, _ in entries)
    single = sorted(w for w, n in counts.items() if n < 2)
    kept = [(w, n) for w, n in entries if counts[w] >= 2]
    digest = hashlib.sha256(listing.read_bytes() + class_map.read_bytes()).hexdigest()[:16]
    info = {"listed": len(entries), "kept": len(kept), "left_out_single_image_classes": single, "files_sha256": digest}
    return kept, wnids, info


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
    info: dict[str, Any] = {}
    if split == "rb5000":
        listed, rb_wnids, info["rb5000"] = read_rb5000()
        if rb_wnids != wnids:
            raise LdrError(f"imagenet-val {folder}: the devkit's classes are not RobustBench's 1000 wnids")
        wrong = [f"{w}/{n}" for w, n in listed if wnid_of.get(n) != w]
        if wrong:
            raise LdrError(f"imagenet-val {folder}: the devkit labels disagree with RobustBench's list for {wrong[:3]}")
        names = [n for _, n in listed]
    paths, sizes = _listed_files(folder, names, "imagenet-val")
    info = {"root": str(folder.resolve()), "devkit": str(data.resolve()), "fingerprint": _fingerprint(names, sizes),
            **info}
    return paths, np.asarray([index[wnid_of[n]] for n in names], np.int64), wnids, info


def read_rb5000_folder(root: str) -> tuple[list[str], np.ndarray, list[str], dict[str, Any]]:
    """RobustBench's 5,000-image subset of ImageNet val in RobustBench's layout (``DATA_DIR/val``:
    one ``<wnid>/`` folder per class): image paths in the list's order, labels, wnids, info."""
    folder = Path(root)
    if not folder.is_dir():
        raise LdrError(f"imagefolder root {folder} does not exist (for rb5000: RobustBench's DATA_DIR/val, "
                       "one <wnid>/ folder per class)")
    listed, wnids, about = read_rb5000()
    index = {w: i for i, w in enumerate(wnids)}
    relative = [f"{w}/{n}" for w, n in listed]
    paths, sizes = _listed_files(folder, relative, "imagefolder")
    info = {"root": str(folder.resolve()), "fingerprint": _fingerprint(relative, sizes), "rb5000": about}
    return paths, np.asarray([index[w] for w, _ in listed], np.int64), wnids, info


def _listed_files(folder: Path, names: list[str], kind: str) -> tuple[list[str], list[int]]:
    paths = [folder / n for n in names]
    missing = [n for n, p in zip(names, paths) if not p.is_file()]
    if missing:
        raise LdrError(f"{kind} {folder}: {len(missing)} of {len(names)} images missing, e.g. {missing[:3]}")
    return [str(p) for p in paths], [p.stat().st_size for p in paths]


def _fingerprint(names: list[str], sizes: list[int]) -> str:
    """File names and sizes, in order (cheap: no image is read)."""
    return hashlib.sha256("\n".join(f"{n}:{s}" for n, s in zip(names, sizes)).encode()).hexdigest()[:16]


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
