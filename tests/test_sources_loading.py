"""Checked loading: every parameter and buffer must come from the file. RobustBench's ImageNet
entries load with ``strict=False`` and would be scored with random weights; the check refuses them,
naming the file, the id and the first keys left at initialisation."""

from __future__ import annotations

import copy
import importlib.util

import pytest
import torch
from torch import nn

from ldr_plugin.sources import get_source
from ldr_plugin.sources.base import CheckpointError
from ldr_plugin.sources.loading import check_filled, guarded_load, unfilled, weights_file_facts


def test_partial_non_strict_load_is_named():
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    other = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    state = {k: v for k, v in other.state_dict().items() if not k.startswith("2.")}
    state["extra.weight"] = torch.zeros(1)
    with guarded_load(trust_checkpoint=False) as log:
        net.load_state_dict(state, strict=False)
    left, unexpected = unfilled(net, log)
    assert left == ["2.weight", "2.bias"] and unexpected == ["extra.weight"]
    with pytest.raises(CheckpointError, match=r"m:x.*f\.pt.*2 of 9 parameters/buffers.*2\.weight.*extra\.weight"):
        check_filled(net, log, ["f.pt"], "m:x")
    # a full load of a submodule counts for the root, under the submodule's prefix
    with guarded_load(trust_checkpoint=False) as log:
        net[2].load_state_dict(other[2].state_dict())
        net.load_state_dict({k: v for k, v in other.state_dict().items() if not k.startswith("2.")}, strict=False)
    assert unfilled(net, log) == ([], [])


def test_strict_loads_keep_torchs_error():
    net = nn.Linear(2, 2)
    with guarded_load(trust_checkpoint=False), pytest.raises(RuntimeError, match="Missing key"):
        net.load_state_dict({"weight": torch.zeros(2, 2)})


def test_weights_file_facts(tmp_path):
    import hashlib

    path = tmp_path / "w.pt"
    path.write_bytes(b"x" * (1 << 20) + b"tail")
    [facts] = weights_file_facts([str(path)])
    assert facts == {"path": str(path.resolve()), "size": (1 << 20) + 4,
                     "sha256_first_mib": hashlib.sha256(b"x" * (1 << 20)).hexdigest()}


needs_robustbench = pytest.mark.skipif(importlib.util.find_spec("robustbench") is None, reason="needs robustbench")
IMAGENET = "imagenet/Linf/Salman2020Do_R18"


@pytest.fixture(scope="module")
def salman(tmp_path_factory):
    """Salman2020Do_R18 (a normalised torchvision ResNet-18) with random weights, and a weights dir."""
    from ldr_plugin.sources._compat import import_robustbench

    import_robustbench()
    from robustbench.model_zoo import model_dicts
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

    torch.manual_seed(0)
    model = model_dicts[BenchmarkDataset("imagenet")][ThreatModel("Linf")]["Salman2020Do_R18"]["model"]().eval()
    return model, tmp_path_factory.mktemp("imagenet_w")


def _place(root, state):
    target = root / "imagenet" / "Linf" / "Salman2020Do_R18.pt"
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, target)
    return target


@needs_robustbench
def test_imagenet_entry_loads_its_own_weights(salman, tmp_path):
    model, _ = salman
    _place(tmp_path, {"state_dict": {f"module.{k}": v for k, v in model.model.state_dict().items()}})
    loaded = get_source("robustbench").load(IMAGENET, weights_dir=tmp_path)
    x = torch.rand(2, 3, 64, 64)
    headless = copy.deepcopy(model)
    headless.model.fc = nn.Identity()
    with torch.no_grad():
        torch.testing.assert_close(loaded.features(x, "penultimate"), headless(x))
    assert loaded.detail["hooked"].startswith("input of model.fc")


