"""The DomainBed adapter on CUDA (skipped without a GPU; `benchmarks/gpu_check.sh` runs these)."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from ldr_plugin.domainbed import algorithm as A
from ldr_plugin.latentdr.config import VARIANTS
from ldr_plugin.latentdr.fingerprint import input_fingerprint

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

BASE = {"lr": 1e-3, "weight_decay": 0.0, "nonlinear_classifier": False, "mlp_width": 32, "mlp_depth": 3,
        "mlp_dropout": 0.0}


def _minibatches(shape, device="cuda"):
    return [(torch.randn(8, *shape, device=device), torch.randint(0, 3, (8,), device=device)) for _ in range(3)]


def test_fingerprints_agree_between_cpu_and_cuda():
    x = torch.randn(16, 3, 32, 32)
    assert torch.equal(input_fingerprint(x), input_fingerprint(x.cuda()).cpu())


@pytest.mark.parametrize("name", sorted(VARIANTS))
@pytest.mark.parametrize("amp", [None, torch.bfloat16, torch.float16])
def test_update_on_cuda_with_at_most_two_syncs(name, amp):
    shape = (1, 28, 28) if name == "LatentDRSpatial" else (10,)
    torch.manual_seed(0)
    algo = getattr(A, name)(shape, 3, 3, {**BASE, "ldr_bank_size": 24}).cuda()
    batches = [_minibatches(shape) for _ in range(4)]
    with torch.autocast("cuda", dtype=amp or torch.float32, enabled=amp is not None):
        algo.update(batches[0])
        for mb in batches[1:]:
            torch.cuda.set_sync_debug_mode("warn")
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    log = algo.update(mb)
            finally:
                torch.cuda.set_sync_debug_mode("default")
            syncs = [w for w in caught if "synchroniz" in str(w.message)]
            assert len(syncs) <= 2, [str(w.message) for w in syncs]
            assert math.isfinite(log["loss"]) and log["skipped_step"] == 0.0


def test_cuda_runs_are_reproducible_per_device():
    logs = []
    for _ in range(2):
        torch.manual_seed(0)
        algo = A.LatentDR((10,), 3, 3, BASE).cuda()
        torch.manual_seed(1)
        batches = [_minibatches((10,)) for _ in range(3)]
        logs.append([algo.update(mb) for mb in batches])
    assert logs[0] == logs[1]
