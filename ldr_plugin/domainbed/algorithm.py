"""LatentDR as a DomainBed algorithm (constructor, ``update``, ``predict``) plus its ablation variants.

The featurizer/classifier are DomainBed's own (``domainbed.networks``) when importable, else the
host-free twins; the choice is made lazily in the constructor. The LatentDR parts are built with
torch's global RNG forked, and draw their randomness from their own generator, so with
lambda_D = lambda_R = 0 the parameters, the global RNG and hence the data order are exactly ERM's.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ldr_plugin.domainbed.erm import ERM
from ldr_plugin.latentdr.config import LatentDRConfig, variant_overrides
from ldr_plugin.latentdr.fingerprint import input_fingerprint
from ldr_plugin.latentdr.module import LatentDR as LatentDRModule

TRAINING_ONLY_PREFIX = "latentdr."  # restoration block, key bank, extra heads: not needed to predict


def _last_avgpool(module: nn.Module) -> nn.Module | None:
    pools = [m for m in module.modules() if isinstance(m, nn.AdaptiveAvgPool2d)]
    return pools[-1] if pools else None


def gather_replica_maps(maps: dict[str, torch.Tensor], order: list[str], device: torch.device) -> torch.Tensor | None:
    """The feature maps one forward produced, concatenated in batch order on ``device``.

    Under ``nn.DataParallel`` each replica (one per device) runs the pooling hook on its chunk of
    the batch; the chunks are in the order of the wrapper's ``device_ids``, as its outputs are.
    """
    if not maps:
        return None
    keys = [k for k in order if k in maps] + [k for k in maps if k not in order]
    return torch.cat([maps[k].to(device) for k in keys])


class LatentDR(ERM):
    """ERM plus latent degradation (soft labels) and cross-attention restoration on a shared classifier."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, num_domains: int,
                 hparams: dict[str, Any]) -> None:
        super().__init__(input_shape, num_classes, num_domains, hparams)
        options = {**LatentDRConfig.from_hparams(hparams).__dict__, **variant_overrides(type(self).__name__)}
        self.config = LatentDRConfig(**options)
        nonlinear = self.hparams.get("nonlinear_classifier", False)
        n_out = self.featurizer.n_outputs
        with torch.random.fork_rng(devices=[]):  # leaves the global RNG as ERM leaves it
            from ldr_plugin.domainbed.networks import host_networks

            nets = host_networks()
            self.latentdr = LatentDRModule(
                n_out, num_classes, self.config,
                head_factory=lambda: nets.Classifier(n_out, num_classes, nonlinear),
            )
        self._feature_maps: dict[str, torch.Tensor] = {}
        pool = _last_avgpool(self.featurizer) if self.config.mode == "spatial" else None
        if pool is not None:
            pool.register_forward_hook(self._keep_feature_map)
        self.optimizer = torch.optim.Adam(
            list(self.network.parameters()) + list(self.latentdr.parameters()),
            lr=self.hparams.get("lr", 1e-3), weight_decay=self.hparams.get("weight_decay", 0.0))

    def _keep_feature_map(self, module, inputs, output) -> None:
        fmap = inputs[0]  # one call per replica under nn.DataParallel, each with its chunk
        self._feature_maps[str(fmap.device)] = fmap.flatten(2).transpose(1, 2)  # [B, H*W, C]

    def _feature_map(self, device: torch.device) -> torch.Tensor | None:
        ids = getattr(self.featurizer, "device_ids", None) or []
        order = [str(torch.device("cuda", i)) if isinstance(i, int) else str(torch.device(i)) for i in ids]
        return gather_replica_maps(self._feature_maps, order, device)

    def update(self, minibatches, unlabeled=None) -> dict[str, float]:
        """One step on ``[(x, y), ...]`` (one pair per training domain); a non-finite loss skips the step.

        One host synchronisation: the loss terms and diagnostics are read together, once.
        """
        all_x = torch.cat([x for x, _ in minibatches])
        all_y = torch.cat([y for _, y in minibatches])
        domains = torch.cat([torch.full((len(y),), i, dtype=torch.long, device=y.device)
                             for i, (_, y) in enumerate(minibatches)])
        fingerprints = input_fingerprint(all_x)
        self._feature_maps = {}
        z = self.featurizer(all_x)
        logits = self.classifier(z)
        out = self.latentdr(z, all_y, self.classifier, clean_logits=logits, domains=domains,
                            feature_map=self._feature_map(z.device), fingerprints=fingerprints)
        self._feature_maps = {}
        result = out.scalars()
        finite = math.isfinite(result["loss"])
        result["skipped_step"] = 0.0 if finite else 1.0
        self.optimizer.zero_grad()
        if finite:
            out.total.backward()
            self.optimizer.step()
            self.latentdr.enqueue(z, fingerprints, all_y)
        return result

    def inference_state_dict(self) -> dict[str, torch.Tensor]:
        """The state needed to predict (featurizer and classifier): ``g(f(x))`` only, no training-only parts.

        The restoration block (33.6 M parameters at d = 2048), the key bank and the extra heads
        exist only for training; :meth:`load_state_dict` accepts this smaller state.
        """
        return {k: v for k, v in self.state_dict().items() if not k.startswith(TRAINING_ONLY_PREFIX)}

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Load a full state (to resume) or an inference-only one (:meth:`inference_state_dict`).

        An inference-only state must fill every parameter and buffer of the featurizer and the
        classifier; the training-only parts keep their initial values.
        """
        if any(k.startswith(TRAINING_ONLY_PREFIX) for k in state_dict) or not strict:
            return super().load_state_dict(state_dict, strict=strict, assign=assign)
        result = super().load_state_dict(state_dict, strict=False, assign=assign)
        missing = [k for k in result.missing_keys if not k.startswith(TRAINING_ONLY_PREFIX)]
        if missing or result.unexpected_keys:
            raise RuntimeError(
                f"Error(s) in loading state_dict for {type(self).__name__}: "
                f"missing keys {missing[:5]}, unexpected keys {result.unexpected_keys[:5]}")
        return result


def export_inference_checkpoint(source: str | Path, destination: str | Path) -> Path:
    """Write a copy of a LatentDR run's ``model.pkl`` (or ``model_step*.pkl``) without its training-only state.

    DomainBed's keys are kept (``args``, ``model_hparams``, ...), ``model_dict`` loses the
    ``latentdr.*`` entries and ``inference_only`` is set; ``ldr score domainbed:`` and
    :meth:`LatentDR.load_state_dict` read either form. Example::

        export_inference_checkpoint("runs/abc/model.pkl", "runs/abc/model_inference.pkl")
    """
    from ldr_plugin.results.atomic import atomic_write_with

    save = torch.load(source, map_location="cpu", weights_only=True)
    save = {**save, "inference_only": True,
            "model_dict": {k: v for k, v in save["model_dict"].items() if not k.startswith(TRAINING_ONLY_PREFIX)}}
    destination = Path(destination)
    atomic_write_with(destination, lambda handle: torch.save(save, handle))
    return destination


def _variant(name: str, doc: str) -> type:
    return type(name, (LatentDR,), {"__doc__": doc, "__module__": __name__})


LatentDRNoise = _variant("LatentDRNoise", "Ablation: Gaussian noise instead of sample-aware attention.")
LatentDRSpatial = _variant("LatentDRSpatial", "Variant: spatial degradation on the featurizer's last map.")
LatentDRDegradeOnly = _variant("LatentDRDegradeOnly", "Ablation: degradation only (no restoration).")
LatentDRRestoreOnly = _variant("LatentDRRestoreOnly", "Ablation: restoration only, on clean latents.")
LatentDRSeparateHeads = _variant("LatentDRSeparateHeads", "Ablation: separate classifiers per branch.")
LatentDRBatchBank = _variant("LatentDRBatchBank", "Variant: keys from the current batch, self masked.")
LatentDRCrossDomain = _variant("LatentDRCrossDomain", "Variant: degradation partners from other domains only.")
LatentDRLongTail = _variant("LatentDRLongTail", "Variant: the long-tail mode (class-balanced attention, logit adjustment).")
LatentDRDelayed = _variant("LatentDRDelayed", "Variant: delayed start (ERM for ldr_start_step steps, default 1000).")
