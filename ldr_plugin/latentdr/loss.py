"""Loss terms of LatentDR: soft-label cross-entropy for the degraded branch."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def soft_cross_entropy(logits: torch.Tensor, soft_labels: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ``-sum_c y~_c log softmax(logits)_c`` (soft labels rows sum to 1).

    Example: ``soft_cross_entropy(g(z_tilde), y_tilde)``; equals ``F.cross_entropy`` for one-hot rows.
    """
    return -(soft_labels * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of rows whose argmax equals the label (0.0 for an empty batch)."""
    if labels.numel() == 0:
        return 0.0
    return float((logits.argmax(dim=1) == labels).float().mean())
