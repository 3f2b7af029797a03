"""The LatentDR module: degradation + key bank + restoration + the three-term loss, host-free.

Usable in any training loop::

    ldr = LatentDR(dim=128, num_classes=10)
    fp = input_fingerprint(x)                       # which latents share an input (duplicates)
    z = featurizer(x); logits = classifier(z)
    out = ldr(z, y, classifier, clean_logits=logits, domains=d, fingerprints=fp)
    out.total.backward(); opt.step(); ldr.enqueue(z, fp, y)   # bank is filled after the step
    log = out.scalars()                             # Python floats, one host sync

Everything in ``forward`` stays on the latents' device: randomness comes from the module's own
generator on that device, diagnostics are 0-d tensors, and the fill level of the key bank and
the step counter are kept on the host. ``LatentDROutput.scalars`` is the one host sync.
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
    """Loss terms and per-step diagnostics, all tensors (0-d) on the latents' device."""

    total: torch.Tensor
    terms: dict[str, torch.Tensor] = field(default_factory=dict)
    diagnostics: dict[str, torch.Tensor] = field(default_factory=dict)

    def scalars(self) -> dict[str, float]:
        """``loss``, every term and every diagnostic as Python floats, read in one host sync."""
        named = {"loss": self.total, **self.terms, **self.diagnostics}
        values = torch.stack([v.detach().float().reshape(()) for v in named.values()]).tolist()
        return dict(zip(named, values))


