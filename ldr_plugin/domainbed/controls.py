"""ERM controls a reviewer asks for next to LatentDR: label smoothing, weight decay, logit adjustment.

LatentDR's degraded branch trains on soft labels, which regularises like label smoothing; its
gains must be measured against ERM with the regularisers a reviewer would name. These are
DomainBed-interface algorithms (declared under ``domainbed.algorithms`` / ``domainbed.hparams``,
so DomainBed's own ``train`` / ``sweep`` run them too), built on the same featurizer and classifier
as ERM; only the loss (or the weight decay) differs:

- ``ERMLabelSmoothing``: cross-entropy with label smoothing ``label_smoothing`` (default 0.1).
- ``ERMWeightDecay``: ERM whose ``weight_decay`` is drawn from DomainBed's range for
  non-small-image datasets, ``10**U(-6, -2)`` (the embedded digits take DomainBed's small-image
  keys, where it is fixed at 0); default 1e-4, the log-midpoint. Choose it by model selection over
  ``hparams_seed``, with the other keys fixed by ``--hparams``.
- ``ERMLogitAdjusted``: the logit-adjusted loss of Menon et al. (2021), ``CE(g(f(x)) + log π̂, y)``
  with π̂ the running class frequencies of the training batches (add-one smoothed); prediction is
  ``g(f(x))``. The standard long-tail baseline.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ldr_plugin.domainbed.erm import ERM


class ERMLabelSmoothing(ERM):
    """ERM with label-smoothed cross-entropy (``label_smoothing``, default 0.1)."""

    def update(self, minibatches, unlabeled=None) -> dict[str, float]:
        all_x = torch.cat([x for x, _ in minibatches])
        all_y = torch.cat([y for _, y in minibatches])
        loss = F.cross_entropy(self.predict(all_x), all_y, label_smoothing=self.hparams.get("label_smoothing", 0.1))
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return {"loss": loss.item()}


class ERMWeightDecay(ERM):
    """ERM; only its hyperparameters differ (``weight_decay`` from DomainBed's large-image range)."""


class ERMLogitAdjusted(ERM):
    """ERM with the logit-adjusted loss (Menon et al. 2021) under the running class prior."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, num_domains: int,
                 hparams: dict[str, Any]) -> None:
        super().__init__(input_shape, num_classes, num_domains, hparams)
        self.register_buffer("class_counts", torch.zeros(num_classes))

    def update(self, minibatches, unlabeled=None) -> dict[str, float]:
        all_x = torch.cat([x for x, _ in minibatches])
        all_y = torch.cat([y for _, y in minibatches])
        self.class_counts += F.one_hot(all_y, len(self.class_counts)).sum(0).to(self.class_counts.dtype)
        counts = self.class_counts + 1.0
        log_prior = torch.log(counts / counts.sum())
        loss = F.cross_entropy(self.predict(all_x).float() + log_prior, all_y)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return {"loss": loss.item()}


def controls_hparams(algorithm: str, dataset: str, random_seed: int) -> dict[str, tuple[Any, Any]]:
    """``{name: (default, random)}`` of a control, drawn with DomainBed's per-name seeding."""
    from ldr_plugin.training.hparams import seed_hash

    def draw(name: str, fn) -> Any:
        return fn(np.random.RandomState(seed_hash(random_seed, name)))

    if algorithm == "ERMLabelSmoothing":
        return {"label_smoothing": (0.1, 0.1)}
    if algorithm == "ERMWeightDecay":
        return {"weight_decay": (1e-4, float(draw("weight_decay", lambda r: 10 ** r.uniform(-6, -2))))}
    return {}
