"""Degradation D: mix each latent with an attention-weighted pool of *other* samples of the batch.

Parameter-free (it cannot learn to be the identity). Weights come from stop-gradient,
L2-normalised latents; gradients reach the encoder only through the mixed values. Randomness is
drawn from a caller-given ``torch.Generator`` on the latents' device, so a training loop's global RNG is
left untouched and nothing waits for the host.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ldr_plugin.errors import LdrError


@dataclass
class Degraded:
    """Output of one degradation: latents, soft labels and what produced them."""

    z: torch.Tensor  # [B, d] degraded latents (carry gradient to the encoder through the values)
    soft_labels: torch.Tensor  # [B, C] rows of A @ Y (sum to 1)
    attention: torch.Tensor  # [B, B] partner attention A-bar (zero diagonal; zero rows without partners)
    beta: torch.Tensor  # [B] effective self-retention (1 for rows without partners)
    has_partners: torch.Tensor  # [B] bool

    def attention_entropy(self) -> torch.Tensor:
        """Mean entropy (nats) of the partner-attention rows that have partners (0 if none), a 0-d tensor."""
        a = self.attention.float()
        ent = -(a * torch.log(a.clamp_min(1e-30))).sum(dim=1)
        has = self.has_partners.float()
        return (ent * has).sum() / has.sum().clamp_min(1.0)


def eligible_partners(
    batch_size: int,
    domains: torch.Tensor | None = None,
    cross_domain: bool = False,
    fingerprints: torch.Tensor | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Boolean [B, B] matrix of allowed partners.

    Never the sample itself, nor another copy of its input (same fingerprint: loaders sample with
    replacement, so a batch can hold one image twice); other domains only if ``cross_domain``
    (which needs ``domains``).
    """
    if cross_domain and domains is None:
        raise LdrError("LatentDR: partners='cross_domain' needs the domain of each sample (domains=...)")
    if fingerprints is not None:
        device = fingerprints.device
    elif domains is not None:
        device = domains.device
    eligible = ~torch.eye(batch_size, dtype=torch.bool, device=device)
    if fingerprints is not None:
        eligible &= fingerprints[:, None] != fingerprints[None, :]
    if cross_domain:
        d = domains.to(eligible.device)
        eligible &= d[:, None] != d[None, :]
    return eligible


def partner_mask(
    eligible: torch.Tensor, keep_prob: float, generator: torch.Generator, max_redraws: int = 16
) -> torch.Tensor:
    """Keep each eligible partner with probability ``keep_prob``; re-draw rows left empty.

    All ``1 + max_redraws`` draws are made at once and each row takes its first non-empty draw,
    so the result needs no host synchronisation. A row with eligible partners that is empty in
    every draw keeps one eligible partner chosen uniformly (so every row with eligible partners
    has at least one).
    """
    b = eligible.shape[0]
    draws = torch.rand((1 + max_redraws, *eligible.shape), generator=generator, device=eligible.device)
    keeps = (draws < keep_prob) & eligible
    nonempty = keeps.any(dim=2)  # [R, B]
    first = nonempty.to(torch.uint8).argmax(dim=0)  # first non-empty draw per row (0 if none)
    keep = keeps[first, torch.arange(b, device=eligible.device)]
    scores = torch.rand(eligible.shape, generator=generator, device=eligible.device).masked_fill(~eligible, -1.0)
    forced = F.one_hot(scores.argmax(dim=1), b).bool() & eligible
    never = ~nonempty.any(dim=0)
    return torch.where(never[:, None], forced, keep)


