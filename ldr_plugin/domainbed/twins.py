"""Host-free twins of DomainBed's ``ERM`` and ``Mixup`` (same contract, same RNG calls), and the ERM
our registered algorithms build on.

The twins serve the built-in loop when DomainBed is absent and are never registered into
``domainbed.algorithms`` (DomainBed's own classes are never shadowed). Our registered algorithms
(LatentDR and its variants, the ERM controls) are made by :func:`on_erm` on :func:`erm_base`: DomainBed's
own ``ERM`` when DomainBed is importable, so they are ``domainbed.algorithms.Algorithm`` subclasses,
else the twin; chosen at first use, so importing them never imports DomainBed.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ldr_plugin.domainbed.host import import_domainbed
from ldr_plugin.domainbed.networks import host_networks, with_network_defaults


class ERM(nn.Module):
    """Empirical risk minimisation: featurizer + classifier, Adam, cross-entropy on all domains."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, num_domains: int,
                 hparams: dict[str, Any]) -> None:
        super().__init__()
        self.hparams = hparams
        hp = with_network_defaults(hparams)
        nets = host_networks()
        self.featurizer = nets.Featurizer(input_shape, hp)
        self.classifier = nets.Classifier(self.featurizer.n_outputs, num_classes, hp["nonlinear_classifier"])
        self.network = nn.Sequential(self.featurizer, self.classifier)
        self.optimizer = torch.optim.Adam(self.network.parameters(), lr=hp.get("lr", 1e-3),
                                          weight_decay=hp.get("weight_decay", 0.0))

    def update(self, minibatches, unlabeled=None) -> dict[str, float]:
        """One Adam step on the concatenated minibatches ``[(x, y), ...]``; returns ``{'loss': float}``."""
        all_x = torch.cat([x for x, _ in minibatches])
        all_y = torch.cat([y for _, y in minibatches])
        loss = F.cross_entropy(self.predict(all_x), all_y)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return {"loss": loss.item()}

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for inputs ``x``."""
        return self.network(x)


class Mixup(ERM):
    """Inter-domain Mixup (DomainBed's ``Mixup``): mix random pairs of domain minibatches, Beta(alpha, alpha)."""

    def update(self, minibatches, unlabeled=None) -> dict[str, float]:
        objective = 0.0
        perm = torch.randperm(len(minibatches)).tolist()
        alpha = self.hparams.get("mixup_alpha", 0.2)
        for i in range(len(minibatches)):
            (xi, yi), (xj, yj) = minibatches[perm[i]], minibatches[perm[(i + 1) % len(minibatches)]]
            n = min(len(xi), len(xj))
            lam = np.random.beta(alpha, alpha)
            pred = self.predict(lam * xi[:n] + (1 - lam) * xj[:n])
            objective = objective + lam * F.cross_entropy(pred, yi[:n]) + (1 - lam) * F.cross_entropy(pred, yj[:n])
        objective = objective / len(minibatches)
        self.optimizer.zero_grad()
        objective.backward()
        self.optimizer.step()
        return {"loss": objective.item()}


def erm_base() -> type:
    """DomainBed's ``ERM`` when DomainBed is importable (and ``LDR_BUILTIN_NETWORKS`` is not ``1``), else
    the twin: the base class of the registered algorithms made now."""
    host = import_domainbed("domainbed.algorithms") if os.environ.get("LDR_BUILTIN_NETWORKS", "") != "1" else None
    return host.ERM if host is not None else ERM


class ERMDefaults:
    """Completes the hparams an algorithm is made with: DomainBed's ``ERM`` reads ``lr``,
    ``weight_decay`` and the network keys without defaults; these are the twin's."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, num_domains: int,
                 hparams: dict[str, Any]) -> None:
        super().__init__(input_shape, num_classes, num_domains,
                         {"lr": 1e-3, "weight_decay": 0.0, **with_network_defaults(hparams)})


def on_erm(mixin: type, name: str, module: str, base: type | None = None) -> type:
    """The class ``name`` (of ``module``, doc from ``mixin``): ``mixin`` on today's :func:`erm_base` (or
    on ``base``), the same class object each time for the same base."""
    return _made(mixin, name, module, base or erm_base())


@functools.cache
def _made(mixin: type, name: str, module: str, base: type) -> type:
    bases = (mixin, base) if issubclass(mixin, ERMDefaults) else (mixin, ERMDefaults, base)
    return type(name, bases, {"__doc__": mixin.__doc__, "__module__": module, "__qualname__": name})
