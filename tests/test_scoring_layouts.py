"""CIFAR-10-C in RobustBench's .npy layout and ImageNet val in its raw layout (flat folder + devkit),
read against the hosts' own readers on tiny files in exactly those layouts."""

from __future__ import annotations

import importlib.util
import tarfile
from pathlib import Path

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


def _rb_helper_files(tmp_path, entries, wnids, monkeypatch):
    """RobustBench's two helper files in their exact formats: ``<wnid>/<file>.JPEG`` lines (no newline
    after the last, like the shipped file) and a one-line JSON object wnid -> class index."""
    import json

    from ldr_plugin.scoring import layouts

    helper = tmp_path / "helper_files"
    helper.mkdir()
    (helper / "imagenet_test_image_ids.txt").write_text("\n".join(entries))
    (helper / "imagenet_class_to_id_map.json").write_text(json.dumps({w: i for i, w in enumerate(wnids)}))
    monkeypatch.setattr(layouts, "rb5000_files", lambda: (helper / "imagenet_test_image_ids.txt",
                                                          helper / "imagenet_class_to_id_map.json"))
    return helper


RB_WNIDS = ["n01000000", "n02000000", "n03000000", "n04000000", "n05000000"]


def test_rb5000_in_robustbench_layout_matches_robustbenchs_own_loader(tmp_path, monkeypatch):
    """imagefolder:DATA_DIR/val --split rb5000 gives the listed images, in the list's order, with the
    labels RobustBench's CustomImageFolder gives them; a class listed once is left out, unlisted
    images are not read."""
    pytest.importorskip("robustbench")
    from ldr_plugin.sources._compat import import_robustbench

    val = tmp_path / "data" / "val"
    entries = ["n03000000/ILSVRC2012_val_00000007.JPEG", "n01000000/ILSVRC2012_val_00000002.JPEG",
               "n05000000/ILSVRC2012_val_00000011.JPEG",  # n05 listed once: left out
               "n03000000/ILSVRC2012_val_00000003.JPEG", "n01000000/ILSVRC2012_val_00000009.JPEG",
               "n04000000/ILSVRC2012_val_00000001.JPEG", "n04000000/ILSVRC2012_val_00000005.JPEG",
               "n04000000/ILSVRC2012_val_00000012.JPEG"]
    colour = {}
    for k, entry in enumerate(entries + ["n02000000/ILSVRC2012_val_00000004.JPEG",  # not listed
                                         "n02000000/ILSVRC2012_val_00000006.JPEG",
                                         "n01000000/ILSVRC2012_val_00000008.JPEG"]):
        (val / entry).parent.mkdir(parents=True, exist_ok=True)
        colour[entry] = (20 * k + 5, 0, 255 - 20 * k)
        Image.new("RGB", (16, 12), colour[entry]).save(val / entry, quality=100)
    for wnid in RB_WNIDS:  # every class folder exists, as in a full ImageNet val
        (val / wnid).mkdir(exist_ok=True)
    helper = _rb_helper_files(tmp_path, entries, RB_WNIDS, monkeypatch)
    data = load_scoring_dataset(f"imagefolder:{val}", split="rb5000")

    import_robustbench()
    import robustbench.loaders as rb_loaders

    monkeypatch.setattr(rb_loaders.pkg_resources, "resource_filename", lambda module, name: str(helper / name.split("/")[-1]))
    theirs = rb_loaders.CustomImageFolder(str(val))
    expected = [(path, label) for path, label in theirs.samples if "n05000000" not in path]
    assert len(theirs.samples) == 8 and len(expected) == 7
    assert [str(p) for p in data.samples.samples.paths] == [p for p, _ in expected]
    assert data.labels.tolist() == [label for _, label in expected] == [2, 0, 2, 0, 3, 3, 3]
    assert data.class_names == RB_WNIDS
    for i, (path, _) in enumerate(expected):  # the right pixels behind each label
        got = np.asarray(data.samples[i]).reshape(-1, 3).mean(0)
        assert np.abs(got - colour[str(Path(path).relative_to(val))]).max() < 3
    assert data.info["rb5000"]["left_out_single_image_classes"] == ["n05000000"]
    assert (data.info["rb5000"]["listed"], data.info["rb5000"]["kept"]) == (8, 7)
    (val / entries[0]).unlink()
    with pytest.raises(LdrError, match="1 of 7 images missing.*00000007"):
        load_scoring_dataset(f"imagefolder:{val}", split="rb5000")


def test_rb5000_of_the_raw_layout_takes_labels_from_the_devkit_and_checks_the_list(tmp_path, monkeypatch):
    val = _imagenet_val(tmp_path)  # devkit truth (1, 2, 3, 4, 4, 3, 2, 1) for images 1..8
    wnids = sorted(WNIDS_BY_ID.values())
    truth = dict(zip(range(1, 9), (1, 2, 3, 4, 4, 3, 2, 1)))
    order = [6, 1, 3, 8, 2, 4, 7]  # image 4 (devkit id 4) is its class's only listed image: left out
    entries = [f"{WNIDS_BY_ID[truth[i]]}/ILSVRC2012_val_{i:08d}.JPEG" for i in order]
    _rb_helper_files(tmp_path, entries, wnids, monkeypatch)
    data = load_scoring_dataset(f"imagenet-val:{val}", split="rb5000")
    kept = [i for i in order if sum(truth[j] == truth[i] for j in order) >= 2]
    assert kept == [6, 1, 3, 8, 2, 7]
    assert [Path(p).name for p in data.samples.samples.paths] == [f"ILSVRC2012_val_{i:08d}.JPEG" for i in kept]
    assert data.labels.tolist() == [wnids.index(WNIDS_BY_ID[truth[i]]) for i in kept]
    bad = [e.replace("n03000000", "n04000000") if "00000001" in e else e for e in entries]  # image 1 is n03
    (tmp_path / "bad").mkdir()
    _rb_helper_files(tmp_path / "bad", bad, wnids, monkeypatch)
    with pytest.raises(LdrError, match="disagree with RobustBench's list.*00000001"):
        load_scoring_dataset(f"imagenet-val:{val}", split="rb5000")


def test_the_shipped_rb5000_list_reads_as_5000_listed_and_4963_kept():
    """robustbench's installed files, read independently: 5,000 distinct lines; 37 classes listed once."""
    pytest.importorskip("robustbench")
    import json
    from collections import Counter

    from ldr_plugin.scoring.layouts import rb5000_files, read_rb5000

    listing, class_map = rb5000_files()
    lines = listing.read_text().split("\n")
    lines = [line for line in lines if line]
    counts = Counter(line.split("/")[0] for line in lines)
    kept, wnids, info = read_rb5000()
    assert len(lines) == len(set(lines)) == 5000 == info["listed"]
    assert [f"{w}/{n}" for w, n in kept] == [line for line in lines if counts[line.split("/")[0]] > 1]
    assert info["kept"] == len(kept) == 4963 and len(info["left_out_single_image_classes"]) == 37
    assert wnids == sorted(json.loads(class_map.read_text())) and len(wnids) == 1000
