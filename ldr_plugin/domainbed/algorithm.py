"""LatentDR as a DomainBed algorithm (constructor, ``update``, ``predict``) plus its ablation variants.

The featurizer/classifier are DomainBed's own (``domainbed.networks``) when importable, else the
host-free twins; the choice is made lazily in the constructor. The LatentDR parts are built with
torch's global RNG forked, and draw their randomness from their own generator, so with
lambda_D = lambda_R = 0 the parameters, the global RNG and hence the data order are exactly ERM's.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ldr_plugin.domainbed.twins import ERM
from ldr_plugin.latentdr.config import LatentDRConfig, variant_overrides
from ldr_plugin.latentdr.module import LatentDR as LatentDRModule


def _last_avgpool(module: nn.Module) -> nn.Module | None:
    pools = [m for m in module.modules() if isinstance(m, nn.AdaptiveAvgPool2d)]
    return pools[-1] if pools else None


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
        self._feature_map: torch.Tensor | None = None
        pool = _last_avgpool(self.featurizer) if self.config.mode == "spatial" else None
        if pool is not None:
            pool.register_forward_hook(self._keep_feature_map)
        self.optimizer = torch.optim.Adam(
            list(self.network.parameters()) + list(self.latentdr.parameters()),
            lr=self.hparams.get("lr", 1e-3), weight_decay=self.hparams.get("weight_decay", 0.0))

    def _keep_feature_map(self, module, inputs, output) -> None:
        fmap = inputs[0]
        self._feature_map = fmap.flatten(2).transpose(1, 2)  # [B, H*W, C]

    def update(self, minibatches, unlabeled=None) -> dict[str, float]:
        """One step on ``[(x, y), ...]`` (one pair per training domain); a non-finite loss skips the step."""
        all_x = torch.cat([x for x, _ in minibatches])
        all_y = torch.cat([y for _, y in minibatches])
        domains = torch.cat([torch.full((len(y),), i, dtype=torch.long) for i, (_, y) in enumerate(minibatches)])
        self._feature_map = None
        z = self.featurizer(all_x)
        logits = self.classifier(z)
        out = self.latentdr(z, all_y, self.classifier, clean_logits=logits, domains=domains,
                            feature_map=self._feature_map)
        self._feature_map = None
        result = {"loss": out.total.item(), **{k: v.item() for k, v in out.terms.items()}, **out.diagnostics}
        finite = math.isfinite(result["loss"])
        result["skipped_step"] = 0.0 if finite else 1.0
        self.optimizer.zero_grad()
        if finite:
            out.total.backward()
            self.optimizer.step()
            self.latentdr.enqueue(z)
        return result


def _variant(name: str, doc: str) -> type:
    return type(name, (LatentDR,), {"__doc__": doc, "__module__": __name__})


LatentDRNoise = _variant("LatentDRNoise", "Ablation: Gaussian noise instead of sample-aware attention.")
LatentDRSpatial = _variant("LatentDRSpatial", "Variant: spatial degradation on the featurizer's last map.")
LatentDRDegradeOnly = _variant("LatentDRDegradeOnly", "Ablation: degradation only (no restoration).")
LatentDRRestoreOnly = _variant("LatentDRRestoreOnly", "Ablation: restoration only, on clean latents.")
LatentDRSeparateHeads = _variant("LatentDRSeparateHeads", "Ablation: separate classifiers per branch.")
LatentDRBatchBank = _variant("LatentDRBatchBank", "Variant: keys from the current batch, self masked.")
LatentDRCrossDomain = _variant("LatentDRCrossDomain", "Variant: degradation partners from other domains only.")