class LatentDR(nn.Module):
    """Sample-aware latent degradation and restoration around a classifier g (shared by default).

    ``head_factory`` builds the extra heads of the separate-classifier ablation. ``seed`` seeds the
    module's own generators, one per device (default: drawn from torch's global RNG once, at
    construction).
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
        self.seed = seed
        self._generators: dict[str, torch.Generator] = {}
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))  # training forwards so far
        self.register_buffer("class_counts", torch.zeros(num_classes))  # labels seen (long-tail prior)
        self._steps: int | None = 0  # num_updates mirrored on the host; None = read the buffer

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key = prefix + "class_counts"
        if key not in state_dict:  # saved before the long-tail prior existed
            state_dict[key] = torch.zeros(self.num_classes)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._steps = None

    @property
    def steps(self) -> int:
        """Training forwards so far (the step index of the next one)."""
        if self._steps is None:
            self._steps = int(self.num_updates)
        return self._steps

    def generator(self, device: torch.device) -> torch.Generator:
        """The module's generator on ``device`` (seeded from ``seed`` on first use there)."""
        key = str(device)
        if key not in self._generators:
            self._generators[key] = torch.Generator(device=device).manual_seed(self.seed)
        return self._generators[key]

    def ramp(self, step: int | None = None) -> float:
        """Factor on lambda_D and lambda_R at a step: 0 before ``start_step``, then a linear warm-up."""
        cfg, step = self.config, self.steps if step is None else step
        if step < cfg.start_step:
            return 0.0
        w = cfg.warmup_steps
        return 1.0 if w <= 0 else min(1.0, (step - cfg.start_step + 1) / w)

    def log_prior(self) -> torch.Tensor:
        """Log of the class frequencies seen in training (add-one smoothed), for the long-tail mode."""
        counts = self.class_counts + 1.0
        return torch.log(counts / counts.sum())

    def degrade(self, z, y_onehot, domains=None, feature_map=None, fingerprints=None) -> D.Degraded:
        """Apply the configured degradation to latents ``z`` [B, d] (``feature_map`` [B, P, c] for spatial)."""
        cfg = self.config
        gen = self.generator(z.device)
        if cfg.mode == "noise":
            return D.noise_degradation(z, y_onehot, cfg.noise_std, gen)
        eligible = D.eligible_partners(z.shape[0], domains, cfg.partners == "cross_domain", fingerprints, z.device)
        keep = D.partner_mask(eligible, cfg.keep_prob, gen, cfg.max_redraws)
        bias = -self.log_prior()[y_onehot.argmax(dim=1)] if cfg.long_tail == "balanced" else None
        if cfg.mode == "spatial" and feature_map is not None:
            return D.spatial_degradation(feature_map, y_onehot, keep, cfg.tau, cfg.beta_max, gen, bias)
        return D.pooled_degradation(z, y_onehot, keep, cfg.tau, cfg.beta_max, gen, bias)

    def forward(
        self,
        z: torch.Tensor,
        y: torch.Tensor,
        classifier: nn.Module,
        clean_logits: torch.Tensor | None = None,
        domains: torch.Tensor | None = None,
        feature_map: torch.Tensor | None = None,
        fingerprints: torch.Tensor | None = None,
    ) -> LatentDROutput:
        """Return ``CE(g(z),y) + lambda_D SoftCE(g(z~),y~) + lambda_R CE(g(R(z~)),y)`` and diagnostics.

        ``fingerprints`` (``input_fingerprint(x)``) name the input of each latent: partners and keys
        from the same input are masked. Without them only the sample's own row is excluded.
        Before ``start_step`` the loss is the clean term alone and the branches are not run (the
        update is ERM's). Branches whose lambda is 0 are computed without gradient (diagnostics
        only) and left out of the total, so lambda_D = lambda_R = 0 gives exactly ERM's graph.
        """
        cfg = self.config
        step = self.steps
        if self.training:
            self._steps = step + 1
            self.num_updates.add_(1)
            self.class_counts.add_(F.one_hot(y, self.num_classes).sum(0).to(self.class_counts.dtype))
        logits = classifier(z) if clean_logits is None else clean_logits
        adjust = self.log_prior() if cfg.long_tail == "balanced" else None
        clean = F.cross_entropy(_adjusted(logits, adjust), y)
        out = LatentDROutput(total=clean, terms={"loss_clean": clean})
        ramp = self.ramp(step)
        out.diagnostics["ldr_active"] = clean.new_tensor(1.0 if ramp > 0 else 0.0)
        if step < cfg.start_step:
            return out
        trains_d = cfg.use_degradation and cfg.lambda_d > 0
        trains_r = cfg.use_restoration and cfg.lambda_r > 0
        with torch.set_grad_enabled(torch.is_grad_enabled() and (trains_d or trains_r)):
            self._branches(z if (trains_d or trains_r) else z.detach(), y, classifier, domains,
                           feature_map, fingerprints, adjust, out)
        if trains_d:
            out.total = out.total + cfg.lambda_d * ramp * out.terms["loss_degraded"]
        if trains_r:
            out.total = out.total + cfg.lambda_r * ramp * out.terms["loss_restored"]
        return out

    def _branches(self, z, y, classifier, domains, feature_map, fingerprints, adjust, out: LatentDROutput) -> None:
        cfg = self.config
        y_onehot = F.one_hot(y, self.num_classes)
        query = z
        if cfg.use_degradation:
            deg = self.degrade(z, y_onehot, domains, feature_map, fingerprints)
            head = self.degraded_head or classifier
            logits_d = head(deg.z)
            out.terms["loss_degraded"] = soft_cross_entropy(_adjusted(logits_d, adjust), deg.soft_labels)
            out.diagnostics.update(
                attention_entropy=deg.attention_entropy(),
                mean_beta=deg.beta.float().mean(),
                acc_degraded=accuracy(logits_d.detach(), y),
                rows_without_partners=(~deg.has_partners).float().sum() if cfg.mode != "noise" else z.new_zeros(()),
                soft_label_purity=(deg.soft_labels * y_onehot).sum(1).mean(),
            )
            query = deg.z
        if self.restoration is not None:
            keys, mask, same_input = self._keys(z, y, fingerprints)
            restored, weights = self.restoration.restore(query, keys, mask)
            head = self.restored_head or classifier
            logits_r = head(restored)
            out.terms["loss_restored"] = F.cross_entropy(_adjusted(logits_r, adjust), y)
            out.diagnostics.update(acc_restored=accuracy(logits_r.detach(), y),
                                   restoration_keys=z.new_tensor(float(keys.shape[0])))
            if same_input is not None:
                out.diagnostics["restoration_self_mass"] = (weights.float() * same_input).sum(1).mean()

    def _keys(self, z, y, fingerprints):
        """Keys for restoration, the mask of keys not attended ([B, K], True = masked) and which keys
        share the query's input ([B, K] float, or None when unknown).

        Keys are the FIFO bank, or (batch variant / empty bank) the current batch. Masked: the
        query's own row of the batch and every key with the query's fingerprint; in the long-tail
        mode keys are also weighted by inverse class frequency (an additive bias of -log prior).
        """
        cfg = self.config
        b = z.shape[0]
        if self.bank is not None and self.bank.filled > 0:
            keys, key_fps, key_labels = self.bank.keys()
            same = None if fingerprints is None else (fingerprints[:, None] == key_fps[None, :])
            masked = same
        else:
            if b < 2:
                return z.new_zeros(0, z.shape[1]), None, None
            keys, key_labels = z.detach(), y
            eye = torch.eye(b, dtype=torch.bool, device=z.device)
            same = eye if fingerprints is None else (eye | (fingerprints[:, None] == fingerprints[None, :]))
            masked = same
        if cfg.long_tail == "balanced":
            bias = -self.log_prior()[key_labels.clamp_min(0)]
            float_mask = bias[None, :].expand(b, -1).to(z.dtype)
            if masked is not None:
                float_mask = float_mask.masked_fill(masked, float("-inf"))
            return keys, float_mask, None if same is None else same.float()
        return keys, masked, None if same is None else same.float()

    @torch.no_grad()
    def enqueue(self, z: torch.Tensor, fingerprints: torch.Tensor | None = None,
                labels: torch.Tensor | None = None) -> None:
        """Put a step's clean latents (with their input fingerprints and labels) into the FIFO bank.

        Call after the optimiser step, so a batch never restores from its own latents.
        """
        if self.bank is not None:
            self.bank.enqueue(z, fingerprints, labels)


def _adjusted(logits: torch.Tensor, log_prior: torch.Tensor | None) -> torch.Tensor:
    """Logits for the loss, in float32: plus the log prior in the long-tail mode (logit adjustment)."""
    logits = logits.float()
    return logits if log_prior is None else logits + log_prior.to(logits.device)
