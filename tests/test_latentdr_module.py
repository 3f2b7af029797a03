"""LatentDR module: degradation, key bank, restoration, loss — against brute-force references."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ldr_plugin.errors import LdrError
from ldr_plugin.latentdr import LatentDR, LatentDRConfig
from ldr_plugin.latentdr import degradation as D
from ldr_plugin.latentdr.key_bank import KeyBank
from ldr_plugin.latentdr.loss import soft_cross_entropy
from ldr_plugin.latentdr.restoration import Restoration, heads_dividing


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _batch(b=10, d=8, c=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, d, generator=g), torch.randint(0, c, (b,), generator=g)


def test_partner_mask_never_self_and_never_empty():
    eligible = D.eligible_partners(9, None, cross_domain=False)
    keep = D.partner_mask(eligible, keep_prob=0.02, generator=_gen(), max_redraws=2)
    assert not keep.diagonal().any()
    assert keep.any(dim=1).all()  # re-drawn, then forced
    keep_all = D.partner_mask(eligible, keep_prob=1.0, generator=_gen())
    assert torch.equal(keep_all, eligible)


def test_partner_mask_keep_rate_matches_probability():
    eligible = D.eligible_partners(200, None, cross_domain=False)
    keep = D.partner_mask(eligible, keep_prob=0.3, generator=_gen())
    assert abs(keep.sum().item() / eligible.sum().item() - 0.3) < 0.01


def test_cross_domain_partners_only_from_other_domains():
    domains = torch.tensor([0, 0, 1, 1, 2, 2])
    keep = D.partner_mask(D.eligible_partners(6, domains, True), 1.0, _gen())
    same = domains[:, None] == domains[None, :]
    assert not (keep & same).any() and keep[~same].all()


def test_partner_attention_matches_brute_force_softmax():
    z, _ = _batch()
    keep = D.partner_mask(D.eligible_partners(10, None, False), 0.5, _gen(3))
    attn = D.partner_attention(z, keep, tau=0.1).numpy()
    zn = z.numpy() / np.linalg.norm(z.numpy(), axis=1, keepdims=True)
    for i in range(10):
        js = np.flatnonzero(keep[i].numpy())
        s = np.array([zn[i] @ zn[j] / 0.1 for j in js])
        w = np.exp(s - s.max()) / np.exp(s - s.max()).sum()
        ref = np.zeros(10)
        ref[js] = w
        np.testing.assert_allclose(attn[i], ref, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(attn.sum(1), 1.0, rtol=1e-6)
    assert np.all(np.diag(attn) == 0)


def test_pooled_degradation_mixes_values_and_labels():
    z, y = _batch()
    z.requires_grad_(True)
    y1 = F.one_hot(y, 3)
    keep = D.partner_mask(D.eligible_partners(10, None, False), 0.5, _gen(1))
    deg = D.pooled_degradation(z, y1, keep, 0.1, 0.5, _gen(2))
    a = torch.diag(deg.beta) + (1 - deg.beta)[:, None] * deg.attention
    assert torch.allclose(a.sum(1), torch.ones(10))
    assert ((deg.beta >= 0) & (deg.beta <= 0.5)).all()
    assert torch.allclose(deg.z, a @ z.detach(), atol=1e-6)
    assert torch.allclose(deg.soft_labels, a @ y1.float(), atol=1e-6)
    assert torch.allclose(deg.soft_labels.sum(1), torch.ones(10))
    # gradient flows through the values only: d(sum z~)/dz = column sums of the (constant) A
    deg.z.sum().backward()
    assert torch.allclose(z.grad, a.sum(0)[:, None].expand(-1, 8), atol=1e-6)


def test_batch_of_one_is_identity_degradation():
    z, y = _batch(b=1)
    deg = D.pooled_degradation(z, F.one_hot(y, 3), D.eligible_partners(1, None, False), 0.1, 0.5, _gen())
    assert torch.equal(deg.z, z) and deg.beta.item() == 1.0 and deg.attention_entropy() == 0.0
    assert torch.equal(deg.soft_labels, F.one_hot(y, 3).float())


def test_all_same_label_keeps_hard_labels():
    z, _ = _batch()
    y1 = F.one_hot(torch.full((10,), 2), 3)
    keep = D.partner_mask(D.eligible_partners(10, None, False), 0.5, _gen())
    deg = D.pooled_degradation(z, y1, keep, 0.1, 0.5, _gen())
    assert torch.allclose(deg.soft_labels, y1.float())


def test_spatial_degradation_matches_loop_reference():
    g = torch.Generator().manual_seed(5)
    fmap, y = torch.randn(6, 4, 5, generator=g), torch.randint(0, 3, (6,), generator=g)
    y1 = F.one_hot(y, 3).float()
    keep = D.partner_mask(D.eligible_partners(6, None, False), 0.5, _gen())
    deg = D.spatial_degradation(fmap, y1, keep, 0.1, 0.5, _gen(7))
    # replay the generator: beta draws then the position mask
    g2 = _gen(7)
    beta = torch.rand(6, generator=g2) * 0.5
    replaced = torch.rand(6, 4, generator=g2) >= beta[:, None]
    for i in range(6):
        rows = [sum(deg.attention[i, j] * fmap[j, q] for j in range(6)) if replaced[i, q] else fmap[i, q]
                for q in range(4)]
        assert torch.allclose(deg.z[i], torch.stack(rows).mean(0), atol=1e-6)
        f = replaced[i].float().mean()
        assert torch.allclose(deg.soft_labels[i], (1 - f) * y1[i] + f * (deg.attention[i] @ y1), atol=1e-6)


def test_noise_degradation_keeps_labels():
    z, y = _batch()
    deg = D.noise_degradation(z, F.one_hot(y, 3), 1.0, _gen())
    assert torch.equal(deg.soft_labels, F.one_hot(y, 3).float()) and not torch.equal(deg.z, z)


def _rows(t):
    return sorted(map(tuple, t.tolist()))


def test_key_bank_fifo_partial_fill_and_wrap():
    bank = KeyBank(2, 5)
    assert bank.keys()[0].shape == (0, 2)
    rows = torch.arange(16.0).view(8, 2)
    fps = torch.arange(8) + 100
    bank.enqueue(rows[:3], fps[:3], torch.arange(3))
    keys, key_fps, key_labels = bank.keys()
    assert bank.filled == 3 and torch.equal(keys, rows[:3]) and key_fps.tolist() == [100, 101, 102]
    assert key_labels.tolist() == [0, 1, 2]
    bank.enqueue(rows[3:7], fps[3:7])  # wraps: keeps the last five (slot order is not arrival order)
    keys, key_fps, key_labels = bank.keys()
    assert bank.filled == 5 and _rows(keys) == _rows(rows[2:7])
    assert sorted(key_fps.tolist()) == list(range(102, 107))
    assert dict(zip(key_fps.tolist(), key_labels.tolist()))[102] == 2  # a label stays with its latent
    bank.enqueue(torch.arange(100.0, 120.0).view(10, 2))  # bigger than the bank, no fingerprints
    keys, key_fps, _ = bank.keys()
    assert _rows(keys) == _rows(torch.arange(110.0, 120.0).view(5, 2)) and key_fps.tolist() == [-1] * 5
    assert set(dict(bank.named_buffers())) == {"memory", "fingerprints", "labels", "ptr", "count"}


def test_key_bank_state_round_trip_and_old_state_without_fingerprints():
    bank = KeyBank(2, 4)
    bank.enqueue(torch.ones(3, 2), torch.tensor([7, 8, 9]))
    other = KeyBank(2, 4)
    other.load_state_dict(bank.state_dict())
    assert other.filled == 3 and other.keys()[1].tolist() == [7, 8, 9]
    old = {k: v for k, v in bank.state_dict().items() if k not in ("fingerprints", "labels")}
    other = KeyBank(2, 4)
    other.load_state_dict(old)  # saved before fingerprints existed: loads, nothing known
    assert other.filled == 3 and other.keys()[1].tolist() == [-1, -1, -1]


def test_restoration_shapes_and_errors():
    r = Restoration(16, heads=8)
    q, k = torch.randn(5, 16), torch.randn(7, 16)
    assert r(q, k).shape == (5, 16)
    assert r(q, k[:0]).shape == (5, 16)  # no keys: MLP block only
    with pytest.warns(UserWarning, match="not divisible by heads=8; using 5 heads"):
        odd = Restoration(255, heads=8)  # DomainBed's random MLP widths are arbitrary integers
    assert odd.heads == 5 and odd.attn.num_heads == 5 and odd(torch.randn(2, 255), torch.randn(3, 255)).shape == (2, 255)
    assert [heads_dividing(d, 8) for d in (512, 497, 10, 7, 1)] == [8, 7, 5, 7, 1]


def test_identity_init_restoration_starts_as_identity():
    q, k = torch.randn(5, 16), torch.randn(7, 16)
    assert torch.equal(Restoration(16, heads=4, init="identity")(q, k), q)


def test_restoration_attends_only_to_unmasked_keys():
    r = Restoration(8, heads=2)
    q, k = torch.randn(3, 8), torch.randn(3, 8)
    mask = torch.eye(3, dtype=torch.bool)
    out = r(q, k, mask)
    k2 = k.clone()
    k2[0] = torch.randn(8) * 5  # query 0 must not see key 0
    assert torch.allclose(r(q, k2, mask)[0], out[0], atol=1e-5)
    assert not torch.allclose(r(q, k2, mask)[1], out[1], atol=1e-3)


def test_soft_cross_entropy_equals_ce_on_one_hot():
    logits, y = torch.randn(6, 4), torch.randint(0, 4, (6,))
    assert torch.allclose(soft_cross_entropy(logits, F.one_hot(y, 4).float()), F.cross_entropy(logits, y))


@pytest.mark.parametrize("cfg", [
    {}, {"mode": "noise"}, {"mode": "spatial"}, {"partners": "cross_domain"}, {"bank": "batch"},
    {"use_restoration": False}, {"use_degradation": False}, {"shared_classifier": False},
])
def test_module_variants_run_and_backprop(cfg):
    torch.manual_seed(0)
    z, y = _batch(b=12, d=16, c=4)
    z.requires_grad_(True)
    g = torch.nn.Linear(16, 4)
    ldr = LatentDR(16, 4, LatentDRConfig(**cfg), head_factory=lambda: torch.nn.Linear(16, 4), seed=0)
    fmap = z.detach()[:, None, :].repeat(1, 3, 1) + 0 * z[:, None, :]
    out = ldr(z, y, g, domains=torch.arange(12) % 3, feature_map=fmap)
    out.total.backward()
    assert torch.isfinite(out.total) and z.grad is not None
    assert all(v.dim() == 0 for v in out.diagnostics.values())
    scalars = out.scalars()
    assert all(type(v) is float for v in scalars.values()) and scalars["loss"] == out.total.item()
    ldr.enqueue(z)


def test_zero_lambdas_give_plain_cross_entropy_graph():
    z, y = _batch(b=12, d=16, c=4)
    z.requires_grad_(True)
    g = torch.nn.Linear(16, 4)
    out = LatentDR(16, 4, LatentDRConfig(lambda_d=0.0, lambda_r=0.0), seed=0)(z, y, g)
    ref = F.cross_entropy(g(z), y)
    assert torch.equal(out.total, ref)
    assert not out.terms["loss_degraded"].requires_grad and "acc_restored" in out.diagnostics


def test_single_domain_cross_domain_means_no_degradation():
    z, y = _batch(b=6, d=16, c=4)
    ldr = LatentDR(16, 4, LatentDRConfig(partners="cross_domain"), seed=0)
    out = ldr(z, y, torch.nn.Linear(16, 4), domains=torch.zeros(6, dtype=torch.long))
    assert out.scalars()["rows_without_partners"] == 6.0 and out.scalars()["mean_beta"] == 1.0


def test_bank_fallback_before_first_enqueue_and_batch_of_one():
    ldr = LatentDR(16, 4, seed=0)
    z, y = _batch(b=1, d=16, c=4)
    out = ldr(z, y, torch.nn.Linear(16, 4))
    assert out.scalars()["restoration_keys"] == 0.0 and torch.isfinite(out.total)
    ldr.enqueue(torch.randn(3, 16))
    assert ldr(z, y, torch.nn.Linear(16, 4)).scalars()["restoration_keys"] == 3.0


def test_config_rejects_bad_values():
    with pytest.raises(LdrError, match="mode"):
        LatentDRConfig(mode="pool")
    with pytest.raises(LdrError, match="keep_prob"):
        LatentDRConfig(keep_prob=0.0)
    with pytest.raises(LdrError, match="both False"):
        LatentDRConfig(use_degradation=False, use_restoration=False)
    with pytest.raises(LdrError, match="head_factory"):
        LatentDR(8, 2, LatentDRConfig(shared_classifier=False))
    assert LatentDRConfig.from_hparams(LatentDRConfig(tau=0.3).to_hparams()) == LatentDRConfig(tau=0.3)


def test_warmup_ramps_the_auxiliary_weights():
    z, y = _batch(b=12, d=16, c=4)
    g = torch.nn.Linear(16, 4)
    ldr = LatentDR(16, 4, LatentDRConfig(warmup_steps=4, use_restoration=False), seed=0)
    for k in range(6):
        out = ldr(z, y, g)
        expected = out.terms["loss_clean"] + min(1.0, (k + 1) / 4) * out.terms["loss_degraded"]
        assert torch.allclose(out.total, expected)
        ldr.enqueue(z)
