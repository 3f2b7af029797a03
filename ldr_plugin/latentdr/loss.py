"""Loss terms of LatentDR: soft-label cross-entropy for the degraded branch, and branch accuracy."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def soft_cross_entropy(logits: torch.Tensor, soft_labels: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ``-sum_c y~_c log softmax(logits)_c`` (soft labels rows sum to 1).

    Computed in float32 whatever the autocast dtype of ``logits`` (bf16 log-softmax loses the
    small probabilities soft labels put weight on). Example: ``soft_cross_entropy(g(z_tilde),
    y_tilde)``; equals ``F.cross_entropy`` for one-hot rows.
    """
    return -(soft_labels.float() * F.log_softmax(logits.float(), dim=1)).sum(dim=1).mean()


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Fraction of rows whose argmax equals the label, a 0-d tensor on the logits' device (0 if empty)."""
    if labels.numel() == 0:
        return logits.new_zeros((), dtype=torch.float32)
    return (logits.argmax(dim=1) == labels).float().mean()
