"""RobustBench source: offline loading from RobustBench's own layout, hooks vs an independent
computation, and every bad-checkpoint case. Uses a real zoo entry (Ding2020MMA, WRN-28-4) with
random weights saved where RobustBench looks for them."""

from __future__ import annotations

import argparse
import copy
import importlib.util
from pathlib import Path

import pytest
import torch
from torch import nn

from ldr_plugin.errors import LdrError, UnknownNameError
from ldr_plugin.sources import ModelId, get_source, list_model_ids
from ldr_plugin.sources._compat import import_robustbench
from ldr_plugin.sources.base import CheckpointError
from ldr_plugin.sources.heads import HookedClassifier

pytestmark = [
    pytest.mark.robustbench,
    pytest.mark.skipif(importlib.util.find_spec("robustbench") is None, reason="robustbench not installed"),
]

ENTRY = "cifar10/Linf/Ding2020MMA"


def _zoo_module(dataset="cifar10", threat="Linf", name="Ding2020MMA") -> nn.Module:
    import_robustbench()
    from robustbench.model_zoo import model_dicts
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

    return model_dicts[BenchmarkDataset(dataset)][ThreatModel(threat)][name]["model"]()


@pytest.fixture(scope="module")
def reference_and_dir(tmp_path_factory):
    """A randomly initialised Ding2020MMA saved as RobustBench's loader expects it."""
    torch.manual_seed(0)
    model = _zoo_module().eval()
    root = tmp_path_factory.mktemp("rbweights")
    (root / "cifar10" / "Linf").mkdir(parents=True)
    torch.save({"state_dict": model.state_dict()}, root / "cifar10" / "Linf" / "Ding2020MMA.pt")
    return model, root


def test_list_ids_is_the_zoo():
    import_robustbench()
    from robustbench.model_zoo import model_dicts

    expected = {f"{d.value}/{t.value}/{n}" for d in model_dicts for t in model_dicts[d] for n in model_dicts[d][t]}
    ids = list_model_ids("robustbench")
    assert {i.split(":", 1)[1] for i in ids} == expected
    assert len(ids) == len(expected) > 100


def test_penultimate_matches_headless_forward(reference_and_dir):
    reference, root = reference_and_dir
    loaded = get_source("robustbench").load(ENTRY, weights_dir=root)
    x = torch.rand(5, 3, 32, 32)
    feats = loaded.extract(x, ("penultimate", "logits"))
    headless = copy.deepcopy(reference)
    headless.fc = nn.Identity()  # independent: the same layer by removing the head
    with torch.no_grad():
        torch.testing.assert_close(feats["penultimate"], headless(x))
        torch.testing.assert_close(feats["logits"], reference(x))
    assert feats["penultimate"].shape == (5, 256)
    assert loaded.detail["heads"] == ["fc"]
    assert loaded.preprocessing["name"] == "ToTensor"


def test_missing_checkpoint_lists_file_and_id_and_downloads_nothing(tmp_path):
    with pytest.raises(CheckpointError) as err:
        get_source("robustbench").load(ENTRY, weights_dir=tmp_path)
    msg = str(err.value)
    assert "Ding2020MMA.pt" in msg and "gdrive:19Q_rIIHXsYzxZ0WcZdqT-N2OD7MfgoZ0" in msg
    assert not any(tmp_path.rglob("*.pt"))


def test_check_available_lists_every_ensemble_member(tmp_path):
    missing = get_source("robustbench").check_available(["cifar10/Linf/Chen2020Adversarial"], tmp_path)
    assert [Path(m.path).name for m in missing] == [f"Chen2020Adversarial.pt_m{i}.pt" for i in range(3)]


def _write(tmp_path: Path, data: bytes) -> Path:
    target = tmp_path / "cifar10" / "Linf" / "Ding2020MMA.pt"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return target


def test_html_page_checkpoint(tmp_path):
    _write(tmp_path, b"<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title>")
    with pytest.raises(CheckpointError, match="HTML page"):
        get_source("robustbench").load(ENTRY, weights_dir=tmp_path)


def test_truncated_checkpoint(tmp_path, reference_and_dir):
    good = (reference_and_dir[1] / "cifar10" / "Linf" / "Ding2020MMA.pt").read_bytes()
    _write(tmp_path, good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        get_source("robustbench").load(ENTRY, weights_dir=tmp_path)


def test_wrong_architecture_names_the_mismatch(tmp_path, reference_and_dir):
    state = dict(reference_and_dir[0].state_dict())
    state["fc.weight"] = torch.zeros(7, 256)
    target = _write(tmp_path, b"")
    torch.save({"state_dict": state}, target)
    with pytest.raises(CheckpointError, match="state-dict mismatch.*fc.weight"):
        get_source("robustbench").load(ENTRY, weights_dir=tmp_path)


def test_unsafe_checkpoint_needs_trust(tmp_path, reference_and_dir):
    target = _write(tmp_path, b"")
    torch.save({"state_dict": reference_and_dir[0].state_dict(), "args": argparse.Namespace(lr=0.1)}, target)
    with pytest.raises(CheckpointError, match="--trust-checkpoint"):
        get_source("robustbench").load(ENTRY, weights_dir=tmp_path)
    loaded = get_source("robustbench").load(ENTRY, weights_dir=tmp_path, trust_checkpoint=True)
    assert loaded.features(torch.rand(2, 3, 32, 32)).shape == (2, 256)


def test_unknown_id_lists_close_matches():
    with pytest.raises(UnknownNameError, match="Ding2020MMA"):
        get_source("robustbench").entry("cifar10/Linf/Ding2020MM")
    with pytest.raises(LdrError, match="<dataset>/<threat_model>/<name>"):
        get_source("robustbench").entry("Ding2020MMA")
    with pytest.raises(UnknownNameError, match="robustbench"):
        ModelId.parse("robustbnch:cifar10/Linf/Standard")


class _TinyEnsemble(nn.Module):
    def __init__(self):
        super().__init__()
        self.models = nn.ModuleList(
            nn.Sequential(nn.Flatten(), nn.Linear(12, 6), nn.ReLU(), nn.Linear(6, 3)) for _ in range(2)
        )

    def forward(self, x):
        return sum(m(x) for m in self.models) / 2


def test_ensemble_heads_concatenate_member_features():
    torch.manual_seed(1)
    model = _TinyEnsemble().eval()
    hooked = HookedClassifier(model, ["models.0.3", "models.1.3"], "test:ensemble")
    x = torch.rand(4, 3, 2, 2)
    out = hooked(x, ("penultimate",))["penultimate"]
    expected = torch.cat([m[:3](x) for m in model.models], dim=1)
    torch.testing.assert_close(out, expected)


def test_pkg_resources_shim_does_not_leak(monkeypatch):
    """The import repair must not leave a partial pkg_resources for other code (pytest's monkeypatch uses it)."""
    import sys

    from ldr_plugin.sources._compat import import_robustbench

    import_robustbench()
    leaked = sys.modules.get("pkg_resources")
    assert leaked is None or not getattr(leaked, "__ldr_shim__", False)
    import robustbench.loaders

    assert hasattr(robustbench.loaders.pkg_resources, "resource_filename")
