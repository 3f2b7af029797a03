"""CIFAR-10-C in RobustBench's .npy layout and ImageNet val in its raw layout (flat folder + devkit),
read against the hosts' own readers on tiny files in exactly those layouts."""

from __future__ import annotations

import importlib.util
import tarfile

import numpy as np
import pytest
from PIL import Image

from ldr_plugin.errors import LdrError
from ldr_plugin.scoring.datasets import load_scoring_dataset

N = 6  # images per severity


def _cifar_c(root, corruptions=("fog", "gaussian_noise")):
    folder = root / "CIFAR-10-C"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    arrays = {c: rng.integers(0, 256, (5 * N, 32, 32, 3), dtype=np.uint8) for c in corruptions}
    for c, array in arrays.items():
        np.save(folder / f"{c}.npy", array)
    np.save(folder / "labels.npy", np.tile(np.array([0, 0, 1, 1, 2, 2]), 5))  # like the real file: 5n labels
    return arrays


def test_cifar10c_severity_slices(tmp_path):
    arrays = _cifar_c(tmp_path)
    for severity in (1, 3, 5):
        data = load_scoring_dataset(f"cifar10c:{tmp_path}", split=f"fog-{severity}")
        got = np.stack([np.asarray(data.samples[i]) for i in range(len(data))])
        np.testing.assert_array_equal(got, arrays["fog"][(severity - 1) * N: severity * N])
        assert data.labels.tolist() == [0, 0, 1, 1, 2, 2] and data.class_names[:3] == ["airplane", "automobile", "bird"]
        assert data.info["severity"] == severity and data.info["corruption"] == "fog"
    with pytest.raises(LdrError, match="fog, gaussian_noise"):
        load_scoring_dataset(f"cifar10c:{tmp_path}", split="snow-1")
    with pytest.raises(LdrError, match="severity 1..5"):
        load_scoring_dataset(f"cifar10c:{tmp_path}", split="fog-6")


@pytest.mark.skipif(importlib.util.find_spec("robustbench") is None, reason="needs robustbench")
def test_cifar10c_matches_robustbenchs_loader(tmp_path):
    """robustbench's load_cifar10c slices 10,000 per severity: on a tiny file its severity 1 is ours."""
    import torch

    from ldr_plugin.sources._compat import import_robustbench

    import_robustbench()
    from robustbench.data import load_cifar10c

    _cifar_c(tmp_path)
    x, y = load_cifar10c(n_examples=N, severity=1, data_dir=str(tmp_path), corruptions=["gaussian_noise"])
    data = load_scoring_dataset(f"cifar10c:{tmp_path}", split="gaussian_noise-1")
    ours = torch.stack([torch.from_numpy(np.asarray(data.samples[i])).permute(2, 0, 1).float() / 255
                        for i in range(len(data))])
    torch.testing.assert_close(ours, x)
    assert data.labels.tolist() == y.tolist()


WNIDS_BY_ID = {1: "n03000000", 2: "n01000000", 3: "n02000000", 4: "n04000000"}  # devkit order is not sorted


def _imagenet_val(tmp_path, truth=(1, 2, 3, 4, 4, 3, 2, 1)):
    from scipy.io import savemat

    data = tmp_path / "ILSVRC2012_devkit_t12" / "data"
    data.mkdir(parents=True)
    rows = [(i, w, f"words {w}", "gloss", 0) for i, w in WNIDS_BY_ID.items()] + [(5, "n09999999", "parent", "g", 4)]
    synsets = np.array(rows, dtype=[("ILSVRC2012_ID", "O"), ("WNID", "O"), ("words", "O"), ("gloss", "O"),
                                    ("num_children", "O")])
    savemat(data / "meta.mat", {"synsets": synsets})
    (data / "ILSVRC2012_validation_ground_truth.txt").write_text("".join(f"{t}\n" for t in truth))
    val = tmp_path / "val"
    val.mkdir()
    for i in range(1, len(truth) + 1):
        Image.new("RGB", (40, 30), (i * 20, 0, 0)).save(val / f"ILSVRC2012_val_{i:08d}.JPEG")
    return val


def test_imagenet_raw_val_labels_match_torchvisions_devkit_parser(tmp_path, monkeypatch):
    import torch
    import torchvision.datasets.imagenet as tv_imagenet

    val = _imagenet_val(tmp_path)
    data = load_scoring_dataset(f"imagenet-val:{val}", split="val")
    assert data.class_names == sorted(WNIDS_BY_ID.values()) and len(data) == 8
    # the independent reading: torchvision's own devkit parser on the same files (as its tar archive)
    with tarfile.open(tmp_path / "devkit.tar.gz", "w:gz") as archive:
        archive.add(tmp_path / "ILSVRC2012_devkit_t12", arcname="ILSVRC2012_devkit_t12")
    monkeypatch.setattr(tv_imagenet, "_verify_archive", lambda *a: None)
    tv_imagenet.parse_devkit_archive(str(tmp_path), "devkit.tar.gz")
    _, val_wnids = torch.load(tmp_path / tv_imagenet.META_FILE, weights_only=False)
    assert data.labels.tolist() == [sorted(WNIDS_BY_ID.values()).index(w) for w in val_wnids]
    assert np.asarray(data.samples[0]).shape == (30, 40, 3)
    with pytest.raises(LdrError, match="splits 'val'"):
        load_scoring_dataset(f"imagenet-val:{val}", split="train")
    (val / "ILSVRC2012_val_00000003.JPEG").unlink()
    with pytest.raises(LdrError, match="1 of 8 images missing.*00000003"):
        load_scoring_dataset(f"imagenet-val:{val}", split="val")
