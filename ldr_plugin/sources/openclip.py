"""OpenCLIP's pretrained models as a model source: ``openclip:<architecture>/<tag>``.

Two open_clip pitfalls are fixed here: it does not switch QuickGELU on for tags trained with it
(it only warns), and it ignores the tag's preprocessing (mean/std/interpolation/resize mode) when
``pretrained`` is a file path. The adapter reads the tag's ``get_pretrained_cfg`` and passes both
explicitly. Weights are read offline only: ``<weights-dir>/openclip/<arch>/<tag>.{pt,bin,safetensors}``,
the Hugging Face cache (``hf_hub`` file of the tag) or open_clip's URL cache (``~/.cache/clip``).
Layers: ``image_embeds`` (``encode_image``, L2-normalised) and ``image_embeds_raw`` (unnormalised).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ldr_plugin.errors import LdrError
from ldr_plugin.sources.base import (
    AccuracyHead,
    CheckpointError,
    LoadedModel,
    MissingFile,
    ModelSource,
    check_identifier,
    missing_files_message,
)
from ldr_plugin.sources.checkpoints import explain_load_error, sniff_checkpoint
from ldr_plugin.sources.loading import check_filled, guarded_load

LAYERS = ("image_embeds", "image_embeds_raw")
EXTENSIONS = (".pt", ".bin", ".safetensors", ".pth")
PREPROCESS_KEYS = {"mean": "image_mean", "std": "image_std", "interpolation": "image_interpolation",
                   "resize_mode": "image_resize_mode"}


def _open_clip() -> Any:
    try:
        import open_clip
    except ImportError as exc:
        raise LdrError("the openclip source needs open_clip_torch: pip install 'ldr-plugin[openclip]'") from exc
    return open_clip


@dataclass
class OpenCLIPPlan:
    """How one (architecture, tag) is built: model config name, QuickGELU, the tag's preprocessing."""

    architecture: str
    tag: str
    model_name: str
    quick_gelu: bool
    preprocess: dict[str, Any] = field(default_factory=dict)
    hf_hub: str = ""
    url: str = ""

    def create_kwargs(self) -> dict[str, Any]:
        kwargs = {PREPROCESS_KEYS[k]: v for k, v in self.preprocess.items()}
        return {"force_quick_gelu": self.quick_gelu and not self.model_name.endswith("-quickgelu"), **kwargs}


