"""Host-free inter-domain Mixup twin of DomainBed's ``Mixup`` (same RNG calls), for the built-in loop only."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ldr_plugin.domainbed.erm import ERM


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
