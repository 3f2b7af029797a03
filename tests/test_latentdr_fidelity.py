"""LatentDR fidelity (issue 15): no sample meets its own input, delayed start, long-tail mode,
strict hparams, few host syncs, bf16 autocast, DataParallel spatial maps, inference-only export."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ldr_plugin.domainbed import algorithm as A
from ldr_plugin.domainbed.erm import ERM
from ldr_plugin.errors import LdrError
from ldr_plugin.latentdr import LatentDR, LatentDRConfig
from ldr_plugin.latentdr import degradation as D
from ldr_plugin.latentdr.config import VARIANTS
from ldr_plugin.latentdr.fingerprint import input_fingerprint

BASE = {"lr": 1e-3, "weight_decay": 0.0, "nonlinear_classifier": False, "mlp_width": 32, "mlp_depth": 3,
        "mlp_dropout": 0.0}


# ---- fingerprints ---------------------------------------------------------------------------------

def test_fingerprint_equal_rows_equal_whatever_the_batch_and_distinct_otherwise():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, 3, 7, 7, generator=g)
    fp = input_fingerprint(x)
    assert len(set(fp.tolist())) == 50  # distinct inputs, distinct fingerprints
    perm = torch.randperm(50, generator=g)
    assert torch.equal(input_fingerprint(x[perm]), fp[perm])  # position in the batch does not matter
    assert torch.equal(input_fingerprint(x[7:8]), fp[7:8])  # nor the batch size
    assert torch.equal(input_fingerprint(x.to(torch.bfloat16)), input_fingerprint(x.to(torch.bfloat16).float()))
    y = x.clone()
    y[3, 0, 0, 0] = torch.nextafter(y[3, 0, 0, 0], torch.tensor(10.0))  # one ulp in one value
    assert input_fingerprint(y)[3] != fp[3] and torch.equal(input_fingerprint(y)[4:], fp[4:])
    assert (fp >= 0).all()


def test_fingerprint_matches_an_independent_modular_hash():
    from ldr_plugin.latentdr import fingerprint as FP

    x = torch.randn(4, 9)
    bits = x.view(torch.int32).tolist()
    coef = FP._coefficients_for(9, torch.device("cpu")).tolist()
    expected = []
    for row in bits:
        h = [sum((b % FP.PRIME) * c for b, c in zip(row, coef[k])) % FP.PRIME for k in range(2)]
        expected.append(h[0] * FP.PRIME + h[1])  # Python integers: no overflow anywhere
    assert input_fingerprint(x).tolist() == expected


def test_large_inputs_are_hashed_at_fixed_positions_equal_inputs_always_match():
    from ldr_plugin.latentdr import fingerprint as FP

    x = torch.randn(3, 3, 64, 64)  # 12,288 values > MAX_VALUES
    fp = input_fingerprint(x)
    assert len(set(fp.tolist())) == 3 and torch.equal(input_fingerprint(x[[2, 0]]), fp[[2, 0]])
    pos = FP._positions_for(x[0].numel(), torch.device("cpu"))
    assert len(pos) == FP.MAX_VALUES and len(set(pos.tolist())) == FP.MAX_VALUES
    hashed = torch.zeros(x[0].numel(), dtype=torch.bool)
    hashed[pos] = True
    y = x.clone().flatten(1)
    y[0, (~hashed).nonzero()[0]] += 1.0  # a change where nothing is hashed: masks more, never less
    y[1, pos[0]] += 1.0  # a change at a hashed position: a new fingerprint
    fy = input_fingerprint(y.view_as(x))
    assert fy[0] == fp[0] and fy[1] != fp[1]


# ---- no sample meets its own input ---------------------------------------------------------------

def _dup_batch(b=12, d=16, c=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, d, generator=g)
    x[b // 2:] = x[: b - b // 2]  # every input twice, as a with-replacement loader can draw it
    y = torch.randint(0, c, (b,), generator=g)
    y[b // 2:] = y[: b - b // 2]
    return x, y


def test_partners_exclude_every_copy_of_the_sample():
    x, _ = _dup_batch()
    fp = input_fingerprint(x)
    eligible = D.eligible_partners(12, fingerprints=fp)
    keep = D.partner_mask(eligible, 1.0, torch.Generator().manual_seed(0))
    same = fp[:, None] == fp[None, :]
    assert not (keep & same).any() and keep[~same].all()
    # without fingerprints the copies are partners: the guard is what the fingerprints add
    assert (D.partner_mask(D.eligible_partners(12), 1.0, torch.Generator()) & same).any()


def test_zero_self_mass_with_duplicates_in_batch_and_bank():
    x, y = _dup_batch()
    fp = input_fingerprint(x)
    g = torch.nn.Linear(16, 4)
    ldr = LatentDR(16, 4, LatentDRConfig(bank_size=64), seed=0)
    z = x * 2  # a stand-in featurizer: equal inputs give equal latents
    first = ldr(z, y, g, fingerprints=fp)  # empty bank: keys = the batch, copies masked
    assert first.scalars()["restoration_self_mass"] == 0.0
    ldr.enqueue(z, fp, y)
    second = ldr(z, y, g, fingerprints=fp)  # every query's input sits twice in the bank
    s = second.scalars()
    assert s["restoration_self_mass"] == 0.0 and s["restoration_keys"] == 12.0
    # the same bank without the fingerprints' mask puts mass on the sample's own latents
    keys, key_fps, _ = ldr.bank.keys()
    _, weights = ldr.restoration.restore(z, keys, None)
    assert ((weights * (fp[:, None] == key_fps[None, :])).sum(1) > 0.05).all()


def test_batch_bank_masks_copies_and_all_same_input_means_no_partners_and_no_keys():
    x, y = _dup_batch()
    fp = input_fingerprint(x)
    ldr = LatentDR(16, 4, LatentDRConfig(bank="batch"), seed=0)
    assert ldr(x, y, torch.nn.Linear(16, 4), fingerprints=fp).scalars()["restoration_self_mass"] == 0.0
    same = torch.randn(1, 16).expand(6, -1).clone()  # a batch of one image drawn six times
    labels = torch.full((6,), 2)
    out = ldr(same, labels, torch.nn.Linear(16, 4), fingerprints=input_fingerprint(same))
    s = out.scalars()
    assert s["rows_without_partners"] == 6.0 and s["mean_beta"] == 1.0 and s["soft_label_purity"] == 1.0
    assert s["restoration_self_mass"] == 0.0 and math.isfinite(s["loss"])


def test_fingerprint_collision_only_masks_more():
    collide = torch.tensor([5, 5, 6, 7, 8, 9])  # samples 0 and 1 differ but share a fingerprint
    keep = D.partner_mask(D.eligible_partners(6, fingerprints=collide), 1.0, torch.Generator())
    assert not keep[0, 1] and not keep[1, 0] and keep[0, 2:].all()  # masked too much, nothing else
    assert not keep.diagonal().any()
    ldr = LatentDR(16, 4, LatentDRConfig(bank_size=8), seed=0)
    ldr.enqueue(torch.randn(6, 16), collide, torch.arange(6) % 4)
    _, mask, same = ldr._keys(torch.randn(6, 16), torch.arange(6) % 4, collide)
    assert torch.equal(mask, collide[:, None] == collide[None, :]) and torch.equal(same, mask.float())


def test_algorithm_update_reports_zero_self_mass_on_duplicated_minibatches():
    torch.manual_seed(0)
    algo = A.LatentDR((10,), 3, 2, {**BASE, "ldr_bank_size": 16})
    base = torch.randn(4, 10)
    for _ in range(4):  # the same four images every step: the bank fills with their copies
        log = algo.update([(base, torch.tensor([0, 1, 2, 0])), (base.clone(), torch.tensor([0, 1, 2, 0]))])
        assert log["restoration_self_mass"] == 0.0
    assert log["rows_without_partners"] == 0.0 and log["restoration_keys"] == 16.0


# ---- delayed start --------------------------------------------------------------------------------

def _minibatches(shape=(10,), n_domains=3, per_domain=4, num_classes=3):
    return [(torch.randn(per_domain, *shape), torch.randint(0, num_classes, (per_domain,)))
            for _ in range(n_domains)]


def _same_params(a, b):
    pa, pb = dict(a.network.named_parameters()), dict(b.network.named_parameters())
    return all(torch.equal(pa[k], pb[k]) for k in pa)


@pytest.mark.parametrize("name", ["LatentDR", "LatentDRSpatial", "LatentDRNoise"])
def test_delayed_start_is_erm_bitwise_before_the_switch(name):
    shape = (1, 28, 28) if name == "LatentDRSpatial" else (10,)
    torch.manual_seed(0)
    erm = ERM(shape, 3, 3, BASE)
    torch.manual_seed(0)
    ldr = getattr(A, name)(shape, 3, 3, {**BASE, "ldr_start_step": 3, "ldr_warmup_steps": 2})
    for step in range(3):
        torch.manual_seed(100 + step)
        erm.update(_minibatches(shape))
        rng_erm = torch.get_rng_state()
        torch.manual_seed(100 + step)
        log = ldr.update(_minibatches(shape))
        assert log["ldr_active"] == 0.0 and "loss_degraded" not in log
        assert _same_params(erm, ldr) and torch.equal(torch.get_rng_state(), rng_erm)
    assert ldr.latentdr.bank is None or ldr.latentdr.bank.filled == 36  # the bank fills during ERM
    assert [ldr.latentdr.ramp(s) for s in (2, 3, 4, 5)] == [0.0, 0.5, 1.0, 1.0]
    torch.manual_seed(103)
    erm.update(_minibatches(shape))
    torch.manual_seed(103)
    log = ldr.update(_minibatches(shape))
    assert log["ldr_active"] == 1.0 and "loss_degraded" in log
    assert math.isclose(log["loss"], log["loss_clean"] + 0.5 * (log["loss_degraded"] + log.get("loss_restored", 0.0)),
                        rel_tol=1e-5)
    assert not _same_params(erm, ldr)


def test_warmup_counts_training_forwards_not_bank_writes():
    ldr = LatentDR(16, 4, LatentDRConfig(bank="batch", warmup_steps=4), seed=0)
    z, y = torch.randn(8, 16), torch.randint(0, 4, (8,))
    ramps = []
    for _ in range(5):
        ramps.append(ldr.ramp())
        ldr(z, y, torch.nn.Linear(16, 4))  # never enqueue: the batch bank has no FIFO
    assert ramps == [0.25, 0.5, 0.75, 1.0, 1.0]
    ldr.eval()
    ldr(z, y, torch.nn.Linear(16, 4))
    assert ldr.steps == 5  # evaluation forwards do not count


# ---- long-tail mode -------------------------------------------------------------------------------

def test_long_tail_mode_balances_partners_keys_and_adjusts_logits():
    torch.manual_seed(0)
    g = torch.nn.Linear(16, 3)
    y = torch.tensor([0] * 9 + [1, 1, 2])
    z = torch.randn(12, 16)
    ldr = LatentDR(16, 3, LatentDRConfig(long_tail="balanced", keep_prob=1.0, beta_max=0.0), seed=0)
    out = ldr(z, y, g)
    counts = torch.tensor([9.0, 2.0, 1.0]) + 1.0
    log_prior = torch.log(counts / counts.sum())
    assert torch.allclose(ldr.log_prior(), log_prior)
    assert torch.allclose(out.terms["loss_clean"], F.cross_entropy(g(z) + log_prior, y))  # Menon et al. 2021
    # partner weights: softmax over j != i of cos(z_i, z_j)/tau - log prior(y_j), brute force
    zn = F.normalize(z, dim=1)
    logits = zn @ zn.T / 0.1 - log_prior[y][None, :]
    logits.fill_diagonal_(float("-inf"))
    attn = torch.softmax(logits, dim=1)
    soft = attn @ F.one_hot(y, 3).float()  # beta_max = 0: A = A_bar
    deg = ldr.degrade(z, F.one_hot(y, 3))
    assert torch.allclose(deg.soft_labels, soft, atol=1e-5)
    plain = LatentDR(16, 3, LatentDRConfig(keep_prob=1.0, beta_max=0.0), seed=0).degrade(z, F.one_hot(y, 3))
    assert deg.soft_labels[:, 2].mean() > plain.soft_labels[:, 2].mean()  # the rare class weighs in more


def test_long_tail_datasets_profile_and_balanced_test():
    from ldr_plugin.datasets.longtail import LongTailDigits100, long_tail_counts

    assert long_tail_counts(100, 10, 100) == [100, 59, 35, 21, 12, 7, 4, 2, 1, 1]
    ds = LongTailDigits100(None, [1], {})
    train_counts = torch.bincount(ds[0].tensors[1], minlength=10).tolist()
    test_counts = torch.bincount(ds[1].tensors[1], minlength=10).tolist()
    assert train_counts == long_tail_counts(100, 10, 100) and test_counts == [70] * 10
    train_set = {tuple(r.tolist()) for r in ds[0].tensors[0]}
    assert not train_set & {tuple(r.tolist()) for r in ds[1].tensors[0]}  # disjoint images


# ---- strict hparams -------------------------------------------------------------------------------

def test_hparams_from_strings_and_wrong_types_are_errors_naming_the_hparam():
    cfg = LatentDRConfig.from_hparams({"ldr_use_restoration": "false", "ldr_bank_size": "256", "ldr_tau": "0.2",
                                       "ldr_start_step": 100.0, "lr": "anything"})
    assert cfg.use_restoration is False and cfg.bank_size == 256 and cfg.tau == 0.2 and cfg.start_step == 100
    for hp, match in [({"ldr_use_restoration": "maybe"}, "ldr_use_restoration='maybe': expected true or false"),
                      ({"ldr_bank_size": 100.7}, "ldr_bank_size=100.7: expected an integer"),
                      ({"ldr_tau": "fast"}, "ldr_tau='fast': expected a number"),
                      ({"ldr_tau": float("nan")}, "tau=nan"),
                      ({"ldr_mode": 3}, "ldr_mode=3: expected a string"),
                      ({"ldr_lamda_d": 1.0}, "did you mean ldr_lambda_d"),
                      ({"ldr_start_step": -5}, "start_step=-5: expected an integer >= 0")]:
        with pytest.raises(LdrError, match=match.replace("(", r"\(")):
            LatentDRConfig.from_hparams(hp)
    with pytest.raises(LdrError, match="bank_size=100.7"):
        LatentDRConfig(bank_size=100.7)
    assert LatentDRConfig(lambda_d=1).lambda_d == 1.0 and type(LatentDRConfig(lambda_d=1).lambda_d) is float


def test_cross_domain_without_domains_is_an_error():
    ldr = LatentDR(16, 4, LatentDRConfig(partners="cross_domain"), seed=0)
    with pytest.raises(LdrError, match="cross_domain.*domains"):
        ldr(torch.randn(6, 16), torch.randint(0, 4, (6,)), torch.nn.Linear(16, 4))


# ---- host syncs -----------------------------------------------------------------------------------

class SyncCounter:
    """Counts Python-level calls that make a device wait for the host (on CPU they are free, so
    the count stands in for a GPU's), and boolean-mask indexing (which needs a nonzero)."""

    NAMES = ("item", "tolist", "cpu", "numpy", "__bool__", "__int__", "__float__", "__index__", "nonzero")

    def __init__(self, monkeypatch):
        self.calls: list[str] = []
        self.active = True
        for name in self.NAMES:
            real = getattr(torch.Tensor, name)
            monkeypatch.setattr(torch.Tensor, name, self._wrap(name, real))
        for name in ("__getitem__", "__setitem__"):
            real = getattr(torch.Tensor, name)
            monkeypatch.setattr(torch.Tensor, name, self._wrap_index(name, real))

    def _wrap(self, name, real):
        def counted(t, *a, **k):
            if self.active:
                self.calls.append(name)
            return real(t, *a, **k)
        return counted

    def _wrap_index(self, name, real):
        def counted(t, index, *a):
            parts = index if isinstance(index, tuple) else (index,)
            if self.active and any(isinstance(p, torch.Tensor) and p.dtype == torch.bool for p in parts):
                self.calls.append(name + "[bool]")
            return real(t, index, *a)
        return counted


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_at_most_two_host_syncs_per_update(name, monkeypatch):
    shape = (1, 28, 28) if name == "LatentDRSpatial" else (10,)
    torch.manual_seed(0)
    algo = getattr(A, name)(shape, 3, 3, {**BASE, "ldr_bank_size": 24})
    batches = [_minibatches(shape) for _ in range(4)]
    algo.update(batches[0])  # warm-up outside the count: lazily built state (generators, hash keys)
    counter = SyncCounter(monkeypatch)
    step = algo.optimizer.step

    def optimizer_step(*a, **k):  # Adam reads its CPU step counters with .item(): not a device sync
        counter.active = False
        try:
            return step(*a, **k)
        finally:
            counter.active = True

    monkeypatch.setattr(algo.optimizer, "step", optimizer_step)
    for mb in batches[1:]:
        counter.calls.clear()
        algo.update(mb)
        assert len(counter.calls) <= 2, counter.calls
    assert counter.calls == ["tolist"]


# ---- autocast, DataParallel, inference export -----------------------------------------------------

@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_bf16_autocast_every_variant(name):
    shape = (1, 28, 28) if name == "LatentDRSpatial" else (10,)
    torch.manual_seed(0)
    algo = getattr(A, name)(shape, 3, 3, BASE)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logs = [algo.update(_minibatches(shape)) for _ in range(3)]
    assert all(log["skipped_step"] == 0.0 and math.isfinite(log["loss"]) for log in logs)
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in algo.parameters())


