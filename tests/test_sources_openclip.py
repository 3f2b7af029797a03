"""OpenCLIP source on a tiny architecture registered with ``open_clip.add_model_config`` and a tag
trained with QuickGELU and its own preprocessing: the adapter applies both (open_clip alone does
not when given a file), loads offline from a weights dir or a pre-filled HF cache, and names bad
checkpoints."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

open_clip = pytest.importorskip("open_clip")
pytestmark = pytest.mark.openclip

from ldr_plugin.errors import UnknownNameError
from ldr_plugin.sources import get_source
from ldr_plugin.sources.base import CheckpointError

ARCH, TAG = "ldr-tiny-ViT", "tinytag"
IDENT = f"{ARCH}/{TAG}"
MEAN, STD = (0.1, 0.2, 0.3), (0.5, 0.4, 0.3)
CONFIG = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "patch_size": 8, "head_width": 16},
    "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 32, "heads": 2, "layers": 1},
}


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    """The tiny config in open_clip's registry and a QuickGELU tag with its own preprocessing."""
    from open_clip import pretrained as pretrained_module

    root = tmp_path_factory.mktemp("oc")
    (root / f"{ARCH}.json").write_text(json.dumps(CONFIG))
    open_clip.add_model_config(root / f"{ARCH}.json")
    pretrained_module._PRETRAINED[ARCH] = {TAG: pretrained_module._pcfg(
        hf_hub="ldr-test/tiny-clip/", quick_gelu=True, mean=MEAN, std=STD, interpolation="bilinear",
        resize_mode="squash")}
    torch.manual_seed(0)
    reference = open_clip.create_model(ARCH, force_quick_gelu=True).eval()
    weights = root / "weights"
    (weights / "openclip" / ARCH).mkdir(parents=True)
    torch.save(reference.state_dict(), weights / "openclip" / ARCH / f"{TAG}.pt")
    yield reference, weights
    pretrained_module._PRETRAINED.pop(ARCH, None)


def _image():
    torch.manual_seed(1)
    return Image.fromarray((torch.rand(40, 56, 3) * 255).byte().numpy())


def test_tag_is_listed_and_plan_reads_its_cfg(registered):
    assert IDENT in get_source("openclip").list_ids()
    plan = get_source("openclip").plan(IDENT)
    assert plan.quick_gelu and plan.create_kwargs()["force_quick_gelu"] is True
    assert plan.create_kwargs()["image_mean"] == MEAN


def test_features_match_reference_with_quickgelu_and_tag_preprocessing(registered):
    reference, weights = registered
    loaded = get_source("openclip").load(IDENT, weights_dir=weights)
    x = loaded.transform(_image()).unsqueeze(0)
    # independent preprocessing: squash-resize bilinear to 32x32, then the tag's mean/std
    tensor = torch.tensor(list(_image().resize((32, 32), Image.BILINEAR).getdata()), dtype=torch.float32)
    manual = ((tensor.reshape(32, 32, 3) / 255.0 - torch.tensor(MEAN)) / torch.tensor(STD)).permute(2, 0, 1)
    torch.testing.assert_close(x[0], manual, atol=2e-2, rtol=0)
    feats = loaded.extract(x, ("image_embeds", "image_embeds_raw"))
    with torch.no_grad():
        expected = reference.encode_image(x)
    torch.testing.assert_close(feats["image_embeds_raw"], expected)
    torch.testing.assert_close(feats["image_embeds"], F.normalize(expected, dim=-1))
    assert loaded.preprocessing["quick_gelu"] is True and loaded.preprocessing["mean"] == MEAN


def test_plain_open_clip_would_get_both_wrong(registered):
    """The two open_clip behaviours the adapter fixes, shown on the same file."""
    reference, weights = registered
    path = str(weights / "openclip" / ARCH / f"{TAG}.pt")
    plain, _, preprocess = open_clip.create_model_and_transforms(ARCH, pretrained=path)
    normalize = next(t for t in preprocess.transforms if type(t).__name__ == "Normalize")
    assert tuple(normalize.mean) != MEAN  # tag preprocessing ignored for a file path
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(plain.eval().encode_image(x), reference.encode_image(x))  # GELU, not QuickGELU


def test_prefilled_hf_cache(registered, tmp_path, monkeypatch):
    import huggingface_hub.constants as hf_constants

    reference, _weights = registered
    snapshot = tmp_path / "models--ldr-test--tiny-clip" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (tmp_path / "models--ldr-test--tiny-clip" / "refs").mkdir()
    (tmp_path / "models--ldr-test--tiny-clip" / "refs" / "main").write_text("abc123")
    torch.save(reference.state_dict(), snapshot / "open_clip_pytorch_model.bin")
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path))
    loaded = get_source("openclip").load(IDENT, weights_dir=None)
    assert loaded.detail["files"] == [str(snapshot / "open_clip_pytorch_model.bin")]
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded.features(x, "image_embeds_raw"), reference.encode_image(x))


def test_missing_html_and_wrong_architecture(registered, tmp_path, monkeypatch):
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "empty-hf"))
    source = get_source("openclip")
    with pytest.raises(CheckpointError, match="hf-hub:ldr-test/tiny-clip/open_clip_pytorch_model.bin") as err:
        source.load(IDENT, weights_dir=tmp_path)
    # six alternative places, any of which would do: one entry naming them all, not "6 files missing"
    assert "1 weights file(s) missing" in str(err.value) and "not in any of the 6 places searched" in str(err.value)
    assert str(tmp_path / "openclip" / ARCH / f"{TAG}.safetensors") in str(err.value)
    target = tmp_path / "openclip" / ARCH / f"{TAG}.pt"
    target.parent.mkdir(parents=True)
    target.write_text("<html><body>Too many requests</body></html>")
    with pytest.raises(CheckpointError, match="HTML page"):
        source.load(IDENT, weights_dir=tmp_path)
    state = dict(registered[0].state_dict())
    state["visual.proj"] = torch.zeros(32, 8)
    torch.save(state, target)
    with pytest.raises(CheckpointError, match="visual.proj"):
        source.load(IDENT, weights_dir=tmp_path)


