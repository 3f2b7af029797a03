"""LatentDR as a DomainBed algorithm (constructor, ``update``, ``predict``), one class per variant.

``LatentDR`` and its variants (:data:`~ldr_plugin.domainbed.variants.VARIANTS`) are generated on
first access (this module's ``__getattr__``, which entry points go through) on top of ERM chosen
then: DomainBed's own ``ERM`` when DomainBed is importable, so they are
``domainbed.algorithms.Algorithm`` subclasses like any other, else the host-free twin
(``LDR_BUILTIN_NETWORKS=1`` forces the twins). Importing this module never imports DomainBed.
The LatentDR parts are built with torch's global RNG forked, and draw their randomness from
their own generator, so with lambda_D = lambda_R = 0 the parameters, the global RNG and hence the
data order are exactly ERM's.

>>> from ldr_plugin.domainbed import algorithm
>>> algorithm.LatentDRNoise.__mro__[1].__name__
'LatentDR'
"""

from __future__ import annotations

import functools
import math
import os
from typing import Any

import torch
from torch import nn

from ldr_plugin.domainbed import twins
from ldr_plugin.domainbed.host import import_domainbed
from ldr_plugin.domainbed.networks import host_networks, with_network_defaults
from ldr_plugin.domainbed.variants import VARIANTS, variant_overrides
from ldr_plugin.latentdr.config import LatentDRConfig
from ldr_plugin.latentdr.module import LatentDR as LatentDRModule


def _last_avgpool(module: nn.Module) -> nn.Module | None:
    pools = [m for m in module.modules() if isinstance(m, nn.AdaptiveAvgPool2d)]
    return pools[-1] if pools else None


class LatentDRMixin:
    """The LatentDR part of the generated classes; ``super()`` is the ERM :func:`erm_base` chose."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, num_domains: int,
                 hparams: dict[str, Any]) -> None:
        # DomainBed's ERM reads these keys without defaults; the twin has the same defaults
        super().__init__(input_shape, num_classes, num_domains,
                         {"lr": 1e-3, "weight_decay": 0.0, **with_network_defaults(hparams)})
        options = {**LatentDRConfig.from_hparams(hparams).__dict__, **variant_overrides(type(self).__name__)}
        self.config = LatentDRConfig(**options)
        nonlinear = self.hparams.get("nonlinear_classifier", False)
        n_out = self.featurizer.n_outputs
        with torch.random.fork_rng(devices=[]):  # leaves the global RNG as ERM leaves it
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


def erm_base() -> type:
    """DomainBed's ``ERM`` when DomainBed is importable (and ``LDR_BUILTIN_NETWORKS`` is not ``1``),
    else the host-free twin: the base class of the LatentDR classes made now."""
    host = import_domainbed("domainbed.algorithms") if os.environ.get("LDR_BUILTIN_NETWORKS", "") != "1" else None
    return host.ERM if host is not None else twins.ERM


@functools.cache
def _classes(base: type) -> dict[str, type]:
    def make(name: str, bases: tuple[type, ...]) -> type:
        return type(name, bases, {"__doc__": VARIANTS[name].doc, "__module__": __name__, "__qualname__": name})

    latentdr = make("LatentDR", (LatentDRMixin, base))
    return {name: latentdr if name == "LatentDR" else make(name, (latentdr,)) for name in VARIANTS}


def algorithm_class(name: str) -> type:
    """The class of a LatentDR variant on today's :func:`erm_base` (the same object for the same base)."""
    variant_overrides(name)  # unknown names: an error with close matches
    return _classes(erm_base())[name]


def __getattr__(name: str) -> type:  # PEP 562: ``LatentDR``, ``LatentDRNoise``, ... made on first access
    if name in VARIANTS:
        return algorithm_class(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
