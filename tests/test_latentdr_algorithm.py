"""LatentDR as a DomainBed algorithm: ERM equivalence, variants, bad input, hyperparameters."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from ldr_plugin.domainbed import algorithm as A
from ldr_plugin.domainbed.erm import ERM
from ldr_plugin.domainbed.hparams import _seed_hash_builtin, latentdr_hparams
from ldr_plugin.errors import LdrError
from ldr_plugin.latentdr.config import VARIANTS

BASE = {"lr": 1e-3, "weight_decay": 0.0, "nonlinear_classifier": False, "mlp_width": 32, "mlp_depth": 3,
        "mlp_dropout": 0.0}
SHAPES = [(1, 28, 28), (10,)]


def _minibatches(shape, n_domains=3, per_domain=4, num_classes=3):
    """Drawn from torch's global RNG, so any RNG consumed by an algorithm changes the data."""
    return [(torch.randn(per_domain, *shape), torch.randint(0, num_classes, (per_domain,)))
            for _ in range(n_domains)]


def _train(cls, shape, hparams, steps=3, seed=0):
    torch.manual_seed(seed)
    algo = cls(shape, 3, 3, hparams)
    logs = [algo.update(_minibatches(shape)) for _ in range(steps)]
    return algo, logs, torch.get_rng_state()


def _same_params(a, b):
    pa, pb = dict(a.network.named_parameters()), dict(b.network.named_parameters())
    return pa.keys() == pb.keys() and all(torch.equal(pa[k], pb[k]) for k in pa)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("mode", ["pooled", "spatial", "noise"])
def test_zero_lambdas_reproduce_erm_bitwise(shape, mode):
    hp = {**BASE, "ldr_lambda_d": 0.0, "ldr_lambda_r": 0.0, "ldr_mode": mode}
    erm, _, rng_erm = _train(ERM, shape, BASE)
    ldr, logs, rng_ldr = _train(A.LatentDR, shape, hp)
    assert _same_params(erm, ldr)
    assert torch.equal(rng_erm, rng_ldr)  # data order in a training loop stays ERM's
    assert "acc_restored" in logs[-1]  # diagnostics still computed, without gradient


def test_positive_lambdas_train_differently_but_leave_global_rng_alone():
    erm, _, rng_erm = _train(ERM, (1, 28, 28), BASE)
    ldr, _, rng_ldr = _train(A.LatentDR, (1, 28, 28), BASE)
    assert not _same_params(erm, ldr)
    assert torch.equal(rng_erm, rng_ldr)


def test_same_seed_same_run():
    a, la, _ = _train(A.LatentDR, (10,), BASE, seed=3)
    b, lb, _ = _train(A.LatentDR, (10,), BASE, seed=3)
    assert _same_params(a, b) and la == lb


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_variants_construct_update_predict(name, shape):
    cls = getattr(A, name)
    algo, logs, _ = _train(cls, shape, {**BASE, **{k: v[0] for k, v in latentdr_hparams(name, "X", 0).items()}})
    assert all(type(v) is float for log in logs for v in log.values())
    assert {"loss", "loss_clean", "skipped_step"} <= logs[-1].keys()
    if VARIANTS[name].get("use_degradation", True):
        assert {"loss_degraded", "attention_entropy", "mean_beta", "acc_degraded"} <= logs[-1].keys()
    if VARIANTS[name].get("use_restoration", True):
        assert {"loss_restored", "acc_restored"} <= logs[-1].keys()
    assert algo.predict(torch.randn(2, *shape)).shape == (2, 3)


def test_nan_loss_is_reported_and_step_skipped():
    torch.manual_seed(0)
    algo = A.LatentDR((10,), 3, 3, BASE)
    before = {k: v.clone() for k, v in algo.state_dict().items()}
    mb = _minibatches((10,))
    mb[0][0][0, 0] = float("nan")
    log = algo.update(mb)
    assert math.isnan(log["loss"]) and log["skipped_step"] == 1.0
    after = algo.state_dict()
    counters = {"latentdr.num_updates", "latentdr.class_counts"}  # the step was seen (and counted)
    assert all(torch.equal(before[k], after[k]) for k in before if k not in counters)  # no parameter or bank change
    assert int(after["latentdr.num_updates"]) == 1
    assert algo.update(_minibatches((10,)))["skipped_step"] == 0.0


def test_degenerate_batches_single_domain_one_sample_same_label():
    torch.manual_seed(0)
    algo = A.LatentDRCrossDomain((10,), 3, 1, BASE)
    log = algo.update([(torch.randn(1, 10), torch.tensor([1]))])  # one domain, one sample
    assert log["skipped_step"] == 0.0 and log["rows_without_partners"] == 1.0
    log = A.LatentDR((10,), 3, 1, BASE).update([(torch.randn(6, 10), torch.full((6,), 2))])
    assert math.isfinite(log["loss"]) and log["skipped_step"] == 0.0