class OpenCLIPSource(ModelSource):
    """``open_clip.list_pretrained()`` pairs, loaded offline with the tag's own settings."""

    name = "openclip"
    layers = LAYERS

    def list_ids(self) -> list[str]:
        return [f"{arch}/{tag}" for arch, tag in _open_clip().list_pretrained()]

    def plan(self, identifier: str) -> OpenCLIPPlan:
        """The tag's pretrained cfg turned into explicit create arguments (unknown ids list close matches)."""
        if "/" not in identifier:
            raise LdrError(f"openclip id '{identifier}' should be '<architecture>/<tag>', e.g. ViT-B-32/openai")
        check_identifier(self.name, identifier, self.list_ids())
        arch, tag = identifier.split("/", 1)
        cfg = _open_clip().get_pretrained_cfg(arch, tag) or {}
        preprocess = {k: cfg[k] for k in PREPROCESS_KEYS if cfg.get(k) is not None}
        return OpenCLIPPlan(arch, tag, arch, bool(cfg.get("quick_gelu", False)) or arch.endswith("-quickgelu"),
                            preprocess, cfg.get("hf_hub", ""), cfg.get("url", ""))

    def candidates(self, identifier: str, weights_dir: str | Path | None) -> list[tuple[str, str]]:
        """(path, download id) places where the tag's weights may be, in the order they are tried."""
        plan = self.plan(identifier)
        out = []
        if weights_dir is not None:
            base = Path(weights_dir) / "openclip" / plan.architecture / plan.tag
            out += [(str(base) + ext, f"openclip:{identifier}") for ext in EXTENSIONS]
        if plan.hf_hub:
            repo_id, filename = os.path.split(plan.hf_hub)  # 'org/repo/file' or 'org/repo/' (default file)
            for name in ([filename] if filename else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]):
                cached = _hf_cached(repo_id, name)
                out.append((cached or f"<HF cache>/{repo_id}/{name}", f"hf-hub:{repo_id}/{name}"))
        if plan.url:
            out.append((os.path.join(os.path.expanduser("~/.cache/clip"), os.path.basename(plan.url)), plan.url))
        return out

    def required_files(self, identifier: str, weights_dir: str | Path | None) -> list[tuple[str, str]]:
        present = [c for c in self.candidates(identifier, weights_dir) if Path(c[0]).is_file()]
        return present[:1] or self.candidates(identifier, weights_dir)[:1]

    def check_available(self, ids: list[str], weights_dir: str | Path | None) -> list[MissingFile]:
        missing = []
        for ident in ids:
            places = self.candidates(ident, weights_dir)
            if not any(Path(p).is_file() for p, _ in places):  # one entry per model: any place would do
                downloads = ", ".join(dict.fromkeys(d for _, d in places))
                missing.append(MissingFile(f"openclip:{ident}", places[0][0], downloads, tuple(p for p, _ in places)))
        return missing

    def load(self, identifier: str, *, weights_dir: str | Path | None = None, device: str | torch.device = "cpu",
             trust_checkpoint: bool = False) -> LoadedModel:
        """Create the model from a local file with the tag's QuickGELU and preprocessing; never downloads."""
        missing = self.check_available([identifier], weights_dir)
        if missing:
            raise CheckpointError(missing_files_message(missing))
        path = self.required_files(identifier, weights_dir)[0][0]
        sniff_checkpoint(path)
        try:
            return self._create(identifier, path, device, trust_checkpoint)
        except LdrError:
            raise
        except Exception as exc:
            raise explain_load_error(exc, [path], f"openclip:{identifier}") from exc

    def build_random(self, identifier: str, *, device: str | torch.device = "cpu") -> LoadedModel:
        """The architecture with the tag's settings and random weights (coverage checks; no file read)."""
        return self._create(identifier, None, device, False)

    def estimated_params_m(self, identifier: str) -> float | None:
        """Rough parameter count (millions) from the model config (12·layers·width² per tower)."""
        cfg = _open_clip().get_model_config(self.plan(identifier).model_name)
        if not cfg:
            return None
        total = 0.0
        for tower in ("vision_cfg", "text_cfg"):
            sub = cfg.get(tower, {})
            layers, width = sub.get("layers"), sub.get("width")
            if isinstance(layers, int) and isinstance(width, int):
                total += 12 * layers * width * width
        return total / 1e6 or None

    def _create(self, identifier: str, path: str | None, device: str | torch.device, trust: bool) -> LoadedModel:
        plan = self.plan(identifier)
        with guarded_load(trust_checkpoint=trust) as log:
            model, _, preprocess = _open_clip().create_model_and_transforms(
                plan.model_name, pretrained=path, device=device, pretrained_hf=False,
                load_weights_only=not trust, **plan.create_kwargs(),
            )
        if path is not None:
            check_filled(model, log, [path], f"openclip:{identifier}")
        model.eval()

        @torch.no_grad()
        def extract(images: torch.Tensor, layers: tuple[str, ...]) -> dict[str, torch.Tensor]:
            raw = model.encode_image(images).float()
            out = {"image_embeds_raw": raw.cpu(), "image_embeds": F.normalize(raw, dim=-1).cpu()}
            return {k: out[k] for k in layers}

        preprocessing = {
            "host": "open_clip.create_model_and_transforms (tag's pretrained cfg applied explicitly)",
            "quick_gelu": plan.quick_gelu, **plan.preprocess,
            "image_size": getattr(model.visual, "image_size", None),
            "transform": re.sub(r" at 0x[0-9a-f]+", "", " ".join(repr(preprocess).split())),
        }
        return LoadedModel(f"openclip:{identifier}", model, preprocess, LAYERS, extract, preprocessing,
                           {"files": [path] if path else [], "model_name": plan.model_name,
                            "hooked": "encode_image (output)"},
                           accuracy_head=lambda names: zero_shot_head(model, plan.model_name, names, device))


def zero_shot_head(model: Any, model_name: str, class_names: list[str], device: str | torch.device) -> AccuracyHead:
    """Zero-shot classifier of ``class_names`` (CLIP_benchmark's convention: open_clip's
    ``build_zero_shot_classifier`` over the 80 OpenAI ImageNet templates); ImageNet's 1000 wnid
    folder names are replaced by open_clip's ImageNet class names (same order)."""
    open_clip = _open_clip()
    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES, OPENAI_IMAGENET_TEMPLATES

    if len(class_names) == 1000 and all(re.fullmatch(r"n\d{8}", c) for c in class_names):
        class_names = list(IMAGENET_CLASSNAMES)
    with torch.no_grad():
        weights = open_clip.build_zero_shot_classifier(
            model, tokenizer=open_clip.get_tokenizer(model_name), classnames=class_names,
            templates=OPENAI_IMAGENET_TEMPLATES, num_classes_per_batch=10, device=device, use_tqdm=False,
        ).float().cpu()
    return AccuracyHead("image_embeds", lambda z: z.float() @ weights,
                        f"zero-shot top-1 (class names x open_clip's {len(OPENAI_IMAGENET_TEMPLATES)} OpenAI "
                        "ImageNet templates)")


def _hf_cached(repo_id: str, filename: str) -> str | None:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    found = try_to_load_from_cache(repo_id, filename)
    return found if isinstance(found, str) else None