def test_unknown_id_lists_close_matches():
    with pytest.raises(UnknownNameError, match="ViT-B-32/openai"):
        get_source("openclip").plan("ViT-B-32/opena")


def test_checkpoint_payload_never_runs(registered, tmp_path):
    """A pickle payload in an open_clip weights file: refused, the code never runs (issue 20.1)."""
    import pickle

    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (tmp_path / "openclip" / ARCH).mkdir(parents=True)
    with open(tmp_path / "openclip" / ARCH / f"{TAG}.pt", "wb") as handle:
        pickle.dump({"state_dict": {"x": Payload()}}, handle)  # a legacy (non-zip) torch file
    with pytest.raises(CheckpointError, match="--trust-checkpoint"):
        get_source("openclip").load(IDENT, weights_dir=tmp_path)
    assert not marker.exists()


def test_zero_shot_accuracy_equals_open_clip_by_hand(tmp_path):
    """Zero-shot top-1 from the scoring pass equals a hand computation with open_clip's text tower:
    per class, the mean of the normalised embeddings of the 80 OpenAI templates."""
    import numpy as np
    from open_clip import pretrained as pretrained_module
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

    from ldr_plugin.datasets.samples import ScoringData
    from ldr_plugin.scoring.extraction import extract

    arch, tag = "ldr-tiny-zs", "zs"
    config = {**CONFIG, "text_cfg": {**CONFIG["text_cfg"], "vocab_size": 49408, "context_length": 16}}
    (tmp_path / f"{arch}.json").write_text(json.dumps(config))
    open_clip.add_model_config(tmp_path / f"{arch}.json")
    pretrained_module._PRETRAINED[arch] = {tag: pretrained_module._pcfg(hf_hub="ldr-test/zs/")}
    try:
        torch.manual_seed(3)
        reference = open_clip.create_model(arch).eval()
        (tmp_path / "w" / "openclip" / arch).mkdir(parents=True)
        torch.save(reference.state_dict(), tmp_path / "w" / "openclip" / arch / f"{tag}.pt")
        loaded = get_source("openclip").load(f"{arch}/{tag}", weights_dir=tmp_path / "w")
        names = ["cat", "dog", "airplane"]
        torch.manual_seed(4)
        images = [Image.fromarray((torch.rand(32, 32, 3) * 255).byte().numpy()) for _ in range(12)]
        labels = np.arange(12) % 3
        data = ScoringData("test", "test", images, labels, names, np.arange(12), None, 0)
        got = extract(loaded, data, ("image_embeds_raw",), batch_size=5, progress=False)
        tokenizer = open_clip.get_tokenizer(arch)
        with torch.no_grad():
            weights = []
            for name in names:
                text = F.normalize(reference.encode_text(tokenizer([t(name) for t in OPENAI_IMAGENET_TEMPLATES])), dim=-1)
                weights.append(F.normalize(text.mean(0), dim=0))
            x = torch.stack([loaded.transform(im) for im in images])
            expected_scores = F.normalize(reference.encode_image(x), dim=-1) @ torch.stack(weights).T
        np.testing.assert_array_equal(got.predictions, expected_scores.argmax(1).numpy())
        assert got.accuracy["kind"].startswith("zero-shot top-1") and got.accuracy["layer"] == "image_embeds"
        head = loaded.head_for(names)  # the scores themselves, not only their argmax
        torch.testing.assert_close(head.scores(loaded.extract(x, ("image_embeds",))["image_embeds"]), expected_scores)
    finally:
        pretrained_module._PRETRAINED.pop(arch, None)


def test_torchscript_archive_needs_trust_and_then_loads(registered, tmp_path):
    """OpenAI's ~/.cache/clip/*.pt are TorchScript archives: refused with the --trust-checkpoint hint,
    loaded with it (open_clip takes the archive's state dict)."""
    reference, _ = registered
    x = torch.rand(1, 3, 32, 32)

    class Archive(torch.nn.Module):  # CLIP's modules and parameters, as an OpenAI archive holds them
        def __init__(self):
            super().__init__()
            for name, child in reference.named_children():
                setattr(self, name, child)
            for name, param in reference.named_parameters(recurse=False):
                setattr(self, name, param)

        def forward(self, image):
            return self.visual(image)

    traced = torch.jit.trace(Archive(), (x,), check_trace=False)
    assert set(traced.state_dict()) == set(reference.state_dict())
    target = tmp_path / "openclip" / ARCH / f"{TAG}.pt"
    target.parent.mkdir(parents=True)
    traced.save(str(target))
    with pytest.raises(CheckpointError, match="TorchScript archive.*--trust-checkpoint"):
        get_source("openclip").load(IDENT, weights_dir=tmp_path)
    loaded = get_source("openclip").load(IDENT, weights_dir=tmp_path, trust_checkpoint=True)
    with torch.no_grad():
        torch.testing.assert_close(loaded.extract(x, ("image_embeds_raw",))["image_embeds_raw"], reference.encode_image(x))
