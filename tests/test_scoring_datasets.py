"""Scoring datasets: the CIFAR reader against torchvision's own reader, ImageFolder, digits,
per-class subsampling, and bad roots."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ldr_plugin.datasets.samples import subsample_per_class
from ldr_plugin.errors import LdrError
from ldr_plugin.scoring.cifar import write_cifar_folder
from ldr_plugin.scoring.datasets import load_scoring_dataset


def _tiny_cifar(root, kind="cifar10", n_classes=10, per_class=4, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n_classes), per_class)
    rng.shuffle(labels)
    images = rng.integers(0, 256, size=(labels.size, 32, 32, 3), dtype=np.uint8)
    names = [f"class{i}" for i in range(n_classes)]
    write_cifar_folder(root, kind, {"test": (images, labels), "train": (images[:20], labels[:20])}, names)
    return images, labels


@pytest.mark.parametrize("kind,n_classes", [("cifar10", 10), ("cifar100", 100)])
def test_cifar_reader_matches_torchvision(tmp_path, monkeypatch, kind, n_classes):
    import torchvision.datasets as tvd

    _images, labels = _tiny_cifar(tmp_path, kind, n_classes=n_classes, per_class=2)
    cls = tvd.CIFAR10 if kind == "cifar10" else tvd.CIFAR100
    with pytest.raises(RuntimeError, match="corrupted"):  # why we read the pickles ourselves
        cls(str(tmp_path), train=False, download=False)
    monkeypatch.setattr(cls, "_check_integrity", lambda self: True)  # torchvision's md5 gates, off
    monkeypatch.setattr(tvd.cifar, "check_integrity", lambda *a, **k: True)
    reference = cls(str(tmp_path), train=False, download=False)
    data = load_scoring_dataset(f"{kind}:{tmp_path}", split="test")
    assert len(data) == len(reference) == labels.size
    for i in (0, 5, len(data) - 1):
        ref_img, ref_label = reference[i]
        assert np.array_equal(np.asarray(data.samples[i]), np.asarray(ref_img))
        assert data.labels[i] == ref_label
    assert data.class_names == reference.classes
    assert data.info["md5_verified"] is False


def test_subsampling_is_seeded_and_per_class(tmp_path):
    _tiny_cifar(tmp_path, per_class=6)
    a = load_scoring_dataset(f"cifar10:{tmp_path}", n_per_class=3, seed=1)
    b = load_scoring_dataset(f"cifar10:{tmp_path}", n_per_class=3, seed=1)
    c = load_scoring_dataset(f"cifar10:{tmp_path}", n_per_class=3, seed=2)
    assert np.array_equal(a.indices, b.indices) and not np.array_equal(a.indices, c.indices)
    assert set(a.n_per_class().values()) == {3}
    desc = a.describe()
    assert desc["n_per_class"]["class0"] == 3 and desc["split"] == "test" and desc["subsample_seed"] == 1


def test_subsample_takes_all_of_a_small_class():
    labels = np.array([0] * 5 + [1] * 2)
    idx = subsample_per_class(labels, 3, seed=0)
    assert np.bincount(labels[idx]).tolist() == [3, 2]


def test_fewer_than_two_per_class_is_an_error(tmp_path):
    images = np.zeros((5, 32, 32, 3), np.uint8)
    labels = np.array([0, 0, 1, 1, 2])
    write_cifar_folder(tmp_path, "cifar10", {"test": (images, labels)}, [f"c{i}" for i in range(10)])
    with pytest.raises(LdrError, match="fewer than 2 samples.*'c2' \\(1\\)"):
        load_scoring_dataset(f"cifar10:{tmp_path}")
    with pytest.raises(LdrError, match="at least 2"):
        load_scoring_dataset("digits", n_per_class=1)


def test_missing_root_and_wrong_format(tmp_path):
    with pytest.raises(LdrError, match="missing .*test_batch"):
        load_scoring_dataset(f"cifar10:{tmp_path / 'nowhere'}")
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "test_batch").write_bytes(b"not a pickle")
    (folder / "batches.meta").write_bytes(b"x")
    with pytest.raises(LdrError, match="not a CIFAR pickle batch"):
        load_scoring_dataset(f"cifar10:{tmp_path}")
    with pytest.raises(LdrError, match="unknown dataset 'mnist'"):
        load_scoring_dataset("mnist")
    with pytest.raises(LdrError, match="does not exist"):
        load_scoring_dataset(f"imagefolder:{tmp_path / 'none'}")


def test_imagefolder(tmp_path):
    for cls in ("cat", "dog"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.fromarray(np.full((8, 8, 3), i * 40, np.uint8)).save(tmp_path / cls / f"{i}.png")
    data = load_scoring_dataset(f"imagefolder:{tmp_path}", n_per_class=2)
    assert data.class_names == ["cat", "dog"] and data.n_per_class() == {"cat": 2, "dog": 2}
    assert data.samples[0].size == (8, 8)
    for split in ("val", "all"):  # labels for the whole folder
        assert len(load_scoring_dataset(f"imagefolder:{tmp_path}", split=split)) == 6
    with pytest.raises(LdrError, match=r"its split is the folder itself.*not 'train'.*imagefolder:/data/imagenet/train"):
        load_scoring_dataset(f"imagefolder:{tmp_path}", split="train")  # would score this folder labelled 'train'


def test_embedded_digits():
    from sklearn.datasets import load_digits

    data = load_scoring_dataset("digits")
    assert len(data) == len(load_digits().target) and data.split == "all"
    rotated = load_scoring_dataset("RotatedDigits:30", n_per_class=4)
    assert set(rotated.n_per_class().values()) == {4}
    with pytest.raises(LdrError, match="no environment '31'"):
        load_scoring_dataset("RotatedDigits:31")
