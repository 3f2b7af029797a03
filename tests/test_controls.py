"""ERM controls for the study: label smoothing, weight decay, logit adjustment (against references)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ldr_plugin.domainbed.controls import ERMLabelSmoothing, ERMLogitAdjusted, ERMWeightDecay, controls_hparams
from ldr_plugin.domainbed.erm import ERM

BASE = {"lr": 1e-3, "weight_decay": 0.0, "nonlinear_classifier": False, "mlp_width": 16, "mlp_depth": 3,
        "mlp_dropout": 0.0}


def _batches(seed):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(6, 10, generator=g), torch.randint(0, 3, (6,), generator=g)) for _ in range(2)]


def _params(algo):
    return [p.detach().clone() for p in algo.network.parameters()]


def test_label_smoothing_zero_is_erm_and_point_one_is_torch_smoothing():
    torch.manual_seed(0)
    erm = ERM((10,), 3, 2, BASE)
    torch.manual_seed(0)
    ls0 = ERMLabelSmoothing((10,), 3, 2, {**BASE, "label_smoothing": 0.0})
    for s in range(3):
        erm.update(_batches(s))
        ls0.update(_batches(s))
    assert all(torch.equal(a, b) for a, b in zip(_params(erm), _params(ls0)))
    torch.manual_seed(0)
    ls = ERMLabelSmoothing((10,), 3, 2, {**BASE, "label_smoothing": 0.1})
    mb = _batches(9)
    x, y = torch.cat([b[0] for b in mb]), torch.cat([b[1] for b in mb])
    with torch.no_grad():
        logp = F.log_softmax(ls.predict(x), 1)
        target = torch.full_like(logp, 0.1 / 3) + 0.9 * F.one_hot(y, 3)
        expected = float(-(target * logp).sum(1).mean())
    assert math.isclose(ls.update(mb)["loss"], expected, rel_tol=1e-6)


def test_logit_adjusted_loss_uses_the_running_prior():
    torch.manual_seed(0)
    algo = ERMLogitAdjusted((10,), 3, 2, BASE)
    first, second = _batches(1), _batches(2)
    algo.update(first)
    x, y = torch.cat([b[0] for b in second]), torch.cat([b[1] for b in second])
    counts = torch.bincount(torch.cat([b[1] for b in first + second]), minlength=3).float() + 1
    with torch.no_grad():
        expected = float(F.cross_entropy(algo.predict(x) + torch.log(counts / counts.sum()), y))
    assert math.isclose(algo.update(second)["loss"], expected, rel_tol=1e-6)
    assert "class_counts" in algo.state_dict()


def test_weight_decay_control_draws_from_domainbeds_range():
    draws = [controls_hparams("ERMWeightDecay", "RotatedDigitsFlat", s)["weight_decay"] for s in range(200)]
    assert all(d == 1e-4 for d, _ in draws)
    values = [r for _, r in draws]
    assert 1e-6 <= min(values) and max(values) <= 1e-2 and max(values) / min(values) > 1e3
    assert controls_hparams("ERMWeightDecay", "X", 3) == controls_hparams("ERMWeightDecay", "X", 3)
    assert controls_hparams("ERMLabelSmoothing", "X", 5) == {"label_smoothing": (0.1, 0.1)}
    torch.manual_seed(0)
    algo = ERMWeightDecay((10,), 3, 2, {**BASE, "weight_decay": 1e-3})
    assert algo.optimizer.param_groups[0]["weight_decay"] == 1e-3
