"""No code runs from a data file without --trust-checkpoint: a pickle payload that would create a
marker file is planted where each loader reads, and the marker never appears (issue 20.1)."""

from __future__ import annotations

import importlib.util
import pickle

import numpy as np
import pytest
import torch

from ldr_plugin.errors import LdrError
from ldr_plugin.sources import get_source
from ldr_plugin.sources.base import CheckpointError


class Payload:
    """Unpickling this creates ``marker`` (what an attacker's code would do, harmlessly)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_the_payload_is_live(tmp_path):
    """The control: read without protection, the payload runs (so a test below can fail)."""
    marker = tmp_path / "ran"
    torch.save({"x": Payload(marker)}, tmp_path / "p.pt")
    torch.load(tmp_path / "p.pt", weights_only=False)
    assert marker.exists()
    marker.unlink()
    pickle.loads(pickle.dumps({"data": Payload(marker)}))
    assert marker.exists()


def test_cifar_batch_payload_never_runs(tmp_path):
    from ldr_plugin.scoring.cifar import write_cifar_folder
    from ldr_plugin.scoring.datasets import load_scoring_dataset

    marker = tmp_path / "ran"
    images, labels = np.zeros((4, 32, 32, 3), np.uint8), np.array([0, 0, 1, 1])
    folder = write_cifar_folder(tmp_path / "data", "cifar10", {"test": (images, labels)}, ["a", "b"])
    assert len(load_scoring_dataset(f"cifar10:{tmp_path / 'data'}")) == 4  # the honest batch reads
    (folder / "test_batch").write_bytes(pickle.dumps({"data": Payload(marker), "labels": [0]}))
    with pytest.raises(LdrError, match="test_batch: not a CIFAR pickle batch.*refused global"):
        load_scoring_dataset(f"cifar10:{tmp_path / 'data'}")
    (folder / "test_batch").write_bytes(pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 1]}))
    (folder / "batches.meta").write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(LdrError, match="batches.meta: not a CIFAR pickle batch"):
        load_scoring_dataset(f"cifar10:{tmp_path / 'data'}")
    assert not marker.exists()


needs_robustbench = pytest.mark.skipif(importlib.util.find_spec("robustbench") is None, reason="needs robustbench")


@needs_robustbench
def test_robustbench_weights_dir_payload_never_runs(tmp_path):
    marker = tmp_path / "ran"
    target = tmp_path / "cifar10" / "Linf" / "Ding2020MMA.pt"
    target.parent.mkdir(parents=True)
    torch.save({"state_dict": {"x": Payload(marker)}}, target)
    with pytest.raises(CheckpointError, match="--trust-checkpoint"):
        get_source("robustbench").load("cifar10/Linf/Ding2020MMA", weights_dir=tmp_path)
    assert not marker.exists()


@needs_robustbench
def test_torchvision_hub_payload_never_runs(tmp_path, monkeypatch):
    """ImageNet Standard_R50 goes through torchvision's resnet50(pretrained=True), i.e.
    torch.hub.load_state_dict_from_url(weights_only=False) of the cached file."""
    from torchvision.models import ResNet50_Weights

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    marker = tmp_path / "ran"
    cached = tmp_path / "torch" / "hub" / "checkpoints" / ResNet50_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[1]
    cached.parent.mkdir(parents=True)
    torch.save({"fc.weight": Payload(marker)}, cached)
    with pytest.raises(CheckpointError, match="needs arbitrary unpickling.*--trust-checkpoint"):
        get_source("robustbench").load("imagenet/Linf/Standard_R50")
    assert not marker.exists()


def test_domainbed_model_pkl_payload_never_runs(tmp_path):
    marker = tmp_path / "ran"
    torch.save({"args": {"algorithm": "ERM"}, "model_input_shape": (3, 28, 28), "model_num_classes": 10,
                "model_num_domains": 2, "model_hparams": {}, "model_dict": {"x": Payload(marker)}},
               tmp_path / "model.pkl")
    with pytest.raises(CheckpointError, match="--trust-checkpoint"):
        get_source("domainbed").load(str(tmp_path))
    assert not marker.exists()
