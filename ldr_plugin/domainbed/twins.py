"""Host-free twins of DomainBed's ``ERM`` and ``Mixup`` (same contract, same RNG calls), for the
built-in loop when DomainBed is absent, and LatentDR's base class then.

Never registered into ``domainbed.algorithms`` (DomainBed's own classes are never shadowed).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

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
