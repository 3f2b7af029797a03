"""LatentDR (sample-aware latent degradation and restoration) as a host-free ``torch.nn.Module``.

Imports torch only when a submodule is used; ``import ldr_plugin.latentdr`` is cheap.
"""

__all__ = ["LatentDR", "LatentDRConfig"]


def __getattr__(name):  # lazy: keep ``import ldr_plugin.latentdr`` free of torch
    if name == "LatentDR":
        from ldr_plugin.latentdr.module import LatentDR

        return LatentDR
    if name == "LatentDRConfig":
        from ldr_plugin.latentdr.config import LatentDRConfig

        return LatentDRConfig
    raise AttributeError(name)