def test_bank_buffers_in_state_dict_and_filled_after_steps():
    algo, _, _ = _train(A.LatentDR, (10,), BASE, steps=2)
    state = algo.state_dict()
    assert "latentdr.bank.memory" in state and int(state["latentdr.bank.count"]) == 24


def test_hparams_deterministic_python_scalars_and_forced_variants():
    for name in VARIANTS:
        for seed in (0, 1, 7):
            hp = latentdr_hparams(name, "RotatedDigits", seed)
            assert hp == latentdr_hparams(name, "RotatedDigits", seed)
            json.dumps(hp)
            for default, rand in hp.values():
                assert type(default) in (bool, int, float, str) and type(rand) is type(default)
    a, b = latentdr_hparams("LatentDR", "D", 1), latentdr_hparams("LatentDR", "D", 2)
    assert a["ldr_lambda_d"][1] != b["ldr_lambda_d"][1]
    lam = [latentdr_hparams("LatentDR", "D", s)["ldr_lambda_r"][1] for s in range(200)]
    assert 0.1 <= min(lam) and max(lam) <= 10**0.5 and np.ptp(np.log10(lam)) > 1.2
    noise = latentdr_hparams("LatentDRNoise", "D", 5)
    assert noise["ldr_mode"] == ("noise", "noise")
    with pytest.raises(LdrError, match="LatentDRNoise"):
        latentdr_hparams("LatentDRNoize", "D", 0)


def test_seed_hash_builtin_matches_md5_reference():
    import hashlib

    ref = int(hashlib.md5(str((3, "ldr_tau")).encode()).hexdigest(), 16) % 2**31
    assert _seed_hash_builtin(3, "ldr_tau") == ref


@pytest.mark.domainbed
def test_seed_hash_agrees_with_domainbed():
    from domainbed.lib.misc import seed_hash

    for args in [(0, "ldr_tau"), (12345, "lr"), (7, "ldr_bank_size")]:
        assert _seed_hash_builtin(*args) == seed_hash(*args)


@pytest.mark.domainbed
@pytest.mark.parametrize("shape", SHAPES)
def test_zero_lambdas_reproduce_domainbed_erm_bitwise(shape):
    from domainbed import algorithms

    hp = {**BASE, "ldr_lambda_d": 0.0, "ldr_lambda_r": 0.0}
    erm, _, rng_erm = _train(algorithms.ERM, shape, BASE)
    ldr, _, rng_ldr = _train(A.LatentDR, shape, hp)
    assert _same_params(erm, ldr) and torch.equal(rng_erm, rng_ldr)


@pytest.mark.domainbed
@pytest.mark.parametrize("shape", SHAPES)
def test_builtin_networks_match_domainbed_init(shape, monkeypatch):
    from domainbed import algorithms

    erm_host, _, _ = _train(algorithms.ERM, shape, BASE, steps=1)
    monkeypatch.setenv("LDR_BUILTIN_NETWORKS", "1")
    erm_twin, _, _ = _train(ERM, shape, BASE, steps=1)
    assert type(erm_twin.featurizer).__module__ == "ldr_plugin.domainbed.networks"
    assert _same_params(erm_host, erm_twin)


def test_spatial_variant_uses_the_featurizer_map_on_images(monkeypatch):
    from ldr_plugin.latentdr import degradation as D

    seen = []
    real = D.spatial_degradation
    monkeypatch.setattr(D, "spatial_degradation", lambda fmap, *a: seen.append(fmap.shape) or real(fmap, *a))
    _train(A.LatentDRSpatial, (1, 28, 28), BASE, steps=1)
    assert seen == [(12, 14 * 14, 128)]


@pytest.mark.domainbed
def test_mixup_twin_matches_domainbed_mixup_bitwise():
    from domainbed import algorithms

    from ldr_plugin.domainbed.mixup import Mixup

    hp = {**BASE, "mixup_alpha": 0.2}
    runs = []
    for cls in (algorithms.Mixup, Mixup):
        np.random.seed(0)
        runs.append(_train(cls, (10,), hp)[0])
    assert _same_params(*runs)


def test_mixup_twin_updates():
    from ldr_plugin.domainbed.mixup import Mixup

    np.random.seed(0)
    _, logs, _ = _train(Mixup, (10,), {**BASE, "mixup_alpha": 0.2})
    assert all(type(v["loss"]) is float and math.isfinite(v["loss"]) for v in logs)