@needs_robustbench
def test_imagenet_entry_refuses_a_file_that_leaves_it_random(salman, tmp_path):
    """A MadryLab-format file (weights under 'model', 'module.model.' prefixes) at the entry's path:
    robustbench's own load_model accepts it (strict=False) and returns the random initialisation."""
    from ldr_plugin.sources._compat import import_robustbench, no_downloads

    model, _ = salman
    madry = {"model": {f"module.model.{k}": v for k, v in model.model.state_dict().items()}, "epoch": 90}
    target = _place(tmp_path, madry)
    rb_utils = import_robustbench()
    with no_downloads(rb_utils, trust_checkpoint=False):  # the independent fact: the host says nothing
        random = rb_utils.load_model("Salman2020Do_R18", model_dir=str(tmp_path), dataset="imagenet",
                                     threat_model="Linf")
    assert not torch.equal(random.model.conv1.weight, model.model.conv1.weight)
    with pytest.raises(CheckpointError) as err:
        get_source("robustbench").load(IMAGENET, weights_dir=tmp_path)
    message = str(err.value)
    assert str(target) in message and f"robustbench:{IMAGENET}" in message
    assert "left at initialisation" in message and "model.conv1.weight" in message and "model.model" in message


@needs_robustbench
def test_imagenet_entry_refuses_another_architecture(salman, tmp_path):
    """An XCiT-like file (other key names) at a ResNet entry's path."""
    _place(tmp_path, {"patch_embed.proj.weight": torch.zeros(8, 3, 4, 4), "cls_token": torch.zeros(1, 1, 8)})
    with pytest.raises(CheckpointError, match="left at initialisation.*model.conv1.weight.*patch_embed"):
        get_source("robustbench").load(IMAGENET, weights_dir=tmp_path)


TIMM_ENTRY = "cifar10/Linf/Debenedetti2022Light_XCiT-S12"  # robustbench builds it with timm (pretrained=True)


@pytest.fixture(scope="module")
def xcit(tmp_path_factory):
    from ldr_plugin.sources._compat import import_robustbench

    import_robustbench()
    import timm

    torch.manual_seed(0)
    model = timm.create_model("debenedetti2022light_xcit_s12_cifar10_linf", num_classes=10, pretrained=False).eval()
    return model, tmp_path_factory.mktemp("torch_home")


def _hub_file(home):
    [(path, _)] = get_source("robustbench").required_files(TIMM_ENTRY, None)
    return path


@needs_robustbench
def test_timm_built_entry_loads_its_own_weights_and_refuses_a_partial_file(xcit, monkeypatch):
    import os
    from pathlib import Path

    model, home = xcit
    monkeypatch.setenv("TORCH_HOME", str(home))
    target = Path(_hub_file(home))
    assert str(target).startswith(str(home))
    target.parent.mkdir(parents=True, exist_ok=True)
    inner = model.model  # robustbench's timm entry: normalisation + the timm XCiT, whose weights the file holds
    torch.save(inner.state_dict(), target)
    loaded = get_source("robustbench").load(TIMM_ENTRY)
    x = torch.rand(2, 3, 32, 32)
    headless = copy.deepcopy(model)
    headless.model.head = nn.Identity()
    with torch.no_grad():
        torch.testing.assert_close(loaded.features(x, "penultimate"), headless(x))
    state = {k: v for k, v in inner.state_dict().items() if not k.startswith("head.")}
    os.remove(target)
    torch.save(state, target)
    with pytest.raises(CheckpointError, match="head.weight"):
        get_source("robustbench").load(TIMM_ENTRY)


@needs_robustbench
def test_timm_hub_payload_never_runs(xcit, tmp_path, monkeypatch):
    class Payload:
        def __reduce__(self):
            return (open, (str(tmp_path / "ran"), "w"))

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "home"))
    from pathlib import Path

    target = Path(_hub_file(tmp_path / "home"))
    target.parent.mkdir(parents=True)
    torch.save({"head.weight": Payload()}, target)
    with pytest.raises(CheckpointError, match="--trust-checkpoint"):
        get_source("robustbench").load(TIMM_ENTRY)
    assert not (tmp_path / "ran").exists()
