"""Restoration R: one pre-norm cross-attention block (query = degraded latent, keys/values = bank)
with a residual connection, followed by a residual MLP (d -> ratio*d -> d, GELU)."""

from __future__ import annotations

import warnings

import torch
from torch import nn


def heads_dividing(dim: int, heads: int) -> int:
    """The largest head count <= ``heads`` that divides ``dim`` (attention needs dim % heads == 0).

    DomainBed's random search draws MLP widths such as 255, so a requested 8 heads must adapt:
    ``heads_dividing(255, 8) == 5``, ``heads_dividing(512, 8) == 8``.
    """
    return max(h for h in range(1, max(1, heads) + 1) if dim % h == 0)


class Restoration(nn.Module):
    """Pre-norm cross-attention + residual MLP; keys are shared by all queries of a batch.

    Example: ``Restoration(128, heads=8)(z_tilde, bank_keys)`` -> ``[B, 128]``. When ``dim`` is not
    divisible by ``heads``, the largest divisor of ``dim`` below it is used (a warning says so);
    ``self.heads`` is the count in use.
    """

    def __init__(self, dim: int, heads: int = 8, mlp_ratio: int = 2, init: str = "default") -> None:
        super().__init__()
        self.heads = heads_dividing(dim, heads)
        if self.heads != heads:
            warnings.warn(f"LatentDR restoration: latent dim {dim} is not divisible by heads={heads}; "
                          f"using {self.heads} heads", stacklevel=2)
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, self.heads, batch_first=True)
        self.norm_mlp = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim))
        if init == "identity":  # both residual branches start at zero: R(z) = z at initialisation
            for layer in (self.attn.out_proj, self.mlp[2]):
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)

    def forward(
        self, query: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Restore ``query`` [B, d] from ``keys`` [K, d]; ``mask`` [B, K]: bool (True = not attended)
        or additive (float, ``-inf`` = not attended)."""
        return self.restore(query, keys, mask)[0]

    def restore(
        self, query: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Restored latents [B, d] and the head-averaged attention weights [B, K] (zero where masked).

        With no keys (K = 0), or for a row whose every key is masked, the attention adds nothing
        and only the MLP block acts on that row (its weights row is all zero).
        """
        b, k = query.shape[0], keys.shape[0]
        if k == 0:
            weights = query.new_zeros(b, 0)
            return query + self.mlp(self.norm_mlp(query)), weights
        kv = self.norm_kv(keys.to(query.dtype))[None]
        has_key = None
        if mask is not None:
            if mask.dtype == torch.bool:  # True = masked; as an additive mask (also carries key biases)
                mask = torch.zeros(mask.shape, device=query.device).masked_fill(mask.to(query.device), float("-inf"))
            mask = mask.to(query.device, torch.float32)
            has_key = torch.isfinite(mask).any(dim=1)
            # a row with every key masked attends to key 0 (no NaN), then its output is dropped
            first = torch.arange(k, device=query.device) == 0
            mask = torch.where(~has_key[:, None] & first[None, :], torch.zeros_like(mask), mask)
        out, weights = self.attn(self.norm_q(query)[None], kv, kv, attn_mask=mask, need_weights=True)
        out, weights = out[0], weights[0]
        if has_key is not None:
            out = torch.where(has_key[:, None], out, torch.zeros_like(out))
            weights = torch.where(has_key[:, None], weights, torch.zeros_like(weights))
        h = query + out
        return h + self.mlp(self.norm_mlp(h)), weights
