"""The LatentDR module: degradation + key bank + restoration + the three-term loss, host-free.

Usable in any training loop::

    ldr = LatentDR(dim=128, num_classes=10)
    z = featurizer(x); logits = classifier(z)
    out = ldr(z, y, classifier, clean_logits=logits, domains=d)
    out.total.backward(); opt.step(); ldr.enqueue(z)   # bank is filled after the step
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ldr_plugin.errors import LdrError
from ldr_plugin.latentdr import degradation as D
from ldr_plugin.latentdr.config import LatentDRConfig
from ldr_plugin.latentdr.key_bank import KeyBank
from ldr_plugin.latentdr.loss import accuracy, soft_cross_entropy
from ldr_plugin.latentdr.restoration import Restoration


@dataclass
class LatentDROutput:
    """Loss terms (tensors) and per-step diagnostics (Python floats)."""

    total: torch.Tensor
    terms: dict[str, torch.Tensor] = field(default_factory=dict)
    diagnostics: dict[str, float] = field(default_factory=dict)


class LatentDR(nn.Module):
    """Sample-aware latent degradation and restoration around a classifier g (shared by default).

    ``head_factory`` builds the extra heads of the separate-classifier ablation. ``seed`` seeds the
    module's own generator (default: drawn from torch's global RNG once, at construction).
    """

    def __init__(
        self,
        dim: int,
        num_classes: int,
        config: LatentDRConfig | None = None,
        head_factory: Callable[[], nn.Module] | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        self.config = cfg = config or LatentDRConfig()
        self.num_classes = num_classes
        self.restoration = Restoration(dim, cfg.heads, cfg.mlp_ratio, cfg.restoration_init) if cfg.use_restoration else None
        use_fifo = cfg.use_restoration and cfg.bank == "fifo"
        self.bank = KeyBank(dim, cfg.bank_size) if use_fifo else None
        self.degraded_head = self.restored_head = None
        if not cfg.shared_classifier:
            if head_factory is None:
                raise LdrError("LatentDR: shared_classifier=False needs a head_factory for the extra heads")
            self.degraded_head = head_factory() if cfg.use_degradation else None
            self.restored_head = head_factory() if cfg.use_restoration else None
        if seed is None:
            seed = int(torch.randint(0, 2**62, (1,)))
        self.generator = torch.Generator().manual_seed(seed)
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))

    def ramp(self) -> float:
        """Factor on lambda_D and lambda_R: linear warm-up over ``warmup_steps`` completed updates."""
        w = self.config.warmup_steps
        return 1.0 if w <= 0 else min(1.0, (int(self.num_updates) + 1) / w)

    def _bank_keys(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Keys for restoration: the FIFO bank, or (batch variant / empty bank) the batch with self masked."""
        if self.bank is not None and self.bank.filled > 0:
            return self.bank.keys(), None
        b = z.shape[0]
        if b < 2:
            return z.new_zeros(0, z.shape[1]), None
        return z.detach(), torch.eye(b, dtype=torch.bool, device=z.device)

    def degrade(self, z, y_onehot, domains=None, feature_map=None) -> D.Degraded:
        """Apply the configured degradation to latents ``z`` [B, d] (``feature_map`` [B, P, c] for spatial)."""
        cfg = self.config
        if cfg.mode == "noise":
            return D.noise_degradation(z, y_onehot, cfg.noise_std, self.generator)
        eligible = D.eligible_partners(z.shape[0], domains, cfg.partners == "cross_domain")
        keep = D.partner_mask(eligible, cfg.keep_prob, self.generator, cfg.max_redraws)
        if cfg.mode == "spatial" and feature_map is not None:
            return D.spatial_degradation(feature_map, y_onehot, keep, cfg.tau, cfg.beta_max, self.generator)
        return D.pooled_degradation(z, y_onehot, keep, cfg.tau, cfg.beta_max, self.generator)

    def forward(
        self,
        z: torch.Tensor,
        y: torch.Tensor,
        classifier: nn.Module,
        clean_logits: torch.Tensor | None = None,
        domains: torch.Tensor | None = None,
        feature_map: torch.Tensor | None = None,
    ) -> LatentDROutput:
        """Return ``CE(g(z),y) + lambda_D SoftCE(g(z~),y~) + lambda_R CE(g(R(z~)),y)`` and diagnostics.

        Branches whose lambda is 0 are computed without gradient (diagnostics only) and left out
        of the total, so lambda_D = lambda_R = 0 gives exactly ERM's graph.
        """
        cfg = self.config
        logits = classifier(z) if clean_logits is None else clean_logits
        clean = F.cross_entropy(logits, y)
        out = LatentDROutput(total=clean, terms={"loss_clean": clean})
        trains_d = cfg.use_degradation and cfg.lambda_d > 0
        trains_r = cfg.use_restoration and cfg.lambda_r > 0
        with torch.set_grad_enabled(torch.is_grad_enabled() and (trains_d or trains_r)):
            self._branches(z if (trains_d or trains_r) else z.detach(), y, classifier, domains,
                           feature_map, out)
        ramp = self.ramp()
        if trains_d:
            out.total = out.total + cfg.lambda_d * ramp * out.terms["loss_degraded"]
        if trains_r:
            out.total = out.total + cfg.lambda_r * ramp * out.terms["loss_restored"]
        return out

    def _branches(self, z, y, classifier, domains, feature_map, out: LatentDROutput) -> None:
        cfg = self.config
        y_onehot = F.one_hot(y, self.num_classes)
        query = z
        if cfg.use_degradation:
            deg = self.degrade(z, y_onehot, domains, feature_map)
            head = self.degraded_head or classifier
            logits_d = head(deg.z)
            out.terms["loss_degraded"] = soft_cross_entropy(logits_d, deg.soft_labels)
            out.diagnostics.update(
                attention_entropy=deg.attention_entropy(),
                mean_beta=float(deg.beta.float().mean()),
                acc_degraded=accuracy(logits_d.detach(), y),
                rows_without_partners=float((~deg.has_partners).sum()) if cfg.mode != "noise" else 0.0,
            )
            query = deg.z
        if self.restoration is not None:
            keys, mask = self._bank_keys(z)
            restored = self.restoration(query, keys, mask)
            head = self.restored_head or classifier
            logits_r = head(restored)
            out.terms["loss_restored"] = F.cross_entropy(logits_r, y)
            out.diagnostics.update(acc_restored=accuracy(logits_r.detach(), y), restoration_keys=float(keys.shape[0]))

    @torch.no_grad()
    def enqueue(self, z: torch.Tensor) -> None:
        """Close an update: put its clean latents into the FIFO bank, count it (call after the optimiser step)."""
        self.num_updates += 1
        if self.bank is not None:
            self.bank.enqueue(z)