def partner_attention(
    z: torch.Tensor, keep: torch.Tensor, tau: float, partner_bias: torch.Tensor | None = None
) -> torch.Tensor:
    """Row-softmax of cosine similarity / tau over kept partners (stop-gradient); empty rows are zero.

    ``partner_bias`` [B] is added to the logit of every row's partner j (the long-tail mode passes
    ``-log prior(y_j)``, so each class weighs in as if the classes were balanced).
    """
    zn = F.normalize(z.detach().float(), dim=1)
    logits = zn @ zn.T / tau
    if partner_bias is not None:
        logits = logits + partner_bias.float()[None, :]
    logits = logits.masked_fill(~keep, float("-inf"))
    has = keep.any(dim=1, keepdim=True)
    attn = torch.softmax(logits.masked_fill(~has, 0.0), dim=1)
    return torch.where(keep, attn, torch.zeros_like(attn)).to(z.dtype)


def draw_beta(has_partners: torch.Tensor, beta_max: float, generator: torch.Generator) -> torch.Tensor:
    """Self-retention beta_i ~ U(0, beta_max); 1 where a row has no partner (nothing to mix in)."""
    beta = torch.rand(has_partners.shape, generator=generator, device=has_partners.device) * beta_max
    return torch.where(has_partners, beta, torch.ones_like(beta))


def pooled_degradation(
    z: torch.Tensor,
    labels_onehot: torch.Tensor,
    keep: torch.Tensor,
    tau: float,
    beta_max: float,
    generator: torch.Generator,
    partner_bias: torch.Tensor | None = None,
) -> Degraded:
    """Default D: ``A = diag(beta) + diag(1-beta) A_bar``, ``z~ = A z``, ``y~ = A Y``."""
    keep = keep.to(z.device)
    has = keep.any(dim=1)
    attn = partner_attention(z, keep, tau, partner_bias)
    beta = draw_beta(has, beta_max, generator).to(z.dtype)
    mix = torch.diag(beta) + (1 - beta)[:, None] * attn
    return Degraded(mix @ z, mix.float() @ labels_onehot.float(), attn, beta, has)


def spatial_degradation(
    fmap: torch.Tensor,
    labels_onehot: torch.Tensor,
    keep: torch.Tensor,
    tau: float,
    beta_max: float,
    generator: torch.Generator,
    partner_bias: torch.Tensor | None = None,
) -> Degraded:
    """Spatial variant: positions of ``fmap`` [B, P, c] replaced by the attention-pooled partners' same position.

    Each position of sample i is replaced with probability ``1 - beta_i``; the degraded latent is
    the mean over positions; the soft label is ``(1 - f_i) y_i + f_i (A_bar Y)_i`` with f_i the
    replaced fraction. Attention weights come from the pooled latents, as in the pooled mode.
    """
    b, p, _ = fmap.shape
    keep = keep.to(fmap.device)
    has = keep.any(dim=1)
    pooled = fmap.mean(dim=1)
    attn = partner_attention(pooled, keep, tau, partner_bias)
    beta = draw_beta(has, beta_max, generator)
    replaced = torch.rand((b, p), generator=generator, device=fmap.device) >= beta[:, None]
    partner_map = torch.einsum("ij,jpc->ipc", attn, fmap)
    mixed = torch.where(replaced[..., None], partner_map, fmap)
    frac = replaced.float().mean(dim=1)
    y = labels_onehot.float()
    soft = (1 - frac)[:, None] * y + frac[:, None] * (attn.float() @ y)
    return Degraded(mixed.mean(dim=1), soft, attn, (1 - frac), has)


def noise_degradation(
    z: torch.Tensor, labels_onehot: torch.Tensor, noise_std: float, generator: torch.Generator
) -> Degraded:
    """Control without sample-awareness: ``z + noise_std * std_batch(z) * eps``, labels unchanged."""
    b = z.shape[0]
    scale = z.detach().float().std(dim=0, unbiased=False) * noise_std
    eps = torch.randn(z.shape, generator=generator, device=z.device)
    zero = torch.zeros(b, b, dtype=z.dtype, device=z.device)
    ones = torch.ones(b, dtype=z.dtype, device=z.device)
    has = torch.zeros(b, dtype=torch.bool, device=z.device)
    return Degraded(z + (scale * eps).to(z.dtype), labels_onehot.float(), zero, ones, has)
