"""Key bank: a FIFO queue of detached clean latents used as keys/values of the restoration.

Stored in registered buffers so ``module.to(device)`` moves it and ``state_dict`` saves it.
"""

from __future__ import annotations

import torch
from torch import nn


class KeyBank(nn.Module):
    """FIFO of the last ``size`` clean latents (detached); until full, only the filled part is used.

    Example: ``bank = KeyBank(128, 1024); bank.enqueue(z); keys = bank.keys()``.
    """

    def __init__(self, dim: int, size: int) -> None:
        super().__init__()
        self.size = int(size)
        self.register_buffer("memory", torch.zeros(self.size, dim))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    @property
    def filled(self) -> int:
        """How many slots hold a latent."""
        return int(self.count)

    def keys(self) -> torch.Tensor:
        """The stored latents, oldest first ([filled, d]; empty before the first enqueue)."""
        n, p = int(self.count), int(self.ptr)
        if n < self.size:
            return self.memory[:n]
        return torch.cat([self.memory[p:], self.memory[:p]])

    @torch.no_grad()
    def enqueue(self, z: torch.Tensor) -> None:
        """Append detached latents, overwriting the oldest when full (only the last ``size`` of a big batch)."""
        z = z.detach().to(self.memory.dtype)[-self.size :]
        n = z.shape[0]
        if n == 0:
            return
        idx = (self.ptr + torch.arange(n, device=self.memory.device)) % self.size
        self.memory[idx] = z
        self.ptr.copy_((self.ptr + n) % self.size)
        self.count.copy_(torch.clamp(self.count + n, max=self.size))