def test_soft_cross_entropy_upcasts_bf16_logits():
    from ldr_plugin.latentdr.loss import soft_cross_entropy

    logits = torch.randn(8, 5).to(torch.bfloat16)
    soft = torch.softmax(torch.randn(8, 5), 1)
    out = soft_cross_entropy(logits, soft)
    assert out.dtype == torch.float32
    assert torch.allclose(out, -(soft * F.log_softmax(logits.float(), 1)).sum(1).mean())


def test_spatial_maps_of_replicas_are_concatenated_in_device_order():
    a, b = torch.zeros(2, 3, 4), torch.ones(3, 3, 4)
    out = A.gather_replica_maps({"cuda:1": b, "cuda:0": a}, ["cuda:0", "cuda:1"], torch.device("cpu"))
    assert torch.equal(out, torch.cat([a, b]))  # the hook ran for replica 1 first
    out = A.gather_replica_maps({"cuda:1": b, "cuda:0": a}, ["cuda:1", "cuda:0"], torch.device("cpu"))
    assert torch.equal(out, torch.cat([b, a]))  # device_ids [1, 0]: chunk 0 went to cuda:1
    assert A.gather_replica_maps({}, [], torch.device("cpu")) is None


def test_spatial_under_data_parallel_wrapper(monkeypatch):
    torch.manual_seed(0)
    algo = A.LatentDRSpatial((1, 28, 28), 3, 3, BASE)
    algo.featurizer = torch.nn.DataParallel(algo.featurizer)  # on CPU: runs the module itself
    seen = []
    real = D.spatial_degradation
    monkeypatch.setattr(D, "spatial_degradation", lambda fmap, *a: seen.append(fmap.shape) or real(fmap, *a))
    algo.update(_minibatches((1, 28, 28)))
    assert seen == [(12, 14 * 14, 128)]


