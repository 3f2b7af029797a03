"""Degradation D: mix each latent with an attention-weighted pool of *other* samples of the batch.

Parameter-free (it cannot learn to be the identity). Weights come from stop-gradient,
L2-normalised latents; gradients reach the encoder only through the mixed values. Randomness is
drawn from a caller-given ``torch.Generator`` so a training loop's global RNG is left untouched.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class Degraded:
    """Output of one degradation: latents, soft labels and what produced them."""

    z: torch.Tensor  # [B, d] degraded latents (carry gradient to the encoder through the values)
    soft_labels: torch.Tensor  # [B, C] rows of A @ Y (sum to 1)
    attention: torch.Tensor  # [B, B] partner attention A-bar (zero diagonal; zero rows without partners)
    beta: torch.Tensor  # [B] effective self-retention (1 for rows without partners)
    has_partners: torch.Tensor  # [B] bool

    def attention_entropy(self) -> float:
        """Mean entropy (nats) of the partner-attention rows that have partners (0 if none)."""
        a = self.attention[self.has_partners]
        if a.numel() == 0:
            return 0.0
        ent = -(a * torch.log(a.clamp_min(1e-30))).sum(dim=1)
        return float(ent.mean())


def eligible_partners(batch_size: int, domains: torch.Tensor | None, cross_domain: bool) -> torch.Tensor:
    """Boolean [B, B] matrix of allowed partners: never the sample itself; other domains only if asked."""
    eye = torch.eye(batch_size, dtype=torch.bool)
    if cross_domain and domains is not None:
        d = domains.detach().cpu()
        return d[:, None] != d[None, :]
    return ~eye


def partner_mask(
    eligible: torch.Tensor, keep_prob: float, generator: torch.Generator, max_redraws: int = 16
) -> torch.Tensor:
    """Keep each eligible partner with probability ``keep_prob``; re-draw rows left empty.

    A row with eligible partners that is still empty after ``max_redraws`` re-draws keeps one
    eligible partner chosen uniformly (so every row with eligible partners has at least one).
    """
    keep = (torch.rand(eligible.shape, generator=generator) < keep_prob) & eligible
    has_eligible = eligible.any(dim=1)
    for _ in range(max_redraws):
        empty = has_eligible & ~keep.any(dim=1)
        if not bool(empty.any()):
            return keep
        redraw = (torch.rand(eligible.shape, generator=generator) < keep_prob) & eligible
        keep[empty] = redraw[empty]
    empty = has_eligible & ~keep.any(dim=1)
    if bool(empty.any()):
        scores = torch.rand(eligible.shape, generator=generator).masked_fill(~eligible, -1.0)
        forced = F.one_hot(scores.argmax(dim=1), eligible.shape[1]).bool()
        keep[empty] = forced[empty]
    return keep


def partner_attention(z: torch.Tensor, keep: torch.Tensor, tau: float) -> torch.Tensor:
    """Row-softmax of cosine similarity / tau over kept partners (stop-gradient); empty rows are zero."""
    zn = F.normalize(z.detach().float(), dim=1)
    logits = (zn @ zn.T / tau).masked_fill(~keep, float("-inf"))
    has = keep.any(dim=1, keepdim=True)
    attn = torch.softmax(logits.masked_fill(~has, 0.0), dim=1)
    return torch.where(keep, attn, torch.zeros_like(attn)).to(z.dtype)


def draw_beta(batch_size: int, beta_max: float, has_partners: torch.Tensor, generator: torch.Generator):
    """Self-retention beta_i ~ U(0, beta_max); 1 where a row has no partner (nothing to mix in)."""
    beta = torch.rand(batch_size, generator=generator) * beta_max
    return torch.where(has_partners, beta, torch.ones_like(beta))


def pooled_degradation(
    z: torch.Tensor,
    labels_onehot: torch.Tensor,
    keep: torch.Tensor,
    tau: float,
    beta_max: float,
    generator: torch.Generator,
) -> Degraded:
    """Default D: ``A = diag(beta) + diag(1-beta) A_bar``, ``z~ = A z``, ``y~ = A Y``."""
    dev = z.device
    keep = keep.to(dev)
    has = keep.any(dim=1)
    attn = partner_attention(z, keep, tau)
    beta = draw_beta(z.shape[0], beta_max, has.cpu(), generator).to(dev, z.dtype)
    mix = torch.diag(beta) + (1 - beta)[:, None] * attn
    return Degraded(mix @ z, mix @ labels_onehot.to(z.dtype), attn, beta, has)


def spatial_degradation(
    fmap: torch.Tensor,
    labels_onehot: torch.Tensor,
    keep: torch.Tensor,
    tau: float,
    beta_max: float,
    generator: torch.Generator,
) -> Degraded:
    """Spatial variant: positions of ``fmap`` [B, P, c] replaced by the attention-pooled partners' same position.

    Each position of sample i is replaced with probability ``1 - beta_i``; the degraded latent is
    the mean over positions; the soft label is ``(1 - f_i) y_i + f_i (A_bar Y)_i`` with f_i the
    replaced fraction. Attention weights come from the pooled latents, as in the pooled mode.
    """
    dev = fmap.device
    b, p, _ = fmap.shape
    keep = keep.to(dev)
    has = keep.any(dim=1)
    pooled = fmap.mean(dim=1)
    attn = partner_attention(pooled, keep, tau)
    beta = draw_beta(b, beta_max, has.cpu(), generator)
    replaced = (torch.rand(b, p, generator=generator) >= beta[:, None]).to(dev)
    partner_map = torch.einsum("ij,jpc->ipc", attn, fmap)
    mixed = torch.where(replaced[..., None], partner_map, fmap)
    frac = replaced.to(fmap.dtype).mean(dim=1)
    y = labels_onehot.to(fmap.dtype)
    soft = (1 - frac)[:, None] * y + frac[:, None] * (attn @ y)
    return Degraded(mixed.mean(dim=1), soft, attn, (1 - frac), has)


def noise_degradation(
    z: torch.Tensor, labels_onehot: torch.Tensor, noise_std: float, generator: torch.Generator
) -> Degraded:
    """Control without sample-awareness: ``z + noise_std * std_batch(z) * eps``, labels unchanged."""
    b = z.shape[0]
    scale = z.detach().std(dim=0, unbiased=False) * noise_std
    eps = torch.randn(z.shape, generator=generator).to(z.device, z.dtype)
    zero = torch.zeros(b, b, dtype=z.dtype, device=z.device)
    ones = torch.ones(b, dtype=z.dtype, device=z.device)
    return Degraded(z + scale * eps, labels_onehot.to(z.dtype), zero, ones, torch.zeros(b, dtype=torch.bool))
