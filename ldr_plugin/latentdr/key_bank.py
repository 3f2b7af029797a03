"""Key bank: a FIFO queue of detached clean latents used as keys/values of the restoration.

Each latent is stored with its label and the fingerprint of its input (``fingerprint.input_fingerprint``), so
the restoration can mask the keys that come from the query's own input (an earlier copy of the
same image drawn again by a with-replacement loader). Stored in registered buffers, so
``module.to(device)`` moves it and ``state_dict`` saves it; the fill level is mirrored on the
host, so reading the keys never waits for the device.
"""

from __future__ import annotations

import torch
from torch import nn

NO_FINGERPRINT = -1  # fingerprints are >= 0; an empty slot or a latent enqueued without one


class KeyBank(nn.Module):
    """FIFO of the last ``size`` clean latents (detached); until full, only the filled part is used.

    Example: ``bank = KeyBank(128, 1024); bank.enqueue(z, fp); keys, key_fps = bank.keys()``.
    """

    def __init__(self, dim: int, size: int) -> None:
        super().__init__()
        self.size = int(size)
        self.register_buffer("memory", torch.zeros(self.size, dim))
        self.register_buffer("fingerprints", torch.full((self.size,), NO_FINGERPRINT, dtype=torch.long))
        self.register_buffer("labels", torch.full((self.size,), -1, dtype=torch.long))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))
        self._host: tuple[int, int] | None = (0, 0)  # (ptr, count) on the host; None = read the buffers

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name in ("fingerprints", "labels"):  # a bank saved before these existed: nothing known
            state_dict.setdefault(prefix + name, torch.full((self.size,), -1, dtype=torch.long))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._host = None

    def _pointers(self) -> tuple[int, int]:
        if self._host is None:  # once after loading a state dict
            self._host = (int(self.ptr), int(self.count))
        return self._host

    @property
    def filled(self) -> int:
        """How many slots hold a latent."""
        return self._pointers()[1]

    def keys(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The stored latents ``[filled, d]``, their input fingerprints and labels (``[filled]``, -1 = unknown).

        The order of the slots is not the order of arrival once the queue has wrapped; attention
        over keys does not depend on their order.
        """
        n = self.filled
        return self.memory[:n], self.fingerprints[:n], self.labels[:n]

    @torch.no_grad()
    def enqueue(self, z: torch.Tensor, fingerprints: torch.Tensor | None = None,
                labels: torch.Tensor | None = None) -> None:
        """Append detached latents, overwriting the oldest when full (only the last ``size`` of a big batch)."""
        z = z.detach().to(self.memory.dtype)[-self.size :]
        n = z.shape[0]
        if n == 0:
            return
        unknown = torch.full((n,), -1, dtype=torch.long, device=z.device)
        fingerprints = unknown if fingerprints is None else fingerprints.detach()[-self.size :]
        labels = unknown if labels is None else labels.detach()[-self.size :]
        ptr, count = self._pointers()
        idx = torch.arange(ptr, ptr + n, device=self.memory.device) % self.size
        self.memory.index_copy_(0, idx, z.to(self.memory.device))
        self.fingerprints.index_copy_(0, idx, fingerprints.to(self.fingerprints.device, torch.long))
        self.labels.index_copy_(0, idx, labels.to(self.labels.device, torch.long))
        self._host = ((ptr + n) % self.size, min(count + n, self.size))
        self.ptr.fill_(self._host[0])
        self.count.fill_(self._host[1])