def test_inference_only_export_loads_and_predicts_the_same(tmp_path):
    torch.manual_seed(0)
    algo = A.LatentDR((10,), 3, 3, BASE)
    for _ in range(2):
        algo.update(_minibatches())
    full = {"args": {"algorithm": "LatentDR"}, "model_input_shape": (10,), "model_num_classes": 3,
            "model_num_domains": 3, "model_hparams": BASE, "model_dict": algo.state_dict()}
    torch.save(full, tmp_path / "model.pkl")
    A.export_inference_checkpoint(tmp_path / "model.pkl", tmp_path / "small.pkl")
    small = torch.load(tmp_path / "small.pkl", weights_only=True)
    assert small["inference_only"] and not any(k.startswith("latentdr.") for k in small["model_dict"])
    assert (tmp_path / "small.pkl").stat().st_size < (tmp_path / "model.pkl").stat().st_size / 2
    fresh = A.LatentDR((10,), 3, 3, BASE)
    fresh.load_state_dict(small["model_dict"])
    x = torch.randn(5, 10)
    assert torch.equal(fresh.predict(x), algo.predict(x))
    broken = dict(small["model_dict"])
    broken.pop("classifier.weight")
    with pytest.raises(RuntimeError, match="classifier.weight"):
        A.LatentDR((10,), 3, 3, BASE).load_state_dict(broken)


