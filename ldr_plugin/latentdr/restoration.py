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
        """Restore ``query`` [B, d] from ``keys`` [K, d]; ``mask`` [B, K] True = not attended.

        With no keys (K = 0) the attention adds nothing and only the MLP block acts.
        """
        h = query
        if keys.shape[0] > 0:
            kv = self.norm_kv(keys.to(query.dtype))[None]
            attn_mask = None if mask is None else mask.to(query.device)
            out, _ = self.attn(self.norm_q(query)[None], kv, kv, attn_mask=attn_mask, need_weights=False)
            h = query + out[0]
        return h + self.mlp(self.norm_mlp(h))
