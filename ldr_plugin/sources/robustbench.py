"""RobustBench model zoo as a model source: ``robustbench:<dataset>/<threat_model>/<name>``.

Models are loaded with RobustBench's own ``load_model`` from a ``--weights-dir`` laid out as
RobustBench expects (``<dir>/<dataset>/<threat_model>/<name>.pt``, ensembles
``<name>.pt_m<i>.pt``; timm-backed entries and ImageNet ``Standard_R50`` read
``$TORCH_HOME/hub/checkpoints``). Presence is checked first and nothing is ever downloaded.
Layers: ``penultimate`` (input of the classification head, via a forward pre-hook) and ``logits``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ldr_plugin.errors import LdrError
from ldr_plugin.sources._compat import import_robustbench, no_downloads
from ldr_plugin.sources.base import (
    CheckpointError,
    LoadedModel,
    MissingFile,
    ModelSource,
    check_identifier,
    missing_files_message,
)
from ldr_plugin.sources.checkpoints import explain_load_error, sniff_checkpoint
from ldr_plugin.sources.heads import HookedClassifier, find_heads
from ldr_plugin.sources.loading import check_filled, guarded_load

NUM_CLASSES = {"cifar10": 10, "cifar100": 100, "imagenet": 1000}
LAYERS = ("penultimate", "logits")


def _hub_checkpoints() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


class RobustBenchSource(ModelSource):
    """The RobustBench zoo (``robustbench.model_zoo.model_dicts``), enumerated at run time."""

    name = "robustbench"
    layers = LAYERS

    def _zoo(self) -> Any:
        import_robustbench()
        from robustbench.model_zoo import model_dicts

        return model_dicts

    def list_ids(self) -> list[str]:
        """``<dataset>/<threat_model>/<name>`` for every zoo entry."""
        return [
            f"{ds.value}/{tm.value}/{name}"
            for ds, by_tm in self._zoo().items()
            for tm, entries in by_tm.items()
            for name in entries
        ]

    def entry(self, identifier: str) -> tuple[str, str, str, dict[str, Any]]:
        """(dataset, threat_model, name, zoo entry) of an identifier; unknown ids list close matches."""
        parts = identifier.split("/")
        if len(parts) != 3:
            raise LdrError(
                f"robustbench id '{identifier}' should be '<dataset>/<threat_model>/<name>', "
                "e.g. cifar10/Linf/Standard"
            )
        check_identifier(self.name, identifier, self.list_ids())
        dataset, threat_model, name = parts
        from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

        return dataset, threat_model, name, self._zoo()[BenchmarkDataset(dataset)][ThreatModel(threat_model)][name]

    def timm_name(self, dataset: str, threat_model: str, name: str) -> str | None:
        """The timm model RobustBench builds for this entry instead of a gdrive checkpoint, if any."""
        import timm

        candidate = f"{name.lower().replace('-', '_')}_{dataset}_{threat_model.lower()}"
        return candidate if timm.is_model(candidate) else None

    def required_files(self, identifier: str, weights_dir: str | Path | None) -> list[tuple[str, str]]:
        """(path, download id) of every file ``load_model`` reads for this entry."""
        dataset, threat_model, name, entry = self.entry(identifier)
        timm_name = self.timm_name(dataset, threat_model, name)
        if timm_name is not None:
            import timm

            url = timm.models.get_pretrained_cfg(timm_name).url
            return [(str(_hub_checkpoints() / os.path.basename(url)), url)]
        if dataset == "imagenet" and "Standard" in name:
            from torchvision.models import ResNet50_Weights

            url = ResNet50_Weights.IMAGENET1K_V1.url
            return [(str(_hub_checkpoints() / os.path.basename(url)), url)]
        base = Path(weights_dir or "<--weights-dir not given>") / dataset / threat_model / f"{name}.pt"
        gid = entry["gdrive_id"]
        if isinstance(gid, list):
            return [(f"{base}_m{i}.pt", f"gdrive:{g}") for i, g in enumerate(gid)]
        return [(str(base), f"gdrive:{gid}")]

    def check_available(self, ids: list[str], weights_dir: str | Path | None) -> list[MissingFile]:
        """Every required file that is absent, for all ``ids`` (checked before any model is built)."""
        return [
            MissingFile(f"robustbench:{ident}", path, download_id)
            for ident in ids
            for path, download_id in self.required_files(ident, weights_dir)
            if not Path(path).is_file()
        ]

    def load(
        self,
        identifier: str,
        *,
        weights_dir: str | Path | None = None,
        device: str | torch.device = "cpu",
        trust_checkpoint: bool = False,
    ) -> LoadedModel:
        """Load with ``robustbench.utils.load_model`` offline and hook the classification head(s)."""
        missing = self.check_available([identifier], weights_dir)
        if missing:
            raise CheckpointError(missing_files_message(missing))
        files = [path for path, _ in self.required_files(identifier, weights_dir)]
        for path in files:
            sniff_checkpoint(path)
        module = self._load_module(identifier, weights_dir, files, trust_checkpoint)
        return self._wrap(module, identifier, device, files)

    def build_random(self, identifier: str, *, device: str | torch.device = "cpu") -> LoadedModel:
        """The entry's architecture as ``load_model`` builds it, randomly initialised (no file read).

        For coverage checks: timm-backed entries via ``timm.create_model(pretrained=False)``, ImageNet
        ``Standard_R50`` as RobustBench's normalised torchvision ResNet-50 without its download.
        """
        dataset, threat_model, name, entry = self.entry(identifier)
        timm_name = self.timm_name(dataset, threat_model, name)
        if timm_name is not None:
            import timm

            module = timm.create_model(timm_name, num_classes=NUM_CLASSES[dataset], pretrained=False)
        elif dataset == "imagenet" and "Standard" in name:
            from robustbench.model_zoo import imagenet as rb_imagenet
            from robustbench.model_zoo.architectures.utils_architectures import normalize_model
            from torchvision.models import resnet50

            module = normalize_model(resnet50(weights=None), rb_imagenet.mu, rb_imagenet.sigma)
        else:
            try:
                module = entry["model"]()
            except RuntimeError as exc:  # e.g. Bai2023Improving_* build their parts on CUDA
                raise explain_load_error(exc, [], f"robustbench:{identifier}") from exc
        return self._wrap(module.eval(), identifier, device, [])

    def _wrap(self, module: torch.nn.Module, identifier: str, device: str | torch.device, files: list[str]
              ) -> LoadedModel:
        dataset, threat_model, name, entry = self.entry(identifier)
        model_id = f"robustbench:{identifier}"
        heads = find_heads(module, NUM_CLASSES[dataset])
        hooked = HookedClassifier(module, heads, model_id)
        transform, preprocessing = self._transform(dataset, threat_model, name, entry)
        module.to(device)
        return LoadedModel(
            model_id=model_id,
            module=module,
            transform=transform,
            layers=LAYERS,
            extract=hooked,
            preprocessing=preprocessing,
            detail={"heads": heads, "ensemble": len(heads) > 1, "files": files,
                    "hooked": f"input of {', '.join(heads)} (forward pre-hook)", "trained_on": dataset,
                    "input_size": [3, 32, 32] if dataset in ("cifar10", "cifar100") else None},
        )

    def _load_module(
        self, identifier: str, weights_dir: str | Path | None, files: list[str], trust: bool
    ) -> torch.nn.Module:
        rb_utils = import_robustbench()
        dataset, threat_model, name, _ = self.entry(identifier)
        try:
            with no_downloads(rb_utils, trust_checkpoint=trust), guarded_load(trust_checkpoint=trust) as log:
                module = rb_utils.load_model(
                    name, model_dir=str(weights_dir or "."), dataset=dataset, threat_model=threat_model
                )
        except LdrError:
            raise
        except Exception as exc:
            raise explain_load_error(exc, files, f"robustbench:{identifier}") from exc
        # load_model falls back to strict=False (ImageNet entries, a list of CIFAR ones): every
        # parameter and buffer but the normalisation constants must still come from the file
        check_filled(module, log, files, f"robustbench:{identifier}", allow_normalisation=True)
        return module.eval()

    def _transform(self, dataset: str, threat_model: str, name: str, entry: dict) -> tuple[Any, dict]:
        import_robustbench()
        from robustbench.data import get_preprocessing
        from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

        transform = get_preprocessing(
            BenchmarkDataset(dataset), ThreatModel(threat_model), name, entry.get("preprocessing")
        )
        described = {
            "host": "robustbench.data.get_preprocessing",
            "name": entry.get("preprocessing") or ("ToTensor" if dataset != "imagenet" else None),
            "transform": " ".join(repr(transform).split()),
            "normalisation": "inside the model",
        }
        return transform, described