def test_delayed_and_long_tail_variants_defaults_and_overrides():
    from ldr_plugin.domainbed.hparams import latentdr_hparams

    defaults = {k: v[0] for k, v in latentdr_hparams("LatentDRDelayed", "X", 0).items()}
    assert A.LatentDRDelayed((10,), 3, 3, {**BASE, **defaults}).config.start_step == 1000
    # not forced: an explicit hparam (a sweep's --hparams) wins, as for any default
    assert A.LatentDRDelayed((10,), 3, 3, {**BASE, **defaults, "ldr_start_step": 7}).config.start_step == 7
    draws = {latentdr_hparams("LatentDRDelayed", "X", s)["ldr_start_step"][1] for s in range(40)}
    assert draws == {250, 500, 1000, 2500}
    assert A.LatentDRLongTail((10,), 3, 3, BASE).config.long_tail == "balanced"


def test_long_tail_report_equals_sklearn_balanced_accuracy():
    from sklearn.metrics import balanced_accuracy_score

    from ldr_plugin.datasets.longtail import LongTailDigits10, long_tail_report

    ds = LongTailDigits10(None, [1], {})
    w = torch.randn(196, 10, generator=torch.Generator().manual_seed(0))
    report = long_tail_report(lambda x: x @ w, ds)
    x, y = ds[1].tensors
    pred = (x @ w).argmax(1)
    assert math.isclose(report["balanced_acc"], balanced_accuracy_score(y.numpy(), pred.numpy()), rel_tol=1e-9)
    few = [float((pred[y == c] == c).double().mean()) for c in (7, 8, 9)]
    assert math.isclose(report["few_acc"], sum(few) / 3, rel_tol=1e-9)
